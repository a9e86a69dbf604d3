//! CheckTx: admission of new transactions and recheck after each block.
//!
//! CheckTx does not go through the consensus connection's single worker.
//! Each new transaction's stateless checks (decoding and, above all, the
//! ed25519 signature: most of CheckTx's cost) run on a pool of threads, up
//! to one per core, while the next requests are read; the stateful step
//! (nonce, balance, bounds) then takes each transaction in the order
//! CometBFT sent it, so an account's nonce sequence is admitted in order.
//! Consensus requests never queue behind CheckTx, and CheckTx keeps going
//! while FinalizeBlock runs (CometBFT itself holds its mempool during
//! Commit, so no CheckTx ever sees a half-committed state).
//!
//! An envelope (`weft_core::Envelope`: many users' transactions in one
//! CometBFT transaction) is admitted inner transaction by inner
//! transaction, their uncached signatures verified as one batch; it passes
//! while any of them is held here, so CometBFT keeps gossiping it exactly
//! as long as it carries something this node still wants included.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, OnceLock},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bytes::Bytes;
use tendermint::{
    abci::{request::CheckTxKind, response as resp, Code},
    v0_38::abci::{request, MempoolRequest, MempoolResponse},
};
use tokio::sync::{oneshot, Semaphore};
use weft_core::{envelope::Envelope, Hash, TxCode};

use super::{lock, Mempool, SignatureCache, TxStatus};
use crate::{
    error::ExecError,
    storage::Storage,
    transaction::{CheckedTx, Rejection},
};

/// Everything CheckTx needs; cheap to clone, shared with the app.
#[derive(Clone)]
pub struct Admission {
    storage: Storage,
    pool: Arc<Mutex<Mempool>>,
    signatures: SignatureCache,
    /// Set once, at InitChain or from the store on restart; until then
    /// every transaction is refused as signed for another chain.
    chain_id: Arc<OnceLock<String>>,
}

impl Admission {
    /// CheckTx over `storage`'s committed state and `pool`.
    pub fn new(
        storage: Storage,
        pool: Arc<Mutex<Mempool>>,
        signatures: SignatureCache,
        chain_id: Arc<OnceLock<String>>,
    ) -> Self {
        Admission {
            storage,
            pool,
            signatures,
            chain_id,
        }
    }

    fn chain_id(&self) -> &str {
        self.chain_id.get().map_or("", String::as_str)
    }

    /// The whole CheckTx on the calling thread (tests, and any caller
    /// without a runtime).
    pub fn check_tx(&self, req: &request::CheckTx) -> resp::CheckTx {
        let started = Instant::now();
        let stateless = match req.kind {
            CheckTxKind::New => Some(self.stateless_item(&req.tx)),
            CheckTxKind::Recheck => None,
        };
        self.finish_item(req.kind, &req.tx, stateless, started.elapsed())
    }

    /// The stateful step of either kind of CometBFT transaction.
    fn finish_item(
        &self,
        kind: CheckTxKind,
        tx: &Bytes,
        stateless: Option<Stateless>,
        spent: Duration,
    ) -> resp::CheckTx {
        match stateless {
            Some(Stateless::Tx(checked)) => self.finish(kind, tx, Some(checked), spent),
            Some(Stateless::Envelope(inner)) => self.finish_envelope(kind, tx, Some(inner), spent),
            None if Envelope::is_envelope(tx) => self.finish_envelope(kind, tx, None, spent),
            None => self.finish(kind, tx, None, spent),
        }
    }

    /// Decoding, chain id and signature: needs no state, so it may run on
    /// any thread, in any order.
    fn stateless(&self, tx: &[u8]) -> Result<CheckedTx, Rejection> {
        self.signatures.check_stateless(tx, self.chain_id())
    }

    /// The stateless step of a new CometBFT transaction: one signed
    /// transaction, or an envelope's inner transactions (batch-verified,
    /// skipping those already held).
    fn stateless_item(&self, tx: &Bytes) -> Stateless {
        if !Envelope::is_envelope(tx) {
            return Stateless::Tx(self.stateless(tx));
        }
        match Envelope::decode(tx) {
            Ok(envelope) => {
                let txs: Vec<Bytes> = envelope.txs.into_iter().map(Bytes::from).collect();
                Stateless::Envelope(Ok(self.stateless_many(txs, 1)))
            }
            Err(e) => Stateless::Envelope(Err(Rejection::new(
                TxCode::Malformed,
                format!("bad envelope: {e}"),
            ))),
        }
    }

