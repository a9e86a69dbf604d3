//! The follow loop: fetch the next heights (catching up in ranges, then
//! long-polling for each new block), verify each, deliver it, persist the
//! cursor, repeat. Anything that does not verify is refused loudly; an
//! endpoint that errors, overflows the response cap or does not finish a
//! step in time is left for the next one with a warning; either way the
//! cursor does not move. At start-up a cursor is checked against the chain
//! before anything else happens.

use std::{
    num::NonZeroUsize,
    path::PathBuf,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use lru::LruCache;
use tendermint::{validator, Hash as TmHash, Time};
use tokio::task::JoinHandle;
use weft_core::RollupId;

use crate::{
    cursor::{Cursor, CursorFile},
    executor::{Executor, RollupBlock},
    source::{BatchSource, HeaderAt, SequencedBatch, SourceError, SourceErrorKind},
    verify::{ChainVerifier, Checked, TrustedRecord, VerifyError},
};

/// How many heights one request asks for at most.
const RANGE: u64 = 200;
/// How long a follower's request waits for a new height.
const LONG_POLL: Duration = Duration::from_secs(5);
/// Pause after an endpoint failure or a refusal.
const RETRY: Duration = Duration::from_millis(500);

/// Default number of validator sets kept (by hash). Sets change rarely;
/// this only bounds what a hostile endpoint can make us hold.
pub const DEFAULT_VALIDATOR_CACHE: NonZeroUsize = match NonZeroUsize::new(128) {
    Some(n) => n,
    None => unreachable!(),
};
/// Default time allowed for one step: fetching a range (including the
/// long poll), its validator sets, and checking it.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// Tunables of a [`Conductor`] beyond its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConductorOptions {
    /// How many validator sets to keep, least recently used evicted first.
    pub validator_cache: NonZeroUsize,
    /// Longest one fetch-and-check step may take before the endpoint is
    /// given up for the next one. A follower's long poll waits at most
    /// half of it.
    pub step_timeout: Duration,
}

impl Default for ConductorOptions {
    fn default() -> Self {
        ConductorOptions {
            validator_cache: DEFAULT_VALIDATOR_CACHE,
            step_timeout: DEFAULT_STEP_TIMEOUT,
        }
    }
}

/// Why the conductor stopped.
#[derive(Debug, thiserror::Error)]
pub enum ConductorError {
    /// The cursor could not be read or written.
    #[error("cursor: {0}")]
    Cursor(#[from] std::io::Error),
    /// The persisted trust state is unusable.
    #[error("cursor trust state: {0}")]
    Resume(String),
    /// The cursor was written while following another chain (a re-created
    /// network with the same chain id, another network, another anchor).
    #[error(
        "cursor at {} belongs to another chain: {mismatch}; move or delete it, or pass --reset-cursor",
        path.display()
    )]
    ForeignCursor {
        /// The cursor file.
        path: PathBuf,
        /// What disagrees.
        mismatch: ChainMismatch,
    },
    /// An explicit first height at or below what the cursor has already
    /// delivered: obeying would deliver those heights again, ignoring it
    /// would not do what was asked.
    #[error(
        "--from-height {from_height} asks for heights the cursor at {} has already delivered \
         (up to {cursor_height}): drop --from-height to resume at {}, or pass --reset-cursor \
         to deliver again from {from_height}",
        path.display(),
        cursor_height + 1
    )]
    FromHeightBeforeCursor {
        /// The cursor file.
        path: PathBuf,
        /// The cursor's height.
        cursor_height: u64,
        /// The height asked for.
        from_height: u64,
    },
}

/// How a cursor disagrees with the chain it is used with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainMismatch {
    /// The cursor's chain id is not the trust anchor's.
    #[error("it is for chain {cursor}, the trust anchor is for chain {anchor}")]
    ChainId {
        /// The cursor's chain id.
        cursor: String,
        /// The anchor's chain id.
        anchor: String,
    },
    /// The chain has another block at the cursor's height.
    #[error("block {height} hash {cursor}, chain has {chain} (per {endpoint})")]
    BlockHash {
        /// The cursor's height.
        height: u64,
        /// The cursor's block hash (hex).
        cursor: String,
        /// The chain's block hash there (hex).
        chain: String,
        /// Who served it.
        endpoint: String,
    },
    /// The chain has not reached the cursor's height: a chain never loses
    /// blocks, so the cursor is from an earlier network.
    #[error("block {height} hash {cursor}, chain has no block {height} (latest {latest} per {endpoint})")]
    Behind {
        /// The cursor's height.
        height: u64,
        /// The cursor's block hash (hex).
        cursor: String,
        /// The chain's latest height.
        latest: u64,
        /// Who said so.
        endpoint: String,
    },
}

