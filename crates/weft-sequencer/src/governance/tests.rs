//! Governance through signed transactions and `BlockExecution` (the path
//! PrepareProposal, ProcessProposal and FinalizeBlock share): admission and
//! removal of a validator reaching CometBFT at the next epoch, a proposal
//! short of quorum, a veto, a parameter change, every refusal's code, and
//! conservation of supply and determinism over random sequences.

use proptest::prelude::*;
use weft_core::{
    AccountParams, Action, Address, Amount, ChainParams, FeeParams, GenesisAccount,
    GenesisAppState, GenesisStaking, GenesisValidator, GovernanceParams, Hash, ProposalKind,
    RollupParams, SigningKey, StakingParams, Transaction, TxCode, VoteOption,
};

use super::{
    query,
    state::{GovernanceRead, ProposalStatus, Tally},
};
use crate::{
    accounts::AccountsRead,
    component::{BlockContext, EndBlock, Genesis, HandledAction, ParamsRead, TxContext},
    error::ExecError,
    fees,
    proposal::{ApplyError, BlockExecution},
    staking::state::{StakingRead, UnbondingEntry, UNBONDING_PREFIX},
    storage::{decode_stored, delta::EmptyState, StateDelta, StateRead, StateWrite},
    transaction::{check_stateless, execute_actions},
};

const CHAIN: &str = "governance";
const BALANCE: Amount = 1_000_000_000;
/// Every funded account: three genesis validators, a candidate, two
/// delegators.
const SEEDS: [&str; 6] = ["v0", "v1", "v2", "cand", "d0", "d1"];

fn key(seed: &str) -> SigningKey {
    SigningKey::from_seed(seed)
}

fn addr(seed: &str) -> Address {
    key(seed).address()
}

fn consensus(seed: &str) -> [u8; 32] {
    key(&format!("{seed}/consensus")).public_key().0
}

fn staking_params() -> StakingParams {
    StakingParams {
        unbonding_blocks: 3,
        epoch_blocks: 4,
        max_validators: 4,
        max_power_share_bps: 10_000,
        min_self_bond: 10,
        ..StakingParams::default()
    }
}

fn gov_params() -> GovernanceParams {
    GovernanceParams {
        voting_period_blocks: 3,
        min_deposit: 50,
        quorum_bps: 4_000,
        pass_threshold_bps: 5_000,
        veto_threshold_bps: 3_340,
    }
}

/// `v0`, `v1`, `v2` are genesis validators with a self-bond of 100 each.
fn app_state(staking: bool, governance: Option<GovernanceParams>) -> GenesisAppState {
    GenesisAppState {
        inclusion: None,
        auction: None,
        accounts: SEEDS
            .map(|s| GenesisAccount {
                address: addr(s),
                balance: BALANCE,
            })
            .to_vec(),
        params: ChainParams::default(),
        staking: staking.then(|| GenesisStaking {
            params: staking_params(),
            validators: ["v0", "v1", "v2"]
                .map(|s| GenesisValidator {
                    operator: addr(s),
                    consensus_key: consensus(s),
                    name: s.into(),
                    website: String::new(),
                    commission_bps: 0,
                    self_bond: 100,
                })
                .to_vec(),
        }),
        governance,
    }
}

fn genesis(app_state: &GenesisAppState) -> StateDelta<EmptyState> {
    let mut s = StateDelta::new(EmptyState);
    crate::app::standard_components(0)
        .init_chain(
            &mut s,
            &Genesis {
                chain_id: CHAIN,
                app_state,
            },
        )
        .unwrap();
    s
}

/// Balances + bonded + unbonding + escrowed and burned deposits + fee
/// pool: what genesis funded, whatever happens.
fn supply(s: &dyn StateRead) -> Amount {
    let balances: Amount = SEEDS
        .iter()
        .map(|k| s.account(&addr(k)).unwrap().balance)
        .sum();
    let bonded: Amount = s.validators().unwrap().iter().map(|v| v.bonded).sum();
    let unbonding: Amount = s
        .prefix_raw(UNBONDING_PREFIX)
        .unwrap()
        .iter()
        .map(|(k, v)| decode_stored::<UnbondingEntry>(k, v).unwrap().amount)
        .sum();
    balances
        + bonded
        + unbonding
        + super::held(s).unwrap()
        + fees::pool(s).unwrap()
        + s.reward_reserve().unwrap()
        + s.slashed_burned().unwrap()
}

/// A chain driven block by block through `BlockExecution` with signed
/// transactions, each block's changes applied to the committed state.
struct Chain {
    state: StateDelta<EmptyState>,
    height: u64,
}

impl Chain {
    fn new(app_state: &GenesisAppState) -> Self {
        Chain {
            state: genesis(app_state),
            height: 0,
        }
    }