    /// Checks `txs`, batch-verifying signatures on up to `threads`
    /// threads. A transaction already held was verified on admission, so
    /// the signature cache (ten times the mempool's bound) skips it.
    fn stateless_many(&self, txs: Vec<Bytes>, threads: usize) -> Vec<Inner> {
        let checked = self.signatures.check_batch(&txs, self.chain_id(), threads);
        txs.into_iter()
            .zip(checked)
            .map(|(bytes, checked)| Inner {
                // Decoding hashed what decodes; the rest is hashed here.
                hash: checked
                    .as_ref()
                    .map_or_else(|_| weft_core::sha256(&bytes), |c| c.hash),
                bytes,
                checked,
            })
            .collect()
    }

    /// Admits many transactions at once, as the API's batch submission
    /// does: signatures batch-verified on up to `threads` threads, then
    /// each admitted in order. One outcome per transaction, in order.
    pub fn admit_all(&self, txs: Vec<Bytes>, threads: usize) -> Vec<TxOutcome> {
        let started = Instant::now();
        let inner = self.stateless_many(txs, threads);
        let outcomes = self.admit_inner(inner, started);
        metrics::histogram!("weft_check_tx_seconds", "kind" => "batch")
            .record(started.elapsed().as_secs_f64());
        outcomes
    }

