//! Download tokens of voicemail messages: what the plugin's `list` hands a mailbox owner so a
//! browser can fetch `GET /voicemail/{id}.ogg|.wav?token=...` (an `<audio>` element cannot
//! send a header). A token names one message and an expiry:
//!
//! `{expiry}.{mac}`: `expiry` in Unix seconds (decimal), `mac` the lowercase hex HMAC-SHA-256
//! (RFC 2104) of `voicemail:{id}:{expiry}` under a key drawn from the OS RNG when the process
//! starts. Nothing is stored: a restart invalidates every token (a new `list` gives new ones).
//! Checking compares the MAC in constant time.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// How long a token stays valid.
pub const TOKEN_TTL: Duration = Duration::from_secs(600);
/// Longest token text accepted, bytes (20 digits, a dot, 64 hex digits).
pub const MAX_TOKEN_LEN: usize = 85;

type HmacSha256 = Hmac<Sha256>;

fn key() -> &'static [u8; 32] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        k
    })
}

fn mac(id: i64, expiry: u64) -> HmacSha256 {
    // A 32-byte key is always accepted by HMAC.
    let mut m = HmacSha256::new_from_slice(key()).expect("HMAC takes any key length");
    m.update(format!("voicemail:{id}:{expiry}").as_bytes());
    m
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A token for message `id`, valid [`TOKEN_TTL`] from now; returns it and its expiry (Unix
/// seconds).
pub fn issue(id: i64) -> (String, u64) {
    let expiry = now_s() + TOKEN_TTL.as_secs();
    let tag = mac(id, expiry).finalize().into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    (format!("{expiry}.{hex}"), expiry)
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not `{digits}.{64 hex digits}`.
    #[error("malformed token")]
    Malformed,
    /// Past its expiry.
    #[error("token expired")]
    Expired,
    /// Made for another message, or not by this process.
    #[error("token does not match")]
    Mismatch,
}

/// The two parts of a token's text: expiry (Unix seconds) and the 32 MAC bytes.
pub fn parse(token: &str) -> Result<(u64, [u8; 32]), TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let (expiry, hex) = token.split_once('.').ok_or(TokenError::Malformed)?;
    if expiry.is_empty() || !expiry.bytes().all(|b| b.is_ascii_digit()) || hex.len() != 64 {
        return Err(TokenError::Malformed);
    }
    let expiry: u64 = expiry.parse().map_err(|_| TokenError::Malformed)?;
    let mut tag = [0u8; 32];
    for (i, pair) in hex.as_bytes().chunks_exact(2).enumerate() {
        let digit = |c: u8| (c as char).to_digit(16).ok_or(TokenError::Malformed);
        tag[i] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Ok((expiry, tag))
}

/// Checks that `token` was issued by this process for message `id` and has not expired.
pub fn verify(id: i64, token: &str) -> Result<(), TokenError> {
    let (expiry, tag) = parse(token)?;
    mac(id, expiry)
        .verify_slice(&tag)
        .map_err(|_| TokenError::Mismatch)?;
    if expiry < now_s() {
        return Err(TokenError::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_token_opens_its_message_only() {
        let (t, expiry) = issue(42);
        assert!(expiry > now_s());
        assert_eq!(verify(42, &t), Ok(()));
        assert_eq!(verify(43, &t), Err(TokenError::Mismatch));
        let mut forged = t.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == '0' { '1' } else { '0' });
        assert_eq!(verify(42, &forged), Err(TokenError::Mismatch));
        // Moving the expiry breaks the MAC.
        let (_, hex) = t.split_once('.').unwrap();
        assert_eq!(
            verify(42, &format!("{}.{hex}", expiry + 1000)),
            Err(TokenError::Mismatch)
        );
        assert_eq!(verify(42, "x"), Err(TokenError::Malformed));
        assert_eq!(verify(42, ""), Err(TokenError::Malformed));
    }

    #[test]
    fn an_expired_token_is_refused() {
        let expiry = now_s() - 1;
        let tag = mac(7, expiry).finalize().into_bytes();
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            verify(7, &format!("{expiry}.{hex}")),
            Err(TokenError::Expired)
        );
    }

    proptest! {
        #[test]
        fn any_text_is_answered_without_panic(id: i64, token in ".{0,120}") {
            prop_assert!(verify(id, &token).is_err());
        }

        #[test]
        fn near_tokens_are_refused(id: i64, expiry in 0u64..u64::MAX, hex in "[0-9a-f]{64}") {
            let token = format!("{expiry}.{hex}");
            prop_assert!(verify(id, &token).is_err());
        }
    }
}
