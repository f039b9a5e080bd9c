//! Secrets kept only as argon2id hashes: admin passwords, account web secrets, room and
//! mountpoint secrets and PINs. Hashing and checking run on tokio's blocking pool (a check costs
//! tens of milliseconds on purpose; the async threads carry signalling), and the argon2 verifier
//! compares in constant time.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// An argon2id PHC string (`$argon2id$...`) of a secret; the secret itself is not kept, and
/// `Debug` shows neither.
#[derive(Clone, PartialEq, Eq)]
pub struct HashedSecret(String);

impl std::fmt::Debug for HashedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashedSecret(..)")
    }
}

impl HashedSecret {
    /// Hashes `secret` with a fresh random salt. Errors: argon2's message (not seen for input
    /// that fits in memory) or a panicked blocking task.
    pub async fn hash(secret: &str) -> Result<Self, String> {
        let secret = secret.to_owned();
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(secret.as_bytes(), &salt)
                .map(|h| HashedSecret(h.to_string()))
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// Hashes `secret`; `None` where [`HashedSecret::hash`] fails.
    pub async fn new(secret: &str) -> Option<Self> {
        Self::hash(secret).await.ok()
    }

    /// A stored PHC string (from the registry); a malformed one never matches.
    pub fn from_phc(phc: String) -> Self {
        Self(phc)
    }

    /// The PHC string, to store.
    pub fn into_phc(self) -> String {
        self.0
    }

    /// Whether `candidate` is the secret.
    pub async fn matches(&self, candidate: &str) -> bool {
        let stored = self.0.clone();
        let candidate = candidate.to_owned();
        tokio::task::spawn_blocking(move || match PasswordHash::new(&stored) {
            Ok(parsed) => Argon2::default()
                .verify_password(candidate.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        })
        .await
        .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_the_secret_matches_and_debug_hides_it() {
        let s = HashedSecret::new("s3cret").await.unwrap();
        assert!(s.matches("s3cret").await);
        assert!(!s.matches("s3cret ").await);
        assert!(!s.matches("s3cre").await);
        assert!(!format!("{s:?}").contains("argon2"));
        let stored = HashedSecret::from_phc(s.clone().into_phc());
        assert!(stored.matches("s3cret").await);
        assert!(
            !HashedSecret::from_phc("not a hash".into())
                .matches("")
                .await
        );
    }
}
