//! The transactions a benchmark sends, all built and signed before the
//! timed window: Weft transactions from many funded accounts, and `kvstore`
//! transactions (`key=value`) of exactly the same size.
//!
//! Every rollup payload starts with a [`PayloadId`], so a payload delivered
//! by the conductor can be traced back to the transaction that carried it.

use std::collections::HashMap;

use base64::{engine::general_purpose::STANDARD, Engine};
use sha2::{Digest, Sha256};
use weft_core::{Action, Amount, GenesisAccount, RollupId, SigningKey, Transaction};
use weft_testnet::App;

use crate::{scenario::Scenario, BenchError, Result};

/// Bytes at the start of every payload that identify it.
pub const PAYLOAD_ID_LEN: usize = 16;
/// Marks a payload as one of ours.
const PAYLOAD_MAGIC: [u8; 4] = *b"WFTB";
/// Most transactions one account sends in one step. The sequencer admits
/// nonces at most 32 ahead of the committed one; staying under that means
/// no transaction is refused for its nonce even if nothing commits.
pub const MAX_TXS_PER_ACCOUNT_PER_STEP: usize = 24;
/// Balance of every benchmark account at genesis: enough fees for millions
/// of megabyte transactions.
pub const ACCOUNT_BALANCE: Amount = 1_000_000_000_000_000;

/// Where a payload came from: the step, the transaction's index in it and
/// the action's index in the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PayloadId {
    /// Step of the run.
    pub step: u32,
    /// Transaction index in the step.
    pub tx: u32,
    /// Action index in the transaction.
    pub action: u32,
}

impl PayloadId {
    /// `"WFTB" ‖ u32le step ‖ u32le tx ‖ u32le action`.
    pub fn encode(&self) -> [u8; PAYLOAD_ID_LEN] {
        let mut out = [0u8; PAYLOAD_ID_LEN];
        out[..4].copy_from_slice(&PAYLOAD_MAGIC);
        out[4..8].copy_from_slice(&self.step.to_le_bytes());
        out[8..12].copy_from_slice(&self.tx.to_le_bytes());
        out[12..16].copy_from_slice(&self.action.to_le_bytes());
        out
    }

    /// The id a payload starts with; `None` for anything else.
    pub fn decode(payload: &[u8]) -> Option<PayloadId> {
        let head = payload.get(..PAYLOAD_ID_LEN)?;
        if head[..4] != PAYLOAD_MAGIC {
            return None;
        }
        let word =
            |at: usize| u32::from_le_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
        Some(PayloadId {
            step: word(4),
            tx: word(8),
            action: word(12),
        })
    }
}

/// A payload of `len` bytes (at least [`PAYLOAD_ID_LEN`]) starting with `id`.
pub fn payload(id: PayloadId, len: usize) -> Vec<u8> {
    let mut data = Vec::with_capacity(len.max(PAYLOAD_ID_LEN));
    data.extend_from_slice(&id.encode());
    // Filler varies with the position so no two payloads share long runs.
    data.extend((PAYLOAD_ID_LEN..len).map(|i| (i as u8) ^ (id.tx as u8)));
    data
}

/// Name of benchmark rollup `i`.
pub fn rollup_name(i: usize) -> String {
    format!("bench-rollup-{i}")
}

/// Which rollup the payload at `action` of transaction `tx` goes to: round
/// robin over every payload of the step.
pub fn rollup_of(tx: u32, action: u32, payloads_per_tx: usize, rollups: usize) -> usize {
    ((tx as usize) * payloads_per_tx + action as usize) % rollups.max(1)
}

/// Funded accounts and the next nonce of each. An account whose
/// transaction was refused or never included is retired: its next nonce is
/// no longer known.
#[derive(Debug)]
pub struct AccountPool {
    keys: Vec<SigningKey>,
    next_nonce: Vec<u64>,
    retired: Vec<bool>,
    cursor: usize,
}

impl AccountPool {
    /// `n` accounts with keys derived from fixed seeds (the same every run).
    pub fn new(n: usize) -> Self {
        AccountPool {
            keys: (0..n)
                .map(|i| SigningKey::from_seed(&format!("weft-bench/account/{i}")))
                .collect(),
            next_nonce: vec![0; n],
            retired: vec![false; n],
            cursor: 0,
        }
    }

    /// Number of accounts.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when there are no accounts.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The genesis entries funding every account.
    pub fn genesis_accounts(&self) -> Vec<GenesisAccount> {
        self.keys
            .iter()
            .map(|k| GenesisAccount {
                address: k.address(),
                balance: ACCOUNT_BALANCE,
            })
            .collect()
    }

