//! Argon2id hashing for admin passwords and voicemail PINs.
//!
//! Hashing is deliberately slow, so it runs on tokio's blocking pool rather than on the async
//! worker threads that carry signalling.

use argon2::password_hash::rand_core::{OsRng, RngCore};

use super::error::{Result, StorageError};
use crate::auth::HashedSecret;

/// Hashes `secret` into a PHC string (`$argon2id$...`) with a fresh random salt.
pub async fn hash(secret: &str) -> Result<String> {
    HashedSecret::hash(secret)
        .await
        .map(HashedSecret::into_phc)
        .map_err(StorageError::Hash)
}

/// Checks `secret` against a stored PHC string; a malformed stored hash never matches.
pub async fn verify(secret: &str, stored: &str) -> bool {
    HashedSecret::from_phc(stored.to_owned())
        .matches(secret)
        .await
}

/// A random token of `bytes` random bytes, hex-encoded (so `2 * bytes` characters).
pub fn random_token(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    OsRng.fill_bytes(&mut raw);
    raw.iter().map(|b| format!("{b:02x}")).collect()
}
