//! Smoke test of the SIP scenario: two calls for two seconds against the debug gateway
//! (`target/debug/bifrons`, built by `cargo build` or the workspace's test build; `BIFRONS_BIN`
//! overrides it). It asserts what works, never how fast: both calls come up and each leg of
//! each call carries packets (`bifrons-loadgen sip --check`).

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Gateway(Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn gateway_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("BIFRONS_BIN") {
        return p.into();
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let bin = root.join("target/debug/bifrons");
    assert!(
        bin.exists(),
        "gateway binary not found at {} (cargo build -p bifrons, or set BIFRONS_BIN)",
        bin.display()
    );
    bin
}

#[test]
fn two_sip_calls_carry_audio_both_ways() {
    let dir = std::env::temp_dir().join(format!("bifrons-loadgen-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ws = free_port();
    let log = std::fs::File::create(dir.join("gateway.log")).unwrap();
    let gw = Command::new(gateway_bin())
        .current_dir(&dir)
        .envs([
            ("BIFRONS_HTTP_BIND", "127.0.0.1".to_string()),
            ("BIFRONS_HTTP_PORT", free_port().to_string()),
            ("BIFRONS_WEBSOCKET_BIND", "127.0.0.1".to_string()),
            ("BIFRONS_WEBSOCKET_PORT", ws.to_string()),
            ("BIFRONS_ADMIN_BIND", "127.0.0.1".to_string()),
            ("BIFRONS_ADMIN_HTTP_PORT", free_port().to_string()),
            ("BIFRONS_ADMIN_WEBSOCKET_PORT", free_port().to_string()),
            ("BIFRONS_RTMP_ENABLED", "false".to_string()),
            ("BIFRONS_WHEP_ENABLED", "false".to_string()),
            ("BIFRONS_ICE_LOOPBACK", "always".to_string()),
            ("BIFRONS_SIP_LOCAL_IP", "127.0.0.1".to_string()),
            (
                "BIFRONS_DATABASE_URL",
                format!("sqlite://{}", dir.join("bifrons.db").display()),
            ),
            (
                "BIFRONS_RECORDINGS_DIR",
                dir.join("recordings").display().to_string(),
            ),
        ])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("starting the gateway");
    let mut gw = Gateway(gw);
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", ws)).is_err() {
        if let Some(status) = gw.0.try_wait().unwrap() {
            panic!(
                "gateway exited at start-up ({status}): {}",
                std::fs::read_to_string(dir.join("gateway.log")).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "gateway did not listen within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = Command::new(env!("CARGO_BIN_EXE_bifrons-loadgen"))
        .args([
            "sip",
            "--calls",
            "2",
            "--seconds",
            "2",
            "--check",
            "--janus",
        ])
        .arg(format!("ws://127.0.0.1:{ws}/"))
        .arg("--gateway-pid")
        .arg(gw.0.id().to_string())
        .stdin(Stdio::null())
        .output()
        .expect("running the load client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    drop(gw);
    let gateway_log = std::fs::read_to_string(dir.join("gateway.log")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "load client failed\nstdout:\n{stdout}\nstderr:\n{stderr}\ngateway log:\n{gateway_log}"
    );
    assert!(
        stdout.contains("2 calls asked, 2 up and measured"),
        "{stdout}"
    );
}
