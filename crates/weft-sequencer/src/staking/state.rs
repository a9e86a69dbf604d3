//! Staking storage: every key the staking component writes, spelled here
//! and nowhere else, and the typed reads and writes over them.
//!
//! Keys sort by what is iterated, so each iteration is one ordered prefix
//! read: validators by operator, an account's delegations by delegator
//! then validator, unbonding entries by completion height (zero-padded)
//! then delegator then validator, and the same entries again by validator
//! (for slashing).
//!
//! Delegations hold *shares* of their validator's bonded tokens: a slash
//! lowers the validator's tokens and so the worth of every share, with one
//! write. Rewards are lazy: each validator keeps a cumulative reward per
//! share, and each delegation the value it had when last settled.

use borsh::{BorshDeserialize, BorshSerialize};
use weft_core::{Address, Amount};

use crate::storage::{decode_stored, encode_stored, StateRead, StateWrite, StorageError};

/// Prefix of every validator record.
pub const VALIDATORS_PREFIX: &str = "staking/validators/";
/// Prefix of every unbonding entry.
pub const UNBONDING_PREFIX: &str = "staking/unbonding/";
/// The active set as last sent to CometBFT (or set at genesis).
pub const ACTIVE_SET: &str = "staking/active_set";
/// Prefix of the approved set's index.
pub const APPROVED_PREFIX: &str = "staking/approved/";

/// Stake burned by slashing (u128): out of circulation for good.
pub const BURNED: &str = "staking/burned";
/// Rewards paid out of the fee pool and not claimed yet (u128): every
/// delegation's claimable rewards and every validator's commission are
/// covered by it (integer rounding leaves it a little above their sum).
pub const REWARD_RESERVE: &str = "staking/reward_reserve";

/// `staking/approved/<operator hex>`: present iff the validator is
/// approved. The epoch transition reads this index, not every candidate:
/// registering is open to anyone, so the number of candidates is not
/// bounded, while the approved set is bounded by governance.
pub fn approved_key(operator: &Address) -> String {
    format!("{APPROVED_PREFIX}{}", operator.to_hex())
}

/// `staking/validators/<operator hex>`.
pub fn validator_key(operator: &Address) -> String {
    format!("{VALIDATORS_PREFIX}{}", operator.to_hex())
}

/// `staking/consensus_keys/<key hex>`: which operator uses a consensus
/// key, so no two validators share one (CometBFT would see one validator).
pub fn consensus_key_key(consensus_key: &[u8; 32]) -> String {
    format!("staking/consensus_keys/{}", hex::encode(consensus_key))
}

/// `staking/delegations/<delegator hex>/`: all of one account's
/// delegations.
pub fn delegations_prefix(delegator: &Address) -> String {
    format!("staking/delegations/{}/", delegator.to_hex())
}

/// `staking/delegations/<delegator hex>/<validator hex>`.
pub fn delegation_key(delegator: &Address, validator: &Address) -> String {
    format!("{}{}", delegations_prefix(delegator), validator.to_hex())
}

/// `staking/unbonding/<height, 20 digits>/`: every entry completing at
/// `height`. Zero-padded so keys sort by height.
pub fn unbonding_prefix_at(height: u64) -> String {
    format!("{UNBONDING_PREFIX}{height:020}/")
}

/// `staking/unbonding/<height>/<delegator hex>/<validator hex>`: one entry
/// per (completion height, delegator, validator); a second `Undelegate`
/// completing at the same height adds to it.
pub fn unbonding_key(height: u64, delegator: &Address, validator: &Address) -> String {
    format!(
        "{}{}/{}",
        unbonding_prefix_at(height),
        delegator.to_hex(),
        validator.to_hex()
    )
}

/// `staking/unbonding_by_validator/<validator hex>/`: the index of the
/// entries that left one validator, so evidence against it slashes them
/// without scanning the whole queue.
pub fn unbonding_by_validator_prefix(validator: &Address) -> String {
    format!("staking/unbonding_by_validator/{}/", validator.to_hex())
}

