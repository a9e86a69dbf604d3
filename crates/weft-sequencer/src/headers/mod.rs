//! Signed headers for the batch API: a follower copies each committed
//! height's signed header (header + commit, CometBFT's `/commit`) from the
//! local CometBFT into the store, so rollup conductors can fetch a batch and
//! the signatures that vouch for it in one request, and catch up over
//! ranges without one RPC round trip per height.
//!
//! Validator sets are cached the same way, keyed by their hash, so a
//! conductor catching up over thousands of heights is served from the store
//! alone, without asking CometBFT anything.
//!
//! Nothing here is consensus state: it is a cache of what CometBFT already
//! holds, rebuilt on demand when missing.

use std::time::Duration;

use redb::ReadTransaction;
use serde_json::Value;

use crate::storage::{Storage, StorageError, SIGNED_HEADERS, VALIDATOR_SETS};

/// Why a signed header could not be had.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    /// The local CometBFT did not answer or answered an error.
    #[error("CometBFT RPC: {0}")]
    Rpc(String),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Reads and fills the signed-header cache.
#[derive(Clone)]
pub struct Headers {
    storage: Storage,
    rpc: String,
    http: reqwest::Client,
}

impl Headers {
    /// A cache over `storage`, filled from the CometBFT RPC at `rpc`.
    pub fn new(storage: Storage, rpc: &str) -> Self {
        Headers {
            storage,
            rpc: rpc.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
        }
    }

    /// The signed header at `height` from the cache, fetching and caching
    /// it if missing. `None` when CometBFT has no commit for it yet.
    pub async fn get(&self, height: u64) -> Result<Option<Value>, HeaderError> {
        if let Some(v) = cached(&self.storage.read()?, height)? {
            return Ok(Some(v));
        }
        let Some(v) = self.fetch(height).await? else {
            return Ok(None);
        };
        self.store(height, &v)?;
        Ok(Some(v))
    }

    /// `GET <rpc>/<method>?<query>` → the JSON-RPC body (result or error).
    async fn rpc_get(&self, method: &str, query: &[(&str, String)]) -> Result<Value, HeaderError> {
        let rpc_err = |e: reqwest::Error| HeaderError::Rpc(e.to_string());
        let resp = self
            .http
            .get(format!("{}/{method}", self.rpc))
            .query(query)
            .send()
            .await
            .map_err(rpc_err)?;
        resp.json().await.map_err(rpc_err)
    }

    /// CometBFT's `/commit?height=H` → `result.signed_header`.
    async fn fetch(&self, height: u64) -> Result<Option<Value>, HeaderError> {
        let body = self
            .rpc_get("commit", &[("height", height.to_string())])
            .await?;
        if body.get("error").is_some() {
            // "height must be less than or equal to the current blockchain height"
            return Ok(None);
        }
        Ok(body.pointer("/result/signed_header").cloned())
    }

    fn store(&self, height: u64, signed_header: &Value) -> Result<(), StorageError> {
        self.store_all(&[(height, signed_header.clone())])
    }

    fn store_all(&self, headers: &[(u64, Value)]) -> Result<(), StorageError> {
        self.storage.write_index(|txn| {
            let mut t = txn.open_table(SIGNED_HEADERS)?;
            for (height, header) in headers {
                let bytes = serde_json::to_vec(header).unwrap_or_default();
                t.insert(*height, bytes.as_slice())?;
            }
            Ok(())
        })
    }

    /// The validator set at `height` as CometBFT's `/validators` JSON
    /// `{ block_height, validators, count, total }` with every page joined:
    /// from the cache when the height's header is cached and its set was
    /// seen before, else from CometBFT (and then cached).
    pub async fn validators(&self, height: u64) -> Result<Value, HeaderError> {
        let set_hash = match cached(&self.storage.read()?, height)? {
            Some(header) => validators_hash(&header),
            None => None,
        };
        if let Some(hash) = &set_hash {
            if let Some(mut set) = cached_set(&self.storage.read()?, hash)? {
                set["block_height"] = Value::String(height.to_string());
                return Ok(set);
            }
        }
        let set = self.fetch_validators(height).await?;
        if let Some(hash) = set_hash {
            self.store_set(&hash, &set)?;
        }
        Ok(set)
    }