/// Progress shared with the health endpoint.
#[derive(Debug, Default)]
pub struct Progress {
    /// Last height delivered (or verified and skipped).
    pub delivered: AtomicU64,
    /// Latest height an endpoint reported.
    pub latest: AtomicU64,
    /// Heights refused since start.
    pub refused: AtomicU64,
}

/// One rollup's conductor.
pub struct Conductor<E: Executor> {
    rollup_id: RollupId,
    source: BatchSource,
    executor: E,
    cursor: CursorFile,
    verifier: ChainVerifier,
    /// The `--from-height` asked for, if any.
    explicit_from: Option<u64>,
    from_height: u64,
    options: ConductorOptions,
    /// Heights per request; halved when a range does not fit the response
    /// cap, grown back after successes.
    range: u64,
    validator_sets: ValidatorSets,
    progress: Arc<Progress>,
}

impl<E: Executor> Conductor<E> {
    /// A conductor delivering heights from `from_height` on (from 1 when
    /// `None`). With a cursor, `None` resumes after it; an explicit height
    /// at or below the cursor's is refused by [`Self::run`]
    /// ([`ConductorError::FromHeightBeforeCursor`]), one beyond it is
    /// obeyed (heights in between are verified, not delivered).
    pub fn new(
        rollup_id: RollupId,
        source: BatchSource,
        executor: E,
        cursor: CursorFile,
        verifier: ChainVerifier,
        from_height: Option<u64>,
    ) -> Self {
        let options = ConductorOptions::default();
        Conductor {
            rollup_id,
            source,
            executor,
            cursor,
            verifier,
            explicit_from: from_height,
            from_height: from_height.unwrap_or(1).max(1),
            options,
            range: RANGE,
            validator_sets: ValidatorSets::new(options.validator_cache),
            progress: Arc::new(Progress::default()),
        }
    }

    /// Replaces the default [`ConductorOptions`].
    pub fn with_options(mut self, options: ConductorOptions) -> Self {
        self.options = options;
        self.validator_sets = ValidatorSets::new(options.validator_cache);
        self
    }

    /// Shared progress counters.
    pub fn progress(&self) -> Arc<Progress> {
        self.progress.clone()
    }

    /// Runs until `stop` resolves (checked between heights) or the cursor
    /// fails. With a cursor it first checks that the cursor belongs to the
    /// chain the endpoints serve and agrees with an explicit first height.
    pub async fn run(
        mut self,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), ConductorError> {
        tokio::pin!(stop);
        if let Some(c) = self.cursor.last().cloned() {
            self.check_cursor_locally(&c)?;
            self.verifier
                .resume(&c.trusted)
                .map_err(ConductorError::Resume)?;
            tokio::select! {
                _ = &mut stop => return Ok(()),
                checked = self.check_cursor_on_chain(&c) => checked?,
            }
            self.progress.delivered.store(c.height, Ordering::Relaxed);
            tracing::info!(height = c.height, cursor = %self.cursor.path().display(), "resuming from cursor");
            if self.from_height > c.height + 1 {
                tracing::info!(
                    from_height = self.from_height,
                    "--from-height is beyond the cursor: heights {}..{} are verified, not delivered",
                    c.height + 1,
                    self.from_height
                );
            }
        }
        let rollup_head = loop {
            match self.executor.head().await {
                Ok(h) => break h.unwrap_or(0),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot ask the rollup for its head; retrying");
                    tokio::time::sleep(RETRY).await;
                }
            }
        };
        if rollup_head > 0 {
            tracing::info!(
                rollup_head,
                "the rollup reports its head; heights up to it are verified but not re-delivered"
            );
        }
        // While one range is linked and delivered, the next one is already
        // being fetched, decoded and checked on the other cores.
        let mut ahead: Option<(u64, JoinHandle<Result<Prepared, SourceError>>)> = None;
        loop {
            let next = self.verifier.next_height();
            let mut task = match ahead.take() {
                Some((from, task)) if from == next => task,
                stale => {
                    if let Some((_, task)) = stale {
                        task.abort();
                    }
                    let wait = if self.progress.latest.load(Ordering::Relaxed) >= next {
                        Duration::ZERO
                    } else {
                        LONG_POLL.min(self.options.step_timeout / 2)
                    };
                    self.prepare(next, wait)
                }
            };
            // The timeout bounds the whole step, so neither a server that
            // drips its answer nor a proof that makes checking crawl can
            // hold the conductor on one endpoint.
            let step = self.options.step_timeout;
            let prepared = tokio::select! {
                _ = &mut stop => { task.abort(); return Ok(()) },
                joined = tokio::time::timeout(step, &mut task) => match joined {
                    Ok(Ok(prepared)) => prepared,
                    Ok(Err(e)) => Err(self.source_error(SourceErrorKind::Task(format!("fetch task failed: {e}")))),
                    Err(_) => {
                        task.abort();
                        Err(self.source_error(SourceErrorKind::Timeout(step)))
                    }
                },
            };
            let prepared = match prepared {
                Ok(p) => {
                    // Grow back slowly after a too-large answer.
                    self.range = (self.range + self.range / 4 + 1).min(RANGE);
                    p
                }
                Err(e) => {
                    if let SourceErrorKind::TooLarge { .. } = e.kind {
                        self.range = (self.range / 2).max(1);
                    }
                    tracing::warn!(error = %e, range = self.range, "fetching batches failed");
                    if let Some((_, task)) = ahead.take() {
                        task.abort();
                    }
                    self.source.fail_over();
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            };
            self.progress
                .latest
                .fetch_max(prepared.latest, Ordering::Relaxed);
            metrics::gauge!("weft_conductor_sequencer_height").set(prepared.latest as f64);
            let after = next + prepared.items.len() as u64;
            if !prepared.items.is_empty() && prepared.latest >= after {
                ahead = Some((after, self.prepare(after, Duration::ZERO)));
            }
            if let Err(e) = self.deliver_range(prepared, rollup_head).await {
                match e {
                    HandleError::Cursor(e) => return Err(ConductorError::Cursor(e)),
                    HandleError::Verify(e) => {
                        self.progress.refused.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!("weft_conductor_refused_total").increment(1);
                        tracing::error!(error = %e, endpoint = self.source.endpoint(), "REFUSED: not delivering unverified data");
                    }
                }
                if let Some((_, task)) = ahead.take() {
                    task.abort();
                }
                self.source.fail_over();
                tokio::time::sleep(RETRY).await;
            }
        }
    }