    /// Executes the next block with these transactions (one action each):
    /// its end-of-block output and each transaction's code.
    fn block(&mut self, txs: Vec<(&str, Action)>) -> (EndBlock, Vec<TxCode>) {
        let (end, outcomes) = self.block_outcomes(txs);
        let codes = outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|limit| panic!("{limit}")))
            .collect();
        (end, codes)
    }

    /// Like [`Chain::block`], with a transaction left out of the block by
    /// a block limit as `Err`.
    fn block_outcomes(
        &mut self,
        txs: Vec<(&str, Action)>,
    ) -> (EndBlock, Vec<Result<TxCode, String>>) {
        self.height += 1;
        let mut exec = BlockExecution::new(
            &self.state,
            crate::app::standard_components(0),
            BlockContext::at_height(self.height),
        )
        .unwrap();
        let mut codes = Vec::new();
        for (signer, action) in txs {
            let nonce = exec.delta.account(&addr(signer)).unwrap().nonce;
            let tx = Transaction {
                chain_id: CHAIN.into(),
                nonce,
                actions: vec![action],
            }
            .sign(&key(signer));
            let code = match check_stateless(&tx.encode(), CHAIN) {
                Err(r) => Ok(r.code),
                Ok(checked) => match exec.apply(&checked) {
                    Ok(()) => Ok(TxCode::Ok),
                    Err(ApplyError::Rejected(r)) => Ok(r.code),
                    Err(ApplyError::Limit(m)) => Err(m),
                    Err(e) => panic!("{e}"),
                },
            };
            codes.push(code);
        }
        let done = exec.finish().unwrap();
        for (k, v) in done.changes {
            match v {
                Some(v) => self.state.put_raw(k, v),
                None => self.state.delete(k),
            }
        }
        (done.end, codes)
    }

    /// Empty blocks up to and including `height`; the validator updates
    /// they return.
    fn until(&mut self, height: u64) -> Vec<([u8; 32], u64)> {
        let mut updates = Vec::new();
        while self.height < height {
            updates.extend(self.block(vec![]).0.validator_updates);
        }
        updates
    }

    fn balance(&self, seed: &str) -> Amount {
        self.state.account(&addr(seed)).unwrap().balance
    }
}

fn propose(kind: ProposalKind, deposit: Amount) -> Action {
    Action::Propose { kind, deposit }
}

fn vote(proposal_id: u64, option: VoteOption) -> Action {
    Action::Vote {
        proposal_id,
        option,
    }
}

fn admit(seed: &str) -> ProposalKind {
    ProposalKind::AdmitValidator {
        operator: addr(seed),
    }
}

fn finished(end: &EndBlock) -> Vec<String> {
    end.events
        .iter()
        .filter(|e| e.kind == "governance.proposal_finished")
        .map(|e| format!("{}", e.get("outcome").unwrap()))
        .collect()
}

/// The candidate registers and self-bonds 200; `d0` delegates 100 to
/// `v0`. Returns the chain at height 1.
fn with_candidate() -> Chain {
    let mut c = Chain::new(&app_state(true, Some(gov_params())));
    let (_, codes) = c.block(vec![
        (
            "cand",
            Action::RegisterValidator {
                consensus_key: consensus("cand"),
                name: "cand".into(),
                website: String::new(),
                commission_bps: 0,
            },
        ),
        (
            "cand",
            Action::Delegate {
                validator: addr("cand"),
                amount: 200,
            },
        ),
        (
            "d0",
            Action::Delegate {
                validator: addr("v0"),
                amount: 100,
            },
        ),
    ]);
    assert_eq!(codes, vec![TxCode::Ok; 3]);
    c
}

#[test]
fn admission_then_removal_reach_cometbft_at_the_next_epoch() {
    let mut c = with_candidate();
    let initial = supply(&c.state);
    let fee = ChainParams::default().base_fee;
    let before = c.balance("v1");
    // Height 2: proposal 0, voting until the end of height 5.
    let (_, codes) = c.block(vec![("v1", propose(admit("cand"), 50))]);
    assert_eq!(codes, vec![TxCode::Ok]);
    assert_eq!(c.balance("v1"), before - 50 - fee);
    assert_eq!(c.state.escrowed().unwrap(), 50);
    assert_eq!(supply(&c.state), initial);
    // Height 3: v0 (bonded 200: its own 100 and d0's 100) and v1 vote
    // yes; d0 overrides its validator with no. The candidate's own stake
    // does not vote: it is not bonded to an approved validator.
    let (_, codes) = c.block(vec![
        ("v0", vote(0, VoteOption::Yes)),
        ("v1", vote(0, VoteOption::No)),
        ("v1", vote(0, VoteOption::Yes)),
        ("d0", vote(0, VoteOption::No)),
        ("cand", vote(0, VoteOption::Yes)),
    ]);
    assert_eq!(codes, vec![TxCode::Ok; 5]);
    let so_far = query::proposal(&c.state, 0).unwrap().unwrap();
    assert_eq!(so_far.status, ProposalStatus::Voting);
    assert_eq!(so_far.votes, 4);
    assert_eq!(
        so_far.tally,
        Tally {
            yes: 200,
            no: 100,
            abstain: 0,
            no_with_veto: 0,
            total_bonded: 400,
        }
    );
    // Height 4 is an epoch: v0's power follows d0's delegation, and the
    // candidate, not approved yet, stays out.
    assert_eq!(c.until(4), vec![(consensus("v0"), 200)]);
    // Height 5: the period ends, the proposal passes and executes.
    let (end, _) = c.block(vec![]);
    assert_eq!(finished(&end), vec!["passed"]);
    assert!(c.state.validator(&addr("cand")).unwrap().unwrap().approved);
    // Three transactions of v1 paid fees; the deposit came back.
    assert_eq!(c.balance("v1"), before - 3 * fee, "deposit returned");
    assert_eq!(c.state.escrowed().unwrap(), 0);
    assert_eq!(supply(&c.state), initial);
    let done = query::proposal(&c.state, 0).unwrap().unwrap();
    assert_eq!(done.status, ProposalStatus::Passed);
    assert_eq!(done.tally.yes, 200);
    // Voting is over.
    let (_, codes) = c.block(vec![("v2", vote(0, VoteOption::No))]);
    assert_eq!(codes, vec![TxCode::VotingClosed]);
    // Height 8, the next epoch: CometBFT hears of the candidate.
    assert_eq!(c.until(8), vec![(consensus("cand"), 200)]);

    // Removal: proposal 1 at height 9, voting until 12; the candidate,
    // now approved, votes no with all its stake, and is outvoted.
    let (_, codes) = c.block(vec![(
        "d1",
        propose(
            ProposalKind::RemoveValidator {
                operator: addr("cand"),
            },
            60,
        ),
    )]);
    assert_eq!(codes, vec![TxCode::Ok]);
    c.block(vec![
        ("v0", vote(1, VoteOption::Yes)),
        ("v1", vote(1, VoteOption::Yes)),
        ("v2", vote(1, VoteOption::Yes)),
        ("cand", vote(1, VoteOption::No)),
    ]);
    c.until(11);
    let (end, _) = c.block(vec![]);
    assert_eq!(finished(&end), vec!["passed"]);
    let p = query::proposal(&c.state, 1).unwrap().unwrap();
    assert_eq!(
        (p.tally.yes, p.tally.no, p.tally.total_bonded),
        (400, 200, 600)
    );
    assert!(!c.state.validator(&addr("cand")).unwrap().unwrap().approved);
    // Height 12 is an epoch but governance runs after staking: the
    // removal reaches CometBFT at height 16.
    assert!(end.validator_updates.is_empty());
    assert_eq!(c.until(16), vec![(consensus("cand"), 0)]);
    assert_eq!(supply(&c.state), initial);
    assert_eq!(query::proposals(&c.state).unwrap().len(), 2);
}

