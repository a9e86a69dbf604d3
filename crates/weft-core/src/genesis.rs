//! The sequencer's genesis `app_state` (inside CometBFT's genesis.json) and
//! the chain parameters it sets.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{
    keys::Address,
    transaction::{check_validator_description, is_valid_consensus_key},
    Amount,
};

/// The chain parameters genesis sets (`app_state.params`). In state they
/// are split by the component that owns each ([`FeeParams`],
/// [`RollupParams`], [`AccountParams`]); governance changes each group
/// with its own proposal kind.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChainParams {
    /// Fee charged for every transaction, in the native asset.
    #[serde(with = "amount_string")]
    pub base_fee: Amount,
    /// Fee per byte of rollup data carried.
    #[serde(with = "amount_string")]
    pub fee_per_byte: Amount,
    /// Most rollup data bytes one transaction may carry.
    pub max_rollup_data_per_tx: u32,
    /// Most rollup data bytes one block may carry (all rollups together).
    pub max_rollup_data_per_block: u64,
    /// Most transactions one account may have in one block, so a single
    /// sender cannot fill blocks while others wait.
    pub max_txs_per_account_per_block: u32,
}

impl Default for ChainParams {
    fn default() -> Self {
        ChainParams {
            base_fee: 1_000,
            fee_per_byte: 1,
            max_rollup_data_per_tx: 256 * 1024,
            max_rollup_data_per_block: 3 * 1024 * 1024,
            max_txs_per_account_per_block: 256,
        }
    }
}

impl ChainParams {
    /// The fee a transaction carrying `rollup_bytes` of rollup data pays.
    /// `None` on overflow, which callers treat as unaffordable.
    pub fn fee_for(&self, rollup_bytes: u64) -> Option<Amount> {
        self.fee_per_byte
            .checked_mul(Amount::from(rollup_bytes))?
            .checked_add(self.base_fee)
    }
}

/// The fee component's parameters (kept in state under `fees/params`,
/// version 1). Changed by a `ChangeFeeParams` proposal.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeeParams {
    /// Fee charged for every transaction.
    #[serde(with = "amount_string")]
    pub base_fee: Amount,
    /// Fee per byte of rollup data carried.
    #[serde(with = "amount_string")]
    pub fee_per_byte: Amount,
}

impl FeeParams {
    /// The fee for a transaction carrying `rollup_bytes` of rollup data;
    /// `None` on overflow, which callers treat as unaffordable.
    pub fn fee_for(&self, rollup_bytes: u64) -> Option<Amount> {
        self.fee_per_byte
            .checked_mul(Amount::from(rollup_bytes))?
            .checked_add(self.base_fee)
    }

    /// Why a proposal may not set these fees, if it may not: the fee of
    /// the largest transaction possible (`MAX_TX_BYTES` of rollup data)
    /// must not overflow, or data transactions would become unaffordable
    /// by arithmetic rather than by price.
    pub fn check(&self) -> Result<(), String> {
        let largest = u64::try_from(crate::transaction::MAX_TX_BYTES).unwrap_or(u64::MAX);
        if self.fee_for(largest).is_none() {
            return Err(format!(
                "fees: base_fee + fee_per_byte × {largest} overflows u128"
            ));
        }
        Ok(())
    }
}

/// The rollup component's limits (kept in state under `rollups/params`,
/// version 1). Changed by a `ChangeRollupParams` proposal.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollupParams {
    /// Most rollup data bytes one transaction may carry.
    pub max_rollup_data_per_tx: u32,
    /// Most rollup data bytes one block may carry (all rollups together).
    pub max_rollup_data_per_block: u64,
}

impl RollupParams {
    /// Why a proposal may not set these limits, if it may not: both
    /// positive, and a transaction's limit within a block's (a
    /// transaction larger than any block would be admitted and never
    /// included).
    pub fn check(&self) -> Result<(), String> {
        if self.max_rollup_data_per_tx == 0 {
            return Err("rollups: max_rollup_data_per_tx must be positive".into());
        }
        if self.max_rollup_data_per_block < u64::from(self.max_rollup_data_per_tx) {
            return Err(
                "rollups: max_rollup_data_per_block must be at least max_rollup_data_per_tx".into(),
            );
        }
        Ok(())
    }
}

/// The accounts component's limits (kept in state under
/// `accounts/params`, version 1). Changed by a `ChangeAccountParams`
/// proposal.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountParams {
    /// Most transactions one account may have in one block.
    pub max_txs_per_account_per_block: u32,
}

impl AccountParams {
    /// Why a proposal may not set this limit, if it may not: positive (at
    /// 0 no transaction, hence no later proposal, could ever execute).
    pub fn check(&self) -> Result<(), String> {
        if self.max_txs_per_account_per_block == 0 {
            return Err("accounts: max_txs_per_account_per_block must be positive".into());
        }
        Ok(())
    }
}

impl ChainParams {
    /// The fee parameters these chain parameters start with.
    pub fn fees(&self) -> FeeParams {
        FeeParams {
            base_fee: self.base_fee,
            fee_per_byte: self.fee_per_byte,
        }
    }

    /// The rollup limits these chain parameters start with.
    pub fn rollups(&self) -> RollupParams {
        RollupParams {
            max_rollup_data_per_tx: self.max_rollup_data_per_tx,
            max_rollup_data_per_block: self.max_rollup_data_per_block,
        }
    }

    /// The account limits these chain parameters start with.
    pub fn accounts(&self) -> AccountParams {
        AccountParams {
            max_txs_per_account_per_block: self.max_txs_per_account_per_block,
        }
    }
}