    fn source_error(&self, kind: SourceErrorKind) -> SourceError {
        SourceError {
            endpoint: self.source.endpoint().to_string(),
            kind,
        }
    }

    /// What can be checked without the network: the explicit first height
    /// against the cursor's, the cursor's chain id against the anchor's.
    fn check_cursor_locally(&self, c: &Cursor) -> Result<(), ConductorError> {
        if let Some(from_height) = self.explicit_from {
            if from_height <= c.height {
                return Err(ConductorError::FromHeightBeforeCursor {
                    path: self.cursor.path().to_path_buf(),
                    cursor_height: c.height,
                    from_height,
                });
            }
        }
        if let Some(anchor) = self.verifier.chain_id() {
            if anchor.as_str() != c.trusted.chain_id {
                return Err(ConductorError::ForeignCursor {
                    path: self.cursor.path().to_path_buf(),
                    mismatch: ChainMismatch::ChainId {
                        cursor: c.trusted.chain_id.clone(),
                        anchor: anchor.to_string(),
                    },
                });
            }
        }
        Ok(())
    }

    /// Asks every endpoint for the block at the cursor's height: one that
    /// serves the cursor's block hash proves the cursor belongs to this
    /// chain (the hash was verified when it was saved). Only when every
    /// endpoint answers and none agrees (another hash there, or no block
    /// there yet) is the cursor declared foreign; unreachable endpoints are
    /// retried, as when following.
    async fn check_cursor_on_chain(&self, c: &Cursor) -> Result<(), ConductorError> {
        let height = c.trusted.height;
        let cursor_hash = c.trusted.header_hash.to_lowercase();
        loop {
            let mut mismatch = None;
            let mut undecided = false;
            for endpoint in self.source.endpoints() {
                let answer = tokio::time::timeout(
                    self.options.step_timeout,
                    self.source.header_at(endpoint, height),
                )
                .await;
                match answer {
                    Ok(Ok(HeaderAt::Committed(signed))) => {
                        let chain = hex::encode(signed.header.hash().as_bytes());
                        if chain == cursor_hash {
                            tracing::info!(height, endpoint, "the cursor's block is on the chain");
                            return Ok(());
                        }
                        tracing::warn!(height, endpoint, cursor = %cursor_hash, %chain, "the chain has another block at the cursor's height");
                        mismatch.get_or_insert(ChainMismatch::BlockHash {
                            height,
                            cursor: cursor_hash.clone(),
                            chain,
                            endpoint: endpoint.clone(),
                        });
                    }
                    Ok(Ok(HeaderAt::NotYet { latest })) if latest < height => {
                        tracing::warn!(
                            height,
                            latest,
                            endpoint,
                            "the chain has not reached the cursor's height"
                        );
                        mismatch.get_or_insert(ChainMismatch::Behind {
                            height,
                            cursor: cursor_hash.clone(),
                            latest,
                            endpoint: endpoint.clone(),
                        });
                    }
                    Ok(Ok(HeaderAt::NotYet { latest })) => {
                        tracing::warn!(
                            height,
                            latest,
                            endpoint,
                            "endpoint has no header at the cursor's height"
                        );
                        undecided = true;
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "cannot check the cursor against this endpoint");
                        undecided = true;
                    }
                    Err(_) => {
                        tracing::warn!(endpoint, "checking the cursor timed out");
                        undecided = true;
                    }
                }
            }
            if let (Some(mismatch), false) = (mismatch, undecided) {
                return Err(ConductorError::ForeignCursor {
                    path: self.cursor.path().to_path_buf(),
                    mismatch,
                });
            }
            tokio::time::sleep(RETRY).await;
        }
    }

    /// Starts fetching heights from `from` (waiting up to `wait` for the
    /// first) and checking each one's signatures and proofs on every core:
    /// the part of verification that needs no trusted state.
    fn prepare(&self, from: u64, wait: Duration) -> JoinHandle<Result<Prepared, SourceError>> {
        let source = self.source.clone();
        let sets = self.validator_sets.clone();
        let verifier = self.verifier.clone();
        let rollup_id = self.rollup_id;
        let range = self.range;
        tokio::spawn(async move {
            let fetched = source.fetch(from, range, wait).await?;
            let mut item_sets = Vec::with_capacity(fetched.items.len());
            for item in &fetched.items {
                let vhash = item.signed_header.header.validators_hash;
                let set = match sets.get(&vhash) {
                    Some(set) => Some(set),
                    None => {
                        let set = Arc::new(source.validators(item.height).await?);
                        // Keyed by its own hash: a wrong set simply fails
                        // verification.
                        sets.insert(set.clone());
                        (set.hash() == vhash).then_some(set)
                    }
                };
                item_sets.push(set);
            }
            let started = Instant::now();
            let items = fetched.items;
            let (items, checks) = tokio::task::spawn_blocking(move || {
                let checks = check_all(&verifier, &items, &item_sets, &rollup_id);
                (items, checks)
            })
            .await
            .map_err(|e| SourceError {
                endpoint: source.endpoint().to_string(),
                kind: SourceErrorKind::Task(format!("verification task failed: {e}")),
            })?;
            let check_seconds = started.elapsed().as_secs_f64() / items.len().max(1) as f64;
            Ok(Prepared {
                items,
                checks,
                latest: fetched.latest,
                check_seconds,
            })
        })
    }
    /// Links each checked height to the trusted chain and delivers it,
    /// in order; the first failure stops the range with everything before
    /// it delivered.
    async fn deliver_range(
        &mut self,
        prepared: Prepared,
        rollup_head: u64,
    ) -> Result<(), HandleError> {
        let now = Time::now();
        for (item, check) in prepared.items.into_iter().zip(prepared.checks) {
            let started = Instant::now();
            let checked = check.map_err(HandleError::Verify)?;
            if checked.height != item.height {
                return Err(HandleError::Verify(VerifyError::WrongHeight {
                    expected: item.height,
                    served: checked.height,
                }));
            }
            let record = self
                .verifier
                .accept(&checked, now)
                .map_err(HandleError::Verify)?;
            metrics::histogram!("weft_conductor_verify_seconds")
                .record(prepared.check_seconds + started.elapsed().as_secs_f64());
            self.deliver(item, record, rollup_head).await?;
        }
        Ok(())
    }

    async fn deliver(
        &mut self,
        item: SequencedBatch,
        record: TrustedRecord,
        rollup_head: u64,
    ) -> Result<(), HandleError> {
        let height = item.height;
        let ack = if height >= self.from_height && height > rollup_head {
            let header = &item.signed_header.header;
            let block = RollupBlock {
                height,
                time: header.time.to_rfc3339(),
                sequencer_block_hash: record.header_hash.clone(),
                parent_hash: header
                    .last_block_id
                    .map(|b| hex::encode(b.hash.as_bytes()))
                    .unwrap_or_default(),
                txs: item.batch.items,
            };
            loop {
                match self.executor.execute(&block).await {
                    Ok(hash) => break hash,
                    Err(e) => {
                        // Backpressure: the rollup is down or slow; the same
                        // height is retried, nothing else moves.
                        tracing::warn!(height, error = %e, "delivery failed; retrying");
                        tokio::time::sleep(RETRY).await;
                    }
                }
            }
        } else {
            String::new()
        };
        self.cursor
            .save(height, ack, record)
            .map_err(HandleError::Cursor)?;
        self.progress.delivered.store(height, Ordering::Relaxed);
        metrics::gauge!("weft_conductor_delivered_height").set(height as f64);
        let latest = self.progress.latest.load(Ordering::Relaxed);
        metrics::gauge!("weft_conductor_lag_blocks").set(latest.saturating_sub(height) as f64);
        Ok(())
    }
}

