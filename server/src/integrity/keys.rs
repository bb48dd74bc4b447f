//! Signing keys for digests: Ed25519, kept in `integrity.key_dir`.
//!
//! `keys.json` lists every public key ever used with its validity
//! (published at `GET /api/v1/integrity/keys`; old keys stay so that old
//! digests keep verifying after a rotation). Each private key is a file of
//! its own, `<key_id>.secret`, readable by its owner only, never logged and
//! never shown: `SigningKey` has no `Debug`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer as _, Verifier as _};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::encoding::{hex, unhex};

pub const KEYS_FILE: &str = "keys.json";
/// A writer picks up a rotated key at its next batch; a digest it sealed
/// meanwhile with the previous key is still valid if sealed within this
/// long after that key's `not_after` (docs/INTEGRITY.md).
pub const ROTATION_GRACE_MS: i64 = 300_000;
const LOCK_FILE: &str = ".keygen.lock";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {why}")]
    Invalid { path: PathBuf, why: String },
    #[error("no current signing key in {0} (integrity.key_dir): run `attest integrity keygen`")]
    NoCurrentKey(PathBuf),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One published key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PublicKey {
    /// First 16 hex digits of SHA-256 of the public key's 32 bytes.
    pub key_id: String,
    /// The Ed25519 public key, 32 bytes as lower-case hex.
    pub public_key: String,
    /// Epoch milliseconds from which digests may be signed with it.
    pub not_before: i64,
    /// Epoch milliseconds after which it signs no more (`null`: current).
    pub not_after: Option<i64>,
}

impl PublicKey {
    pub fn valid_at(&self, ms: i64) -> bool {
        ms >= self.not_before
            && self
                .not_after
                .is_none_or(|end| ms <= end.saturating_add(ROTATION_GRACE_MS))
    }

    pub fn verifies(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let Some(bytes) = unhex::<32>(&self.public_key) else {
            return false;
        };
        let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&bytes) else {
            return false;
        };
        key.verify(message, &ed25519_dalek::Signature::from_bytes(signature))
            .is_ok()
    }
}

/// The published keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyRing {
    pub keys: Vec<PublicKey>,
}

impl KeyRing {
    pub fn get(&self, key_id: &str) -> Option<&PublicKey> {
        self.keys.iter().find(|k| k.key_id == key_id)
    }

    /// Reads `keys.json` of `dir`; an absent file is an empty ring.
    pub fn load(dir: &Path) -> Result<KeyRing, KeyError> {
        let path = dir.join(KEYS_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => Self::parse(&path, &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KeyRing::default()),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Parses a key list (a `keys.json`, or what the keys endpoint served).
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<KeyRing, KeyError> {
        let ring: KeyRing = serde_json::from_slice(bytes).map_err(|e| KeyError::Invalid {
            path: path.to_owned(),
            why: e.to_string(),
        })?;
        for k in &ring.keys {
            if unhex::<32>(&k.public_key).is_none() || key_id(&k.public_key) != k.key_id {
                return Err(KeyError::Invalid {
                    path: path.to_owned(),
                    why: format!(
                        "key {}: public_key is not 64 hex digits or does not match key_id",
                        k.key_id
                    ),
                });
            }
        }
        Ok(ring)
    }

    pub fn current(&self) -> Option<&PublicKey> {
        self.keys.iter().rev().find(|k| k.not_after.is_none())
    }

    /// Whether `signature` (128 hex digits) is key `key_id`'s signature of
    /// `message`, made at `at_ms` inside the key's validity (section 6):
    /// the rule for retention records and checkpoints.
    pub fn verify(
        &self,
        key_id: &str,
        at_ms: i64,
        message: &[u8],
        signature: &str,
    ) -> Result<(), Unverified> {
        let Some(key) = self.get(key_id) else {
            return Err(Unverified::UnknownKey(key_id.to_owned()));
        };
        if !key.valid_at(at_ms) {
            return Err(Unverified::OutsideKeyValidity {
                key_id: key_id.to_owned(),
                at: at_ms,
            });
        }
        match unhex::<64>(signature) {
            Some(sig) if key.verifies(message, &sig) => Ok(()),
            _ => Err(Unverified::BadSignature(key_id.to_owned())),
        }
    }
}

/// Why a signed statement does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unverified {
    #[error("signed by key {0}, which is not among the published keys")]
    UnknownKey(String),
    #[error("signed at {at}, outside the validity of key {key_id}")]
    OutsideKeyValidity { key_id: String, at: i64 },
    #[error("the signature does not verify with key {0}")]
    BadSignature(String),
}

fn key_id(public_hex: &str) -> String {
    let bytes = unhex::<32>(public_hex).unwrap_or_default();
    hex(&Sha256::digest(bytes))[..16].to_owned()
}

/// The private half of the current key.
pub struct SigningKey {
    id: String,
    key: ed25519_dalek::SigningKey,
}

impl SigningKey {
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }

    /// The current key of `dir` (the published key without `not_after`).
    pub fn load(dir: &Path) -> Result<SigningKey, KeyError> {
        let ring = KeyRing::load(dir)?;
        let current = ring
            .current()
            .ok_or_else(|| KeyError::NoCurrentKey(dir.to_owned()))?;
        let path = dir.join(format!("{}.secret", current.key_id));
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        let seed = unhex::<32>(text.trim()).ok_or_else(|| KeyError::Invalid {
            path: path.clone(),
            why: "not 64 hex digits".into(),
        })?;
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        if hex(key.verifying_key().as_bytes()) != current.public_key {
            return Err(KeyError::Invalid {
                path,
                why: format!(
                    "does not match the public key published as {}",
                    current.key_id
                ),
            });
        }
        Ok(SigningKey {
            id: current.key_id.clone(),
            key,
        })
    }
}

/// Creates a new current key in `dir`: the previous current key stops at
/// `now_ms` (and stays published), the new one starts then. Returns the new
/// public key. Only the public half is ever returned or printed.
pub fn generate(dir: &Path, now_ms: i64) -> Result<PublicKey, KeyError> {
    locked(dir, || generate_unlocked(dir, now_ms))
}

/// The current key of `dir`, made now if there is none: what a writer
/// does on its first start. Two processes starting together make one key.
pub fn generate_first(dir: &Path, now_ms: i64) -> Result<PublicKey, KeyError> {
    locked(dir, || match KeyRing::load(dir)?.current() {
        Some(k) => Ok(k.clone()),
        None => generate_unlocked(dir, now_ms),
    })
}

/// Runs `f` holding `dir`'s key-generation lock (a file created
/// exclusively; one left by a crash is taken over after 30 s).
fn locked<T>(dir: &Path, f: impl FnOnce() -> Result<T, KeyError>) -> Result<T, KeyError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let lock = dir.join(LOCK_FILE);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
        {
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let stale = std::fs::metadata(&lock)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > std::time::Duration::from_secs(30));
                if stale {
                    let _ = std::fs::remove_file(&lock);
                } else if std::time::Instant::now() > deadline {
                    return Err(io(&lock)(e));
                } else {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
            }
            Err(e) => return Err(io(&lock)(e)),
        }
    }
    let outcome = f();
    let _ = std::fs::remove_file(&lock);
    outcome
}