/// A funded account at genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisAccount {
    /// The account.
    pub address: Address,
    /// Its starting balance.
    #[serde(with = "amount_string")]
    pub balance: Amount,
}

/// The staking component's parameters (kept in state under
/// `staking/params`, versioned by the component).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StakingParams {
    /// Blocks between `Undelegate` and the funds' return: long enough for
    /// evidence of misbehavior to arrive while the stake is still slashable.
    pub unbonding_blocks: u64,
    /// The active validator set is recomputed when `height % epoch_blocks
    /// == 0`; between epochs it does not move.
    pub epoch_blocks: u64,
    /// Most validators in the active set.
    pub max_validators: u32,
    /// Largest share of total voting power one validator may hold, in
    /// basis points (10000 = no cap).
    pub max_power_share_bps: u16,
    /// Least self-delegation an approved candidate needs to be in the
    /// active set (its operator's own skin in the game).
    #[serde(with = "amount_string")]
    pub min_self_bond: Amount,
    /// Share of bonded stake, and of the unbonding and redelegated stake
    /// that left since the offense, burned for double-signing evidence,
    /// in basis points; the offender is also tombstoned.
    pub slash_double_sign_bps: u16,
    /// Share of bonded and (post-offense) unbonding stake burned for
    /// downtime, in basis points; the validator is also jailed.
    pub slash_downtime_bps: u16,
    /// How many recent heights downtime is judged over.
    pub downtime_window_blocks: u64,
    /// A validator that missed more than this share (basis points) of the
    /// last `downtime_window_blocks` heights it was expected to sign is
    /// jailed.
    pub downtime_max_missed_bps: u16,
    /// Blocks a validator jailed for downtime must wait before `Unjail`.
    pub jail_blocks: u64,
    /// Largest commission change in one `EditValidator`, in basis points;
    /// at most one commission change per epoch.
    pub max_commission_change_bps: u16,
}

/// Largest downtime window: the window is kept as one bit per height per
/// validator, rewritten when the validator misses a block.
pub const MAX_DOWNTIME_WINDOW_BLOCKS: u64 = 1_000_000;

impl Default for StakingParams {
    fn default() -> Self {
        StakingParams {
            // About 7 days at one block per 5 s.
            unbonding_blocks: 120_960,
            // About 1 hour at one block per 5 s.
            epoch_blocks: 720,
            max_validators: 100,
            max_power_share_bps: 2_000,
            min_self_bond: 1_000_000,
            // 5 %: double-signing is never an accident of a correct
            // setup, and it breaks safety.
            slash_double_sign_bps: 500,
            // 0.01 %: being offline costs liveness, not safety.
            slash_downtime_bps: 1,
            // About 14 hours at 5 s blocks.
            downtime_window_blocks: 10_000,
            // Jailed after missing more than half of the window.
            downtime_max_missed_bps: 5_000,
            // One epoch (about 1 hour).
            jail_blocks: 720,
            // One percentage point per epoch.
            max_commission_change_bps: 100,
        }
    }
}

impl StakingParams {
    /// Why these parameters cannot run a chain, if they cannot.
    pub fn check(&self) -> Result<(), String> {
        if self.unbonding_blocks == 0 {
            return Err("staking.params.unbonding_blocks must be positive".into());
        }
        if self.epoch_blocks == 0 {
            return Err("staking.params.epoch_blocks must be positive".into());
        }
        if self.max_validators == 0 {
            return Err("staking.params.max_validators must be positive".into());
        }
        if self.max_power_share_bps == 0 || self.max_power_share_bps > 10_000 {
            return Err("staking.params.max_power_share_bps must be 1 to 10000".into());
        }
        for (name, bps) in [
            ("slash_double_sign_bps", self.slash_double_sign_bps),
            ("slash_downtime_bps", self.slash_downtime_bps),
            ("downtime_max_missed_bps", self.downtime_max_missed_bps),
            ("max_commission_change_bps", self.max_commission_change_bps),
        ] {
            if bps > 10_000 {
                return Err(format!("staking.params.{name} must be 0 to 10000"));
            }
        }
        if self.downtime_window_blocks == 0
            || self.downtime_window_blocks > MAX_DOWNTIME_WINDOW_BLOCKS
        {
            return Err(format!(
                "staking.params.downtime_window_blocks must be 1 to {MAX_DOWNTIME_WINDOW_BLOCKS}"
            ));
        }
        if self.jail_blocks == 0 {
            return Err("staking.params.jail_blocks must be positive".into());
        }
        Ok(())
    }
}

/// The governance component's parameters (kept in state under
/// `governance/params`, versioned by the component). Basis points are of
/// 10000.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GovernanceParams {
    /// Blocks a proposal is open for votes: submitted at height `h`, it
    /// is tallied (and, if passed, executed) at the end of block
    /// `h + voting_period_blocks`.
    pub voting_period_blocks: u64,
    /// Least deposit a proposal escrows.
    #[serde(with = "amount_string")]
    pub min_deposit: Amount,
    /// Least share of total bonded stake that must vote (any option) for
    /// the outcome to count.
    pub quorum_bps: u16,
    /// Least share of the non-abstaining voted stake that must vote yes.
    pub pass_threshold_bps: u16,
    /// Share of the voted stake voting no-with-veto at which the proposal
    /// is vetoed and its deposit burned.
    pub veto_threshold_bps: u16,
}

