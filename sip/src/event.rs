//! SIP-specific event notification (RFC 6665) as a notifier needs it, and the
//! `message-summary` event package of message waiting (RFC 3842).
//!
//! [`MessageSummary`] writes and reads the `application/simple-message-summary` body
//! (RFC 3842 §5.2); [`EventHeader`] reads an `Event` header (RFC 6665 §8.2.1);
//! [`grant_expires`] picks the lifetime a notifier grants a subscription (RFC 6665
//! §4.2.1.1). The user agent keeps the subscriptions themselves (see
//! [`crate::Ua::set_event_state`]).

use std::fmt::Write;

/// Content type of a message-summary body (RFC 3842 §5.2).
pub const SIMPLE_MESSAGE_SUMMARY: &str = "application/simple-message-summary";

/// The `message-summary` event package name (RFC 3842 §4).
pub const MESSAGE_SUMMARY: &str = "message-summary";

/// Largest body [`MessageSummary::parse`] reads, bytes: a summary is a few lines.
pub const MAX_SUMMARY_BYTES: usize = 4096;

/// Counts of one message class (RFC 3842 §5.2 `msg-summary-line`: `new/old (urgent new/urgent
/// old)`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageCounts {
    /// Messages not heard yet.
    pub new: u32,
    /// Messages heard and kept.
    pub old: u32,
    /// Urgent messages among `new`.
    pub urgent_new: u32,
    /// Urgent messages among `old`.
    pub urgent_old: u32,
}

/// A message-summary document: whether messages wait, for which account, and the voice
/// message counts (the only class a mailbox of Bifrons holds).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageSummary {
    /// `Messages-Waiting: yes|no`.
    pub waiting: bool,
    /// `Message-Account: <uri>`, the mailbox, if named.
    pub account: Option<String>,
    /// `Voice-Message: new/old (urgent new/urgent old)`, if given.
    pub voice: Option<MessageCounts>,
}

/// Why a message-summary body or an `Event` header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The body is over [`MAX_SUMMARY_BYTES`].
    #[error("message-summary body over 4096 bytes")]
    TooLarge,
    /// The body is not UTF-8 text.
    #[error("message-summary body is not text")]
    NotText,
    /// The mandatory `Messages-Waiting` line is missing or not `yes`/`no`.
    #[error("message-summary body without a valid Messages-Waiting line")]
    NoStatus,
    /// A `msg-summary-line` does not read `new/old` with an optional `(new/old)`.
    #[error("malformed message count line: {0}")]
    BadCounts(String),
    /// The `Event` header has no valid package token.
    #[error("malformed Event header")]
    BadEvent,
}

impl MessageCounts {
    /// Reads `new/old` or `new/old (urgent new/urgent old)` (whitespace as RFC 3842 allows).
    fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        let (main, urgent) = match value.split_once('(') {
            Some((main, rest)) => (main, Some(rest.strip_suffix(')')?)),
            None => (value, None),
        };
        let pair = |s: &str| -> Option<(u32, u32)> {
            let (a, b) = s.split_once('/')?;
            Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
        };
        let (new, old) = pair(main)?;
        let (urgent_new, urgent_old) = match urgent {
            Some(u) => pair(u)?,
            None => (0, 0),
        };
        Some(Self {
            new,
            old,
            urgent_new,
            urgent_old,
        })
    }
}

impl MessageSummary {
    /// The summary of a voice mailbox holding `new` unheard and `old` heard messages:
    /// waiting when `new > 0`.
    pub fn voice(account: Option<String>, new: u32, old: u32) -> Self {
        Self {
            waiting: new > 0,
            account,
            voice: Some(MessageCounts {
                new,
                old,
                ..MessageCounts::default()
            }),
        }
    }

    /// The body, CRLF line ends (RFC 3842 §5.2), e.g.
    /// `Messages-Waiting: yes\r\nMessage-Account: sip:100@pbx\r\nVoice-Message: 2/8 (0/0)\r\n`.
    pub fn to_body(&self) -> String {
        let mut out = String::with_capacity(96);
        let _ = write!(
            out,
            "Messages-Waiting: {}\r\n",
            if self.waiting { "yes" } else { "no" }
        );
        if let Some(account) = &self.account {
            let _ = write!(out, "Message-Account: {account}\r\n");
        }
        if let Some(v) = &self.voice {
            let _ = write!(
                out,
                "Voice-Message: {}/{} ({}/{})\r\n",
                v.new, v.old, v.urgent_new, v.urgent_old
            );
        }
        out
    }

    /// Reads a body: the status line is required, header names are case-insensitive, lines of
    /// other message classes and of message headers (RFC 3842 §5.2 `opt-msg-headers`) are
    /// skipped.
    ///
    /// Errors: [`EventError::TooLarge`], [`EventError::NotText`], [`EventError::NoStatus`],
    /// [`EventError::BadCounts`] for a `Voice-Message` line that is not `new/old (u/u)`.
    pub fn parse(body: &[u8]) -> Result<Self, EventError> {
        if body.len() > MAX_SUMMARY_BYTES {
            return Err(EventError::TooLarge);
        }
        let text = std::str::from_utf8(body).map_err(|_| EventError::NotText)?;
        let mut summary = MessageSummary::default();
        let mut status = None;
        for line in text.lines() {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "messages-waiting" => {
                    status = match value.to_ascii_lowercase().as_str() {
                        "yes" => Some(true),
                        "no" => Some(false),
                        _ => return Err(EventError::NoStatus),
                    }
                }
                "message-account" => summary.account = Some(value.to_string()),
                "voice-message" => {
                    summary.voice =
                        Some(MessageCounts::parse(value).ok_or_else(|| {
                            EventError::BadCounts(value.chars().take(64).collect())
                        })?)
                }
                _ => {}
            }
        }
        summary.waiting = status.ok_or(EventError::NoStatus)?;
        Ok(summary)
    }
}

