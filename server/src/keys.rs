//! API keys: who may send events, for which tenant, service and categories.
//!
//! A key reads `atk_<key id>_<secret>`. The id finds the record; only the
//! SHA-256 of the secret is stored, so the table (and any backup of it)
//! cannot be used to send events. The secret is 256 random bits, which is
//! why a fast hash is enough: there is nothing to brute-force. The full key
//! is shown once, at creation, and never logged.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::event::{Category, Outcome, Resource};
use crate::ingest::validate::{identifier, MAX_ID};
use crate::ingest::{internal_event, now_ms, Ingest, IngestError};
use crate::store::{KeyRow, Store, StoreError};

const PREFIX: &str = "atk_";
/// How long an unknown key id is answered from memory, so that a client
/// hammering with made-up keys does not turn into ClickHouse queries.
const MISS_TTL: Duration = Duration::from_secs(5);
const MAX_MISSES: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no API key: send `Authorization: Bearer <key>`")]
    Missing,
    #[error("the API key is not valid")]
    Unknown,
    #[error("the API key was revoked")]
    Revoked,
    /// The key is not in memory and ClickHouse cannot be asked: fail closed.
    #[error("API keys cannot be checked right now")]
    Unavailable(#[source] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum KeyAdminError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot record the audit event for this change, so it was not made: {0}")]
    Record(#[from] IngestError),
    #[error("`{field}`: {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
    #[error("no valid API key with id {0:?}")]
    UnknownKey(String),
}

/// What a valid key allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub key_id: String,
    pub tenant_id: String,
    pub source_service: String,
    /// Empty: every category.
    pub categories: Vec<String>,
}

impl Principal {
    pub fn may_send(&self, category: Category) -> bool {
        self.categories.is_empty() || self.categories.iter().any(|c| c == category.as_str())
    }
}

fn digest(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new key of some kind: the id and hash to store, and the full text to
/// show once.
pub(crate) struct Minted {
    pub id: String,
    pub secret_sha256: String,
    pub key: String,
}

/// 64 random bits of id and 256 of secret, from the OS.
pub(crate) fn mint(prefix: &str) -> Minted {
    let id = random_hex(8);
    let secret = random_hex(32);
    Minted {
        key: format!("{prefix}{id}_{secret}"),
        secret_sha256: digest(&secret),
        id,
    }
}

/// `<prefix><id>_<secret>` → `(id, secret)`.
fn split<'a>(prefix: &str, presented: &'a str) -> Option<(&'a str, &'a str)> {
    let rest = presented.strip_prefix(prefix)?;
    let (id, secret) = rest.split_once('_')?;
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(id, 16) && hex(secret, 64)).then_some((id, secret))
}

/// Equal-time comparison, so response timing says nothing about how much
/// of a guessed secret was right.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A kind of secret key kept in ClickHouse: ingest API keys here, console
/// access keys in `crate::access`. Both read `<prefix><16 hex id>_<64 hex
/// secret>` and store only the secret's SHA-256.
#[async_trait::async_trait]
pub trait StoredKey: Clone + Send + Sync + 'static {
    /// `atk_` or `atc_`: which kind a presented key claims to be.
    const PREFIX: &'static str;
    fn id(&self) -> &str;
    fn secret_sha256(&self) -> &str;
    fn is_revoked(&self) -> bool;
    async fn load_all(store: &Store) -> Result<Vec<Self>, StoreError>;
    async fn load(store: &Store, id: &str) -> Result<Option<Self>, StoreError>;
}

#[async_trait::async_trait]
impl StoredKey for KeyRow {
    const PREFIX: &'static str = PREFIX;
    fn id(&self) -> &str {
        &self.key_id
    }
    fn secret_sha256(&self) -> &str {
        &self.secret_sha256
    }
    fn is_revoked(&self) -> bool {
        self.revoked_at != 0
    }
    async fn load_all(store: &Store) -> Result<Vec<Self>, StoreError> {
        store.api_keys().await
    }
    async fn load(store: &Store, id: &str) -> Result<Option<Self>, StoreError> {
        store.api_key(id).await
    }
}

/// The keys in memory, refreshed from ClickHouse every few seconds so that a
/// revocation takes effect without a restart. A key created a moment ago is
/// looked up on first use.
pub struct KeyRing<K: StoredKey = KeyRow> {
    store: Store,
    keys: RwLock<HashMap<String, K>>,
    misses: Mutex<HashMap<String, Instant>>,
    /// Start of the current second and the lookups of unknown ids made in it.
    lookups: Mutex<(Instant, u32)>,
}

/// ClickHouse lookups of ids not in memory, per second, for the whole
/// process. Made-up ids cost nothing past it (401 at once); a real key
/// created meanwhile is still found by the next refresh.
const LOOKUPS_PER_SECOND: u32 = 10;

