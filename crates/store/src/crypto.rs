//! Encryption of secrets at rest. AES-256-GCM with a random nonce per value and
//! the owning object's id as associated data, so a ciphertext copied onto another
//! row does not decrypt.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use model::{Error, Result};

/// The store's key for secrets at rest; its `Debug` never shows the key.
#[derive(Clone)]
pub struct Cipher {
    aead: Aes256Gcm,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(<key redacted>)")
    }
}

impl Cipher {
    /// A cipher from 32 raw key bytes.
    pub fn from_key(key: &[u8; 32]) -> Cipher {
        Cipher {
            aead: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key)),
        }
    }

    /// Parses a base64 key (as stored in the key file or the environment).
    pub fn from_base64(text: &str) -> Result<Cipher> {
        let bytes = B64
            .decode(text.trim())
            .map_err(|e| Error::internal("secret key is not base64", e))?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| Error::Internal {
            context: "secret key must be 32 bytes".into(),
            source: None,
        })?;
        Ok(Cipher::from_key(&key))
    }

    /// Loads the key file, creating it (mode 0600) with a fresh random key if absent.
    pub fn load_or_create(path: &Path) -> Result<Cipher> {
        match std::fs::read_to_string(path) {
            Ok(text) => Cipher::from_base64(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Aes256Gcm::generate_key(OsRng);
                let text = B64.encode(key);
                write_private(path, &text).map_err(|e| Error::internal("write key file", e))?;
                Ok(Cipher::from_base64(&text)?)
            }
            Err(e) => Err(Error::internal("read key file", e)),
        }
    }

    /// Encrypts `plaintext` for the object `owner_id`: base64 of nonce + ciphertext.
    pub fn encrypt(&self, plaintext: &str, owner_id: &str) -> Result<String> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ct = self
            .aead
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: owner_id.as_bytes(),
                },
            )
            .map_err(|_| Error::Internal {
                context: "encrypt secret".into(),
                source: None,
            })?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(B64.encode(out))
    }

    /// Decrypts what [`Cipher::encrypt`] made for `owner_id`; fails on another
    /// key, another owner or a damaged value.
    pub fn decrypt(&self, stored: &str, owner_id: &str) -> Result<String> {
        let fail = || Error::Internal {
            context: format!("decrypt secret of {owner_id} (wrong key file?)"),
            source: None,
        };
        let bytes = B64.decode(stored).map_err(|_| fail())?;
        if bytes.len() < 12 {
            return Err(fail());
        }
        let (nonce, ct) = bytes.split_at(12);
        let pt = self
            .aead
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: owner_id.as_bytes(),
                },
            )
            .map_err(|_| fail())?;
        String::from_utf8(pt).map_err(|_| fail())
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let c = Cipher::from_key(&[7; 32]);
        let ct = c.encrypt("s3cret", "a").unwrap();
        assert!(!ct.contains("s3cret"));
        assert_eq!(c.decrypt(&ct, "a").unwrap(), "s3cret");
        assert!(c.decrypt(&ct, "b").is_err(), "bound to its owner");
        assert!(Cipher::from_key(&[8; 32]).decrypt(&ct, "a").is_err());
    }
}
