//! Storage: authenticated state in a Jellyfish Merkle Tree over one redb
//! file, plus the non-authenticated indexes, all written per height in one
//! atomic, fsynced transaction.
//!
//! Layout (tables, all in `weft.redb`):
//! - `meta`: last committed height, app hash, chain id.
//! - `state`: latest value of every readable state key (fast reads, and
//!   ordered prefix scans).
//! - `jmt_nodes`, `jmt_values`: the JMT itself; value history by version.
//!
//! Everything else declares its own tables next to the code that writes
//! them: components (block records, batches, tx locations) and the
//! signed-header cache (`headers`). Components their own non-authenticated tables (block records,
//! batches, tx locations) next to the code that writes them, and the app
//! creates them at start-up through [`Storage::create_tables`].

pub mod delta;
mod jmt_store;
pub mod pruning;

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use borsh::{BorshDeserialize, BorshSerialize};
use jmt::{storage::TreeUpdateBatch, KeyHash, Sha256Jmt};
use redb::{Database, ReadTransaction, ReadableDatabase, TableDefinition};
use weft_core::{encoding::encode, Hash};

pub use crate::error::StorageError;
pub use delta::{StateDelta, StateRead, StateWrite};
use jmt_store::JmtReader;

pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
pub(crate) const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("state");
pub(crate) const JMT_NODES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("jmt_nodes");
pub(crate) const JMT_VALUES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("jmt_values");

const META_HEIGHT: &str = "last_height";
const META_APP_HASH: &str = "last_app_hash";
const META_CHAIN_ID: &str = "chain_id";

/// Free bytes under which an I/O failure of the store is put down to a
/// full disk (see [`Storage::out_of_space`]).
pub const FULL_DISK_BYTES: u64 = 1 << 20;

/// Bytes an unprivileged writer may still use on a file system.
// The block-count types are u64 on Linux/x86_64 but not on every platform.
#[allow(clippy::useless_conversion)]
fn free_bytes(s: &nix::sys::statvfs::Statvfs) -> u64 {
    u64::from(s.blocks_available()).saturating_mul(u64::from(s.fragment_size()))
}

/// True for the I/O errors of a full disk or an exhausted quota.
fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

/// One height's state changes by readable key, in key order (`None` deletes).
pub type StateChanges = Vec<(String, Option<Vec<u8>>)>;

/// What was last committed: the restart handshake reports exactly this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedInfo {
    /// Last committed height (0 = genesis written, no block yet).
    pub height: u64,
    /// JMT root after that height.
    pub app_hash: Hash,
    /// The chain this store belongs to.
    pub chain_id: String,
}

/// A row written next to the state of one height: not authenticated by the
/// app hash, but committed atomically with it.
pub trait IndexWrite {
    /// Writes this index's rows into the open transaction.
    fn write(&self, txn: &redb::WriteTransaction) -> Result<(), StorageError>;
}

/// Everything one height changes, ready for `Commit`.
pub struct PendingCommit {
    /// The height (= JMT version).
    pub height: u64,
    /// JMT root after applying `changes`.
    pub app_hash: Hash,
    /// State changes by readable key, in key order.
    pub changes: StateChanges,
    tree_batch: TreeUpdateBatch,
    /// Non-authenticated rows (block record, batches, tx locations).
    pub indexes: Vec<Box<dyn IndexWrite + Send>>,
}

/// A height written into the store's write transaction, not committed
/// ([`Storage::stage`]).
pub struct StagedCommit {
    txn: redb::WriteTransaction,
    /// The height.
    pub height: u64,
    /// Its app hash.
    pub app_hash: Hash,
    pruned: pruning::Pruned,
}

impl std::fmt::Debug for PendingCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingCommit")
            .field("height", &self.height)
            .field("app_hash", &self.app_hash)
            .field("changes", &self.changes.len())
            .finish()
    }
}

/// The JMT key of a readable state key.
pub fn key_hash(key: &str) -> KeyHash {
    KeyHash::with::<sha2::Sha256>(key.as_bytes())
}