/// [`ChainVerifier::check`] for every item, split over the machine's
/// cores; results in item order. An item whose validator set is unknown
/// fails.
fn check_all(
    verifier: &ChainVerifier,
    items: &[SequencedBatch],
    sets: &[Option<Arc<validator::Set>>],
    rollup_id: &RollupId,
) -> Vec<Result<Checked, VerifyError>> {
    let check = |(item, set): (&SequencedBatch, &Option<Arc<validator::Set>>)| match set {
        Some(set) => verifier.check(&item.signed_header, set, &item.batch, rollup_id),
        None => Err(VerifyError::Header {
            height: item.height,
            reason: "no validator set with the header's validators_hash".into(),
        }),
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len());
    if threads <= 1 {
        return items.iter().zip(sets).map(check).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = items
            .chunks(chunk)
            .zip(sets.chunks(chunk))
            .map(|(items, sets)| {
                scope.spawn(move || items.iter().zip(sets).map(check).collect::<Vec<_>>())
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|part| {
                part.join().unwrap_or_else(|_| {
                    vec![Err(VerifyError::Header {
                        height: 0,
                        reason: "verification thread panicked".into(),
                    })]
                })
            })
            .collect()
    })
}

#[derive(Debug, thiserror::Error)]
enum HandleError {
    #[error(transparent)]
    Verify(VerifyError),
    #[error("cursor: {0}")]
    Cursor(std::io::Error),
}

