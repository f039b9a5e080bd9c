//! API secret and stored-token authentication (Janus `api_secret`, `token_auth`), and the
//! argon2 [`HashedSecret`] every stored password, secret and PIN is kept as.

pub mod download_tokens;
mod hashed;

pub use hashed::HashedSecret;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use subtle::ConstantTimeEq;

/// Constant-time string comparison, so secrets cannot be guessed by timing.
pub fn secrets_match(given: &str, expected: &str) -> bool {
    given.len() == expected.len() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

/// What a request proved about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// Nothing is configured, or the API secret matched: every plugin is allowed.
    Open,
    /// A stored token: only its plugins (all when its list is empty).
    Token(String),
}

/// The authentication settings and the token store.
pub struct Auth {
    api_secret: Option<String>,
    token_auth: bool,
    /// Token → plugins it may attach to (empty: all).
    tokens: Mutex<BTreeMap<String, BTreeSet<String>>>,
}

impl Auth {
    /// Settings from `[general]`: an empty `api_secret` turns the secret check off;
    /// `token_auth` turns stored tokens on, the store starting empty (tokens live in memory
    /// only, added through the Admin API, as Janus' stored-token mode).
    pub fn new(api_secret: &str, token_auth: bool) -> Self {
        Self {
            api_secret: (!api_secret.is_empty()).then(|| api_secret.to_string()),
            token_auth,
            tokens: Mutex::new(BTreeMap::new()),
        }
    }

    /// Whether an API secret is configured (`api_secret` in `server_info`).
    pub fn api_secret_enabled(&self) -> bool {
        self.api_secret.is_some()
    }

    /// Whether stored-token authentication is on (`auth_token` in `server_info`); the Admin
    /// API's token requests answer error 490 when it is off.
    pub fn token_auth_enabled(&self) -> bool {
        self.token_auth
    }

    fn store(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, BTreeSet<String>>> {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks a request's `apisecret`/`token`: either one valid suffices when both are on.
    pub fn check(&self, apisecret: Option<&str>, token: Option<&str>) -> Option<Credential> {
        if self.api_secret.is_none() && !self.token_auth {
            return Some(Credential::Open);
        }
        if let (Some(expected), Some(given)) = (&self.api_secret, apisecret) {
            if secrets_match(given, expected) {
                return Some(Credential::Open);
            }
        }
        if self.token_auth {
            if let Some(token) = token {
                if self.store().keys().any(|t| secrets_match(token, t)) {
                    return Some(Credential::Token(token.to_string()));
                }
            }
        }
        None
    }

    /// Whether `credential` may attach to `plugin`.
    pub fn plugin_allowed(&self, credential: &Credential, plugin: &str) -> bool {
        match credential {
            Credential::Open => true,
            Credential::Token(token) => self
                .store()
                .get(token)
                .map(|p| p.is_empty() || p.contains(plugin))
                .unwrap_or(false),
        }
    }

    /// Stores `token` (Admin API `add_token`), or adds `plugins` (package names, e.g.
    /// `janus.plugin.echotest`) to an existing one; returns the token's plugins now allowed,
    /// sorted (empty: every plugin).
    pub fn add_token(&self, token: &str, plugins: Vec<String>) -> Vec<String> {
        let mut store = self.store();
        let entry = store.entry(token.to_string()).or_default();
        entry.extend(plugins);
        entry.iter().cloned().collect()
    }

    /// Every stored token with its allowed plugins (empty: all), sorted by token, for the
    /// Admin API's `list_tokens`.
    pub fn list_tokens(&self) -> Vec<(String, Vec<String>)> {
        self.store()
            .iter()
            .map(|(t, p)| (t.clone(), p.iter().cloned().collect()))
            .collect()
    }

    /// Changes a token's plugins; `None` when the token is unknown.
    pub fn edit_token(&self, token: &str, plugins: &[String], allow: bool) -> Option<Vec<String>> {
        let mut store = self.store();
        let entry = store.get_mut(token)?;
        for p in plugins {
            if allow {
                entry.insert(p.clone());
            } else {
                entry.remove(p);
            }
        }
        Some(entry.iter().cloned().collect())
    }

    /// Forgets `token` (Admin API `remove_token`); false when it was not stored. Sessions
    /// created with it are not torn down, but their next request carrying it is refused (403).
    pub fn remove_token(&self, token: &str) -> bool {
        self.store().remove(token).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_when_nothing_configured() {
        assert_eq!(
            Auth::new("", false).check(None, None),
            Some(Credential::Open)
        );
    }

    #[test]
    fn secret_or_token_suffices() {
        let auth = Auth::new("s3cret", true);
        assert_eq!(auth.check(None, None), None);
        assert_eq!(auth.check(Some("wrong"), None), None);
        assert_eq!(auth.check(Some("s3cret"), None), Some(Credential::Open));
        auth.add_token("tok", vec!["janus.plugin.echotest".into()]);
        let cred = auth.check(None, Some("tok")).unwrap();
        assert!(auth.plugin_allowed(&cred, "janus.plugin.echotest"));
        assert!(!auth.plugin_allowed(&cred, "janus.plugin.sip"));
        assert!(auth.remove_token("tok"));
        assert_eq!(auth.check(None, Some("tok")), None);
    }
}