/// `staking/unbonding_by_validator/<validator>/<height>/<delegator>`:
/// empty; present iff the entry under [`unbonding_key`] exists.
pub fn unbonding_by_validator_key(height: u64, delegator: &Address, validator: &Address) -> String {
    format!(
        "{}{height:020}/{}",
        unbonding_by_validator_prefix(validator),
        delegator.to_hex()
    )
}

/// `staking/cometbft_addresses/<address hex>`: the operator whose
/// consensus key has this CometBFT address (first 20 bytes of SHA-256 of
/// the key), so evidence and commit votes find their validator.
pub fn cometbft_address_key(address: &[u8; 20]) -> String {
    format!("staking/cometbft_addresses/{}", hex::encode(address))
}

/// `staking/missed/<operator hex>`: the validator's recently missed
/// heights ([`MissedBlocks`]); written only when it misses one.
pub fn missed_key(operator: &Address) -> String {
    format!("staking/missed/{}", operator.to_hex())
}

/// `staking/active_since/<operator hex>`: the first height a member of
/// the active set is expected to sign (u64): 1 for the genesis set,
/// `h + 2` for one that joined in block `h`'s updates (CometBFT applies
/// them two heights later). Present only while it is in the set; uptime
/// is judged over the heights since then, not over a window it was not
/// in.
pub fn active_since_key(operator: &Address) -> String {
    format!("staking/active_since/{}", operator.to_hex())
}

/// `staking/redelegations/<source hex>/`: the redelegation entries that
/// left one validator, so evidence against it slashes them without
/// scanning anything else.
pub fn redelegations_from_prefix(source: &Address) -> String {
    format!("staking/redelegations/{}/", source.to_hex())
}

/// `staking/redelegations/<source>/<completion, 20 digits>/<delegator>/
/// <destination>`: one [`RedelegationEntry`] per (completion height,
/// delegator, destination); a second `Redelegate` completing at the same
/// height adds to it.
pub fn redelegation_key(
    completion: u64,
    source: &Address,
    delegator: &Address,
    destination: &Address,
) -> String {
    format!(
        "{}{completion:020}/{}/{}",
        redelegations_from_prefix(source),
        delegator.to_hex(),
        destination.to_hex()
    )
}

/// `staking/redelegation_queue/<completion, 20 digits>/`: the entries that
/// expire at one height.
pub fn redelegation_queue_prefix_at(completion: u64) -> String {
    format!("staking/redelegation_queue/{completion:020}/")
}

/// `staking/redelegation_queue/<completion>/<source>/<delegator>/
/// <destination>`: empty; present iff the entry under
/// [`redelegation_key`] exists.
pub fn redelegation_queue_key(
    completion: u64,
    source: &Address,
    delegator: &Address,
    destination: &Address,
) -> String {
    format!(
        "{}{}/{}/{}",
        redelegation_queue_prefix_at(completion),
        source.to_hex(),
        delegator.to_hex(),
        destination.to_hex()
    )
}

/// CometBFT's address of an ed25519 consensus key: the first 20 bytes of
/// its SHA-256.
pub fn cometbft_address(consensus_key: &[u8; 32]) -> [u8; 20] {
    let h = weft_core::sha256(consensus_key);
    let mut a = [0u8; 20];
    a.copy_from_slice(&h.0[..20]);
    a
}

/// `staking/unbonding_by_delegator/<delegator hex>/`: the index of one
/// account's unbonding entries, so a wallet's query does not scan the
/// whole queue.
pub fn unbonding_by_delegator_prefix(delegator: &Address) -> String {
    format!("staking/unbonding_by_delegator/{}/", delegator.to_hex())
}

