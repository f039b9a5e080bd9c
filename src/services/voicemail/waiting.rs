//! Message waiting of a mailbox: when a message lands, is heard or is deleted, the mailbox's
//! counts go to every browser registered for the extension (a `voicemail` event, for a new
//! message) and to SIP phones on the account's line ([`crate::services::sip::mwi`], RFC 3842).

use std::sync::Arc;

use crate::services::sip::mwi::{self, MwiMode};
use crate::services::sip::{AccountLine, InboundRouter, SipService, VoicemailNotice};
use crate::storage::{RecordingFilter, RecordingKind, Storage};

/// Tells browsers and phones how many messages a mailbox holds.
pub struct MessageWaiting {
    storage: Storage,
    router: Arc<InboundRouter>,
    /// The lines phones are told on; `None`: browsers only.
    sip: Option<Arc<SipService>>,
    /// The mode of mailboxes whose own setting is `off` (`[voicemail] mwi`).
    default_mode: MwiMode,
}

/// Unheard and heard messages of a mailbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Messages not heard yet.
    pub new: u32,
    /// Messages heard.
    pub old: u32,
}

impl MessageWaiting {
    /// Message waiting for browsers (through `router`) only.
    pub fn browsers_only(storage: Storage, router: Arc<InboundRouter>) -> Self {
        Self {
            storage,
            router,
            sip: None,
            default_mode: MwiMode::Off,
        }
    }

    /// Message waiting for browsers and for SIP phones on `sip`'s lines, as each mailbox's
    /// setting says (`default_mode` for mailboxes set to `off`).
    pub fn new(storage: Storage, sip: Arc<SipService>, default_mode: MwiMode) -> Self {
        Self {
            storage,
            router: sip.router.clone(),
            sip: Some(sip),
            default_mode,
        }
    }

    /// How the mailbox of `extension` tells phones: its own setting, else the default.
    async fn mode(&self, extension: &str) -> MwiMode {
        match self.storage.mailboxes().get_by_extension(extension).await {
            Ok(m) if m.settings.mwi != MwiMode::Off => m.settings.mwi,
            _ => self.default_mode,
        }
    }

    /// The mailbox's counts now (zero when the registry cannot be read).
    pub async fn counts(&self, extension: &str) -> Counts {
        let recordings = self.storage.recordings();
        let mut filter = RecordingFilter {
            kind: Some(RecordingKind::Voicemail),
            owner: Some(extension.to_owned()),
            heard: None,
        };
        let total = recordings.count(&filter).await.unwrap_or(0);
        filter.heard = Some(false);
        let new = recordings.count(&filter).await.unwrap_or(0);
        let clamp = |n: i64| u32::try_from(n.max(0)).unwrap_or(u32::MAX);
        Counts {
            new: clamp(new),
            old: clamp(total - new),
        }
    }

    /// A message landed: browsers get a `voicemail` event, phones the new counts.
    pub async fn landed(&self, extension: &str, recording_id: i64, caller: &str) {
        let counts = self.counts(extension).await;
        let told = self.router.dispatch_voicemail(&VoicemailNotice {
            extension: extension.to_owned(),
            recording_id,
            caller: caller.to_owned(),
            new: i64::from(counts.new),
            total: i64::from(counts.new) + i64::from(counts.old),
        });
        tracing::info!(mailbox = %extension, new = counts.new, old = counts.old, told, "message waiting");
        self.to_phones(extension, counts).await;
    }

    /// A message was heard or deleted: phones get the new counts.
    pub async fn changed(&self, extension: &str) {
        let counts = self.counts(extension).await;
        self.to_phones(extension, counts).await;
    }

    /// Publishes the counts on a line just opened (what a later SUBSCRIBE gets first).
    pub async fn publish_line(&self, line: &AccountLine) {
        let mode = self.mode(&line.spec.extension).await;
        if mode == MwiMode::Off {
            return;
        }
        let counts = self.counts(&line.spec.extension).await;
        // An unsolicited NOTIFY of an empty mailbox at each line opening tells nothing new.
        if mode == MwiMode::Unsolicited && counts.new == 0 {
            return;
        }
        mwi::publish_on(line, mode, counts.new, counts.old).await;
    }

    async fn to_phones(&self, extension: &str, counts: Counts) {
        let Some(sip) = &self.sip else { return };
        let mode = self.mode(extension).await;
        if mode == MwiMode::Off {
            return;
        }
        if mwi::publish(&sip.lines, extension, mode, counts.new, counts.old)
            .await
            .is_none()
        {
            tracing::info!(mailbox = %extension, "message waiting: no line open for the account");
        }
    }
}
