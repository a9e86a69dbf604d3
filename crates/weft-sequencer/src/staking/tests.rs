//! Staking through the component hooks and the wire actions: genesis,
//! each action's rules and codes, unbonding release, epoch transitions,
//! and conservation of supply over random action sequences.

use std::collections::BTreeMap;

use proptest::prelude::*;
use weft_core::{
    Action, Address, Amount, ChainParams, GenesisAccount, GenesisAppState, GenesisStaking,
    GenesisValidator, Hash, SigningKey, StakingParams, TxCode,
};

use super::{
    state::{StakingRead, UNBONDING_PREFIX},
    validator_set::MAX_TOTAL_POWER,
};
use crate::{
    accounts::AccountsRead,
    component::{BlockContext, BlockSummary, EndBlock, Genesis, HandledAction, TxContext},
    error::ExecError,
    fees,
    storage::{delta::EmptyState, StateDelta, StateRead},
    transaction::execute_actions,
};

const BALANCE: Amount = 1_000_000_000;

fn key(seed: &str) -> SigningKey {
    SigningKey::from_seed(seed)
}

fn consensus(seed: &str) -> [u8; 32] {
    key(&format!("{seed}/consensus")).public_key().0
}

fn params() -> StakingParams {
    StakingParams {
        unbonding_blocks: 3,
        epoch_blocks: 2,
        max_validators: 3,
        max_power_share_bps: 10_000,
        min_self_bond: 10,
        ..StakingParams::default()
    }
}

/// Accounts `v0`, `v1` (genesis validators, self-bond 100 each), `d0`,
/// `d1` (plain), all funded with `BALANCE`.
fn app_state(staking: Option<StakingParams>) -> GenesisAppState {
    GenesisAppState {
        inclusion: None,
        auction: None,
        accounts: ["v0", "v1", "d0", "d1"]
            .map(|s| GenesisAccount {
                address: key(s).address(),
                balance: BALANCE,
            })
            .to_vec(),
        params: ChainParams::default(),
        staking: staking.map(|params| GenesisStaking {
            params,
            validators: ["v0", "v1"]
                .map(|s| GenesisValidator {
                    operator: key(s).address(),
                    consensus_key: consensus(s),
                    name: s.into(),
                    website: String::new(),
                    commission_bps: 500,
                    self_bond: 100,
                })
                .to_vec(),
        }),
        governance: None,
    }
}

fn genesis(app_state: &GenesisAppState) -> StateDelta<EmptyState> {
    let mut s = StateDelta::new(EmptyState);
    crate::app::standard_components(0)
        .init_chain(
            &mut s,
            &Genesis {
                chain_id: "staking",
                app_state,
            },
        )
        .unwrap();
    s
}

