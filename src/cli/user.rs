//! `bifrons user add` and `bifrons user list`.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::{bail, Context};
use bifrons::storage::{validate, NewUser, Page, Role, Storage, StorageError};

/// Creates a user; the password comes from stdin (first line) or a hidden prompt on a terminal.
/// The name is checked before the password is asked for; the message names the database
/// written to, so that a user added to the wrong one is noticed at once.
pub async fn add(url: &str, name: &str, role: Role) -> anyhow::Result<ExitCode> {
    validate::username(name)?;
    let password = read_password()?;
    let storage = Storage::open(url)
        .await
        .map_err(|e| super::open_error(url, e))?;
    let result = storage
        .users()
        .create(
            &NewUser {
                username: name.to_owned(),
                role,
            },
            &password,
        )
        .await;
    storage.close().await;
    match result {
        Ok(user) => {
            println!(
                "created {} user {:?} (id {}) in {}",
                user.role,
                user.username,
                user.id,
                super::display_url(url)
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(StorageError::AlreadyExists { .. }) => bail!("a user named {name:?} already exists"),
        Err(e) => Err(e.into()),
    }
}

fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Repeat password: ")?;
        if first != again {
            bail!("the passwords differ");
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        bail!("no password on stdin");
    }
    Ok(password)
}

/// Prints every user, one per line.
pub async fn list(url: &str) -> anyhow::Result<ExitCode> {
    let storage = Storage::open(url)
        .await
        .map_err(|e| super::open_error(url, e))?;
    println!(
        "{:>6}  {:<24} {:<7} {:<24} last login",
        "id", "username", "role", "created"
    );
    let mut page = Page::first(Page::MAX_LIMIT);
    loop {
        let users = storage.users().list(page).await?;
        for u in &users {
            println!(
                "{:>6}  {:<24} {:<7} {:<24} {}",
                u.id,
                u.username,
                u.role,
                u.created.to_string(),
                u.last_login
                    .map_or_else(|| "never".to_owned(), |t| t.to_string())
            );
        }
        if users.len() < page.limit as usize {
            break;
        }
        page.offset += u64::from(page.limit);
    }
    storage.close().await;
    Ok(ExitCode::SUCCESS)
}