#[test]
fn short_of_quorum_executes_nothing_and_returns_the_deposit() {
    let mut c = with_candidate();
    let initial = supply(&c.state);
    let fee = ChainParams::default().base_fee;
    let before = c.balance("d1");
    c.block(vec![("d1", propose(admit("cand"), 70))]);
    // v2 alone holds 100 of 400 bonded: under the 40 % quorum.
    c.block(vec![("v2", vote(0, VoteOption::Yes))]);
    c.until(4);
    let (end, _) = c.block(vec![]);
    assert_eq!(finished(&end), vec!["no_quorum"]);
    assert!(!c.state.validator(&addr("cand")).unwrap().unwrap().approved);
    assert_eq!(c.balance("d1"), before - fee);
    assert_eq!(c.state.burned().unwrap(), 0);
    assert_eq!(supply(&c.state), initial);
    assert!(c.until(8).is_empty(), "nothing changes at the epoch");
}

#[test]
fn a_veto_burns_the_deposit() {
    let mut c = with_candidate();
    let initial = supply(&c.state);
    let fee = ChainParams::default().base_fee;
    let before = c.balance("d1");
    let text = ProposalKind::Text {
        title: "Move to weekly epochs".into(),
        description: "Line one.\nLine two.".into(),
    };
    c.block(vec![("d1", propose(text, 80))]);
    // 200 yes, 200 no-with-veto: half the voted stake vetoes.
    c.block(vec![
        ("v0", vote(0, VoteOption::Yes)),
        ("v1", vote(0, VoteOption::NoWithVeto)),
        ("v2", vote(0, VoteOption::NoWithVeto)),
    ]);
    c.until(4);
    let (end, _) = c.block(vec![]);
    assert_eq!(finished(&end), vec!["vetoed"]);
    let e = end
        .events
        .iter()
        .find(|e| e.kind == "governance.proposal_finished")
        .unwrap();
    assert_eq!(e.get("deposit_burned").unwrap().to_string(), "80");
    assert_eq!(c.balance("d1"), before - 80 - fee);
    assert_eq!(c.state.burned().unwrap(), 80);
    assert_eq!(c.state.escrowed().unwrap(), 0);
    assert_eq!(
        supply(&c.state),
        initial,
        "burned deposits are accounted for"
    );
}

#[test]
fn a_passed_parameter_change_replaces_the_staking_parameters() {
    let mut c = with_candidate();
    let next = StakingParams {
        max_validators: 2,
        ..staking_params()
    };
    c.block(vec![(
        "v0",
        propose(
            ProposalKind::ChangeStakingParams {
                params: next.clone(),
            },
            50,
        ),
    )]);
    c.block(vec![
        ("v0", vote(0, VoteOption::Yes)),
        ("v1", vote(0, VoteOption::Abstain)),
        ("v2", vote(0, VoteOption::Abstain)),
    ]);
    c.until(4);
    let (end, _) = c.block(vec![]);
    assert_eq!(finished(&end), vec!["passed"]);
    assert_eq!(c.state.component_params::<StakingParams>().unwrap(), next);
    // At the next epoch the set shrinks to the two largest (v0 at 200,
    // then v1 before v2 by the set's deterministic tie-break).
    let updates = c.until(8);
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(updates[0].1, 0);
}

