//! The follow loop: fetch the next heights (catching up in ranges, then
//! long-polling for each new block), verify each, deliver it, persist the
//! cursor, repeat. Anything that does not verify is refused loudly, the
//! endpoint is left for the next one, and the cursor does not move.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use tendermint::{validator, Hash as TmHash, Time};
use tokio::task::JoinHandle;
use weft_core::RollupId;

use crate::{
    cursor::CursorFile,
    executor::{Executor, RollupBlock},
    source::{BatchSource, Fetched, SequencedBatch, SourceError},
    verify::{ChainVerifier, Checked, TrustedRecord, VerifyError},
};

/// How many heights one request asks for.
const RANGE: u64 = 200;
/// How long a follower's request waits for a new height.
const LONG_POLL: Duration = Duration::from_secs(5);
/// Pause after an endpoint failure or a refusal.
const RETRY: Duration = Duration::from_millis(500);

/// Why the conductor stopped.
#[derive(Debug, thiserror::Error)]
pub enum ConductorError {
    /// The cursor could not be read or written.
    #[error("cursor: {0}")]
    Cursor(#[from] std::io::Error),
    /// The persisted trust state is unusable.
    #[error("cursor trust state: {0}")]
    Resume(String),
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
    from_height: u64,
    validator_sets: HashMap<TmHash, Arc<validator::Set>>,
    progress: Arc<Progress>,
}

impl<E: Executor> Conductor<E> {
    /// A conductor delivering heights `>= from_height`.
    pub fn new(
        rollup_id: RollupId,
        source: BatchSource,
        executor: E,
        cursor: CursorFile,
        verifier: ChainVerifier,
        from_height: u64,
    ) -> Self {
        Conductor {
            rollup_id,
            source,
            executor,
            cursor,
            verifier,
            from_height: from_height.max(1),
            validator_sets: HashMap::new(),
            progress: Arc::new(Progress::default()),
        }
    }

    /// Shared progress counters.
    pub fn progress(&self) -> Arc<Progress> {
        self.progress.clone()
    }

    /// Runs until `stop` resolves (checked between heights) or the cursor
    /// fails.
    pub async fn run(
        mut self,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), ConductorError> {
        if let Some(c) = self.cursor.last() {
            self.verifier
                .resume(&c.trusted)
                .map_err(ConductorError::Resume)?;
            self.progress.delivered.store(c.height, Ordering::Relaxed);
            tracing::info!(height = c.height, cursor = %self.cursor.path().display(), "resuming from cursor");
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
        tokio::pin!(stop);
        // While one range is verified and delivered, the next one is
        // already being fetched and decoded.
        let mut prefetch: Option<(u64, JoinHandle<Result<Fetched, SourceError>>)> = None;
        loop {
            let next = self.verifier.next_height();
            let fetched = match prefetch.take() {
                Some((from, mut handle)) if from == next => tokio::select! {
                    _ = &mut stop => { handle.abort(); return Ok(()) },
                    joined = &mut handle => joined.unwrap_or_else(|e| Err(SourceError {
                        endpoint: self.source.endpoint().to_string(),
                        message: format!("fetch task failed: {e}"),
                    })),
                },
                stale => {
                    if let Some((_, handle)) = stale {
                        handle.abort();
                    }
                    let wait = if self.progress.latest.load(Ordering::Relaxed) >= next {
                        Duration::ZERO
                    } else {
                        LONG_POLL
                    };
                    tokio::select! {
                        _ = &mut stop => return Ok(()),
                        f = self.source.fetch(next, RANGE, wait) => f,
                    }
                }
            };
            let fetched = match fetched {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!(error = %e, "fetching batches failed");
                    self.source.fail_over();
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            };
            self.progress
                .latest
                .fetch_max(fetched.latest, Ordering::Relaxed);
            metrics::gauge!("weft_conductor_sequencer_height").set(fetched.latest as f64);
            let after = next + fetched.items.len() as u64;
            if !fetched.items.is_empty() && fetched.latest >= after {
                let source = self.source.clone();
                prefetch = Some((
                    after,
                    tokio::spawn(async move { source.fetch(after, RANGE, Duration::ZERO).await }),
                ));
            }
            if let Err(e) = self.handle_range(fetched.items, rollup_head).await {
                match e {
                    HandleError::Cursor(e) => return Err(ConductorError::Cursor(e)),
                    HandleError::Source(e) => {
                        tracing::warn!(error = %e, "the endpoint failed mid-range");
                    }
                    HandleError::Verify(e) => {
                        self.progress.refused.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!("weft_conductor_refused_total").increment(1);
                        tracing::error!(error = %e, endpoint = self.source.endpoint(), "REFUSED: not delivering unverified data");
                    }
                }
                if let Some((_, handle)) = prefetch.take() {
                    handle.abort();
                }
                self.source.fail_over();
                tokio::time::sleep(RETRY).await;
            }
        }
    }

    /// Verifies a range of consecutive heights (signatures and proofs on
    /// every core, then the links in order) and delivers each verified
    /// height before looking at the next; the first failure stops the range
    /// with everything before it delivered.
    async fn handle_range(
        &mut self,
        items: Vec<SequencedBatch>,
        rollup_head: u64,
    ) -> Result<(), HandleError> {
        if items.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let mut sets = Vec::with_capacity(items.len());
        for item in &items {
            sets.push(self.validator_set(item).await?);
        }
        let verifier = self.verifier.clone();
        let rollup_id = self.rollup_id;
        let count = items.len();
        let (items, checks) = tokio::task::spawn_blocking(move || {
            let checks = check_all(&verifier, &items, &sets, &rollup_id);
            (items, checks)
        })
        .await
        .map_err(|e| HandleError::Source(format!("verification task failed: {e}")))?;
        let per_height = started.elapsed().as_secs_f64() / count as f64;
        let now = Time::now();
        for (item, check) in items.into_iter().zip(checks) {
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
                .record(per_height + started.elapsed().as_secs_f64());
            self.deliver(item, record, rollup_head).await?;
        }
        Ok(())
    }

    /// The validator set a header names, fetched once per distinct set.
    async fn validator_set(
        &mut self,
        item: &SequencedBatch,
    ) -> Result<Option<Arc<validator::Set>>, HandleError> {
        let vhash = item.signed_header.header.validators_hash;
        if !self.validator_sets.contains_key(&vhash) {
            let set = self
                .source
                .validators(item.height)
                .await
                .map_err(|e| HandleError::Source(e.to_string()))?;
            // Keyed by its own hash: a wrong set simply fails verification.
            self.validator_sets.insert(set.hash(), Arc::new(set));
        }
        Ok(self.validator_sets.get(&vhash).cloned())
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
    #[error("endpoint: {0}")]
    Source(String),
    #[error("cursor: {0}")]
    Cursor(std::io::Error),
}