    /// The next `count` accounts still in use, round robin from where the
    /// last step stopped.
    pub fn take(&mut self, count: usize) -> Result<Vec<usize>> {
        let usable = self.retired.iter().filter(|r| !**r).count();
        if count > usable {
            return Err(BenchError::Invalid(format!(
                "{count} accounts needed for one step, {usable} usable of {}; pass more --accounts",
                self.keys.len()
            )));
        }
        let mut taken = Vec::with_capacity(count);
        while taken.len() < count {
            let i = self.cursor;
            self.cursor = (self.cursor + 1) % self.keys.len();
            if !self.retired[i] {
                taken.push(i);
            }
        }
        Ok(taken)
    }

    /// Stops using account `i`.
    pub fn retire(&mut self, i: usize) {
        if let Some(r) = self.retired.get_mut(i) {
            *r = true;
        }
    }

    /// Accounts retired so far.
    pub fn retired(&self) -> usize {
        self.retired.iter().filter(|r| **r).count()
    }
}

/// One transaction ready to send.
#[derive(Debug, Clone)]
pub struct PreparedTx {
    /// The node it goes to.
    pub node: usize,
    /// SHA-256 of its bytes: how CometBFT names it in blocks.
    pub hash: [u8; 32],
    /// Its size in bytes.
    pub len: usize,
    /// The signing account (Weft only).
    pub account: Option<usize>,
    /// The signed transaction: what the sequencer API takes as is, and
    /// what a JSON-RPC request carries in base64.
    pub bytes: Vec<u8>,
}

impl PreparedTx {
    /// The JSON-RPC `broadcast_tx_sync` request for it, `id` = `index`
    /// (its index in the step), written out by hand, ready to join a
    /// batch: `tendermint-rpc` sends one HTTP request per call and cannot
    /// batch, and batches are how one process offers thousands of tx/s (see
    /// [`crate::submit`]).
    pub fn rpc_request(&self, index: usize) -> String {
        format!(
            r#"{{"jsonrpc":"2.0","id":{index},"method":"broadcast_tx_sync","params":{{"tx":"{}"}}}}"#,
            STANDARD.encode(&self.bytes)
        )
    }

    /// Bytes of its JSON-RPC request (base64 is 4 bytes per 3, padded,
    /// plus the envelope), for sizing batches without writing it.
    pub fn rpc_request_len(&self) -> usize {
        self.bytes.len().div_ceil(3) * 4 + RPC_ENVELOPE_BYTES
    }
}

/// Bytes of a `broadcast_tx_sync` request around its base64 transaction
/// (an upper bound: the id is at most 10 digits).
const RPC_ENVELOPE_BYTES: usize = 80;

/// A step's transactions, in the order they are due.
#[derive(Debug, Default)]
pub struct StepTxs {
    /// Transaction `i` is due `i / rate` seconds into the step.
    pub txs: Vec<PreparedTx>,
}

impl StepTxs {
    /// Index of every transaction by hash.
    pub fn by_hash(&self) -> HashMap<[u8; 32], u32> {
        self.txs
            .iter()
            .enumerate()
            .map(|(i, t)| (t.hash, i as u32))
            .collect()
    }
}

/// Builds each step's transactions for one app.
#[derive(Debug)]
pub struct Workload {
    scenario: Scenario,
    app: App,
    chain_id: String,
    nodes: usize,
    rollups: Vec<RollupId>,
    /// Funded accounts (used by Weft; kvstore has no accounts).
    pub accounts: AccountPool,
}

impl Workload {
    /// A workload for `scenario` on a network of `nodes` running `app`.
    pub fn new(
        scenario: &Scenario,
        app: App,
        chain_id: &str,
        nodes: usize,
        accounts: usize,
    ) -> Self {
        Workload {
            scenario: scenario.clone(),
            app,
            chain_id: chain_id.into(),
            nodes: nodes.max(1),
            rollups: (0..scenario.rollups)
                .map(|i| RollupId::from_name(&rollup_name(i)))
                .collect(),
            accounts: AccountPool::new(if app == App::Weft { accounts } else { 0 }),
        }
    }

    /// Bytes of every transaction of this scenario (Weft's encoding is
    /// fixed-width, so all are the same size; kvstore's are made to match).
    pub fn tx_len(&self) -> usize {
        let key = SigningKey::from_seed("weft-bench/size");
        self.weft_tx(&key, 0, 0, 0).encode().len()
    }

