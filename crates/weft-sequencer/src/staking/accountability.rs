//! Accountability: evidence of double-signing (duplicate votes, light
//! client attacks) slashes and tombstones its offender; downtime (too
//! many missed heights in the recent window) slashes and jails. Slashes
//! cut the validator's tokens (every delegator's shares lose worth at
//! once, one write), the unbonding entries that left it since the
//! offense and the stake redelegated away since (at its destination),
//! and burn what they cut.
//!
//! Per-block cost: one read per evidence item, and per validator that
//! missed the previous height one read and one write of its missed-heights
//! record. A validator that signed costs nothing.

use weft_core::{Address, Amount, StakingParams};

use super::{
    shares,
    state::{MissedBlocks, RedelegationEntry, StakingRead, StakingWrite, Validator},
};
use crate::{
    component::{BlockContext, EndBlock, Event, EventValue, MisbehaviorKind},
    error::StorageError,
    storage::StateWrite,
};

/// Burns `bps` of `v`'s tokens, of every unbonding entry that left it
/// at or after `offense_height`, and of the stake every redelegation entry
/// created at or after it moved to another validator (all of it was
/// bonded to `v` at the offense: transactions of block H run after the
/// votes for H); returns the total burned. The caller stores `v`.
pub fn slash(
    state: &mut dyn StateWrite,
    v: &mut Validator,
    bps: u16,
    offense_height: u64,
) -> Result<Amount, StorageError> {
    let from_bonded = shares::bps_of(v.bonded, bps);
    v.bonded -= from_bonded;
    let mut total = from_bonded;
    for (completion, mut entry) in state.unbonding_from(&v.operator)? {
        if entry.started < offense_height {
            continue;
        }
        let cut = shares::bps_of(entry.amount, bps);
        if cut == 0 {
            continue;
        }
        entry.amount -= cut;
        if entry.amount == 0 {
            state.delete_unbonding_entry(completion, &entry);
        } else {
            state.put_unbonding_entry(completion, &entry);
        }
        total = total.saturating_add(cut);
    }
    for (completion, entry) in state.redelegations_from(&v.operator)? {
        if entry.created < offense_height {
            continue;
        }
        total = total.saturating_add(slash_redelegation(state, completion, entry, bps)?);
    }
    let burned = state
        .slashed_burned()?
        .checked_add(total)
        .ok_or_else(|| StorageError::Corrupt(format!("{} overflows", super::state::BURNED)))?;
    state.put_slashed_burned(burned);
    Ok(total)
}

/// Takes `bps` of the destination shares `entry` bought off the
/// delegator's delegation there (at most what it still holds: stake
/// undelegated from the destination since is out of reach, as in Cosmos)
/// and burns what they are worth now; the entry keeps the rest. Returns
/// the tokens burned.
fn slash_redelegation(
    state: &mut dyn StateWrite,
    completion: u64,
    mut entry: RedelegationEntry,
    bps: u16,
) -> Result<Amount, StorageError> {
    let corrupt = |what: &str| {
        StorageError::Corrupt(format!(
            "redelegation of {} from {} to {}: {what}",
            entry.delegator, entry.source, entry.destination
        ))
    };
    let mut dst = state
        .validator(&entry.destination)?
        .ok_or_else(|| StorageError::Corrupt(super::state::validator_key(&entry.destination)))?;
    let mut d = state.delegation_record(&entry.delegator, &entry.destination)?;
    let cut = shares::bps_of(entry.shares, bps).min(d.shares);
    if cut == 0 {
        return Ok(0);
    }
    let tokens = shares::tokens_of(cut, &dst);
    // Its shares change: settle its rewards first.
    shares::settle(&mut d, &dst).ok_or_else(|| corrupt("rewards overflow"))?;
    d.shares -= cut; // cut ≤ d.shares
    dst.shares = dst
        .shares
        .checked_sub(cut)
        .ok_or_else(|| corrupt("more delegated shares than issued"))?;
    dst.bonded = dst
        .bonded
        .checked_sub(tokens)
        .ok_or_else(|| corrupt("shares worth more than the bonded tokens"))?;
    state.put_delegation(&entry.delegator, &entry.destination, &d);
    state.put_validator(&dst)?;
    entry.initial_balance -= shares::bps_of(entry.initial_balance, bps);
    entry.shares -= cut;
    state.put_redelegation(completion, &entry);
    Ok(tokens)
}