#[test]
fn passed_fee_and_limit_changes_apply_from_the_next_block() {
    let mut c = with_candidate();
    let fees = FeeParams {
        base_fee: 7_000,
        fee_per_byte: 3,
    };
    let rollups = RollupParams {
        max_rollup_data_per_tx: 4,
        max_rollup_data_per_block: 8,
    };
    let accounts = AccountParams {
        max_txs_per_account_per_block: 1,
    };
    // Height 2: proposals 0, 1, 2, voting until the end of height 5.
    let (_, codes) = c.block(vec![
        (
            "v0",
            propose(
                ProposalKind::ChangeFeeParams {
                    params: fees.clone(),
                },
                50,
            ),
        ),
        (
            "v1",
            propose(
                ProposalKind::ChangeRollupParams {
                    params: rollups.clone(),
                },
                50,
            ),
        ),
        (
            "v2",
            propose(
                ProposalKind::ChangeAccountParams {
                    params: accounts.clone(),
                },
                50,
            ),
        ),
    ]);
    assert_eq!(codes, vec![TxCode::Ok; 3]);
    let mut votes = Vec::new();
    for id in 0..3 {
        for v in ["v0", "v1", "v2"] {
            votes.push((v, vote(id, VoteOption::Yes)));
        }
    }
    let (_, codes) = c.block(votes);
    assert_eq!(codes, vec![TxCode::Ok; 9]);
    c.until(4);
    let data = |bytes: usize| Action::SubmitRollupData {
        rollup_id: weft_core::RollupId::from_name("r"),
        data: vec![7; bytes],
    };
    let transfer = || Action::Transfer {
        to: addr("d0"),
        amount: 1,
    };
    // Height 5 tallies them; its own transactions still run under the old
    // parameters: five bytes of data, two transactions from one account,
    // the old fees.
    let before = c.balance("d1");
    let (end, outcomes) = c.block_outcomes(vec![("d1", data(5)), ("d1", transfer())]);
    assert_eq!(outcomes, vec![Ok(TxCode::Ok), Ok(TxCode::Ok)]);
    assert_eq!(finished(&end), vec!["passed"; 3]);
    let old = ChainParams::default();
    assert_eq!(
        before - c.balance("d1"),
        old.fee_for(5).unwrap() + old.base_fee + 1
    );
    assert_eq!(c.state.component_params::<FeeParams>().unwrap(), fees);
    assert_eq!(c.state.component_params::<RollupParams>().unwrap(), rollups);
    assert_eq!(
        c.state.component_params::<AccountParams>().unwrap(),
        accounts
    );
    // Height 6: the new ones. Five bytes are over the transaction limit,
    // four fit and pay the new fee, a second transaction of the same
    // account is left out of the block.
    let before = c.balance("d1");
    let (_, outcomes) =
        c.block_outcomes(vec![("d1", data(5)), ("d1", data(4)), ("d1", transfer())]);
    assert_eq!(outcomes[0], Ok(TxCode::RollupDataTooLarge));
    assert_eq!(outcomes[1], Ok(TxCode::Ok));
    assert!(outcomes[2].is_err(), "{outcomes:?}");
    assert_eq!(before - c.balance("d1"), fees.fee_for(4).unwrap());
}

