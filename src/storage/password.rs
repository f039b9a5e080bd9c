//! Argon2id hashing for admin passwords and voicemail PINs.
//!
//! Hashing is deliberately slow, so it runs on tokio's blocking pool rather than on the async
//! worker threads that carry signalling.

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use super::error::{Result, StorageError};

/// Hashes `secret` into a PHC string (`$argon2id$...`) with a fresh random salt.
pub async fn hash(secret: &str) -> Result<String> {
    let secret = secret.to_owned();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(secret.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| StorageError::Hash(e.to_string()))
    })
    .await
    .map_err(|e| StorageError::Hash(e.to_string()))?
}

/// Checks `secret` against a stored PHC string; a malformed stored hash never matches.
pub async fn verify(secret: &str, stored: &str) -> bool {
    let secret = secret.to_owned();
    let stored = stored.to_owned();
    tokio::task::spawn_blocking(move || match PasswordHash::new(&stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(secret.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    })
    .await
    .unwrap_or(false)
}

/// A random token of `bytes` random bytes, hex-encoded (so `2 * bytes` characters).
pub fn random_token(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    OsRng.fill_bytes(&mut raw);
    raw.iter().map(|b| format!("{b:02x}")).collect()
}
