//! Logging set-up, with the level changeable at run time (Admin API `set_log_level`).

use std::sync::{Arc, Mutex};

use tracing_subscriber::{filter::LevelFilter, fmt, prelude::*, reload, EnvFilter, Registry};

/// Parses a level name (`error`, `warn`, `info`, `debug`, `trace`, `off`).
pub fn parse_level(name: &str) -> Option<LevelFilter> {
    match name.to_ascii_lowercase().as_str() {
        "off" | "none" => Some(LevelFilter::OFF),
        "error" => Some(LevelFilter::ERROR),
        "warn" | "warning" => Some(LevelFilter::WARN),
        "info" => Some(LevelFilter::INFO),
        "debug" => Some(LevelFilter::DEBUG),
        "trace" | "verbose" => Some(LevelFilter::TRACE),
        _ => None,
    }
}

/// Janus levels 0 (none) to 7 (huge) mapped onto tracing's.
pub fn janus_level_filter(level: u64) -> LevelFilter {
    match level {
        0 => LevelFilter::OFF,
        1 | 2 => LevelFilter::ERROR,
        3 => LevelFilter::WARN,
        4 => LevelFilter::INFO,
        5 | 6 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

/// The Janus level (0–7) reported for a tracing level.
pub fn janus_level_of(filter: LevelFilter) -> u64 {
    match filter {
        LevelFilter::OFF => 0,
        LevelFilter::ERROR => 2,
        LevelFilter::WARN => 3,
        LevelFilter::INFO => 4,
        LevelFilter::DEBUG => 5,
        _ => 7,
    }
}

/// Changes the global log level at run time.
#[derive(Clone)]
pub struct LogControl {
    handle: Option<reload::Handle<EnvFilter, Registry>>,
    current: Arc<Mutex<LevelFilter>>,
}

impl LogControl {
    /// A control that changes nothing (tests, embedding).
    pub fn detached(level: LevelFilter) -> Self {
        Self {
            handle: None,
            current: Arc::new(Mutex::new(level)),
        }
    }

    /// The level in force.
    pub fn level(&self) -> LevelFilter {
        *self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the level for every target.
    pub fn set_level(&self, level: LevelFilter) {
        if let Some(handle) = &self.handle {
            let _ = handle.modify(|f| *f = filter_for(level));
        }
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = level;
    }
}

fn filter_for(level: LevelFilter) -> EnvFilter {
    // webrtc-rs logs every ICE check at debug: keep its chatter one level quieter than ours.
    EnvFilter::new(format!(
        "{level},webrtc=warn,webrtc_ice=warn,webrtc_dtls=warn,webrtc_sctp=warn,webrtc_srtp=warn"
    ))
}

/// Installs the global subscriber; `RUST_LOG`, when set, wins over the configured level.
pub fn init(level: LevelFilter) -> LogControl {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .map(EnvFilter::new)
        .unwrap_or_else(|| filter_for(level));
    let (filter, handle) = reload::Layer::new(filter);
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(
            fmt::layer()
                .with_target(true)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout())),
        )
        .try_init();
    LogControl {
        handle: Some(handle),
        current: Arc::new(Mutex::new(level)),
    }
}