/// A fetched range with each height's stateless check done.
struct Prepared {
    items: Vec<SequencedBatch>,
    checks: Vec<Result<Checked, VerifyError>>,
    latest: u64,
    /// Checking time per height (for the verification histogram).
    check_seconds: f64,
}

/// Validator sets by hash, least recently used evicted first, shared by
/// the fetch tasks.
#[derive(Clone)]
struct ValidatorSets(Arc<Mutex<LruCache<TmHash, Arc<validator::Set>>>>);

impl ValidatorSets {
    fn new(capacity: NonZeroUsize) -> Self {
        ValidatorSets(Arc::new(Mutex::new(LruCache::new(capacity))))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<TmHash, Arc<validator::Set>>> {
        // A panic elsewhere cannot leave the cache half-updated in a way
        // that matters: every entry is checked against its hash on use.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, hash: &TmHash) -> Option<Arc<validator::Set>> {
        self.lock().get(hash).cloned()
    }

    /// Keyed by the set's own hash.
    fn insert(&self, set: Arc<validator::Set>) {
        self.lock().put(set.hash(), set);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(seed: u8) -> Arc<validator::Set> {
        let key = tendermint::PublicKey::from_raw_ed25519(
            ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
                .verifying_key()
                .as_bytes(),
        )
        .unwrap();
        Arc::new(validator::Set::without_proposer(vec![
            validator::Info::new(key, tendermint::vote::Power::from(1u32)),
        ]))
    }

    #[test]
    fn the_validator_set_cache_never_exceeds_its_capacity() {
        let cache = ValidatorSets::new(NonZeroUsize::new(3).unwrap());
        for seed in 0..20u8 {
            cache.insert(set(seed));
            assert!(cache.len() <= 3, "{} sets after {seed}", cache.len());
        }
        assert_eq!(cache.len(), 3);
        // The most recent ones are kept; the oldest are gone.
        assert!(cache.get(&set(19).hash()).is_some());
        assert!(cache.get(&set(0).hash()).is_none());
        // A use keeps a set from being evicted.
        let kept = set(17);
        assert!(cache.get(&kept.hash()).is_some());
        cache.insert(set(30));
        cache.insert(set(31));
        assert!(cache.get(&kept.hash()).is_some());
        assert!(cache.get(&set(18).hash()).is_none());
    }
}
