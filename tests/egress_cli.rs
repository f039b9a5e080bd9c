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
