//! The gateway binary started as an operator would: the banner it prints once listening, the
//! paths it uses when the configuration file lives elsewhere than the working directory, and
//! the warning for an API exposed without a secret.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Starts `bifrons` with `args` in `cwd` (ephemeral ports, loopback unless `env` says
/// otherwise), collects what it prints until the banner's last line, then stops it.
fn start(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bifrons"))
        .args(args)
        .current_dir(cwd)
        .env_remove("BIFRONS_DATABASE_URL")
        .env_remove("RUST_LOG")
        .envs([
            ("BIFRONS_HTTP_BIND", "127.0.0.1"),
            ("BIFRONS_HTTP_PORT", "0"),
            ("BIFRONS_WEBSOCKET_BIND", "127.0.0.1"),
            ("BIFRONS_WEBSOCKET_PORT", "0"),
            ("BIFRONS_ADMIN_HTTP_PORT", "0"),
            ("BIFRONS_ADMIN_WEBSOCKET_PORT", "0"),
        ])
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run bifrons");
    let (tx, rx) = mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let mut output = String::new();
    let mut after_banner = None;
    // A hang guard only: the gateway is normally up in well under a second. The warnings
    // follow the banner, so a moment more is collected after it.
    loop {
        let wait = after_banner.map_or(Duration::from_secs(60), |_| Duration::from_millis(300));
        let Ok(line) = rx.recv_timeout(wait) else {
            break;
        };
        output.push_str(&line);
        output.push('\n');
        if line.trim_start().starts_with("demos ") {
            after_banner = Some(());
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(after_banner.is_some(), "no banner:\n{output}");
    output
}

fn banner_value<'a>(output: &'a str, label: &str) -> Vec<&'a str> {
    output
        .lines()
        .filter_map(|l| l.strip_prefix("  "))
        .filter_map(|l| l.strip_prefix(label))
        .map(str::trim)
        .collect()
}

#[test]
fn banner_shows_version_config_database_listeners_plugins_and_demos() {
    let dir = tempfile::tempdir().unwrap();
    let out = start(dir.path(), &[], &[]);
    assert!(
        out.contains(&format!("Bifrons {} ready", env!("CARGO_PKG_VERSION"))),
        "{out}"
    );
    assert_eq!(
        banner_value(&out, "configuration"),
        ["built-in defaults"],
        "{out}"
    );
    let db = dir.path().canonicalize().unwrap().join("data/bifrons.db");
    assert_eq!(
        banner_value(&out, "database"),
        [format!("sqlite {}", db.display())],
        "{out}"
    );
    for (label, prefix, suffix) in [
        ("Janus API (HTTP)", "http://127.0.0.1:", "/janus"),
        ("Janus API (WebSocket)", "ws://127.0.0.1:", "/"),
        ("Admin API (HTTP)", "http://127.0.0.1:", "/admin"),
        ("Admin API (WebSocket)", "ws://127.0.0.1:", "/"),
    ] {
        let value = banner_value(&out, label);
        let port = value
            .first()
            .and_then(|v| v.strip_prefix(prefix))
            .and_then(|v| v.strip_suffix(suffix))
            .unwrap_or_else(|| panic!("{label} in\n{out}"));
        assert_ne!(
            port.parse::<u16>().unwrap(),
            0,
            "the bound port, not 0: {out}"
        );
    }
    assert!(
        banner_value(&out, "plugins")[0].contains("janus.plugin.echotest"),
        "{out}"
    );
    let http = banner_value(&out, "Janus API (HTTP)")[0].trim_end_matches("/janus");
    assert_eq!(banner_value(&out, "demos"), [format!("{http}/")], "{out}");
    assert!(
        !out.contains("WARN") || !out.contains("api_secret"),
        "{out}"
    );
}

#[test]
fn relative_paths_in_a_config_file_are_taken_from_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let (etc, cwd) = (root.join("etc"), root.join("elsewhere"));
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::create_dir_all(&cwd).unwrap();
    std::fs::write(
        etc.join("bifrons.toml"),
        "[database]\nurl = \"sqlite://db/registry.db\"\n[recordings]\ndir = \"../rec\"\n",
    )
    .unwrap();
    let out = start(&cwd, &["--config", "../etc/bifrons.toml"], &[]);
    assert_eq!(
        banner_value(&out, "configuration"),
        [etc.join("bifrons.toml").display().to_string()],
        "{out}"
    );
    assert_eq!(
        banner_value(&out, "database"),
        [format!("sqlite {}", etc.join("db/registry.db").display())],
        "{out}"
    );
    assert_eq!(
        banner_value(&out, "recordings"),
        [root.join("rec").display().to_string()],
        "{out}"
    );
    assert!(etc.join("db/registry.db").exists(), "{out}");
    assert!(root.join("rec").is_dir(), "{out}");
    assert!(
        std::fs::read_dir(&cwd).unwrap().next().is_none(),
        "nothing written in the working directory"
    );

    // A path from an environment variable is a shell path: taken from the working directory.
    let out = start(
        &cwd,
        &["--config", "../etc/bifrons.toml"],
        &[("BIFRONS_RECORDINGS_DIR", "rec-env")],
    );
    assert_eq!(
        banner_value(&out, "recordings"),
        [cwd.join("rec-env").display().to_string()],
        "{out}"
    );
}

#[test]
fn an_api_bound_beyond_loopback_without_a_secret_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    // Port 0: an ephemeral port, on every interface for the few hundred milliseconds of the test.
    let out = start(dir.path(), &[], &[("BIFRONS_WEBSOCKET_BIND", "0.0.0.0")]);
    let warning = out
        .lines()
        .find(|l| l.contains("WARN") && l.contains("api_secret"))
        .unwrap_or_else(|| panic!("no warning in\n{out}"));
    assert!(warning.contains("0.0.0.0:"), "{warning}");
    assert!(
        !out.lines()
            .any(|l| l.contains("WARN") && l.contains("[admin] secret")),
        "the Admin API is on loopback: {out}"
    );
    let out = start(
        dir.path(),
        &[],
        &[
            ("BIFRONS_WEBSOCKET_BIND", "0.0.0.0"),
            ("BIFRONS_GENERAL_API_SECRET", "s3cret"),
        ],
    );
    assert!(!out.contains("api_secret"), "{out}");
}
