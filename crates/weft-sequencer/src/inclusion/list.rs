//! What a validator lists (ExtendVote) and what it accepts from others
//! (VerifyVoteExtension).

use std::{
    cmp::Reverse,
    collections::{BTreeSet, BinaryHeap},
};

use weft_core::{
    inclusion::{InclusionList, MAX_INCLUSION_LIST_BYTES},
    Address, Hash, InclusionParams,
};

use crate::mempool::Mempool;

/// The inclusion list for the vote on the block at `committed + 1`:
/// pending transactions (executable against the latest state, as the
/// mempool keeps them) that have waited through at least
/// `inclusion_delay_blocks` blocks, counting the one being voted on and
/// not carrying them (`in_block`); oldest first and in nonce order within
/// each account, within `max_inclusion_list_bytes`. With the default delay
/// of 1, whatever the block being voted on left out is listed, so the
/// next block owes it.
pub fn inclusion_list(
    pool: &Mempool,
    params: &InclusionParams,
    committed: u64,
    in_block: &BTreeSet<Hash>,
    skip: Option<&Address>,
) -> InclusionList {
    let bound = (params.max_inclusion_list_bytes as usize).min(MAX_INCLUSION_LIST_BYTES);
    let runs: Vec<Vec<&crate::mempool::Entry>> = pool
        .pending_runs()
        .filter(|r| !r.is_empty() && Some(&r[0].checked.signer) != skip)
        .collect();
    let mut heads: BinaryHeap<Reverse<(u64, usize, usize)>> = runs
        .iter()
        .enumerate()
        .map(|(i, run)| Reverse((run[0].seq, i, 0)))
        .collect();
    let mut size = InclusionList::encoded_len([]);
    let mut txs = Vec::new();
    while let Some(Reverse((_, run, pos))) = heads.pop() {
        let entry = runs[run][pos];
        let next = || {
            runs[run]
                .get(pos + 1)
                .map(|n| Reverse((n.seq, run, pos + 1)))
        };
        if in_block.contains(&entry.checked.hash) {
            // Being included now: the account's next one may follow it.
            if let Some(n) = next() {
                heads.push(n);
            }
            continue;
        }
        // Too young, or too large: the account's later nonces could not
        // execute before it, so its run stops here.
        let waited = (committed + 1).saturating_sub(entry.admitted_height);
        if waited < params.inclusion_delay_blocks {
            continue;
        }
        let grown = size + 4 + entry.bytes.len();
        if grown > bound {
            continue;
        }
        size = grown;
        txs.push(entry.bytes.to_vec());
        if let Some(n) = next() {
            heads.push(n);
        }
    }
    InclusionList::new(txs)
}

/// Why a vote extension is refused.
#[derive(Debug, thiserror::Error)]
pub enum ExtensionError {
    /// Lists are off, yet the extension is not empty.
    #[error("inclusion lists are off on this chain; the extension must be empty")]
    NotExpected,
    /// Not an inclusion list, or over the bound.
    #[error("malformed inclusion list: {0}")]
    Malformed(#[from] weft_core::DecodeError),
}

/// VerifyVoteExtension's rule: only the form and the bound, never what
/// this node's mempool holds (validators' mempools differ; refusing on
/// them would split votes and halt the chain). An empty extension is an
/// empty list (a validator that had nothing, or has just started).
pub fn verify_extension(
    params: Option<&InclusionParams>,
    extension: &[u8],
) -> Result<(), ExtensionError> {
    if extension.is_empty() {
        return Ok(());
    }
    let Some(params) = params.filter(|p| p.enabled) else {
        return Err(ExtensionError::NotExpected);
    };
    InclusionList::decode(extension, params.max_inclusion_list_bytes as usize)?;
    Ok(())
}
