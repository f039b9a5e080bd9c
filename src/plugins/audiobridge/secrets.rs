//! Room secrets and PINs: kept only as argon2id hashes, checked on tokio's blocking pool (a
//! check costs tens of milliseconds on purpose; the async threads carry signalling).

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// An argon2id PHC string of a room secret or PIN; never shown in responses or logs.
#[derive(Clone)]
pub struct Hashed(String);

impl std::fmt::Debug for Hashed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hashed(..)")
    }
}

impl Hashed {
    /// Hashes `secret` with a fresh salt; `None` if hashing failed (never in practice).
    pub async fn new(secret: &str) -> Option<Self> {
        let secret = secret.to_owned();
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(secret.as_bytes(), &salt)
                .map(|h| Hashed(h.to_string()))
                .ok()
        })
        .await
        .ok()
        .flatten()
    }

    /// Whether `candidate` is the secret (argon2 verification compares in constant time).
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
    async fn only_the_right_secret_matches_and_debug_hides_it() {
        let h = Hashed::new("s3cret").await.unwrap();
        assert!(h.matches("s3cret").await);
        assert!(!h.matches("s3cre").await);
        assert!(!format!("{h:?}").contains("argon2"));
    }
}
