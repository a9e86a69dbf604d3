//! The delivery cursor: the last height the rollup acknowledged, its block
//! hash, and the verified header state to resume trust from. Written after
//! every acknowledgement into one of two fixed slots of a small file,
//! alternating, each slot checksummed and fdatasync'd, so a crash at any
//! instant leaves at least the previous record intact (no rename, one
//! flush per height).

use std::{
    fs::{File, OpenOptions},
    io,
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};
use sha2_free::checksum;

use crate::verify::TrustedRecord;

/// Bytes reserved per slot.
const SLOT: u64 = 4096;

/// What is persisted after each acknowledged height.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Write sequence; the valid slot with the higher one wins.
    pub seq: u64,
    /// Last sequencer height the rollup acknowledged.
    pub height: u64,
    /// The rollup's block hash for it (its acknowledgement).
    pub rollup_block_hash: String,
    /// Verified state of the sequencer header at `height`.
    pub trusted: TrustedRecord,
}

/// The cursor file.
pub struct CursorFile {
    path: PathBuf,
    file: File,
    last: Option<Cursor>,
}

impl CursorFile {
    /// Opens (or creates) the cursor file and reads the newest valid record.
    pub fn open(path: &Path) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let last = [0, SLOT]
            .into_iter()
            .filter_map(|offset| read_slot(&file, offset))
            .max_by_key(|c| c.seq);
        Ok(CursorFile {
            path: path.to_path_buf(),
            file,
            last,
        })
    }

    /// The newest record, if any.
    pub fn last(&self) -> Option<&Cursor> {
        self.last.as_ref()
    }

    /// Where it lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Persists a record durably (returns after fdatasync).
    pub fn save(
        &mut self,
        height: u64,
        rollup_block_hash: String,
        trusted: TrustedRecord,
    ) -> io::Result<()> {
        let seq = self.last.as_ref().map(|c| c.seq + 1).unwrap_or(1);
        let cursor = Cursor {
            seq,
            height,
            rollup_block_hash,
            trusted,
        };
        let json = serde_json::to_vec(&cursor).map_err(io::Error::other)?;
        let mut slot = Vec::with_capacity(json.len() + 40);
        slot.extend_from_slice(&(json.len() as u32).to_le_bytes());
        slot.extend_from_slice(&json);
        slot.extend_from_slice(&checksum(&json));
        if slot.len() as u64 > SLOT {
            return Err(io::Error::other("cursor record larger than its slot"));
        }
        let offset = if seq.is_multiple_of(2) { SLOT } else { 0 };
        self.file.write_all_at(&slot, offset)?;
        self.file.sync_data()?;
        self.last = Some(cursor);
        Ok(())
    }
}

fn read_slot(file: &File, offset: u64) -> Option<Cursor> {
    let mut len = [0u8; 4];
    file.read_exact_at(&mut len, offset).ok()?;
    let len = u32::from_le_bytes(len) as u64;
    if len == 0 || len + 36 > SLOT {
        return None;
    }
    let mut body = vec![0u8; len as usize + 32];
    file.read_exact_at(&mut body, offset + 4).ok()?;
    let (json, sum) = body.split_at(len as usize);
    if checksum(json) != sum {
        return None;
    }
    serde_json::from_slice(json).ok()
}

mod sha2_free {
    /// SHA-256 of the record (weft-core's hash; no extra dependency).
    pub fn checksum(bytes: &[u8]) -> [u8; 32] {
        weft_core::sha256(bytes).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(h: u64) -> TrustedRecord {
        TrustedRecord {
            chain_id: "c".into(),
            height: h,
            time: "2026-01-01T00:00:00Z".into(),
            next_validators_hash: "AA".repeat(32),
            header_hash: "BB".repeat(32),
        }
    }

    #[test]
    fn survives_reopen_and_a_torn_latest_slot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cursor");
        let mut c = CursorFile::open(&path).unwrap();
        assert!(c.last().is_none());
        for h in 1..=5 {
            c.save(h, format!("hash{h}"), trusted(h)).unwrap();
        }
        drop(c);
        let c = CursorFile::open(&path).unwrap();
        assert_eq!(c.last().unwrap().height, 5);
        // Tear the newest slot (seq 5 is odd: slot 0): the previous one wins.
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(b"garbage garbage", 10).unwrap();
        drop(f);
        let c = CursorFile::open(&path).unwrap();
        assert_eq!(c.last().unwrap().height, 4);
    }
}