    /// The stateful step of checked inner transactions, in order, under
    /// one lock of the pool.
    fn admit_inner(&self, inner: Vec<Inner>, now: Instant) -> Vec<TxOutcome> {
        let snapshot = match self.storage.snapshot() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "admission could not read state");
                let why = storage_failure(&e);
                return inner
                    .into_iter()
                    .map(|i| TxOutcome::Refused {
                        hash: i.hash,
                        rejection: why.clone(),
                    })
                    .collect();
            }
        };
        let mut pool = lock(&self.pool);
        let outcomes = inner
            .into_iter()
            .map(|Inner { bytes, hash, checked }| {
                if let Some(status) = pool.get(&hash).and_then(|_| pool.status(&hash)) {
                    return TxOutcome::Held { hash, status };
                }
                let result = checked
                    .map_err(ExecError::from)
                    .and_then(|c| pool.admit(&snapshot, c, bytes, now));
                match result {
                    Ok(status) => {
                        metrics::counter!("weft_mempool_admitted_total").increment(1);
                        TxOutcome::Admitted { hash, status }
                    }
                    Err(ExecError::Rejected(r)) => {
                        pool.record_rejection(hash, &r, now);
                        metrics::counter!("weft_check_tx_rejected_total", "kind" => "inner", "code" => r.code.name()).increment(1);
                        TxOutcome::Refused { hash, rejection: r }
                    }
                    Err(ExecError::Storage(e)) => TxOutcome::Refused {
                        hash,
                        rejection: storage_failure(&e),
                    },
                }
            })
            .collect();
        pool.report_metrics();
        outcomes
    }

    /// CheckTx of an envelope: new (its inner transactions admitted) or a
    /// recheck (each held inner transaction rechecked). It passes while
    /// any inner transaction is held; `data` holds each one's code
    /// (`u32le`, 0 = admitted or already held).
    fn finish_envelope(
        &self,
        kind: CheckTxKind,
        tx: &Bytes,
        stateless: Option<Result<Vec<Inner>, Rejection>>,
        spent: Duration,
    ) -> resp::CheckTx {
        let started = Instant::now();
        let kind_name = match kind {
            CheckTxKind::New => "envelope",
            CheckTxKind::Recheck => "envelope_recheck",
        };
        let outcomes: Result<InnerResults, Rejection> = match stateless {
            Some(Err(r)) => Err(r),
            Some(Ok(inner)) => Ok(self
                .admit_inner(inner, started)
                .into_iter()
                .map(|o| match o {
                    TxOutcome::Admitted { hash, .. } | TxOutcome::Held { hash, .. } => {
                        (hash, Ok(()))
                    }
                    TxOutcome::Refused { hash, rejection } => (hash, Err(rejection)),
                })
                .collect()),
            None => self.recheck_envelope(tx),
        };
        metrics::histogram!("weft_check_tx_seconds", "kind" => kind_name)
            .record((spent + started.elapsed()).as_secs_f64());
        let outcomes = match outcomes {
            Ok(o) => o,
            Err(r) => {
                metrics::counter!("weft_check_tx_rejected_total", "kind" => kind_name, "code" => r.code.name()).increment(1);
                return rejection(r.code, r.message);
            }
        };
        let held = outcomes.iter().filter(|(_, r)| r.is_ok()).count();
        let data: Vec<u8> = outcomes
            .iter()
            .flat_map(|(_, r)| {
                r.as_ref()
                    .map_or_else(|e| e.code.value(), |()| 0)
                    .to_le_bytes()
            })
            .collect();
        let log = format!("envelope: {held} of {} transactions held", outcomes.len());
        if held > 0 {
            metrics::counter!("weft_envelopes_checked_total", "kind" => kind_name, "outcome" => "held").increment(1);
            return resp::CheckTx {
                code: Code::Ok,
                data: data.into(),
                log,
                ..Default::default()
            };
        }
        metrics::counter!("weft_envelopes_checked_total", "kind" => kind_name, "outcome" => "dropped").increment(1);
        // Nothing left to gossip: the first inner refusal names the code.
        let first = outcomes
            .into_iter()
            .find_map(|(_, r)| r.err())
            .unwrap_or_else(|| Rejection::new(TxCode::Evicted, "empty envelope"));
        resp::CheckTx {
            data: data.into(),
            ..rejection(
                first.code,
                format!("{log}; first refusal: {}", first.message),
            )
        }
    }

    /// Recheck of an envelope: each inner transaction this pool holds is
    /// rechecked against the new state (and dropped if stale).
    fn recheck_envelope(&self, tx: &Bytes) -> Result<InnerResults, Rejection> {
        let envelope = Envelope::decode(tx)
            .map_err(|e| Rejection::new(TxCode::Malformed, format!("bad envelope: {e}")))?;
        let snapshot = self.storage.snapshot().map_err(|e| storage_failure(&e))?;
        let now = Instant::now();
        let mut pool = lock(&self.pool);
        Ok(envelope
            .txs
            .iter()
            .map(|t| {
                let hash = weft_core::sha256(t);
                let r = match pool.recheck(&snapshot, &hash, now) {
                    Ok(()) => Ok(()),
                    Err(ExecError::Rejected(r)) => Err(r),
                    Err(ExecError::Storage(e)) => Err(storage_failure(&e)),
                };
                (hash, r)
            })
            .collect())
    }

    /// The stateful step, in request order; `spent` is the stateless
    /// step's time, so the histogram shows work, not queueing.
    fn finish(
        &self,
        kind: CheckTxKind,
        tx: &Bytes,
        stateless: Option<Result<CheckedTx, Rejection>>,
        spent: Duration,
    ) -> resp::CheckTx {
        let started = Instant::now();
        let kind_name = match kind {
            CheckTxKind::New => "new",
            CheckTxKind::Recheck => "recheck",
        };
        let outcome = self.stateful(tx, stateless, started);
        metrics::histogram!("weft_check_tx_seconds", "kind" => kind_name)
            .record((spent + started.elapsed()).as_secs_f64());
        match outcome {
            Ok((hash, signer)) => {
                if kind == CheckTxKind::New {
                    metrics::counter!("weft_mempool_admitted_total").increment(1);
                }
                resp::CheckTx {
                    code: Code::Ok,
                    data: Bytes::copy_from_slice(&hash.0),
                    sender: signer,
                    ..Default::default()
                }
            }
            Err(ExecError::Rejected(r)) => {
                metrics::counter!("weft_check_tx_rejected_total", "kind" => kind_name, "code" => r.code.name()).increment(1);
                tracing::debug!(kind = kind_name, code = r.code.name(), reason = %r.message, "CheckTx refused");
                rejection(r.code, r.message)
            }
            // The node's own failure: the client may retry elsewhere; the
            // transaction keeps no "rejected" status, it was not judged.
            Err(ExecError::Storage(e)) => {
                metrics::counter!("weft_check_tx_rejected_total", "kind" => kind_name, "code" => TxCode::Internal.name()).increment(1);
                tracing::error!(kind = kind_name, error = %e, "CheckTx could not read state");
                let why = storage_failure(&e);
                rejection(why.code, why.message)
            }
        }
    }

    /// Admission (`stateless` is `Some`) or recheck (`None`); returns the
    /// tx hash and signer.
    fn stateful(
        &self,
        tx: &Bytes,
        stateless: Option<Result<CheckedTx, Rejection>>,
        now: Instant,
    ) -> Result<(Hash, String), ExecError> {
        let snapshot = self.storage.snapshot()?;
        // The stateless step already hashed an admissible tx.
        let hash = match &stateless {
            Some(Ok(checked)) => checked.hash,
            _ => weft_core::sha256(tx),
        };
        let mut pool = lock(&self.pool);
        let result = match stateless {
            None => pool.recheck(&snapshot, &hash, now).map(|()| {
                let signer = pool
                    .get(&hash)
                    .map(|e| e.checked.signer.to_string())
                    .unwrap_or_default();
                (hash, signer)
            }),
            Some(checked) => checked
                .map_err(ExecError::from)
                .and_then(|checked| {
                    let signer = checked.signer.to_string();
                    pool.admit(&snapshot, checked, tx.clone(), now)
                        .map(|_| (hash, signer))
                })
                .inspect_err(|e| {
                    if let Some(r) = e.rejection() {
                        pool.record_rejection(hash, r, now);
                    }
                }),
        };
        pool.report_metrics();
        result
    }
}

