//! The JMT's node and value tables: `TreeReader` over a redb read
//! transaction. Writes happen only in `Storage::commit`.

use jmt::{
    storage::{LeafNode, Node, NodeKey, TreeReader},
    KeyHash, OwnedValue, Version,
};
use redb::ReadTransaction;

use super::{StorageError, JMT_NODES, JMT_VALUES};

/// `key_hash ‖ version (big-endian)`: versions of one key sort together, so
/// "latest at or below v" is one reverse range step.
pub(crate) fn value_key(key_hash: &KeyHash, version: Version) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..32].copy_from_slice(&key_hash.0);
    k[32..].copy_from_slice(&version.to_be_bytes());
    k
}

pub(crate) struct JmtReader {
    nodes: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
    values: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
}

impl JmtReader {
    pub(crate) fn new(txn: &ReadTransaction) -> Result<Self, StorageError> {
        Ok(JmtReader {
            nodes: txn.open_table(JMT_NODES)?,
            values: txn.open_table(JMT_VALUES)?,
        })
    }
}

impl TreeReader for JmtReader {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        let key = borsh::to_vec(node_key)?;
        match self.nodes.get(key.as_slice())? {
            Some(v) => Ok(Some(borsh::from_slice(v.value())?)),
            None => Ok(None),
        }
    }

    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        let lo = value_key(&key_hash, 0);
        let hi = value_key(&key_hash, max_version);
        let mut range = self.values.range(lo.as_slice()..=hi.as_slice())?;
        match range.next_back() {
            Some(entry) => {
                let (_, v) = entry?;
                let value: Option<OwnedValue> = borsh::from_slice(v.value())?;
                Ok(value)
            }
            None => Ok(None),
        }
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        // Only used by JMT state-sync restore, which Weft does not offer yet.
        anyhow::bail!("state restore is not supported")
    }
}