/// The JMT update for `changes` at `version`: the new root and the nodes to
/// write. A height that only sets values (every block of transactions)
/// goes through the tree's batch insertion, which builds each touched
/// subtree once and hashes each new node once; inserting key by key
/// rebuilds and rehashes the path from the root for every key. Both give
/// the same tree (a JMT's shape depends only on its keys), which
/// `batch_and_keywise_updates_agree` checks. Deletions, which the batch
/// insertion does not take, go key by key.
fn update_tree<R: jmt::storage::TreeReader>(
    tree: &jmt::JellyfishMerkleTree<'_, R, sha2::Sha256>,
    changes: &StateChanges,
    version: u64,
) -> Result<(jmt::RootHash, TreeUpdateBatch), StorageError> {
    let tree_error = |e: anyhow::Error| StorageError::Tree(e.to_string());
    let sets_only = changes.iter().all(|(_, v)| v.is_some());
    if sets_only && !changes.is_empty() {
        let values = changes
            .iter()
            .filter_map(|(k, v)| Some((key_hash(k), v.clone()?)))
            .collect();
        let (roots, batch) = tree
            .batch_put_value_sets(vec![values], None, version)
            .map_err(tree_error)?;
        let root = roots
            .first()
            .copied()
            .ok_or_else(|| StorageError::Tree("no root for the batch".into()))?;
        Ok((root, batch))
    } else {
        let value_set = changes.iter().map(|(k, v)| (key_hash(k), v.clone()));
        tree.put_value_set(value_set, version).map_err(tree_error)
    }
}

/// redb's page cache unless configured: its own default (1 GiB).
pub const DEFAULT_CACHE_BYTES: usize = 1 << 30;

/// Handle to the store; cheap to clone, shared by the ABCI app and the API.
#[derive(Clone)]
pub struct Storage {
    db: Arc<Database>,
    /// Heights of JMT history kept (0: all); see [`pruning`].
    retention: u64,
    /// The directory holding `weft.redb` (named in errors).
    dir: Arc<PathBuf>,
}