impl Default for GovernanceParams {
    fn default() -> Self {
        GovernanceParams {
            // About 7 days at one block per 5 s.
            voting_period_blocks: 120_960,
            min_deposit: 10_000_000,
            quorum_bps: 3_340,
            pass_threshold_bps: 5_000,
            veto_threshold_bps: 3_340,
        }
    }
}

/// The inclusion-list parameters (kept in state under `inclusion/params`).
/// With `enabled`, each validator lists in its vote extension what waited
/// in its mempool, and a proposal that leaves out a listed transaction it
/// cannot excuse is refused (docs/censorship-resistance.md). Lists only
/// work where CometBFT's vote extensions are on (consensus parameter
/// `abci.vote_extensions_enable_height`).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InclusionParams {
    /// Whether lists are made and enforced.
    pub enabled: bool,
    /// Blocks a transaction must have waited in a validator's mempool
    /// before that validator lists it (so a proposer first gets the chance
    /// to include it the ordinary way).
    pub inclusion_delay_blocks: u64,
    /// Largest inclusion list one validator may extend its vote with, in
    /// bytes (its whole encoding). Every precommit carries it, and the next
    /// block carries those of more than two-thirds of the power.
    pub max_inclusion_list_bytes: u32,
}

impl Default for InclusionParams {
    fn default() -> Self {
        InclusionParams {
            enabled: true,
            inclusion_delay_blocks: 1,
            max_inclusion_list_bytes: 16 * 1024,
        }
    }
}

impl InclusionParams {
    /// Why these parameters cannot run, if they cannot.
    pub fn check(&self) -> Result<(), String> {
        if self.inclusion_delay_blocks == 0 {
            return Err(
                "inclusion.inclusion_delay_blocks must be positive (a transaction \
                        listed before any proposer could see it would let the next \
                        proposer be blamed for a transaction it never had)"
                    .into(),
            );
        }
        let max = crate::inclusion::MAX_INCLUSION_LIST_BYTES;
        if self.max_inclusion_list_bytes < 64 || self.max_inclusion_list_bytes as usize > max {
            return Err(format!(
                "inclusion.max_inclusion_list_bytes must be between 64 and {max}"
            ));
        }
        Ok(())
    }
}

/// The builder auction's parameters (kept in state under
/// `auction/params`). With `enabled`, a block may carry builders' signed
/// bids right after its commitments item: each bid's bundles lead their
/// rollups' batches and its amount is paid into the reward pool
/// (docs/builders.md).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuctionParams {
    /// Whether blocks may carry bids.
    pub enabled: bool,
    /// Most bids one block may carry.
    pub max_bids_per_block: u32,
}

impl Default for AuctionParams {
    fn default() -> Self {
        AuctionParams {
            enabled: true,
            max_bids_per_block: 16,
        }
    }
}

impl AuctionParams {
    /// Why these parameters cannot run, if they cannot.
    pub fn check(&self) -> Result<(), String> {
        if self.max_bids_per_block > MAX_BIDS_PER_BLOCK {
            return Err(format!(
                "auction.max_bids_per_block must be at most {MAX_BIDS_PER_BLOCK}"
            ));
        }
        Ok(())
    }
}

/// CometBFT's largest block (`types.MaxBlockSizeBytes`, 100 MiB).
pub const MAX_BLOCK_SIZE_BYTES: u64 = 104_857_600;

/// CometBFT's block and evidence consensus parameters, as an
/// `EnableInclusionLists` proposal restates them. CometBFT replaces each
/// group it is sent as a whole, and the ABCI library always sends the
/// block, evidence and validator groups with an update, so the proposal
/// carries the values the chain keeps (normally the current ones, read from
/// CometBFT's `/consensus_params`); the app learns its block limits from
/// them too. Validator key types are always `ed25519` (Weft's only kind).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsensusParams {
    /// `block.max_bytes`: 1 to [`MAX_BLOCK_SIZE_BYTES`] (CometBFT's `-1`,
    /// "the hard cap", is written as the cap itself).
    pub block_max_bytes: u64,
    /// `block.max_gas`: -1 (no limit; Weft meters no gas) or more.
    pub block_max_gas: i64,
    /// `evidence.max_age_num_blocks`: positive.
    pub evidence_max_age_num_blocks: u64,
    /// `evidence.max_age_duration` in nanoseconds (CometBFT's JSON shows
    /// it so): positive.
    pub evidence_max_age_duration_ns: u64,
    /// `evidence.max_bytes`: at most `block_max_bytes`.
    pub evidence_max_bytes: u64,
}

impl ConsensusParams {
    /// Why CometBFT would refuse these (its `ConsensusParams.ValidateBasic`
    /// in v0.38), if it would: an update it refuses stops the chain, so
    /// the app never sends one that fails this.
    pub fn check(&self) -> Result<(), String> {
        if self.block_max_bytes == 0 || self.block_max_bytes > MAX_BLOCK_SIZE_BYTES {
            return Err(format!(
                "consensus.block_max_bytes must be 1 to {MAX_BLOCK_SIZE_BYTES}"
            ));
        }
        if self.block_max_gas < -1 {
            return Err("consensus.block_max_gas must be -1 or more".into());
        }
        let max = i64::MAX as u64;
        if self.evidence_max_age_num_blocks == 0 || self.evidence_max_age_num_blocks > max {
            return Err(format!(
                "consensus.evidence_max_age_num_blocks must be 1 to {max}"
            ));
        }
        if self.evidence_max_age_duration_ns == 0 || self.evidence_max_age_duration_ns > max {
            return Err(format!(
                "consensus.evidence_max_age_duration_ns must be 1 to {max}"
            ));
        }
        if self.evidence_max_bytes > self.block_max_bytes {
            return Err("consensus.evidence_max_bytes must not exceed block_max_bytes".into());
        }
        Ok(())
    }
}