/// `staking/unbonding_by_delegator/<delegator>/<height>/<validator>`:
/// empty; present iff the entry under [`unbonding_key`] exists.
pub fn unbonding_by_delegator_key(height: u64, delegator: &Address, validator: &Address) -> String {
    format!(
        "{}{height:020}/{}",
        unbonding_by_delegator_prefix(delegator),
        validator.to_hex()
    )
}

/// A registered validator candidate.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Validator {
    /// The operator's account (it registered the validator).
    pub operator: Address,
    /// The key CometBFT signs with.
    pub consensus_key: [u8; 32],
    /// Display name.
    pub name: String,
    /// Website.
    pub website: String,
    /// Commission in basis points.
    pub commission_bps: u16,
    /// Whether genesis or a passed governance proposal admitted it to the
    /// approved set; an unapproved candidate never enters the active set.
    pub approved: bool,
    /// Tokens bonded to it: what its delegations' shares are worth
    /// together. Slashing lowers it; the shares stay.
    pub bonded: Amount,
    /// Shares issued to its delegators, in total.
    pub shares: u128,
    /// Rewards per share paid to its delegators since registration,
    /// scaled by [`super::shares::REWARD_SCALE`].
    pub reward_per_share: u128,
    /// Commission earned and not yet claimed by its operator.
    pub commission: Amount,
    /// Jailed (out of the active set) until `Unjail` at or after this
    /// height; `None` when not jailed.
    pub jailed_until: Option<u64>,
    /// Tombstoned for double-signing: out of the active set for good.
    pub tombstoned: bool,
    /// The epoch of its last commission change (one change per epoch).
    pub commission_changed_epoch: Option<u64>,
    /// The ed25519 key the builder relay authenticates its requests with.
    pub relay_key: Option<[u8; 32]>,
}

impl Validator {
    /// A fresh record: not approved, no stake, not jailed.
    pub fn new(
        operator: Address,
        consensus_key: [u8; 32],
        name: String,
        website: String,
        commission_bps: u16,
    ) -> Self {
        Validator {
            operator,
            consensus_key,
            name,
            website,
            commission_bps,
            approved: false,
            bonded: 0,
            shares: 0,
            reward_per_share: 0,
            commission: 0,
            jailed_until: None,
            tombstoned: false,
            commission_changed_epoch: None,
            relay_key: None,
        }
    }

    /// Whether it is kept out of the active set (jailed or tombstoned).
    pub fn is_jailed(&self) -> bool {
        self.tombstoned || self.jailed_until.is_some()
    }
}

/// One delegator's stake in one validator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Delegation {
    /// Its shares of the validator's tokens.
    pub shares: u128,
    /// The validator's `reward_per_share` when this delegation's rewards
    /// were last settled into `rewards`.
    pub reward_cursor: u128,
    /// Settled, unclaimed rewards. A delegation with no shares is kept
    /// while it has some.
    pub rewards: Amount,
}

/// A validator's recently missed heights: one bit per height of the
/// downtime window (height `h` at bit `h % window`), valid for the window
/// ending at `last_height`. Written only when the validator misses.
#[derive(Debug, Clone, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct MissedBlocks {
    /// The window size the record was kept for.
    pub window: u64,
    /// The latest missed height recorded.
    pub last_height: u64,
    /// Set bits: missed heights in `(last_height - window, last_height]`.
    pub count: u64,
    /// `window` bits, little-endian within each byte.
    pub bits: Vec<u8>,
}

/// Stake on its way back to a delegator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct UnbondingEntry {
    /// Who receives the funds.
    pub delegator: Address,
    /// The validator the stake left (stake stays slashable while
    /// unbonding, so the entry remembers where it came from).
    pub validator: Address,
    /// Amount returned at completion.
    pub amount: Amount,
    /// The height the unbonding started: evidence of an offense at an
    /// earlier height slashes it (the stake was bonded then). Entries
    /// merged into one key keep the latest start, so stake never escapes
    /// a slash it was exposed to.
    pub started: u64,
}

