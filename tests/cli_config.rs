//! Configuration and command-line errors as an operator meets them: each names where the bad
//! value came from, `--check-config` checks the database URL, `--help` says what no subcommand
//! does, and `user add` says where it wrote.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn bifrons(dir: &Path, args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bifrons"))
        .args(args)
        .current_dir(dir)
        .env_remove("BIFRONS_DATABASE_URL")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run bifrons");
    // Early failures exit without reading stdin: a broken pipe here is expected.
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

fn check_config(dir: &Path, env: &[(&str, &str)]) -> Output {
    std::fs::write(dir.join("b.toml"), "[http]\nport = 8088\n").unwrap();
    bifrons(dir, &["--config", "b.toml", "--check-config"], env, "")
}

#[test]
fn environment_mistakes_name_the_variable_not_the_file() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value, expect) in [
        ("BIFRONS_HTTP_PORT", "abc", "invalid type"),
        ("BIFRONS_HTTP_PROT", "8080", "unknown field `prot`"),
        ("BIFRONS_FOO_BAR", "1", "unknown section 'foo'"),
    ] {
        let out = check_config(dir.path(), &[(var, value)]);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(2), "{var}: {said}");
        assert!(
            said.contains(&format!("environment variable {var}:")),
            "{var}: {said}"
        );
        assert!(said.contains(expect), "{var}: {said}");
        assert!(!said.contains("b.toml"), "the file is not to blame: {said}");
    }
    let out = check_config(dir.path(), &[("BIFRONS_HTTP_PORT", "9000")]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn check_config_checks_the_database_url() {
    let dir = tempfile::tempdir().unwrap();
    let ok = check_config(
        dir.path(),
        &[("BIFRONS_DATABASE_URL", "sqlite://new/dir/x.db")],
    );
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(text(&ok).contains("configuration OK"), "{}", text(&ok));
    assert!(
        !dir.path().join("new").exists(),
        "the check creates nothing"
    );

    let mysql = check_config(dir.path(), &[("BIFRONS_DATABASE_URL", "mysql://u:pw@h/db")]);
    assert_eq!(mysql.status.code(), Some(2), "{}", text(&mysql));
    assert!(
        text(&mysql).contains("unsupported scheme 'mysql'"),
        "{}",
        text(&mysql)
    );
    assert!(
        !text(&mysql).contains("pw@"),
        "password hidden: {}",
        text(&mysql)
    );

    // A folder below a file cannot be created.
    std::fs::write(dir.path().join("plain"), b"").unwrap();
    let blocked = check_config(
        dir.path(),
        &[("BIFRONS_DATABASE_URL", "sqlite://plain/x.db")],
    );
    assert_eq!(blocked.status.code(), Some(2), "{}", text(&blocked));
    assert!(
        text(&blocked).contains("not a folder"),
        "{}",
        text(&blocked)
    );

    // Nothing listens on port 1: the connection is refused at once.
    let pg = check_config(
        dir.path(),
        &[("BIFRONS_DATABASE_URL", "postgres://u:pw@127.0.0.1:1/db")],
    );
    assert_eq!(pg.status.code(), Some(2), "{}", text(&pg));
    assert!(text(&pg).contains("cannot connect"), "{}", text(&pg));
}

#[test]
fn help_says_no_subcommand_starts_the_gateway_and_lists_roles() {
    let dir = tempfile::tempdir().unwrap();
    let help = text(&bifrons(dir.path(), &["--help"], &[], ""));
    assert!(
        help.contains("Without a subcommand, bifrons starts the gateway"),
        "{help}"
    );
    let add = text(&bifrons(dir.path(), &["user", "add", "--help"], &[], ""));
    assert!(add.contains("admin") && add.contains("viewer"), "{add}");
    let bad = bifrons(dir.path(), &["user", "add", "x", "--role", "root"], &[], "");
    assert!(!bad.status.success());
    assert!(
        text(&bad).contains("[possible values: admin, viewer]"),
        "{}",
        text(&bad)
    );
}

#[test]
fn user_add_names_the_database_and_refuses_odd_names() {
    let dir = tempfile::tempdir().unwrap();
    let out = bifrons(
        dir.path(),
        &["user", "add", "alice"],
        &[],
        "a long password\n",
    );
    assert!(out.status.success(), "{}", text(&out));
    let db = dir.path().canonicalize().unwrap().join("data/bifrons.db");
    assert!(
        text(&out).contains(&format!("in sqlite://{}", db.display())),
        "{}",
        text(&out)
    );

    let odd = bifrons(
        dir.path(),
        &["user", "add", "a b/c"],
        &[],
        "a long password\n",
    );
    assert!(!odd.status.success());
    assert!(text(&odd).contains("invalid username"), "{}", text(&odd));
}

#[test]
fn db_check_on_a_missing_file_says_so_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = bifrons(
        dir.path(),
        &["--database-url", "sqlite://missing.db", "db", "check"],
        &[],
        "",
    );
    assert!(!out.status.success());
    assert_eq!(
        text(&out).matches("no database there").count(),
        1,
        "{}",
        text(&out)
    );
    assert!(!dir.path().join("missing.db").exists());
}

#[test]
fn check_config_connects_to_postgres() {
    let pg = support::pg::PgServer::start();
    let dir = tempfile::tempdir().unwrap();
    let out = check_config(dir.path(), &[("BIFRONS_DATABASE_URL", pg.url().as_str())]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("(connected, PostgreSQL "),
        "{}",
        text(&out)
    );
}