#[test]
fn proposals_ending_together_run_in_id_order_and_a_stale_one_does_nothing() {
    let mut c = with_candidate();
    let initial = supply(&c.state);
    // Two admissions of the same candidate, both ending at height 5.
    let (_, codes) = c.block(vec![
        ("d1", propose(admit("cand"), 50)),
        ("d0", propose(admit("cand"), 60)),
    ]);
    assert_eq!(codes, vec![TxCode::Ok; 2]);
    c.block(vec![
        ("v0", vote(1, VoteOption::Yes)),
        ("v1", vote(1, VoteOption::Yes)),
        ("v0", vote(0, VoteOption::Yes)),
        ("v1", vote(0, VoteOption::Yes)),
    ]);
    c.until(4);
    let (end, _) = c.block(vec![]);
    let effects: Vec<(String, String)> = end
        .events
        .iter()
        .filter(|e| e.kind == "governance.proposal_finished")
        .map(|e| {
            (
                e.get("proposal_id").unwrap().to_string(),
                e.get("effect").unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        effects,
        vec![
            ("0".to_string(), "applied".to_string()),
            ("1".to_string(), "no_effect".to_string()),
        ]
    );
    assert!(c.state.validator(&addr("cand")).unwrap().unwrap().approved);
    assert_eq!(c.state.escrowed().unwrap(), 0, "both deposits returned");
    assert_eq!(supply(&c.state), initial);
}

#[test]
fn state_writes_stay_under_the_expected_prefixes() {
    let mut c = with_candidate();
    let base = c.state.prefix_raw("").unwrap();
    c.block(vec![("d1", propose(admit("cand"), 50))]);
    c.block(vec![
        ("v0", vote(0, VoteOption::Yes)),
        ("v1", vote(0, VoteOption::Yes)),
    ]);
    c.until(5);
    let after = c.state.prefix_raw("").unwrap();
    let changed: Vec<&String> = after
        .iter()
        .filter(|kv| !base.contains(kv))
        .map(|(k, _)| k)
        .collect();
    assert!(changed.iter().any(|k| k.starts_with("governance/")));
    assert!(
        changed.iter().all(
            |k| ["governance/", "staking/", "accounts/", "chain/", "fees/"]
                .iter()
                .any(|p| k.starts_with(p))
        ),
        "{changed:?}"
    );
}

#[test]
fn a_passed_voting_rule_change_applies_to_later_tallies() {
    let mut c = with_candidate();
    let stricter = GovernanceParams {
        quorum_bps: 10_000,
        ..gov_params()
    };
    c.block(vec![(
        "v0",
        propose(
            ProposalKind::ChangeGovernanceParams {
                params: stricter.clone(),
            },
            50,
        ),
    )]);
    c.block(vec![
        ("v0", vote(0, VoteOption::Yes)),
        ("v1", vote(0, VoteOption::Yes)),
    ]);
    c.until(4);
    let (end, _) = c.block(vec![]);
    assert_eq!(finished(&end), vec!["passed"]);
    assert_eq!(
        c.state.component_params::<GovernanceParams>().unwrap(),
        stricter
    );
    // The same votes no longer reach the (now total) quorum.
    c.block(vec![("v0", propose(admit("cand"), 50))]);
    c.block(vec![
        ("v0", vote(1, VoteOption::Yes)),
        ("v1", vote(1, VoteOption::Yes)),
    ]);
    c.until(8);
    let (end, _) = c.block(vec![]);
    assert_eq!(finished(&end), vec!["no_quorum"]);
}

#[test]
fn refusals_and_their_codes() {
    let mut c = with_candidate();
    let (_, codes) = c.block(vec![
        // Below min_deposit.
        ("d1", propose(admit("cand"), 49)),
        // Zero deposit, malformed text, bad staking parameters: stateless.
        ("d1", propose(admit("cand"), 0)),
        (
            "d1",
            propose(
                ProposalKind::Text {
                    title: String::new(),
                    description: String::new(),
                },
                50,
            ),
        ),
        (
            "d1",
            propose(
                ProposalKind::Text {
                    title: "t\u{1b}[2J".into(),
                    description: String::new(),
                },
                50,
            ),
        ),
        (
            "d1",
            propose(
                ProposalKind::ChangeStakingParams {
                    params: StakingParams {
                        epoch_blocks: 0,
                        ..staking_params()
                    },
                },
                50,
            ),
        ),
        (
            "d1",
            propose(
                ProposalKind::ChangeGovernanceParams {
                    params: GovernanceParams {
                        quorum_bps: 10_001,
                        ..gov_params()
                    },
                },
                50,
            ),
        ),
        // Fees that overflow, inverted rollup limits, a zero account
        // limit: stateless.
        (
            "d1",
            propose(
                ProposalKind::ChangeFeeParams {
                    params: FeeParams {
                        base_fee: Amount::MAX,
                        fee_per_byte: 1,
                    },
                },
                50,
            ),
        ),
        (
            "d1",
            propose(
                ProposalKind::ChangeRollupParams {
                    params: RollupParams {
                        max_rollup_data_per_tx: 9,
                        max_rollup_data_per_block: 8,
                    },
                },
                50,
            ),
        ),
        (
            "d1",
            propose(
                ProposalKind::ChangeAccountParams {
                    params: AccountParams {
                        max_txs_per_account_per_block: 0,
                    },
                },
                50,
            ),
        ),
        // Unknown, already approved, not approved.
        ("d1", propose(admit("d0"), 50)),
        ("d1", propose(admit("v0"), 50)),
        (
            "d1",
            propose(
                ProposalKind::RemoveValidator {
                    operator: addr("cand"),
                },
                50,
            ),
        ),
        // More than the balance.
        ("d1", propose(admit("cand"), BALANCE)),
        // No such proposal.
        ("d1", vote(0, VoteOption::Yes)),
    ]);
    use TxCode::*;
    assert_eq!(
        codes,
        vec![
            InvalidTransaction,
            InvalidTransaction,
            InvalidTransaction,
            InvalidTransaction,
            InvalidTransaction,
            InvalidTransaction,
            InvalidTransaction,
            InvalidTransaction,
            InvalidTransaction,
            UnknownValidator,
            InvalidTransaction,
            InvalidTransaction,
            InsufficientFunds,
            UnknownProposal,
        ]
    );
    assert!(c.state.proposals().unwrap().is_empty());
    assert_eq!(c.state.escrowed().unwrap(), 0);
}

#[test]
fn without_staking_governance_writes_nothing_and_refuses_its_actions() {
    let plain = genesis(&app_state(false, None));
    assert!(plain.prefix_raw("governance/").unwrap().is_empty());
    let mut c = Chain::new(&app_state(false, None));
    let (end, codes) = c.block(vec![
        (
            "d0",
            propose(
                ProposalKind::Text {
                    title: "t".into(),
                    description: String::new(),
                },
                50,
            ),
        ),
        ("d0", vote(0, VoteOption::Yes)),
    ]);
    assert_eq!(codes, vec![TxCode::InvalidTransaction; 2]);
    assert!(end.events.is_empty());
    assert!(c.state.prefix_raw("governance/").unwrap().is_empty());
    // With staking but no governance section: the defaults.
    let s = genesis(&app_state(true, None));
    assert_eq!(
        s.component_params::<GovernanceParams>().unwrap(),
        GovernanceParams::default()
    );
    let s = genesis(&app_state(true, Some(gov_params())));
    assert_eq!(
        s.component_params::<GovernanceParams>().unwrap(),
        gov_params()
    );
}

/// Runs one action as a transaction of `signer` without fees (stateless
/// checks, then stateful checks and execution in a discardable layer).
fn act<S: StateRead>(s: &mut StateDelta<S>, signer: &str, action: Action) -> Result<(), TxCode> {
    action
        .with_handler(|h| h.check_stateless())
        .map_err(|r| r.code)?;
    let tx = TxContext {
        signer: addr(signer),
        nonce: 0,
        hash: Hash([0; 32]),
        rollup_data_bytes: 0,
    };
    s.begin_tx();
    match execute_actions(s, &tx, &[action]) {
        Ok(_) => {
            s.commit_tx();
            Ok(())
        }
        Err(e) => {
            s.discard_tx();
            match e {
                ExecError::Rejected(r) => Err(r.code),
                ExecError::Storage(e) => panic!("storage failed: {e}"),
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Propose(usize, u8, Amount),
    Vote(usize, u64, u8),
    Delegate(usize, usize, Amount),
    Undelegate(usize, usize, Amount),
    NextBlock,
}

fn op() -> impl Strategy<Value = Op> {
    let who = 0..SEEDS.len();
    let validator = 0..4usize;
    prop_oneof![
        (who.clone(), 0u8..5, 40u128..200).prop_map(|(i, k, d)| Op::Propose(i, k, d)),
        (who.clone(), 0u64..6, 0u8..4).prop_map(|(i, p, o)| Op::Vote(i, p, o)),
        (who.clone(), validator.clone(), 1u128..300).prop_map(|(i, v, a)| Op::Delegate(i, v, a)),
        (who, validator, 1u128..300).prop_map(|(i, v, a)| Op::Undelegate(i, v, a)),
        Just(Op::NextBlock),
        Just(Op::NextBlock),
    ]
}

/// Runs `ops` from genesis (with the candidate registered) through every
/// hook; checks supply after each; returns the final state's changes.
fn run(ops: &[Op]) -> Result<crate::storage::StateChanges, TestCaseError> {
    let mut s = genesis(&app_state(true, Some(gov_params())));
    let begin = |s: &mut StateDelta<EmptyState>, h: u64| {
        crate::app::standard_components(0)
            .begin_block(s, &BlockContext::at_height(h))
            .unwrap()
    };
    let end = |s: &mut StateDelta<EmptyState>, h: u64| {
        crate::app::standard_components(0)
            .end_block(s, &BlockContext::at_height(h), &Default::default())
            .unwrap()
    };
    let initial = supply(&s);
    let mut height = 1;
    begin(&mut s, height);
    let registered = act(
        &mut s,
        "cand",
        Action::RegisterValidator {
            consensus_key: consensus("cand"),
            name: "cand".into(),
            website: String::new(),
            commission_bps: 0,
        },
    );
    prop_assert_eq!(registered, Ok(()));
    let validators = ["v0", "v1", "v2", "cand"];
    for op in ops {
        let _ = match op {
            Op::Propose(i, kind, deposit) => {
                let kind = match kind {
                    0 => admit("cand"),
                    1 => ProposalKind::RemoveValidator {
                        operator: addr("v2"),
                    },
                    2 => ProposalKind::ChangeStakingParams {
                        params: StakingParams {
                            max_validators: 3,
                            ..staking_params()
                        },
                    },
                    3 => ProposalKind::ChangeGovernanceParams {
                        params: GovernanceParams {
                            quorum_bps: 2_000,
                            ..gov_params()
                        },
                    },
                    _ => ProposalKind::Text {
                        title: "t".into(),
                        description: String::new(),
                    },
                };
                act(&mut s, SEEDS[*i], propose(kind, *deposit))
            }
            Op::Vote(i, id, option) => {
                let option = [
                    VoteOption::Yes,
                    VoteOption::No,
                    VoteOption::Abstain,
                    VoteOption::NoWithVeto,
                ][usize::from(*option)];
                act(&mut s, SEEDS[*i], vote(*id, option))
            }
            Op::Delegate(i, v, amount) => act(
                &mut s,
                SEEDS[*i],
                Action::Delegate {
                    validator: addr(validators[*v]),
                    amount: *amount,
                },
            ),
            Op::Undelegate(i, v, amount) => act(
                &mut s,
                SEEDS[*i],
                Action::Undelegate {
                    validator: addr(validators[*v]),
                    amount: *amount,
                },
            ),
            Op::NextBlock => {
                end(&mut s, height);
                height += 1;
                begin(&mut s, height);
                Ok(())
            }
        };
        prop_assert_eq!(supply(&s), initial);
    }
    // Past every open period: every proposal is decided, escrow is empty.
    end(&mut s, height);
    for _ in 0..=gov_params().voting_period_blocks {
        height += 1;
        begin(&mut s, height);
        end(&mut s, height);
    }
    prop_assert_eq!(s.escrowed().unwrap(), 0);
    prop_assert!(s.prefix_raw(super::state::QUEUE_PREFIX).unwrap().is_empty());
    for p in s.proposals().unwrap() {
        prop_assert_ne!(p.status, ProposalStatus::Voting);
    }
    prop_assert_eq!(supply(&s), initial);
    Ok(s.into_changes())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn supply_is_conserved_and_execution_is_deterministic(
        ops in prop::collection::vec(op(), 1..60),
    ) {
        let first = run(&ops)?;
        let second = run(&ops)?;
        prop_assert!(first == second, "the same sequence gave different states");
    }
}

/// Governance through the real app and store, without CometBFT: a
/// genesis whose JSON has staking and governance sections, CheckTx codes
/// for the governance actions, and the outcome event in FinalizeBlock.
mod through_the_app {
    use bytes::Bytes;
    use tendermint::{
        abci::request::CheckTxKind,
        v0_38::abci::{request, response as resp, Request, Response},
        Time,
    };
    use weft_core::{Action, ProposalKind, SigningKey, Transaction, TxCode, VoteOption};

    use super::{app_state, gov_params, key, BALANCE, CHAIN};
    use crate::{
        app::{App, AppConfig},
        Storage,
    };

    fn check(app: &mut App, tx: &[u8]) -> u32 {
        match app.handle(Request::CheckTx(request::CheckTx {
            tx: Bytes::copy_from_slice(tx),
            kind: CheckTxKind::New,
        })) {
            Response::CheckTx(r) => r.code.value(),
            other => panic!("{other:?}"),
        }
    }

    use crate::test_support::consensus_params;

    /// One height as CometBFT runs it; FinalizeBlock's response.
    fn run_block(app: &mut App, height: u32, offered: Vec<Bytes>) -> resp::FinalizeBlock {
        crate::test_support::run_block(app, height, offered).1
    }

    fn signed(signer: &SigningKey, nonce: u64, action: Action) -> Vec<u8> {
        Transaction {
            chain_id: CHAIN.into(),
            nonce,
            actions: vec![action],
        }
        .sign(signer)
        .encode()
    }

    #[test]
    fn propose_and_vote_through_check_tx_and_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let mut app = App::new(Storage::open(dir.path()).unwrap(), AppConfig::default()).unwrap();
        let genesis = app_state(true, Some(gov_params()));
        let r = app.handle(Request::InitChain(request::InitChain {
            time: Time::from_unix_timestamp(1_700_000_000, 0).unwrap(),
            chain_id: CHAIN.into(),
            consensus_params: consensus_params(),
            validators: vec![],
            app_state_bytes: serde_json::to_vec(&genesis).unwrap().into(),
            initial_height: 1u32.into(),
        }));
        assert!(matches!(r, Response::InitChain(_)));

        let text = || ProposalKind::Text {
            title: "hello".into(),
            description: String::new(),
        };
        let d1 = key("d1");
        let low = signed(
            &d1,
            0,
            Action::Propose {
                kind: text(),
                deposit: 49,
            },
        );
        assert_eq!(check(&mut app, &low), TxCode::InvalidTransaction.value());
        let broke = signed(
            &d1,
            0,
            Action::Propose {
                kind: text(),
                deposit: BALANCE,
            },
        );
        assert_eq!(check(&mut app, &broke), TxCode::InsufficientFunds.value());
        let early = signed(
            &d1,
            0,
            Action::Vote {
                proposal_id: 0,
                option: VoteOption::Yes,
            },
        );
        assert_eq!(check(&mut app, &early), TxCode::UnknownProposal.value());
        let propose = signed(
            &d1,
            0,
            Action::Propose {
                kind: text(),
                deposit: 50,
            },
        );
        assert_eq!(check(&mut app, &propose), TxCode::Ok.value());
        let fin = run_block(&mut app, 1, vec![Bytes::from(propose)]);
        assert!(fin.tx_results[1].code.is_ok(), "{}", fin.tx_results[1].log);
        assert!(fin.tx_results[1]
            .events
            .iter()
            .any(|e| e.kind == "governance.propose"));

        // Voting ends at the end of height 1 + 3.
        let votes: Vec<Bytes> = ["v0", "v1"]
            .iter()
            .map(|s| {
                Bytes::from(signed(
                    &key(s),
                    0,
                    Action::Vote {
                        proposal_id: 0,
                        option: VoteOption::Yes,
                    },
                ))
            })
            .collect();
        for v in &votes {
            assert_eq!(check(&mut app, v), TxCode::Ok.value());
        }
        let fin = run_block(&mut app, 2, votes);
        assert!(fin.tx_results.iter().skip(1).all(|r| r.code.is_ok()));
        run_block(&mut app, 3, vec![]);
        let fin = run_block(&mut app, 4, vec![]);
        let done = fin
            .events
            .iter()
            .find(|e| e.kind == "governance.proposal_finished")
            .expect("the outcome event");
        let outcome = done
            .attributes
            .iter()
            .find(|a| a.key_bytes() == b"outcome")
            .unwrap();
        assert_eq!(outcome.value_bytes(), b"passed");
        let late = signed(
            &key("v2"),
            0,
            Action::Vote {
                proposal_id: 0,
                option: VoteOption::No,
            },
        );
        assert_eq!(check(&mut app, &late), TxCode::VotingClosed.value());
    }
}

/// CometBFT's block and evidence parameters an enabling proposal restates.
fn cometbft_params() -> weft_core::ConsensusParams {
    weft_core::ConsensusParams {
        block_max_bytes: 4 << 20,
        block_max_gas: -1,
        evidence_max_age_num_blocks: 100_000,
        evidence_max_age_duration_ns: 172_800_000_000_000,
        evidence_max_bytes: 1 << 20,
    }
}

fn enable_lists(params: weft_core::InclusionParams) -> ProposalKind {
    ProposalKind::EnableInclusionLists {
        params,
        consensus: cometbft_params(),
    }
}

/// The `effect` of each finished proposal in the block, in id order.
fn effects(end: &EndBlock) -> Vec<String> {
    end.events
        .iter()
        .filter(|e| e.kind == "governance.proposal_finished")
        .map(|e| format!("{}", e.get("effect").unwrap()))
        .collect()
}

/// Proposes `kinds` at height 2 (ids from 0) and has `v0` and `v1` vote
/// yes on each; returns the end of block 5, which tallies them.
fn pass(c: &mut Chain, kinds: Vec<ProposalKind>) -> EndBlock {
    assert_eq!(c.height, 1);
    let n = kinds.len() as u64;
    let (_, codes) = c.block(kinds.into_iter().map(|k| ("d1", propose(k, 50))).collect());
    assert!(codes.iter().all(|c| *c == TxCode::Ok), "{codes:?}");
    let votes = (0..n)
        .flat_map(|id| {
            [
                ("v0", vote(id, VoteOption::Yes)),
                ("v1", vote(id, VoteOption::Yes)),
            ]
        })
        .collect();
    c.block(votes);
    c.until(4);
    c.block(vec![]).0
}

#[test]
fn enable_inclusion_lists_sends_cometbft_an_enable_height_and_switches_the_rule_on() {
    use crate::{
        component::ConsensusParamsUpdate,
        inclusion::{
            required,
            state::{ConsensusLimits, InclusionRead},
        },
    };
    use weft_core::{inclusion::validator_address, InclusionParams};
    let mut c = with_candidate();
    let params = InclusionParams {
        inclusion_delay_blocks: 2,
        ..InclusionParams::default()
    };
    // Two enabling proposals end in the same block: the first applies,
    // the second finds extensions scheduled and does nothing.
    let end = pass(
        &mut c,
        vec![enable_lists(params.clone()), enable_lists(params.clone())],
    );
    assert_eq!(c.height, 5);
    assert_eq!(finished(&end), vec!["passed", "passed"]);
    assert_eq!(effects(&end), vec!["applied", "no_effect"]);
    // CometBFT is told to extend votes from 5 + 2, strictly after the
    // current height as its ValidateUpdate demands, with the block and
    // evidence groups restated.
    assert_eq!(
        end.consensus_params,
        Some(ConsensusParamsUpdate {
            consensus: cometbft_params(),
            vote_extensions_enable_height: 7,
        })
    );
    assert_eq!(
        c.state.consensus_limits().unwrap(),
        ConsensusLimits {
            block_max_bytes: 4 << 20,
            evidence_max_bytes: 1 << 20,
            vote_extensions_enable_height: 7,
        }
    );
    assert_eq!(
        c.state.component_params::<InclusionParams>().unwrap(),
        params
    );
    // Every validator that will sign the extended votes has its key.
    let active = c.state.active_set().unwrap();
    assert_eq!(active.len(), 3);
    for v in &active {
        let address = validator_address(&v.consensus_key);
        assert_eq!(
            c.state.validator_key(&address).unwrap(),
            Some(v.consensus_key)
        );
    }
    // The rule: the first block whose previous height was extended is 8.
    for height in 5..=7 {
        assert_eq!(required(&c.state, height).unwrap(), None, "{height}");
    }
    assert_eq!(required(&c.state, 8).unwrap(), Some(params.clone()));
    // One update only: later blocks send none, and a new enabling
    // proposal is refused since extensions are scheduled.
    let (end, codes) = c.block(vec![("d1", propose(enable_lists(params), 50))]);
    assert_eq!(end.consensus_params, None);
    assert_eq!(codes, vec![TxCode::InvalidTransaction]);
}

#[test]
fn enable_inclusion_lists_is_refused_where_extensions_are_already_on() {
    use crate::inclusion::{record_genesis, state::ConsensusLimits};
    use weft_core::InclusionParams;
    // A genesis that turned CometBFT's vote extensions on, with and
    // without an inclusion section: sending another enable height would
    // halt the chain (CometBFT refuses to move it once reached).
    for section in [None, Some(InclusionParams::default())] {
        let mut app_state = app_state(true, Some(gov_params()));
        app_state.inclusion = section.clone();
        let mut c = Chain::new(&app_state);
        record_genesis(
            &mut c.state,
            ConsensusLimits {
                block_max_bytes: 4 << 20,
                evidence_max_bytes: 1 << 20,
                vote_extensions_enable_height: 1,
            },
            &[],
        )
        .unwrap();
        let (_, codes) = c.block(vec![(
            "d1",
            propose(enable_lists(InclusionParams::default()), 50),
        )]);
        assert_eq!(codes, vec![TxCode::InvalidTransaction], "{section:?}");
        // Changing the parameters needs an inclusion section (the keys).
        let (_, codes) = c.block(vec![(
            "d1",
            propose(
                ProposalKind::ChangeInclusionParams {
                    params: InclusionParams::default(),
                },
                50,
            ),
        )]);
        let expected = if section.is_some() {
            TxCode::Ok
        } else {
            TxCode::InvalidTransaction
        };
        assert_eq!(codes, vec![expected], "{section:?}");
    }
}

#[test]
fn invalid_inclusion_proposals_are_refused_when_proposed() {
    use weft_core::InclusionParams;
    let mut c = with_candidate();
    let bad_consensus = ProposalKind::EnableInclusionLists {
        params: InclusionParams::default(),
        consensus: weft_core::ConsensusParams {
            evidence_max_bytes: (4 << 20) + 1,
            ..cometbft_params()
        },
    };
    let (_, codes) = c.block(vec![
        // Off: nothing to enable.
        (
            "d1",
            propose(
                enable_lists(InclusionParams {
                    enabled: false,
                    ..InclusionParams::default()
                }),
                50,
            ),
        ),
        // Over the protocol's bound on a list.
        (
            "d1",
            propose(
                enable_lists(InclusionParams {
                    max_inclusion_list_bytes: 2 << 20,
                    ..InclusionParams::default()
                }),
                50,
            ),
        ),
        // Consensus parameters CometBFT would refuse (a halted chain).
        ("d1", propose(bad_consensus, 50)),
        // Nothing to change before lists were ever turned on.
        (
            "d1",
            propose(
                ProposalKind::ChangeInclusionParams {
                    params: InclusionParams::default(),
                },
                50,
            ),
        ),
    ]);
    assert_eq!(codes, vec![TxCode::InvalidTransaction; 4]);
    assert_eq!(c.state.next_proposal_id().unwrap(), 0);
}

#[test]
fn change_inclusion_params_disables_and_lowers_the_bound_without_stranding_a_height() {
    use crate::inclusion::required;
    use weft_core::InclusionParams;
    let mut c = with_candidate();
    pass(&mut c, vec![enable_lists(InclusionParams::default())]);
    // Extensions from 7; the rule from 8. Lower the bound by a proposal
    // tallied at 10 (proposed at 7, voting period 3).
    c.until(6);
    let lower = InclusionParams {
        max_inclusion_list_bytes: 1024,
        ..InclusionParams::default()
    };
    let (_, codes) = c.block(vec![(
        "d1",
        propose(
            ProposalKind::ChangeInclusionParams {
                params: lower.clone(),
            },
            50,
        ),
    )]);
    assert_eq!(codes, vec![TxCode::Ok]);
    c.block(vec![
        ("v0", vote(1, VoteOption::Yes)),
        ("v1", vote(1, VoteOption::Yes)),
    ]);
    c.until(9);
    let (end, _) = c.block(vec![]);
    assert_eq!(c.height, 10);
    assert_eq!(effects(&end), vec!["applied"]);
    // No consensus update: CometBFT's extensions stay as they are.
    assert_eq!(end.consensus_params, None);
    // Block 11 carries the votes of 10, extended under the old bound, so
    // it keeps that bound; from 12 on the new one applies.
    assert_eq!(
        required(&c.state, 11)
            .unwrap()
            .unwrap()
            .max_inclusion_list_bytes,
        16 * 1024
    );
    assert_eq!(required(&c.state, 12).unwrap(), Some(lower.clone()));
    c.block(vec![]);
    assert_eq!(required(&c.state, 12).unwrap(), Some(lower));
    // Turned off: no block requires listed votes any more.
    let (_, codes) = c.block(vec![(
        "d1",
        propose(
            ProposalKind::ChangeInclusionParams {
                params: InclusionParams {
                    enabled: false,
                    ..InclusionParams::default()
                },
            },
            50,
        ),
    )]);
    assert_eq!(codes, vec![TxCode::Ok]);
    c.block(vec![
        ("v0", vote(2, VoteOption::Yes)),
        ("v1", vote(2, VoteOption::Yes)),
    ]);
    c.until(14);
    let (end, _) = c.block(vec![]);
    assert_eq!(c.height, 15);
    assert_eq!(effects(&end), vec!["applied"]);
    assert_eq!(end.consensus_params, None);
    assert_eq!(required(&c.state, 16).unwrap(), None);
}
