//! Voicemail state shared by every handle and call: the answering machine of accounts with a
//! mailbox ([`machine`], encoding on the workers with [`encoder`]) and the start-up recovery of
//! messages cut short by a crash ([`recovery`]). For SIP phones: the mailbox lines kept
//! registered without any browser ([`lines`]), message waiting to browsers and phones
//! ([`waiting`]), and the mailbox menu of the mailbox extension ([`menu`]: keyed entries
//! [`digits`], message playback [`player`], the tones of both [`tones`]).

pub mod digits;
pub mod encoder;
pub mod lines;
pub mod machine;
pub mod menu;
pub mod player;
pub mod recovery;
pub mod tones;
pub mod waiting;

pub use machine::AnsweringMachine;
pub use recovery::{recover_interrupted, scan_ogg_opus, OggExtent};

use std::sync::Arc;

/// What the SIP side of the mailboxes starts with.
pub struct SipMailboxes {
    /// The registry.
    pub storage: crate::storage::Storage,
    /// Lines and router.
    pub sip: Arc<crate::services::sip::SipService>,
    /// Where messages are (`[recordings] dir`).
    pub recordings_dir: std::path::PathBuf,
    /// Codec workers (message playback).
    pub workers: Arc<crate::services::workers::WorkerPool>,
    /// `[sip]`.
    pub sip_config: crate::config::SipConfig,
    /// `[voicemail]`.
    pub config: crate::config::VoicemailConfig,
}

impl SipMailboxes {
    /// Starts keeping the mailbox lines (and the mailbox extension's menu) until `shutdown`;
    /// returns the message waiting the answering machine tells of new messages.
    pub fn start(
        self,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Arc<waiting::MessageWaiting> {
        let mode = self.config.mwi.parse().unwrap_or_default();
        let waiting = Arc::new(waiting::MessageWaiting::new(
            self.storage.clone(),
            self.sip.clone(),
            mode,
        ));
        let menu = Arc::new(menu::MenuTarget::new(
            self.storage.clone(),
            self.recordings_dir,
            self.workers,
            waiting.clone(),
        ));
        let every = (self.sip_config.registry_poll > 0)
            .then(|| std::time::Duration::from_secs(self.sip_config.registry_poll));
        let keeper = lines::MailboxLines {
            storage: self.storage,
            sip: self.sip,
            sip_config: self.sip_config,
            config: self.config,
            waiting: waiting.clone(),
            menu,
        };
        tokio::spawn(keeper.run(every, shutdown));
        waiting
    }
}
