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

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use redb::ReadTransaction;
use serde_json::Value;
use tendermint_rpc::{Client, HttpClient, Paging};
use tokio::sync::watch;

use redb::TableDefinition;

use crate::storage::{read_table, Storage, StorageError};

/// Signed headers (CometBFT `/commit` JSON) by height.
pub(crate) const SIGNED_HEADERS: TableDefinition<u64, &[u8]> =
    TableDefinition::new("signed_headers");
/// Validator sets by their hash (a header's `validators_hash`, 32 bytes).
pub(crate) const VALIDATOR_SETS: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("validator_sets");

/// How long one CometBFT RPC call may take.
const RPC_TIMEOUT: Duration = Duration::from_secs(10);
/// Heights fetched at once while catching up.
const FOLLOW_BATCH: u64 = 32;
/// The follower's first retry delay after a failure.
pub const FOLLOW_MIN_BACKOFF: Duration = Duration::from_millis(50);
/// The follower's longest retry delay.
pub const FOLLOW_MAX_BACKOFF: Duration = Duration::from_secs(5);
/// At most one warning per this long while the follower keeps failing.
pub const FOLLOW_WARN_EVERY: Duration = Duration::from_secs(30);

/// Why a signed header or validator set could not be had.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    /// The configured CometBFT RPC address is not a usable HTTP URL.
    #[error("CometBFT RPC address `{url}`: {source}")]
    Url {
        /// The address as configured.
        url: String,
        /// Why it was refused.
        source: Box<tendermint_rpc::Error>,
    },
    /// The local CometBFT did not answer, or answered an error (height
    /// pruned, not yet stored, node down).
    #[error("CometBFT RPC at height {height}: {source}")]
    Rpc {
        /// The height asked for.
        height: u64,
        /// The client's error, by kind.
        source: Box<tendermint_rpc::Error>,
    },
    /// CometBFT heights are `int64`; this one is beyond them.
    #[error("height {0} is beyond CometBFT's heights")]
    Height(u64),
    /// A value could not be turned into JSON for the store.
    #[error("encoding for the store: {0}")]
    Encode(#[from] serde_json::Error),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Reads and fills the signed-header cache.
#[derive(Clone)]
pub struct Headers {
    storage: Storage,
    client: HttpClient,
}

impl Headers {
    /// A cache over `storage`, filled from the CometBFT RPC at `rpc`
    /// (`http://host:port`).
    pub fn new(storage: Storage, rpc: &str) -> Result<Self, HeaderError> {
        let url_err = |source| HeaderError::Url {
            url: rpc.to_string(),
            source: Box::new(source),
        };
        let url = rpc.parse().map_err(url_err)?;
        let client = HttpClient::builder(url)
            .timeout(RPC_TIMEOUT)
            .build()
            .map_err(url_err)?;
        storage.create_tables(|txn| {
            txn.open_table(SIGNED_HEADERS)?;
            txn.open_table(VALIDATOR_SETS)?;
            Ok(())
        })?;
        Ok(Headers { storage, client })
    }

    /// The CometBFT RPC client this cache uses.
    pub fn rpc_client(&self) -> &HttpClient {
        &self.client
    }

    /// The signed header at a committed `height`, from the cache, else
    /// fetched from CometBFT and cached. Callers ask only for heights the
    /// app has committed, which CometBFT stored before the app's Commit; an
    /// error therefore means CometBFT is down or has pruned the height.
    pub async fn get(&self, height: u64) -> Result<Value, HeaderError> {
        if let Some(v) = cached(&self.storage.read()?, height)? {
            return Ok(v);
        }
        let v = self.fetch(height).await?;
        self.store_all(&[(height, v.clone())])?;
        Ok(v)
    }

    /// CometBFT's `/commit?height=H` → its `signed_header`, as the JSON
    /// tendermint-rs writes for it (CometBFT's own shape; pinned by a test).
    async fn fetch(&self, height: u64) -> Result<Value, HeaderError> {
        let response = self
            .client
            .commit(tm_height(height)?)
            .await
            .map_err(|source| HeaderError::Rpc {
                height,
                source: Box::new(source),
            })?;
        signed_header_json(&response.signed_header)
    }

    pub(crate) fn store_all(&self, headers: &[(u64, Value)]) -> Result<(), HeaderError> {
        let encoded = headers
            .iter()
            .map(|(h, v)| Ok((*h, serde_json::to_vec(v)?)))
            .collect::<Result<Vec<_>, serde_json::Error>>()?;
        self.storage.write_index(|txn| {
            let mut t = txn.open_table(SIGNED_HEADERS)?;
            for (height, bytes) in &encoded {
                t.insert(*height, bytes.as_slice())?;
            }
            Ok(())
        })?;
        Ok(())
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
    fn store_set(&self, hash: &[u8], set: &Value) -> Result<(), HeaderError> {
        if set_hash(set).as_deref() != Some(hash) {
            tracing::warn!(
                hash = hex::encode(hash),
                "CometBFT's validator set does not hash to the header's validators_hash; not caching it"
            );
            return Ok(());
        }
        let bytes = serde_json::to_vec(set)?;
        self.storage.write_index(|txn| {
            let mut t = txn.open_table(VALIDATOR_SETS)?;
            t.insert(hash, bytes.as_slice())?;
            Ok(())
        })?;
        Ok(())
    }

    /// CometBFT's `/validators?height=H`, every page joined, in the shape
    /// of one unpaged answer.
    async fn fetch_validators(&self, height: u64) -> Result<Value, HeaderError> {
        let response = self
            .client
            .validators(tm_height(height)?, Paging::All)
            .await
            .map_err(|source| HeaderError::Rpc {
                height,
                source: Box::new(source),
            })?;
        Ok(validators_json(height, &response.validators)?)
    }

    /// Copies signed headers of newly committed heights into the cache,
    /// forever; a few in flight at once while catching up. Woken by
    /// `commits` (the app's committed height), so an idle chain costs no
    /// RPC calls. A failure (CometBFT down, a pruned height) is retried with
    /// capped exponential backoff and reported at warn, at most once per
    /// [`FOLLOW_WARN_EVERY`]. Returns when the app stops publishing heights.
    pub async fn follow(self, mut commits: watch::Receiver<u64>) {
        let mut next = match self.first_missing() {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(error = %e, "signed-header follower cannot read storage; not following");
                return;
            }
        };
        let mut known_sets = BTreeSet::new();
        let mut backoff = Backoff::new(FOLLOW_MIN_BACKOFF, FOLLOW_MAX_BACKOFF, FOLLOW_WARN_EVERY);
        loop {
            // Err: the app is gone (tests, shutdown); nothing more will commit.
            if commits.has_changed().is_err() {
                return;
            }
            let committed = *commits.borrow_and_update();
            if next > committed {
                if commits.changed().await.is_err() {
                    return;
                }
                continue;
            }
            let last = committed.min(next.saturating_add(FOLLOW_BATCH - 1));
            match self.copy(next, last, &mut known_sets).await {
                Ok(copied) => {
                    next += copied;
                    if let Some(failures) = backoff.succeeded() {
                        tracing::info!(
                            height = next - 1,
                            failures,
                            "signed-header follower recovered"
                        );
                    }
                }
                Err(e) => {
                    let retry = backoff.failed(Instant::now());
                    if retry.log {
                        tracing::warn!(
                            height = next,
                            error = %e,
                            failures = retry.failures,
                            retry_in = ?retry.delay,
                            "signed-header follower cannot copy this height; retrying with backoff"
                        );
                    }
                    tokio::time::sleep(retry.delay).await;
                }
            }
        }
    }

    /// Copies the signed headers of `from..=to` (stopping at the first
    /// that fails) and the validator sets they name. Returns how many
    /// heights were copied; an error only when none was.
    async fn copy(
        &self,
        from: u64,
        to: u64,
        known_sets: &mut BTreeSet<Vec<u8>>,
    ) -> Result<u64, HeaderError> {
        let fetches = (from..=to).map(|h| async move { (h, self.fetch(h).await) });
        let mut fetched = Vec::new();
        for (h, result) in futures::future::join_all(fetches).await {
            match result {
                Ok(v) => fetched.push((h, v)),
                Err(e) if fetched.is_empty() => return Err(e),
                // Later heights are retried from here on the next round.
                Err(_) => break,
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
            if cached_set(&self.storage.read()?, &hash)?.is_none() {
                match self.fetch_validators(*h).await {
                    Ok(set) => self.store_set(&hash, &set)?,
                    Err(e) => {
                        // Served (and cached) on demand instead.
                        tracing::debug!(height = h, error = %e, "validator set not cached yet");
                        continue;
                    }
                }
            }
            known_sets.insert(hash);
        }
        self.store_all(&fetched)?;
        Ok(fetched.len() as u64)
    }

    fn first_missing(&self) -> Result<u64, StorageError> {
        use redb::ReadableTable;
        let txn = self.storage.read()?;
        let Some(t) = read_table(&txn, SIGNED_HEADERS)? else {
            return Ok(1);
        };
        let last = t.last()?.map(|(k, _)| k.value()).unwrap_or(0);
        Ok(last + 1)
    }
}

/// What to do after a failure: wait `delay`, and whether to log it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// How long to wait before trying again.
    pub delay: Duration,
    /// Failures in a row, this one included.
    pub failures: u32,
    /// Whether this failure should be logged (rate-limited).
    pub log: bool,
}

/// Capped exponential backoff with rate-limited reporting: the delay
/// doubles from `min` to at most `max` on every failure in a row and
/// returns to `min` on success; a failure is reported at most once per
/// `log_every`, the first of a streak always.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
    failures: u32,
    log_every: Duration,
    last_log: Option<Instant>,
}

