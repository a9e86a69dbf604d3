//! The listed-commit item: built by the proposer from CometBFT's extended
//! commit, checked by everyone against the previous height's validators,
//! and turned into the set of transactions the block owes.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use tendermint::{
    abci::types::{BlockSignatureInfo, ExtendedCommitInfo},
    block::BlockIdFlag,
};
use weft_core::{
    inclusion::{vote_extension_sign_bytes, InclusionList, ListedCommit, ListedVote},
    sha256, Hash, InclusionParams, PublicKey, Signature,
};

use super::state::InclusionRead;
use crate::{
    component::BlockContext,
    storage::{StateRead, StorageError},
};

/// A listed transaction the block owes, unless excused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedTx {
    /// Its wire bytes.
    pub bytes: Bytes,
    /// Its hash.
    pub hash: Hash,
    /// The voting power of the validators whose lists named it.
    pub power: u64,
}

/// What a verified listed commit obliges the block to carry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listed {
    /// The height whose votes carried the lists.
    pub height: u64,
    /// Every listed transaction once, in the order first listed (votes by
    /// address, each list in its order).
    pub txs: Vec<ListedTx>,
    /// Power of the validators whose extensions the item carries.
    pub listed_power: u64,
    /// Total power of that height's validators.
    pub total_power: u64,
}

/// Why a listed-commit item is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ListedCommitError {
    /// The bytes are not a listed-commit item.
    #[error("malformed listed commit: {0}")]
    Malformed(String),
    /// Lists are required and the block has none.
    #[error("the block does not carry the vote extensions of height {0}")]
    Missing(u64),
    /// The block carries one where none belongs.
    #[error("the block carries a listed commit, but none is expected at this height")]
    Unexpected,
    /// It is not the previous height's, or not its deciding round.
    #[error("listed commit is for height {got_height} round {got_round}, expected height {height} round {round}")]
    WrongHeight {
        /// Claimed height.
        got_height: u64,
        /// Claimed round.
        got_round: u32,
        /// The previous height.
        height: u64,
        /// Its deciding round.
        round: u32,
    },
    /// A vote from an address not in the previous height's validator set.
    #[error("extension from {0}, which was not a validator at that height")]
    NotAValidator(String),
    /// A validator whose key this chain never learned.
    #[error("no key is known for validator {0}")]
    UnknownKey(String),
    /// The extension's signature does not verify.
    #[error("extension signature of {0} does not verify")]
    BadSignature(String),
    /// The extension is not an inclusion list within the bound.
    #[error("extension of {0} is not a valid inclusion list: {1}")]
    BadExtension(String, String),
    /// The carried extensions do not come from more than two-thirds of
    /// the power.
    #[error("extensions carry {listed} of {total} voting power, not more than two-thirds")]
    InsufficientPower {
        /// Power carried.
        listed: u64,
        /// Total power.
        total: u64,
    },
}

fn hex_addr(a: &[u8; 20]) -> String {
    hex::encode_upper(a)
}

/// Checks one carried vote: the signer was a validator at the previous
/// height, its key is known, its signature is CometBFT's over the
/// extension, and the extension is a list within the bound. Returns its
/// power and list.
fn check_vote<S: StateRead + ?Sized>(
    state: &S,
    chain_id: &str,
    height: u64,
    round: u32,
    powers: &BTreeMap<[u8; 20], u64>,
    params: &InclusionParams,
    vote: &ListedVote,
) -> Result<Result<(u64, InclusionList), ListedCommitError>, StorageError> {
    let who = || hex_addr(&vote.validator);
    let Some(&power) = powers.get(&vote.validator) else {
        return Ok(Err(ListedCommitError::NotAValidator(who())));
    };
    let Some(key) = state.validator_key(&vote.validator)? else {
        return Ok(Err(ListedCommitError::UnknownKey(who())));
    };
    let Ok(signature) = <[u8; 64]>::try_from(vote.signature.as_slice()) else {
        return Ok(Err(ListedCommitError::BadSignature(who())));
    };
    let message = vote_extension_sign_bytes(chain_id, height, round, &vote.extension);
    if PublicKey(key)
        .verify(&message, &Signature(signature))
        .is_err()
    {
        return Ok(Err(ListedCommitError::BadSignature(who())));
    }
    let list = if vote.extension.is_empty() {
        InclusionList::default()
    } else {
        match InclusionList::decode(&vote.extension, params.max_inclusion_list_bytes as usize) {
            Ok(list) => list,
            Err(e) => return Ok(Err(ListedCommitError::BadExtension(who(), e.to_string()))),
        }
    };
    Ok(Ok((power, list)))
}

/// The previous height's validators and their power, from the block's
/// last commit (which CometBFT has checked before any ABCI call).
fn powers(ctx: &BlockContext) -> (BTreeMap<[u8; 20], u64>, u64) {
    let mut total = 0u64;
    let map = ctx
        .last_commit
        .votes
        .iter()
        .map(|v| {
            total = total.saturating_add(v.power);
            (v.validator, v.power)
        })
        .collect();
    (map, total)
}