/// Stake redelegated from `source` to `destination`, remembered for
/// `unbonding_blocks` so that evidence against `source` for an offense at
/// or before `created` still reaches it (it was bonded to `source` then),
/// as Cosmos's redelegation entries do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct RedelegationEntry {
    /// Who moved the stake.
    pub delegator: Address,
    /// The validator it left.
    pub source: Address,
    /// The validator it joined.
    pub destination: Address,
    /// The height of the `Redelegate`. Entries merged into one key keep
    /// the latest, so stake never escapes a slash it was exposed to.
    pub created: u64,
    /// Tokens moved (less what slashes cut since).
    pub initial_balance: Amount,
    /// The destination shares the tokens bought (less what slashes cut
    /// since): a slash of the source takes its fraction of these.
    pub shares: u128,
}

/// A member of the active set with the power CometBFT knows it by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ActiveValidator {
    /// Consensus key (the identity CometBFT uses).
    pub consensus_key: [u8; 32],
    /// The operator (the identity Weft uses).
    pub operator: Address,
    /// Voting power, at least 1.
    pub power: u64,
}

/// Typed reads of staking state.
pub trait StakingRead: StateRead {
    /// A validator by operator.
    fn validator(&self, operator: &Address) -> Result<Option<Validator>, StorageError> {
        let key = validator_key(operator);
        self.get_raw(&key)?
            .map(|b| decode_stored(&key, &b))
            .transpose()
    }

    /// Every validator, by operator address.
    fn validators(&self) -> Result<Vec<Validator>, StorageError> {
        self.prefix_raw(VALIDATORS_PREFIX)?
            .into_iter()
            .map(|(k, v)| decode_stored(&k, &v))
            .collect()
    }

    /// The operators of approved validators, by address.
    fn approved_operators(&self) -> Result<Vec<Address>, StorageError> {
        self.prefix_raw(APPROVED_PREFIX)?
            .into_iter()
            .map(|(k, _)| {
                k.strip_prefix(APPROVED_PREFIX)
                    .and_then(address_of_hex)
                    .ok_or(StorageError::Corrupt(k))
            })
            .collect()
    }

    /// The operator using a consensus key, if any.
    fn consensus_key_owner(&self, key: &[u8; 32]) -> Result<Option<Address>, StorageError> {
        let k = consensus_key_key(key);
        self.get_raw(&k)?.map(|b| decode_stored(&k, &b)).transpose()
    }

    /// `delegator`'s delegation record with `validator` (default if none).
    fn delegation_record(
        &self,
        delegator: &Address,
        validator: &Address,
    ) -> Result<Delegation, StorageError> {
        let key = delegation_key(delegator, validator);
        self.get_raw(&key)?
            .map(|b| decode_stored(&key, &b))
            .transpose()
            .map(Option::unwrap_or_default)
    }

    /// Every delegation record of `delegator`, by validator (records
    /// without shares but with unclaimed rewards included).
    fn delegation_records_of(
        &self,
        delegator: &Address,
    ) -> Result<Vec<(Address, Delegation)>, StorageError> {
        let prefix = delegations_prefix(delegator);
        self.prefix_raw(&prefix)?
            .into_iter()
            .map(|(k, v)| {
                let d: Delegation = decode_stored(&k, &v)?;
                let validator = k
                    .strip_prefix(&prefix)
                    .and_then(address_of_hex)
                    .ok_or_else(|| StorageError::Corrupt(k.clone()))?;
                Ok((validator, d))
            })
            .collect()
    }

    /// The tokens `delegator` has bonded to `validator` (0 if nothing):
    /// its shares' worth at the validator's current rate.
    fn delegation(&self, delegator: &Address, validator: &Address) -> Result<Amount, StorageError> {
        let d = self.delegation_record(delegator, validator)?;
        if d.shares == 0 {
            return Ok(0);
        }
        let v = self
            .validator(validator)?
            .ok_or_else(|| StorageError::Corrupt(validator_key(validator)))?;
        Ok(super::shares::tokens_of(d.shares, &v))
    }

