//! The storage commands of the `bifrons` binary, run as a user would: `user add` with the
//! password on stdin, `user list`, `migrate`, `db check`, and the first-start hint.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn bifrons(dir: &std::path::Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bifrons"))
        .args(args)
        .current_dir(dir)
        .env_remove("BIFRONS_DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run bifrons");
    // Commands that fail early (bad arguments) exit without reading stdin: a broken pipe here
    // is expected, and their output is what the test checks.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Starts the gateway (no subcommand) on ephemeral loopback ports in `dir`, collects what it
/// prints until its last listener is up, then stops it.
fn start_gateway(dir: &std::path::Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bifrons"))
        .current_dir(dir)
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
    // A hang guard only: the gateway is normally up in well under a second.
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) {
        output.push_str(&line);
        output.push('\n');
        if line.contains("Admin API (WebSocket) listening") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        output.contains("Admin API (WebSocket) listening"),
        "gateway did not start:\n{output}"
    );
    output
}

#[test]
fn first_start_creates_default_database_and_prints_the_admin_hint() {
    let dir = tempfile::tempdir().unwrap();
    let out = start_gateway(dir.path());
    assert!(out.contains("bifrons user add NAME --role admin"), "{out}");
    assert!(
        dir.path().join("data/bifrons.db").exists(),
        "default sqlite://data/bifrons.db"
    );

    let out = bifrons(
        dir.path(),
        &["user", "add", "root", "--role", "admin"],
        "a long password\n",
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = start_gateway(dir.path());
    assert!(
        !out.contains("user add"),
        "no hint once an admin exists: {out}"
    );
}

#[test]
fn user_add_list_migrate_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("reg.db").display());
    let db = ["--database-url", url.as_str()];

    let migrate = bifrons(dir.path(), &[&db[..], &["migrate"]].concat(), "");
    assert!(migrate.status.success(), "{}", text(&migrate));
    assert!(
        text(&migrate).contains("3 migration(s) applied"),
        "{}",
        text(&migrate)
    );
    let again = bifrons(dir.path(), &[&db[..], &["migrate"]].concat(), "");
    assert!(
        text(&again).contains("0 migration(s) applied"),
        "{}",
        text(&again)
    );

    let add = bifrons(
        dir.path(),
        &[&db[..], &["user", "add", "alice", "--role", "admin"]].concat(),
        "s3cret-pass\n",
    );
    assert!(add.status.success(), "{}", text(&add));
    let viewer = bifrons(
        dir.path(),
        &["user", "add", "bob", "--database-url", &url],
        "another-pass\n",
    );
    assert!(viewer.status.success(), "{}", text(&viewer));
    let dup = bifrons(
        dir.path(),
        &[&db[..], &["user", "add", "alice"]].concat(),
        "s3cret-pass\n",
    );
    assert!(!dup.status.success());
    assert!(text(&dup).contains("already exists"), "{}", text(&dup));
    let short = bifrons(
        dir.path(),
        &[&db[..], &["user", "add", "carol"]].concat(),
        "short\n",
    );
    assert!(!short.status.success());
    let bad_role = bifrons(
        dir.path(),
        &[&db[..], &["user", "add", "dave", "--role", "root"]].concat(),
        "long enough\n",
    );
    assert!(!bad_role.status.success());

    let list = bifrons(dir.path(), &[&db[..], &["user", "list"]].concat(), "");
    let listing = text(&list);
    assert!(list.status.success(), "{listing}");
    let rows: Vec<&str> = listing.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{listing}");
    assert!(
        rows[0].contains("alice") && rows[0].contains("admin"),
        "{listing}"
    );
    assert!(
        rows[1].contains("bob") && rows[1].contains("viewer"),
        "{listing}"
    );

    let check = bifrons(dir.path(), &[&db[..], &["db", "check"]].concat(), "");
    assert!(check.status.success(), "{}", text(&check));
    assert!(text(&check).contains("integrity:  ok"), "{}", text(&check));
    assert!(text(&check).contains("admins:     1"), "{}", text(&check));
}

#[test]
fn db_check_fails_on_an_unmigrated_or_missing_database_and_env_url_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("env.db");
    let url = format!("sqlite://{}", db.display());
    let check = || {
        Command::new(env!("CARGO_BIN_EXE_bifrons"))
            .args(["db", "check"])
            .current_dir(dir.path())
            .env("BIFRONS_DATABASE_URL", &url)
            .output()
            .unwrap()
    };
    let missing = check();
    assert!(!missing.status.success());
    assert!(
        text(&missing).contains("no database there"),
        "{}",
        text(&missing)
    );
    assert!(!db.exists(), "db check creates nothing");

    std::fs::write(&db, b"").unwrap(); // an empty file is an empty SQLite database
    let out = check();
    assert!(
        !out.status.success(),
        "pending migrations make the check fail"
    );
    assert!(text(&out).contains("3 pending"), "{}", text(&out));
    assert!(
        !dir.path().join("data").exists(),
        "the env URL was used, not the default"
    );
}