impl Backoff {
    /// A backoff from `min` to `max`, reporting once per `log_every`.
    pub fn new(min: Duration, max: Duration, log_every: Duration) -> Self {
        Backoff {
            min,
            max: max.max(min),
            next: min,
            failures: 0,
            log_every,
            last_log: None,
        }
    }

    /// Records a failure at `now`: how long to wait and whether to log.
    pub fn failed(&mut self, now: Instant) -> Retry {
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        self.failures = self.failures.saturating_add(1);
        let log = self.failures == 1
            || self
                .last_log
                .is_none_or(|at| now.saturating_duration_since(at) >= self.log_every);
        if log {
            self.last_log = Some(now);
        }
        Retry {
            delay,
            failures: self.failures,
            log,
        }
    }

    /// Records a success: the delay returns to `min`. Returns how many
    /// failures in a row preceded it, if any.
    pub fn succeeded(&mut self) -> Option<u32> {
        let failures = std::mem::take(&mut self.failures);
        self.next = self.min;
        self.last_log = None;
        (failures > 0).then_some(failures)
    }
}

/// A signed header as CometBFT's `/commit` writes it. tendermint-rs
/// writes it the same way but for an absent vote's signature, `""` where
/// CometBFT has `null`; that one field is put back (both parse alike).
fn signed_header_json(
    signed_header: &tendermint::block::signed_header::SignedHeader,
) -> Result<Value, HeaderError> {
    let mut v = serde_json::to_value(signed_header)?;
    if let Some(sigs) = v
        .pointer_mut("/commit/signatures")
        .and_then(Value::as_array_mut)
    {
        for sig in sigs {
            if sig.get("signature").and_then(Value::as_str) == Some("") {
                sig["signature"] = Value::Null;
            }
        }
    }
    Ok(v)
}

