//! The delivery cursor: the last height the rollup acknowledged, its block
//! hash, and the verified header state to resume trust from (chain id,
//! height, header hash), which binds the cursor to its chain. Written after
//! every acknowledgement into one of two fixed slots of a small file,
//! alternating, each slot checksummed and fdatasync'd, so a crash at any
//! instant leaves at least the previous record intact (no rename, one
//! flush per height).
//!
//! A slot is `[payload length: u32 LE][format version: u8][payload]
//! [SHA-256(version ‖ payload)]`; only the payload may change between
//! versions, so any later conductor can tell a slot it cannot read from a
//! torn one. Format 1 (before the version byte) had no version byte and a
//! checksum over the payload alone; it is still read, and rewritten as the
//! current format on the next save.

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
/// Length prefix, version byte, checksum.
const FRAME: u64 = 4 + 1 + 32;
/// The format this conductor writes.
pub const FORMAT_VERSION: u8 = 2;
/// A format-1 payload is JSON, so its first byte sits where the version
/// byte is now.
const LEGACY_FIRST_BYTE: u8 = b'{';

/// What is persisted after each acknowledged height.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Write sequence; the valid slot with the higher one wins.
    pub seq: u64,
    /// Last sequencer height the rollup acknowledged.
    pub height: u64,
    /// The rollup's block hash for it (its acknowledgement).
    pub rollup_block_hash: String,
    /// Verified state of the sequencer header at `height`: its chain id and
    /// hash tie the cursor to one chain.
    pub trusted: TrustedRecord,
}

/// Why the cursor file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CursorError {
    /// Reading, creating or writing the file failed.
    #[error("cursor {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// A valid slot in a format this conductor does not know (written by a
    /// newer one): refused rather than guessed at.
    #[error(
        "cursor {path} is in format {version}, newer than this weft-conductor reads \
         (up to {FORMAT_VERSION}); run a newer weft-conductor, or move the file away"
    )]
    UnknownVersion {
        /// The file.
        path: PathBuf,
        /// The version byte found.
        version: u8,
    },
}

/// The cursor file.
pub struct CursorFile {
    path: PathBuf,
    file: File,
    last: Option<Cursor>,
}

impl CursorFile {
    /// Opens (or creates) the cursor file and reads the newest valid record.
    pub fn open(path: &Path) -> Result<Self, CursorError> {
        let io_err = |source| CursorError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io_err)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io_err)?;
        let mut last: Option<Cursor> = None;
        for offset in [0, SLOT] {
            match read_slot(&file, offset) {
                Slot::Invalid => {}
                Slot::Unknown(version) => {
                    return Err(CursorError::UnknownVersion {
                        path: path.to_path_buf(),
                        version,
                    })
                }
                Slot::Record(c) => {
                    if last.as_ref().is_none_or(|l| c.seq > l.seq) {
                        last = Some(c);
                    }
                }
            }
        }
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

    /// Forgets every record, durably: the next run starts from the trust
    /// anchor. Both slots are cleared (not just superseded) so a crash
    /// before the next save cannot bring the old record back.
    pub fn reset(&mut self) -> io::Result<()> {
        let empty = [0u8; 4];
        self.file.write_all_at(&empty, 0)?;
        self.file.write_all_at(&empty, SLOT)?;
        self.file.sync_data()?;
        self.last = None;
        Ok(())
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
        if json.len() as u64 + FRAME > SLOT {
            return Err(io::Error::other("cursor record larger than its slot"));
        }
        let mut slot = Vec::with_capacity(json.len() + FRAME as usize);
        slot.extend_from_slice(&(json.len() as u32).to_le_bytes());
        slot.push(FORMAT_VERSION);
        slot.extend_from_slice(&json);
        slot.extend_from_slice(&checksum(FORMAT_VERSION, &json));
        let offset = if seq.is_multiple_of(2) { SLOT } else { 0 };
        self.file.write_all_at(&slot, offset)?;
        self.file.sync_data()?;
        self.last = Some(cursor);
        Ok(())
    }
}

/// What one slot holds.
enum Slot {
    /// Empty, torn or otherwise not a checksummed record.
    Invalid,
    /// A checksummed record of a format this conductor does not know.
    Unknown(u8),
    /// A record.
    Record(Cursor),
}

fn read_slot(file: &File, offset: u64) -> Slot {
    let mut head = [0u8; 5];
    if file.read_exact_at(&mut head, offset).is_err() {
        return Slot::Invalid;
    }
    let len = u64::from(u32::from_le_bytes([head[0], head[1], head[2], head[3]]));
    let version = head[4];
    if version == LEGACY_FIRST_BYTE {
        return read_legacy_slot(file, offset, len);
    }
    if len == 0 || len + FRAME > SLOT {
        return Slot::Invalid;
    }
    let mut body = vec![0u8; len as usize + 32];
    if file.read_exact_at(&mut body, offset + 5).is_err() {
        return Slot::Invalid;
    }
    let (payload, sum) = body.split_at(len as usize);
    if checksum(version, payload) != sum {
        return Slot::Invalid;
    }
    if version != FORMAT_VERSION {
        return Slot::Unknown(version);
    }
    serde_json::from_slice(payload).map_or(Slot::Invalid, Slot::Record)
}

