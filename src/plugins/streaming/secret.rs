//! Mountpoint secrets and PINs: kept as argon2id hashes, checked on the blocking pool (the
//! hash is deliberately slow), compared in constant time by the argon2 verifier.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// An argon2id PHC string of a secret; the secret itself is not kept.
#[derive(Clone)]
pub struct HashedSecret(String);

impl std::fmt::Debug for HashedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashedSecret(..)")
    }
}

impl HashedSecret {
    /// Hashes `secret` with a fresh salt; `None` if hashing failed (never for valid input).
    pub async fn new(secret: &str) -> Option<Self> {
        let secret = secret.to_owned();
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(secret.as_bytes(), &salt)
                .map(|h| HashedSecret(h.to_string()))
                .ok()
        })
        .await
        .ok()
        .flatten()
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
        assert!(!format!("{s:?}").contains("argon2"));
    }
}