    /// Every live delegation of `delegator`: (validator, tokens), by
    /// validator.
    fn delegations_of(&self, delegator: &Address) -> Result<Vec<(Address, Amount)>, StorageError> {
        let mut out = Vec::new();
        for (validator, d) in self.delegation_records_of(delegator)? {
            if d.shares == 0 {
                continue;
            }
            let v = self
                .validator(&validator)?
                .ok_or_else(|| StorageError::Corrupt(validator_key(&validator)))?;
            out.push((validator, super::shares::tokens_of(d.shares, &v)));
        }
        Ok(out)
    }

    /// The operator whose consensus key has this CometBFT address.
    fn operator_of_cometbft_address(
        &self,
        address: &[u8; 20],
    ) -> Result<Option<Address>, StorageError> {
        let k = cometbft_address_key(address);
        self.get_raw(&k)?.map(|b| decode_stored(&k, &b)).transpose()
    }

    /// A validator's missed-heights record (empty if it never missed).
    fn missed_blocks(&self, operator: &Address) -> Result<MissedBlocks, StorageError> {
        let k = missed_key(operator);
        self.get_raw(&k)?
            .map(|b| decode_stored(&k, &b))
            .transpose()
            .map(Option::unwrap_or_default)
    }

    /// The unbonding entries that left `validator`, with their completion
    /// heights.
    fn unbonding_from(
        &self,
        validator: &Address,
    ) -> Result<Vec<(u64, UnbondingEntry)>, StorageError> {
        let prefix = unbonding_by_validator_prefix(validator);
        let mut out = Vec::new();
        for (k, _) in self.prefix_raw(&prefix)? {
            let corrupt = || StorageError::Corrupt(k.clone());
            let (height, delegator) = k
                .strip_prefix(&prefix)
                .and_then(|rest| rest.split_once('/'))
                .ok_or_else(corrupt)?;
            let height: u64 = height.parse().map_err(|_| corrupt())?;
            let delegator = address_of_hex(delegator).ok_or_else(corrupt)?;
            let entry = self
                .unbonding_entry(height, &delegator, validator)?
                .ok_or_else(corrupt)?;
            out.push((height, entry));
        }
        Ok(out)
    }

    /// The redelegation entries that left `source`, with their completion
    /// heights, in key order.
    fn redelegations_from(
        &self,
        source: &Address,
    ) -> Result<Vec<(u64, RedelegationEntry)>, StorageError> {
        let prefix = redelegations_from_prefix(source);
        let mut out = Vec::new();
        for (k, v) in self.prefix_raw(&prefix)? {
            let completion = k
                .strip_prefix(&prefix)
                .and_then(|rest| rest.split_once('/'))
                .and_then(|(h, _)| h.parse().ok())
                .ok_or_else(|| StorageError::Corrupt(k.clone()))?;
            out.push((completion, decode_stored(&k, &v)?));
        }
        Ok(out)
    }

    /// A redelegation entry, if one exists under exactly this key.
    fn redelegation_entry(
        &self,
        completion: u64,
        source: &Address,
        delegator: &Address,
        destination: &Address,
    ) -> Result<Option<RedelegationEntry>, StorageError> {
        let key = redelegation_key(completion, source, delegator, destination);
        self.get_raw(&key)?
            .map(|b| decode_stored(&key, &b))
            .transpose()
    }

