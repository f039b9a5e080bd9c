//! The `server_info` reply to `info`.

use serde_json::{json, Map, Value};

use crate::core::Core;

/// Bifrons' version as a Janus-style number (major*1000 + minor*100 + patch... kept simple).
fn version_number() -> u64 {
    let mut parts = env!("CARGO_PKG_VERSION")
        .split('.')
        .map(|p| p.parse::<u64>().unwrap_or(0));
    let (major, minor, patch) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    major * 1000 + minor * 100 + patch
}

/// Builds `server_info`, the answer to `info` on both the Janus and the Admin API, with Janus'
/// field names (timeouts in seconds, booleans for the features Janus reports, one entry per
/// enabled transport and per plugin); `transaction` is echoed when the request had one.
pub fn server_info(core: &Core, transaction: Option<&str>) -> Value {
    let general = &core.config.general;
    let mut plugins = Map::new();
    for d in core.plugins.descriptors() {
        plugins.insert(
            d.package.to_string(),
            json!({
                "name": d.name, "author": d.author, "description": d.description,
                "version_string": d.version_string, "version": d.version,
            }),
        );
    }
    let mut transports = Map::new();
    if core.config.http.enabled {
        transports.insert(
            "janus.transport.http".into(),
            json!({"name": "Bifrons HTTP transport", "author": "Bifrons", "description": "Janus API over HTTP and long poll", "version_string": env!("CARGO_PKG_VERSION"), "version": version_number()}),
        );
    }
    if core.config.websocket.enabled {
        transports.insert(
            "janus.transport.websockets".into(),
            json!({"name": "Bifrons WebSocket transport", "author": "Bifrons", "description": "Janus API over WebSocket", "version_string": env!("CARGO_PKG_VERSION"), "version": version_number()}),
        );
    }
    let mut info = json!({
        "janus": "server_info",
        "name": "Bifrons",
        "version": version_number(),
        "version_string": env!("CARGO_PKG_VERSION"),
        "author": "Bifrons",
        "log-to-stdout": true,
        "log-to-file": false,
        "data_channels": true,
        "accepting-new-sessions": core.accepting_sessions(),
        "session-timeout": core.sessions.timeout(),
        "reclaim-session-timeout": general.reclaim_session_timeout,
        "candidates-timeout": general.candidates_timeout,
        "server-name": general.server_name,
        "ipv6": core.media.offers_ipv6(),
        "ice-lite": core.config.ice.ice_lite,
        "ice-tcp": false,
        "full-trickle": core.config.ice.full_trickle,
        "mdns-enabled": false,
        "min-nack-queue": core.media.min_nack_queue().ms(),
        "api_secret": core.auth.api_secret_enabled(),
        "auth_token": core.auth.token_auth_enabled(),
        "event_handlers": false,
        "opaqueid_in_api": false,
        "dependencies": { "webrtc-rs": "0.17", "tokio": "1", "axum": "0.8" },
        "transports": transports,
        "events": {},
        "loggers": {},
        "plugins": plugins,
    });
    if let Some(stun) = core.config.ice.stun_servers.first() {
        info["stun-server"] = json!(stun.trim_start_matches("stun:"));
    }
    if let Some(t) = transaction {
        info["transaction"] = json!(t);
    }
    info
}
