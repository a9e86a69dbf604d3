//! Pruning of the JMT's history past a retention window.
//!
//! Every commit writes a new tree version; the nodes and value versions it
//! replaces stay readable for historical queries (`Storage::get_at`,
//! `Storage::root_at`) and would otherwise grow the store without bound.
//! The JMT reports which nodes each version made stale; for values, a new
//! version of a key supersedes its previous one. Both are recorded by the
//! version that made them stale, and once that version falls out of the
//! window (at or below `height - retention`) they are deleted, at most
//! [`MAX_PRUNED_PER_COMMIT`] per commit so a backlog never stalls a block.
//! Versions at or above the floor stay fully readable; below it, reads are
//! refused (`StorageError::Pruned`) rather than answered from a partial
//! tree. Consensus never reads history: pruning changes no app hash.

use jmt::storage::TreeUpdateBatch;
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use weft_core::encoding::encode;

use super::{jmt_store::value_key, StorageError, JMT_NODES, JMT_VALUES, META};

/// `stale_since (8 bytes BE) ‖ borsh(node key)`: nodes replaced by a version.
pub(crate) const JMT_STALE_NODES: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("jmt_stale_nodes");
/// `stale_since (8 bytes BE) ‖ value key`: value versions superseded by a
/// newer version of their key.
pub(crate) const JMT_STALE_VALUES: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("jmt_stale_values");
/// The oldest version still fully readable (absent: every version).
pub(crate) const META_PRUNED_FLOOR: &str = "pruned_floor";

/// The floor stored under [`META_PRUNED_FLOOR`] (absent: 0).
pub(crate) fn floor_of(stored: Option<&[u8]>) -> u64 {
    stored
        .and_then(|v| v.try_into().ok().map(u64::from_be_bytes))
        .unwrap_or(0)
}

/// Most stale entries (nodes and values together) deleted by one commit.
pub const MAX_PRUNED_PER_COMMIT: usize = 20_000;

/// What one commit pruned.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    /// JMT nodes deleted.
    pub nodes: usize,
    /// Value versions deleted.
    pub values: usize,
}

/// Records what `batch` (already written in `txn`) made stale.
pub(crate) fn record(txn: &WriteTransaction, batch: &TreeUpdateBatch) -> Result<(), StorageError> {
    let mut stale_nodes = txn.open_table(JMT_STALE_NODES)?;
    for stale in &batch.stale_node_index_batch {
        let mut key = stale.stale_since_version.to_be_bytes().to_vec();
        key.extend_from_slice(&encode(&stale.node_key));
        stale_nodes.insert(key.as_slice(), [].as_slice())?;
    }
    let values = txn.open_table(JMT_VALUES)?;
    let mut stale_values = txn.open_table(JMT_STALE_VALUES)?;
    for (version, key_hash) in batch.node_batch.values().keys() {
        // The key's newest version before this one, if any.
        let lo = value_key(key_hash, 0);
        let hi = value_key(key_hash, *version);
        let previous = values.range(lo.as_slice()..hi.as_slice())?.next_back();
        if let Some(entry) = previous {
            let (superseded, _) = entry?;
            let mut key = version.to_be_bytes().to_vec();
            key.extend_from_slice(superseded.value());
            stale_values.insert(key.as_slice(), [].as_slice())?;
        }
    }
    Ok(())
}

/// Deletes what became stale at or below `height - retention` (nothing
/// when `retention` is 0) and raises the floor to that version.
pub(crate) fn prune(
    txn: &WriteTransaction,
    height: u64,
    retention: u64,
) -> Result<Pruned, StorageError> {
    let mut pruned = Pruned::default();
    if retention == 0 {
        return Ok(pruned);
    }
    let Some(floor) = height.checked_sub(retention) else {
        return Ok(pruned);
    };
    // Keys below `(floor + 1) ‖ …` are those stale since a version ≤ floor.
    let bound = floor.saturating_add(1).to_be_bytes();
    let mut budget = MAX_PRUNED_PER_COMMIT;
    for (index, data, count) in [
        (JMT_STALE_NODES, JMT_NODES, &mut pruned.nodes),
        (JMT_STALE_VALUES, JMT_VALUES, &mut pruned.values),
    ] {
        let mut stale = txn.open_table(index)?;
        let mut table = txn.open_table(data)?;
        let doomed = stale
            .range(..bound.as_slice())?
            .take(budget)
            .map(|entry| entry.map(|(k, _)| k.value().to_vec()))
            .collect::<Result<Vec<_>, _>>()?;
        for key in &doomed {
            table.remove(&key[8..])?;
            stale.remove(key.as_slice())?;
        }
        *count = doomed.len();
        budget -= doomed.len();
    }
    let mut meta = txn.open_table(META)?;
    let current = floor_of(meta.get(META_PRUNED_FLOOR)?.as_ref().map(|v| v.value()));
    if floor > current {
        meta.insert(META_PRUNED_FLOOR, floor.to_be_bytes().as_slice())?;
    }
    Ok(pruned)
}