    /// The redelegation entries expiring at `completion`, in key order.
    fn redelegations_expiring_at(
        &self,
        completion: u64,
    ) -> Result<Vec<RedelegationEntry>, StorageError> {
        let prefix = redelegation_queue_prefix_at(completion);
        let mut out = Vec::new();
        for (k, _) in self.prefix_raw(&prefix)? {
            let corrupt = || StorageError::Corrupt(k.clone());
            let mut parts = k.strip_prefix(&prefix).ok_or_else(corrupt)?.split('/');
            let mut next = || parts.next().and_then(address_of_hex).ok_or_else(corrupt);
            let (source, delegator, destination) = (next()?, next()?, next()?);
            let entry = self
                .redelegation_entry(completion, &source, &delegator, &destination)?
                .ok_or_else(corrupt)?;
            out.push(entry);
        }
        Ok(out)
    }

    /// The first height the active member `operator` is expected to
    /// sign, while it is in the active set.
    fn active_since(&self, operator: &Address) -> Result<Option<u64>, StorageError> {
        let k = active_since_key(operator);
        self.get_raw(&k)?.map(|b| decode_stored(&k, &b)).transpose()
    }

    /// Stake burned by slashing so far.
    fn slashed_burned(&self) -> Result<Amount, StorageError> {
        amount_at(self, BURNED)
    }

    /// Rewards paid out and not yet claimed.
    fn reward_reserve(&self) -> Result<Amount, StorageError> {
        amount_at(self, REWARD_RESERVE)
    }

    /// An unbonding entry, if one exists under exactly this key.
    fn unbonding_entry(
        &self,
        height: u64,
        delegator: &Address,
        validator: &Address,
    ) -> Result<Option<UnbondingEntry>, StorageError> {
        let key = unbonding_key(height, delegator, validator);
        self.get_raw(&key)?
            .map(|b| decode_stored(&key, &b))
            .transpose()
    }

    /// The entries completing at `height`, with their keys, in key order.
    fn unbonding_at(&self, height: u64) -> Result<Vec<(String, UnbondingEntry)>, StorageError> {
        self.prefix_raw(&unbonding_prefix_at(height))?
            .into_iter()
            .map(|(k, v)| {
                let e = decode_stored(&k, &v)?;
                Ok((k, e))
            })
            .collect()
    }

    /// Every unbonding entry of `delegator` with its completion height,
    /// soonest first.
    fn unbonding_of(
        &self,
        delegator: &Address,
    ) -> Result<Vec<(u64, UnbondingEntry)>, StorageError> {
        let prefix = unbonding_by_delegator_prefix(delegator);
        let mut out = Vec::new();
        for (k, _) in self.prefix_raw(&prefix)? {
            let corrupt = || StorageError::Corrupt(k.clone());
            let (height, validator) = k
                .strip_prefix(&prefix)
                .and_then(|rest| rest.split_once('/'))
                .ok_or_else(corrupt)?;
            let height: u64 = height.parse().map_err(|_| corrupt())?;
            let validator = address_of_hex(validator).ok_or_else(corrupt)?;
            let entry = self
                .unbonding_entry(height, delegator, &validator)?
                .ok_or_else(corrupt)?;
            out.push((height, entry));
        }
        Ok(out)
    }

    /// The active set, by consensus key (empty before staking starts).
    fn active_set(&self) -> Result<Vec<ActiveValidator>, StorageError> {
        self.get_raw(ACTIVE_SET)?
            .map(|b| decode_stored(ACTIVE_SET, &b))
            .transpose()
            .map(Option::unwrap_or_default)
    }
}

impl<S: StateRead + ?Sized> StakingRead for S {}

/// Typed writes of staking state.
pub trait StakingWrite: StateWrite {
    /// Stores a validator record, and its entry in the approved index
    /// (present iff `approved`), so the two never disagree. A deletion is
    /// written only for an entry that exists, so an unapproved candidate's
    /// updates do not touch the index.
    fn put_validator(&mut self, v: &Validator) -> Result<(), StorageError> {
        self.put_raw(validator_key(&v.operator), encode_stored(v));
        let key = approved_key(&v.operator);
        if v.approved {
            self.put_raw(key, Vec::new());
        } else if self.get_raw(&key)?.is_some() {
            self.delete(key);
        }
        Ok(())
    }

