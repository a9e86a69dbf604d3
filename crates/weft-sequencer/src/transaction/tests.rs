use weft_core::{Action, RollupId, SigningKey, Transaction};

use super::*;
use crate::{storage::StateDelta, test_support};

fn checked(key: &SigningKey, actions: Vec<Action>) -> CheckedTx {
    let tx = Transaction {
        chain_id: "c".into(),
        nonce: 0,
        actions,
    }
    .sign(key);
    check_stateless(&tx.encode(), "c").unwrap()
}

fn data(rollup: &RollupId, bytes: usize) -> Action {
    Action::SubmitRollupData {
        rollup_id: *rollup,
        data: vec![7; bytes],
    }
}

#[test]
fn events_follow_action_order_with_one_rollup_data_event_per_rollup() {
    let key = SigningKey::from_seed("alice");
    let (a, b) = (RollupId::from_name("a"), RollupId::from_name("b"));
    let to = weft_core::Address([9; 20]);
    let base = test_support::state("c", Default::default(), &[(&key, 1_000_000)]);
    let mut state = StateDelta::new(&base);
    let tx = checked(
        &key,
        vec![
            data(&b, 10),
            Action::Transfer { to, amount: 5 },
            data(&a, 3),
            data(&b, 20),
            data(&b, 1),
        ],
    );
    let (receipt, rollup_data) = execute(&mut state, &tx).unwrap();
    assert_eq!(
        rollup_data
            .iter()
            .map(|(r, d)| (*r, d.len()))
            .collect::<Vec<_>>(),
        vec![(b, 10), (a, 3), (b, 20), (b, 1)],
        "every item reaches the batch in action order"
    );
    type Shown<'a> = Vec<(&'a str, Vec<(&'a str, String, bool)>)>;
    let events: Shown = receipt
        .events()
        .iter()
        .map(|e| {
            (
                e.kind,
                e.attributes
                    .iter()
                    .map(|a| (a.key, a.value.to_string(), a.index))
                    .collect(),
            )
        })
        .collect();
    let signer = key.address().to_string();
    assert_eq!(
        events,
        vec![
            (
                "weft.tx",
                vec![
                    ("signer", signer.clone(), true),
                    ("nonce", "0".into(), false),
                    ("fee", receipt.fee.to_string(), false)
                ]
            ),
            (
                "weft.rollup_data",
                vec![
                    ("rollup_id", b.to_hex(), true),
                    ("items", "3".into(), false),
                    ("bytes", "31".into(), false)
                ]
            ),
            (
                "weft.transfer",
                vec![
                    ("from", signer, true),
                    ("to", to.to_string(), true),
                    ("amount", "5".into(), false)
                ]
            ),
            (
                "weft.rollup_data",
                vec![
                    ("rollup_id", a.to_hex(), true),
                    ("items", "1".into(), false),
                    ("bytes", "3".into(), false)
                ]
            ),
        ]
    );
}

#[test]
fn cost_is_the_fee_plus_what_each_action_spends() {
    let key = SigningKey::from_seed("alice");
    let to = weft_core::Address([9; 20]);
    let tx = checked(
        &key,
        vec![
            Action::Transfer { to, amount: 5 },
            data(&RollupId::from_name("a"), 4),
            Action::Transfer { to, amount: 7 },
        ],
    );
    assert_eq!(cost(&tx, 100).unwrap(), 112);
    let huge = checked(
        &key,
        vec![Action::Transfer {
            to,
            amount: Amount::MAX,
        }],
    );
    assert_eq!(
        cost(&huge, 1).unwrap_err().code,
        TxCode::InsufficientFunds,
        "an overflowing total is unaffordable, never a wrap"
    );
}

#[test]
fn a_storage_failure_is_never_a_rejection() {
    // A state whose reads fail, as a broken disk would.
    struct Broken;
    impl StateRead for Broken {
        fn get_raw(&self, key: &str) -> Result<Option<Vec<u8>>, crate::error::StorageError> {
            Err(crate::error::StorageError::Corrupt(key.into()))
        }
        fn prefix_raw(
            &self,
            prefix: &str,
        ) -> Result<Vec<(String, Vec<u8>)>, crate::error::StorageError> {
            Err(crate::error::StorageError::Corrupt(prefix.into()))
        }
    }
    let key = SigningKey::from_seed("alice");
    let tx = checked(&key, vec![data(&RollupId::from_name("a"), 4)]);
    let err = check_stateful(&Broken, &tx, NonceRule::Exact).unwrap_err();
    assert!(matches!(err, ExecError::Storage(_)), "{err:?}");
    let err = execute(&mut StateDelta::new(Broken), &tx).unwrap_err();
    assert!(matches!(err, ExecError::Storage(_)), "{err:?}");
    assert_eq!(err.code(), TxCode::Internal);
}
