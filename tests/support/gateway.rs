//! The gateway in-process: real listeners on 127.0.0.1 port 0, a temp SQLite registry, the
//! plugins a test chooses. Plugin tests drive it over the real Janus HTTP API, so they are
//! Rust tests with the transport, router, sessions and plugin host of the binary.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use bifrons::config::{Config, LoopbackMode};
use bifrons::core::Core;
use bifrons::logging::LogControl;
use bifrons::plugins::PluginFactory;
use bifrons::server::{build_core_with, run, Listeners};
use bifrons::storage::Storage;

/// A running in-process gateway; [`TestGateway::stop`] shuts it down as SIGTERM would.
pub struct TestGateway {
    /// The shared state, for assertions (sessions, event bus, storage).
    pub core: Arc<Core>,
    /// Janus API over HTTP.
    pub http: SocketAddr,
    /// Janus API over WebSocket.
    pub ws: SocketAddr,
    /// Admin API over HTTP (`/admin`).
    pub admin_http: SocketAddr,
    /// Admin API over WebSocket.
    pub admin_ws: SocketAddr,
    /// Where recordings and the registry live.
    pub dir: TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// The configuration of an in-process gateway: every listener on 127.0.0.1 port 0.
pub fn test_config(dir: &TempDir) -> Config {
    let mut config = Config::default();
    let lo = "127.0.0.1".parse().unwrap();
    config.http.bind = lo;
    config.http.port = 0;
    config.websocket.bind = lo;
    config.websocket.port = 0;
    config.admin.bind = lo;
    config.admin.http_port = 0;
    config.admin.websocket_port = 0;
    config.ice.loopback = LoopbackMode::Always;
    config.database.url = format!("sqlite://{}", dir.path().join("bifrons.db").display());
    config.recordings.dir = dir.path().join("recordings");
    config
}

impl TestGateway {
    /// Starts a gateway hosting the plugins of `factories`, configured by `tweak`.
    pub async fn start_with(factories: &[PluginFactory], tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = test_config(&dir);
        tweak(&mut config);
        let storage = Storage::open(&config.database.url).await.expect("registry");
        let listeners = Listeners::bind(&config).await.expect("listeners");
        let addresses = listeners.addresses();
        let http = addresses.janus_http.expect("HTTP listener");
        let ws = addresses.janus_ws.expect("WebSocket listener");
        let admin_http = addresses.admin_http.expect("Admin HTTP listener");
        let admin_ws = addresses.admin_ws.expect("Admin WebSocket listener");
        let log = LogControl::detached(tracing::level_filters::LevelFilter::INFO);
        let core = build_core_with(config, log, storage, factories)
            .await
            .expect("core");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(run(core.clone(), listeners, async move {
            let _ = stopped.await;
        }));
        Self {
            core,
            http,
            ws,
            admin_http,
            admin_ws,
            dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Starts a gateway hosting the plugins of `factories` with the test configuration.
    pub async fn start(factories: &[PluginFactory]) -> Self {
        Self::start_with(factories, |_| {}).await
    }

    /// Stops the gateway and waits for it (sessions destroyed, plugins shut down).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("gateway stops within 30 s")
                .expect("gateway task")
                .expect("gateway run");
        }
    }

    /// `POST path` with a JSON body; the JSON reply.
    pub async fn post(&self, path: &str, body: &Value) -> Value {
        self.request("POST", path, Some(body)).await
    }

    /// `GET path`; the JSON reply.
    pub async fn get(&self, path: &str) -> Value {
        self.request("GET", path, None).await
    }

    /// An Admin API request over HTTP (`POST /admin`); the JSON reply.
    pub async fn admin(&self, body: &Value) -> Value {
        request(self.admin_http, "POST", "/admin", Some(body)).await
    }

    async fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        request(self.http, method, path, body).await
    }

    /// `create`: a new session's id.
    pub async fn create_session(&self) -> u64 {
        let r = self
            .post("/janus", &json!({"janus":"create","transaction":"c"}))
            .await;
        r["data"]["id"].as_u64().unwrap_or_else(|| panic!("{r}"))
    }

    /// `attach` to `plugin`: the reply (success with the handle id, or an error).
    pub async fn attach(&self, session: u64, plugin: &str) -> Value {
        self.post(
            &format!("/janus/{session}"),
            &json!({"janus":"attach","transaction":"a","plugin":plugin}),
        )
        .await
    }

    /// `message` with `body` to a handle: the reply.
    pub async fn message(
        &self,
        session: u64,
        handle: u64,
        transaction: &str,
        body: Value,
    ) -> Value {
        self.post(
            &format!("/janus/{session}/{handle}"),
            &json!({"janus":"message","transaction":transaction,"body":body}),
        )
        .await
    }

    /// `message` with `body` and a `jsep` to a handle: the reply.
    pub async fn message_jsep(
        &self,
        session: u64,
        handle: u64,
        transaction: &str,
        body: Value,
        jsep: Value,
    ) -> Value {
        self.post(
            &format!("/janus/{session}/{handle}"),
            &json!({"janus":"message","transaction":transaction,"body":body,"jsep":jsep}),
        )
        .await
    }

    /// Long-polls the session until an event satisfying `want` arrives (30 s guard).
    pub async fn wait_event(&self, session: u64, mut want: impl FnMut(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no matching event in 30 s"
            );
            let events = self.get(&format!("/janus/{session}?maxev=10")).await;
            for e in events.as_array().cloned().unwrap_or_else(|| vec![events]) {
                if want(&e) {
                    return e;
                }
            }
        }
    }
}

/// One HTTP request to `addr` on its own connection; the JSON reply (status 200 expected).
async fn request(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> Value {
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}