    /// Records that `operator` uses `key`.
    fn put_consensus_key_owner(&mut self, key: &[u8; 32], operator: &Address) {
        self.put_raw(consensus_key_key(key), encode_stored(operator));
    }

    /// Stores a delegation record; one with neither shares nor unclaimed
    /// rewards is deleted, so state holds live ones only.
    fn put_delegation(&mut self, delegator: &Address, validator: &Address, d: &Delegation) {
        let key = delegation_key(delegator, validator);
        if d.shares == 0 && d.rewards == 0 {
            self.delete(key);
        } else {
            self.put_raw(key, encode_stored(d));
        }
    }

    /// Records that `operator`'s consensus key has this CometBFT address.
    fn put_cometbft_address(&mut self, address: &[u8; 20], operator: &Address) {
        self.put_raw(cometbft_address_key(address), encode_stored(operator));
    }

    /// Stores a missed-heights record; an empty one is deleted.
    fn put_missed_blocks(&mut self, operator: &Address, m: &MissedBlocks) {
        if m.count == 0 {
            self.delete(missed_key(operator));
        } else {
            self.put_raw(missed_key(operator), encode_stored(m));
        }
    }

    /// Sets the total burned by slashing.
    fn put_slashed_burned(&mut self, amount: Amount) {
        self.put_raw(BURNED.into(), encode_stored(&amount));
    }

    /// Sets the reward reserve.
    fn put_reward_reserve(&mut self, amount: Amount) {
        self.put_raw(REWARD_RESERVE.into(), encode_stored(&amount));
    }

    /// Stores an unbonding entry completing at `height`, with its
    /// delegator index entry.
    fn put_unbonding_entry(&mut self, height: u64, entry: &UnbondingEntry) {
        self.put_raw(
            unbonding_key(height, &entry.delegator, &entry.validator),
            encode_stored(entry),
        );
        self.put_raw(
            unbonding_by_delegator_key(height, &entry.delegator, &entry.validator),
            Vec::new(),
        );
        self.put_raw(
            unbonding_by_validator_key(height, &entry.delegator, &entry.validator),
            Vec::new(),
        );
    }

    /// Deletes an unbonding entry and its delegator index entry.
    fn delete_unbonding_entry(&mut self, height: u64, entry: &UnbondingEntry) {
        self.delete(unbonding_key(height, &entry.delegator, &entry.validator));
        self.delete(unbonding_by_delegator_key(
            height,
            &entry.delegator,
            &entry.validator,
        ));
        self.delete(unbonding_by_validator_key(
            height,
            &entry.delegator,
            &entry.validator,
        ));
    }

    /// Stores a redelegation entry expiring at `completion`, with its
    /// queue entry; one with no shares left is deleted.
    fn put_redelegation(&mut self, completion: u64, e: &RedelegationEntry) {
        if e.shares == 0 {
            self.delete_redelegation(completion, e);
            return;
        }
        self.put_raw(
            redelegation_key(completion, &e.source, &e.delegator, &e.destination),
            encode_stored(e),
        );
        self.put_raw(
            redelegation_queue_key(completion, &e.source, &e.delegator, &e.destination),
            Vec::new(),
        );
    }

    /// Deletes a redelegation entry and its queue entry.
    fn delete_redelegation(&mut self, completion: u64, e: &RedelegationEntry) {
        self.delete(redelegation_key(
            completion,
            &e.source,
            &e.delegator,
            &e.destination,
        ));
        self.delete(redelegation_queue_key(
            completion,
            &e.source,
            &e.delegator,
            &e.destination,
        ));
    }

    /// Stores the active set (sorted by consensus key).
    fn put_active_set(&mut self, set: &[ActiveValidator]) {
        self.put_raw(ACTIVE_SET.into(), encode_stored(&set.to_vec()));
    }

