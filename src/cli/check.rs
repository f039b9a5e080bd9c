//! `bifrons --check-config`: the configuration loaded (done by the caller), then the database
//! URL checked the way the gateway will use it, without creating or changing anything.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use bifrons::config::sqlite_path;
use bifrons::storage::{backend_of, Backend};
use sqlx::{Connection, PgConnection};

use super::display_url;

/// How long a PostgreSQL server may take to answer before the check gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Prints `configuration OK` and what the database check found, or the problem (exit 2, as a
/// configuration error).
pub fn run(url: &str) -> ExitCode {
    match check_database(url) {
        Ok(found) => {
            println!("configuration OK");
            println!("database: {found}");
            ExitCode::SUCCESS
        }
        Err(problem) => {
            eprintln!("bifrons: configuration error: database URL: {problem}");
            ExitCode::from(2)
        }
    }
}

fn check_database(url: &str) -> Result<String, String> {
    let shown = display_url(url);
    match backend_of(url) {
        Err(_) => {
            let scheme = url.split_once(':').map_or(url, |(s, _)| s);
            Err(format!(
                "'{shown}': unsupported scheme '{scheme}' (use sqlite://PATH or \
                 postgres://USER:PASSWORD@HOST/DATABASE)"
            ))
        }
        Ok(Backend::Sqlite) => match sqlite_path(url) {
            None => Ok(format!("{shown} (in memory)")),
            Some(path) => check_sqlite_file(&path).map(|state| format!("{shown} ({state})")),
        },
        Ok(Backend::Postgres) => {
            let runtime = tokio::runtime::Runtime::new()
                .map_err(|e| format!("cannot start the async runtime: {e}"))?;
            runtime.block_on(async {
                // One connection, no pool: a pool retries a refused connection until its
                // acquire timeout, and the check should answer at once.
                let connect = async {
                    let mut connection = PgConnection::connect(url).await?;
                    let version: String = sqlx::query_scalar("SHOW server_version")
                        .fetch_one(&mut connection)
                        .await?;
                    connection.close().await?;
                    Ok::<_, sqlx::Error>(version)
                };
                match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
                    Ok(Ok(version)) => Ok(format!("{shown} (connected, PostgreSQL {version})")),
                    Ok(Err(e)) => Err(format!("'{shown}': cannot connect: {e}")),
                    Err(_) => Err(format!(
                        "'{shown}': no answer within {} s",
                        CONNECT_TIMEOUT.as_secs()
                    )),
                }
            })
        }
    }
}

/// An existing database file must be a writable file; a missing one needs a folder that exists
/// and is writable, or can be created (its nearest existing ancestor is writable).
fn check_sqlite_file(path: &Path) -> Result<String, String> {
    let shown = path.display();
    if path.exists() {
        if !path.is_file() {
            return Err(format!("{shown} is not a file"));
        }
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| format!("{shown} cannot be opened for writing: {e}"))?;
        return Ok("exists, writable".into());
    }
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut existing: PathBuf = folder.to_path_buf();
    while !existing.exists() {
        match existing.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => existing = parent.to_path_buf(),
            _ => existing = PathBuf::from("."),
        }
    }
    if !existing.is_dir() {
        return Err(format!(
            "cannot create {shown}: {} is not a folder",
            existing.display()
        ));
    }
    writable(&existing).map_err(|e| {
        format!(
            "cannot create {shown}: folder {} is not writable ({e})",
            existing.display()
        )
    })?;
    Ok(if existing == folder {
        "will be created".into()
    } else {
        format!("will be created with folder {}", folder.display())
    })
}

/// Creates and removes a probe file: permission bits alone do not tell (root, ACLs,
/// read-only mounts).
fn writable(folder: &Path) -> std::io::Result<()> {
    let probe = folder.join(format!(".bifrons-check-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}