/// Slashes and tombstones the offender of each evidence item in the block
/// (an offender already tombstoned is punished once). Returns the
/// operators to take out of the active set.
pub fn handle_evidence(
    state: &mut dyn StateWrite,
    params: &StakingParams,
    ctx: &BlockContext,
    out: &mut EndBlock,
) -> Result<Vec<Address>, StorageError> {
    let mut removed = Vec::new();
    for m in &ctx.misbehavior {
        let kind = match m.kind {
            MisbehaviorKind::DuplicateVote => "duplicate_vote",
            MisbehaviorKind::LightClientAttack => "light_client_attack",
            // A kind this version does not know punishes nobody.
            MisbehaviorKind::Unknown => continue,
        };
        let Some(operator) = state.operator_of_cometbft_address(&m.validator)? else {
            continue;
        };
        let mut v = state
            .validator(&operator)?
            .ok_or_else(|| StorageError::Corrupt(super::state::validator_key(&operator)))?;
        if v.tombstoned {
            continue;
        }
        let burned = slash(state, &mut v, params.slash_double_sign_bps, m.height)?;
        v.tombstoned = true;
        v.jailed_until = None;
        state.put_validator(&v)?;
        out.events.push(
            Event::new("staking.slash")
                .indexed("operator", EventValue::Address(operator))
                .stored("reason", EventValue::Text(kind.into()))
                .stored("offense_height", EventValue::U64(m.height))
                .stored("burned", EventValue::Amount(burned))
                .stored("tombstoned", EventValue::U64(1)),
        );
        removed.push(operator);
    }
    Ok(removed)
}

/// Records the previous height's missing signatures; a validator that
/// missed more than `downtime_max_missed_bps` of the window is slashed
/// `slash_downtime_bps` and jailed for `jail_blocks`. Returns the
/// operators to take out of the active set.
pub fn handle_downtime(
    state: &mut dyn StateWrite,
    params: &StakingParams,
    ctx: &BlockContext,
    out: &mut EndBlock,
) -> Result<Vec<Address>, StorageError> {
    let mut removed = Vec::new();
    let Some(signed_height) = ctx.height.checked_sub(1).filter(|h| *h > 0) else {
        return Ok(removed);
    };
    let window = params.downtime_window_blocks.max(1);
    let allowed = max_missed(params);
    for vote in ctx.last_commit.votes.iter().filter(|v| !v.signed) {
        let Some(operator) = state.operator_of_cometbft_address(&vote.validator)? else {
            continue;
        };
        let mut v = state
            .validator(&operator)?
            .ok_or_else(|| StorageError::Corrupt(super::state::validator_key(&operator)))?;
        // Already out: its last heights in CometBFT's set do not count.
        if v.is_jailed() {
            continue;
        }
        let mut missed = state.missed_blocks(&operator)?;
        record_miss(&mut missed, signed_height, window);
        if missed.count <= allowed {
            state.put_missed_blocks(&operator, &missed);
            continue;
        }
        let burned = slash(state, &mut v, params.slash_downtime_bps, signed_height)?;
        let until = ctx.height.saturating_add(params.jail_blocks);
        v.jailed_until = Some(until);
        state.put_validator(&v)?;
        // A fresh window after the jail.
        state.put_missed_blocks(&operator, &MissedBlocks::default());
        out.events.push(
            Event::new("staking.slash")
                .indexed("operator", EventValue::Address(operator))
                .stored("reason", EventValue::Text("downtime".into()))
                .stored("offense_height", EventValue::U64(signed_height))
                .stored("burned", EventValue::Amount(burned))
                .stored("missed", EventValue::U64(missed.count))
                .stored("jailed_until", EventValue::U64(until)),
        );
        removed.push(operator);
    }
    Ok(removed)
}

