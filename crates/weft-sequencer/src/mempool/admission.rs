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
use weft_core::{Hash, TxCode};

use super::{lock, Mempool, SignatureCache};
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
            CheckTxKind::New => Some(self.stateless(&req.tx)),
            CheckTxKind::Recheck => None,
        };
        self.finish(req.kind, &req.tx, stateless, started.elapsed())
    }

    /// Decoding, chain id and signature: needs no state, so it may run on
    /// any thread, in any order.
    fn stateless(&self, tx: &[u8]) -> Result<CheckedTx, Rejection> {
        self.signatures.check_stateless(tx, self.chain_id())
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
                rejection(TxCode::Internal, format!("node storage failure: {e}"))
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
                        let result = checker.stateless(&tx);
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
            let response = admission.finish(req.kind, &req.tx, stateless, spent);
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

        let mut calls: Vec<_> = (0..20).map(|n| service.call(check(tx(&key, n)))).collect();
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
