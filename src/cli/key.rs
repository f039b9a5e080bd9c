//! `bifrons key add|list|revoke`: RTMP stream keys of the registry, each feeding one streaming
//! mountpoint. The key is printed once, at creation, inside the exact URL to paste into OBS.

use std::process::ExitCode;

use anyhow::bail;
use bifrons::config::{RtmpConfig, WhepConfig};
use bifrons::storage::{NewStreamKey, Page, Storage, StorageError, StreamKey};

/// Who keys made on the command line belong to.
const CLI_OWNER: &str = "cli";

/// The RTMP server URL publishers use (`rtmp://HOST[:PORT]/APP`), without the key.
pub fn server_url(rtmp: &RtmpConfig) -> String {
    if rtmp.port == 1935 {
        format!("rtmp://{}/{}", rtmp.public_host, rtmp.app)
    } else {
        format!("rtmp://{}:{}/{}", rtmp.public_host, rtmp.port, rtmp.app)
    }
}

/// The WHIP endpoint of mountpoint `mountpoint` (RFC 9725; served on the `[whep]` listener):
/// `http://HOST:PORT/whip/ID`, with `[rtmp] public_host` as the host. The stream key is the
/// bearer token.
pub fn whip_url(rtmp: &RtmpConfig, whep: &WhepConfig, mountpoint: u64) -> String {
    format!(
        "http://{}:{}/whip/{mountpoint}",
        rtmp.public_host, whep.port
    )
}

/// Creates a key named `name` feeding mountpoint `mountpoint` (or the one numbered like the
/// key) and prints it once, with the URL and OBS' two fields.
pub async fn add(
    url: &str,
    rtmp: &RtmpConfig,
    whep: &WhepConfig,
    name: &str,
    mountpoint: Option<u64>,
) -> anyhow::Result<ExitCode> {
    if mountpoint == Some(0) {
        bail!("--mountpoint: an id from 1");
    }
    let storage = Storage::open(url)
        .await
        .map_err(|e| super::open_error(url, e))?;
    let result = create(&storage, name, mountpoint).await;
    storage.close().await;
    let key = match result {
        Ok(key) => key,
        Err(StorageError::AlreadyExists { .. }) => {
            bail!("a stream key named {name:?} already exists")
        }
        Err(e) => return Err(e.into()),
    };
    let server = server_url(rtmp);
    println!(
        "created stream key {:?} (id {}) feeding mountpoint {}",
        key.name,
        key.id,
        key.mountpoint_id()
    );
    println!("The key is shown only this once: keep it secret.");
    println!("  RTMP URL:   {server}/{}", key.key.expose());
    println!("  OBS Server: {server}");
    println!("  OBS Stream Key: {}", key.key.expose());
    println!(
        "  WHIP URL:   {} (bearer token: the stream key{})",
        whip_url(rtmp, whep, key.mountpoint_id()),
        if whep.enabled {
            ""
        } else {
            "; needs [whep] enabled"
        }
    );
    Ok(ExitCode::SUCCESS)
}

async fn create(
    storage: &Storage,
    name: &str,
    mountpoint: Option<u64>,
) -> Result<StreamKey, StorageError> {
    let keys = storage.stream_keys();
    let key = keys
        .create(&NewStreamKey {
            name: name.to_owned(),
            owner: CLI_OWNER.to_owned(),
            enabled: true,
        })
        .await?;
    if mountpoint.is_some() {
        if let Err(e) = keys.set_mountpoint(key.id, mountpoint).await {
            let _ = keys.delete(key.id).await;
            return Err(e);
        }
    }
    let mut key = key;
    key.mountpoint = mountpoint;
    Ok(key)
}

/// Every key, one per line: id, name, owner, mountpoint, state, last use (never the secret).
pub async fn list(url: &str) -> anyhow::Result<ExitCode> {
    let storage = Storage::open(url)
        .await
        .map_err(|e| super::open_error(url, e))?;
    let keys = all(&storage).await;
    storage.close().await;
    println!(
        "{:>6}  {:<24} {:<16} {:>10}  {:<8} last used",
        "id", "name", "owner", "mountpoint", "state"
    );
    for k in keys? {
        println!(
            "{:>6}  {:<24} {:<16} {:>10}  {:<8} {}",
            k.id,
            k.name,
            k.owner,
            k.mountpoint_id(),
            if k.enabled { "enabled" } else { "disabled" },
            k.last_used
                .map_or_else(|| "never".to_owned(), |t| t.to_string())
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn all(storage: &Storage) -> Result<Vec<StreamKey>, StorageError> {
    let mut out = Vec::new();
    let mut page = Page::first(Page::MAX_LIMIT);
    loop {
        let keys = storage.stream_keys().list(page).await?;
        let n = keys.len();
        out.extend(keys);
        if n < page.limit as usize {
            return Ok(out);
        }
        page.offset += u64::from(page.limit);
    }
}

/// Deletes the key named `name`: publishes with it are refused from now on (a live publish
/// goes on until the encoder disconnects).
pub async fn revoke(url: &str, name: &str) -> anyhow::Result<ExitCode> {
    let storage = Storage::open(url)
        .await
        .map_err(|e| super::open_error(url, e))?;
    let outcome = async {
        let Some(key) = all(&storage).await?.into_iter().find(|k| k.name == name) else {
            return Ok(false);
        };
        storage.stream_keys().delete(key.id).await.map(|()| true)
    }
    .await;
    storage.close().await;
    match outcome {
        Ok(true) => {
            println!("revoked stream key {name:?}");
            Ok(ExitCode::SUCCESS)
        }
        Ok(false) => bail!("no stream key named {name:?}"),
        Err(e) => Err(e.into()),
    }
}