impl<K: StoredKey> KeyRing<K> {
    pub fn new(store: Store) -> KeyRing<K> {
        KeyRing {
            store,
            keys: RwLock::new(HashMap::new()),
            misses: Mutex::new(HashMap::new()),
            lookups: Mutex::new((Instant::now(), 0)),
        }
    }

    pub async fn refresh(&self) -> Result<usize, StoreError> {
        let rows = K::load_all(&self.store).await?;
        let fresh: HashMap<String, K> = rows.into_iter().map(|k| (k.id().to_owned(), k)).collect();
        let n = fresh.len();
        if let Ok(mut keys) = self.keys.write() {
            *keys = fresh;
        }
        Ok(n)
    }

    /// Refreshes every `every` until `stop`. While ClickHouse is away the
    /// last known keys stay in force.
    pub async fn run_refresh(self: Arc<Self>, every: Duration, stop: CancellationToken) {
        crate::periodic::every(every, stop, || async {
            if let Err(error) = self.refresh().await {
                warn!(%error, "cannot refresh keys; using the last known set");
            }
        })
        .await;
    }

    /// Checks a presented key: its shape, its secret and that it is valid.
    pub async fn verify(&self, presented: &str) -> Result<K, AuthError> {
        let (id, secret) = split(K::PREFIX, presented.trim()).ok_or(AuthError::Unknown)?;
        let row = self.find(id).await?;
        if !same(row.secret_sha256(), &digest(secret)) {
            return Err(AuthError::Unknown);
        }
        if row.is_revoked() {
            return Err(AuthError::Revoked);
        }
        Ok(row)
    }

    /// The current record of a key id (valid or revoked), for checks that
    /// hold the id but not the secret, such as a signed session.
    pub async fn find(&self, id: &str) -> Result<K, AuthError> {
        match self.cached(id) {
            Some(row) => Ok(row),
            None => self.look_up(id).await,
        }
    }

    fn cached(&self, id: &str) -> Option<K> {
        self.keys.read().ok()?.get(id).cloned()
    }

    /// Takes one of this second's lookups, if any are left.
    fn may_look_up(&self) -> bool {
        let Ok(mut window) = self.lookups.lock() else {
            return false;
        };
        let (start, used) = &mut *window;
        if start.elapsed() >= Duration::from_secs(1) {
            *start = Instant::now();
            *used = 0;
        }
        if *used < LOOKUPS_PER_SECOND {
            *used += 1;
            true
        } else {
            false
        }
    }

    async fn look_up(&self, id: &str) -> Result<K, AuthError> {
        if let Ok(misses) = self.misses.lock() {
            if misses.get(id).is_some_and(|at| at.elapsed() < MISS_TTL) {
                return Err(AuthError::Unknown);
            }
        }
        if !self.may_look_up() {
            return Err(AuthError::Unknown);
        }
        match K::load(&self.store, id)
            .await
            .map_err(AuthError::Unavailable)?
        {
            Some(row) => {
                if let Ok(mut keys) = self.keys.write() {
                    keys.insert(row.id().to_owned(), row.clone());
                }
                Ok(row)
            }
            None => {
                if let Ok(mut misses) = self.misses.lock() {
                    if misses.len() >= MAX_MISSES {
                        misses.retain(|_, at| at.elapsed() < MISS_TTL);
                    }
                    if misses.len() < MAX_MISSES {
                        misses.insert(id.to_owned(), Instant::now());
                    }
                }
                Err(AuthError::Unknown)
            }
        }
    }
}

impl KeyRing<KeyRow> {
    /// Checks an ingest request's `Authorization` header value.
    pub async fn authenticate(&self, header: Option<&str>) -> Result<Principal, AuthError> {
        let presented = header
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or(AuthError::Missing)?;
        let row = self.verify(presented).await?;
        Ok(Principal {
            key_id: row.key_id,
            tenant_id: row.tenant_id,
            source_service: row.source_service,
            categories: row.categories,
        })
    }
}

/// A key as created: the full text is here and nowhere else.
pub struct NewKey {
    pub key: String,
    pub row: KeyRow,
}

/// Creating, listing and revoking keys (`attest keys`). Each change is
/// recorded as an audit event of the key's tenant before it takes effect.
pub struct KeyAdmin {
    store: Store,
    ingest: Arc<Ingest>,
}

impl KeyAdmin {
    pub fn new(store: Store, ingest: Arc<Ingest>) -> KeyAdmin {
        KeyAdmin { store, ingest }
    }