/// The hard bound on `auction.max_bids_per_block`: every bid costs a
/// signature check in every validator's ProcessProposal.
pub const MAX_BIDS_PER_BLOCK: u32 = 256;

impl GovernanceParams {
    /// Why these parameters cannot run governance, if they cannot.
    pub fn check(&self) -> Result<(), String> {
        if self.voting_period_blocks == 0 {
            return Err("governance.voting_period_blocks must be positive".into());
        }
        if self.min_deposit == 0 {
            return Err("governance.min_deposit must be positive".into());
        }
        for (name, v) in [
            ("quorum_bps", self.quorum_bps),
            ("pass_threshold_bps", self.pass_threshold_bps),
            ("veto_threshold_bps", self.veto_threshold_bps),
        ] {
            if v == 0 || v > 10_000 {
                return Err(format!("governance.{name} must be 1 to 10000"));
            }
        }
        Ok(())
    }
}

/// A validator approved at genesis, self-bonded from its operator's
/// genesis balance (so total supply is what `accounts` lists).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisValidator {
    /// The operator's account; must be a funded genesis account.
    pub operator: Address,
    /// The ed25519 key CometBFT signs with, as 64 hex digits.
    #[serde(with = "crate::transaction::hex_32")]
    pub consensus_key: [u8; 32],
    /// Display name.
    pub name: String,
    /// Website (may be empty).
    #[serde(default)]
    pub website: String,
    /// Commission in basis points.
    #[serde(default)]
    pub commission_bps: u16,
    /// Moved from the operator's balance into its own self-delegation.
    #[serde(with = "amount_string")]
    pub self_bond: Amount,
}

/// The optional `staking` section: the approved validators and their
/// self-bonds, and the staking parameters. Absent, the chain runs without
/// staking (no staking state, staking actions refused, no validator
/// updates), exactly as before the section existed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisStaking {
    /// Staking parameters; each missing field takes its default.
    #[serde(default)]
    pub params: StakingParams,
    /// The initial approved set; at least one.
    pub validators: Vec<GenesisValidator>,
}

/// The `app_state` object of CometBFT's genesis.json.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct GenesisAppState {
    /// Funded accounts; addresses must be distinct.
    pub accounts: Vec<GenesisAccount>,
    /// Chain parameters.
    #[serde(default)]
    pub params: ChainParams,
    /// Staking, if this chain has it (see [`GenesisStaking`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staking: Option<GenesisStaking>,
    /// Governance parameters. Governance runs exactly when staking does
    /// (votes weigh by stake): with a staking section, an absent
    /// governance section means the defaults; without one, a governance
    /// section is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub governance: Option<GovernanceParams>,
    /// Inclusion lists, if this chain has them (an absent section means
    /// off; a present one with no fields means the defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inclusion: Option<InclusionParams>,
    /// The builder auction, if this chain has it (absent means off; a
    /// present one with no fields means the defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auction: Option<AuctionParams>,
}

/// Why a genesis is refused.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    /// Not the JSON we expect.
    #[error("genesis app_state is not valid: {0}")]
    Json(#[from] serde_json::Error),
    /// Duplicate accounts or an impossible parameter.
    #[error("genesis app_state is not valid: {0}")]
    Invalid(String),
}

impl GenesisAppState {
    /// Parses and validates the JSON `app_state`.
    pub fn from_json(bytes: &[u8]) -> Result<Self, GenesisError> {
        let state: GenesisAppState = serde_json::from_slice(bytes)?;
        let mut seen = std::collections::BTreeSet::new();
        // Total supply must fit an Amount: then no balance, stake or
        // unbonding entry can overflow while supply is conserved.
        state
            .accounts
            .iter()
            .try_fold(0 as Amount, |t, a| t.checked_add(a.balance))
            .ok_or_else(|| GenesisError::Invalid("total supply overflows u128".into()))?;
        for a in &state.accounts {
            if !seen.insert(a.address) {
                return Err(GenesisError::Invalid(format!(
                    "account {} listed twice",
                    a.address
                )));
            }
        }
        if state.params.max_rollup_data_per_tx == 0 {
            return Err(GenesisError::Invalid(
                "max_rollup_data_per_tx must be positive".into(),
            ));
        }
        if let Some(staking) = &state.staking {
            staking
                .check(&state.accounts)
                .map_err(GenesisError::Invalid)?;
        }
        if let Some(governance) = &state.governance {
            if state.staking.is_none() {
                return Err(GenesisError::Invalid(
                    "a governance section needs a staking section (votes weigh by stake)".into(),
                ));
            }
            governance.check().map_err(GenesisError::Invalid)?;
        }
        if let Some(inclusion) = &state.inclusion {
            inclusion.check().map_err(GenesisError::Invalid)?;
        }
        if let Some(auction) = &state.auction {
            auction.check().map_err(GenesisError::Invalid)?;
        }
        Ok(state)
    }
}