impl Storage {
    /// Opens (or creates) `<dir>/weft.redb`. A crash at any point leaves
    /// the file at the last committed height: redb commits are atomic.
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        Self::open_with_cache(dir, DEFAULT_CACHE_BYTES)
    }

    /// Like [`Storage::open`], with redb's page cache bounded to
    /// `cache_bytes` (the store's share of the process's memory).
    pub fn open_with_cache(dir: &Path, cache_bytes: usize) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir).map_err(|e| StorageError::Store(redb::Error::Io(e)))?;
        let db = redb::Builder::new()
            .set_cache_size(cache_bytes)
            .create(dir.join("weft.redb"))?;
        let txn = db.begin_write()?;
        for t in [META, STATE] {
            txn.open_table(t)?;
        }
        for t in [
            JMT_NODES,
            JMT_VALUES,
            pruning::JMT_STALE_NODES,
            pruning::JMT_STALE_VALUES,
        ] {
            txn.open_table(t)?;
        }
        txn.commit()?;
        Ok(Storage {
            db: Arc::new(db),
            retention: 0,
            dir: Arc::new(dir.to_path_buf()),
        })
    }

    /// Keeps `heights` heights of state history (historical reads below
    /// are refused) and prunes the rest as blocks commit; 0 keeps all.
    pub fn with_state_retention(mut self, heights: u64) -> Self {
        self.retention = heights;
        self
    }

    /// The oldest height whose state is still readable.
    pub fn pruned_floor(&self) -> Result<u64, StorageError> {
        floor_in(&self.db.begin_read()?)
    }

    /// Refuses `version` if it is below the floor as `txn` sees it (the
    /// read that follows uses the same transaction, so pruning cannot
    /// move the floor under it).
    fn readable(txn: &ReadTransaction, version: u64) -> Result<(), StorageError> {
        let floor = floor_in(txn)?;
        if version < floor {
            return Err(StorageError::Pruned {
                height: version,
                floor,
            });
        }
        Ok(())
    }

    /// The directory holding the store.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// When `err` is the store failing for lack of space, the bytes left
    /// on its file system. redb reports the write that hit the full disk
    /// as an I/O error (ENOSPC) and every later one as "a previous I/O
    /// error occurred", so an I/O failure is also called a full disk when
    /// the file system has under [`FULL_DISK_BYTES`] left.
    pub fn out_of_space(&self, err: &StorageError) -> Option<u64> {
        let StorageError::Store(store) = err else {
            return None;
        };
        let free = nix::sys::statvfs::statvfs(self.dir.as_path())
            .ok()
            .map(|s| free_bytes(&s));
        match store {
            redb::Error::Io(io) if is_disk_full(io) => Some(free.unwrap_or(0)),
            redb::Error::Io(_) | redb::Error::PreviousIo => {
                free.filter(|free| *free < FULL_DISK_BYTES)
            }
            _ => None,
        }
    }

    /// What was last committed, if anything.
    pub fn committed(&self) -> Result<Option<CommittedInfo>, StorageError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let get = |k: &str| -> Result<Option<Vec<u8>>, StorageError> {
            Ok(meta.get(k)?.map(|v| v.value().to_vec()))
        };
        let (Some(h), Some(a), Some(c)) =
            (get(META_HEIGHT)?, get(META_APP_HASH)?, get(META_CHAIN_ID)?)
        else {
            return Ok(None);
        };
        let corrupt = || StorageError::Corrupt("meta".into());
        Ok(Some(CommittedInfo {
            height: u64::from_be_bytes(h.try_into().map_err(|_| corrupt())?),
            app_hash: Hash(a.try_into().map_err(|_| corrupt())?),
            chain_id: String::from_utf8(c).map_err(|_| corrupt())?,
        }))
    }

    /// A consistent read view of the latest committed state.
    pub fn snapshot(&self) -> Result<Snapshot, StorageError> {
        let txn = self.db.begin_read()?;
        let state = txn.open_table(STATE)?;
        Ok(Snapshot { txn, state })
    }

    /// Computes the JMT update for `changes` at `height` without writing:
    /// the returned commit carries the new app hash and is persisted by
    /// [`Storage::commit`].
    pub fn prepare_commit(
        &self,
        height: u64,
        changes: StateChanges,
        indexes: Vec<Box<dyn IndexWrite + Send>>,
    ) -> Result<PendingCommit, StorageError> {
        let txn = self.db.begin_read()?;
        let reader = JmtReader::new(&txn)?;
        let tree = Sha256Jmt::new(&reader);
        let (root, tree_batch) = update_tree(&tree, &changes, height)?;
        Ok(PendingCommit {
            height,
            app_hash: Hash(root.0),
            changes,
            tree_batch,
            indexes,
        })
    }

    /// Persists one height atomically (fsynced before returning).
    pub fn commit(&self, chain_id: &str, pending: PendingCommit) -> Result<(), StorageError> {
        self.commit_with(chain_id, pending, |_| {})
    }

    /// [`Storage::commit`], calling `staged(height)` once every row of the
    /// height is staged in the write transaction, before it commits (the
    /// `mid-commit` crash point).
    pub fn commit_with(
        &self,
        chain_id: &str,
        pending: PendingCommit,
        staged: impl FnOnce(u64),
    ) -> Result<(), StorageError> {
        let rows = self.stage(chain_id, pending)?;
        self.commit_staged(rows, staged)
    }

    /// Writes every row of a height into the store's write transaction
    /// without committing it: nothing is visible or durable until
    /// [`Storage::commit_staged`], and dropping the result discards it. The
    /// app stages in FinalizeBlock so that Commit, which CometBFT runs
    /// holding its mempool lock (no CheckTx is answered meanwhile), is
    /// left with the sync alone. Other writers wait for the store's one
    /// write transaction until then: they must not run on the threads
    /// that carry ABCI requests (see `write_index`).
    pub fn stage(
        &self,
        chain_id: &str,
        pending: PendingCommit,
    ) -> Result<StagedCommit, StorageError> {
        let txn = self.db.begin_write()?;
        {
            let mut nodes = txn.open_table(JMT_NODES)?;
            for (key, node) in pending.tree_batch.node_batch.nodes() {
                nodes.insert(encode(key).as_slice(), encode(node).as_slice())?;
            }
            let mut values = txn.open_table(JMT_VALUES)?;
            for ((version, key_hash), value) in pending.tree_batch.node_batch.values() {
                values.insert(
                    jmt_store::value_key(key_hash, *version).as_slice(),
                    encode(value).as_slice(),
                )?;
            }
            let mut state = txn.open_table(STATE)?;
            for (key, value) in &pending.changes {
                match value {
                    Some(v) => {
                        state.insert(key.as_str(), v.as_slice())?;
                    }
                    None => {
                        state.remove(key.as_str())?;
                    }
                }
            }
            let mut meta = txn.open_table(META)?;
            meta.insert(META_HEIGHT, pending.height.to_be_bytes().as_slice())?;
            meta.insert(META_APP_HASH, pending.app_hash.0.as_slice())?;
            meta.insert(META_CHAIN_ID, chain_id.as_bytes())?;
        }
        for index in &pending.indexes {
            index.write(&txn)?;
        }
        pruning::record(&txn, &pending.tree_batch)?;
        let pruned = pruning::prune(&txn, pending.height, self.retention)?;
        Ok(StagedCommit {
            txn,
            height: pending.height,
            app_hash: pending.app_hash,
            pruned,
        })
    }

    /// Makes a staged height visible and durable (fsynced before
    /// returning), calling `before(height)` first (the `mid-commit` crash
    /// point).
    pub fn commit_staged(
        &self,
        staged: StagedCommit,
        before: impl FnOnce(u64),
    ) -> Result<(), StorageError> {
        before(staged.height);
        staged.txn.commit()?;
        if staged.pruned != pruning::Pruned::default() {
            metrics::counter!("weft_state_pruned_nodes_total")
                .increment(staged.pruned.nodes as u64);
            metrics::counter!("weft_state_pruned_values_total")
                .increment(staged.pruned.values as u64);
        }
        Ok(())
    }

    /// The value of `key` as of `version` (historical, through the JMT).
    pub fn get_at(&self, key: &str, version: u64) -> Result<Option<Vec<u8>>, StorageError> {
        let txn = self.db.begin_read()?;
        Self::readable(&txn, version)?;
        let reader = JmtReader::new(&txn)?;
        use jmt::storage::TreeReader;
        reader
            .get_value_option(version, key_hash(key))
            .map_err(|e| StorageError::Tree(e.to_string()))
    }

    /// The app hash (JMT root) this node computed for `version`, if it has
    /// committed that height.
    pub fn root_at(&self, version: u64) -> Result<Option<Hash>, StorageError> {
        let txn = self.db.begin_read()?;
        Self::readable(&txn, version)?;
        let reader = JmtReader::new(&txn)?;
        Sha256Jmt::new(&reader)
            .get_root_hash_option(version)
            .map(|r| r.map(|r| Hash(r.0)))
            .map_err(|e| StorageError::Tree(e.to_string()))
    }

    /// Writes rows outside the consensus commit (caches such as signed
    /// headers), in their own atomic transaction. Not fsynced on its own:
    /// the next consensus commit makes it durable, and a cache row lost to
    /// a crash is fetched again. It waits while a height is staged (from
    /// FinalizeBlock to Commit); on an async worker thread it first hands
    /// the worker's other tasks over (`block_in_place`), so the ABCI
    /// connections that must deliver that Commit are never starved.
    pub fn write_index(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        off_async_workers(|| {
            let mut txn = self.db.begin_write()?;
            txn.set_durability(redb::Durability::None)
                .map_err(|e| StorageError::Store(e.into()))?;
            f(&txn)?;
            txn.commit()?;
            Ok(())
        })
    }

    /// Creates tables owned by others (components declare their own), in
    /// one durable transaction; opening an existing table changes nothing.
    pub fn create_tables(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let txn = self.db.begin_write()?;
        f(&txn)?;
        txn.commit()?;
        Ok(())
    }

    /// A read transaction for index queries.
    pub fn read(&self) -> Result<ReadTransaction, StorageError> {
        Ok(self.db.begin_read()?)
    }
}