    /// The transactions of step `step`: `n` of them.
    pub fn prepare_step(&mut self, step: u32, n: usize) -> Result<StepTxs> {
        let txs = match self.app {
            App::Weft => self.prepare_weft(step, n)?,
            App::Kvstore => {
                let len = self.tx_len();
                (0..n)
                    .map(|i| {
                        let bytes = kvstore_tx(step, i as u32, len);
                        prepared(i % self.nodes, None, bytes)
                    })
                    .collect()
            }
        };
        Ok(StepTxs { txs })
    }

    fn prepare_weft(&mut self, step: u32, n: usize) -> Result<Vec<PreparedTx>> {
        let count = n
            .div_ceil(MAX_TXS_PER_ACCOUNT_PER_STEP)
            .max(1)
            .min(n.max(1));
        let accounts = self.accounts.take(count)?;
        // Transaction i comes from accounts[i % count]; each account's
        // transactions are `count` apart, so they reach its node in nonce
        // order. An account always talks to the same node.
        let plan: Vec<(usize, u64)> = (0..n)
            .map(|i| {
                let a = accounts[i % count];
                (a, self.accounts.next_nonce[a] + (i / count) as u64)
            })
            .collect();
        let threads = std::thread::available_parallelism()
            .map(|p| p.get())
            .unwrap_or(1)
            .min(4);
        let chunk = n.div_ceil(threads).max(1);
        let this = &*self;
        let txs: Vec<PreparedTx> = std::thread::scope(|s| {
            let handles: Vec<_> = plan
                .chunks(chunk)
                .enumerate()
                .map(|(c, part)| {
                    s.spawn(move || {
                        part.iter()
                            .enumerate()
                            .map(|(j, &(a, nonce))| {
                                let i = c * chunk + j;
                                let key = &this.accounts.keys[a];
                                let bytes = this.weft_tx(key, nonce, step, i as u32).encode();
                                prepared(a % this.nodes, Some(a), bytes)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        });
        if txs.len() != n {
            return Err(BenchError::Invalid("a signing thread failed".into()));
        }
        for &(a, nonce) in &plan {
            self.accounts.next_nonce[a] = self.accounts.next_nonce[a].max(nonce + 1);
        }
        Ok(txs)
    }

    fn weft_tx(
        &self,
        key: &SigningKey,
        nonce: u64,
        step: u32,
        tx: u32,
    ) -> weft_core::SignedTransaction {
        let actions = (0..self.scenario.payloads_per_tx as u32)
            .map(|action| {
                let rollup = rollup_of(
                    tx,
                    action,
                    self.scenario.payloads_per_tx,
                    self.rollups.len(),
                );
                Action::SubmitRollupData {
                    rollup_id: self.rollups[rollup],
                    data: payload(PayloadId { step, tx, action }, self.scenario.payload_bytes),
                }
            })
            .collect();
        Transaction {
            chain_id: self.chain_id.clone(),
            nonce,
            actions,
        }
        .sign(key)
    }
}

/// A unique `kvstore` transaction of exactly `len` bytes:
/// `wb<step><tx>=vvvv…` (kvstore wants one `=`, no `:`, neither at an end).
pub fn kvstore_tx(step: u32, tx: u32, len: usize) -> Vec<u8> {
    let mut bytes = format!("wb{step:08x}{tx:08x}=").into_bytes();
    let value_len = len.saturating_sub(bytes.len()).max(1);
    bytes.extend(std::iter::repeat_n(b'v', value_len));
    bytes
}

/// The transaction ready to send, with its hash.
fn prepared(node: usize, account: Option<usize>, bytes: Vec<u8>) -> PreparedTx {
    PreparedTx {
        node,
        hash: Sha256::digest(&bytes).into(),
        len: bytes.len(),
        account,
        bytes,
    }
}

#[cfg(test)]
mod tests {
    use weft_core::SignedTransaction;

    use super::*;

    fn scenario(name: &str) -> Scenario {
        Scenario::named(name).unwrap()
    }

    #[test]
    fn payload_ids_round_trip_and_foreign_bytes_are_ignored() {
        let id = PayloadId {
            step: 3,
            tx: 70_000,
            action: 63,
        };
        let p = payload(id, 200);
        assert_eq!(p.len(), 200);
        assert_eq!(PayloadId::decode(&p), Some(id));
        assert_eq!(PayloadId::decode(b"hello"), None);
        assert_eq!(PayloadId::decode(&[0u8; 32]), None);
    }

    #[test]
    fn kvstore_txs_are_unique_well_formed_and_of_the_requested_size() {
        let a = kvstore_tx(1, 2, 359);
        let b = kvstore_tx(1, 3, 359);
        let c = kvstore_tx(2, 2, 359);
        assert_eq!(a.len(), 359);
        assert!(a != b && a != c);
        for tx in [&a, &b, &c] {
            assert_eq!(tx.iter().filter(|&&c| c == b'=').count(), 1);
            assert!(!tx.contains(&b':'));
            assert!(tx[0] != b'=' && *tx.last().unwrap() != b'=');
        }
        // Never shorter than a valid kvstore tx, whatever is asked.
        assert!(kvstore_tx(0, 0, 1).ends_with(b"=v"));
    }

    #[test]
    fn weft_steps_are_signed_from_fresh_nonces_and_spread_over_nodes() {
        let s = scenario("4v-200b-batched");
        let mut w = Workload::new(&s, App::Weft, "weft-bench", 4, 100);
        let step = w.prepare_step(0, 60).unwrap();
        assert_eq!(step.txs.len(), 60);
        // 60 txs at most 24 per account: 3 accounts, nonces 0..20 each.
        let mut per_account: HashMap<usize, Vec<u64>> = HashMap::new();
        for (i, t) in step.txs.iter().enumerate() {
            assert_eq!(t.len, w.tx_len());
            let request = t.rpc_request(i);
            assert!(request.len() <= t.rpc_request_len());
            let json: serde_json::Value = serde_json::from_str(&request).unwrap();
            assert_eq!(json["id"], i);
            assert_eq!(json["method"], "broadcast_tx_sync");
            let bytes = STANDARD
                .decode(json["params"]["tx"].as_str().unwrap())
                .unwrap();
            let tx = SignedTransaction::decode(&bytes).unwrap();
            tx.verify_signature().unwrap();
            assert_eq!(tx.transaction.actions.len(), 64);
            let Action::SubmitRollupData { data, .. } = &tx.transaction.actions[5] else {
                panic!("not rollup data");
            };
            assert_eq!(
                PayloadId::decode(data),
                Some(PayloadId {
                    step: 0,
                    tx: i as u32,
                    action: 5
                })
            );
            let a = t.account.unwrap();
            assert_eq!(t.node, a % 4);
            assert_eq!(t.hash, <[u8; 32]>::from(Sha256::digest(&bytes)));
            assert_eq!(t.bytes, bytes);
            per_account.entry(a).or_default().push(tx.transaction.nonce);
        }
        assert_eq!(per_account.len(), 3);
        for nonces in per_account.values() {
            assert_eq!(nonces, &(0..20).collect::<Vec<u64>>());
        }
        // The next step continues with the next accounts of the pool.
        let next = w.prepare_step(1, 24).unwrap();
        assert_eq!(next.txs[0].account, Some(3));
        assert_eq!(step.by_hash().len(), 60);
    }

    #[test]
    fn accounts_wrap_around_continue_their_nonces_and_retired_ones_are_skipped() {
        let s = scenario("1v-200b-single");
        let mut w = Workload::new(&s, App::Weft, "weft-bench", 1, 2);
        let first = w.prepare_step(0, 48).unwrap();
        assert_eq!(first.txs[0].account, Some(0));
        w.accounts.retire(0);
        let second = w.prepare_step(1, 10).unwrap();
        let bytes = |t: &PreparedTx| {
            let json: serde_json::Value = serde_json::from_str(&t.rpc_request(0)).unwrap();
            let b = STANDARD
                .decode(json["params"]["tx"].as_str().unwrap())
                .unwrap();
            SignedTransaction::decode(&b).unwrap()
        };
        assert_eq!(second.txs[0].account, Some(1));
        assert_eq!(bytes(&second.txs[0]).transaction.nonce, 24);
        assert!(
            w.prepare_step(2, 48).is_err(),
            "one usable account cannot send 48"
        );
        assert_eq!(w.accounts.retired(), 1);
    }

    #[test]
    fn kvstore_steps_match_the_weft_size_and_spread_round_robin() {
        let s = scenario("4v-10k-single");
        let weft_len = Workload::new(&s, App::Weft, "weft-bench", 4, 1).tx_len();
        let mut w = Workload::new(&s, App::Kvstore, "weft-bench", 4, 1);
        let step = w.prepare_step(2, 8).unwrap();
        assert!(step
            .txs
            .iter()
            .all(|t| t.len == weft_len && t.account.is_none()));
        assert_eq!(
            step.txs.iter().map(|t| t.node).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 0, 1, 2, 3]
        );
    }

    #[test]
    fn payloads_spread_round_robin_over_rollups() {
        assert_eq!(rollup_of(0, 0, 64, 4), 0);
        assert_eq!(rollup_of(0, 5, 64, 4), 1);
        assert_eq!(rollup_of(3, 0, 1, 4), 3);
        assert_eq!(rollup_of(4, 0, 1, 4), 0);
        assert_eq!(rollup_of(4, 0, 1, 0), 0);
    }
}
