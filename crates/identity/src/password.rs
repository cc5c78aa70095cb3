//! Argon2id password hashing with per-password salts. Verification on the
//! request path goes through [`crate::guard::Hasher`]; [`verify_password`] is the
//! plain one-shot form.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
use model::{Error, Result};

/// Hashes a new password: Argon2id, default parameters, random salt, as a PHC string.
pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal {
            context: format!("hash password: {e}"),
            source: None,
        })
}

/// Whether `password` matches the PHC string `hash`, computed on the calling
/// thread; a malformed hash matches nothing.
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A well-formed Argon2id hash (default parameters, random salt and output) that
/// no password matches, for unknown users: checking it costs a real hash, so
/// timing does not tell unknown users from wrong passwords. Nothing is computed
/// to make it.
pub(crate) fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        use argon2::password_hash::rand_core::RngCore;
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
        let p = argon2::Params::DEFAULT;
        let mut salt = [0u8; 16];
        let mut out = [0u8; argon2::Params::DEFAULT_OUTPUT_LEN];
        OsRng.fill_bytes(&mut salt);
        OsRng.fill_bytes(&mut out);
        format!(
            "$argon2id$v=19$m={},t={},p={}${}${}",
            p.m_cost(),
            p.t_cost(),
            p.p_cost(),
            b64.encode(salt),
            b64.encode(out)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let h = hash_password("pw").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("pw", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("pw", "not a hash"));
    }
}
