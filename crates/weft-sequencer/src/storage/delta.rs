//! Typed access to state: the `StateRead`/`StateWrite` traits every
//! component extends, and `StateDelta`, the in-memory overlay a block (and
//! each transaction inside it) writes into before anything is committed.

use std::{cell::RefCell, collections::BTreeMap};

use super::StorageError;

/// Reads raw values by readable key.
pub trait StateRead {
    /// The value under `key`, if any.
    fn get_raw(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError>;

    /// Every key starting with `prefix` and its value, in key order, as
    /// this state sees them (uncommitted writes and deletions included).
    /// Validators by power, unbonding queues and proposals by end height
    /// are read this way; keys that sort by the order wanted make it one
    /// scan.
    fn prefix_raw(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StorageError>;
}

/// Writes raw values by readable key.
pub trait StateWrite: StateRead {
    /// Sets `key` to `value`.
    fn put_raw(&mut self, key: String, value: Vec<u8>);
    /// Deletes `key`.
    fn delete(&mut self, key: String);
}

impl<S: StateRead + ?Sized> StateRead for &S {
    fn get_raw(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        (**self).get_raw(key)
    }

    fn prefix_raw(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        (**self).prefix_raw(prefix)
    }
}

/// Applies an overlay layer's writes under `prefix` onto `merged`.
fn overlay(
    merged: &mut BTreeMap<String, Option<Vec<u8>>>,
    layer: &BTreeMap<String, Option<Vec<u8>>>,
    prefix: &str,
) {
    for (k, v) in layer.range::<str, _>((
        std::ops::Bound::Included(prefix),
        std::ops::Bound::Unbounded,
    )) {
        if !k.starts_with(prefix) {
            break;
        }
        merged.insert(k.clone(), v.clone());
    }
}

/// An overlay over a base state. Writes land in the open transaction layer
/// (if one is open) or the block layer; `BTreeMap`s keep every iteration
/// in key order, so what is committed never depends on hashing order.
pub struct StateDelta<S> {
    base: S,
    block: BTreeMap<String, Option<Vec<u8>>>,
    tx: Option<BTreeMap<String, Option<Vec<u8>>>>,
    /// Values read from `base`, which never changes under the overlay:
    /// components read their parameters (and hot accounts) for every
    /// transaction, and a second read is a map lookup, not a store read.
    read_cache: RefCell<BTreeMap<String, Option<Vec<u8>>>>,
}

impl<S: StateRead> StateDelta<S> {
    /// An empty overlay over `base`.
    pub fn new(base: S) -> Self {
        StateDelta {
            base,
            block: BTreeMap::new(),
            tx: None,
            read_cache: RefCell::new(BTreeMap::new()),
        }
    }

    /// Opens a transaction layer: its writes vanish on `discard_tx`.
    pub fn begin_tx(&mut self) {
        debug_assert!(self.tx.is_none(), "nested transaction layers");
        self.tx = Some(BTreeMap::new());
    }

    /// Folds the transaction layer into the block.
    pub fn commit_tx(&mut self) {
        if let Some(tx) = self.tx.take() {
            self.block.extend(tx);
        }
    }

    /// Drops the transaction layer's writes.
    pub fn discard_tx(&mut self) {
        self.tx = None;
    }

    /// The block's changes in key order.
    pub fn into_changes(mut self) -> super::StateChanges {
        self.commit_tx();
        self.block.into_iter().collect()
    }

    fn layer(&mut self) -> &mut BTreeMap<String, Option<Vec<u8>>> {
        match &mut self.tx {
            Some(tx) => tx,
            None => &mut self.block,
        }
    }
}

impl<S: StateRead> StateRead for StateDelta<S> {
    fn get_raw(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        if let Some(v) = self.tx.as_ref().and_then(|tx| tx.get(key)) {
            return Ok(v.clone());
        }
        if let Some(v) = self.block.get(key) {
            return Ok(v.clone());
        }
        if let Some(v) = self.read_cache.borrow().get(key) {
            return Ok(v.clone());
        }
        let v = self.base.get_raw(key)?;
        self.read_cache
            .borrow_mut()
            .insert(key.to_string(), v.clone());
        Ok(v)
    }

    fn prefix_raw(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        let mut merged: BTreeMap<String, Option<Vec<u8>>> = self
            .base
            .prefix_raw(prefix)?
            .into_iter()
            .map(|(k, v)| (k, Some(v)))
            .collect();
        overlay(&mut merged, &self.block, prefix);
        if let Some(tx) = &self.tx {
            overlay(&mut merged, tx, prefix);
        }
        Ok(merged
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect())
    }
}

impl<S: StateRead> StateWrite for StateDelta<S> {
    fn put_raw(&mut self, key: String, value: Vec<u8>) {
        self.layer().insert(key, Some(value));
    }

    fn delete(&mut self, key: String) {
        self.layer().insert(key, None);
    }
}

/// An empty state: genesis builds on it.
pub struct EmptyState;

impl StateRead for EmptyState {
    fn get_raw(&self, _key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(None)
    }

    fn prefix_raw(&self, _prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: Vec<(String, Vec<u8>)>) -> Vec<(String, String)> {
        v.into_iter()
            .map(|(k, v)| (k, String::from_utf8(v).unwrap()))
            .collect()
    }

    #[test]
    fn base_reads_are_cached_and_never_shadow_writes() {
        use std::cell::Cell;
        struct Counting(Cell<usize>);
        impl StateRead for Counting {
            fn get_raw(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
                self.0.set(self.0.get() + 1);
                Ok((key == "p").then(|| b"base".to_vec()))
            }
            fn prefix_raw(&self, _: &str) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
                Ok(Vec::new())
            }
        }
        let mut d = StateDelta::new(Counting(Cell::new(0)));
        for _ in 0..3 {
            assert_eq!(d.get_raw("p").unwrap(), Some(b"base".to_vec()));
            assert_eq!(d.get_raw("absent").unwrap(), None);
        }
        assert_eq!(d.base.0.get(), 2, "one store read per key");
        d.begin_tx();
        d.put_raw("p".into(), b"new".to_vec());
        assert_eq!(d.get_raw("p").unwrap(), Some(b"new".to_vec()));
        d.discard_tx();
        assert_eq!(d.get_raw("p").unwrap(), Some(b"base".to_vec()));
        d.delete("p".into());
        assert_eq!(
            d.get_raw("p").unwrap(),
            None,
            "a deletion wins over the cache"
        );
    }

    #[test]
    fn prefix_reads_are_ordered_through_every_layer() {
        let mut base = StateDelta::new(EmptyState);
        for (k, v) in [("v/03", "c"), ("v/01", "a"), ("v/05", "e"), ("w/00", "x")] {
            base.put_raw(k.into(), v.into());
        }
        let mut d = StateDelta::new(&base);
        d.put_raw("v/02".into(), b"b".to_vec());
        d.delete("v/03".into());
        d.begin_tx();
        d.put_raw("v/04".into(), b"d".to_vec());
        d.put_raw("v/05".into(), b"E".to_vec());
        d.put_raw("v/03".into(), b"C".to_vec());
        let expect = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            keys(d.prefix_raw("v/").unwrap()),
            expect(&[
                ("v/01", "a"),
                ("v/02", "b"),
                ("v/03", "C"),
                ("v/04", "d"),
                ("v/05", "E")
            ])
        );
        d.discard_tx();
        assert_eq!(
            keys(d.prefix_raw("v/").unwrap()),
            expect(&[("v/01", "a"), ("v/02", "b"), ("v/05", "e")])
        );
        assert_eq!(keys(d.prefix_raw("w/").unwrap()), expect(&[("w/00", "x")]));
        assert!(d.prefix_raw("z/").unwrap().is_empty());
    }

    #[test]
    fn tx_layer_commits_or_discards() {
        let mut d = StateDelta::new(EmptyState);
        d.put_raw("a".into(), b"1".to_vec());
        d.begin_tx();
        d.put_raw("a".into(), b"2".to_vec());
        d.delete("b".into());
        assert_eq!(d.get_raw("a").unwrap(), Some(b"2".to_vec()));
        d.discard_tx();
        assert_eq!(d.get_raw("a").unwrap(), Some(b"1".to_vec()));
        d.begin_tx();
        d.put_raw("c".into(), b"3".to_vec());
        d.commit_tx();
        assert_eq!(
            d.into_changes(),
            vec![
                ("a".into(), Some(b"1".to_vec())),
                ("c".into(), Some(b"3".to_vec()))
            ]
        );
    }
}