/// Verifies a block's listed commit against the previous height and
/// collects what it lists.
pub fn verify<S: StateRead + ?Sized>(
    state: &S,
    chain_id: &str,
    ctx: &BlockContext,
    params: &InclusionParams,
    item: &ListedCommit,
) -> Result<Result<Listed, ListedCommitError>, StorageError> {
    let height = ctx.height.saturating_sub(1);
    let round = ctx.last_commit.round;
    if item.height != height || item.round != round {
        return Ok(Err(ListedCommitError::WrongHeight {
            got_height: item.height,
            got_round: item.round,
            height,
            round,
        }));
    }
    let (powers, total) = powers(ctx);
    let mut carried = Vec::with_capacity(item.votes.len());
    for vote in &item.votes {
        match check_vote(state, chain_id, height, round, &powers, params, vote)? {
            Ok(v) => carried.push(v),
            Err(e) => return Ok(Err(e)),
        }
    }
    Ok(collect(height, total, carried))
}

/// What checked votes (power, list) oblige the block to carry: their
/// lists' union, each transaction once with the power that named it, if
/// they carry more than two-thirds of `total`.
fn collect(
    height: u64,
    total: u64,
    carried: Vec<(u64, InclusionList)>,
) -> Result<Listed, ListedCommitError> {
    let mut listed = Listed {
        height,
        total_power: total,
        ..Listed::default()
    };
    let mut index: BTreeMap<Hash, usize> = BTreeMap::new();
    for (power, list) in carried {
        listed.listed_power = listed.listed_power.saturating_add(power);
        // A list naming a transaction twice counts its validator once.
        let mut seen = BTreeSet::new();
        for tx in list.txs {
            let hash = sha256(&tx);
            if !seen.insert(hash) {
                continue;
            }
            match index.get(&hash) {
                Some(&i) => listed.txs[i].power = listed.txs[i].power.saturating_add(power),
                None => {
                    index.insert(hash, listed.txs.len());
                    listed.txs.push(ListedTx {
                        bytes: Bytes::from(tx),
                        hash,
                        power,
                    });
                }
            }
        }
    }
    // More than two-thirds, in integers: 3 × listed > 2 × total.
    if u128::from(listed.listed_power) * 3 <= u128::from(total) * 2 {
        return Err(ListedCommitError::InsufficientPower {
            listed: listed.listed_power,
            total,
        });
    }
    Ok(listed)
}

/// The proposer's item: the extensions CometBFT handed it in
/// `local_last_commit` that pass the same checks everyone applies, the
/// largest powers first until more than two-thirds is carried, then more
/// while the item stays within `size_bound`. `None` if the verified
/// extensions do not reach two-thirds (CometBFT guarantees they do for a
/// commit it made, unless vote extensions were off).
pub fn build<S: StateRead + ?Sized>(
    state: &S,
    chain_id: &str,
    ctx: &BlockContext,
    params: &InclusionParams,
    local_last_commit: &ExtendedCommitInfo,
    size_bound: usize,
) -> Result<Option<(ListedCommit, Listed)>, StorageError> {
    let height = ctx.height.saturating_sub(1);
    let round = ctx.last_commit.round;
    let (powers, total) = powers(ctx);
    let mut valid: Vec<(u64, ListedVote, InclusionList)> = Vec::new();
    for v in &local_last_commit.votes {
        if !matches!(v.sig_info, BlockSignatureInfo::Flag(BlockIdFlag::Commit)) {
            continue;
        }
        let Some(sig) = &v.extension_signature else {
            continue;
        };
        let vote = ListedVote {
            validator: v.validator.address,
            extension: v.vote_extension.to_vec(),
            signature: sig.as_bytes().to_vec(),
        };
        match check_vote(state, chain_id, height, round, &powers, params, &vote)? {
            Ok((power, list)) => valid.push((power, vote, list)),
            Err(e) => tracing::warn!(error = %e, "leaving an extension out of the listed commit"),
        }
    }
    valid.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.validator.cmp(&b.1.validator)));
    let mut carried: Vec<(u64, ListedVote, InclusionList)> = Vec::new();
    let mut power = 0u64;
    let mut size = 64usize;
    for (p, vote, list) in valid {
        let enough = u128::from(power) * 3 > u128::from(total) * 2;
        let vote_size = 20 + 8 + vote.extension.len() + vote.signature.len();
        if enough && size + vote_size > size_bound {
            break;
        }
        power = power.saturating_add(p);
        size += vote_size;
        carried.push((p, vote, list));
    }
    // Address order, as the item is checked; each vote was checked above,
    // so what it lists is collected without verifying it again.
    carried.sort_by_key(|(_, v, _)| v.validator);
    let (votes, checked): (Vec<ListedVote>, Vec<(u64, InclusionList)>) =
        carried.into_iter().map(|(p, v, l)| (v, (p, l))).unzip();
    let item = ListedCommit {
        version: weft_core::inclusion::INCLUSION_VERSION,
        height,
        round,
        votes,
    };
    Ok(collect(height, total, checked)
        .ok()
        .map(|listed| (item, listed)))
}