/// An `Event` header: package and optional `id` parameter (RFC 6665 §8.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventHeader {
    /// The package, lower-cased (`message-summary`).
    pub package: String,
    /// The `id` parameter, if any.
    pub id: Option<String>,
}

impl EventHeader {
    /// Reads `package *(;param)`; the package must be an RFC 3261 token.
    ///
    /// Errors: [`EventError::BadEvent`].
    pub fn parse(value: &str) -> Result<Self, EventError> {
        let mut parts = value.split(';');
        let package = parts.next().unwrap_or("").trim();
        let token = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
        };
        if !token(package) {
            return Err(EventError::BadEvent);
        }
        let id = parts.find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("id")
                .then(|| v.trim().to_string())
        });
        Ok(Self {
            package: package.to_ascii_lowercase(),
            id,
        })
    }

    /// The header value (`package` or `package;id=x`).
    pub fn to_value(&self) -> String {
        match &self.id {
            Some(id) => format!("{};id={id}", self.package),
            None => self.package.clone(),
        }
    }
}

/// Lifetime granted to a subscription, seconds: the requested `Expires` (or `default` without
/// one) capped at `max`; 0 stays 0 (an unsubscribe, RFC 6665 §4.2.1.4).
pub fn grant_expires(requested: Option<u32>, default: u32, max: u32) -> u32 {
    requested.unwrap_or(default).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn writes_the_rfc_3842_example_shape() {
        let s = MessageSummary::voice(Some("sip:100@pbx".into()), 2, 8);
        assert_eq!(
            s.to_body(),
            "Messages-Waiting: yes\r\nMessage-Account: sip:100@pbx\r\nVoice-Message: 2/8 (0/0)\r\n"
        );
        assert!(!MessageSummary::voice(None, 0, 3).waiting);
    }

    #[test]
    fn reads_the_rfc_3842_example() {
        let body = b"Messages-Waiting: yes\r\nMessage-Account: sip:alice@vmail.example.com\r\n\
Voice-Message: 4/8 (1/2)\r\nFax-Message: 2/1\r\n\r\nTo: <alice@example.com>\r\n";
        let s = MessageSummary::parse(body).unwrap();
        assert!(s.waiting);
        assert_eq!(s.account.as_deref(), Some("sip:alice@vmail.example.com"));
        assert_eq!(
            s.voice,
            Some(MessageCounts {
                new: 4,
                old: 8,
                urgent_new: 1,
                urgent_old: 2
            })
        );
        assert_eq!(
            MessageSummary::parse(b"messages-waiting: NO\nvoice-message: 0/1").unwrap(),
            MessageSummary {
                waiting: false,
                account: None,
                voice: Some(MessageCounts {
                    old: 1,
                    ..Default::default()
                })
            }
        );
    }

    #[test]
    fn refuses_bodies_without_status_or_with_bad_counts() {
        assert_eq!(
            MessageSummary::parse(b"Voice-Message: 1/0"),
            Err(EventError::NoStatus)
        );
        assert_eq!(
            MessageSummary::parse(b"Messages-Waiting: maybe"),
            Err(EventError::NoStatus)
        );
        assert!(matches!(
            MessageSummary::parse(b"Messages-Waiting: yes\r\nVoice-Message: x/1"),
            Err(EventError::BadCounts(_))
        ));
        assert_eq!(
            MessageSummary::parse(&[0xff, 0xfe]),
            Err(EventError::NotText)
        );
        assert_eq!(
            MessageSummary::parse(&vec![b'a'; MAX_SUMMARY_BYTES + 1]),
            Err(EventError::TooLarge)
        );
    }

    #[test]
    fn event_headers_name_the_package_and_id() {
        let e = EventHeader::parse("Message-Summary ; id=7").unwrap();
        assert_eq!(e.package, "message-summary");
        assert_eq!(e.id.as_deref(), Some("7"));
        assert_eq!(e.to_value(), "message-summary;id=7");
        assert_eq!(EventHeader::parse(""), Err(EventError::BadEvent));
        assert_eq!(EventHeader::parse("a b"), Err(EventError::BadEvent));
    }

    #[test]
    fn expiry_is_capped_and_zero_unsubscribes() {
        assert_eq!(grant_expires(None, 3600, 7200), 3600);
        assert_eq!(grant_expires(Some(99999), 3600, 7200), 7200);
        assert_eq!(grant_expires(Some(0), 3600, 7200), 0);
    }

    proptest! {
        #[test]
        fn written_summaries_read_back(waiting in any::<bool>(), new in any::<u32>(), old in any::<u32>(),
                                       un in any::<u32>(), uo in any::<u32>(), account in proptest::option::of("sip:[a-z0-9]{1,12}@[a-z.]{1,12}")) {
            let s = MessageSummary { waiting, account, voice: Some(MessageCounts { new, old, urgent_new: un, urgent_old: uo }) };
            prop_assert_eq!(MessageSummary::parse(s.to_body().as_bytes()).unwrap(), s);
        }

        #[test]
        fn any_bytes_parse_or_fail_cleanly(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = MessageSummary::parse(&body);
        }

        #[test]
        fn any_event_header_parses_or_fails_cleanly(value in ".{0,80}") {
            if let Ok(e) = EventHeader::parse(&value) {
                prop_assert!(!e.package.is_empty());
                prop_assert_eq!(EventHeader::parse(&e.to_value()).map(|x| x.package), Ok(e.package));
            }
        }
    }
}
