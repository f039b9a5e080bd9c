//! `bifrons egress add|list|rm` run as an operator would: the destination key on stdin, never
//! echoed, a non-RTMP URL refused, the rows visible in the registry.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn bifrons(dir: &std::path::Path, args: &[&str], stdin: &str) -> Output {
    let url = format!("sqlite://{}", dir.join("registry.db").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_bifrons"))
        .args(["--database-url", &url])
        .args(args)
        .current_dir(dir)
        .env_remove("BIFRONS_DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run bifrons");
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

#[test]
fn egress_targets_are_added_listed_and_removed_without_showing_their_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = "cli-egress-key-Osprey-8";
    let add = |name: &str, url: &str| {
        bifrons(
            dir.path(),
            &[
                "egress",
                "add",
                name,
                "--url",
                url,
                "--mountpoint",
                "3",
                "--key",
            ],
            &format!("{key}\n"),
        )
    };
    let o = add("cdn", "rtmp://cdn.example/live");
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("created egress target \"cdn\""));
    let o = add("cdn", "rtmp://cdn.example/live");
    assert!(!o.status.success());
    assert!(text(&o).contains("already exists"), "{}", text(&o));
    let o = add("web", "https://cdn.example/live");
    assert!(!o.status.success());
    assert!(text(&o).contains("rtmp://"), "{}", text(&o));

    let o = bifrons(dir.path(), &["egress", "list"], "");
    assert!(o.status.success(), "{}", text(&o));
    let listed = text(&o);
    assert!(listed.contains("cdn") && listed.contains("rtmp://cdn.example/live"));
    assert!(listed
        .lines()
        .any(|l| l.contains("cdn") && l.trim_end().ends_with("set")));
    assert!(!listed.contains("web"));
    assert!(!listed.contains(key));

    let o = bifrons(dir.path(), &["egress", "rm", "cdn"], "");
    assert!(o.status.success(), "{}", text(&o));
    let o = bifrons(dir.path(), &["egress", "rm", "cdn"], "");
    assert!(text(&o).contains("no egress target named"), "{}", text(&o));
    let o = bifrons(dir.path(), &["egress", "list"], "");
    assert_eq!(text(&o).lines().count(), 1, "only the header: {}", text(&o));
}

/// `egress add` applies the registry's one rule for a destination and says what is wrong: a
/// bad URL before the key is read, a missing key with the flag that gives one; a URL ending
/// with the stream name needs no key, and the mountpoint may not exist yet.
#[test]
fn egress_add_says_which_part_of_a_destination_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let add = |name: &str, url: &str, key: Option<&str>| {
        let mut args = vec!["egress", "add", name, "--url", url, "--mountpoint", "later"];
        if key.is_some() {
            args.push("--key");
        }
        bifrons(
            dir.path(),
            &args,
            &key.map(|k| format!("{k}\n")).unwrap_or_default(),
        )
    };
    for (url, key, says) in [
        (
            "srt://cdn.example/live",
            Some("k"),
            "egress url: must start with rtmp:// or rtmps://",
        ),
        (
            "rtmp://cdn.example",
            Some("k"),
            "egress url: needs an application path",
        ),
        ("rtmps:///live", Some("k"), "egress url: missing host"),
        ("rtmp://cdn.example/live", None, "a stream key is needed"),
        (
            "rtmp://cdn.example/live",
            Some("a b"),
            "egress key: must not contain",
        ),
    ] {
        let o = add("bad", url, key);
        assert!(!o.status.success(), "{url}: {}", text(&o));
        assert!(text(&o).contains(says), "{url}: {}", text(&o));
    }
    let o = add("bad", "rtmp://cdn.example/live", None);
    assert!(
        text(&o).contains("--key reads it from stdin"),
        "{}",
        text(&o)
    );
    let o = add("named", "rtmp://cdn.example/live/stream-name", None);
    assert!(o.status.success(), "{}", text(&o));
    let o = add(
        "tls",
        "rtmps://live-api-s.facebook.com:443/rtmp/",
        Some("FB-1"),
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = bifrons(dir.path(), &["egress", "list"], "");
    assert_eq!(text(&o).lines().count(), 3, "{}", text(&o));
    assert!(!text(&o).contains("bad"), "{}", text(&o));
}
