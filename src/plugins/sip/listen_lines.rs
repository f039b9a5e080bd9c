//! Opens the lines of listen-line accounts (bound to a streaming mountpoint in the registry,
//! `bifrons account edit NAME --listen MOUNTPOINT`) without any browser: at start-up and at
//! each registry poll, a newly bound account's line is opened (registered through its trunk)
//! with a [`ListenTarget`] in the router, and an unbound or deleted account's line is let go.
//! What the calls do is the SIP service's [`crate::services::sip::listen`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::register::SIP_CODECS;
use super::Shared;
use crate::services::sip::listen::{ListenMedia, ListenStats, ListenTarget};
use crate::services::sip::{open_account_line, AccountLine, RouteGuard};
use crate::storage::Account;

/// A listen line kept open.
struct Held {
    mountpoint: u64,
    _route: RouteGuard,
    _line: Arc<AccountLine>,
}

/// Keeps the listen lines in step with the registry: now, then every `every` (`None`: only
/// at start-up), until `shutdown`.
pub(super) async fn keep_listen_lines(
    shared: Arc<Shared>,
    media: ListenMedia,
    every: Option<Duration>,
    shutdown: CancellationToken,
) {
    let stats = Arc::new(ListenStats::default());
    let mut held: HashMap<String, Held> = HashMap::new();
    loop {
        sync(&shared, &media, &stats, &mut held).await;
        let Some(every) = every else {
            shutdown.cancelled().await;
            return;
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

async fn sync(
    shared: &Arc<Shared>,
    media: &ListenMedia,
    stats: &Arc<ListenStats>,
    held: &mut HashMap<String, Held>,
) {
    let wanted = match shared.storage.accounts().listen_lines().await {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "listen lines: registry unreadable");
            return;
        }
    };
    held.retain(|extension, h| {
        let keep = wanted
            .iter()
            .any(|(a, m)| &a.spec.extension == extension && *m == h.mountpoint);
        if !keep {
            tracing::info!(%extension, mountpoint = h.mountpoint, "listen line closed: binding gone");
        }
        keep
    });
    for (account, mountpoint) in wanted {
        if held.contains_key(&account.spec.extension) {
            continue;
        }
        match open(shared, media, stats, &account, mountpoint).await {
            Ok(h) => {
                tracing::info!(extension = %account.spec.extension, mountpoint, "listen line open");
                held.insert(account.spec.extension.clone(), h);
            }
            Err(e) => {
                tracing::warn!(extension = %account.spec.extension, mountpoint, error = %e, "listen line not opened (retried at the next registry poll)");
            }
        }
    }
}

async fn open(
    shared: &Arc<Shared>,
    media: &ListenMedia,
    stats: &Arc<ListenStats>,
    account: &Account,
    mountpoint: u64,
) -> anyhow::Result<Held> {
    let (line, _) = open_account_line(
        &shared.service,
        &shared.storage,
        &shared.config,
        account,
        &SIP_CODECS,
    )
    .await?;
    let target = Arc::new(ListenTarget::new(media.clone(), mountpoint, stats.clone()));
    let route = shared
        .service
        .router
        .register(&account.spec.extension, target);
    Ok(Held {
        mountpoint,
        _route: route,
        _line: line,
    })
}