fn generate_unlocked(dir: &Path, now_ms: i64) -> Result<PublicKey, KeyError> {
    let mut ring = KeyRing::load(dir)?;
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let public_key = hex(key.verifying_key().as_bytes());
    let new = PublicKey {
        key_id: key_id(&public_key),
        public_key,
        not_before: now_ms,
        not_after: None,
    };
    let secret = dir.join(format!("{}.secret", new.key_id));
    let mut file = private_file(&secret)?;
    file.write_all(hex(&seed).as_bytes()).map_err(io(&secret))?;
    file.sync_all().map_err(io(&secret))?;
    for k in ring.keys.iter_mut().filter(|k| k.not_after.is_none()) {
        k.not_after = Some(now_ms);
    }
    ring.keys.push(new.clone());
    // Written aside and renamed: a crash leaves the old list or the new one.
    let path = dir.join(KEYS_FILE);
    let partial = dir.join(format!("{KEYS_FILE}.partial"));
    let text = serde_json::to_vec_pretty(&ring).map_err(|e| KeyError::Invalid {
        path: path.clone(),
        why: e.to_string(),
    })?;
    std::fs::write(&partial, text).map_err(io(&partial))?;
    std::fs::rename(&partial, &path).map_err(io(&path))?;
    Ok(new)
}

#[cfg(unix)]
fn private_file(path: &Path) -> Result<std::fs::File, KeyError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io(path))
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> Result<std::fs::File, KeyError> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io(path))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Changes a hex text's first digit (to another one, whatever it was).
    pub(crate) fn flip_first(hex: &mut String) {
        let other = if hex.starts_with('0') { "1" } else { "0" };
        hex.replace_range(0..1, other);
    }

    pub(crate) fn ring_with_one_key() -> (KeyRing, SigningKey, tempdir::Dir) {
        let dir = tempdir::Dir::new();
        generate(dir.path(), 1_700_000_000_000).unwrap();
        (
            KeyRing::load(dir.path()).unwrap(),
            SigningKey::load(dir.path()).unwrap(),
            dir,
        )
    }

    pub(crate) mod tempdir {
        /// A directory removed when dropped.
        pub struct Dir(std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                let p = std::env::temp_dir().join(format!(
                    "attest-keys-test-{}",
                    uuid::Uuid::now_v7().simple()
                ));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
            pub fn path(&self) -> &std::path::Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn rotation_keeps_the_old_key_published_and_signs_with_the_new() {
        let dir = tempdir::Dir::new();
        let first = generate(dir.path(), 1_000).unwrap();
        let second = generate(dir.path(), 2_000).unwrap();
        let ring = KeyRing::load(dir.path()).unwrap();
        assert_eq!(ring.keys.len(), 2);
        assert_eq!(ring.get(&first.key_id).unwrap().not_after, Some(2_000));
        assert!(ring.get(&first.key_id).unwrap().valid_at(1_500));
        assert!(ring
            .get(&first.key_id)
            .unwrap()
            .valid_at(2_000 + ROTATION_GRACE_MS));
        assert!(!ring
            .get(&first.key_id)
            .unwrap()
            .valid_at(2_001 + ROTATION_GRACE_MS));
        assert!(ring.get(&second.key_id).unwrap().valid_at(9_999_999));
        let signing = SigningKey::load(dir.path()).unwrap();
        assert_eq!(signing.id(), second.key_id);
        let sig = signing.sign(b"hello");
        assert!(ring.get(&second.key_id).unwrap().verifies(b"hello", &sig));
        assert!(!ring.get(&first.key_id).unwrap().verifies(b"hello", &sig));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(format!("{}.secret", second.key_id)))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the secret is private");
        }
        // The published list never holds a secret.
        let published = std::fs::read_to_string(dir.path().join(KEYS_FILE)).unwrap();
        let secret =
            std::fs::read_to_string(dir.path().join(format!("{}.secret", second.key_id))).unwrap();
        assert!(!published.contains(secret.trim()));
    }

    #[test]
    fn the_first_key_is_made_once() {
        let dir = tempdir::Dir::new();
        let a = generate_first(dir.path(), 1_000).unwrap();
        let b = generate_first(dir.path(), 2_000).unwrap();
        assert_eq!(a, b);
        assert_eq!(KeyRing::load(dir.path()).unwrap().keys.len(), 1);
    }

    #[test]
    fn without_a_key_the_error_says_what_to_run() {
        let dir = tempdir::Dir::new();
        let e = SigningKey::load(dir.path()).err().unwrap().to_string();
        assert!(e.contains("attest integrity keygen"), "{e}");
    }
}
