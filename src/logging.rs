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

/// Targets of the webrtc-rs crates (and the protocol crates they log through; webrtc-rs 0.17
/// names its DTLS crate `dtls`, later lines `webrtc_dtls`; the sans-I/O core of the loop
/// engine logs as `rtc` and `rtc_*`, e.g. `Unsupported Extension Type` for every Chromium
/// ClientHello). They report
/// ordinary events of a healthy call at WARN (`pingAllCandidates called with no candidate
/// pairs` while gathering, `could not listen udp fe80::…` for link-local addresses, `mux: no
/// endpoint for packet starting with …` for a packet arriving before DTLS is set up), so their
/// WARN and INFO count as our DEBUG and their DEBUG as our TRACE; their ERROR always shows.
pub const WEBRTC_TARGETS: &[&str] = &[
    "webrtc",
    "webrtc_ice",
    "webrtc_dtls",
    "dtls",
    "webrtc_sctp",
    "webrtc_srtp",
    "webrtc_mdns",
    "webrtc_data",
    "webrtc_media",
    "webrtc_util",
    "interceptor",
    "rtcp",
    "rtp",
    "sdp",
    "stun",
    "turn",
    "rtc",
    "rtc_ice",
    "rtc_dtls",
    "rtc_sctp",
    "rtc_srtp",
    "rtc_datachannel",
    "rtc_interceptor",
    "rtc_rtp",
    "rtc_rtcp",
    "rtc_sdp",
    "rtc_stun",
    "rtc_turn",
    "rtc_mdns",
    "rtc_media",
    "rtc_shared",
];

/// The level webrtc-rs targets get when ours is `level`: one step quieter than ours, and never
/// quieter than ERROR unless logging is off (see [`WEBRTC_TARGETS`]).
pub fn webrtc_level(level: LevelFilter) -> LevelFilter {
    match level {
        LevelFilter::OFF => LevelFilter::OFF,
        LevelFilter::TRACE => LevelFilter::DEBUG,
        LevelFilter::DEBUG => LevelFilter::INFO,
        _ => LevelFilter::ERROR,
    }
}

/// The `EnvFilter` directive for our level `level`: `level` for every target, and
/// [`webrtc_level`] for the webrtc-rs ones, e.g. `info,webrtc=error,webrtc_ice=error,…`.
pub fn filter_directive(level: LevelFilter) -> String {
    let quiet = webrtc_level(level);
    let mut directive = level.to_string();
    for target in WEBRTC_TARGETS {
        directive.push_str(&format!(",{target}={quiet}"));
    }
    directive
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

    /// Sets the level for every target (the webrtc-rs ones following [`webrtc_level`]).
    pub fn set_level(&self, level: LevelFilter) {
        if let Some(handle) = &self.handle {
            let _ = handle.modify(|f| *f = filter_for(level));
        }
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = level;
    }
}

fn filter_for(level: LevelFilter) -> EnvFilter {
    EnvFilter::new(filter_directive(level))
}

/// The reloadable filter layer and the control that changes it; `RUST_LOG`, when given, is
/// the initial filter instead of [`filter_directive`].
fn reloadable(
    level: LevelFilter,
    rust_log: Option<String>,
) -> (reload::Layer<EnvFilter, Registry>, LogControl) {
    let filter = rust_log
        .map(EnvFilter::new)
        .unwrap_or_else(|| filter_for(level));
    let (layer, handle) = reload::Layer::new(filter);
    let control = LogControl {
        handle: Some(handle),
        current: Arc::new(Mutex::new(level)),
    };
    (layer, control)
}

/// Installs the global subscriber; `RUST_LOG`, when set, wins over the configured level.
pub fn init(level: LevelFilter) -> LogControl {
    let (filter, control) = reloadable(level, std::env::var("RUST_LOG").ok());
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(
            fmt::layer()
                .with_target(true)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout())),
        )
        .try_init();
    control
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tracing_subscriber::layer::{Context, Layer};

    /// Counts the events that pass the filter.
    struct Count(Arc<AtomicUsize>);

    impl<S: tracing::Subscriber> Layer<S> for Count {
        fn on_event(&self, _: &tracing::Event<'_>, _: Context<'_, S>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn filter_directive_names_every_webrtc_crate() {
        assert_eq!(
            filter_directive(LevelFilter::INFO),
            "info,webrtc=error,webrtc_ice=error,webrtc_dtls=error,dtls=error,\
             webrtc_sctp=error,webrtc_srtp=error,webrtc_mdns=error,webrtc_data=error,webrtc_media=error,\
             webrtc_util=error,interceptor=error,rtcp=error,rtp=error,sdp=error,stun=error,\
             turn=error,rtc=error,rtc_ice=error,rtc_dtls=error,rtc_sctp=error,rtc_srtp=error,\
             rtc_datachannel=error,rtc_interceptor=error,rtc_rtp=error,rtc_rtcp=error,\
             rtc_sdp=error,rtc_stun=error,rtc_turn=error,rtc_mdns=error,rtc_media=error,\
             rtc_shared=error"
        );
        assert!(filter_directive(LevelFilter::DEBUG).contains(",webrtc_ice=info,"));
        assert!(filter_directive(LevelFilter::TRACE).contains(",webrtc_ice=debug,"));
        assert!(filter_directive(LevelFilter::OFF).starts_with("off,webrtc=off,"));
        // Every level gives a directive EnvFilter accepts.
        for level in [
            LevelFilter::OFF,
            LevelFilter::ERROR,
            LevelFilter::WARN,
            LevelFilter::INFO,
            LevelFilter::DEBUG,
            LevelFilter::TRACE,
        ] {
            EnvFilter::try_new(filter_directive(level)).unwrap();
        }
    }

    #[test]
    fn webrtc_warnings_are_debug_but_errors_stay_and_set_level_still_works() {
        let (filter, control) = reloadable(LevelFilter::INFO, None);
        let seen = Arc::new(AtomicUsize::new(0));
        let subscriber = tracing_subscriber::registry()
            .with(filter)
            .with(Count(seen.clone()));
        let count = |f: &dyn Fn()| {
            let before = seen.load(Ordering::SeqCst);
            f();
            seen.load(Ordering::SeqCst) - before
        };
        tracing::subscriber::with_default(subscriber, || {
            let chatter = || {
                tracing::warn!(target: "webrtc_ice::agent::agent_internal", "pingAllCandidates called with no candidate pairs");
                tracing::warn!(target: "webrtc::mux", "mux: no endpoint for packet starting with 0");
                tracing::info!(target: "webrtc_mdns::conn", "mdns up");
            };
            let fault = || tracing::error!(target: "dtls::conn", "handshake failed");
            let ours = || tracing::info!(target: "bifrons::server", "listening");

            assert_eq!(count(&chatter), 0, "webrtc-rs WARN/INFO hidden at info");
            assert_eq!(count(&fault), 1, "webrtc-rs ERROR shown at info");
            assert_eq!(count(&ours), 1);

            control.set_level(LevelFilter::DEBUG);
            assert_eq!(control.level(), LevelFilter::DEBUG);
            assert_eq!(count(&chatter), 3, "shown once our level is debug");

            control.set_level(LevelFilter::WARN);
            assert_eq!(count(&ours), 0, "set_level lowers ours too");
            assert_eq!(count(&chatter), 0);
            assert_eq!(count(&fault), 1);
        });
    }
}