impl GenesisStaking {
    /// Why this section cannot start a chain over `accounts`, if it
    /// cannot: bad parameters, no validators, a duplicate operator or
    /// consensus key, an invalid key or description, or a self-bond its
    /// operator's genesis balance does not cover.
    pub fn check(&self, accounts: &[GenesisAccount]) -> Result<(), String> {
        self.params.check()?;
        if self.validators.is_empty() {
            return Err("staking.validators must list at least one validator".into());
        }
        let mut operators = std::collections::BTreeSet::new();
        let mut keys = std::collections::BTreeSet::new();
        for v in &self.validators {
            if !operators.insert(v.operator) {
                return Err(format!("validator operator {} listed twice", v.operator));
            }
            if !keys.insert(v.consensus_key) {
                return Err(format!(
                    "consensus key {} listed twice",
                    hex::encode(v.consensus_key)
                ));
            }
            if !is_valid_consensus_key(&v.consensus_key) {
                return Err(format!(
                    "validator {}: consensus key is not a valid ed25519 key",
                    v.operator
                ));
            }
            check_validator_description(&v.name, &v.website, v.commission_bps)
                .map_err(|e| format!("validator {}: {e}", v.operator))?;
            if v.self_bond == 0 || v.self_bond < self.params.min_self_bond {
                return Err(format!(
                    "validator {}: self_bond {} is below min_self_bond {} (and must be positive)",
                    v.operator, v.self_bond, self.params.min_self_bond
                ));
            }
            let balance = accounts
                .iter()
                .find(|a| a.address == v.operator)
                .map_or(0, |a| a.balance);
            if balance < v.self_bond {
                return Err(format!(
                    "validator {}: self_bond {} exceeds the operator's genesis balance {balance}",
                    v.operator, v.self_bond
                ));
            }
        }
        Ok(())
    }
}

/// A refused genesis, naming the field it is about as a JSON path from the
/// genesis.json root (e.g. `app_state.accounts[2].address`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct GenesisFieldError {
    /// JSON path of the offending field.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl GenesisFieldError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        GenesisFieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Why `chain_id` cannot name a chain, if it cannot: it must be 1 to
/// [`MAX_CHAIN_ID_LEN`](crate::transaction::MAX_CHAIN_ID_LEN) bytes (CometBFT's
/// limit too, and what transactions are checked against) of printable
/// ASCII without spaces.
pub fn check_chain_id(chain_id: &str) -> Result<(), String> {
    let max = crate::transaction::MAX_CHAIN_ID_LEN;
    if chain_id.is_empty() || chain_id.len() > max {
        return Err(format!(
            "chain id must be 1 to {max} bytes, `{chain_id}` is {} bytes",
            chain_id.len()
        ));
    }
    if !chain_id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "chain id `{chain_id}` must be printable ASCII without spaces"
        ));
    }
    Ok(())
}

/// Prefix of staking parameter names in [`param_names`] and [`set_param`].
const STAKING_PREFIX: &str = "staking.";
/// Prefix of governance parameter names in [`param_names`] and
/// [`set_param`].
const GOVERNANCE_PREFIX: &str = "governance.";
/// Prefix of inclusion-list parameter names in [`param_names`] and
/// [`set_param`].
const INCLUSION_PREFIX: &str = "inclusion.";

