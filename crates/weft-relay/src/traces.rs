//! Bid traces in redb: every bid the relay accepted (or cancelled) and
//! every winning bid it delivered to a validator, kept for a retention
//! window of heights. Writes go through one writer thread that commits in
//! batches, so a burst of submissions costs one fsync, not one each.

use std::{
    path::Path,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use utoipa::ToSchema;
use weft_core::{Address, Hash, RollupId};

/// Key: (height, sequence number); value: the trace as JSON.
const RECEIVED: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("bids_received");
const DELIVERED: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("bids_delivered");

/// Most traces one writer transaction commits.
const MAX_BATCH: usize = 4096;

/// Why the trace store failed.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// redb failed.
    #[error("trace store: {0}")]
    Store(String),
    /// The writer thread is gone.
    #[error("the trace writer has stopped")]
    WriterGone,
}

fn store_err(e: impl std::fmt::Display) -> TraceError {
    TraceError::Store(e.to_string())
}

/// One bid the relay accepted, or one cancellation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BidTrace {
    /// Position in the relay's record (unique, increasing).
    pub seq: u64,
    /// The bid's target height.
    pub height: u64,
    /// The bid hash (or, for a cancellation by request, the request hash).
    #[schema(value_type = String)]
    pub hash: Hash,
    /// The builder's address.
    #[schema(value_type = String)]
    pub builder: Address,
    /// The amount, decimal.
    pub amount: String,
    /// The rollups the bid covers.
    #[schema(value_type = Vec<String>)]
    pub rollups: Vec<RollupId>,
    /// `accepted` or `cancelled`.
    pub status: String,
    /// Rollup data bytes in the bid.
    pub data_bytes: u64,
    /// The relay's clock when it arrived, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// The validator it was delivered to (delivered traces only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub validator: Option<Address>,
}

/// Which record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bids received.
    Received,
    /// Bids delivered to validators.
    Delivered,
}

impl Kind {
    fn table(self) -> TableDefinition<'static, (u64, u64), &'static [u8]> {
        match self {
            Kind::Received => RECEIVED,
            Kind::Delivered => DELIVERED,
        }
    }
}

/// Which traces to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only this height.
    pub height: Option<u64>,
    /// Only bids covering this rollup.
    pub rollup: Option<RollupId>,
    /// Only this builder's bids.
    pub builder: Option<Address>,
    /// Continue after this (height, seq), newest first.
    pub before: Option<(u64, u64)>,
    /// At most this many.
    pub limit: usize,
}

enum Write {
    Put(Kind, BidTrace),
    Prune(u64),
    Flush(oneshot::Sender<()>),
}

/// The trace store: cheap to clone.
#[derive(Clone)]
pub struct TraceStore {
    db: Arc<Database>,
    writes: mpsc::Sender<Write>,
    next_seq: Arc<AtomicU64>,
}

/// Most traces scanned for one query (filters that match little must not
/// walk the whole store).
pub const MAX_SCAN: usize = 100_000;