    /// Replaces the active set `prev` by `next`: members that join are
    /// expected to sign from `since`, members that leave lose their
    /// record; those that stay keep theirs.
    fn replace_active_set(
        &mut self,
        prev: &[ActiveValidator],
        next: &[ActiveValidator],
        since: u64,
    ) {
        for v in next {
            if !prev.iter().any(|p| p.operator == v.operator) {
                self.put_raw(active_since_key(&v.operator), encode_stored(&since));
            }
        }
        for v in prev {
            if !next.iter().any(|n| n.operator == v.operator) {
                self.delete(active_since_key(&v.operator));
            }
        }
        self.put_active_set(next);
    }
}

impl<S: StateWrite + ?Sized> StakingWrite for S {}

fn amount_at<S: StateRead + ?Sized>(state: &S, key: &str) -> Result<Amount, StorageError> {
    state
        .get_raw(key)?
        .map(|b| decode_stored(key, &b))
        .transpose()
        .map(Option::unwrap_or_default)
}

fn address_of_hex(s: &str) -> Option<Address> {
    let bytes = hex::decode(s).ok()?;
    Some(Address(bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_core::SigningKey;

    #[test]
    fn keys_and_value_encodings_are_pinned() {
        let a = SigningKey::from_seed("alice").address();
        let b = SigningKey::from_seed("bob").address();
        let v = Validator {
            approved: true,
            bonded: 1_000,
            shares: 1_000,
            reward_per_share: 5,
            commission: 6,
            jailed_until: Some(77),
            tombstoned: false,
            commission_changed_epoch: Some(3),
            relay_key: Some([8; 32]),
            ..Validator::new(a, [7; 32], "n".into(), "w".into(), 500)
        };
        let e = UnbondingEntry {
            delegator: b,
            validator: a,
            amount: 9,
            started: 40,
        };
        let d = Delegation {
            shares: 10,
            reward_cursor: 2,
            rewards: 3,
        };
        let m = MissedBlocks {
            window: 8,
            last_height: 12,
            count: 1,
            bits: vec![0b0001_0000],
        };
        let c = SigningKey::from_seed("carol").address();
        let r = RedelegationEntry {
            delegator: b,
            source: a,
            destination: c,
            created: 41,
            initial_balance: 11,
            shares: 12,
        };
        let s = ActiveValidator {
            consensus_key: [7; 32],
            operator: a,
            power: 3,
        };
        insta::assert_snapshot!([
            validator_key(&a),
            consensus_key_key(&[7; 32]),
            approved_key(&a),
            delegation_key(&b, &a),
            unbonding_key(42, &b, &a),
            unbonding_by_delegator_key(42, &b, &a),
            unbonding_by_validator_key(42, &b, &a),
            cometbft_address_key(&cometbft_address(&[7; 32])),
            missed_key(&a),
            active_since_key(&a),
            redelegation_key(42, &a, &b, &c),
            redelegation_queue_key(42, &a, &b, &c),
            ACTIVE_SET.to_string(),
            BURNED.to_string(),
            REWARD_RESERVE.to_string(),
            hex::encode(encode_stored(&v)),
            hex::encode(encode_stored(&e)),
            hex::encode(encode_stored(&vec![s])),
            hex::encode(encode_stored(&d)),
            hex::encode(encode_stored(&m)),
            hex::encode(encode_stored(&r)),
        ]
        .join("\n"));
    }

    #[test]
    fn unbonding_keys_sort_by_height() {
        let a = SigningKey::from_seed("alice").address();
        assert!(unbonding_key(9, &a, &a) < unbonding_key(10, &a, &a));
        assert!(unbonding_key(10, &a, &a).starts_with(&unbonding_prefix_at(10)));
        assert!(!unbonding_key(100, &a, &a).starts_with(&unbonding_prefix_at(10)));
    }
}
