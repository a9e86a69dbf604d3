//! A component and an action that exist only here: plugging them in takes
//! no change to `app/`, `transaction/` or `proposal/`.

use std::sync::Arc;

use borsh::{BorshDeserialize, BorshSerialize};
use weft_core::{Amount, GenesisAccount, GenesisAppState, SigningKey, TxCode};

use super::*;
use crate::{
    accounts::{Accounts, AccountsRead},
    chain::Chain,
    fees::Fees,
    proposal::BlockExecution,
    rollups::Rollups,
    storage::{delta::EmptyState, StateDelta},
    transaction::execute_actions,
};

/// The dummy component's parameters.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
struct StampParams {
    /// What a stamp costs its signer.
    price: Amount,
}

impl ComponentParams for StampParams {
    const KEY: &'static str = "stamps/params";
    const VERSION: u8 = 1;
}

/// A component owning `stamps/…`: a registry of numbered stamps.
struct Stamps;

fn stamp_key(label: u64) -> String {
    // Zero-padded so keys sort by number: prefix reads come back in order.
    format!("stamps/by_label/{label:020}")
}

impl Component for Stamps {
    fn name(&self) -> &'static str {
        "stamps"
    }

    fn init_chain(
        &self,
        state: &mut dyn StateWrite,
        _genesis: &Genesis<'_>,
    ) -> Result<(), StorageError> {
        state.put_component_params(&StampParams { price: 5 });
        Ok(())
    }

    fn begin_block(
        &self,
        state: &mut dyn StateWrite,
        ctx: &BlockContext,
    ) -> Result<(), StorageError> {
        state.put_raw(
            "stamps/last_begin".into(),
            ctx.height.to_be_bytes().to_vec(),
        );
        Ok(())
    }

    fn end_block(
        &self,
        state: &mut dyn StateWrite,
        ctx: &BlockContext,
        _block: &BlockSummary,
        out: &mut EndBlock,
    ) -> Result<(), StorageError> {
        // Ordered read through the block's uncommitted writes.
        let labels: Vec<String> = state
            .prefix_raw("stamps/by_label/")?
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        state.put_raw(
            "stamps/count".into(),
            (labels.len() as u64).to_be_bytes().to_vec(),
        );
        out.events.push(
            Event::new("stamps.end_block")
                .stored("height", EventValue::U64(ctx.height))
                .stored("count", EventValue::U64(labels.len() as u64)),
        );
        Ok(())
    }
}

/// The dummy action: stamp a number, once, for a price.
struct Stamp {
    label: u64,
}

impl ActionHandler for Stamp {
    fn check_stateless(&self) -> Result<(), Rejection> {
        if self.label == 0 {
            return Err(Rejection::new(TxCode::InvalidTransaction, "stamp 0"));
        }
        Ok(())
    }

    fn spend(&self) -> Amount {
        5
    }

    fn check_stateful(&self, state: &dyn StateRead, _tx: &TxContext) -> Result<(), ExecError> {
        if state.get_raw(&stamp_key(self.label))?.is_some() {
            return Err(Rejection::new(
                TxCode::InvalidTransaction,
                format!("stamp {} is taken", self.label),
            )
            .into());
        }
        Ok(())
    }

    fn execute(
        &self,
        state: &mut dyn StateWrite,
        tx: &TxContext,
        effects: &mut ActionEffects,
    ) -> Result<(), ExecError> {
        let params: StampParams = state.component_params()?;
        crate::accounts::actions::debit(state, &tx.signer, params.price)?;
        state.put_raw(stamp_key(self.label), tx.signer.0.to_vec());
        effects.events.push(
            Event::new("stamps.stamp")
                .indexed("owner", EventValue::Address(tx.signer))
                .stored("label", EventValue::U64(self.label)),
        );
        Ok(())
    }
}

impl HandledAction for Stamp {
    fn with_handler<R>(&self, f: impl FnOnce(&dyn ActionHandler) -> R) -> R {
        f(self)
    }
}

fn components() -> Components {
    Components::new(vec![
        Arc::new(Chain),
        Arc::new(Accounts),
        Arc::new(Fees),
        Arc::new(Rollups),
        Arc::new(Stamps),
    ])
}

fn genesis(key: &SigningKey) -> StateDelta<EmptyState> {
    let app_state = GenesisAppState {
        inclusion: None,
        auction: None,
        accounts: vec![GenesisAccount {
            address: key.address(),
            balance: 12,
        }],
        params: Default::default(),
        staking: None,
        governance: None,
    };
    let mut state = StateDelta::new(EmptyState);
    components()
        .init_chain(
            &mut state,
            &Genesis {
                chain_id: "stamps",
                app_state: &app_state,
            },
        )
        .unwrap();
    state
}