/// The stateless step's result for one CometBFT transaction.
enum Stateless {
    Tx(Result<CheckedTx, Rejection>),
    Envelope(Result<Vec<Inner>, Rejection>),
}

/// Each inner transaction's hash and whether it is held.
type InnerResults = Vec<(Hash, Result<(), Rejection>)>;

/// One inner transaction after the stateless step.
struct Inner {
    bytes: Bytes,
    hash: Hash,
    checked: Result<CheckedTx, Rejection>,
}

/// The node's own failure to read its state, as a refusal: the client may
/// retry elsewhere (the transaction was not judged).
fn storage_failure(e: &crate::storage::StorageError) -> Rejection {
    Rejection::new(TxCode::Internal, format!("node storage failure: {e}"))
}

/// What became of one transaction of a batch or an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxOutcome {
    /// Admitted now, pending or parked.
    Admitted {
        /// Its hash.
        hash: Hash,
        /// Its status in the pool.
        status: TxStatus,
    },
    /// This node held it already (another submission or a gossiped
    /// envelope brought it first).
    Held {
        /// Its hash.
        hash: Hash,
        /// Its status in the pool.
        status: TxStatus,
    },
    /// Refused, with why.
    Refused {
        /// SHA-256 of the bytes (for bytes that do not decode too).
        hash: Hash,
        /// Why.
        rejection: Rejection,
    },
}

/// A refusal as CheckTx returns it.
pub fn rejection(code: TxCode, log: String) -> resp::CheckTx {
    resp::CheckTx {
        code: Code::from(code.value()),
        log,
        codespace: "weft".into(),
        ..Default::default()
    }
}

/// The mempool connection's service: stateless checks in parallel on
/// blocking threads (at most one per core), stateful steps in request
/// order. One per connection (each clone starts its own order).
pub struct CheckTxService {
    admission: Admission,
    verifiers: Arc<Semaphore>,
    /// Resolved when the previous request's stateful step is done.
    previous: Option<oneshot::Receiver<()>>,
}

impl CheckTxService {
    /// A service verifying on up to `threads` threads at once.
    pub fn new(admission: Admission, threads: usize) -> Self {
        CheckTxService {
            admission,
            verifiers: Arc::new(Semaphore::new(threads.max(1))),
            previous: None,
        }
    }
}

impl Clone for CheckTxService {
    fn clone(&self) -> Self {
        CheckTxService {
            admission: self.admission.clone(),
            verifiers: self.verifiers.clone(),
            previous: None,
        }
    }
}