    pub async fn create(
        &self,
        tenant: &str,
        service: &str,
        categories: &[String],
        description: &str,
        by: &str,
    ) -> Result<NewKey, KeyAdminError> {
        let invalid = |field, problem: String| KeyAdminError::Invalid { field, problem };
        if let Some(problem) = identifier(tenant, MAX_ID) {
            return Err(invalid("tenant", problem));
        }
        if let Some(problem) = identifier(service, MAX_ID) {
            return Err(invalid("service", problem));
        }
        for c in categories {
            if !Category::ALL.iter().any(|k| k.as_str() == c) {
                let known: Vec<&str> = Category::ALL.iter().map(|k| k.as_str()).collect();
                return Err(invalid(
                    "category",
                    format!("{c:?} is not one of {}", known.join(", ")),
                ));
            }
        }
        let minted = mint(PREFIX);
        let row = KeyRow {
            key_id: minted.id,
            tenant_id: tenant.to_owned(),
            source_service: service.to_owned(),
            categories: categories.to_vec(),
            secret_sha256: minted.secret_sha256,
            description: description.to_owned(),
            created_at: (now_ms() / 1000) as u32,
            revoked_at: 0,
        };
        self.record(&row, "api_key.create", by).await?;
        self.store.put_api_key(&row, now_ms() as u64).await?;
        info!(key_id = %row.key_id, tenant, service, "API key created");
        Ok(NewKey {
            key: minted.key,
            row,
        })
    }

    pub async fn list(&self) -> Result<Vec<KeyRow>, KeyAdminError> {
        Ok(self.store.api_keys().await?)
    }

    pub async fn revoke(&self, key_id: &str, by: &str) -> Result<KeyRow, KeyAdminError> {
        let mut row = self
            .store
            .api_key(key_id)
            .await?
            .filter(|k| k.revoked_at == 0)
            .ok_or_else(|| KeyAdminError::UnknownKey(key_id.to_owned()))?;
        row.revoked_at = (now_ms() / 1000) as u32;
        self.record(&row, "api_key.revoke", by).await?;
        self.store.put_api_key(&row, now_ms() as u64).await?;
        info!(key_id, "API key revoked");
        Ok(row)
    }

    async fn record(&self, key: &KeyRow, action: &str, by: &str) -> Result<(), KeyAdminError> {
        let metadata = BTreeMap::from([
            ("source_service".to_owned(), key.source_service.clone()),
            ("categories".to_owned(), key.categories.join(",")),
            ("description".to_owned(), key.description.clone()),
        ]);
        let event = internal_event(
            &key.tenant_id,
            Category::Admin,
            action,
            Outcome::Success,
            Resource {
                kind: "api_key".into(),
                id: key.key_id.clone(),
            },
            by,
            metadata,
        );
        self.ingest.record(event).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn made_up_ids_cost_at_most_a_few_lookups_a_second() {
        // Nothing listens on port 1: each lookup that is made fails fast as
        // "unavailable", each one refused by the bound is "unknown" at once.
        let store = Store::new(&crate::config::ClickHouseConfig {
            url: "http://127.0.0.1:1".into(),
            ..Default::default()
        });
        let ring: KeyRing<KeyRow> = KeyRing::new(store);
        let (mut asked, mut refused) = (0, 0);
        for i in 0..50 {
            match ring.find(&format!("{i:016x}")).await {
                Err(AuthError::Unavailable(_)) => asked += 1,
                Err(AuthError::Unknown) => refused += 1,
                other => panic!("{other:?}"),
            }
        }
        assert!(
            asked <= 2 * LOOKUPS_PER_SECOND,
            "{asked} lookups for 50 ids"
        );
        assert_eq!(asked + refused, 50);
    }

    #[test]
    fn keys_split_only_in_their_exact_shape() {
        let id = "0123456789abcdef";
        let secret = "ab".repeat(32);
        let key = format!("atk_{id}_{secret}");
        assert_eq!(split(PREFIX, &key), Some((id, secret.as_str())));
        for bad in [
            "",
            "atk_",
            &format!("atk_{id}"),
            &format!("atx_{id}_{secret}"),
            &format!("atk_{id}_{}", &secret[1..]),
            &format!("atk_{id}_{}zz", &secret[2..]),
            &format!("atk_{}_{secret}", &id[1..]),
        ] {
            assert_eq!(split(PREFIX, bad), None, "{bad}");
        }
    }

    #[test]
    fn digest_is_sha256_hex_and_comparison_is_exact() {
        assert_eq!(
            digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(same("abcd", "abcd"));
        assert!(!same("abcd", "abce"));
        assert!(!same("abcd", "abc"));
    }

    #[test]
    fn generated_parts_are_random_hex_of_the_right_length() {
        let (a, b) = (random_hex(32), random_hex(32));
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn categories_limit_what_a_key_may_send() {
        let mut p = Principal {
            key_id: "k".into(),
            tenant_id: "t".into(),
            source_service: "s".into(),
            categories: vec![],
        };
        assert!(p.may_send(Category::Admin));
        p.categories = vec!["authentication".into()];
        assert!(p.may_send(Category::Authentication));
        assert!(!p.may_send(Category::Admin));
    }
}