    /// Caches `set` under `hash` if it really hashes to it (a set that
    /// does not would be served for every height naming that hash).
    fn store_set(&self, hash: &[u8], set: &Value) -> Result<(), StorageError> {
        if set_hash(set).as_deref() != Some(hash) {
            tracing::warn!(
                hash = hex::encode(hash),
                "CometBFT's validator set does not hash to the header's validators_hash; not caching it"
            );
            return Ok(());
        }
        self.storage.write_index(|txn| {
            let mut t = txn.open_table(VALIDATOR_SETS)?;
            let bytes = serde_json::to_vec(set).unwrap_or_default();
            t.insert(hash, bytes.as_slice())?;
            Ok(())
        })
    }

    /// All pages of CometBFT's `/validators?height=H`, joined.
    async fn fetch_validators(&self, height: u64) -> Result<Value, HeaderError> {
        let mut all: Vec<Value> = Vec::new();
        let mut page = 1u32;
        loop {
            let query = [
                ("height", height.to_string()),
                ("page", page.to_string()),
                ("per_page", "100".into()),
            ];
            let body = self.rpc_get("validators", &query).await?;
            if let Some(err) = body.get("error") {
                return Err(HeaderError::Rpc(err.to_string()));
            }
            let result = body.get("result").cloned().unwrap_or_default();
            let batch = result
                .get("validators")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let total: usize = result
                .get("total")
                .and_then(Value::as_str)
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            let got = batch.len();
            all.extend(batch);
            if got == 0 || all.len() >= total || page >= 1000 {
                let count = all.len().to_string();
                return Ok(serde_json::json!({
                    "block_height": height.to_string(),
                    "validators": all,
                    "count": count,
                    "total": count,
                }));
            }
            page += 1;
        }
    }

