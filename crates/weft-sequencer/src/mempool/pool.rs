//! The pool itself: entries by hash, per-account nonce queues, the parked
//! set, bounds with a fixed eviction rule, time-to-live, and the final
//! statuses of what left without being included.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, VecDeque},
    time::Instant,
};

use bytes::Bytes;
use weft_core::{Address, Amount, Hash, TxCode};

use super::{MempoolConfig, TxStatus};
use crate::{
    accounts::AccountsRead,
    chain::ChainRead,
    error::ExecError,
    storage::StateRead,
    transaction::{check_stateful, cost, CheckedTx, NonceRule, Rejection},
};

/// One admitted transaction.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The checked transaction (signature verified on admission).
    pub checked: CheckedTx,
    /// Its wire bytes.
    pub bytes: Bytes,
    /// Arrival order on this node: proposals are first-seen within nonce order.
    pub seq: u64,
    /// Fee plus transfers: what the account must hold for it.
    pub cost: Amount,
    /// The committed height when it was admitted: how many blocks it has
    /// waited is the committed height now minus this (inclusion lists
    /// name only transactions that waited `inclusion_delay_blocks`).
    pub admitted_height: u64,
    admitted: Instant,
}

#[derive(Debug, Default)]
struct AccountQueue {
    /// The account's committed nonce, as last seen.
    base: u64,
    /// Queued nonces.
    txs: BTreeMap<u64, Hash>,
}

impl AccountQueue {
    /// The first nonce from `base` that is not queued: everything below is
    /// pending, everything above is parked.
    fn gap(&self) -> u64 {
        let mut n = self.base;
        for (&nonce, _) in self.txs.range(self.base..) {
            if nonce != n {
                break;
            }
            n += 1;
        }
        n
    }
}

/// The mempool. Not thread-safe by itself; the app shares it behind a mutex.
pub struct Mempool {
    config: MempoolConfig,
    entries: HashMap<Hash, Entry>,
    accounts: BTreeMap<Address, AccountQueue>,
    /// Parked entries by arrival: the eviction order when full.
    parked: BTreeSet<(u64, Hash)>,
    bytes: usize,
    next_seq: u64,
    /// Final statuses, each with the sequence number of its record in
    /// `final_order` (a hash finalised again gets a newer record).
    finals: HashMap<Hash, (TxStatus, u64)>,
    final_order: VecDeque<(Instant, Hash, u64)>,
    next_final: u64,
    /// The committed height as last seen (0 until the first commit or
    /// admission reads it).
    height: u64,
}