#[test]
fn a_component_and_action_of_its_own_run_through_every_stage() {
    let key = SigningKey::from_seed("stamper");
    let base = genesis(&key);
    let mut exec = BlockExecution::new(&base, components(), BlockContext::at_height(1)).unwrap();
    assert_eq!(
        exec.delta.get_raw("stamps/last_begin").unwrap(),
        Some(1u64.to_be_bytes().to_vec()),
        "begin_block ran"
    );
    let tx = TxContext {
        signer: key.address(),
        nonce: 0,
        hash: weft_core::Hash([1; 32]),
        rollup_data_bytes: 0,
    };
    // Stamps 7 then 3: end_block reads them back in key order.
    for label in [7, 3] {
        assert_eq!(
            Stamp { label }.with_handler(|h| h.check_stateless()),
            Ok(())
        );
        exec.delta.begin_tx();
        let effects = execute_actions(&mut exec.delta, &tx, &[Stamp { label }]).unwrap();
        exec.delta.commit_tx();
        assert_eq!(effects.events[0].kind, "stamps.stamp");
        assert_eq!(
            effects.events[0].get("label"),
            Some(&EventValue::U64(label))
        );
    }
    assert_eq!(exec.delta.account(&key.address()).unwrap().balance, 2);

    // Stateless, stateful and execution refusals keep their own codes.
    let stateless = Stamp { label: 0 }.with_handler(|h| h.check_stateless());
    assert_eq!(stateless.unwrap_err().code, TxCode::InvalidTransaction);
    let taken = execute_actions(&mut exec.delta, &tx, &[Stamp { label: 7 }]).unwrap_err();
    assert!(taken.to_string().contains("stamp 7 is taken"), "{taken}");
    exec.delta.begin_tx();
    let broke = execute_actions(&mut exec.delta, &tx, &[Stamp { label: 9 }]).unwrap_err();
    exec.delta.discard_tx();
    assert_eq!(broke.code(), TxCode::InsufficientFunds);
    assert_eq!(
        exec.delta.get_raw(&stamp_key(9)).unwrap(),
        None,
        "nothing left behind"
    );

    let block = exec.finish().unwrap();
    assert_eq!(block.end.events[0].get("count"), Some(&EventValue::U64(2)));
    let written: Vec<&str> = block
        .changes
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| k.starts_with("stamps/"))
        .collect();
    assert_eq!(
        written,
        vec![
            "stamps/by_label/00000000000000000003",
            "stamps/by_label/00000000000000000007",
            "stamps/count",
            "stamps/last_begin",
        ]
    );
}

#[test]
fn component_params_are_versioned() {
    let key = SigningKey::from_seed("stamper");
    let mut state = genesis(&key);
    let params: StampParams = state.component_params().unwrap();
    assert_eq!(params, StampParams { price: 5 });
    // A value written by another layout version is refused, not misread.
    let mut raw = state.get_raw(StampParams::KEY).unwrap().unwrap();
    raw[0] = 2;
    state.put_raw(StampParams::KEY.into(), raw);
    let err = state.component_params::<StampParams>().unwrap_err();
    assert!(err.to_string().contains("version 2"), "{err}");
}

/// A component that reports a fixed genesis validator set.
struct FixedSet(u8);

impl Component for FixedSet {
    fn name(&self) -> &'static str {
        "fixed_set"
    }

    fn genesis_validators(
        &self,
        _state: &dyn StateRead,
    ) -> Result<Vec<([u8; 32], u64)>, StorageError> {
        Ok(vec![([self.0; 32], 1)])
    }
}

#[test]
fn one_component_at_most_reports_the_genesis_validators() {
    let state = StateDelta::new(EmptyState);
    let none = Components::new(vec![Arc::new(Chain), Arc::new(Accounts)]);
    assert!(
        none.genesis_validators(&state).unwrap().is_empty(),
        "default: no opinion"
    );
    let one = Components::new(vec![Arc::new(Chain), Arc::new(FixedSet(3))]);
    assert_eq!(one.genesis_validators(&state).unwrap(), vec![([3; 32], 1)]);
    let two = Components::new(vec![Arc::new(FixedSet(1)), Arc::new(FixedSet(2))]);
    assert!(
        two.genesis_validators(&state).is_err(),
        "two answers are refused"
    );
}