/// Why the mempool connection could not answer.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower::Service<MempoolRequest> for CheckTxService {
    type Response = MempoolResponse;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<MempoolResponse, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: MempoolRequest) -> Self::Future {
        let MempoolRequest::CheckTx(req) = req;
        // A lone transaction (or a recheck) with nothing ahead of it is
        // checked right here, on the connection's task: tens of
        // microseconds, against the thread hand-overs (a blocking thread,
        // then the turn) that would each wait for a core on a busy
        // machine, for every `broadcast_tx_sync`. Envelopes, whose batch
        // verification takes milliseconds, and anything queued behind an
        // unfinished request go the parallel way.
        let idle = self
            .previous
            .as_mut()
            .is_none_or(|p| !matches!(p.try_recv(), Err(oneshot::error::TryRecvError::Empty)));
        if idle {
            // Finished (a receiver that has answered must not be polled again).
            self.previous = None;
        }
        if idle && (req.kind == CheckTxKind::Recheck || !Envelope::is_envelope(&req.tx)) {
            let response = self.admission.check_tx(&req);
            return Box::pin(std::future::ready(Ok(MempoolResponse::CheckTx(response))));
        }
        let (done, turn) = oneshot::channel();
        let previous = self.previous.replace(turn);
        let admission = self.admission.clone();
        let verifiers = self.verifiers.clone();
        Box::pin(async move {
            let (stateless, spent) = match req.kind {
                CheckTxKind::Recheck => (None, Duration::ZERO),
                CheckTxKind::New => {
                    let permit = verifiers.acquire_owned().await?;
                    let checker = admission.clone();
                    let tx = req.tx.clone();
                    let (result, spent) = tokio::task::spawn_blocking(move || {
                        let _permit = permit;
                        let started = Instant::now();
                        let result = checker.stateless_item(&tx);
                        (result, started.elapsed())
                    })
                    .await?;
                    (Some(result), spent)
                }
            };
            // A dropped predecessor (its connection closed) also ends its turn.
            if let Some(previous) = previous {
                let _ = previous.await;
            }
            let response = admission.finish_item(req.kind, &req.tx, stateless, spent);
            let _ = done.send(());
            Ok(MempoolResponse::CheckTx(response))
        })
    }
}

#[cfg(test)]
mod tests {
    use tower::Service;
    use weft_core::{Action, RollupId, SigningKey, Transaction};

    use super::*;
    use crate::mempool::MempoolConfig;

    const CHAIN: &str = "weft-admission-test";

    fn admission(funded: &SigningKey) -> (Admission, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let state =
            crate::test_support::state(CHAIN, Default::default(), &[(funded, 1_000_000_000)]);
        let pending = storage
            .prepare_commit(0, state.into_changes(), vec![])
            .unwrap();
        storage.commit(CHAIN, pending).unwrap();
        let chain_id = Arc::new(OnceLock::new());
        chain_id.set(CHAIN.to_string()).unwrap();
        let pool = Arc::new(Mutex::new(Mempool::new(MempoolConfig::default())));
        let a = Admission::new(storage, pool, SignatureCache::new(1000), chain_id);
        (a, dir)
    }

    fn tx(key: &SigningKey, nonce: u64) -> Bytes {
        Transaction {
            chain_id: CHAIN.into(),
            nonce,
            actions: vec![Action::SubmitRollupData {
                rollup_id: RollupId::from_name("r"),
                data: vec![nonce as u8; 200],
            }],
        }
        .sign(key)
        .encode()
        .into()
    }

    fn check(tx: Bytes) -> MempoolRequest {
        MempoolRequest::CheckTx(request::CheckTx {
            tx,
            kind: CheckTxKind::New,
        })
    }

    /// Many requests in flight at once, started newest first (each a few
    /// milliseconds before the next older one): the stateful steps still
    /// follow request order, so one account's 20 nonces are all admitted
    /// (newest first, 16 would park and the rest be refused as too many
    /// parked), and bad input is refused with its code.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn parallel_checks_admit_in_request_order() {
        let key = SigningKey::from_bytes([3; 32]);
        let (admission, _dir) = admission(&key);
        let mut service = CheckTxService::new(admission.clone(), 2);
        let mut forged = tx(&key, 1000).to_vec();
        let last = forged.len() - 1;
        forged[last] ^= 1;

