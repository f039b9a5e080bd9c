//! `bifrons key add|list|revoke` run as a user would against a fresh SQLite registry: the key
//! is printed once inside the exact RTMP URL (host, port and app from `[rtmp]`), never listed,
//! bound to the mountpoint asked for, and gone after `revoke`.

use std::process::{Command, Output};

fn bifrons(db: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bifrons"))
        .args(args)
        .env("BIFRONS_DATABASE_URL", db)
        .envs(env.iter().copied())
        .output()
        .expect("run bifrons")
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}: {}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn keys_are_printed_once_with_their_url_and_revoked_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("r.db").display());
    let rtmp = [
        ("BIFRONS_RTMP_PUBLIC_HOST", "stream.example"),
        ("BIFRONS_RTMP_PORT", "19350"),
        ("BIFRONS_RTMP_APP", "studio"),
    ];
    let out = stdout(&bifrons(&db, &["key", "add", "cam-a"], &rtmp));
    let url = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("RTMP URL:"))
        .map(str::trim)
        .expect("an RTMP URL line");
    let key = url
        .strip_prefix("rtmp://stream.example:19350/studio/")
        .unwrap_or_else(|| panic!("URL {url}"));
    assert_eq!(key.len(), 64);
    assert!(key.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(
        out.contains("OBS Server: rtmp://stream.example:19350/studio\n"),
        "{out}"
    );
    assert!(out.contains("feeding mountpoint 1"), "{out}");

    // The default port is left out of the URL.
    let out = stdout(&bifrons(
        &db,
        &["key", "add", "cam-b", "--mountpoint", "42"],
        &[],
    ));
    assert!(out.contains("feeding mountpoint 42"), "{out}");
    assert!(out.contains("RTMP URL:   rtmp://localhost/live/"), "{out}");

    let list = stdout(&bifrons(&db, &["key", "list"], &[]));
    assert!(list.contains("cam-a") && list.contains("cam-b"), "{list}");
    assert!(!list.contains(key), "the key is never listed: {list}");
    assert!(
        list.lines()
            .any(|l| l.contains("cam-b") && l.contains(" 42 ")),
        "{list}"
    );

    let dup = bifrons(&db, &["key", "add", "cam-a"], &[]);
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));
    assert!(!bifrons(&db, &["key", "add", " padded "], &[])
        .status
        .success());
    assert!(
        !bifrons(&db, &["key", "add", "zero", "--mountpoint", "0"], &[])
            .status
            .success()
    );

    stdout(&bifrons(&db, &["key", "revoke", "cam-a"], &[]));
    let list = stdout(&bifrons(&db, &["key", "list"], &[]));
    assert!(!list.contains("cam-a") && list.contains("cam-b"), "{list}");
    let again = bifrons(&db, &["key", "revoke", "cam-a"], &[]);
    assert!(!again.status.success());
}
