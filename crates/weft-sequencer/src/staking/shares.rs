//! Share and reward arithmetic. Integer only, with 256-bit intermediates
//! so `a × b / c` never overflows for any `u128` operands; every rounding
//! favours the stake that stays (a leaving delegator gets at most what its
//! shares are worth, a joining one at most the shares its tokens buy), so
//! no delegator's shares ever lose worth by another's move.

use ethnum::U256;
use weft_core::Amount;

use super::state::{Delegation, Validator};

/// Scale of `Validator::reward_per_share`: 10^18 per token of reward per
/// share, so a reward as small as one token spread over 10^18 shares is
/// still counted.
pub const REWARD_SCALE: u128 = 1_000_000_000_000_000_000;

/// Basis points in one whole.
pub const BPS: u128 = 10_000;

fn narrow(x: U256) -> Option<u128> {
    let (hi, lo) = x.into_words();
    (hi == 0).then_some(lo)
}

/// `⌊a × b / c⌋`; `None` if `c` is 0 or the result does not fit a `u128`.
pub fn mul_div(a: u128, b: u128, c: u128) -> Option<u128> {
    if c == 0 {
        return None;
    }
    narrow(U256::from(a) * U256::from(b) / U256::from(c))
}

/// `⌈a × b / c⌉`; `None` if `c` is 0 or the result does not fit a `u128`.
pub fn mul_div_ceil(a: u128, b: u128, c: u128) -> Option<u128> {
    if c == 0 {
        return None;
    }
    let c = U256::from(c);
    let p = U256::from(a) * U256::from(b);
    let q = p / c;
    narrow(if p % c == 0 { q } else { q + 1 })
}

/// `⌊amount × bps / 10000⌋` for `bps` ≤ 10000 (larger values count as
/// 10000); never overflows.
pub fn bps_of(amount: Amount, bps: u16) -> Amount {
    let bps = u128::from(bps).min(BPS);
    // ≤ amount, so it fits.
    mul_div(amount, bps, BPS).unwrap_or(amount)
}

/// What `shares` of `v` are worth in tokens, rounded down.
pub fn tokens_of(shares: u128, v: &Validator) -> Amount {
    if v.shares == 0 {
        return 0;
    }
    // shares ≤ v.shares for any real delegation, so this is ≤ v.bonded;
    // saturate rather than fail on a larger input.
    mul_div(shares, v.bonded, v.shares).unwrap_or(v.bonded)
}

/// The shares `amount` tokens buy from `v`, rounded down; `None` when
/// none can be issued (the validator was slashed to zero tokens while
/// shares remain, the rate overflows, or the amount buys less than one
/// share).
pub fn shares_for_deposit(amount: Amount, v: &Validator) -> Option<u128> {
    let shares = if v.shares == 0 {
        // The first delegation (or the first after everyone left): 1:1.
        amount
    } else if v.bonded == 0 {
        return None;
    } else {
        mul_div(amount, v.shares, v.bonded)?
    };
    (shares > 0).then_some(shares)
}

/// The shares a delegation holding `held` must give up to take `amount`
/// tokens out of `v`, rounded up (all of them when it takes everything it
/// is worth); `None` if its shares are worth less than `amount`.
pub fn shares_for_withdrawal(amount: Amount, held: u128, v: &Validator) -> Option<u128> {
    let worth = tokens_of(held, v);
    if amount > worth {
        return None;
    }
    if amount == worth {
        return Some(held);
    }
    // amount < worth ≤ bonded, so bonded > 0.
    Some(mul_div_ceil(amount, v.shares, v.bonded)?.min(held))
}

/// Rewards `d` has earned from `v` since it was last settled.
pub fn pending_rewards(d: &Delegation, v: &Validator) -> Amount {
    let per_share = v.reward_per_share.saturating_sub(d.reward_cursor);
    // ≤ the reserve's share of this delegation, far below u128::MAX.
    mul_div(d.shares, per_share, REWARD_SCALE).unwrap_or(Amount::MAX)
}

/// Moves `d`'s pending rewards into its settled rewards and sets its
/// cursor to `v`'s accumulator: required before its shares change.
/// `None` if the settled rewards would overflow (they cannot: the reserve
/// covers them).
pub fn settle(d: &mut Delegation, v: &Validator) -> Option<()> {
    d.rewards = d.rewards.checked_add(pending_rewards(d, v))?;
    d.reward_cursor = v.reward_per_share;
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_core::Address;

    fn validator(bonded: Amount, shares: u128) -> Validator {
        Validator {
            bonded,
            shares,
            ..Validator::new(Address([1; 20]), [1; 32], "v".into(), String::new(), 0)
        }
    }

    #[test]
    fn mul_div_is_exact_past_u128() {
        assert_eq!(mul_div(u128::MAX, u128::MAX, u128::MAX), Some(u128::MAX));
        assert_eq!(mul_div(u128::MAX, 2, 1), None);
        assert_eq!(mul_div(1, 1, 0), None);
        assert_eq!(mul_div(7, 3, 2), Some(10));
        assert_eq!(mul_div_ceil(7, 3, 2), Some(11));
        assert_eq!(mul_div_ceil(8, 3, 2), Some(12));
        assert_eq!(bps_of(u128::MAX, 10_000), u128::MAX);
        assert_eq!(bps_of(u128::MAX, 20_000), u128::MAX);
        assert_eq!(bps_of(999, 500), 49);
    }

    #[test]
    fn shares_keep_their_worth_through_slashes_and_moves() {
        // 1000 tokens, 1000 shares; a 10 % slash leaves 900 tokens.
        let mut v = validator(900, 1_000);
        assert_eq!(tokens_of(500, &v), 450);
        // 90 tokens buy 100 shares at 0.9 a share.
        assert_eq!(shares_for_deposit(90, &v), Some(100));
        // Taking 1 token costs 2 shares (⌈1.11⌉), taking all costs all.
        assert_eq!(shares_for_withdrawal(1, 500, &v), Some(2));
        assert_eq!(shares_for_withdrawal(450, 500, &v), Some(500));
        assert_eq!(shares_for_withdrawal(451, 500, &v), None);
        // Fully slashed: nobody can buy into it.
        v.bonded = 0;
        assert_eq!(shares_for_deposit(10, &v), None);
        // No shares yet: 1:1.
        assert_eq!(shares_for_deposit(10, &validator(0, 0)), Some(10));
    }

    #[test]
    fn settling_moves_pending_rewards_and_resets_the_cursor() {
        let mut v = validator(100, 100);
        v.reward_per_share = 3 * REWARD_SCALE / 2;
        let mut d = Delegation {
            shares: 10,
            reward_cursor: REWARD_SCALE / 2,
            rewards: 1,
        };
        assert_eq!(pending_rewards(&d, &v), 10);
        settle(&mut d, &v).unwrap();
        assert_eq!((d.rewards, d.reward_cursor), (11, v.reward_per_share));
        assert_eq!(pending_rewards(&d, &v), 0);
    }
}
