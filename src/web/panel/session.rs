//! Panel sessions: an opaque random id in an `HttpOnly`, `SameSite=Strict` cookie, and a CSRF
//! token the pages send back in `X-CSRF-Token` on every write.
//!
//! Sessions live in memory: a restart logs everybody out, which is the safe default for an
//! admin tool. A session only remembers *who*; the user's role is read from the registry on
//! each request, so a demoted or deleted user loses rights at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::storage::UserId;

/// Name of the session cookie.
pub const COOKIE_NAME: &str = "bifrons_panel";
/// Header carrying the CSRF token on writes.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Random bytes in a session id and in a CSRF token (hex-encoded: twice as many characters).
const TOKEN_BYTES: usize = 32;
/// Most sessions kept at once; the least recently used one is dropped beyond it.
const MAX_SESSIONS: usize = 10_000;

/// One logged-in browser.
#[derive(Debug, Clone)]
pub struct PanelSession {
    /// Who logged in.
    pub user_id: UserId,
    /// The token writes must carry.
    pub csrf_token: String,
    last_seen: Instant,
}

/// The live sessions, keyed by cookie value.
#[derive(Debug)]
pub struct SessionStore {
    idle: Duration,
    sessions: Mutex<HashMap<String, PanelSession>>,
}

/// A random token of [`TOKEN_BYTES`] bytes from the OS RNG, hex-encoded.
pub fn random_token() -> String {
    use rand::RngCore;
    let mut raw = [0u8; TOKEN_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

impl SessionStore {
    /// A store whose sessions end after `idle` without requests.
    pub fn new(idle: Duration) -> Self {
        SessionStore {
            idle,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// Opens a session for `user_id`: `(cookie value, session)`.
    pub fn open(&self, user_id: UserId, now: Instant) -> (String, PanelSession) {
        let id = random_token();
        let session = PanelSession {
            user_id,
            csrf_token: random_token(),
            last_seen: now,
        };
        let mut map = self.lock();
        map.retain(|_, s| now.saturating_duration_since(s.last_seen) < self.idle);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(id.clone(), session.clone());
        (id, session)
    }

    /// The session of cookie value `id`, refreshed; `None` when unknown or idle too long.
    pub fn touch(&self, id: &str, now: Instant) -> Option<PanelSession> {
        let mut map = self.lock();
        let expired = match map.get_mut(id) {
            None => return None,
            Some(s) if now.saturating_duration_since(s.last_seen) >= self.idle => true,
            Some(s) => {
                s.last_seen = now;
                return Some(s.clone());
            }
        };
        if expired {
            map.remove(id);
        }
        None
    }

    /// Ends the session of cookie value `id`.
    pub fn close(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Ends every session of `user_id` (deleted user, changed password).
    pub fn close_user(&self, user_id: UserId) {
        self.lock().retain(|_, s| s.user_id != user_id);
    }

    /// Ends every session of `user_id` but the one of cookie value `keep` (a user who changed
    /// their own password stays logged in where they did it).
    pub fn close_user_except(&self, user_id: UserId, keep: &str) {
        self.lock()
            .retain(|id, s| s.user_id != user_id || id == keep);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, PanelSession>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The `Set-Cookie` value opening a session: `HttpOnly` (no script reads it), `SameSite=Strict`
/// (no other site's page sends it), `Path=/panel`, `Secure` when `secure`.
pub fn session_cookie(id: &str, secure: bool) -> String {
    let mut c = format!("{COOKIE_NAME}={id}; Path=/panel; HttpOnly; SameSite=Strict");
    if secure {
        c.push_str("; Secure");
    }
    c
}

/// The `Set-Cookie` value removing the session cookie.
pub fn clearing_cookie(secure: bool) -> String {
    let mut c = format!("{COOKIE_NAME}=; Path=/panel; HttpOnly; SameSite=Strict; Max-Age=0");
    if secure {
        c.push_str("; Secure");
    }
    c
}

/// The session cookie's value in a `Cookie` header, if present.
pub fn cookie_value(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_after_idle_time_and_refresh_on_use() {
        let store = SessionStore::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let (id, s) = store.open(UserId(7), t0);
        assert_eq!(id.len(), 64);
        assert_ne!(s.csrf_token, id);
        assert!(store.touch(&id, t0 + Duration::from_secs(50)).is_some());
        assert!(store.touch(&id, t0 + Duration::from_secs(100)).is_some());
        assert!(store.touch(&id, t0 + Duration::from_secs(161)).is_none());
        assert!(store.touch(&id, t0).is_none(), "an expired session is gone");
    }

    #[test]
    fn closing_a_user_ends_all_of_its_sessions() {
        let store = SessionStore::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let (a, _) = store.open(UserId(1), t0);
        let (b, _) = store.open(UserId(1), t0);
        let (c, _) = store.open(UserId(2), t0);
        store.close_user(UserId(1));
        assert!(store.touch(&a, t0).is_none());
        assert!(store.touch(&b, t0).is_none());
        assert!(store.touch(&c, t0).is_some());
    }

    #[test]
    fn cookie_value_is_found_among_others() {
        assert_eq!(cookie_value("a=1; bifrons_panel=abc; b=2"), Some("abc"));
        assert_eq!(cookie_value("bifrons_panelx=abc"), None);
        assert_eq!(cookie_value("bifrons_panel="), None);
        let c = session_cookie("abc", true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.ends_with("Secure"));
        assert!(!session_cookie("abc", false).contains("Secure"));
    }
}