impl TraceStore {
    /// Opens (or creates) the store at `path` and starts its writer thread.
    pub fn open(path: &Path) -> Result<Self, TraceError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(store_err)?;
        }
        let db = Arc::new(Database::create(path).map_err(store_err)?);
        let txn = db.begin_write().map_err(store_err)?;
        let mut next = 0;
        for kind in [Kind::Received, Kind::Delivered] {
            let table = txn.open_table(kind.table()).map_err(store_err)?;
            // The store holds the retention window only: a full scan at
            // start is cheap.
            for entry in table.iter().map_err(store_err)? {
                let (key, _) = entry.map_err(store_err)?;
                next = next.max(key.value().1 + 1);
            }
        }
        txn.commit().map_err(store_err)?;
        let (writes, rx) = mpsc::channel(65_536);
        let writer_db = db.clone();
        std::thread::Builder::new()
            .name("relay-traces".into())
            .spawn(move || writer(writer_db, rx))
            .map_err(store_err)?;
        Ok(TraceStore {
            db,
            writes,
            next_seq: Arc::new(AtomicU64::new(next)),
        })
    }

    /// The next sequence number.
    pub fn next_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Queues a trace for writing.
    pub async fn record(&self, kind: Kind, trace: BidTrace) -> Result<(), TraceError> {
        self.writes
            .send(Write::Put(kind, trace))
            .await
            .map_err(|_| TraceError::WriterGone)
    }

    /// Queues the removal of every trace below `height`.
    pub async fn prune_below(&self, height: u64) -> Result<(), TraceError> {
        self.writes
            .send(Write::Prune(height))
            .await
            .map_err(|_| TraceError::WriterGone)
    }

    /// Waits until everything queued so far is committed.
    pub async fn flush(&self) -> Result<(), TraceError> {
        let (tx, rx) = oneshot::channel();
        self.writes
            .send(Write::Flush(tx))
            .await
            .map_err(|_| TraceError::WriterGone)?;
        rx.await.map_err(|_| TraceError::WriterGone)
    }

    /// Traces matching `filter`, newest first, and whether more may follow.
    pub fn list(&self, kind: Kind, filter: &Filter) -> Result<(Vec<BidTrace>, bool), TraceError> {
        let txn = self.db.begin_read().map_err(store_err)?;
        let table = txn.open_table(kind.table()).map_err(store_err)?;
        let upper = match (filter.before, filter.height) {
            (Some((h, _)), Some(fh)) if h > fh => (fh, u64::MAX),
            (Some(b), _) => b,
            (None, Some(fh)) => (fh, u64::MAX),
            (None, None) => (u64::MAX, u64::MAX),
        };
        let lower = (filter.height.unwrap_or(0), 0);
        let mut out = Vec::new();
        let mut more = false;
        if lower > upper {
            return Ok((out, false));
        }
        // Exclusive of `before` itself; inclusive of a whole height.
        let range = table
            .range(lower..=upper)
            .map_err(store_err)?
            .rev()
            .filter(|e| {
                e.as_ref()
                    .map(|(k, _)| Some(k.value()) != filter.before)
                    .unwrap_or(true)
            });
        for (scanned, entry) in range.enumerate() {
            if scanned >= MAX_SCAN {
                more = true;
                break;
            }
            let (_, value) = entry.map_err(store_err)?;
            let trace: BidTrace = serde_json::from_slice(value.value()).map_err(store_err)?;
            if filter.builder.is_some_and(|b| b != trace.builder)
                || filter.rollup.is_some_and(|r| !trace.rollups.contains(&r))
            {
                continue;
            }
            if out.len() == filter.limit {
                more = true;
                break;
            }
            out.push(trace);
        }
        Ok((out, more))
    }
}

/// Shortest time between two commits of the trace store. Each commit
/// syncs the file; under thousands of bids a second, committing whatever
/// happened to be queued meant hundreds of syncs a second, and the sync's
/// CPU (on a VM, a device kick per write) competed with the handlers. A
/// group commit at most this often bounds syncs to 50 a second; a trace
/// is still durable within this interval plus one sync, and nothing a
/// builder is answered waits on it.
const COMMIT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(20);