/// Runs one action as a transaction of `signer` (stateless checks, then
/// stateful checks and execution in a layer that a failure discards).
fn act<S: StateRead>(s: &mut StateDelta<S>, signer: &str, action: Action) -> Result<(), TxCode> {
    action
        .with_handler(|h| h.check_stateless())
        .map_err(|r| r.code)?;
    let tx = TxContext {
        signer: key(signer).address(),
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

/// Runs every component's begin hook for `height`.
fn begin<S: StateRead>(s: &mut StateDelta<S>, height: u64) {
    let ctx = BlockContext::at_height(height);
    crate::app::standard_components(0)
        .begin_block(s, &ctx)
        .unwrap();
}

/// Runs every component's end hook for `height`.
fn end<S: StateRead>(s: &mut StateDelta<S>, height: u64) -> EndBlock {
    let ctx = BlockContext::at_height(height);
    crate::app::standard_components(0)
        .end_block(s, &ctx, &BlockSummary::default())
        .unwrap()
}

/// An empty block at `height`.
fn block<S: StateRead>(s: &mut StateDelta<S>, height: u64) -> EndBlock {
    begin(s, height);
    end(s, height)
}

fn addr(seed: &str) -> Address {
    key(seed).address()
}

/// Balances + bonded + unbonding + fee pool.
fn supply(s: &dyn StateRead) -> Amount {
    let balances: Amount = ["v0", "v1", "d0", "d1"]
        .iter()
        .map(|k| s.account(&addr(k)).unwrap().balance)
        .sum();
    let bonded: Amount = s.validators().unwrap().iter().map(|v| v.bonded).sum();
    let unbonding: Amount = s
        .prefix_raw(UNBONDING_PREFIX)
        .unwrap()
        .iter()
        .map(|(k, v)| {
            crate::storage::decode_stored::<super::state::UnbondingEntry>(k, v)
                .unwrap()
                .amount
        })
        .sum();
    // The delegator index holds exactly the queue's entries.
    let indexed: Amount = ["v0", "v1", "d0", "d1"]
        .iter()
        .flat_map(|k| s.unbonding_of(&addr(k)).unwrap())
        .map(|(_, e)| e.amount)
        .sum();
    assert_eq!(indexed, unbonding, "the delegator index matches the queue");
    let by_validator: Amount = s
        .validators()
        .unwrap()
        .iter()
        .flat_map(|v| s.unbonding_from(&v.operator).unwrap())
        .map(|(_, e)| e.amount)
        .sum();
    assert_eq!(
        by_validator, unbonding,
        "the validator index matches the queue"
    );
    // The reward reserve covers every claim.
    let claimable: Amount = ["v0", "v1", "d0", "d1"]
        .iter()
        .map(|k| super::rewards::claimable(s, &addr(k)).unwrap())
        .sum();
    let reserve = s.reward_reserve().unwrap();
    assert!(
        claimable <= reserve,
        "{claimable} claimable > {reserve} reserve"
    );
    balances + bonded + unbonding + fees::pool(s).unwrap() + reserve + s.slashed_burned().unwrap()
}

/// Every validator's shares are the sum of its delegations' shares, and
/// its tokens cover what they are worth (rounding leaves less than one
/// token per delegation).
fn assert_bonded_matches_delegations(s: &dyn StateRead) {
    let mut shares: BTreeMap<Address, u128> = BTreeMap::new();
    let mut sums: BTreeMap<Address, (Amount, u128)> = BTreeMap::new();
    for d in ["v0", "v1", "d0", "d1"] {
        for (v, record) in s.delegation_records_of(&addr(d)).unwrap() {
            assert!(
                record.shares > 0 || record.rewards > 0,
                "empty delegations are deleted"
            );
            *shares.entry(v).or_default() += record.shares;
        }
        for (v, amount) in s.delegations_of(&addr(d)).unwrap() {
            let e = sums.entry(v).or_default();
            e.0 += amount;
            e.1 += 1;
        }
    }
    let approved: Vec<Address> = s
        .validators()
        .unwrap()
        .iter()
        .filter(|v| v.approved)
        .map(|v| v.operator)
        .collect();
    assert_eq!(
        s.approved_operators().unwrap(),
        approved,
        "the approved index"
    );
    for v in s.validators().unwrap() {
        assert_eq!(
            shares.get(&v.operator).copied().unwrap_or(0),
            v.shares,
            "{}",
            v.operator
        );
        let (worth, count) = sums.get(&v.operator).copied().unwrap_or((0, 0));
        assert!(
            worth <= v.bonded && v.bonded - worth <= count,
            "{}: delegations worth {worth}, {} bonded",
            v.operator,
            v.bonded
        );
        if v.shares == 0 {
            assert_eq!(v.bonded, 0, "no shares, no tokens");
        }
    }
}

#[test]
fn without_a_staking_section_nothing_is_written_and_actions_are_refused() {
    let with_none = genesis(&app_state(None));
    let changes = with_none.into_changes();
    assert!(
        changes.iter().all(|(k, _)| !k.starts_with("staking/")),
        "no staking state"
    );
    let mut s = genesis(&app_state(None));
    let code = act(
        &mut s,
        "d0",
        Action::RegisterValidator {
            consensus_key: consensus("d0"),
            name: "d0".into(),
            website: String::new(),
            commission_bps: 0,
        },
    );
    assert_eq!(code, Err(TxCode::InvalidTransaction));
    for h in 1..=4 {
        assert_eq!(
            block(&mut s, h),
            EndBlock::default(),
            "no updates, no events"
        );
    }
}

#[test]
fn genesis_bonds_from_balances_and_records_the_initial_set() {
    let s = genesis(&app_state(Some(params())));
    assert_eq!(s.account(&addr("v0")).unwrap().balance, BALANCE - 100);
    assert_eq!(s.delegation(&addr("v0"), &addr("v0")).unwrap(), 100);
    let v = s.validator(&addr("v1")).unwrap().unwrap();
    assert!(v.approved);
    assert_eq!(v.bonded, 100);
    let set = s.active_set().unwrap();
    assert_eq!(set.len(), 2);
    assert!(set.iter().all(|v| v.power == 100));
    assert_eq!(supply(&s), 4 * BALANCE);
}

#[test]
fn the_staking_lifecycle_through_blocks() {
    let mut s = genesis(&app_state(Some(params())));
    let (v0, v1, d0) = (addr("v0"), addr("v1"), addr("d0"));

    // Height 1: d0 registers (unapproved) and bonds a lot to itself; d1
    // delegates to v0. Refusals carry their own codes.
    begin(&mut s, 1);
    let register = |seed: &str, key_seed: &str| Action::RegisterValidator {
        consensus_key: consensus(key_seed),
        name: seed.into(),
        website: "https://example.org".into(),
        commission_bps: 1_000,
    };
    assert_eq!(act(&mut s, "d0", register("d0", "d0")), Ok(()));
    assert_eq!(
        act(&mut s, "d0", register("d0", "other")),
        Err(TxCode::ValidatorExists)
    );
    assert_eq!(
        act(&mut s, "d1", register("d1", "v0")),
        Err(TxCode::ValidatorExists),
        "a consensus key serves one validator"
    );
    assert_eq!(
        act(
            &mut s,
            "d1",
            Action::RegisterValidator {
                // No curve point has y = 2.
                consensus_key: {
                    let mut k = [0u8; 32];
                    k[0] = 2;
                    k
                },
                name: "bad".into(),
                website: String::new(),
                commission_bps: 0,
            }
        ),
        Err(TxCode::InvalidTransaction)
    );
    let delegate = |v: Address, amount| Action::Delegate {
        validator: v,
        amount,
    };
    assert_eq!(act(&mut s, "d0", delegate(d0, 10_000)), Ok(()));
    assert_eq!(act(&mut s, "d1", delegate(v0, 50)), Ok(()));
    assert_eq!(
        act(&mut s, "d1", delegate(addr("nobody"), 5)),
        Err(TxCode::UnknownValidator)
    );
    assert_eq!(
        act(&mut s, "d1", delegate(v0, BALANCE)),
        Err(TxCode::InsufficientFunds)
    );
    assert_eq!(
        act(&mut s, "d1", delegate(v0, 0)),
        Err(TxCode::InvalidTransaction)
    );
    assert!(end(&mut s, 1).validator_updates.is_empty(), "not an epoch");

    // Height 2 is an epoch: v0 rises to 150; d0, unapproved, stays out
    // despite the largest stake.
    let end_2 = block(&mut s, 2);
    assert_eq!(end_2.validator_updates, vec![(consensus("v0"), 150)]);
    assert!(s.active_set().unwrap().iter().all(|v| v.operator != d0));

    // Height 3: d1 unbonds 20 from v0 (returns at the end of 3 + 3 = 6)
    // and moves 30 from v0 to v1.
    begin(&mut s, 3);
    let before = s.account(&addr("d1")).unwrap().balance;
    let undelegate = |v: Address, amount| Action::Undelegate {
        validator: v,
        amount,
    };
    assert_eq!(
        act(&mut s, "d1", undelegate(v0, 51)),
        Err(TxCode::InsufficientStake)
    );
    assert_eq!(act(&mut s, "d1", undelegate(v0, 20)), Ok(()));
    assert_eq!(
        act(
            &mut s,
            "d1",
            Action::Redelegate {
                from: v0,
                to: v0,
                amount: 1
            }
        ),
        Err(TxCode::InvalidTransaction)
    );
    assert_eq!(
        act(
            &mut s,
            "d1",
            Action::Redelegate {
                from: v0,
                to: v1,
                amount: 31
            }
        ),
        Err(TxCode::InsufficientStake)
    );
    assert_eq!(
        act(
            &mut s,
            "d1",
            Action::Redelegate {
                from: v0,
                to: v1,
                amount: 30
            }
        ),
        Ok(())
    );
    assert_eq!(s.delegation(&addr("d1"), &v0).unwrap(), 0);
    assert!(s.delegations_of(&addr("d1")).unwrap() == vec![(v1, 30)]);
    assert_eq!(s.unbonding_at(6).unwrap().len(), 1);
    assert_eq!(
        super::query::unbonding(&s, &addr("d1")).unwrap(),
        vec![super::query::UnbondingView {
            validator: v0,
            amount: 20,
            completion_height: 6
        }]
    );
    end(&mut s, 3);

    // Height 4 (epoch): v0 back to 100, v1 at 130.
    let end_4 = block(&mut s, 4);
    let mut expect = vec![(consensus("v0"), 100), (consensus("v1"), 130)];
    expect.sort();
    assert_eq!(end_4.validator_updates, expect);
    block(&mut s, 5);
    assert_eq!(s.account(&addr("d1")).unwrap().balance, before);
    let end_6 = block(&mut s, 6);
    assert_eq!(
        s.account(&addr("d1")).unwrap().balance,
        before + 20,
        "released"
    );
    assert!(s.unbonding_at(6).unwrap().is_empty());
    assert!(super::query::unbonding(&s, &addr("d1")).unwrap().is_empty());
    assert!(end_6.validator_updates.is_empty(), "nothing changed");
    assert!(end_6
        .events
        .iter()
        .any(|e| e.kind == "staking.unbonding_released"));

    // v0's operator unbonds below min_self_bond: it leaves the set at the
    // next epoch with a removal of a key CometBFT knows.
    block(&mut s, 7);
    begin(&mut s, 8);
    assert_eq!(act(&mut s, "v0", undelegate(v0, 95)), Ok(()));
    let end_8 = end(&mut s, 8);
    assert_eq!(end_8.validator_updates, vec![(consensus("v0"), 0)]);
    // The last validator leaving keeps the set as it was.
    block(&mut s, 9);
    begin(&mut s, 10);
    assert_eq!(act(&mut s, "v1", undelegate(v1, 100)), Ok(()));
    let end_10 = end(&mut s, 10);
    assert!(end_10.validator_updates.is_empty(), "never empty the set");
    assert_eq!(s.active_set().unwrap().len(), 1);
    assert_eq!(supply(&s), 4 * BALANCE);
    assert_bonded_matches_delegations(&s);
}

#[derive(Debug, Clone)]
enum Op {
    Register(usize),
    Delegate(usize, usize, Amount),
    Undelegate(usize, usize, Amount),
    Redelegate(usize, usize, usize, Amount),
    NextBlock,
}

const SEEDS: [&str; 4] = ["v0", "v1", "d0", "d1"];

fn op() -> impl Strategy<Value = Op> {
    let who = 0usize..4;
    let amount = prop_oneof![0u128..200, Just(BALANCE), Just(Amount::MAX)];
    prop_oneof![
        who.clone().prop_map(Op::Register),
        (who.clone(), who.clone(), amount.clone()).prop_map(|(a, b, x)| Op::Delegate(a, b, x)),
        (who.clone(), who.clone(), amount.clone()).prop_map(|(a, b, x)| Op::Undelegate(a, b, x)),
        (who.clone(), who.clone(), who, amount).prop_map(|(a, b, c, x)| Op::Redelegate(a, b, c, x)),
        Just(Op::NextBlock),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn supply_is_conserved_and_updates_are_safe(
        ops in prop::collection::vec(op(), 1..60),
        cap_bps in prop_oneof![Just(10_000u16), 3_000u16..10_000],
    ) {
        let mut s = genesis(&app_state(Some(StakingParams {
            max_power_share_bps: cap_bps,
            ..params()
        })));
        let initial = supply(&s);
        // CometBFT's view of the set: the genesis set, then every update.
        let mut cometbft: BTreeMap<[u8; 32], u64> = s
            .active_set()
            .unwrap()
            .iter()
            .map(|v| (v.consensus_key, v.power))
            .collect();
        let mut height = 1;
        begin(&mut s, height);
        for op in ops {
            let _ = match op {
                Op::Register(i) => act(&mut s, SEEDS[i], Action::RegisterValidator {
                    consensus_key: consensus(SEEDS[i]),
                    name: SEEDS[i].into(),
                    website: String::new(),
                    commission_bps: 0,
                }),
                Op::Delegate(i, v, amount) => act(&mut s, SEEDS[i], Action::Delegate {
                    validator: addr(SEEDS[v]),
                    amount,
                }),
                Op::Undelegate(i, v, amount) => act(&mut s, SEEDS[i], Action::Undelegate {
                    validator: addr(SEEDS[v]),
                    amount,
                }),
                Op::Redelegate(i, f, t, amount) => act(&mut s, SEEDS[i], Action::Redelegate {
                    from: addr(SEEDS[f]),
                    to: addr(SEEDS[t]),
                    amount,
                }),
                Op::NextBlock => {
                    let updates = end(&mut s, height).validator_updates;
                    height += 1;
                    begin(&mut s, height);
                    for (k, p) in updates {
                        if p == 0 {
                            prop_assert!(cometbft.remove(&k).is_some(), "removed an unknown key");
                        } else {
                            prop_assert_ne!(cometbft.insert(k, p), Some(p), "not a real change");
                        }
                    }
                    prop_assert!(!cometbft.is_empty());
                    prop_assert!(cometbft.values().map(|p| u128::from(*p)).sum::<u128>()
                        <= u128::from(MAX_TOTAL_POWER));
                    // Unapproved candidates never validate.
                    for v in s.active_set().unwrap() {
                        prop_assert!(s.validator(&v.operator).unwrap().unwrap().approved);
                    }
                    Ok(())
                }
            };
            prop_assert_eq!(supply(&s), initial);
            assert_bonded_matches_delegations(&s);
        }
        // Run past every pending completion: everything unbonding returns.
        end(&mut s, height);
        for _ in 0..=params().unbonding_blocks {
            height += 1;
            block(&mut s, height);
        }
        prop_assert!(s.prefix_raw(UNBONDING_PREFIX).unwrap().is_empty());
        prop_assert!(s.prefix_raw("staking/unbonding_by_delegator/").unwrap().is_empty());
        prop_assert_eq!(supply(&s), initial);
    }
}

#[test]
fn state_writes_stay_under_the_staking_prefix() {
    let base = genesis(&app_state(Some(params())));
    let mut s = StateDelta::new(&base);
    begin(&mut s, 1);
    act(
        &mut s,
        "d0",
        Action::Delegate {
            validator: addr("v0"),
            amount: 5,
        },
    )
    .unwrap();
    end(&mut s, 1);
    block(&mut s, 2);
    let keys: Vec<String> = s.into_changes().into_iter().map(|(k, _)| k).collect();
    assert!(
        keys.iter().all(|k| k.starts_with("staking/")
            || k.starts_with("accounts/")
            || k.starts_with("chain/")),
        "{keys:?}"
    );
}

#[test]
fn a_signed_delegation_through_the_block_path_moves_power_at_the_epoch() {
    use crate::{proposal::BlockExecution, storage::StateWrite, transaction::check_stateless};
    use weft_core::Transaction;

    let base = genesis(&app_state(Some(params())));
    let fee = ChainParams::default().base_fee;
    let tx = Transaction {
        chain_id: "staking".into(),
        nonce: 0,
        actions: vec![Action::Delegate {
            validator: addr("v1"),
            amount: 400,
        }],
    }
    .sign(&key("d0"));
    let checked = check_stateless(&tx.encode(), "staking").unwrap();
    // Height 2 is an epoch: the delegation and the new power land in the
    // same block, as in PrepareProposal, ProcessProposal and FinalizeBlock.
    let mut exec = BlockExecution::new(
        &base,
        crate::app::standard_components(0),
        BlockContext::at_height(2),
    )
    .unwrap();
    exec.apply(&checked).unwrap();
    let block = exec.finish().unwrap();
    assert_eq!(block.end.validator_updates, vec![(consensus("v1"), 500)]);
    // The committed state after the block: genesis, then the block's
    // changes on top.
    let mut after = StateDelta::new(EmptyState);
    for (k, v) in genesis(&app_state(Some(params()))).into_changes() {
        if let Some(v) = v {
            after.put_raw(k, v);
        }
    }
    for (k, v) in block.changes {
        match v {
            Some(v) => after.put_raw(k, v),
            None => after.delete(k),
        }
    }
    assert_eq!(
        after.account(&addr("d0")).unwrap().balance,
        BALANCE - 400 - fee
    );
    assert_eq!(supply(&after), 4 * BALANCE, "the fee is in the pool");
}

/// The whole ABCI flow against the real app and store, without CometBFT:
/// a genesis with a staking section, a delegation through CheckTx and a
/// block, and the validator update in FinalizeBlock's response at the
/// epoch.
mod through_the_app {
    use bytes::Bytes;
    use tendermint::{
        abci::{
            request::CheckTxKind,
            response::{self as resp},
        },
        v0_38::abci::{request, Request, Response},
        Time,
    };
    use weft_core::{Action, SigningKey, Transaction, TxCode};

    use super::{addr, app_state, consensus, key, params};
    use crate::{
        app::{App, AppConfig},
        Storage,
    };

    const CHAIN: &str = "staking";

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
    fn finalize_block_returns_the_epoch_update() {
        let dir = tempfile::tempdir().unwrap();
        let mut app = App::new(Storage::open(dir.path()).unwrap(), AppConfig::default()).unwrap();
        let genesis = app_state(Some(params()));
        let r = app.handle(Request::InitChain(request::InitChain {
            time: Time::from_unix_timestamp(1_700_000_000, 0).unwrap(),
            chain_id: CHAIN.into(),
            consensus_params: consensus_params(),
            validators: vec![],
            app_state_bytes: serde_json::to_vec(&genesis).unwrap().into(),
            initial_height: 1u32.into(),
        }));
        match r {
            // InitChain returns the genesis active set (docs/governance.md).
            Response::InitChain(r) => {
                let mut set: Vec<([u8; 32], u64)> = r
                    .validators
                    .iter()
                    .map(|u| (u.pub_key.to_bytes().try_into().unwrap(), u.power.value()))
                    .collect();
                set.sort();
                let mut expected = vec![(consensus("v0"), 100), (consensus("v1"), 100)];
                expected.sort();
                assert_eq!(set, expected);
            }
            other => panic!("{other:?}"),
        }

        let d0 = key("d0");
        let unknown = signed(
            &d0,
            0,
            Action::Delegate {
                validator: addr("nobody"),
                amount: 5,
            },
        );
        assert_eq!(check(&mut app, &unknown), TxCode::UnknownValidator.value());
        let delegate = signed(
            &d0,
            0,
            Action::Delegate {
                validator: addr("v1"),
                amount: 400,
            },
        );
        assert_eq!(check(&mut app, &delegate), TxCode::Ok.value());

        let fin = run_block(&mut app, 1, vec![Bytes::from(delegate)]);
        assert_eq!(fin.tx_results.len(), 2, "commitments item and the tx");
        assert!(fin.tx_results[1].code.is_ok(), "{}", fin.tx_results[1].log);
        assert!(fin.validator_updates.is_empty(), "not an epoch");

        let fin = run_block(&mut app, 2, vec![]);
        let updates: Vec<([u8; 32], i64)> = fin
            .validator_updates
            .iter()
            .map(|u| {
                let key: [u8; 32] = u.pub_key.to_bytes().try_into().unwrap();
                (key, u.power.value() as i64)
            })
            .collect();
        assert_eq!(updates, vec![(consensus("v1"), 500)]);
        assert!(run_block(&mut app, 3, vec![]).validator_updates.is_empty());
        assert!(
            run_block(&mut app, 4, vec![]).validator_updates.is_empty(),
            "nothing changed: no update"
        );
    }
}

/// Economics tests: slashing, jailing, rewards, edits, driven through the
/// real components with block contexts carrying evidence and commit
/// votes.
mod economics {
    use super::*;
    use crate::component::{CommitVote, LastCommit, Misbehavior, MisbehaviorKind};
    use crate::staking::state::StakingWrite;
    use crate::staking::{query, rewards, state::cometbft_address};

    /// Short windows: a 4-height downtime window allowing 2 misses, jail
    /// for 3 blocks, epochs of 4, 10 % for double-signing, 1 % for
    /// downtime, commission moves of at most 200 bps.
    pub(super) fn econ_params() -> StakingParams {
        StakingParams {
            unbonding_blocks: 10,
            epoch_blocks: 4,
            max_validators: 4,
            max_power_share_bps: 10_000,
            min_self_bond: 10,
            slash_double_sign_bps: 1_000,
            slash_downtime_bps: 100,
            downtime_window_blocks: 4,
            downtime_max_missed_bps: 5_000,
            jail_blocks: 3,
            max_commission_change_bps: 200,
        }
    }

    /// A block context at `height` whose previous commit has every member
    /// of the stored active set, signed unless listed in `missing`, and
    /// the given evidence.
    pub(super) fn ctx<S: StateRead>(
        s: &StateDelta<S>,
        height: u64,
        missing: &[Address],
        misbehavior: Vec<Misbehavior>,
    ) -> BlockContext {
        let mut c = BlockContext::at_height(height);
        c.last_commit = LastCommit {
            round: 0,
            votes: s
                .active_set()
                .unwrap()
                .iter()
                .map(|v| CommitVote {
                    validator: cometbft_address(&v.consensus_key),
                    power: v.power,
                    signed: !missing.contains(&v.operator),
                })
                .collect(),
        };
        c.misbehavior = misbehavior;
        c
    }

    pub(super) fn duplicate_vote(seed: &str, offense_height: u64) -> Misbehavior {
        Misbehavior {
            kind: MisbehaviorKind::DuplicateVote,
            validator: cometbft_address(&consensus(seed)),
            power: 1,
            height: offense_height,
            total_voting_power: 1,
        }
    }

    pub(super) fn begin_ctx<S: StateRead>(s: &mut StateDelta<S>, c: &BlockContext) {
        crate::app::standard_components(0)
            .begin_block(s, c)
            .unwrap();
    }

    pub(super) fn end_ctx<S: StateRead>(s: &mut StateDelta<S>, c: &BlockContext) -> EndBlock {
        crate::app::standard_components(0)
            .end_block(s, c, &BlockSummary::default())
            .unwrap()
    }

    fn delegate(v: &str, amount: Amount) -> Action {
        Action::Delegate {
            validator: addr(v),
            amount,
        }
    }

    fn undelegate(v: &str, amount: Amount) -> Action {
        Action::Undelegate {
            validator: addr(v),
            amount,
        }
    }

    fn has_event(end: &EndBlock, kind: &str) -> bool {
        end.events.iter().any(|e| e.kind == kind)
    }

    #[test]
    fn evidence_slashes_every_delegator_and_later_unbonding_and_tombstones() {
        let mut s = genesis(&app_state(Some(econ_params())));
        let initial = supply(&s);
        begin(&mut s, 1);
        act(&mut s, "d0", delegate("v0", 100)).unwrap();
        act(&mut s, "d1", delegate("v0", 50)).unwrap();
        // Left before the offense (height 2): not slashable.
        act(&mut s, "d1", undelegate("v0", 20)).unwrap();
        end(&mut s, 1);
        block(&mut s, 2);
        begin(&mut s, 3);
        // Left after the offense: slashable.
        act(&mut s, "d0", undelegate("v0", 40)).unwrap();
        end(&mut s, 3);
        block(&mut s, 4);
        let v0_key = consensus("v0");
        assert!(s
            .active_set()
            .unwrap()
            .iter()
            .any(|v| v.consensus_key == v0_key));

        // Height 5: evidence of a duplicate vote at height 2.
        let c = ctx(&s, 5, &[], vec![duplicate_vote("v0", 2)]);
        begin_ctx(&mut s, &c);
        let out = end_ctx(&mut s, &c);
        // Out of CometBFT's set in this very block, not at the epoch.
        assert_eq!(out.validator_updates, vec![(v0_key, 0)]);
        assert!(has_event(&out, "staking.slash"));
        let v = s.validator(&addr("v0")).unwrap().unwrap();
        assert!(v.tombstoned && v.is_jailed());
        // 190 bonded lose 10 % = 19; d0's 40 unbonding lose 4; d1's 20
        // (unbonded before the offense) keep everything.
        assert_eq!(v.bonded, 171);
        assert_eq!(s.delegation(&addr("v0"), &addr("v0")).unwrap(), 90);
        assert_eq!(s.delegation(&addr("d0"), &addr("v0")).unwrap(), 54);
        assert_eq!(s.delegation(&addr("d1"), &addr("v0")).unwrap(), 27);
        let unbonding = |seed: &str| -> Vec<Amount> {
            s.unbonding_of(&addr(seed))
                .unwrap()
                .iter()
                .map(|(_, e)| e.amount)
                .collect()
        };
        assert_eq!(unbonding("d0"), vec![36]);
        assert_eq!(unbonding("d1"), vec![20]);
        assert_eq!(s.slashed_burned().unwrap(), 23);
        assert_eq!(supply(&s), initial, "what was slashed is burned, not lost");
        assert_bonded_matches_delegations(&s);

        // Tombstoned: Unjail is refused for good, later evidence is
        // ignored, and the epoch does not bring it back.
        begin(&mut s, 6);
        assert_eq!(
            act(&mut s, "v0", Action::Unjail {}),
            Err(TxCode::ValidatorTombstoned)
        );
        end(&mut s, 6);
        let c = ctx(&s, 7, &[], vec![duplicate_vote("v0", 6)]);
        begin_ctx(&mut s, &c);
        let out = end_ctx(&mut s, &c);
        assert!(out.validator_updates.is_empty());
        assert_eq!(s.slashed_burned().unwrap(), 23, "punished once");
        let out = block(&mut s, 8);
        assert!(
            out.validator_updates.is_empty(),
            "{:?}",
            out.validator_updates
        );
        assert!(!s
            .active_set()
            .unwrap()
            .iter()
            .any(|v| v.consensus_key == v0_key));
        // The delegators can still leave (and their stake returns).
        begin(&mut s, 9);
        act(&mut s, "d0", undelegate("v0", 54)).unwrap();
        end(&mut s, 9);
        assert_eq!(s.delegation(&addr("d0"), &addr("v0")).unwrap(), 0);
        assert_eq!(supply(&s), initial);
    }

    fn redelegate(from: &str, to: &str, amount: Amount) -> Action {
        Action::Redelegate {
            from: addr(from),
            to: addr(to),
            amount,
        }
    }

    fn redelegation_keys<S: StateRead>(s: &StateDelta<S>) -> usize {
        s.prefix_raw("staking/redelegations/").unwrap().len()
            + s.prefix_raw("staking/redelegation_queue/").unwrap().len()
    }

    #[test]
    fn stake_redelegated_away_at_or_after_the_offense_is_slashed_where_it_went() {
        let mut s = genesis(&app_state(Some(econ_params())));
        let initial = supply(&s);
        begin(&mut s, 1);
        act(&mut s, "d0", delegate("v0", 100)).unwrap();
        act(&mut s, "d1", delegate("v0", 100)).unwrap();
        // Moved before the offense (height 3): out of reach.
        act(&mut s, "d1", redelegate("v0", "v1", 30)).unwrap();
        end(&mut s, 1);
        block(&mut s, 2);
        begin(&mut s, 3);
        // Moved in the offense's own block: it was bonded to v0 while v0
        // voted for height 3, so it is slashed at v1.
        act(&mut s, "d0", redelegate("v0", "v1", 50)).unwrap();
        end(&mut s, 3);
        block(&mut s, 4);
        // v1: 100 self-bond + 30 + 50, one share per token (never slashed).
        assert_eq!(s.validator(&addr("v1")).unwrap().unwrap().bonded, 180);
        assert_eq!(s.redelegations_from(&addr("v0")).unwrap().len(), 2);

        let c = ctx(&s, 5, &[], vec![duplicate_vote("v0", 3)]);
        begin_ctx(&mut s, &c);
        end_ctx(&mut s, &c);
        // v0 had 100 + 100 + 100 - 30 - 50 = 220 bonded: 22 burned. d0's
        // 50 at v1 lose 10 % (5); d1's 30 keep everything; v1's own
        // stake is untouched.
        assert_eq!(s.validator(&addr("v0")).unwrap().unwrap().bonded, 198);
        let v1 = s.validator(&addr("v1")).unwrap().unwrap();
        assert_eq!((v1.bonded, v1.shares), (175, 175));
        assert!(!v1.tombstoned && !v1.is_jailed(), "v1 did nothing wrong");
        assert_eq!(s.delegation(&addr("d0"), &addr("v1")).unwrap(), 45);
        assert_eq!(s.delegation(&addr("d1"), &addr("v1")).unwrap(), 30);
        assert_eq!(s.delegation(&addr("v1"), &addr("v1")).unwrap(), 100);
        assert_eq!(s.slashed_burned().unwrap(), 27);
        assert_eq!(supply(&s), initial, "what was slashed is burned");
        assert_bonded_matches_delegations(&s);
        // The entry keeps what is left of it.
        let entries = s.redelegations_from(&addr("v0")).unwrap();
        let d0_entry = entries
            .iter()
            .find(|(_, e)| e.delegator == addr("d0"))
            .unwrap();
        assert_eq!(
            (
                d0_entry.0,
                d0_entry.1.shares,
                d0_entry.1.initial_balance,
                d0_entry.1.created
            ),
            (13, 45, 45, 3)
        );

        // Entries expire after unbonding_blocks (10): d1's at 11, d0's
        // at 13; nothing of them is left.
        for h in 6..=11 {
            block(&mut s, h);
        }
        assert_eq!(s.redelegations_from(&addr("v0")).unwrap().len(), 1);
        for h in 12..=13 {
            block(&mut s, h);
        }
        assert_eq!(redelegation_keys(&s), 0);
        assert_eq!(supply(&s), initial);
    }

    #[test]
    fn redelegations_to_one_place_at_one_height_share_an_entry() {
        let mut s = genesis(&app_state(Some(econ_params())));
        begin(&mut s, 1);
        act(&mut s, "d0", delegate("v0", 100)).unwrap();
        act(&mut s, "d0", redelegate("v0", "v1", 10)).unwrap();
        act(&mut s, "d0", redelegate("v0", "v1", 20)).unwrap();
        end(&mut s, 1);
        let entries = s.redelegations_from(&addr("v0")).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(
            (entries[0].1.initial_balance, entries[0].1.shares),
            (30, 30)
        );
        // And an offense after them does not reach them.
        let c = ctx(&s, 2, &[], vec![duplicate_vote("v0", 2)]);
        begin_ctx(&mut s, &c);
        end_ctx(&mut s, &c);
        assert_eq!(s.delegation(&addr("d0"), &addr("v1")).unwrap(), 30);
    }

    #[test]
    fn a_tombstoned_validator_takes_no_new_stake_but_stake_may_leave_it() {
        let mut s = genesis(&app_state(Some(econ_params())));
        begin(&mut s, 1);
        act(&mut s, "d0", delegate("v0", 100)).unwrap();
        act(&mut s, "d1", delegate("v1", 100)).unwrap();
        end(&mut s, 1);
        let c = ctx(&s, 2, &[], vec![duplicate_vote("v0", 1)]);
        begin_ctx(&mut s, &c);
        end_ctx(&mut s, &c);
        assert!(s.validator(&addr("v0")).unwrap().unwrap().tombstoned);

        begin(&mut s, 3);
        let before = s.validator(&addr("v0")).unwrap().unwrap();
        assert_eq!(
            act(&mut s, "d1", delegate("v0", 10)),
            Err(TxCode::ValidatorTombstoned)
        );
        assert_eq!(
            act(
                &mut s,
                "d1",
                Action::Redelegate {
                    from: addr("v1"),
                    to: addr("v0"),
                    amount: 10,
                }
            ),
            Err(TxCode::ValidatorTombstoned)
        );
        assert_eq!(s.validator(&addr("v0")).unwrap().unwrap(), before);
        // Leaving is still allowed: redelegating away and undelegating.
        act(
            &mut s,
            "d0",
            Action::Redelegate {
                from: addr("v0"),
                to: addr("v1"),
                amount: 50,
            },
        )
        .unwrap();
        // (90 left after the 10 % slash.)
        act(&mut s, "d0", undelegate("v0", 30)).unwrap();
        // A healthy validator still takes stake.
        act(&mut s, "d1", delegate("v1", 10)).unwrap();
        end(&mut s, 3);
    }

    #[test]
    fn uptime_counts_only_the_heights_since_a_validator_joined() {
        let mut s = genesis(&app_state(Some(StakingParams {
            downtime_window_blocks: 100,
            ..econ_params()
        })));
        let d0 = addr("d0");
        // d0 registers, bonds and is approved (governance's part, written
        // directly here); it joins at the epoch of height 4.
        begin(&mut s, 1);
        act(
            &mut s,
            "d0",
            Action::RegisterValidator {
                consensus_key: consensus("d0"),
                name: "d0".into(),
                website: String::new(),
                commission_bps: 0,
            },
        )
        .unwrap();
        act(&mut s, "d0", delegate("d0", 100)).unwrap();
        let mut v = s.validator(&d0).unwrap().unwrap();
        v.approved = true;
        s.put_validator(&v).unwrap();
        end(&mut s, 1);
        for h in 2..=4 {
            block(&mut s, h);
        }
        assert!(s.active_set().unwrap().iter().any(|v| v.operator == d0));
        // CometBFT has it from height 6: it is judged from there.
        assert_eq!(s.active_since(&d0).unwrap(), Some(6));
        assert_eq!(s.active_since(&addr("v0")).unwrap(), Some(1));
        for h in 5..=7 {
            block(&mut s, h);
        }
        // It misses height 7 (judged in block 8); block 9 judges 8.
        let c = ctx(&s, 8, &[d0], vec![]);
        begin_ctx(&mut s, &c);
        end_ctx(&mut s, &c);
        block(&mut s, 9);
        // Heights 6, 7, 8 judged, one missed: 2/3, not 99/100 of the
        // window it was not in.
        let view = query::validator(&s, &d0).unwrap().unwrap();
        assert_eq!((view.missed_blocks, view.uptime_bps), (1, 6_666));
        // A genesis member that missed nothing: 8 heights, all signed.
        let view = query::validator(&s, &addr("v1")).unwrap().unwrap();
        assert_eq!(view.uptime_bps, 10_000);
        // Leaving the set drops the record: tombstoned by evidence.
        let c = ctx(&s, 10, &[], vec![duplicate_vote("d0", 9)]);
        begin_ctx(&mut s, &c);
        end_ctx(&mut s, &c);
        assert_eq!(s.active_since(&d0).unwrap(), None);
    }

    #[test]
    fn downtime_jails_at_once_and_unjail_returns_at_the_next_epoch() {
        let mut s = genesis(&app_state(Some(econ_params())));
        let initial = supply(&s);
        let (v0, v0_key) = (addr("v0"), consensus("v0"));
        for h in 1..=4 {
            block(&mut s, h);
        }
        // v0 misses heights 4 and 5: two of the window's four, allowed.
        for h in [5, 6] {
            let c = ctx(&s, h, &[v0], vec![]);
            begin_ctx(&mut s, &c);
            assert!(end_ctx(&mut s, &c).validator_updates.is_empty());
        }
        let view = query::validator(&s, &v0).unwrap().unwrap();
        assert_eq!((view.missed_blocks, view.uptime_bps), (2, 5_000));
        assert!(!view.jailed);
        // A third miss (height 6) in the window: slashed 1 % and jailed,
        // out of CometBFT's set in this block (7 is not an epoch).
        let c = ctx(&s, 7, &[v0], vec![]);
        begin_ctx(&mut s, &c);
        let out = end_ctx(&mut s, &c);
        assert_eq!(out.validator_updates, vec![(v0_key, 0)]);
        assert!(has_event(&out, "staking.slash"));
        let v = s.validator(&v0).unwrap().unwrap();
        assert_eq!(
            (v.bonded, v.jailed_until, v.tombstoned),
            (99, Some(10), false)
        );
        assert_eq!(s.slashed_burned().unwrap(), 1);
        assert_eq!(supply(&s), initial);
        // The epoch at 8 leaves it out; its own misses no longer count.
        let c = ctx(&s, 8, &[v0], vec![]);
        begin_ctx(&mut s, &c);
        assert!(end_ctx(&mut s, &c).validator_updates.is_empty());
        assert_eq!(s.slashed_burned().unwrap(), 1);

        begin(&mut s, 9);
        assert_eq!(
            act(&mut s, "v0", Action::Unjail {}),
            Err(TxCode::ValidatorJailed),
            "the jail period runs until height 10"
        );
        assert_eq!(act(&mut s, "v1", Action::Unjail {}), Err(TxCode::NotJailed));
        assert_eq!(
            act(&mut s, "d0", Action::Unjail {}),
            Err(TxCode::UnknownValidator)
        );
        end(&mut s, 9);
        begin(&mut s, 10);
        assert_eq!(act(&mut s, "v0", Action::Unjail {}), Ok(()));
        let out = end(&mut s, 10);
        assert!(
            out.validator_updates.is_empty(),
            "back at the epoch, not now"
        );
        assert!(!query::validator(&s, &v0).unwrap().unwrap().jailed);
        block(&mut s, 11);
        assert_eq!(block(&mut s, 12).validator_updates, vec![(v0_key, 99)]);
        assert_bonded_matches_delegations(&s);
    }

    #[test]
    fn jailing_never_empties_the_set() {
        let mut s = genesis(&app_state(Some(econ_params())));
        let everyone = [addr("v0"), addr("v1")];
        block(&mut s, 1);
        let mut last = EndBlock::default();
        for h in 2..=4 {
            let c = ctx(&s, h, &everyone, vec![]);
            begin_ctx(&mut s, &c);
            last = end_ctx(&mut s, &c);
        }
        // Both missed three heights at 4 (an epoch): jailed, but the set
        // stays as it is rather than empty.
        assert!(s.validator(&addr("v0")).unwrap().unwrap().is_jailed());
        assert!(s.validator(&addr("v1")).unwrap().unwrap().is_jailed());
        assert!(last.validator_updates.is_empty());
        assert_eq!(s.active_set().unwrap().len(), 2);
        // Between epochs too: evidence against the kept set changes nothing.
        let c = ctx(&s, 5, &[], vec![duplicate_vote("v0", 4)]);
        begin_ctx(&mut s, &c);
        let out = end_ctx(&mut s, &c);
        assert!(out.validator_updates.is_empty());
        assert!(has_event(&out, "staking.jailed_kept_in_set"));
        assert_eq!(s.active_set().unwrap().len(), 2);
    }

    #[test]
    fn rewards_split_by_power_and_commission_and_are_claimed() {
        let mut s = genesis(&app_state(Some(econ_params())));
        let initial = supply(&s);
        begin(&mut s, 1);
        // d0 doubles v1's stake; the set (100/100) moves at the epoch.
        act(&mut s, "d0", delegate("v1", 100)).unwrap();
        assert_eq!(
            act(&mut s, "d0", Action::ClaimRewards {}),
            Err(TxCode::NothingToClaim)
        );
        // One million (and one, for dust) paid into the pool.
        rewards::pay_into_reward_pool(&mut s, &addr("d1"), 1_000_001).unwrap();
        end(&mut s, 1);
        block(&mut s, 2);
        block(&mut s, 3);
        let out = block(&mut s, 4);
        assert!(has_event(&out, "staking.rewards"));
        // Equal power: 500,000 each; 5 % commission = 25,000; the odd
        // token stays in the pool.
        assert_eq!(fees::pool(&s).unwrap(), 1);
        let v0 = s.validator(&addr("v0")).unwrap().unwrap();
        assert_eq!(v0.commission, 25_000);
        let claim = |s: &StateDelta<_>, seed: &str| rewards::claimable(s, &addr(seed)).unwrap();
        // v0 alone holds its 475,000; v1 and d0 split theirs in half.
        assert_eq!(claim(&s, "v0"), 500_000);
        assert_eq!(claim(&s, "v1"), 25_000 + 237_500);
        assert_eq!(claim(&s, "d0"), 237_500);
        let d0_view = query::delegations(&s, &addr("d0")).unwrap();
        assert_eq!(d0_view[0].claimable_rewards, 237_500);
        assert_eq!(query::rewards(&s, &addr("v1")).unwrap().commission, 25_000);
        assert_eq!(supply(&s), initial);

        begin(&mut s, 5);
        let before = s.account(&addr("d0")).unwrap().balance;
        assert_eq!(act(&mut s, "d0", Action::ClaimRewards {}), Ok(()));
        assert_eq!(s.account(&addr("d0")).unwrap().balance, before + 237_500);
        assert_eq!(
            act(&mut s, "d0", Action::ClaimRewards {}),
            Err(TxCode::NothingToClaim)
        );
        let before = s.account(&addr("v0")).unwrap().balance;
        assert_eq!(act(&mut s, "v0", Action::ClaimRewards {}), Ok(()));
        assert_eq!(s.account(&addr("v0")).unwrap().balance, before + 500_000);
        assert_eq!(s.validator(&addr("v0")).unwrap().unwrap().commission, 0);
        // v1 undelegates everything: its rewards are settled and kept
        // until claimed.
        assert_eq!(act(&mut s, "v1", undelegate("v1", 100)), Ok(()));
        assert_eq!(claim(&s, "v1"), 262_500);
        end(&mut s, 5);
        assert_eq!(supply(&s), initial);

        // The next epoch pays by the new powers (v0 100, v1 200): 1/3 and
        // 2/3 of 300,000 (+ the 1 left over); v1's delegators are d0 only
        // now.
        begin(&mut s, 6);
        rewards::pay_into_reward_pool(&mut s, &addr("d1"), 300_000).unwrap();
        end(&mut s, 6);
        block(&mut s, 7);
        block(&mut s, 8);
        // v0: 100,000 share (5,000 commission); v1: 200,000 (10,000).
        assert_eq!(claim(&s, "v0"), 100_000);
        assert_eq!(claim(&s, "d0"), 190_000);
        assert_eq!(claim(&s, "v1"), 262_500 + 10_000);
        for seed in ["v0", "v1", "d0"] {
            begin(&mut s, 9);
            act(&mut s, seed, Action::ClaimRewards {}).unwrap();
            end(&mut s, 9);
        }
        assert_eq!(supply(&s), initial);
        assert!(
            s.reward_reserve().unwrap() < 3,
            "only rounding dust is left"
        );
    }

    #[test]
    fn edit_validator_rate_limits_commission_and_sets_the_relay_key() {
        let mut s = genesis(&app_state(Some(econ_params())));
        let edit = |commission: Option<u16>| Action::EditValidator {
            name: None,
            website: None,
            commission_bps: commission,
            relay_key: None,
        };
        let relay = key("v0/relay").public_key().0;
        begin(&mut s, 1);
        assert_eq!(
            act(&mut s, "v0", edit(None)),
            Err(TxCode::InvalidTransaction)
        );
        assert_eq!(
            act(&mut s, "d0", edit(Some(500))),
            Err(TxCode::UnknownValidator)
        );
        // 500 -> 800 moves 300 > 200.
        assert_eq!(
            act(&mut s, "v0", edit(Some(800))),
            Err(TxCode::CommissionChangeRefused)
        );
        assert_eq!(
            act(&mut s, "v0", edit(Some(10_001))),
            Err(TxCode::InvalidTransaction)
        );
        let mut bad_key = [0u8; 32];
        bad_key[0] = 1;
        assert_eq!(
            act(
                &mut s,
                "v0",
                Action::EditValidator {
                    name: None,
                    website: None,
                    commission_bps: None,
                    relay_key: Some(bad_key),
                }
            ),
            Err(TxCode::InvalidTransaction)
        );
        assert_eq!(
            act(
                &mut s,
                "v0",
                Action::EditValidator {
                    name: Some("renamed".into()),
                    website: Some("https://v0.example".into()),
                    commission_bps: Some(700),
                    relay_key: Some(relay),
                }
            ),
            Ok(())
        );
        end(&mut s, 1);
        // A second change in the same epoch (heights 1..3 are epoch 0 by
        // the recorded height) is refused; the same value is no change.
        begin(&mut s, 2);
        assert_eq!(
            act(&mut s, "v0", edit(Some(600))),
            Err(TxCode::CommissionChangeRefused)
        );
        assert_eq!(act(&mut s, "v0", edit(Some(700))), Ok(()));
        end(&mut s, 2);
        let view = query::validator(&s, &addr("v0")).unwrap().unwrap();
        assert_eq!(
            (view.name.as_str(), view.commission_bps, view.relay_key),
            ("renamed", 700, Some(hex::encode(relay)))
        );
        for h in 3..=4 {
            block(&mut s, h);
        }
        begin(&mut s, 5);
        assert_eq!(act(&mut s, "v0", edit(Some(500))), Ok(()), "a new epoch");
        end(&mut s, 5);
    }
}

#[derive(Debug, Clone)]
enum EconOp {
    Delegate(usize, usize, Amount),
    Undelegate(usize, usize, Amount),
    Redelegate(usize, usize, usize, Amount),
    /// Evidence against validator (0 or 1) for an offense this many
    /// heights back.
    Evidence(usize, u64),
    /// The next block, with this validator's signature missing.
    Miss(usize),
    Unjail(usize),
    PayFees(usize, Amount),
    Claim(usize),
    NextBlock,
}

fn econ_op() -> impl Strategy<Value = EconOp> {
    let who = 0usize..4;
    let validator = 0usize..2;
    let amount = prop_oneof![1u128..300, Just(BALANCE), Just(Amount::MAX)];
    prop_oneof![
        (who.clone(), validator.clone(), amount.clone())
            .prop_map(|(a, b, x)| EconOp::Delegate(a, b, x)),
        (who.clone(), validator.clone(), amount.clone())
            .prop_map(|(a, b, x)| EconOp::Undelegate(a, b, x)),
        (who.clone(), validator.clone(), validator.clone(), amount)
            .prop_map(|(a, b, c, x)| EconOp::Redelegate(a, b, c, x)),
        (validator.clone(), 0u64..6).prop_map(|(v, back)| EconOp::Evidence(v, back)),
        validator.clone().prop_map(EconOp::Miss),
        validator.prop_map(EconOp::Unjail),
        (who.clone(), 1u128..1_000_000).prop_map(|(a, x)| EconOp::PayFees(a, x)),
        who.prop_map(EconOp::Claim),
        Just(EconOp::NextBlock),
        Just(EconOp::NextBlock),
    ]
}

/// Ends the open block, runs the next one's hooks with this commit and
/// evidence, applies its updates to the simulated CometBFT set and checks
/// them, and opens the block after it for transactions.
fn econ_next_block(
    s: &mut StateDelta<EmptyState>,
    height: &mut u64,
    cometbft: &mut BTreeMap<[u8; 32], u64>,
    missing: &[Address],
    evidence: Vec<crate::component::Misbehavior>,
) -> Result<(), TestCaseError> {
    use crate::component::ParamsRead;
    use economics::{begin_ctx, ctx, end_ctx};
    fn apply(
        s: &StateDelta<EmptyState>,
        cometbft: &mut BTreeMap<[u8; 32], u64>,
        updates: Vec<([u8; 32], u64)>,
    ) -> Result<(), TestCaseError> {
        for (k, p) in updates {
            if p == 0 {
                prop_assert!(cometbft.remove(&k).is_some(), "removed an unknown key");
            } else {
                prop_assert_ne!(cometbft.insert(k, p), Some(p), "not a real change");
                let owner = s.consensus_key_owner(&k).unwrap().unwrap();
                prop_assert!(
                    !s.validator(&owner).unwrap().unwrap().is_jailed(),
                    "power for a jailed validator"
                );
            }
        }
        Ok(())
    }
    // The open block's updates (it may be an epoch), then the next one's.
    let updates = end(s, *height).validator_updates;
    apply(s, cometbft, updates)?;
    *height += 1;
    let c = ctx(s, *height, missing, evidence);
    begin_ctx(s, &c);
    let updates = end_ctx(s, &c).validator_updates;
    apply(s, cometbft, updates)?;
    prop_assert!(!cometbft.is_empty());
    prop_assert!(
        cometbft.values().map(|p| u128::from(*p)).sum::<u128>() <= u128::from(MAX_TOTAL_POWER)
    );
    // The stored set is what CometBFT has.
    let stored: BTreeMap<[u8; 32], u64> = s
        .active_set()
        .unwrap()
        .iter()
        .map(|v| (v.consensus_key, v.power))
        .collect();
    prop_assert_eq!(&stored, &*cometbft);
    // The cap holds for the set, also after jailings re-capped it.
    let cap = u128::from(
        s.component_params::<StakingParams>()
            .unwrap()
            .max_power_share_bps,
    );
    let total: u128 = stored.values().map(|p| u128::from(*p)).sum();
    if stored.len() as u128 * cap >= 10_000 {
        for p in stored.values() {
            prop_assert!(
                u128::from(*p) * 10_000 <= cap * total,
                "{p} of {total} breaks the cap"
            );
        }
    } else {
        let first = stored.values().next().copied();
        prop_assert!(stored.values().all(|p| Some(*p) == first), "equal powers");
    }
    // The block after it is open for the next transactions (its end runs
    // at the next block boundary).
    *height += 1;
    begin(s, *height);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Supply (balances + bonded + unbonding + fee pool + reward reserve
    /// + burned) is conserved through random delegations, undelegations,
    /// redelegations, slashes, jailing, reward distributions and claims;
    /// the reserve covers every claim; CometBFT's simulated set never
    /// loses an unknown key, gains a power 0 or empties, and no update
    /// gives power to a jailed validator.
    #[test]
    fn economics_conserve_supply_and_keep_the_set_safe(
        ops in prop::collection::vec(econ_op(), 1..60),
        cap_bps in prop_oneof![Just(10_000u16), 3_000u16..10_000],
    ) {
        use economics::{duplicate_vote, econ_params};
        let params = StakingParams {
            max_power_share_bps: cap_bps,
            epoch_blocks: 3,
            ..econ_params()
        };
        let mut s = genesis(&app_state(Some(params.clone())));
        let initial = supply(&s);
        let mut cometbft: BTreeMap<[u8; 32], u64> = s
            .active_set()
            .unwrap()
            .iter()
            .map(|v| (v.consensus_key, v.power))
            .collect();
        let mut height = 1;
        begin(&mut s, height);
        for op in ops {
            match op {
                EconOp::Delegate(i, v, amount) => {
                    let _ = act(&mut s, SEEDS[i], Action::Delegate {
                        validator: addr(SEEDS[v]),
                        amount,
                    });
                }
                EconOp::Undelegate(i, v, amount) => {
                    let _ = act(&mut s, SEEDS[i], Action::Undelegate {
                        validator: addr(SEEDS[v]),
                        amount,
                    });
                }
                EconOp::Redelegate(i, f, t, amount) => {
                    let _ = act(&mut s, SEEDS[i], Action::Redelegate {
                        from: addr(SEEDS[f]),
                        to: addr(SEEDS[t]),
                        amount,
                    });
                }
                EconOp::Unjail(v) => {
                    let _ = act(&mut s, SEEDS[v], Action::Unjail {});
                }
                EconOp::PayFees(i, amount) => {
                    let _ = super::rewards::pay_into_reward_pool(&mut s, &addr(SEEDS[i]), amount);
                }
                EconOp::Claim(i) => {
                    let _ = act(&mut s, SEEDS[i], Action::ClaimRewards {});
                }
                EconOp::Evidence(v, back) => {
                    let offense = height.saturating_sub(back).max(1);
                    econ_next_block(
                        &mut s,
                        &mut height,
                        &mut cometbft,
                        &[],
                        vec![duplicate_vote(SEEDS[v], offense)],
                    )?;
                }
                EconOp::Miss(v) => {
                    econ_next_block(&mut s, &mut height, &mut cometbft, &[addr(SEEDS[v])], vec![])?
                }
                EconOp::NextBlock => {
                    econ_next_block(&mut s, &mut height, &mut cometbft, &[], vec![])?
                }
            }
            prop_assert_eq!(supply(&s), initial);
            assert_bonded_matches_delegations(&s);
        }
        // Claim everything and run past every unbonding: only rounding
        // dust stays in the reserve, and supply still adds up.
        for seed in SEEDS {
            let _ = act(&mut s, seed, Action::ClaimRewards {});
        }
        prop_assert_eq!(supply(&s), initial);
        // Every redelegation entry expires with the unbonding period.
        for _ in 0..=params.unbonding_blocks {
            econ_next_block(&mut s, &mut height, &mut cometbft, &[], vec![])?;
        }
        prop_assert!(s.prefix_raw("staking/redelegations/").unwrap().is_empty());
        prop_assert!(s.prefix_raw("staking/redelegation_queue/").unwrap().is_empty());
        prop_assert!(s.prefix_raw(UNBONDING_PREFIX).unwrap().is_empty());
        prop_assert_eq!(supply(&s), initial);
    }
}
