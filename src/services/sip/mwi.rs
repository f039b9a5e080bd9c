//! Message waiting towards SIP phones (RFC 3842): the message-summary of a mailbox goes out on
//! its account's line. In [`MwiMode::Subscribe`] the line's user agent serves SUBSCRIBE
//! `Event: message-summary` (a phone sharing the account's address of record reaches it
//! through the PBX, which forks the SUBSCRIBE to every registered contact) and NOTIFYs every
//! subscriber when the counts change; in [`MwiMode::Unsolicited`] each change is a NOTIFY
//! outside any subscription to the account's address of record, through the trunk.

use bifrons_sip::event::{MessageSummary, MESSAGE_SUMMARY, SIMPLE_MESSAGE_SUMMARY};

use super::lines::{AccountLine, LinePool};

pub use crate::storage::MwiMode;

/// What went out for one change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MwiOutcome {
    /// Subscribers notified (subscribe mode).
    pub notified: usize,
    /// Status of the unsolicited NOTIFY (unsolicited mode), if one was sent.
    pub unsolicited: Option<u16>,
}

/// Sends the summary of `new` unheard and `old` heard messages on `line` as `mode` says.
pub async fn publish_on(line: &AccountLine, mode: MwiMode, new: u32, old: u32) -> MwiOutcome {
    let summary = MessageSummary::voice(Some(line.spec.aor.clone()), new, old);
    let body = summary.to_body().into_bytes();
    let mut outcome = MwiOutcome::default();
    match mode {
        MwiMode::Off => {}
        MwiMode::Subscribe => {
            match line
                .ua
                .set_event_state(MESSAGE_SUMMARY, SIMPLE_MESSAGE_SUMMARY, body)
                .await
            {
                Ok(n) => outcome.notified = n,
                Err(e) => {
                    tracing::info!(error = %e, extension = %line.spec.extension, "message-summary not published")
                }
            }
        }
        MwiMode::Unsolicited => {
            match line
                .ua
                .notify_unsolicited(
                    &line.spec.aor,
                    MESSAGE_SUMMARY,
                    SIMPLE_MESSAGE_SUMMARY,
                    body,
                )
                .await
            {
                Ok(code) => outcome.unsolicited = Some(code),
                Err(e) => {
                    tracing::info!(error = %e, extension = %line.spec.extension, "unsolicited NOTIFY failed")
                }
            }
        }
    }
    tracing::info!(extension = %line.spec.extension, ?mode, new, old, notified = outcome.notified, unsolicited = outcome.unsolicited, "message-summary sent");
    outcome
}

/// [`publish_on`] the open line of `extension`; `None` when the account has no line open
/// (nobody could subscribe to it then: the next line opened publishes the state).
pub async fn publish(
    lines: &LinePool,
    extension: &str,
    mode: MwiMode,
    new: u32,
    old: u32,
) -> Option<MwiOutcome> {
    let line = lines
        .open()
        .await
        .into_iter()
        .find(|l| l.spec.extension == extension)?;
    Some(publish_on(&line, mode, new, old).await)
}