/// Most heights of the window a validator may miss without being jailed.
pub fn max_missed(params: &StakingParams) -> u64 {
    let w = u128::from(params.downtime_window_blocks);
    // ≤ window, fits.
    u64::try_from(shares::bps_of(w, params.downtime_max_missed_bps)).unwrap_or(u64::MAX)
}

fn bytes_for(window: u64) -> usize {
    usize::try_from(window.div_ceil(8)).unwrap_or(usize::MAX)
}

fn bit(bits: &[u8], pos: u64) -> bool {
    bits.get((pos / 8) as usize)
        .is_some_and(|b| b & (1 << (pos % 8)) != 0)
}

fn set_bit(bits: &mut [u8], pos: u64, on: bool) {
    if let Some(b) = bits.get_mut((pos / 8) as usize) {
        if on {
            *b |= 1 << (pos % 8);
        } else {
            *b &= !(1 << (pos % 8));
        }
    }
}

/// Adds missed height `h` to `m`, forgetting the heights that left the
/// window `(h - window, h]` since the last miss. A window of another size
/// than the record's (a parameter change) starts the record afresh.
pub fn record_miss(m: &mut MissedBlocks, h: u64, window: u64) {
    if m.window != window || m.bits.len() != bytes_for(window) || m.count == 0 {
        *m = MissedBlocks {
            window,
            last_height: 0,
            count: 0,
            bits: vec![0; bytes_for(window)],
        };
    }
    if m.count > 0 && h <= m.last_height {
        // Already counted (heights only grow).
        return;
    }
    let gap = h - m.last_height;
    if m.count == 0 || gap >= window {
        m.bits.iter_mut().for_each(|b| *b = 0);
        m.count = 0;
    } else {
        // Height x takes the slot of x - window, which has left the window.
        for x in m.last_height + 1..h {
            let pos = x % window;
            if bit(&m.bits, pos) {
                set_bit(&mut m.bits, pos, false);
                m.count -= 1;
            }
        }
    }
    let pos = h % window;
    if !bit(&m.bits, pos) {
        set_bit(&mut m.bits, pos, true);
        m.count += 1;
    }
    m.last_height = h;
}

/// Missed heights among the window ending at `now`, from a record last
/// written at `m.last_height` ≤ `now`.
pub fn missed_in_window(m: &MissedBlocks, now: u64, window: u64) -> u64 {
    if m.count == 0 || m.window != window || m.bits.len() != bytes_for(window) {
        return 0;
    }
    let since = now.saturating_sub(m.last_height);
    if since >= window {
        return 0;
    }
    // Heights (last - window, now - window] have left the window since.
    let mut count = m.count;
    for x in m.last_height + 1..=now {
        if bit(&m.bits, x % window) {
            count -= 1;
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_forgets_old_misses() {
        let mut m = MissedBlocks::default();
        for h in [3, 4, 5] {
            record_miss(&mut m, h, 4);
        }
        assert_eq!(m.count, 3);
        record_miss(&mut m, 5, 4);
        assert_eq!(m.count, 3, "a height counts once");
        // Window (3, 7]: 3 has left, 4 and 5 stay, 7 joins.
        record_miss(&mut m, 7, 4);
        assert_eq!(m.count, 3);
        assert_eq!(missed_in_window(&m, 7, 4), 3);
        // At 8, 4 leaves; at 11, only 7 is left... and at 11 nothing.
        assert_eq!(missed_in_window(&m, 8, 4), 2);
        assert_eq!(missed_in_window(&m, 10, 4), 1);
        assert_eq!(missed_in_window(&m, 11, 4), 0);
        // Far later: everything before is forgotten.
        record_miss(&mut m, 100, 4);
        assert_eq!(m.count, 1);
        // Another window size starts afresh.
        record_miss(&mut m, 101, 8);
        assert_eq!((m.count, m.bits.len()), (1, 1));
    }
}