/// Runs `f`, which may wait, without stalling a multi-threaded runtime's
/// other tasks (a current-thread runtime, as in unit tests, has no other
/// worker to hand them to; it runs `f` in place).
fn off_async_workers<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

fn floor_in(txn: &ReadTransaction) -> Result<u64, StorageError> {
    let meta = txn.open_table(META)?;
    let stored = meta.get(pruning::META_PRUNED_FLOOR)?;
    Ok(pruning::floor_of(stored.as_ref().map(|v| v.value())))
}

/// A read view of the latest committed state.
pub struct Snapshot {
    #[allow(dead_code, reason = "keeps the read transaction alive for `state`")]
    txn: ReadTransaction,
    state: redb::ReadOnlyTable<&'static str, &'static [u8]>,
}

impl StateRead for Snapshot {
    fn get_raw(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.state.get(key)?.map(|v| v.value().to_vec()))
    }

    fn prefix_raw(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        let mut out = Vec::new();
        for entry in self.state.range(prefix..)? {
            let (k, v) = entry?;
            if !k.value().starts_with(prefix) {
                break;
            }
            out.push((k.value().to_string(), v.value().to_vec()));
        }
        Ok(out)
    }
}

/// Opens a table for reading; `None` if no component has created it yet
/// (a store opened by a process that does not run the component, such as
/// a tool or a test of the API alone): reads then find nothing.
pub fn read_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &ReadTransaction,
    table: TableDefinition<K, V>,
) -> Result<Option<redb::ReadOnlyTable<K, V>>, StorageError> {
    match txn.open_table(table) {
        Ok(t) => Ok(Some(t)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Decodes a stored borsh value, naming the key on failure.
pub fn decode_stored<T: BorshDeserialize>(key: &str, bytes: &[u8]) -> Result<T, StorageError> {
    borsh::from_slice(bytes).map_err(|_| StorageError::Corrupt(key.to_string()))
}

/// Borsh-encodes a value for storage.
pub fn encode_stored<T: BorshSerialize>(value: &T) -> Vec<u8> {
    encode(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(pairs: &[(&str, Option<&[u8]>)]) -> Vec<(String, Option<Vec<u8>>)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(|v| v.to_vec())))
            .collect()
    }

    #[test]
    fn versions_commit_and_reopen_with_history() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path()).unwrap();
        assert_eq!(s.committed().unwrap(), None);
        let p0 = s
            .prepare_commit(0, changes(&[("a", Some(b"1")), ("b", Some(b"2"))]), vec![])
            .unwrap();
        let h0 = p0.app_hash;
        s.commit("c", p0).unwrap();
        // An empty height still gets a root (versions stay contiguous).
        let p1 = s.prepare_commit(1, vec![], vec![]).unwrap();
        assert_eq!(p1.app_hash, h0, "no change, same root");
        s.commit("c", p1).unwrap();
        let p2 = s
            .prepare_commit(2, changes(&[("a", Some(b"3")), ("b", None)]), vec![])
            .unwrap();
        let h2 = p2.app_hash;
        assert_ne!(h2, h0);
        s.commit("c", p2).unwrap();
        drop(s);

        // Reopened with a small page cache: same contents.
        let s = Storage::open_with_cache(dir.path(), 1 << 20).unwrap();
        let info = s.committed().unwrap().unwrap();
        assert_eq!(
            (info.height, info.app_hash, info.chain_id.as_str()),
            (2, h2, "c")
        );
        let snap = s.snapshot().unwrap();
        assert_eq!(snap.get_raw("a").unwrap(), Some(b"3".to_vec()));
        assert_eq!(snap.get_raw("b").unwrap(), None);
        assert_eq!(s.get_at("a", 1).unwrap(), Some(b"1".to_vec()));
        assert_eq!(s.get_at("b", 1).unwrap(), Some(b"2".to_vec()));
        assert_eq!(s.get_at("b", 2).unwrap(), None);
        // The next height builds on the reopened tree.
        let p3 = s
            .prepare_commit(3, changes(&[("b", Some(b"2"))]), vec![])
            .unwrap();
        assert_ne!(p3.app_hash, h2);
    }

    #[test]
    fn committed_prefix_reads_are_ordered_and_bounded_by_the_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path()).unwrap();
        let p0 = s
            .prepare_commit(
                0,
                changes(&[
                    ("p/2", Some(b"b")),
                    ("p/1", Some(b"a")),
                    ("p0", Some(b"not under p/")),
                    ("o/9", Some(b"before")),
                    ("q/1", Some(b"after")),
                ]),
                vec![],
            )
            .unwrap();
        s.commit("c", p0).unwrap();
        let snap = s.snapshot().unwrap();
        assert_eq!(
            snap.prefix_raw("p/").unwrap(),
            vec![
                ("p/1".to_string(), b"a".to_vec()),
                ("p/2".to_string(), b"b".to_vec())
            ]
        );
        assert!(snap.prefix_raw("z").unwrap().is_empty());
    }

    fn rows(s: &Storage, table: TableDefinition<&[u8], &[u8]>) -> u64 {
        use redb::ReadableTableMetadata;
        s.read().unwrap().open_table(table).unwrap().len().unwrap()
    }

    /// Keys rewritten block after block, with and without pruning: the
    /// same app hashes; history inside the window reads as a reference
    /// model says, below it is refused; the pruned store stays bounded
    /// while the unpruned one grows with every block.
    #[test]
    fn pruning_keeps_the_window_and_bounds_the_store() {
        use std::collections::BTreeMap;
        const RETENTION: u64 = 5;
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let pruned = Storage::open(d1.path())
            .unwrap()
            .with_state_retention(RETENTION);
        let full = Storage::open(d2.path()).unwrap();
        // The model: every key's value at every height.
        let mut model: Vec<BTreeMap<String, Vec<u8>>> = Vec::new();
        let mut current: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut sizes = Vec::new();
        for h in 0..60u64 {
            let mut batch = Vec::new();
            for k in 0..8u64 {
                // Each key changes every (k + 1) heights; key 7 is deleted
                // and recreated.
                if h % (k + 1) == 0 {
                    let key = format!("k{k}");
                    if k == 7 && h % 16 == 8 {
                        current.remove(&key);
                        batch.push((key, None));
                    } else {
                        let value = format!("{k}@{h}").into_bytes();
                        current.insert(key.clone(), value.clone());
                        batch.push((key, Some(value)));
                    }
                }
            }
            batch.sort();
            let a = pruned.prepare_commit(h, batch.clone(), vec![]).unwrap();
            let b = full.prepare_commit(h, batch, vec![]).unwrap();
            assert_eq!(a.app_hash, b.app_hash, "pruning never changes a root");
            pruned.commit("c", a).unwrap();
            full.commit("c", b).unwrap();
            model.push(current.clone());
            let floor = h.saturating_sub(RETENTION);
            assert_eq!(pruned.pruned_floor().unwrap(), floor);
            for v in 0..=h {
                for k in 0..8u64 {
                    let key = format!("k{k}");
                    let got = pruned.get_at(&key, v);
                    if v < floor {
                        assert!(
                            matches!(got, Err(StorageError::Pruned { .. })),
                            "height {v} below the floor {floor} must be refused"
                        );
                    } else {
                        assert_eq!(
                            got.unwrap(),
                            model[v as usize].get(&key).cloned(),
                            "{key} at {v} (head {h})"
                        );
                    }
                }
                if v >= floor {
                    assert_eq!(
                        pruned.root_at(v).unwrap(),
                        full.root_at(v).unwrap(),
                        "root at {v}"
                    );
                }
            }
            sizes.push((
                rows(&pruned, JMT_NODES) + rows(&pruned, JMT_VALUES),
                rows(&full, JMT_NODES) + rows(&full, JMT_VALUES),
            ));
        }
        // Past the first windows the pruned store stops growing; the full
        // one keeps growing.
        let (p30, f30) = sizes[30];
        let (p59, f59) = sizes[59];
        assert!(
            p59 <= p30 + p30 / 4,
            "pruned store grew from {p30} to {p59}"
        );
        assert!(f59 > f30 + f30 / 2, "full store {f30} -> {f59}");
        // Reopening keeps the floor and the window.
        drop(pruned);
        let reopened = Storage::open(d1.path()).unwrap();
        assert_eq!(reopened.pruned_floor().unwrap(), 59 - RETENTION);
        assert!(reopened.get_at("k0", 59 - RETENTION - 1).is_err());
        assert_eq!(
            reopened.get_at("k0", 59 - RETENTION).unwrap(),
            model[(59 - RETENTION) as usize].get("k0").cloned()
        );
    }

    #[test]
    fn an_uncommitted_height_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path()).unwrap();
        let p0 = s
            .prepare_commit(0, changes(&[("a", Some(b"1"))]), vec![])
            .unwrap();
        s.commit("c", p0).unwrap();
        let _p1 = s
            .prepare_commit(1, changes(&[("a", Some(b"2"))]), vec![])
            .unwrap();
        drop(s); // "crash" before Commit
        let s = Storage::open(dir.path()).unwrap();
        assert_eq!(s.committed().unwrap().unwrap().height, 0);
        assert_eq!(
            s.snapshot().unwrap().get_raw("a").unwrap(),
            Some(b"1".to_vec())
        );
        // Replaying height 1 gives the same root as the first attempt would.
        let again = s
            .prepare_commit(1, changes(&[("a", Some(b"2"))]), vec![])
            .unwrap();
        assert_eq!(again.app_hash, _p1.app_hash);
    }

    /// The reference: the same update inserted key by key.
    fn keywise(
        s: &Storage,
        changes: &StateChanges,
        version: u64,
    ) -> (jmt::RootHash, TreeUpdateBatch) {
        let txn = s.db.begin_read().unwrap();
        let reader = JmtReader::new(&txn).unwrap();
        Sha256Jmt::new(&reader)
            .put_value_set(
                changes.iter().map(|(k, v)| (key_hash(k), v.clone())),
                version,
            )
            .unwrap()
    }

    /// Applies `heights` through `prepare_commit` (batch insertion when a
    /// height only sets values), checking each against the key-by-key
    /// update on the same tree: same root, same nodes and values written,
    /// same nodes made stale (what pruning deletes).
    fn check_against_keywise(heights: Vec<StateChanges>) {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path()).unwrap();
        for (version, changes) in heights.into_iter().enumerate() {
            let version = version as u64;
            let (root, reference) = keywise(&s, &changes, version);
            let pending = s.prepare_commit(version, changes, vec![]).unwrap();
            assert_eq!(pending.app_hash, Hash(root.0), "root at version {version}");
            assert_eq!(pending.tree_batch.node_batch, reference.node_batch);
            assert_eq!(
                pending.tree_batch.stale_node_index_batch,
                reference.stale_node_index_batch
            );
            s.commit("c", pending).unwrap();
        }
    }

    /// Deduplicated, in key order, as a height's state changes are.
    fn height(ops: Vec<(u16, Option<Vec<u8>>)>) -> StateChanges {
        ops.into_iter()
            .map(|(k, v)| (format!("k/{k}"), v))
            .collect::<std::collections::BTreeMap<_, _>>()
            .into_iter()
            .collect()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        #[test]
        fn batch_and_keywise_updates_agree(
            heights in proptest::collection::vec(
                proptest::collection::vec(
                    (
                        0u16..400,
                        proptest::option::weighted(
                            0.9,
                            proptest::collection::vec(proptest::prelude::any::<u8>(), 0..8),
                        ),
                    ),
                    0..120,
                ),
                1..6,
            )
        ) {
            check_against_keywise(heights.into_iter().map(height).collect());
        }
    }

    #[test]
    fn batch_and_keywise_updates_agree_at_block_scale() {
        // As a block of small transactions: thousands of accounts touched
        // among tens of thousands, a few heights deep, one of them with
        // deletions (key by key).
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as u16
        };
        let heights = (0..4)
            .map(|h| {
                height(
                    (0..3_000)
                        .map(|i| {
                            let v = (h != 2 || i % 10 != 0).then(|| vec![h as u8, i as u8]);
                            (next() % 20_000, v)
                        })
                        .collect(),
                )
            })
            .collect();
        check_against_keywise(heights);
    }
}