/// Format 1: `[length][JSON][SHA-256(JSON)]`; its JSON is today's payload.
fn read_legacy_slot(file: &File, offset: u64, len: u64) -> Slot {
    if len == 0 || len + 36 > SLOT {
        return Slot::Invalid;
    }
    let mut body = vec![0u8; len as usize + 32];
    if file.read_exact_at(&mut body, offset + 4).is_err() {
        return Slot::Invalid;
    }
    let (json, sum) = body.split_at(len as usize);
    if weft_core::sha256(json).0 != sum {
        return Slot::Invalid;
    }
    serde_json::from_slice(json).map_or(Slot::Invalid, Slot::Record)
}

mod sha2_free {
    /// SHA-256 of the version byte and the record (weft-core's hash; no
    /// extra dependency): a torn version byte fails the checksum too.
    pub fn checksum(version: u8, payload: &[u8]) -> [u8; 32] {
        weft_core::hash::sha256_parts(&[&[version], payload]).0
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

    /// A slot as format 1 wrote it: no version byte, checksum over the JSON.
    fn legacy_slot(cursor: &Cursor) -> Vec<u8> {
        let json = serde_json::to_vec(cursor).unwrap();
        let mut slot = (json.len() as u32).to_le_bytes().to_vec();
        slot.extend_from_slice(&json);
        slot.extend_from_slice(&weft_core::sha256(&json).0);
        slot
    }

    #[test]
    fn records_carry_the_format_version_and_bind_to_their_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cursor");
        let mut c = CursorFile::open(&path).unwrap();
        c.save(7, "h7".into(), trusted(7)).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes[4], FORMAT_VERSION, "version byte after the length");
        let last = CursorFile::open(&path).unwrap().last().cloned().unwrap();
        assert_eq!(last.trusted.chain_id, "c");
        assert_eq!(last.trusted.header_hash, "BB".repeat(32));
    }

    #[test]
    fn a_format_1_cursor_is_read_and_upgraded_on_the_next_save() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cursor");
        let old = Cursor {
            seq: 9,
            height: 41,
            rollup_block_hash: "r41".into(),
            trusted: trusted(41),
        };
        std::fs::write(&path, legacy_slot(&old)).unwrap();
        let mut c = CursorFile::open(&path).unwrap();
        assert_eq!(c.last(), Some(&old));
        c.save(42, "r42".into(), trusted(42)).unwrap();
        drop(c);
        let c = CursorFile::open(&path).unwrap();
        let last = c.last().unwrap();
        assert_eq!((last.seq, last.height), (10, 42));
        // seq 10 went to slot 1, in the current format; slot 0 is still
        // the legacy record, superseded.
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes[SLOT as usize + 4], FORMAT_VERSION);
    }

    #[test]
    fn a_newer_format_is_refused_and_garbage_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cursor");
        let payload = br#"{"from":"the future"}"#;
        let mut slot = (payload.len() as u32).to_le_bytes().to_vec();
        slot.push(FORMAT_VERSION + 1);
        slot.extend_from_slice(payload);
        slot.extend_from_slice(&checksum(FORMAT_VERSION + 1, payload));
        std::fs::write(&path, &slot).unwrap();
        let err = CursorFile::open(&path).err().expect("a newer format");
        assert!(
            matches!(err, CursorError::UnknownVersion { version, .. } if version == FORMAT_VERSION + 1),
            "{err}"
        );
        assert!(err.to_string().contains("newer"), "{err}");
        // The same bytes with a broken checksum are a torn slot: ignored.
        let last = slot.len() - 1;
        slot[last] ^= 1;
        std::fs::write(&path, &slot).unwrap();
        assert!(CursorFile::open(&path).unwrap().last().is_none());
    }

    #[test]
    fn reset_forgets_every_record_durably() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cursor");
        let mut c = CursorFile::open(&path).unwrap();
        for h in 1..=3 {
            c.save(h, format!("hash{h}"), trusted(h)).unwrap();
        }
        c.reset().unwrap();
        assert!(c.last().is_none());
        drop(c);
        let mut c = CursorFile::open(&path).unwrap();
        assert!(c.last().is_none(), "neither slot comes back");
        c.save(1, "again".into(), trusted(1)).unwrap();
        assert_eq!(CursorFile::open(&path).unwrap().last().unwrap().seq, 1);
    }
}