fn tm_height(height: u64) -> Result<tendermint::block::Height, HeaderError> {
    tendermint::block::Height::try_from(height).map_err(|_| HeaderError::Height(height))
}

/// CometBFT's `/validators` answer for one height with every validator
/// on one page: the JSON a conductor parses.
fn validators_json(
    height: u64,
    validators: &[tendermint::validator::Info],
) -> Result<Value, serde_json::Error> {
    let count = validators.len().to_string();
    Ok(serde_json::json!({
        "block_height": height.to_string(),
        "validators": serde_json::to_value(validators)?,
        "count": count,
        "total": count,
    }))
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
    let Some(t) = read_table(txn, VALIDATOR_SETS)? else {
        return Ok(None);
    };
    let v = t.get(hash)?;
    v.map(|v| {
        serde_json::from_slice(v.value())
            .map_err(|_| StorageError::Corrupt(format!("validator_sets/{}", hex::encode(hash))))
    })
    .transpose()
}

/// A cached signed header.
pub fn cached(txn: &ReadTransaction, height: u64) -> Result<Option<Value>, StorageError> {
    let Some(t) = read_table(txn, SIGNED_HEADERS)? else {
        return Ok(None);
    };
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
        let headers = Headers::new(storage.clone(), "http://127.0.0.1:9").unwrap();
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

    /// CometBFT v0.38's `/commit` answer (a present, an absent and a nil
    /// vote), in CometBFT's own JSON.
    const COMMIT: &str = include_str!("testdata/commit_v0_38.json");

    #[test]
    fn a_signed_header_is_stored_in_cometbft_json_and_parses_as_the_conductor_parses_it() {
        let answer: Value = serde_json::from_str(COMMIT).unwrap();
        let cometbft_json = answer["result"]["signed_header"].clone();
        // What the RPC client decodes...
        let decoded: tendermint_rpc::endpoint::commit::Response =
            serde_json::from_value(answer["result"].clone()).unwrap();
        // ...is stored as this JSON: CometBFT's shape, field for field.
        let stored = signed_header_json(&decoded.signed_header).unwrap();
        assert_eq!(stored, cometbft_json);
        // The conductor (weft-conductor/src/source.rs) reads it back into
        // the same header and commit, so the same header hash.
        let parsed: tendermint::block::signed_header::SignedHeader =
            serde_json::from_value(stored.clone()).unwrap();
        assert_eq!(parsed, decoded.signed_header);
        assert_eq!(parsed.header.hash(), decoded.signed_header.header.hash());
        assert_eq!(validators_hash(&stored), validators_hash(&cometbft_json));
        assert!(validators_hash(&stored).is_some());
    }

    #[test]
    fn a_validator_set_is_served_as_cometbft_serves_it_and_parses_back() {
        let (set, hash) = set_json(&[1, 2, 3]);
        let infos: Vec<validator::Info> =
            serde_json::from_value(set["validators"].clone()).unwrap();
        let served = validators_json(7, &infos).unwrap();
        assert_eq!(
            served, set,
            "same fields, strings where CometBFT has strings"
        );
        // The conductor's parse (`{ validators: Vec<Info> }`) gives the same set.
        let back: Vec<validator::Info> =
            serde_json::from_value(served["validators"].clone()).unwrap();
        assert_eq!(back, infos);
        assert_eq!(set_hash(&served), Some(hash));
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_and_resets_on_success() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(50), Duration::from_secs(5), Duration::from_secs(30));
        let t0 = Instant::now();
        let delays: Vec<Duration> = (0..10).map(|_| b.failed(t0).delay).collect();
        assert_eq!(
            delays,
            [50, 100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000].map(ms)
        );
        assert_eq!(b.succeeded(), Some(10));
        assert_eq!(b.failed(t0).delay, ms(50), "reset after a success");
        assert_eq!(b.succeeded(), Some(1));
        assert_eq!(b.succeeded(), None, "no failures since the last success");
        // Never overflows, however long the outage.
        for _ in 0..200 {
            b.failed(t0);
        }
        assert_eq!(b.failed(t0).delay, Duration::from_secs(5));
    }

    #[test]
    fn backoff_reports_the_first_failure_then_at_most_once_per_interval() {
        let mut b = Backoff::new(
            Duration::from_millis(50),
            Duration::from_secs(5),
            Duration::from_secs(30),
        );
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert!(b.failed(at(0)).log, "the first failure of a streak");
        assert!(!b.failed(at(1)).log);
        assert!(!b.failed(at(29)).log);
        let r = b.failed(at(30));
        assert!(r.log && r.failures == 4, "{r:?}");
        assert!(!b.failed(at(31)).log);
        b.succeeded();
        assert!(b.failed(at(32)).log, "a new streak is reported at once");
    }

    /// A CometBFT stand-in whose every RPC call fails with a JSON-RPC
    /// error (as for a pruned height), counting the calls.
    async fn failing_cometbft() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::{atomic::AtomicUsize, Arc};
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move || {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async {
                    axum::Json(json!({ "jsonrpc": "2.0", "id": -1, "error": {
                        "code": -32603, "message": "Internal error",
                        "data": "height 1 is not available, lowest height is 1000" } }))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}"), calls)
    }

    #[tokio::test]
    async fn the_follower_backs_off_while_cometbft_fails() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let (rpc, calls) = failing_cometbft().await;
        let headers = Headers::new(storage, &rpc).unwrap();
        let (_tx, rx) = watch::channel(1u64);
        let follower = tokio::spawn(headers.follow(rx));
        tokio::time::sleep(Duration::from_millis(1600)).await;
        follower.abort();
        let calls = calls.load(std::sync::atomic::Ordering::SeqCst);
        // Backoff tries at 0, 50, 150, 350, 750 and 1550 ms: 6 calls. A
        // fixed 50 ms retry would have made about 30.
        assert!((3..=8).contains(&calls), "{calls} calls in 1.6 s");
    }

    #[tokio::test]
    async fn the_follower_waits_for_commits_instead_of_polling() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let (rpc, calls) = failing_cometbft().await;
        let headers = Headers::new(storage, &rpc).unwrap();
        let (tx, rx) = watch::channel(0u64);
        let follower = tokio::spawn(headers.follow(rx));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 0);
        tx.send_replace(1);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(calls.load(std::sync::atomic::Ordering::SeqCst) >= 1);
        drop(tx);
        // With no app left to publish heights the follower ends.
        tokio::time::timeout(Duration::from_secs(10), follower)
            .await
            .expect("the follower stops when the app is gone")
            .unwrap();
    }
}