        // An envelope first: its batch verification goes to a blocking
        // thread, so every lone transaction behind it queues for its turn
        // too (none is idle), and the turns must keep request order.
        let envelope = Envelope {
            txs: vec![tx(&key, 0).to_vec()],
        }
        .encode();
        let mut calls = vec![service.call(check(envelope.into()))];
        calls.extend((1..20).map(|n| service.call(check(tx(&key, n)))));
        calls.push(service.call(check(forged.into())));
        calls.push(service.call(check(Bytes::from_static(b"garbage"))));
        let mut running = Vec::new();
        for call in calls.into_iter().rev() {
            running.push(tokio::spawn(call));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut codes = Vec::new();
        for r in running {
            let MempoolResponse::CheckTx(r) = r.await.unwrap().unwrap();
            codes.push(r.code.value());
        }
        codes.reverse();
        let mut expected = vec![0; 20];
        expected.extend([TxCode::BadSignature.value(), TxCode::Malformed.value()]);
        assert_eq!(codes, expected);

        let pool = lock(&admission.pool);
        assert_eq!(pool.len(), 20);
        assert_eq!(pool.parked_len(), 0, "admitted in nonce order, none parked");
    }

    #[tokio::test]
    async fn a_lone_transaction_with_nothing_ahead_is_answered_in_the_call() {
        use futures::FutureExt;
        let key = SigningKey::from_bytes([4; 32]);
        let (admission, _dir) = admission(&key);
        let mut service = CheckTxService::new(admission.clone(), 2);
        for nonce in 0..3 {
            let answer = service.call(check(tx(&key, nonce))).now_or_never();
            let Some(Ok(MempoolResponse::CheckTx(r))) = answer else {
                panic!("nonce {nonce}: not answered in the call");
            };
            assert_eq!(r.code, Code::Ok, "{}", r.log);
        }
        // Behind an unfinished envelope, a lone transaction waits its turn.
        let envelope = Envelope {
            txs: vec![tx(&key, 3).to_vec()],
        }
        .encode();
        let first = service.call(check(envelope.into()));
        let mut second = service.call(check(tx(&key, 4)));
        assert!(
            (&mut second).now_or_never().is_none(),
            "answered out of turn"
        );
        let (MempoolResponse::CheckTx(a), MempoolResponse::CheckTx(b)) =
            (first.await.unwrap(), second.await.unwrap());
        assert_eq!(
            (a.code, b.code),
            (Code::Ok, Code::Ok),
            "{} {}",
            a.log,
            b.log
        );
        assert_eq!(lock(&admission.pool).len(), 5);
    }