fn writer(db: Arc<Database>, mut rx: mpsc::Receiver<Write>) {
    let mut last_commit: Option<std::time::Instant> = None;
    while let Some(first) = rx.blocking_recv() {
        // Let writes gather until the interval since the last commit is
        // over (a flush does not wait: tests and shutdown ask for it).
        if let Some(last) = last_commit {
            let due = last + COMMIT_INTERVAL;
            let now = std::time::Instant::now();
            if due > now && !matches!(first, Write::Flush(_)) {
                std::thread::sleep(due - now);
            }
        }
        last_commit = Some(std::time::Instant::now());
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        let mut flushes = Vec::new();
        let result = (|| -> Result<(), TraceError> {
            let txn = db.begin_write().map_err(store_err)?;
            {
                let mut received = txn.open_table(RECEIVED).map_err(store_err)?;
                let mut delivered = txn.open_table(DELIVERED).map_err(store_err)?;
                for w in batch {
                    match w {
                        Write::Put(kind, trace) => {
                            let value = serde_json::to_vec(&trace).map_err(store_err)?;
                            let table = match kind {
                                Kind::Received => &mut received,
                                Kind::Delivered => &mut delivered,
                            };
                            table
                                .insert((trace.height, trace.seq), value.as_slice())
                                .map_err(store_err)?;
                        }
                        Write::Prune(below) => {
                            received
                                .retain_in(..(below, 0), |_, _| false)
                                .map_err(store_err)?;
                            delivered
                                .retain_in(..(below, 0), |_, _| false)
                                .map_err(store_err)?;
                        }
                        Write::Flush(done) => flushes.push(done),
                    }
                }
            }
            txn.commit().map_err(store_err)
        })();
        if let Err(e) = result {
            metrics::counter!("weft_relay_trace_write_errors_total").increment(1);
            tracing::error!(error = %e, "writing bid traces failed");
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use weft_core::SigningKey;

    use super::*;

    fn trace(store: &TraceStore, height: u64, builder: &str, rollup: &str) -> BidTrace {
        BidTrace {
            seq: store.next_seq(),
            height,
            hash: Hash([height as u8; 32]),
            builder: SigningKey::from_seed(builder).address(),
            amount: "5".into(),
            rollups: vec![RollupId::from_name(rollup)],
            status: "accepted".into(),
            data_bytes: 4,
            timestamp_ms: 0,
            validator: None,
        }
    }

    #[tokio::test]
    async fn traces_filter_page_prune_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("traces.redb");
        let store = TraceStore::open(&path).unwrap();
        for h in 1..=5 {
            for (b, r) in [("a", "x"), ("b", "y"), ("c", "x")] {
                let t = trace(&store, h, b, r);
                store.record(Kind::Received, t).await.unwrap();
            }
        }
        store.flush().await.unwrap();
        let all = |f: Filter| store.list(Kind::Received, &f).unwrap();
        let (page, more) = all(Filter {
            limit: 4,
            ..Filter::default()
        });
        assert!(more);
        assert_eq!(
            page.iter().map(|t| (t.height, t.seq)).collect::<Vec<_>>(),
            vec![(5, 14), (5, 13), (5, 12), (4, 11)]
        );
        // The cursor continues after the last item.
        let (next, _) = all(Filter {
            limit: 2,
            before: Some((4, 11)),
            ..Filter::default()
        });
        assert_eq!(next.iter().map(|t| t.seq).collect::<Vec<_>>(), vec![10, 9]);
        let (h3_x, more) = all(Filter {
            height: Some(3),
            rollup: Some(RollupId::from_name("x")),
            limit: 10,
            ..Filter::default()
        });
        assert!(!more);
        assert_eq!(h3_x.len(), 2);
        let (b_only, _) = all(Filter {
            builder: Some(SigningKey::from_seed("b").address()),
            limit: 100,
            ..Filter::default()
        });
        assert_eq!(b_only.len(), 5);
        store.prune_below(4).await.unwrap();
        store.flush().await.unwrap();
        let (left, _) = all(Filter {
            limit: 100,
            ..Filter::default()
        });
        assert!(left.iter().all(|t| t.height >= 4));
        assert_eq!(left.len(), 6);
        drop(store);
        // The writer thread holds the database until its channel closes.
        let mut reopened = TraceStore::open(&path);
        for _ in 0..500 {
            if reopened.is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            reopened = TraceStore::open(&path);
        }
        let reopened = reopened.unwrap();
        assert_eq!(reopened.next_seq(), 15, "sequence numbers continue");
    }
}