/// The parameter names [`set_param`] knows: every field of [`ChainParams`],
/// then every field of [`StakingParams`] as `staking.<field>` and every
/// field of [`GovernanceParams`] as `governance.<field>`. Derived from
/// the types' serde shapes, so a new parameter is known at once.
pub fn param_names() -> Vec<String> {
    let names = |v: serde_json::Value| -> Vec<String> {
        v.as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    let mut out = names(serde_json::to_value(ChainParams::default()).unwrap_or_default());
    out.extend(
        names(serde_json::to_value(StakingParams::default()).unwrap_or_default())
            .into_iter()
            .map(|n| format!("{STAKING_PREFIX}{n}")),
    );
    out.extend(
        names(serde_json::to_value(GovernanceParams::default()).unwrap_or_default())
            .into_iter()
            .map(|n| format!("{GOVERNANCE_PREFIX}{n}")),
    );
    out.extend(
        names(serde_json::to_value(InclusionParams::default()).unwrap_or_default())
            .into_iter()
            .map(|n| format!("{INCLUSION_PREFIX}{n}")),
    );
    out
}

/// Sets parameter `name` (one of [`param_names`]) to `value`, given as
/// text (a decimal number). Unknown names are refused with the list of
/// known ones. A `staking.*` parameter creates the staking section (with
/// no validators yet) if there is none; a `governance.*` parameter
/// creates the governance section (defaults for its other fields) and,
/// since governance needs staking, the staking section too. The value is checked by the
/// parameter's own type; whole-genesis rules (e.g. `max_rollup_data_per_tx
/// > 0`) are [`GenesisAppState::check_fields`]'s.
pub fn set_param(state: &mut GenesisAppState, name: &str, value: &str) -> Result<(), String> {
    fn edit<T: Serialize + serde::de::DeserializeOwned>(
        params: &T,
        field: &str,
        full_name: &str,
        value: &str,
    ) -> Result<Option<T>, String> {
        let mut v = serde_json::to_value(params).map_err(|e| e.to_string())?;
        let Some(slot) = v.as_object_mut().and_then(|o| o.get_mut(field)) else {
            return Ok(None);
        };
        *slot = match slot {
            // Amounts are decimal strings; check they are numbers.
            serde_json::Value::String(_) => {
                value
                    .parse::<Amount>()
                    .map_err(|e| format!("{full_name}: `{value}` is not an amount: {e}"))?;
                serde_json::Value::String(value.to_owned())
            }
            serde_json::Value::Bool(_) => serde_json::Value::Bool(
                value
                    .parse::<bool>()
                    .map_err(|_| format!("{full_name}: `{value}` is not true or false"))?,
            ),
            _ => serde_json::Value::Number(
                value
                    .parse::<u64>()
                    .map_err(|e| format!("{full_name}: `{value}` is not a whole number: {e}"))?
                    .into(),
            ),
        };
        serde_json::from_value(v)
            .map(Some)
            .map_err(|e| format!("{full_name}: `{value}` is out of range: {e}"))
    }
    let unknown = || {
        format!(
            "unknown parameter `{name}`; known parameters: {}",
            param_names().join(", ")
        )
    };
    let staking_section = |state: &mut GenesisAppState| {
        state.staking.get_or_insert_with(|| GenesisStaking {
            params: StakingParams::default(),
            validators: Vec::new(),
        });
    };
    if let Some(field) = name.strip_prefix(INCLUSION_PREFIX) {
        // Inclusion lists need CometBFT's vote extensions too (the
        // consensus parameter `abci.vote_extensions_enable_height`).
        let current = state.inclusion.clone().unwrap_or_default();
        state.inclusion = Some(edit(&current, field, name, value)?.ok_or_else(unknown)?);
    } else if let Some(field) = name.strip_prefix(GOVERNANCE_PREFIX) {
        let current = state.governance.clone().unwrap_or_default();
        let params = edit(&current, field, name, value)?.ok_or_else(unknown)?;
        staking_section(state);
        state.governance = Some(params);
    } else if let Some(field) = name.strip_prefix(STAKING_PREFIX) {
        let current = state
            .staking
            .as_ref()
            .map(|s| s.params.clone())
            .unwrap_or_default();
        let params = edit(&current, field, name, value)?.ok_or_else(unknown)?;
        state
            .staking
            .get_or_insert_with(|| GenesisStaking {
                params: StakingParams::default(),
                validators: Vec::new(),
            })
            .params = params;
    } else {
        state.params = edit(&state.params, name, name, value)?.ok_or_else(unknown)?;
    }
    Ok(())
}

impl GenesisAppState {
    /// The checks of [`GenesisAppState::from_json`] (and the staking
    /// section's), each error naming its field as a path from the
    /// genesis.json root (`app_state.…`). `from_json` stays the rule the
    /// sequencer applies; this says where a refused genesis is wrong.
    pub fn check_fields(&self) -> Result<(), GenesisFieldError> {
        let mut supply: Amount = 0;
        let mut seen = std::collections::BTreeMap::new();
        for (i, a) in self.accounts.iter().enumerate() {
            supply = supply.checked_add(a.balance).ok_or_else(|| {
                GenesisFieldError::new(
                    format!("app_state.accounts[{i}].balance"),
                    format!(
                        "total supply overflows u128 (max {}) when adding this balance",
                        Amount::MAX
                    ),
                )
            })?;
            if let Some(first) = seen.insert(a.address, i) {
                return Err(GenesisFieldError::new(
                    format!("app_state.accounts[{i}].address"),
                    format!(
                        "account {} is already listed at accounts[{first}]",
                        a.address
                    ),
                ));
            }
        }
        if self.params.max_rollup_data_per_tx == 0 {
            return Err(GenesisFieldError::new(
                "app_state.params.max_rollup_data_per_tx",
                "must be positive",
            ));
        }
        let Some(staking) = &self.staking else {
            return Ok(());
        };
        staking.params.check().map_err(|m| {
            let field = m.split_whitespace().next().unwrap_or("staking.params");
            GenesisFieldError::new(format!("app_state.{field}"), m.clone())
        })?;
        if staking.validators.is_empty() {
            return Err(GenesisFieldError::new(
                "app_state.staking.validators",
                "must list at least one validator",
            ));
        }
        for (i, v) in staking.validators.iter().enumerate() {
            let at = |f: &str| format!("app_state.staking.validators[{i}].{f}");
            let earlier = &staking.validators[..i];
            if earlier.iter().any(|e| e.operator == v.operator) {
                return Err(GenesisFieldError::new(
                    at("operator"),
                    format!("validator operator {} listed twice", v.operator),
                ));
            }
            if earlier.iter().any(|e| e.consensus_key == v.consensus_key) {
                return Err(GenesisFieldError::new(
                    at("consensus_key"),
                    format!(
                        "consensus key {} listed twice",
                        hex::encode(v.consensus_key)
                    ),
                ));
            }
            if !is_valid_consensus_key(&v.consensus_key) {
                return Err(GenesisFieldError::new(
                    at("consensus_key"),
                    "not a valid ed25519 public key",
                ));
            }
            check_validator_description(&v.name, &v.website, v.commission_bps)
                .map_err(|m| GenesisFieldError::new(at("name"), m))?;
            if v.self_bond == 0 || v.self_bond < staking.params.min_self_bond {
                return Err(GenesisFieldError::new(
                    at("self_bond"),
                    format!(
                        "{} is below staking.params.min_self_bond {} (and must be positive)",
                        v.self_bond, staking.params.min_self_bond
                    ),
                ));
            }
            let balance = self
                .accounts
                .iter()
                .find(|a| a.address == v.operator)
                .map_or(0, |a| a.balance);
            if balance < v.self_bond {
                return Err(GenesisFieldError::new(
                    at("self_bond"),
                    format!(
                        "{} exceeds the operator {}'s genesis balance {balance} (fund it with an account entry)",
                        v.self_bond, v.operator
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// serde helper: amounts as decimal strings (u128 does not fit a JSON
/// number safely); numbers are accepted on input.
pub mod amount_string {
    use serde::{de, Deserialize, Deserializer, Serializer};

    use crate::Amount;

    /// Serialize as a decimal string.
    pub fn serialize<S: Serializer>(v: &Amount, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    /// Deserialize from a decimal string or a non-negative integer.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Amount, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            S(String),
            N(u64),
        }
        match Repr::deserialize(d)? {
            Repr::S(s) => s.parse().map_err(de::Error::custom),
            Repr::N(n) => Ok(Amount::from(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SigningKey;

    #[test]
    fn parses_and_rejects_duplicates() {
        let a = SigningKey::from_seed("a").address();
        let json = format!(
            r#"{{"accounts":[{{"address":"{a}","balance":"100"}}],"params":{{"base_fee":"1","fee_per_byte":2,"max_rollup_data_per_tx":10}}}}"#
        );
        let g = GenesisAppState::from_json(json.as_bytes()).unwrap();
        assert_eq!(g.accounts[0].balance, 100);
        assert_eq!(g.params.fee_per_byte, 2);
        let dup = format!(
            r#"{{"accounts":[{{"address":"{a}","balance":"1"}},{{"address":"{a}","balance":"2"}}]}}"#
        );
        assert!(GenesisAppState::from_json(dup.as_bytes()).is_err());
        assert!(GenesisAppState::from_json(b"{\"bogus\":1}").is_err());
        assert!(GenesisAppState::from_json(b"not json").is_err());
    }

    // genesis/README.md warns that the example funds the key of the public
    // seed `alice`; this keeps that warning true if the file changes.
    #[test]
    fn the_example_genesis_in_the_repository_parses_and_funds_only_the_dev_key() {
        let g =
            GenesisAppState::from_json(include_bytes!("../../../genesis/example-app-state.json"))
                .unwrap();
        assert_eq!(g.accounts.len(), 1);
        assert_eq!(
            g.accounts[0].address,
            SigningKey::from_seed("alice").address(),
            "genesis/README.md and docs/protocol.md name the seed `alice`"
        );
    }

    #[test]
    fn staking_section_is_optional_and_checked() {
        let op = SigningKey::from_seed("op").address();
        let key = hex::encode(SigningKey::from_seed("op-consensus").public_key().0);
        let without = format!(r#"{{"accounts":[{{"address":"{op}","balance":"5000000"}}]}}"#);
        let g = GenesisAppState::from_json(without.as_bytes()).unwrap();
        assert_eq!(g.staking, None);
        // Absent stays absent when written back: existing genesis files
        // (and what is derived from them) do not change.
        assert!(!serde_json::to_string(&g).unwrap().contains("staking"));

        let with = |validators: &str, params: &str| {
            format!(
                r#"{{"accounts":[{{"address":"{op}","balance":"5000000"}}],"staking":{{{params}"validators":[{validators}]}}}}"#
            )
        };
        let v = |bond: &str| {
            format!(
                r#"{{"operator":"{op}","consensus_key":"{key}","name":"op","self_bond":"{bond}"}}"#
            )
        };
        let g = GenesisAppState::from_json(with(&v("2000000"), "").as_bytes()).unwrap();
        let s = g.staking.unwrap();
        assert_eq!(s.params, StakingParams::default());
        assert_eq!(s.validators[0].self_bond, 2_000_000);
        let refused = [
            with(&v("6000000"), ""), // more than the balance
            with(&v("10"), ""),      // below min_self_bond
            with("", ""),            // no validators
            with(&format!("{},{}", v("2000000"), v("1000000")), ""), // twice
            with(&v("2000000"), r#""params":{"epoch_blocks":0},"#),
            with(&v("2000000"), r#""params":{"max_power_share_bps":10001},"#),
            with(
                // No curve point has y = 2.
                &v("2000000").replace(&key, &format!("02{}", "00".repeat(31))),
                "",
            ),
        ];
        for json in refused {
            assert!(
                GenesisAppState::from_json(json.as_bytes()).is_err(),
                "{json}"
            );
        }
    }

    #[test]
    fn governance_section_needs_staking_and_is_checked() {
        let op = SigningKey::from_seed("op").address();
        let key = hex::encode(SigningKey::from_seed("op-consensus").public_key().0);
        let accounts = format!(r#""accounts":[{{"address":"{op}","balance":"5000000"}}]"#);
        let staking = format!(
            r#""staking":{{"validators":[{{"operator":"{op}","consensus_key":"{key}","name":"op","self_bond":"2000000"}}]}}"#
        );
        let parse = |body: String| GenesisAppState::from_json(format!("{{{body}}}").as_bytes());
        let g = parse(format!("{accounts},{staking}")).unwrap();
        assert_eq!(g.governance, None);
        assert!(!serde_json::to_string(&g).unwrap().contains("governance"));
        let g = parse(format!(
            r#"{accounts},{staking},"governance":{{"quorum_bps":5000,"min_deposit":"7"}}"#
        ))
        .unwrap();
        let gov = g.governance.unwrap();
        assert_eq!(gov.quorum_bps, 5_000);
        assert_eq!(gov.min_deposit, 7);
        assert_eq!(
            gov.voting_period_blocks,
            GovernanceParams::default().voting_period_blocks
        );
        for bad in [
            format!(r#"{accounts},"governance":{{}}"#),
            format!(r#"{accounts},{staking},"governance":{{"quorum_bps":0}}"#),
            format!(r#"{accounts},{staking},"governance":{{"veto_threshold_bps":10001}}"#),
            format!(r#"{accounts},{staking},"governance":{{"voting_period_blocks":0}}"#),
            format!(r#"{accounts},{staking},"governance":{{"min_deposit":"0"}}"#),
            format!(r#"{accounts},{staking},"governance":{{"unknown":1}}"#),
        ] {
            assert!(parse(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn check_fields_names_the_field() {
        let a = SigningKey::from_seed("a").address();
        let b = SigningKey::from_seed("b").address();
        let acct = |address, balance| GenesisAccount { address, balance };
        let field = |g: GenesisAppState| g.check_fields().unwrap_err().field;
        let ok = GenesisAppState {
            accounts: vec![acct(a, 1), acct(b, 2)],
            ..Default::default()
        };
        ok.check_fields().unwrap();
        let dup = GenesisAppState {
            accounts: vec![acct(a, 1), acct(a, 2)],
            ..Default::default()
        };
        assert_eq!(field(dup), "app_state.accounts[1].address");
        let overflow = GenesisAppState {
            accounts: vec![acct(a, Amount::MAX), acct(b, 1)],
            ..Default::default()
        };
        assert_eq!(field(overflow), "app_state.accounts[1].balance");
        let mut zero = ok.clone();
        zero.params.max_rollup_data_per_tx = 0;
        assert_eq!(field(zero), "app_state.params.max_rollup_data_per_tx");
        let mut epoch = ok.clone();
        set_param(&mut epoch, "staking.epoch_blocks", "0").unwrap();
        assert_eq!(field(epoch), "app_state.staking.params.epoch_blocks");
    }

    #[test]
    fn set_param_knows_every_parameter_and_refuses_others() {
        let mut g = GenesisAppState::default();
        set_param(&mut g, "base_fee", "7").unwrap();
        set_param(&mut g, "max_rollup_data_per_tx", "99").unwrap();
        assert_eq!(
            (g.params.base_fee, g.params.max_rollup_data_per_tx),
            (7, 99)
        );
        assert!(g.staking.is_none());
        set_param(&mut g, "staking.min_self_bond", "5").unwrap();
        assert_eq!(g.staking.as_ref().unwrap().params.min_self_bond, 5);
        let e = set_param(&mut g, "bogus", "1").unwrap_err();
        assert!(
            e.contains("unknown parameter `bogus`") && e.contains("base_fee"),
            "{e}"
        );
        assert!(e.contains("staking.epoch_blocks"), "{e}");
        assert!(set_param(&mut g, "staking.bogus", "1").is_err());
        // Every governance parameter, each under its own name.
        assert!(e.contains("governance.quorum_bps"), "{e}");
        let mut fresh = GenesisAppState::default();
        set_param(&mut fresh, "governance.voting_period_blocks", "9").unwrap();
        set_param(&mut fresh, "governance.min_deposit", "11").unwrap();
        set_param(&mut fresh, "governance.quorum_bps", "100").unwrap();
        set_param(&mut fresh, "governance.pass_threshold_bps", "6000").unwrap();
        set_param(&mut fresh, "governance.veto_threshold_bps", "4000").unwrap();
        assert_eq!(
            fresh.governance,
            Some(GovernanceParams {
                voting_period_blocks: 9,
                min_deposit: 11,
                quorum_bps: 100,
                pass_threshold_bps: 6000,
                veto_threshold_bps: 4000,
            })
        );
        // Governance needs staking: its section comes along.
        assert!(fresh.staking.is_some());
        let e = set_param(&mut fresh, "governance.bogus", "1").unwrap_err();
        assert!(e.contains("unknown parameter `governance.bogus`"), "{e}");
        assert!(set_param(&mut fresh, "governance.quorum_bps", "65536").is_err());
        for n in param_names() {
            assert!(
                n.starts_with(STAKING_PREFIX)
                    || n.starts_with(GOVERNANCE_PREFIX)
                    || n.starts_with(INCLUSION_PREFIX)
                    || serde_json::to_value(ChainParams::default())
                        .unwrap()
                        .get(&n)
                        .is_some(),
                "{n}"
            );
        }
        // Chain (5), staking (11), governance (5), inclusion (3).
        assert_eq!(param_names().len(), 5 + 11 + 5 + 3);
        set_param(&mut fresh, "inclusion.enabled", "false").unwrap();
        set_param(&mut fresh, "inclusion.max_inclusion_list_bytes", "4096").unwrap();
        assert_eq!(
            fresh.inclusion,
            Some(InclusionParams {
                enabled: false,
                max_inclusion_list_bytes: 4096,
                ..InclusionParams::default()
            })
        );
        assert!(set_param(&mut fresh, "inclusion.enabled", "maybe").is_err());
        assert!(set_param(&mut g, "base_fee", "-1").is_err());
        assert!(set_param(&mut g, "max_rollup_data_per_tx", "4294967296").is_err());
        assert!(param_names().contains(&"max_txs_per_account_per_block".to_string()));
    }

    #[test]
    fn chain_id_rules() {
        check_chain_id("weft-devnet").unwrap();
        assert!(check_chain_id("").is_err());
        assert!(check_chain_id(&"x".repeat(51)).is_err());
        check_chain_id(&"x".repeat(50)).unwrap();
        assert!(check_chain_id("has space").is_err());
    }

    #[test]
    fn fees() {
        let p = ChainParams {
            base_fee: 10,
            fee_per_byte: 3,
            ..ChainParams::default()
        };
        assert_eq!(p.fee_for(0), Some(10));
        assert_eq!(p.fee_for(5), Some(25));
        let huge = ChainParams {
            base_fee: Amount::MAX,
            fee_per_byte: 1,
            ..ChainParams::default()
        };
        assert_eq!(huge.fee_for(1), None);
    }
}
