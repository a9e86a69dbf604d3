//! Staking storage: every key the staking component writes, spelled here
//! and nowhere else, and the typed reads and writes over them.
//!
//! Keys sort by what is iterated, so each iteration is one ordered prefix
//! read: validators by operator, an account's delegations by delegator
//! then validator, unbonding entries by completion height (zero-padded)
//! then delegator then validator.

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
    /// Whether governance (for now: genesis) admitted it to the approved
    /// set; an unapproved candidate never enters the active set.
    pub approved: bool,
    /// Total bonded to it: the sum of its delegations.
    pub bonded: Amount,
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

    /// What `delegator` has bonded to `validator` (0 if nothing).
    fn delegation(&self, delegator: &Address, validator: &Address) -> Result<Amount, StorageError> {
        let key = delegation_key(delegator, validator);
        self.get_raw(&key)?
            .map(|b| decode_stored(&key, &b))
            .transpose()
            .map(Option::unwrap_or_default)
    }

    /// Every delegation of `delegator`: (validator, amount), by validator.
    fn delegations_of(&self, delegator: &Address) -> Result<Vec<(Address, Amount)>, StorageError> {
        let prefix = delegations_prefix(delegator);
        self.prefix_raw(&prefix)?
            .into_iter()
            .map(|(k, v)| {
                let amount: Amount = decode_stored(&k, &v)?;
                let validator = k
                    .strip_prefix(&prefix)
                    .and_then(address_of_hex)
                    .ok_or_else(|| StorageError::Corrupt(k.clone()))?;
                Ok((validator, amount))
            })
            .collect()
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

    /// Sets a delegation; zero deletes it, so state holds live ones only.
    fn put_delegation(&mut self, delegator: &Address, validator: &Address, amount: Amount) {
        let key = delegation_key(delegator, validator);
        if amount == 0 {
            self.delete(key);
        } else {
            self.put_raw(key, encode_stored(&amount));
        }
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
    }

    /// Deletes an unbonding entry and its delegator index entry.
    fn delete_unbonding_entry(&mut self, height: u64, entry: &UnbondingEntry) {
        self.delete(unbonding_key(height, &entry.delegator, &entry.validator));
        self.delete(unbonding_by_delegator_key(
            height,
            &entry.delegator,
            &entry.validator,
        ));
    }

    /// Stores the active set (sorted by consensus key).
    fn put_active_set(&mut self, set: &[ActiveValidator]) {
        self.put_raw(ACTIVE_SET.into(), encode_stored(&set.to_vec()));
    }
}

impl<S: StateWrite + ?Sized> StakingWrite for S {}

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
            operator: a,
            consensus_key: [7; 32],
            name: "n".into(),
            website: "w".into(),
            commission_bps: 500,
            approved: true,
            bonded: 1_000,
        };
        let e = UnbondingEntry {
            delegator: b,
            validator: a,
            amount: 9,
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
            ACTIVE_SET.to_string(),
            hex::encode(encode_stored(&v)),
            hex::encode(encode_stored(&e)),
            hex::encode(encode_stored(&vec![s])),
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
