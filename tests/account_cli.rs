//! `bifrons account add|list` run as an operator would: `add` requires `--trunk` and `--uri`
//! (clap says so in the usage and refuses without them), `list` names each account's trunk.

use std::process::{Command, Output, Stdio};

fn bifrons(dir: &std::path::Path, args: &[&str]) -> Output {
    let url = format!("sqlite://{}", dir.join("registry.db").display());
    Command::new(env!("CARGO_BIN_EXE_bifrons"))
        .args(["--database-url", &url])
        .args(args)
        .current_dir(dir)
        .env_remove("BIFRONS_DATABASE_URL")
        .stdin(Stdio::null())
        .output()
        .expect("run bifrons")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn account_add_requires_trunk_and_uri_in_its_usage() {
    let dir = tempfile::tempdir().unwrap();
    let help = text(&bifrons(dir.path(), &["account", "add", "--help"]));
    let usage = help
        .lines()
        .find(|l| l.starts_with("Usage:"))
        .unwrap_or_default();
    assert!(usage.contains("--trunk <TRUNK>"), "{help}");
    assert!(usage.contains("--uri <URI>"), "{help}");
    let o = bifrons(dir.path(), &["account", "add", "100"]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("required arguments were not provided"),
        "{}",
        text(&o)
    );
}

#[test]
fn account_list_names_the_trunk() {
    let dir = tempfile::tempdir().unwrap();
    let o = bifrons(
        dir.path(),
        &[
            "trunk",
            "add",
            "carrier",
            "--registrar",
            "sip:pbx.example.com",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = bifrons(
        dir.path(),
        &[
            "account",
            "add",
            "100",
            "--trunk",
            "carrier",
            "--uri",
            "sip:100@pbx.example.com",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = bifrons(dir.path(), &["account", "list"]);
    assert!(o.status.success(), "{}", text(&o));
    let listed = text(&o);
    let row = listed
        .lines()
        .find(|l| l.contains("sip:100@pbx.example.com"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .unwrap_or_default();
    assert_eq!(row.get(3), Some(&"carrier"), "{listed}");
}
