//! Demo pages on the HTTP port: `/` lists them, `/demos/echotest.html` runs the echo test
//! with janus.js and webrtc-adapter.
//!
//! Both scripts are compiled into the binary (`src/web/assets/`, unmodified npm files, see
//! `NOTICE`), so the demos work however the gateway is started; `[web]` `janus_js` /
//! `adapter_js` only override them with files read on each request. `/demos/config.json`
//! tells the pages where the Janus API listens, so no port is hard-coded in them.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::config::Config;

const INDEX: &str = include_str!("pages/index.html");
const ECHOTEST: &str = include_str!("pages/echotest.html");
const STREAMING: &str = include_str!("pages/streaming.html");
const WHEP: &str = include_str!("pages/whep.html");
const WHIP: &str = include_str!("pages/whip.html");
const AUDIOBRIDGE: &str = include_str!("pages/audiobridge.html");
const SIPTEST: &str = include_str!("pages/siptest.html");
const VOICEMAIL: &str = include_str!("pages/voicemail.html");
/// The WHIP/WHEP session module the WHIP publisher and WHEP player import.
const WISH_JS: &str = include_str!("pages/wish.js");

/// janus.js 1.4.2 as shipped on npm (`janus-gateway`, `npm/dist/janus.es.js`), MIT.
pub const EMBEDDED_JANUS_JS: &[u8] = include_bytes!("assets/janus.es.js");
/// webrtc-adapter 9.0.6 as shipped on npm (`out/adapter.js`), BSD-3-Clause.
pub const EMBEDDED_ADAPTER_JS: &[u8] = include_bytes!("assets/adapter.js");

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

fn html(body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

/// The embedded script when `override_path` is empty, else that file, read on each request
/// (so a replaced file is picked up without a restart). A missing override is a 404 whose
/// body names the file and the `[web]` key, which the pages show in their error element.
async fn script(override_path: &str, key: &str, embedded: &'static [u8]) -> Response {
    if override_path.is_empty() {
        return ([(header::CONTENT_TYPE, JAVASCRIPT)], embedded).into_response();
    }
    match tokio::fs::read(override_path).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, JAVASCRIPT)], bytes).into_response(),
        Err(e) => (
            StatusCode::NOT_FOUND,
            format!(
                "'{override_path}' ([web] {key}) could not be read ({e}); leave [web] {key} empty to use the built-in copy."
            ),
        )
            .into_response(),
    }
}

/// `/demos/config.json`: where the pages find the Janus API. Only ports and paths: the page
/// joins them to the host name it was loaded from, since the gateway cannot know which of its
/// names the browser used.
///
/// Shape: `{"http": {"enabled", "port", "path"}, "websocket": {"enabled", "port", "path",
/// "protocol"}, "whep": {"enabled", "port", "path"}}`; a port of 0 means an ephemeral port was configured (unknown here).
pub fn client_config(config: &Config) -> serde_json::Value {
    json!({
        "http": {
            "enabled": config.http.enabled,
            "port": config.http.port,
            "path": config.http.base_path,
        },
        "websocket": {
            "enabled": config.websocket.enabled,
            "port": config.websocket.port,
            "path": "/",
            "protocol": "janus-protocol",
        },
        "whep": {
            "enabled": config.whep.enabled,
            "port": config.whep.port,
            "path": "/whep",
        },
    })
}

/// Serves a demo path: the index at `/` and `/demos/`, the echo test page, `/demos/config.json`
/// `/demos/wish.js` (the WHIP/WHEP pages' session module) and `/demos/janus.js` /
/// `/demos/adapter.js` (embedded unless `[web]` names a file).
/// Anything else is 404.
pub async fn serve(config: &Config, path: &str) -> Response {
    let web = &config.web;
    match path {
        "/" | "/demos" | "/demos/" | "/demos/index.html" => html(INDEX),
        "/demos/echotest.html" => html(ECHOTEST),
        "/demos/streaming.html" => html(STREAMING),
        "/demos/whep.html" => html(WHEP),
        "/demos/whip.html" => html(WHIP),
        "/demos/audiobridge.html" => html(AUDIOBRIDGE),
        "/demos/siptest.html" => html(SIPTEST),
        "/demos/voicemail.html" => html(VOICEMAIL),
        "/demos/config.json" => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            client_config(config).to_string(),
        )
            .into_response(),
        "/demos/wish.js" => ([(header::CONTENT_TYPE, JAVASCRIPT)], WISH_JS).into_response(),
        "/demos/janus.js" => script(&web.janus_js, "janus_js", EMBEDDED_JANUS_JS).await,
        "/demos/adapter.js" => script(&web.adapter_js, "adapter_js", EMBEDDED_ADAPTER_JS).await,
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;

    /// A configuration whose `[web]` names no file, as the built-in default does.
    fn config() -> Config {
        let mut c = Config::default();
        c.web.janus_js.clear();
        c.web.adapter_js.clear();
        c
    }

    async fn get(config: &Config, path: &str) -> (StatusCode, String, Vec<u8>) {
        let res = serve(config, path).await;
        let status = res.status();
        let ctype = res
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or_default().to_owned())
            .unwrap_or_default();
        let body = to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap_or_default();
        (status, ctype, body.to_vec())
    }

    #[tokio::test]
    async fn embedded_scripts_are_served_as_javascript_without_any_file() {
        // `[web]` names no file, so nothing is read from disk: the bytes come from the binary.
        let c = config();
        for (path, marker) in [
            ("/demos/janus.js", "export { Janus as default }"),
            ("/demos/adapter.js", "The WebRTC project authors"),
        ] {
            let (status, ctype, body) = get(&c, path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(ctype, "text/javascript; charset=utf-8", "{path}");
            let text = String::from_utf8_lossy(&body);
            assert!(text.contains(marker), "{path} lacks {marker:?}");
        }
        // The licence headers travel with the files.
        let (_, _, janus) = get(&c, "/demos/janus.js").await;
        assert!(String::from_utf8_lossy(&janus[..200]).contains("The MIT License"));
    }

    #[test]
    fn default_config_uses_the_embedded_scripts() {
        let c = Config::default();
        assert!(c.web.janus_js.is_empty() && c.web.adapter_js.is_empty());
    }

    #[tokio::test]
    async fn a_missing_override_is_a_404_naming_the_key() {
        let mut c = config();
        c.web.janus_js = "/nonexistent/janus.js".into();
        let (status, _, body) = get(&c, "/demos/janus.js").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(String::from_utf8_lossy(&body).contains("[web] janus_js"));
    }

    #[tokio::test]
    async fn config_json_gives_the_configured_ports_and_paths() {
        let mut c = config();
        c.http.port = 18088;
        c.http.base_path = "/gw".into();
        c.websocket.port = 18188;
        let (status, ctype, body) = get(&c, "/demos/config.json").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ctype, "application/json");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        assert_eq!(v["http"]["port"], 18088);
        assert_eq!(v["http"]["path"], "/gw");
        assert_eq!(v["websocket"]["port"], 18188);
        assert_eq!(v["websocket"]["enabled"], true);
    }
}
