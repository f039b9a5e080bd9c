//! Bifrons' own types for registry rows: ids, times, enums and paging.
//!
//! Repositories return these, never sqlx rows, so callers (web routes, plugins, the CLI) do not
//! depend on the database crate.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use super::error::StorageError;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// Row id of an admin-panel user.
    UserId
);
id_type!(
    /// Row id of a SIP trunk.
    TrunkId
);
id_type!(
    /// Row id of a SIP account.
    AccountId
);
id_type!(
    /// Row id of a stream key (not the secret key itself).
    StreamKeyId
);
id_type!(
    /// Row id of a recording.
    RecordingId
);

/// A point in time as Unix milliseconds: the one representation both SQL dialects store natively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Self {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Timestamp(ms)
    }

    /// Milliseconds since the Unix epoch.
    pub fn as_millis(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Timestamp {
    /// `YYYY-MM-DD HH:MM:SS UTC`, computed with the proleptic Gregorian calendar.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.div_euclid(1000);
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    }
}

/// Converts days since 1970-01-01 to (year, month, day), counting in 400-year eras so the
/// leap-year rules fall out of integer division.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Which rows of a list to return. `limit` is clamped to [`Page::MAX_LIMIT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Rows to skip.
    pub offset: u64,
    /// Rows to return at most.
    pub limit: u32,
}

impl Page {
    /// Largest page a single query returns, so a list call can never load a whole table.
    pub const MAX_LIMIT: u32 = 1000;

    /// The first `limit` rows.
    pub fn first(limit: u32) -> Self {
        Page { offset: 0, limit }
    }

    /// `(limit, offset)` as the i64 pair SQL binds take.
    pub(crate) fn sql_bounds(self) -> (i64, i64) {
        let limit = i64::from(self.limit.min(Self::MAX_LIMIT));
        let offset = i64::try_from(self.offset).unwrap_or(i64::MAX);
        (limit, offset)
    }
}

impl Default for Page {
    fn default() -> Self {
        Page {
            offset: 0,
            limit: 100,
        }
    }
}

/// Declares a string-backed enum stored as TEXT with a CHECK constraint in both dialects.
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// The value as stored in the database and shown to users.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = StorageError;

            fn from_str(s: &str) -> Result<Self, StorageError> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(StorageError::Invalid {
                        field: $what,
                        reason: format!("unknown value {other:?}"),
                    }),
                }
            }
        }
    };
}

text_enum!(
    /// What an admin-panel user may do.
    Role, "role" {
        /// Full control over the registry and live sessions.
        Admin => "admin",
        /// Read-only access.
        Viewer => "viewer",
    }
);

text_enum!(
    /// SIP transport towards a trunk.
    Transport, "transport" {
        /// SIP over UDP.
        Udp => "udp",
        /// SIP over TCP.
        Tcp => "tcp",
        /// SIP over TLS.
        Tls => "tls",
    }
);

text_enum!(
    /// How DTMF digits are sent to a trunk.
    DtmfMode, "dtmf mode" {
        /// RTP telephone-events (RFC 4733).
        Rfc4733 => "rfc4733",
        /// SIP INFO requests.
        Info => "info",
        /// In-band audio tones.
        Inband => "inband",
    }
);

text_enum!(
    /// SDES-SRTP a trunk requires towards its PBX (RFC 4568; Janus' `srtp` names).
    TrunkSrtp, "srtp" {
        /// No requirement: plain RTP unless the browser's `call`/`accept` asks for SRTP.
        Off => "off",
        /// Offer crypto lines in RTP/AVP; a PBX without SRTP still gets plain RTP.
        Optional => "sdes_optional",
        /// RTP/SAVP only: a call without SRTP fails (488 / 452).
        Mandatory => "sdes_mandatory",
    }
);

text_enum!(
    /// Where a recording came from.
    RecordingKind, "recording kind" {
        /// A voicemail message left in a mailbox.
        Voicemail => "voicemail",
        /// An audio/video room recording.
        Room => "room",
        /// A recorded stream (RTMP ingest or mountpoint).
        Stream => "stream",
        /// A recorded SIP call.
        Call => "call",
        /// An echo test's recording of the user's own media.
        Echotest => "echotest",
    }
);

/// A credential kept out of logs: `Debug` prints `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The credential itself, for the one place that needs it (digest auth, RTMP publish).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_through_their_stored_text() {
        for r in [Role::Admin, Role::Viewer] {
            assert_eq!(r.as_str().parse::<Role>().ok(), Some(r));
        }
        for k in [
            RecordingKind::Voicemail,
            RecordingKind::Room,
            RecordingKind::Stream,
            RecordingKind::Call,
            RecordingKind::Echotest,
        ] {
            assert_eq!(k.as_str().parse::<RecordingKind>().ok(), Some(k));
        }
        assert!(matches!(
            "ADMIN".parse::<Role>(),
            Err(StorageError::Invalid { field: "role", .. })
        ));
    }

    #[test]
    fn timestamps_print_as_utc_dates() {
        assert_eq!(Timestamp(0).to_string(), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            Timestamp(951_782_400_000).to_string(),
            "2000-02-29 00:00:00 UTC"
        );
        assert_eq!(
            Timestamp(1_700_000_000_123).to_string(),
            "2023-11-14 22:13:20 UTC"
        );
        assert_eq!(Timestamp(-1000).to_string(), "1969-12-31 23:59:59 UTC");
    }

    #[test]
    fn page_limit_is_clamped() {
        assert_eq!(Page::first(1_000_000).sql_bounds(), (1000, 0));
        assert_eq!(
            Page {
                offset: u64::MAX,
                limit: 5
            }
            .sql_bounds(),
            (5, i64::MAX)
        );
    }

    #[test]
    fn secret_debug_does_not_leak() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
    }
}