impl Mempool {
    /// An empty pool.
    pub fn new(config: MempoolConfig) -> Self {
        Mempool {
            config,
            entries: HashMap::new(),
            accounts: BTreeMap::new(),
            parked: BTreeSet::new(),
            bytes: 0,
            next_seq: 0,
            finals: HashMap::new(),
            final_order: VecDeque::new(),
            next_final: 0,
            height: 0,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &MempoolConfig {
        &self.config
    }

    /// Transactions held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Parked transactions held.
    pub fn parked_len(&self) -> usize {
        self.parked.len()
    }

    /// Encoded bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The committed height as last seen.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// An entry by hash.
    pub fn get(&self, hash: &Hash) -> Option<&Entry> {
        self.entries.get(hash)
    }

    /// Admits a checked transaction (signature already verified) against
    /// committed `state`. Returns its status (pending or parked).
    pub fn admit<S: StateRead>(
        &mut self,
        state: &S,
        checked: CheckedTx,
        bytes: Bytes,
        now: Instant,
    ) -> Result<TxStatus, ExecError> {
        if self.entries.contains_key(&checked.hash) {
            return Err(
                Rejection::new(TxCode::Duplicate, "transaction is already in the mempool").into(),
            );
        }
        let signer = checked.signer;
        let nonce = checked.tx.transaction.nonce;
        let account = state.account(&signer)?;
        self.sync_account(&signer, account.nonce, now);

        let fee = check_stateful(
            state,
            &checked,
            NonceRule::Pending {
                max_ahead: self.config.max_nonce_ahead,
            },
        )?;
        let tx_cost = cost(&checked, fee)?;
        let queue = self.accounts.get(&signer);
        if let Some(other) = queue.and_then(|q| q.txs.get(&nonce)) {
            return Err(Rejection::new(
                TxCode::Duplicate,
                format!("nonce {nonce} of {signer} is already taken by pending tx {other}"),
            )
            .into());
        }
        // The account must afford this and every queued tx before it.
        let before: Amount = queue
            .map(|q| {
                q.txs
                    .range(..nonce)
                    .filter_map(|(_, h)| self.entries.get(h))
                    .map(|e| e.cost)
                    .sum()
            })
            .unwrap_or(0);
        if before.saturating_add(tx_cost) > account.balance {
            return Err(Rejection::new(
                TxCode::InsufficientFunds,
                format!(
                    "{signer} holds {} but its queued transactions need {before} and this one {tx_cost}",
                    account.balance
                ),
            ).into());
        }
        let will_park = nonce > queue.map(AccountQueue::gap).unwrap_or(account.nonce);
        if will_park {
            let parked_here = queue.map(|q| q.txs.range(q.gap()..).count()).unwrap_or(0);
            if parked_here >= self.config.max_parked_per_account {
                return Err(Rejection::new(
                    TxCode::MempoolFull,
                    format!(
                        "{signer} already has {parked_here} parked transactions (limit {}); send nonce {} first",
                        self.config.max_parked_per_account,
                        queue.map(AccountQueue::gap).unwrap_or(account.nonce)
                    ),
                ).into());
            }
            if self.parked.len() >= self.config.max_parked {
                return Err(Rejection::new(
                    TxCode::MempoolFull,
                    format!(
                        "the mempool holds its limit of {} parked transactions",
                        self.config.max_parked
                    ),
                )
                .into());
            }
        }
        self.make_room(bytes.len(), will_park, now)?;
        if self.height == 0 {
            // After a restart, before the first commit: learn it once.
            self.height = state.height()?;
        }

        let hash = checked.hash;
        let seq = self.next_seq;
        self.next_seq += 1;
        self.bytes += bytes.len();
        self.entries.insert(
            hash,
            Entry {
                checked,
                bytes,
                seq,
                cost: tx_cost,
                admitted_height: self.height,
                admitted: now,
            },
        );
        // A new queue starts at the committed nonce: with the default 0,
        // an account whose earlier transactions had all committed would
        // park its next one until a recheck moved the base (a block late).
        self.accounts
            .entry(signer)
            .or_insert_with(|| AccountQueue {
                base: account.nonce,
                txs: BTreeMap::new(),
            })
            .txs
            .insert(nonce, hash);
        self.reclassify(&signer);
        self.finals.remove(&hash);
        Ok(self.status(&hash).unwrap_or(TxStatus::Pending))
    }

    /// The eviction rule when full: an executable (pending) arrival evicts
    /// parked transactions, oldest first; otherwise the arrival is refused.
    /// Pending transactions are never evicted to make room.
    fn make_room(
        &mut self,
        size: usize,
        arrival_parked: bool,
        now: Instant,
    ) -> Result<(), Rejection> {
        let full = |p: &Self| {
            p.entries.len() + 1 > p.config.max_txs || p.bytes + size > p.config.max_bytes
        };
        while full(self) {
            let victim = if arrival_parked {
                None
            } else {
                self.parked.iter().next().map(|(_, h)| *h)
            };
            match victim {
                Some(h) => self.remove(
                    &h,
                    Some(TxStatus::Evicted {
                        reason: "mempool full: parked transactions make room for executable ones"
                            .into(),
                    }),
                    now,
                ),
                None => {
                    return Err(Rejection::new(
                        TxCode::MempoolFull,
                        format!(
                            "mempool full ({} transactions, {} bytes; limits {} and {})",
                            self.entries.len(),
                            self.bytes,
                            self.config.max_txs,
                            self.config.max_bytes
                        ),
                    ))
                }
            }
        }
        Ok(())
    }

    /// Recheck after a block: is this transaction still held, unexpired and
    /// executable against the new committed state? Anything that is not is
    /// removed here with its reason, and the error tells CometBFT to drop it.
    pub fn recheck<S: StateRead>(
        &mut self,
        state: &S,
        hash: &Hash,
        now: Instant,
    ) -> Result<(), ExecError> {
        let Some(entry) = self.entries.get(hash) else {
            let why = match self.finals.get(hash) {
                Some((TxStatus::Evicted { reason }, _)) => reason.clone(),
                _ => "no longer in this node's mempool".into(),
            };
            return Err(Rejection::new(TxCode::Evicted, why).into());
        };
        if now.duration_since(entry.admitted) > self.config.ttl {
            let reason = format!("expired: not included within {:?}", self.config.ttl);
            self.remove(
                hash,
                Some(TxStatus::Evicted {
                    reason: reason.clone(),
                }),
                now,
            );
            return Err(Rejection::new(TxCode::Evicted, reason).into());
        }
        let signer = entry.checked.signer;
        let nonce = entry.checked.tx.transaction.nonce;
        let account = state.account(&signer)?;
        self.sync_account(&signer, account.nonce, now);
        if !self.entries.contains_key(hash) {
            return Err(Rejection::new(
                TxCode::NonceAlreadyUsed,
                format!("nonce {nonce} was used by another transaction"),
            )
            .into());
        }
        let needed: Amount = self
            .accounts
            .get(&signer)
            .into_iter()
            .flat_map(|q| q.txs.range(..=nonce))
            .filter_map(|(_, h)| self.entries.get(h))
            .map(|e| e.cost)
            .fold(0, Amount::saturating_add);
        if needed > account.balance {
            let reason = format!(
                "no longer affordable: {signer} holds {} but needs {needed} for this and its earlier queued transactions",
                account.balance
            );
            self.remove(
                hash,
                Some(TxStatus::Evicted {
                    reason: reason.clone(),
                }),
                now,
            );
            return Err(Rejection::new(TxCode::InsufficientFunds, reason).into());
        }
        Ok(())
    }

    /// After a block is committed: drops the included transactions, moves
    /// each touched account to its new nonce (evicting what that made
    /// stale), expires what outlived the TTL and forgets old statuses.
    pub fn on_commit<S: StateRead>(
        &mut self,
        state: &S,
        included: &[Hash],
        now: Instant,
    ) -> Result<(), ExecError> {
        self.height = state.height()?;
        let mut touched = BTreeSet::new();
        for h in included {
            if let Some(e) = self.entries.get(h) {
                touched.insert(e.checked.signer);
                self.remove(h, None, now);
            }
        }
        for addr in touched {
            let nonce = state.account(&addr)?.nonce;
            self.sync_account(&addr, nonce, now);
        }
        let ttl = self.config.ttl;
        let expired: Vec<Hash> = self
            .entries
            .iter()
            .filter(|(_, e)| now.duration_since(e.admitted) > ttl)
            .map(|(h, _)| *h)
            .collect();
        for h in expired {
            self.remove(
                &h,
                Some(TxStatus::Evicted {
                    reason: format!("expired: not included within {ttl:?}"),
                }),
                now,
            );
        }
        while let Some((at, _, _)) = self.final_order.front() {
            if now.duration_since(*at) <= self.config.status_retention {
                break;
            }
            self.forget_oldest_final();
        }
        Ok(())
    }

    /// Remembers that a transaction was refused on admission.
    pub fn record_rejection(&mut self, hash: Hash, rejection: &Rejection, now: Instant) {
        if self.entries.contains_key(&hash) {
            return; // a duplicate submission of a held tx keeps its status
        }
        self.set_final(
            hash,
            TxStatus::Rejected {
                code: rejection.code.value(),
                code_name: rejection.code.name(),
                reason: rejection.message.clone(),
            },
            now,
        );
    }

    /// The status this pool knows: pending, parked, rejected or evicted.
    /// `None` means ask the block index (included) or it is unknown.
    pub fn status(&self, hash: &Hash) -> Option<TxStatus> {
        if let Some(e) = self.entries.get(hash) {
            let gap = self
                .accounts
                .get(&e.checked.signer)
                .map(AccountQueue::gap)
                .unwrap_or(0);
            return Some(if e.checked.tx.transaction.nonce < gap {
                TxStatus::Pending
            } else {
                TxStatus::Parked {
                    waiting_for_nonce: gap,
                }
            });
        }
        self.finals.get(hash).map(|(s, _)| s.clone())
    }

    /// The nonce that follows `addr`'s last pending transaction: its
    /// committed nonce (as this pool last saw it) plus the length of its
    /// gap-free run of queued transactions. `None` when the account has no
    /// pending transaction here (parked ones do not count: a wallet that
    /// used this nonce would only widen the gap).
    pub fn pending_nonce(&self, addr: &Address) -> Option<u64> {
        let queue = self.accounts.get(addr)?;
        let gap = queue.gap();
        (gap > queue.base).then_some(gap)
    }

    /// Each account's executable run of transactions, in nonce order.
    pub fn pending_runs(&self) -> impl Iterator<Item = Vec<&Entry>> + '_ {
        self.accounts.values().map(move |q| {
            let gap = q.gap();
            q.txs
                .range(q.base..gap)
                .filter_map(|(_, h)| self.entries.get(h))
                .collect()
        })
    }

    /// [`Mempool::pending_runs`] as owned copies, without the empty ones:
    /// what PrepareProposal works from once the pool's lock is released,
    /// so admissions (CheckTx, the API) are not held up while it executes
    /// the block.
    pub fn proposal_runs(&self) -> Vec<Vec<Entry>> {
        self.pending_runs()
            .filter(|r| !r.is_empty())
            .map(|r| r.into_iter().cloned().collect())
            .collect()
    }

    /// Moves an account to its committed nonce: queued nonces below it can
    /// never execute and are evicted.
    fn sync_account(&mut self, addr: &Address, committed_nonce: u64, now: Instant) {
        let Some(queue) = self.accounts.get_mut(addr) else {
            return;
        };
        queue.base = committed_nonce;
        let stale: Vec<(u64, Hash)> = queue
            .txs
            .range(..committed_nonce)
            .map(|(n, h)| (*n, *h))
            .collect();
        for (nonce, h) in stale {
            self.remove(
                &h,
                Some(TxStatus::Evicted {
                    reason: format!("nonce {nonce} was used by another transaction"),
                }),
                now,
            );
        }
        self.reclassify(addr);
    }

    fn remove(&mut self, hash: &Hash, status: Option<TxStatus>, now: Instant) {
        let Some(e) = self.entries.remove(hash) else {
            return;
        };
        self.bytes -= e.bytes.len();
        self.parked.remove(&(e.seq, *hash));
        let signer = e.checked.signer;
        if let Some(q) = self.accounts.get_mut(&signer) {
            q.txs.remove(&e.checked.tx.transaction.nonce);
            if q.txs.is_empty() {
                self.accounts.remove(&signer);
            } else {
                self.reclassify(&signer);
            }
        }
        if let Some(s) = status {
            if matches!(s, TxStatus::Evicted { .. }) {
                metrics::counter!("weft_mempool_evicted_total").increment(1);
            }
            self.set_final(*hash, s, now);
        }
    }

    fn reclassify(&mut self, addr: &Address) {
        let Some(q) = self.accounts.get(addr) else {
            return;
        };
        let gap = q.gap();
        for (&nonce, h) in &q.txs {
            let Some(e) = self.entries.get(h) else {
                continue;
            };
            if nonce > gap {
                self.parked.insert((e.seq, *h));
            } else {
                self.parked.remove(&(e.seq, *h));
            }
        }
    }

    fn set_final(&mut self, hash: Hash, status: TxStatus, now: Instant) {
        if self.config.max_statuses == 0 {
            return;
        }
        let seq = self.next_final;
        self.next_final += 1;
        self.finals.insert(hash, (status, seq));
        self.final_order.push_back((now, hash, seq));
        while self.final_order.len() > self.config.max_statuses {
            self.forget_oldest_final();
        }
    }

    /// Drops the oldest final record; the status goes only if no newer
    /// record of the same hash replaced it.
    fn forget_oldest_final(&mut self) {
        if let Some((_, hash, seq)) = self.final_order.pop_front() {
            if self.finals.get(&hash).is_some_and(|(_, s)| *s == seq) {
                self.finals.remove(&hash);
            }
        }
    }

    /// Publishes gauges: sizes by state.
    pub fn report_metrics(&self) {
        let parked = self.parked.len();
        metrics::gauge!("weft_mempool_txs", "state" => "pending")
            .set((self.entries.len() - parked) as f64);
        metrics::gauge!("weft_mempool_txs", "state" => "parked").set(parked as f64);
        metrics::gauge!("weft_mempool_bytes").set(self.bytes as f64);
    }
}

#[cfg(test)]
mod tests;