    /// Copies signed headers of newly committed heights into the cache,
    /// forever; a few in flight at once while catching up.
    pub async fn follow(self) {
        let mut next = match self.first_missing() {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(error = %e, "signed-header follower cannot read storage; not following");
                return;
            }
        };
        let mut known_sets: std::collections::BTreeSet<Vec<u8>> = Default::default();
        loop {
            let committed = self
                .storage
                .committed()
                .ok()
                .flatten()
                .map(|c| c.height)
                .unwrap_or(0);
            if next > committed {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            let last = committed.min(next + 31);
            let fetches = (next..=last).map(|h| {
                let this = self.clone();
                async move { (h, this.fetch(h).await) }
            });
            let mut fetched = Vec::new();
            for (h, result) in futures::future::join_all(fetches).await {
                match result {
                    Ok(Some(v)) => fetched.push((h, v)),
                    // Not yet available (or CometBFT busy): retry from here.
                    Ok(None) | Err(_) => break,
                }
            }
            // A set is fetched the first time a header names it, so the
            // validators of every cached header are served from the store.
            for (h, header) in &fetched {
                let Some(hash) = validators_hash(header) else {
                    continue;
                };
                if known_sets.contains(&hash) {
                    continue;
                }
                let cached = self
                    .storage
                    .read()
                    .ok()
                    .and_then(|txn| cached_set(&txn, &hash).ok().flatten())
                    .is_some();
                if !cached {
                    match self.fetch_validators(*h).await {
                        Ok(set) => {
                            if let Err(e) = self.store_set(&hash, &set) {
                                tracing::warn!(error = %e, "caching a validator set failed");
                                continue;
                            }
                        }
                        Err(e) => {
                            tracing::debug!(height = h, error = %e, "validator set not cached yet");
                            continue;
                        }
                    }
                }
                known_sets.insert(hash);
            }
            match self.store_all(&fetched) {
                Ok(()) => next += fetched.len() as u64,
                Err(e) => tracing::warn!(error = %e, "caching signed headers failed; retrying"),
            }
            if next <= last {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    fn first_missing(&self) -> Result<u64, StorageError> {
        let txn = self.storage.read()?;
        let t = txn.open_table(SIGNED_HEADERS)?;
        use redb::ReadableTable;
        let last = t.last()?.map(|(k, _)| k.value()).unwrap_or(0);
        Ok(last + 1)
    }
}

/// The `header.validators_hash` of a signed header's JSON, as bytes.
fn validators_hash(signed_header: &Value) -> Option<Vec<u8>> {
    let hex_hash = signed_header.pointer("/header/validators_hash")?.as_str()?;
    hex::decode(hex_hash).ok().filter(|h| h.len() == 32)
}

/// The CometBFT hash of a `/validators` JSON answer's set.
fn set_hash(set: &Value) -> Option<Vec<u8>> {
    let infos: Vec<tendermint::validator::Info> =
        serde_json::from_value(set.get("validators")?.clone()).ok()?;
    Some(
        tendermint::validator::Set::without_proposer(infos)
            .hash()
            .as_bytes()
            .to_vec(),
    )
}

/// A cached validator set by hash.
fn cached_set(txn: &ReadTransaction, hash: &[u8]) -> Result<Option<Value>, StorageError> {
    let t = txn.open_table(VALIDATOR_SETS)?;
    let v = t.get(hash)?;
    v.map(|v| {
        serde_json::from_slice(v.value())
            .map_err(|_| StorageError::Corrupt(format!("validator_sets/{}", hex::encode(hash))))
    })
    .transpose()
}

/// A cached signed header.
pub fn cached(txn: &ReadTransaction, height: u64) -> Result<Option<Value>, StorageError> {
    let t = txn.open_table(SIGNED_HEADERS)?;
    let v = t.get(height)?;
    v.map(|v| {
        serde_json::from_slice(v.value())
            .map_err(|_| StorageError::Corrupt(format!("signed_headers/{height}")))
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tendermint::{validator, vote, PublicKey};

    use super::*;

    fn set_json(seeds: &[u8]) -> (Value, Vec<u8>) {
        let infos: Vec<validator::Info> = seeds
            .iter()
            .map(|seed| {
                let key = ed25519_dalek::SigningKey::from_bytes(&[*seed; 32]);
                let pk = PublicKey::from_raw_ed25519(key.verifying_key().as_bytes()).unwrap();
                validator::Info::new(pk, vote::Power::from(10u32))
            })
            .collect();
        let hash = validator::Set::without_proposer(infos.clone())
            .hash()
            .as_bytes()
            .to_vec();
        let count = infos.len().to_string();
        (
            json!({ "block_height": "7", "validators": infos, "count": count, "total": count }),
            hash,
        )
    }

    #[test]
    fn a_set_is_hashed_as_cometbft_hashes_it() {
        let (set, hash) = set_json(&[1, 2, 3, 4]);
        assert_eq!(set_hash(&set), Some(hash.clone()));
        let (other, other_hash) = set_json(&[1, 2, 3]);
        assert_ne!(hash, other_hash);
        assert_eq!(set_hash(&other), Some(other_hash));
        assert_eq!(set_hash(&json!({ "validators": "garbage" })), None);
    }

    #[test]
    fn the_validators_hash_is_read_from_a_signed_header() {
        let hash = "AB".repeat(32);
        let header = json!({ "header": { "validators_hash": hash }, "commit": {} });
        assert_eq!(validators_hash(&header), Some(vec![0xab; 32]));
        assert_eq!(
            validators_hash(&json!({ "header": { "validators_hash": "ABCD" } })),
            None
        );
        assert_eq!(validators_hash(&json!({ "header": {} })), None);
    }

    #[tokio::test]
    async fn only_a_set_matching_its_hash_is_cached() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let headers = Headers::new(storage.clone(), "http://127.0.0.1:9");
        let (set, hash) = set_json(&[5, 6]);
        headers.store_set(&[0u8; 32], &set).unwrap();
        assert_eq!(
            cached_set(&storage.read().unwrap(), &[0u8; 32]).unwrap(),
            None
        );
        headers.store_set(&hash, &set).unwrap();
        assert_eq!(
            cached_set(&storage.read().unwrap(), &hash).unwrap(),
            Some(set)
        );
    }
}