    fn codes(data: &[u8]) -> Vec<u32> {
        data.chunks(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    /// An envelope's inner transactions are admitted one by one: good ones
    /// held, a forgery and a replayed nonce refused with their codes, a
    /// transaction held already counted as held; the envelope passes. A
    /// recheck keeps it while anything in it is held.
    #[tokio::test]
    async fn an_envelope_admits_each_inner_transaction_on_its_own() {
        let key = SigningKey::from_bytes([5; 32]);
        let (admission, _dir) = admission(&key);
        let mut service = CheckTxService::new(admission.clone(), 1);
        let first = tx(&key, 0);
        let MempoolResponse::CheckTx(r) = service.call(check(first.clone())).await.unwrap();
        assert_eq!(r.code, Code::Ok);
        let mut forged = tx(&key, 2).to_vec();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        let envelope = Envelope {
            txs: vec![
                first.to_vec(),
                tx(&key, 1).to_vec(),
                forged,
                b"garbage".to_vec(),
                tx(&key, 2).to_vec(),
            ],
        }
        .encode();
        let MempoolResponse::CheckTx(r) =
            service.call(check(envelope.clone().into())).await.unwrap();
        assert_eq!(r.code, Code::Ok, "{}", r.log);
        assert_eq!(
            codes(&r.data),
            vec![
                0,
                0,
                TxCode::BadSignature.value(),
                TxCode::Malformed.value(),
                0
            ]
        );
        {
            let pool = lock(&admission.pool);
            assert_eq!(pool.len(), 3);
            assert_eq!(pool.parked_len(), 0);
        }

        let recheck = |tx: Vec<u8>| {
            MempoolRequest::CheckTx(request::CheckTx {
                tx: tx.into(),
                kind: CheckTxKind::Recheck,
            })
        };
        let MempoolResponse::CheckTx(r) = service.call(recheck(envelope.clone())).await.unwrap();
        assert_eq!(r.code, Code::Ok);
        // Nothing of it held any more: CometBFT must drop it.
        let held: Vec<Hash> = [first.clone(), tx(&key, 1), tx(&key, 2)]
            .iter()
            .map(|t| weft_core::sha256(t))
            .collect();
        {
            let snapshot = admission.storage.snapshot().unwrap();
            let mut pool = lock(&admission.pool);
            pool.on_commit(&snapshot, &held, Instant::now()).unwrap();
            assert!(pool.is_empty());
        }
        let MempoolResponse::CheckTx(r) = service.call(recheck(envelope)).await.unwrap();
        assert!(r.code.is_err());
    }

    #[tokio::test]
    async fn an_envelope_with_nothing_admissible_is_refused() {
        let key = SigningKey::from_bytes([6; 32]);
        let (admission, _dir) = admission(&key);
        let mut service = CheckTxService::new(admission.clone(), 1);
        let stranger = SigningKey::from_bytes([7; 32]);
        let envelope = Envelope {
            txs: vec![tx(&stranger, 0).to_vec(), tx(&key, 5000).to_vec()],
        }
        .encode();
        let MempoolResponse::CheckTx(r) = service.call(check(envelope.into())).await.unwrap();
        assert!(r.code.is_err(), "{}", r.log);
        assert_eq!(codes(&r.data).len(), 2);
        assert!(codes(&r.data).iter().all(|c| *c != 0));
        // Malformed envelopes are refused as such.
        let mut bad = Envelope {
            txs: vec![tx(&key, 0).to_vec()],
        }
        .encode();
        bad.push(0);
        let MempoolResponse::CheckTx(r) = service.call(check(bad.into())).await.unwrap();
        assert_eq!(r.code.value(), TxCode::Malformed.value());
        assert!(lock(&admission.pool).is_empty());
    }

    #[test]
    fn a_batch_is_admitted_in_order_with_an_outcome_each() {
        let key = SigningKey::from_bytes([8; 32]);
        let (admission, _dir) = admission(&key);
        let txs: Vec<Bytes> = vec![
            tx(&key, 1),
            tx(&key, 0),
            tx(&key, 0),
            Bytes::from_static(b"x"),
        ];
        let outcomes = admission.admit_all(txs.clone(), 2);
        assert!(matches!(
            &outcomes[0],
            TxOutcome::Admitted {
                status: TxStatus::Parked {
                    waiting_for_nonce: 0
                },
                ..
            }
        ));
        assert!(matches!(
            &outcomes[1],
            TxOutcome::Admitted {
                status: TxStatus::Pending,
                ..
            }
        ));
        assert!(
            matches!(&outcomes[2], TxOutcome::Held { .. }),
            "{:?}",
            outcomes[2]
        );
        match &outcomes[3] {
            TxOutcome::Refused { hash, rejection } => {
                assert_eq!(*hash, weft_core::sha256(b"x"));
                assert_eq!(rejection.code, TxCode::Malformed);
            }
            other => panic!("{other:?}"),
        }
        // Submitting again: everything held, nothing re-verified.
        let again = admission.admit_all(txs[..2].to_vec(), 1);
        assert!(again.iter().all(|o| matches!(o, TxOutcome::Held { .. })));
    }

    #[tokio::test]
    async fn recheck_keeps_a_held_tx_and_refuses_an_unknown_one() {
        let key = SigningKey::from_bytes([4; 32]);
        let (admission, _dir) = admission(&key);
        let mut service = CheckTxService::new(admission, 1);
        let held = tx(&key, 0);
        let MempoolResponse::CheckTx(r) = service.call(check(held.clone())).await.unwrap();
        assert_eq!(r.code, Code::Ok);
        let recheck = |tx| {
            MempoolRequest::CheckTx(request::CheckTx {
                tx,
                kind: CheckTxKind::Recheck,
            })
        };
        let MempoolResponse::CheckTx(r) = service.call(recheck(held)).await.unwrap();
        assert_eq!(r.code, Code::Ok);
        let MempoolResponse::CheckTx(r) = service.call(recheck(tx(&key, 1))).await.unwrap();
        assert!(
            r.code.is_err(),
            "never admitted here: CometBFT must drop it"
        );
    }
}
