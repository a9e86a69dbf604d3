//! The HTTP API against a real app, storage and mempool, with a stand-in
//! for the local CometBFT's RPC (unit scope: the e2e tests use the real one).

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use axum::{
    body::{to_bytes, Body},
    extract::ConnectInfo,
    http::{Request, StatusCode},
    response::Response,
    routing::post,
    Json, Router,
};
use bytes::Bytes;
use serde_json::{json, Value};
use tendermint::{
    abci::{request::CheckTxKind, response as resp, types::CommitInfo},
    account,
    v0_38::abci::{request, Request as AbciRequest, Response as AbciResponse},
    Time,
};
use tower::ServiceExt;
use weft_core::{
    transaction::MAX_TX_BYTES, Action, GenesisAccount, GenesisAppState, RollupId, SigningKey,
    Transaction,
};

use super::*;
use crate::{app::AppConfig, mempool::MempoolConfig, App};

const CHAIN: &str = "weft-api-test";
const NOWHERE: &str = "http://127.0.0.1:1";

// ---------------------------------------------------------------- fixtures

/// A CometBFT stand-in answering every JSON-RPC call with `answer` (and
/// `status`), counting the calls.
async fn fake_cometbft_with(status: StatusCode, answer: Value) -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let app = Router::new().route(
        "/",
        post(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let answer = answer.clone();
            async move { (status, Json(answer)) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), calls)
}

async fn fake_cometbft(answer: Value) -> (String, Arc<AtomicUsize>) {
    fake_cometbft_with(StatusCode::OK, answer).await
}

/// `broadcast_tx_sync`'s answer with `code` and `log`.
fn check_tx_answer(code: u32, log: &str) -> Value {
    json!({ "jsonrpc": "2.0", "id": -1, "result": {
        "code": code, "data": "", "log": log, "codespace": "", "hash": "AB".repeat(32) } })
}

/// CometBFT's answer to a replay its cache caught.
fn in_cache_answer() -> Value {
    json!({ "jsonrpc": "2.0", "id": -1, "error": {
        "code": -32603, "message": "Internal error", "data": "tx already exists in cache" } })
}

/// A state whose commit notifications the test sends itself.
fn state_at(rpc: &str) -> (ApiState, watch::Sender<u64>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path()).unwrap();
    let pool = Arc::new(Mutex::new(Mempool::new(MempoolConfig::default())));
    let (tx, rx) = watch::channel(0);
    (
        ApiState::new(storage, pool, rx, rpc, None).unwrap(),
        tx,
        dir,
    )
}

/// A state and what must outlive it (the store; the commit channel,
/// without which waiters would return at once as if the app had stopped).
fn state(rpc: &str) -> (ApiState, (watch::Sender<u64>, tempfile::TempDir)) {
    let (s, tx, d) = state_at(rpc);
    (s, (tx, d))
}

fn from(ip: [u8; 4], mut req: Request<Body>) -> Request<Body> {
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((ip, 40_000))));
    req
}

/// A request as a local client sends it (the server adds the peer address).
fn local(req: Request<Body>) -> Request<Body> {
    from([127, 0, 0, 1], req)
}

async fn json_of(resp: Response) -> (StatusCode, Value) {
    let status = resp.status();
    let body = to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, Value) {
    json_of(app.clone().oneshot(local(req)).await.unwrap()).await
}

async fn call(state: ApiState, req: Request<Body>) -> (StatusCode, Value) {
    send(&router(state), req).await
}

fn get(uri: impl AsRef<str>) -> Request<Body> {
    Request::get(uri.as_ref()).body(Body::empty()).unwrap()
}

fn post_json(body: Value) -> Request<Body> {
    Request::post("/v1/tx")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn post_raw(tx: impl Into<Body>) -> Request<Body> {
    Request::post("/v1/tx").body(tx.into()).unwrap()
}

/// An error body is exactly `{ code, message, ... }` with these.
fn assert_error(got: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["code"], code, "{}", got.1);
    assert!(got.1["message"].is_string(), "{}", got.1);
}

/// A real app (genesis written, `key` funded) over the same storage and
/// mempool as an API state whose commit notifications the test sends.
struct Node {
    app: App,
    state: ApiState,
    commits: watch::Sender<u64>,
    key: SigningKey,
    _dir: tempfile::TempDir,
}

impl Node {
    fn new(rpc: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let mut app = App::new(storage.clone(), AppConfig::default()).unwrap();
        let key = SigningKey::from_seed("api-test");
        let genesis = GenesisAppState {
            accounts: vec![GenesisAccount {
                address: key.address(),
                balance: 1_000_000_000,
            }],
            ..Default::default()
        };
        let r = app.handle(AbciRequest::InitChain(request::InitChain {
            time: Time::from_unix_timestamp(1_700_000_000, 0).unwrap(),
            chain_id: CHAIN.into(),
            consensus_params: crate::test_support::consensus_params(),
            validators: vec![],
            app_state_bytes: serde_json::to_vec(&genesis).unwrap().into(),
            initial_height: 1u32.into(),
        }));
        assert!(matches!(r, AbciResponse::InitChain(_)));
        let (commits, rx) = watch::channel(0);
        let state = ApiState::new(storage, app.mempool(), rx, rpc, None).unwrap();
        Node {
            app,
            state,
            commits,
            key,
            _dir: dir,
        }
    }

    fn tx(&self, nonce: u64, data: &[u8]) -> Vec<u8> {
        Transaction {
            chain_id: CHAIN.into(),
            nonce,
            actions: vec![Action::SubmitRollupData {
                rollup_id: RollupId::from_name("r"),
                data: data.to_vec(),
            }],
        }
        .sign(&self.key)
        .encode()
    }

    /// CheckTx, as CometBFT runs it on a new transaction.
    fn check(&mut self, tx: &[u8]) -> resp::CheckTx {
        match self.app.handle(AbciRequest::CheckTx(request::CheckTx {
            tx: Bytes::copy_from_slice(tx),
            kind: CheckTxKind::New,
        })) {
            AbciResponse::CheckTx(r) => r,
            other => panic!("{other:?}"),
        }
    }

    /// Runs and commits `height` with what the pool proposes, caching a
    /// stand-in signed header for it. Does not notify the API.
    fn commit(&mut self, height: u32) {
        let time = Time::from_unix_timestamp(1_700_000_000 + i64::from(height), 0).unwrap();
        let proposer = account::Id::new([7; 20]);
        let txs = match self
            .app
            .handle(AbciRequest::PrepareProposal(request::PrepareProposal {
                max_tx_bytes: 1 << 20,
                txs: vec![],
                local_last_commit: None,
                misbehavior: vec![],
                height: height.into(),
                time,
                next_validators_hash: Default::default(),
                proposer_address: proposer,
            })) {
            AbciResponse::PrepareProposal(r) => r.txs,
            other => panic!("{other:?}"),
        };
        let hash = tendermint::Hash::Sha256([height as u8; 32]);
        let r = self
            .app
            .handle(AbciRequest::FinalizeBlock(request::FinalizeBlock {
                txs,
                decided_last_commit: CommitInfo {
                    round: 0u16.into(),
                    votes: vec![],
                },
                misbehavior: vec![],
                hash,
                height: height.into(),
                time,
                next_validators_hash: Default::default(),
                proposer_address: proposer,
            }));
        assert!(matches!(r, AbciResponse::FinalizeBlock(_)));
        assert!(matches!(
            self.app.handle(AbciRequest::Commit),
            AbciResponse::Commit(_)
        ));
        self.state
            .headers
            .store_all(&[(u64::from(height), signed_header(height))])
            .unwrap();
    }

    /// Tells the API what the app committed.
    fn notify(&self) {
        self.commits
            .send_replace(*self.app.subscribe_commits().borrow());
    }

    fn router(&self) -> Router {
        router(self.state.clone())
    }
}

/// The API serves cached signed headers verbatim; their content is the
/// conductor's business (pinned in `headers`' tests).
fn signed_header(height: u32) -> Value {
    json!({ "header": { "height": height.to_string() }, "commit": {} })
}

fn rollup_hex() -> String {
    RollupId::from_name("r").to_hex()
}

// ------------------------------------------------------- errors are JSON

#[tokio::test]
async fn bad_requests_get_json_errors_with_matching_statuses() {
    let (s, _d) = state(NOWHERE);
    let app = router(s);
    assert_error(
        &send(&app, get("/v1/tx/not-hex")).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    assert_error(
        &send(&app, get("/v1/nothing")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &send(&app, post_json(json!({ "tx": "%%% not base64" }))).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    assert_error(
        &send(&app, post_json(json!({ "tx": "AAAA", "extra": 1 }))).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    assert_error(
        &send(&app, post_raw(Body::empty())).await,
        StatusCode::BAD_REQUEST,
        "empty_tx",
    );
    // CometBFT down: a clear 502, nothing panics.
    assert_error(
        &send(&app, post_raw(vec![1u8; 10])).await,
        StatusCode::BAD_GATEWAY,
        "cometbft_unreachable",
    );
    let (st, body) = send(&app, get(format!("/v1/tx/{}", "ab".repeat(32)))).await;
    assert_eq!(
        (st, body["status"].as_str()),
        (StatusCode::OK, Some("unknown"))
    );
}

#[tokio::test]
async fn framework_rejections_are_json_too() {
    let (s, _d) = state(NOWHERE);
    let app = router(s);
    // Wrong method: 405 with its Allow header, as JSON.
    let resp = app.clone().oneshot(local(get("/v1/tx"))).await.unwrap();
    assert!(resp.headers().get("allow").is_some());
    assert_error(
        &json_of(resp).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    // Truncated and malformed JSON bodies.
    for body in ["{\"tx\": \"AQ", "{not json"] {
        let req = Request::post("/v1/tx")
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        assert_error(&send(&app, req).await, StatusCode::BAD_REQUEST, "bad_json");
    }
    // A content type that is neither raw bytes nor JSON.
    let req = Request::post("/v1/tx")
        .header("content-type", "text/plain")
        .body(Body::from("hello"))
        .unwrap();
    assert_error(
        &send(&app, req).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    // A path parameter that is not UTF-8.
    assert_error(
        &send(&app, get("/v1/tx/%FF%FE")).await,
        StatusCode::BAD_REQUEST,
        "bad_path",
    );
    // Query strings axum cannot deserialize.
    let base = format!("/v1/rollups/{}/batches", rollup_hex());
    for q in ["from=abc", "from=1&surprise=2", "limit=3"] {
        assert_error(
            &send(&app, get(format!("{base}?{q}"))).await,
            StatusCode::BAD_REQUEST,
            "bad_query",
        );
    }
    assert_error(
        &send(
            &app,
            get(format!("/v1/rollups/{}/stream?from=x", rollup_hex())),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "bad_query",
    );
}

#[tokio::test]
async fn a_request_past_its_timeout_is_a_json_408() {
    let (s, _d) = state(NOWHERE);
    let s = s.with_limits(ApiLimits {
        request_timeout: Duration::from_millis(100),
        ..ApiLimits::default()
    });
    // A long-poll for a height that never comes outlives the timeout.
    let uri = format!("/v1/rollups/{}/batches?from=1&wait_ms=5000", rollup_hex());
    assert_error(
        &call(s, get(uri)).await,
        StatusCode::REQUEST_TIMEOUT,
        "timeout",
    );
}

// ------------------------------------------------------------- POST /v1/tx

#[tokio::test]
async fn oversized_transactions_are_413_and_never_reach_cometbft() {
    let (rpc, calls) = fake_cometbft(check_tx_answer(0, "")).await;
    let (s, _d) = state(&rpc);
    let app = router(s);
    let over = vec![7u8; MAX_TX_BYTES + 1];
    // Raw bytes within the body limit but over the transaction limit.
    assert_error(
        &send(&app, post_raw(over.clone())).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "tx_too_large",
    );
    // The same as base64 JSON (also within the body limit).
    assert_error(
        &send(&app, post_json(json!({ "tx": STANDARD.encode(&over) }))).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "tx_too_large",
    );
    // A body over the limit is refused before it is parsed, as JSON.
    assert_error(
        &send(&app, post_raw(vec![0u8; MAX_BODY_BYTES + 1])).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "tx_too_large",
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

use base64::{engine::general_purpose::STANDARD, Engine};

#[tokio::test]
async fn check_tx_outcomes_and_node_errors_map_to_statuses() {
    let (rejected, _) = fake_cometbft(check_tx_answer(4, "signature does not verify")).await;
    let (s, _d) = state(&rejected);
    let (st, body) = call(s, post_raw(vec![9u8; 40])).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "bad_signature");
    assert_eq!(body["abci_code"], 4);
    assert_eq!(body["message"], "signature does not verify");
    assert_eq!(body["hash"], weft_core::sha256(&[9u8; 40]).to_hex());

    // A JSON-RPC error for a transaction this node does not hold is the
    // node's error, by its code, whatever its text says.
    let (dup_text, _) = fake_cometbft(in_cache_answer()).await;
    let (s, _d) = state(&dup_text);
    let got = call(s, post_json(json!({ "tx": "AQID" }))).await;
    assert_error(&got, StatusCode::BAD_GATEWAY, "node_error");
    assert_eq!(got.1["rpc_code"], -32603);

    // An HTTP failure of the RPC itself.
    let (http_500, _) = fake_cometbft_with(StatusCode::INTERNAL_SERVER_ERROR, json!({})).await;
    let (s, _d) = state(&http_500);
    let got = call(s, post_raw(vec![1u8; 8])).await;
    assert_error(&got, StatusCode::BAD_GATEWAY, "node_error");
    assert_eq!(got.1["http_status"], 500);

    let (accepted, _) = fake_cometbft(check_tx_answer(0, "")).await;
    let (s, _d) = state(&accepted);
    let (st, body) = call(s, post_json(json!({ "tx": "AQID" }))).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    assert_eq!(body["hash"], weft_core::sha256(&[1, 2, 3]).to_hex());
}

#[tokio::test]
async fn a_replay_of_a_held_or_included_tx_is_a_duplicate_by_hash() {
    // CometBFT would accept anything: the node's own records decide.
    let (rpc, calls) = fake_cometbft(check_tx_answer(0, "")).await;
    let mut node = Node::new(&rpc);
    let tx = node.tx(0, b"hello");
    let hash = weft_core::sha256(&tx);
    assert!(node.check(&tx).code.is_ok());
    let app = node.router();
    let got = send(&app, post_raw(tx.clone())).await;
    assert_error(&got, StatusCode::CONFLICT, "duplicate");
    assert_eq!(got.1["hash"], hash.to_hex());
    assert_eq!(got.1["status"], "pending");
    assert_eq!(
        got.1["message"],
        format!("transaction {hash} is already pending")
    );
    // Parked: a nonce gap.
    let later = node.tx(5, b"later");
    assert!(node.check(&later).code.is_ok());
    let got = send(&app, post_raw(later)).await;
    assert_error(&got, StatusCode::CONFLICT, "duplicate");
    assert_eq!(got.1["status"], "parked");
    // Included at height 1.
    node.commit(1);
    let got = send(&app, post_json(json!({ "tx": STANDARD.encode(&tx) }))).await;
    assert_error(&got, StatusCode::CONFLICT, "duplicate");
    assert_eq!(
        (got.1["status"].as_str(), got.1["height"].as_u64()),
        (Some("included"), Some(1))
    );
    assert_eq!(
        got.1["message"],
        format!("transaction {hash} is already included at height 1")
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0, "decided before forwarding");
}

#[tokio::test]
async fn a_replay_refused_by_cometbft_is_a_duplicate_when_the_node_holds_it() {
    // The race the pre-check cannot see: CometBFT admits the tx (through
    // another submission) while this one is on its way, then refuses this
    // one from its cache.
    let node = Node::new(NOWHERE);
    let tx = node.tx(0, b"raced");
    let hash = weft_core::sha256(&tx);
    let pool = node.state.mempool.clone();
    let admitted = Arc::new(Mutex::new(Some(node.app)));
    let racing = admitted.clone();
    let tx_for_cometbft = tx.clone();
    let cometbft = Router::new().route(
        "/",
        post(move || {
            let mut app = racing.lock().unwrap().take().unwrap();
            let r = app.handle(AbciRequest::CheckTx(request::CheckTx {
                tx: Bytes::from(tx_for_cometbft.clone()),
                kind: CheckTxKind::New,
            }));
            assert!(matches!(r, AbciResponse::CheckTx(ref c) if c.code.is_ok()));
            *racing.lock().unwrap() = Some(app);
            async { Json(in_cache_answer()) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rpc = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, cometbft).await });
    let (state, _tx, _d) = state_at(&rpc);
    let state = ApiState {
        mempool: pool,
        storage: node.state.storage.clone(),
        ..state
    };
    let got = call(state, post_raw(tx)).await;
    assert_error(&got, StatusCode::CONFLICT, "duplicate");
    assert_eq!(got.1["hash"], hash.to_hex());
}

// ------------------------------------------------------------- accounts

#[tokio::test]
async fn an_account_shows_the_nonce_after_its_pending_transactions() {
    let mut node = Node::new(NOWHERE);
    let t0 = node.tx(0, b"a");
    assert!(node.check(&t0).code.is_ok());
    node.commit(1);
    // Committed nonce 1; two more pending.
    for n in [1, 2] {
        let t = node.tx(n, b"b");
        assert!(node.check(&t).code.is_ok());
    }
    let addr = node.key.address();
    let (st, body) = send(&node.router(), get(format!("/v1/accounts/{addr}"))).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(
        (body["nonce"].as_u64(), body["pending_nonce"].as_u64()),
        (Some(1), Some(3))
    );
    // The ABCI query answers the same.
    let q = match node.app.handle(AbciRequest::Query(request::Query {
        data: Bytes::new(),
        path: format!("account/{addr}"),
        height: 0u32.into(),
        prove: false,
    })) {
        AbciResponse::Query(q) => q,
        other => panic!("{other:?}"),
    };
    let view: Value = serde_json::from_slice(&q.value).unwrap();
    assert_eq!(
        (view["nonce"].as_u64(), view["pending_nonce"].as_u64()),
        (Some(1), Some(3))
    );
}

// ------------------------------------------------------ heights and batches

#[tokio::test]
async fn a_height_not_committed_is_the_same_404_everywhere() {
    let mut node = Node::new(NOWHERE);
    node.commit(1);
    node.commit(2);
    let app = node.router();
    for uri in [
        "/v1/validator-sets/5".to_string(),
        format!("/v1/rollups/{}/batches/5", rollup_hex()),
    ] {
        let got = send(&app, get(&uri)).await;
        assert_error(&got, StatusCode::NOT_FOUND, "not_committed");
        assert_eq!(
            got.1["message"], "height 5 is not committed yet (latest 2)",
            "{uri}"
        );
    }
    let (st, body) = send(&app, get(format!("/v1/rollups/{}/batches/2", rollup_hex()))).await;
    assert_eq!((st, body["height"].as_u64()), (StatusCode::OK, Some(2)));
}

#[tokio::test]
async fn hostile_heights_are_400_not_a_panic() {
    let mut node = Node::new(NOWHERE);
    node.commit(1);
    let app = node.router();
    let r = rollup_hex();
    let max = u64::MAX;
    let beyond = i64::MAX as u64 + 1;
    for uri in [
        format!("/v1/rollups/{r}/batches?from={max}&limit=500"),
        format!("/v1/rollups/{r}/batches?from={}&limit=10", max - 3),
        format!("/v1/rollups/{r}/batches?from={beyond}"),
        format!("/v1/rollups/{r}/batches?from=0"),
        format!("/v1/rollups/{r}/batches/{max}"),
        format!("/v1/rollups/{r}/batches/0"),
        format!("/v1/rollups/{r}/stream?from={max}"),
        format!("/v1/validator-sets/{beyond}"),
    ] {
        assert_error(
            &send(&app, get(&uri)).await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        );
    }
    // The largest height CometBFT could have is merely not committed.
    let got = send(
        &app,
        get(format!("/v1/rollups/{r}/batches?from={}", MAX_HEIGHT)),
    )
    .await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    assert_eq!(got.1["items"], json!([]));
}

#[tokio::test]
async fn a_long_poll_wakes_on_a_commit_notification_not_by_polling() {
    let mut node = Node::new(NOWHERE);
    node.commit(1);
    node.notify();
    let app = node.router();
    let uri = format!("/v1/rollups/{}/batches?from=2&wait_ms=400", rollup_hex());
    // Height 2 lands in storage during the wait, but nobody announces it:
    // a request that polled storage would find it; this one waits it out.
    let waiting = tokio::spawn({
        let app = app.clone();
        let uri = uri.clone();
        async move { send(&app, get(uri)).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    node.commit(2);
    let (st, body) = waiting.await.unwrap();
    assert_eq!((st, body["items"].clone()), (StatusCode::OK, json!([])));
    // Announced: a waiting request answers at once.
    node.commit(3);
    let uri = format!("/v1/rollups/{}/batches?from=3&wait_ms=10000", rollup_hex());
    let started = std::time::Instant::now();
    let waiting = tokio::spawn(async move { send(&app, get(uri)).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    node.notify();
    let (st, body) = waiting.await.unwrap();
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["items"][0]["height"], 3);
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Reads SSE events from a streaming body until `n` have arrived.
async fn next_events(body: &mut axum::body::BodyDataStream, n: usize) -> Vec<(String, Value)> {
    use futures::StreamExt;
    let mut text = String::new();
    let mut events = Vec::new();
    while events.len() < n {
        let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
            .await
            .expect("an event within 5 s")
            .expect("the stream stays open")
            .unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let mut kind = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(k) = line.strip_prefix("event:") {
                    kind = k.trim().to_string();
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim());
                }
            }
            if !kind.is_empty() {
                events.push((kind, serde_json::from_str(&data).unwrap_or(Value::Null)));
            }
        }
    }
    events
}

#[tokio::test]
async fn a_stream_sends_each_height_when_its_commit_is_announced() {
    let mut node = Node::new(NOWHERE);
    let app = node.router();
    let resp = app
        .clone()
        .oneshot(local(get(format!(
            "/v1/rollups/{}/stream?from=1",
            rollup_hex()
        ))))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body().into_data_stream();
    // Committed but not announced: nothing is sent (a polling stream would
    // send height 1 within 25 ms).
    node.commit(1);
    use futures::StreamExt;
    let quiet = tokio::time::timeout(Duration::from_millis(300), body.next()).await;
    assert!(quiet.is_err(), "no event before the announcement");
    node.notify();
    let events = next_events(&mut body, 1).await;
    assert_eq!(events[0].0, "batch");
    assert_eq!(events[0].1["height"], 1);
    node.commit(2);
    node.commit(3);
    node.notify();
    let events = next_events(&mut body, 2).await;
    let heights: Vec<_> = events.iter().map(|(_, e)| e["height"].clone()).collect();
    assert_eq!(heights, [json!(2), json!(3)]);
}

#[tokio::test]
async fn streams_over_the_cap_are_refused_until_one_closes() {
    let (s, _d) = state(NOWHERE);
    let s = s.with_limits(ApiLimits {
        max_streams: 2,
        ..ApiLimits::default()
    });
    let app = router(s);
    let uri = format!("/v1/rollups/{}/stream?from=1", rollup_hex());
    let first = app.clone().oneshot(local(get(&uri))).await.unwrap();
    let second = app.clone().oneshot(local(get(&uri))).await.unwrap();
    assert_eq!(
        (first.status(), second.status()),
        (StatusCode::OK, StatusCode::OK)
    );
    let refused = app.clone().oneshot(local(get(&uri))).await.unwrap();
    assert!(refused.headers().get("retry-after").is_some());
    assert_error(
        &json_of(refused).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "too_many_streams",
    );
    drop(first);
    let again = app.clone().oneshot(local(get(&uri))).await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    drop(second);
}

// ----------------------------------------------------------------- limits

#[tokio::test]
async fn a_client_over_its_rate_is_429_with_retry_after_and_others_are_not() {
    let (s, _d) = state(NOWHERE);
    let s = s.with_limits(ApiLimits {
        rate_limit_per_second: 1,
        rate_limit_burst: 3,
        ..ApiLimits::default()
    });
    let app = router(s);
    let remote = [203, 0, 113, 7];
    for _ in 0..3 {
        let resp = app
            .clone()
            .oneshot(from(remote, get("/health")))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let resp = app
        .clone()
        .oneshot(from(remote, get("/health")))
        .await
        .unwrap();
    assert!(resp.headers().get("retry-after").is_some());
    assert_error(
        &json_of(resp).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    );
    // Another address has its own quota; loopback is exempt by default.
    let other = app
        .clone()
        .oneshot(from([203, 0, 113, 8], get("/health")))
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK);
    for _ in 0..20 {
        let resp = app.clone().oneshot(local(get("/health"))).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn loopback_is_limited_when_configured_and_no_peer_means_no_service() {
    let (s, _d) = state(NOWHERE);
    let s = s.with_limits(ApiLimits {
        rate_limit_per_second: 1,
        rate_limit_burst: 1,
        rate_limit_loopback: true,
        ..ApiLimits::default()
    });
    let app = router(s);
    assert_eq!(send(&app, get("/health")).await.0, StatusCode::OK);
    assert_error(
        &send(&app, get("/health")).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    );
    // Served without connect info, the limiter cannot key a request: it
    // refuses rather than let everything through unlimited.
    let resp = app.clone().oneshot(get("/health")).await.unwrap();
    assert_error(
        &json_of(resp).await,
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
    );
}

#[tokio::test]
async fn requests_over_the_in_flight_cap_are_shed_with_503() {
    let (s, _d) = state(NOWHERE);
    let s = s.with_limits(ApiLimits {
        max_concurrent_requests: 1,
        ..ApiLimits::default()
    });
    let app = router(s);
    // One long-poll holds the only slot...
    let uri = format!("/v1/rollups/{}/batches?from=1&wait_ms=1000", rollup_hex());
    let holding = tokio::spawn({
        let app = app.clone();
        async move { send(&app, get(uri)).await }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    // ...so another request is answered at once, not queued.
    let resp = app.clone().oneshot(local(get("/health"))).await.unwrap();
    assert!(resp.headers().get("retry-after").is_some());
    assert_error(
        &json_of(resp).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "overloaded",
    );
    assert_eq!(holding.await.unwrap().0, StatusCode::OK);
    assert_eq!(send(&app, get("/health")).await.0, StatusCode::OK);
}

// ----------------------------------------------------------------- health

/// CometBFT v0.38.25's `/status` answer (taken from a real node) with
/// `catching_up` set.
fn status_answer(catching_up: bool) -> Value {
    json!({"jsonrpc":"2.0","id":-1,"result":{
        "node_info":{"protocol_version":{"p2p":"8","block":"11","app":"1"},
            "id":"031d5881fb81f11e09d540380f80d044f6a065df","listen_addr":"tcp://127.0.0.1:36656",
            "network":"weft-api-test","version":"0.38.25","channels":"40202122233038606100",
            "moniker":"vm","other":{"tx_index":"on","rpc_address":"tcp://127.0.0.1:36657"}},
        "sync_info":{
            "latest_block_hash":"96A4E61FB7D9BE2531AC07B950D5C5E8E6B6053C0C5E196C11933C1F04245B1A",
            "latest_app_hash":"0000000000000000","latest_block_height":"3",
            "latest_block_time":"2026-11-30T14:21:07.309391817Z",
            "earliest_block_hash":"2AAB3AE3AAC74E8A640F1E560FEEE13736FBD607E834A429BFED1E56286D16B8",
            "earliest_app_hash":"0000000000000000","earliest_block_height":"1",
            "earliest_block_time":"2026-11-30T14:21:04.910912585Z","catching_up":catching_up},
        "validator_info":{"address":"790094D59D0919B03DFD256C9E96265284E14A50",
            "pub_key":{"type":"tendermint/PubKeyEd25519","value":"lespvJm/y7Y2NtIUpMgmau6LLEB+PxfVpvGRQmqIfpQ="},
            "voting_power":"10"}}})
}

#[tokio::test]
async fn ready_only_once_cometbft_has_caught_up_while_health_stays_200() {
    // Caught up: both 200.
    let (rpc, _) = fake_cometbft(status_answer(false)).await;
    let (s, _d) = state(&rpc);
    let app = router(s);
    let got = send(&app, get("/health/ready")).await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    assert_eq!(got.1["catching_up"], false);
    assert_eq!(got.1["status"], "ok");
    // Syncing: not ready, but alive (liveness must not restart it).
    let (rpc, _) = fake_cometbft(status_answer(true)).await;
    let (s, _d) = state(&rpc);
    let app = router(s);
    let got = send(&app, get("/health/ready")).await;
    assert_eq!(got.0, StatusCode::SERVICE_UNAVAILABLE, "{}", got.1);
    assert_eq!(
        (got.1["status"].as_str(), got.1["catching_up"].as_bool()),
        (Some("catching_up"), Some(true))
    );
    let got = send(&app, get("/health")).await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    assert_eq!(got.1["catching_up"], true);
    // CometBFT not answering: not ready, still alive.
    let (s, _d) = state(NOWHERE);
    let app = router(s);
    let got = send(&app, get("/health/ready")).await;
    assert_eq!(got.0, StatusCode::SERVICE_UNAVAILABLE, "{}", got.1);
    assert_eq!(got.1["status"], "cometbft_unreachable");
    assert!(got.1["catching_up"].is_null());
    assert_eq!(send(&app, get("/health")).await.0, StatusCode::OK);
}

// ------------------------------------------------- staking and governance

mod staking_and_governance {
    use weft_core::{
        Address, GenesisStaking, GenesisValidator, GovernanceParams, ProposalKind, StakingParams,
        VoteOption,
    };

    use super::*;
    use crate::test_support::run_block;

    const VALIDATORS: [&str; 4] = ["v0", "v1", "v2", "v3"];

    fn key(seed: &str) -> SigningKey {
        SigningKey::from_seed(seed)
    }

    fn addr(seed: &str) -> Address {
        key(seed).address()
    }

    fn consensus(seed: &str) -> [u8; 32] {
        key(&format!("{seed}/consensus")).public_key().0
    }

    /// A real app with four genesis validators (self-bond 100 each), a
    /// funded candidate and delegator, epochs of 2 blocks and voting
    /// periods of 2 blocks; committed through height 0.
    struct StakingNode {
        app: App,
        state: ApiState,
        _commits: watch::Sender<u64>,
        height: u32,
        _dir: tempfile::TempDir,
    }

    impl StakingNode {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let storage = Storage::open(dir.path()).unwrap();
            let mut app = App::new(storage.clone(), AppConfig::default()).unwrap();
            let genesis = GenesisAppState {
                accounts: VALIDATORS
                    .iter()
                    .chain(&["cand", "d"])
                    .map(|s| GenesisAccount {
                        address: addr(s),
                        balance: 1_000_000_000,
                    })
                    .collect(),
                staking: Some(GenesisStaking {
                    params: StakingParams {
                        epoch_blocks: 2,
                        unbonding_blocks: 5,
                        max_power_share_bps: 10_000,
                        min_self_bond: 10,
                        ..StakingParams::default()
                    },
                    validators: VALIDATORS
                        .iter()
                        .map(|s| GenesisValidator {
                            operator: addr(s),
                            consensus_key: consensus(s),
                            name: (*s).into(),
                            website: String::new(),
                            commission_bps: 500,
                            self_bond: 100,
                        })
                        .collect(),
                }),
                governance: Some(GovernanceParams {
                    voting_period_blocks: 2,
                    min_deposit: 50,
                    ..GovernanceParams::default()
                }),
                ..Default::default()
            };
            let r = app.handle(AbciRequest::InitChain(request::InitChain {
                time: Time::from_unix_timestamp(1_700_000_000, 0).unwrap(),
                chain_id: CHAIN.into(),
                consensus_params: crate::test_support::consensus_params(),
                validators: vec![],
                app_state_bytes: serde_json::to_vec(&genesis).unwrap().into(),
                initial_height: 1u32.into(),
            }));
            assert!(matches!(r, AbciResponse::InitChain(_)));
            let (commits, rx) = watch::channel(0);
            let state = ApiState::new(storage, app.mempool(), rx, NOWHERE, None).unwrap();
            StakingNode {
                app,
                state,
                _commits: commits,
                height: 0,
                _dir: dir,
            }
        }

        /// Commits the next block with these transactions (each must
        /// execute).
        fn block(&mut self, txs: &[(&str, Action)]) {
            self.height += 1;
            let mut nonces = std::collections::BTreeMap::new();
            let signed: Vec<Bytes> = txs
                .iter()
                .map(|(signer, action)| {
                    let view =
                        accounts::query::account(&self.state.storage, None, &addr(signer), 0)
                            .unwrap();
                    let n = nonces.entry(*signer).or_insert(view.nonce);
                    let tx = Transaction {
                        chain_id: CHAIN.into(),
                        nonce: *n,
                        actions: vec![action.clone()],
                    }
                    .sign(&key(signer));
                    *n += 1;
                    Bytes::from(tx.encode())
                })
                .collect();
            // Into the mempool, where PrepareProposal takes them from.
            for tx in signed {
                match self.app.handle(AbciRequest::CheckTx(request::CheckTx {
                    tx,
                    kind: CheckTxKind::New,
                })) {
                    AbciResponse::CheckTx(r) => assert_eq!(r.code.value(), 0, "{}", r.log),
                    other => panic!("{other:?}"),
                }
            }
            let (_, fin) = run_block(&mut self.app, self.height, vec![]);
            // Item 0 is the commitments item.
            for (i, r) in fin.tx_results.iter().enumerate().skip(1) {
                assert_eq!(r.code.value(), 0, "tx {i} at {}: {}", self.height, r.log);
            }
            assert_eq!(fin.tx_results.len(), txs.len() + 1);
        }

        fn router(&self) -> Router {
            router(self.state.clone())
        }
    }

    fn vote(proposal_id: u64, option: VoteOption) -> Action {
        Action::Vote {
            proposal_id,
            option,
        }
    }

    /// Height 1: the candidate registers; `d` bonds 30 to `v0`. Height 2
    /// (an epoch): the candidate self-bonds 50; `d` unbonds 10. Height
    /// 3: proposal 0 (text) and 1 (admit the candidate), voting until the
    /// end of height 5.
    fn node() -> StakingNode {
        let mut n = StakingNode::new();
        n.block(&[
            (
                "cand",
                Action::RegisterValidator {
                    consensus_key: consensus("cand"),
                    name: "cand".into(),
                    website: "https://cand.example".into(),
                    commission_bps: 1_000,
                },
            ),
            (
                "d",
                Action::Delegate {
                    validator: addr("v0"),
                    amount: 30,
                },
            ),
        ]);
        n.block(&[
            (
                "cand",
                Action::Delegate {
                    validator: addr("cand"),
                    amount: 50,
                },
            ),
            (
                "d",
                Action::Undelegate {
                    validator: addr("v0"),
                    amount: 10,
                },
            ),
        ]);
        n.block(&[
            (
                "v0",
                Action::Propose {
                    kind: ProposalKind::Text {
                        title: "hello".into(),
                        description: String::new(),
                    },
                    deposit: 50,
                },
            ),
            (
                "v1",
                Action::Propose {
                    kind: ProposalKind::AdmitValidator {
                        operator: addr("cand"),
                    },
                    deposit: 60,
                },
            ),
        ]);
        n
    }

    #[tokio::test]
    async fn validators_show_stake_power_activity_and_the_nakamoto_coefficient() {
        let n = node();
        let app = n.router();
        let (st, v) = send(&app, get("/v1/validators")).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["height"], 3);
        // Four validators of 100, v0 with `d`'s 20 more since the epoch
        // at height 2.
        let rows = v["validators"].as_array().unwrap();
        assert_eq!(rows.len(), 5, "{v}");
        assert_eq!(v["total_power"], 420);
        assert_eq!(v["active_validators"], 4);
        // 120 + 100 = 220 > 420 / 3; 120 alone is not.
        assert_eq!(v["nakamoto_coefficient"], 2);
        let first = &rows[0];
        assert_eq!(first["operator"], addr("v0").to_string());
        assert_eq!(first["consensus_key"], hex::encode(consensus("v0")));
        assert_eq!(first["stake"], "120");
        assert_eq!(first["power"], 120);
        assert_eq!(first["share_bps"], 2857);
        assert_eq!(first["active"], true);
        assert_eq!(first["approved"], true);
        assert_eq!(first["commission_bps"], 500);
        let cand = rows
            .iter()
            .find(|r| r["name"] == "cand")
            .expect("the candidate is listed");
        assert_eq!(cand["operator"], addr("cand").to_string());
        assert_eq!(
            (
                &cand["approved"],
                &cand["active"],
                &cand["power"],
                &cand["stake"]
            ),
            (&json!(false), &json!(false), &json!(0), &json!("50"))
        );
        assert_eq!(cand["website"], "https://cand.example");

        let (st, one) = send(&app, get(format!("/v1/validators/{}", addr("cand")))).await;
        assert_eq!(st, StatusCode::OK, "{one}");
        assert_eq!(one["height"], 3);
        assert_eq!(one["operator"], addr("cand").to_string());
        assert_eq!(one["active"], false);
        assert_error(
            &send(&app, get(format!("/v1/validators/{}", addr("d")))).await,
            StatusCode::NOT_FOUND,
            "not_found",
        );
        assert_error(
            &send(&app, get("/v1/validators/weft1notanaddress")).await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        );
    }

    #[tokio::test]
    async fn delegations_and_unbonding_of_an_account() {
        let n = node();
        let app = n.router();
        let (st, v) = send(&app, get(format!("/v1/staking/delegations/{}", addr("d")))).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["address"], addr("d").to_string());
        assert_eq!(v["delegations"].as_array().unwrap().len(), 1, "{v}");
        assert_eq!(v["delegations"][0]["validator"], addr("v0").to_string());
        assert_eq!(v["delegations"][0]["amount"], "20");
        assert_eq!(v["unbonding"].as_array().unwrap().len(), 1, "{v}");
        assert_eq!(v["unbonding"][0]["amount"], "10");
        // Undelegated at height 2, unbonding_blocks 5.
        assert_eq!(v["unbonding"][0]["completion_height"], 7);
        // An account with nothing: empty lists, not 404.
        let (st, v) = send(
            &app,
            get(format!("/v1/staking/delegations/{}", addr("nobody"))),
        )
        .await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(
            (&v["delegations"], &v["unbonding"]),
            (&json!([]), &json!([]))
        );
        assert_error(
            &send(&app, get("/v1/staking/delegations/xyz")).await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        );
    }

    #[tokio::test]
    async fn proposals_filter_paginate_and_show_their_tally() {
        let mut n = node();
        // Height 4: three of four validators vote yes on the admission.
        n.block(&[
            ("v0", vote(1, VoteOption::Yes)),
            ("v1", vote(1, VoteOption::Yes)),
            ("v2", vote(1, VoteOption::Yes)),
        ]);
        let app = n.router();
        let (st, v) = send(&app, get("/v1/governance/proposals")).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["height"], 4);
        let ids: Vec<u64> = v["proposals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, vec![0, 1]);
        assert_eq!(v["next_cursor"], Value::Null);
        // Pages of one.
        let (_, page) = send(&app, get("/v1/governance/proposals?limit=1")).await;
        assert_eq!(page["proposals"].as_array().unwrap().len(), 1);
        assert_eq!(page["proposals"][0]["id"], 0);
        assert_eq!(page["next_cursor"], 1);
        let (_, page) = send(&app, get("/v1/governance/proposals?limit=1&cursor=1")).await;
        assert_eq!(page["proposals"][0]["id"], 1);
        assert_eq!(page["next_cursor"], Value::Null);
        // The open admission with its running tally.
        let (st, p) = send(&app, get("/v1/governance/proposals/1")).await;
        assert_eq!(st, StatusCode::OK, "{p}");
        assert_eq!(p["height"], 4);
        assert_eq!(p["status"], "voting");
        assert_eq!(p["proposer"], addr("v1").to_string());
        assert_eq!(p["kind"]["type"], "admit_validator");
        assert_eq!(p["kind"]["operator"], addr("cand").to_string());
        assert_eq!(p["deposit"], "60");
        assert_eq!(p["end_height"], 5);
        assert_eq!(p["votes"], 3);
        // v0 (its delegator `d` did not vote, so it counts with v0), v1,
        // v2; the candidate is not approved, its stake not counted.
        assert_eq!(p["tally"]["yes"], "320");
        assert_eq!(p["tally"]["total_bonded"], "420");

        // Height 5 ends both: the text one without votes (no quorum), the
        // admission passed.
        n.block(&[]);
        let (_, passed) = send(&app, get("/v1/governance/proposals?status=passed")).await;
        let ids: Vec<&Value> = passed["proposals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| &p["id"])
            .collect();
        assert_eq!(ids, vec![&json!(1)]);
        let (_, none) = send(&app, get("/v1/governance/proposals?status=no_quorum")).await;
        assert_eq!(none["proposals"][0]["id"], 0);
        assert_eq!(none["proposals"][0]["status"], "no_quorum");
        let (_, open) = send(&app, get("/v1/governance/proposals?status=voting")).await;
        assert_eq!(open["proposals"], json!([]));
        // At the next epoch (height 6) the candidate is active.
        n.block(&[]);
        let (_, v) = send(&app, get(format!("/v1/validators/{}", addr("cand")))).await;
        assert_eq!(
            (&v["approved"], &v["active"]),
            (&json!(true), &json!(true)),
            "{v}"
        );
        assert_eq!(v["power"], 50);

        for uri in [
            "/v1/governance/proposals?limit=0",
            "/v1/governance/proposals?limit=101",
            "/v1/governance/proposals/abc",
        ] {
            assert_error(
                &send(&app, get(uri)).await,
                StatusCode::BAD_REQUEST,
                "bad_request",
            );
        }
        for uri in [
            "/v1/governance/proposals?status=bogus",
            "/v1/governance/proposals?cursor=-1",
            "/v1/governance/proposals?page=2",
        ] {
            assert_error(
                &send(&app, get(uri)).await,
                StatusCode::BAD_REQUEST,
                "bad_query",
            );
        }
        assert_error(
            &send(&app, get("/v1/governance/proposals/9")).await,
            StatusCode::NOT_FOUND,
            "not_found",
        );
    }

    fn abci(app: &mut App, path: &str) -> (u32, Value, String) {
        match app.handle(AbciRequest::Query(request::Query {
            data: Bytes::new(),
            path: path.into(),
            height: 0u32.into(),
            prove: false,
        })) {
            AbciResponse::Query(q) => (
                q.code.value(),
                serde_json::from_slice(&q.value).unwrap_or(Value::Null),
                q.log,
            ),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn abci_queries_answer_what_the_http_routes_do() {
        let mut n = node();
        let app = n.router();
        for (uri, path) in [
            ("/v1/validators".to_string(), "validators".to_string()),
            (
                format!("/v1/validators/{}", addr("v2")),
                format!("validator/{}", addr("v2")),
            ),
            (
                format!("/v1/staking/delegations/{}", addr("d")),
                format!("delegations/{}", addr("d")),
            ),
            (
                "/v1/governance/proposals?status=voting&limit=1&cursor=1".to_string(),
                "proposals?status=voting&limit=1&cursor=1".to_string(),
            ),
            (
                "/v1/governance/proposals".to_string(),
                "proposals".to_string(),
            ),
            (
                "/v1/governance/proposals/0".to_string(),
                "proposal/0".to_string(),
            ),
        ] {
            let (st, http) = send(&app, get(&uri)).await;
            assert_eq!(st, StatusCode::OK, "{uri}: {http}");
            let (code, value, log) = abci(&mut n.app, &path);
            assert_eq!(code, 0, "{path}: {log}");
            assert_eq!(value, http, "{path}");
        }
        for (path, why) in [
            ("proposal/9", "no proposal has id 9"),
            ("validator/weft1bogus", ""),
            ("proposals?limit=0", "limit must be 1 to 100"),
            ("proposals?status=open", "status `open`"),
            ("proposals?page=2", "unknown parameter `page`"),
        ] {
            let (code, _, log) = abci(&mut n.app, path);
            assert_eq!(code, 1, "{path}");
            assert!(log.contains(why), "{path}: {log}");
        }
    }

    #[tokio::test]
    async fn without_staking_the_lists_are_empty() {
        let node = Node::new(NOWHERE);
        let app = node.router();
        let (st, v) = send(&app, get("/v1/validators")).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(
            (
                &v["validators"],
                &v["total_power"],
                &v["nakamoto_coefficient"]
            ),
            (&json!([]), &json!(0), &json!(0))
        );
        let (st, v) = send(&app, get("/v1/governance/proposals")).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["proposals"], json!([]));
    }
}

// ------------------------------------------------------------ hostile input

#[tokio::test]
async fn deeply_nested_json_is_a_400_and_never_reaches_cometbft() {
    let (rpc, calls) = fake_cometbft(check_tx_answer(0, "")).await;
    let (s, _d) = state(&rpc);
    let app = router(s);
    let open = "[".repeat(100_000);
    let closed = format!("{open}{}", "]".repeat(100_000));
    let in_the_field = format!("{{\"tx\": {closed}}}");
    let objects = format!("{}{}", "{\"a\":".repeat(50_000), "}".repeat(50_000));
    for body in [open, closed, in_the_field, objects] {
        let req = Request::post("/v1/tx")
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        let (status, v) = send(&app, req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
        assert!(
            ["bad_json", "bad_request"].contains(&v["code"].as_str().unwrap_or("")),
            "{v}"
        );
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    // Still serving.
    let (status, _) = send(&app, get("/health")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn huge_query_ranges_are_clamped_or_refused() {
    let mut node = Node::new(NOWHERE);
    for h in 1..=3 {
        node.commit(h);
    }
    node.notify();
    let app = node.router();
    let r = rollup_hex();
    // A limit of 10^12 (or u64::MAX) is clamped to MAX_RANGE: the work is
    // bounded by what is committed, and the answer comes at once.
    for limit in ["1000000000000", "18446744073709551615"] {
        let (status, v) = send(
            &app,
            get(format!("/v1/rollups/{r}/batches?from=1&limit={limit}")),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        let items = v["items"].as_array().unwrap().len() as u64;
        assert!((1..=batches::MAX_RANGE).contains(&items), "{items} items");
        assert_eq!(v["next"], json!(1 + items));
    }
    // A wait of 10^12 ms on a committed height answers at once too (the
    // wait is capped, and only taken when nothing is there).
    let (status, _) = send(
        &app,
        get(format!(
            "/v1/rollups/{r}/batches?from=1&wait_ms=1000000000000"
        )),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Numbers beyond u64, heights from 2^63 on, negative numbers and
    // pages over the cap: 400.
    for (uri, code) in [
        (
            format!("/v1/rollups/{r}/batches?from=1&limit=18446744073709551616"),
            "bad_query",
        ),
        (
            format!("/v1/rollups/{r}/batches?from=9223372036854775808&limit=1000000000000"),
            "bad_request",
        ),
        (format!("/v1/rollups/{r}/batches?from=-1"), "bad_query"),
        (
            format!("/v1/rollups/{r}/stream?from=9223372036854775808"),
            "bad_request",
        ),
        (
            "/v1/validator-sets/9223372036854775808".to_string(),
            "bad_request",
        ),
        (
            "/v1/governance/proposals?limit=1000000000000".to_string(),
            "bad_request",
        ),
        (
            "/v1/governance/proposals?limit=18446744073709551616".to_string(),
            "bad_query",
        ),
    ] {
        assert_error(&send(&app, get(&uri)).await, StatusCode::BAD_REQUEST, code);
    }
    // The largest cursor is merely past every proposal.
    let (status, v) = send(
        &app,
        get("/v1/governance/proposals?cursor=18446744073709551615"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["proposals"], json!([]));
}

/// One request over a fresh TCP connection, the answer's status line.
async fn status_line(addr: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    c.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: weft\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    c.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

/// Opens `n` connections that send a request line and then dribble one
/// header byte every 100 ms; each task ends with `true` once the server
/// closes its connection, `false` if it is still open after `patience`.
async fn slowloris(
    addr: SocketAddr,
    n: usize,
    patience: Duration,
) -> Vec<tokio::task::JoinHandle<bool>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tasks = Vec::new();
    for _ in 0..n {
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /health HTTP/1.1\r\nHost: weft\r\nX-Slow: ")
            .await
            .unwrap();
        tasks.push(tokio::spawn(async move {
            let give_up = tokio::time::Instant::now() + patience;
            let mut buf = [0u8; 256];
            while tokio::time::Instant::now() < give_up {
                if c.write_all(b"a").await.is_err() {
                    return true;
                }
                match tokio::time::timeout(Duration::from_millis(100), c.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => return true,
                    // An answer (408) before the close, or nothing yet.
                    Ok(Ok(_)) | Err(_) => {}
                }
            }
            false
        }));
    }
    tasks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_do_not_stop_others_and_are_cut_off() {
    let (s, _d) = state(NOWHERE);
    // A header-read timeout far beyond the test: the slow connections stay
    // open while a normal client is served.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let patient = tokio::spawn(serve(
        listener,
        router(s.clone()),
        Duration::from_secs(600),
        std::future::pending(),
    ));
    let slow = slowloris(addr, 200, Duration::from_secs(2)).await;
    assert_eq!(status_line(addr, "/health").await, "HTTP/1.1 200 OK");
    for t in slow {
        assert!(!t.await.unwrap(), "closed though within the header timeout");
    }
    patient.abort();

    // With a short header-read timeout every slow connection is closed by
    // the server, and the server still answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let strict = tokio::spawn(serve(
        listener,
        router(s),
        Duration::from_millis(300),
        std::future::pending(),
    ));
    let slow = slowloris(addr, 200, Duration::from_secs(60)).await;
    for t in slow {
        assert!(t.await.unwrap(), "a slow client kept its connection");
    }
    assert_eq!(status_line(addr, "/health").await, "HTTP/1.1 200 OK");
    strict.abort();
}

#[tokio::test]
async fn a_graceful_shutdown_stops_accepting() {
    let (s, _d) = state(NOWHERE);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, router(s), HEADER_READ_TIMEOUT, async {
        let _ = stopped.await;
    }));
    assert_eq!(status_line(addr, "/health").await, "HTTP/1.1 200 OK");
    stop.send(()).unwrap();
    server.await.unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

/// The body decoder of `POST /v1/tx` as the `api_bodies` fuzz target
/// drives it: the first byte picks the content type, the rest is the body.
fn decode_fuzzed(data: &[u8]) -> Option<Result<Vec<u8>, ApiError>> {
    let (&selector, body) = data.split_first()?;
    if selector & 4 != 0 {
        return None; // the relay's half
    }
    let mut headers = axum::http::HeaderMap::new();
    let content_type = [
        Some("application/octet-stream"),
        Some("application/json"),
        Some("application/json; charset=utf-8"),
        None,
    ][usize::from(selector & 3)];
    if let Some(ct) = content_type {
        headers.insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static(ct),
        );
    }
    Some(decode_submission(&headers, body))
}

fn check_fuzzed(data: &[u8]) {
    match decode_fuzzed(data) {
        Some(Ok(tx)) => {
            if let Ok(decoded) = weft_core::SignedTransaction::decode(&tx) {
                assert_eq!(decoded.encode(), tx);
            }
        }
        Some(Err(e)) => assert!(e.status().is_client_error(), "{e:?}"),
        None => {}
    }
}

#[test]
fn the_api_bodies_fuzz_corpus_replays_on_stable() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/api_bodies");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        if decode_fuzzed(&data).is_some() {
            check_fuzzed(&data);
            replayed += 1;
        }
    }
    assert!(replayed > 0, "no sequencer input in {}", dir.display());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 2000, ..Default::default() })]

    #[test]
    fn any_body_decodes_or_is_a_client_error(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
        check_fuzzed(&data);
    }

    #[test]
    fn any_json_tx_field_decodes_or_is_a_client_error(field in ".{0,64}", ct in 1u8..3) {
        let body = serde_json::to_vec(&json!({ "tx": field })).unwrap();
        check_fuzzed(&[&[ct][..], &body].concat());
    }
}

// ------------------------------------------------------- batch submission

/// A CometBFT stand-in that accepts every `broadcast_tx_sync` and keeps
/// the transactions it was handed.
async fn recording_cometbft() -> (String, Arc<Mutex<Vec<Vec<u8>>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = Router::new().route(
        "/",
        post(move |Json(req): Json<Value>| {
            let log = log.clone();
            async move {
                let tx = req["params"]["tx"].as_str().unwrap_or_default();
                log.lock().unwrap().push(
                    base64::engine::general_purpose::STANDARD
                        .decode(tx)
                        .unwrap(),
                );
                Json(check_tx_answer(0, ""))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), seen)
}

fn batch_node(rpc: &str) -> Node {
    let mut node = Node::new(rpc);
    node.state = node.state.clone().with_envelopes(
        node.app.admission(),
        EnvelopeConfig {
            max_wait: Duration::from_millis(5),
            ..Default::default()
        },
        2,
    );
    node
}

fn post_batch(content_type: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut b = Request::post("/v1/txs");
    if let Some(ct) = content_type {
        b = b.header("content-type", ct);
    }
    local(b.body(body.into()).unwrap())
}

/// A batch with good, forged, malformed, repeated and future-nonce
/// transactions: the good ones are admitted (the future one parked), each
/// bad one answered with its own error, statuses are queryable by each
/// user hash, and exactly the admitted ones reach CometBFT, in one
/// envelope, in order. Resubmitting after inclusion is a duplicate, not an
/// error.
#[tokio::test]
async fn a_batch_admits_the_good_transactions_and_answers_each_error() {
    use base64::Engine;
    let (rpc, seen) = recording_cometbft().await;
    let mut node = batch_node(&rpc);
    let mut forged = node.tx(2, b"f");
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let txs: Vec<Vec<u8>> = vec![
        node.tx(0, b"a"),
        node.tx(1, b"b"),
        forged,
        b"garbage".to_vec(),
        node.tx(1, b"b"),
        node.tx(5, b"later"),
    ];
    let body = encode_frames(txs.iter().map(Vec::as_slice));
    let (status, answer) = send(&node.router(), post_batch(None, body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["accepted"], 4, "{answer}");
    assert_eq!(answer["refused"], 2, "{answer}");
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), 6);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["hash"], weft_core::sha256(&txs[i]).to_string(), "{r}");
    }
    assert_eq!(results[0]["status"], "pending");
    assert_eq!(results[1]["status"], "pending");
    assert_eq!(results[2]["error"]["code"], "bad_signature");
    assert_eq!(results[3]["error"]["code"], "malformed");
    assert_eq!(results[4]["duplicate"], true);
    assert_eq!(results[5]["status"], "parked");
    assert_eq!(results[5]["waiting_for_nonce"], 2);
    for (i, want) in [(0, "pending"), (2, "rejected"), (5, "parked")] {
        let hash = weft_core::sha256(&txs[i]);
        let (_, s) = send(&node.router(), get(format!("/v1/tx/{hash}"))).await;
        assert_eq!(s["status"], want, "tx {i}: {s}");
    }

    // The forwarder closes the envelope after its wait.
    let mut forwarded = Vec::new();
    for _ in 0..200 {
        forwarded = seen.lock().unwrap().clone();
        if !forwarded.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(forwarded.len(), 1, "one envelope");
    let envelope = weft_core::Envelope::decode(&forwarded[0]).unwrap();
    assert_eq!(
        envelope.txs,
        vec![txs[0].clone(), txs[1].clone(), txs[5].clone()]
    );

    // The same transactions as JSON, after the first two were included.
    node.commit(1);
    node.notify();
    let json_body: Vec<String> = txs[..2]
        .iter()
        .map(|t| base64::engine::general_purpose::STANDARD.encode(t))
        .collect();
    let (status, answer) = send(
        &node.router(),
        post_batch(
            Some("application/json"),
            serde_json::to_vec(&json_body).unwrap(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["accepted"], 2, "{answer}");
    for r in answer["results"].as_array().unwrap() {
        assert_eq!(r["status"], "included", "{r}");
        assert_eq!(r["duplicate"], true, "{r}");
    }
}

/// Every transaction CometBFT was handed, envelopes opened.
fn forwarded_txs(seen: &Mutex<Vec<Vec<u8>>>) -> Vec<Vec<u8>> {
    seen.lock()
        .unwrap()
        .iter()
        .flat_map(|item| match weft_core::Envelope::decode(item) {
            Ok(envelope) => envelope.txs,
            Err(_) => vec![item.clone()],
        })
        .collect()
}

/// On a node that takes batches, `POST /v1/tx` admits a lone transaction
/// to the node's own mempool (answering without CometBFT, even when
/// CometBFT is unreachable) and forwards what it admitted; refusals and
/// duplicates answer as through CometBFT.
#[tokio::test]
async fn a_single_submission_is_admitted_here_and_forwarded_in_an_envelope() {
    let (rpc, seen) = recording_cometbft().await;
    let mut node = batch_node(&rpc);
    let first = node.tx(0, b"a");
    let later = node.tx(5, b"later");
    let mut forged = node.tx(1, b"f");
    let last = forged.len() - 1;
    forged[last] ^= 1;

    let got = send(&node.router(), post_raw(first.clone())).await;
    assert_eq!(got.0, StatusCode::ACCEPTED, "{}", got.1);
    assert_eq!(got.1["hash"], weft_core::sha256(&first).to_string());
    assert_eq!(got.1["status"], "pending");
    let got = send(&node.router(), post_raw(later.clone())).await;
    assert_eq!(got.0, StatusCode::ACCEPTED, "{}", got.1);
    assert_eq!(
        (got.1["status"].clone(), got.1["waiting_for_nonce"].clone()),
        (json!("parked"), json!(1))
    );
    let got = send(&node.router(), post_raw(first.clone())).await;
    assert_error(&got, StatusCode::CONFLICT, "duplicate");
    assert_eq!(got.1["status"], "pending");
    let got = send(&node.router(), post_raw(forged.clone())).await;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "bad_signature");
    assert_eq!(got.1["abci_code"], weft_core::TxCode::BadSignature.value());
    let (_, s) = send(
        &node.router(),
        get(format!("/v1/tx/{}", weft_core::sha256(&forged))),
    )
    .await;
    assert_eq!(s["status"], "rejected", "{s}");

    // Exactly what was admitted reaches CometBFT, in order.
    let mut forwarded = Vec::new();
    for _ in 0..200 {
        forwarded = forwarded_txs(&seen);
        if forwarded.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(forwarded, vec![first.clone(), later]);

    // Included, then submitted again: a duplicate, not a nonce error.
    node.commit(1);
    node.notify();
    let got = send(&node.router(), post_raw(first)).await;
    assert_error(&got, StatusCode::CONFLICT, "duplicate");
    assert_eq!(got.1["status"], "included");

    // Admission does not need CometBFT.
    let node = batch_node(NOWHERE);
    let got = send(&node.router(), post_raw(node.tx(0, b"alone"))).await;
    assert_eq!(got.0, StatusCode::ACCEPTED, "{}", got.1);
}

fn post_batch_from(ip: [u8; 4], body: Vec<u8>) -> Request<Body> {
    from(ip, post_batch(None, body))
}

/// [`send`] keeping the request's own peer address.
async fn send_as_is(app: &Router, req: Request<Body>) -> (StatusCode, Value) {
    json_of(app.clone().oneshot(req).await.unwrap()).await
}

/// Submitted transactions are counted per client address, a batch by its
/// length: once an address has spent its burst it gets 429 with
/// `Retry-After` (also for a single `POST /v1/tx`), a request larger than
/// the burst is refused whole with 413, and other addresses and loopback
/// keep their own budgets.
#[tokio::test]
async fn each_address_has_a_budget_of_submitted_transactions() {
    let (rpc, _seen) = recording_cometbft().await;
    let mut node = batch_node(&rpc);
    node.state = node.state.clone().with_limits(ApiLimits {
        rate_limit_per_second: 0,
        rate_limit_txs_per_second: 1,
        rate_limit_txs_burst: 10,
        ..ApiLimits::default()
    });
    let app = node.router();
    let batch = |from: u64, n: u64| -> Vec<u8> {
        let txs: Vec<Vec<u8>> = (from..from + n).map(|i| node.tx(i, b"b")).collect();
        encode_frames(txs.iter().map(Vec::as_slice))
    };
    let remote = [203, 0, 113, 9];
    let (status, answer) = send_as_is(&app, post_batch_from(remote, batch(0, 10))).await;
    assert_eq!(
        (status, answer["accepted"].clone()),
        (StatusCode::OK, json!(10)),
        "{answer}"
    );
    // Spent: one more transaction, alone or in a batch, must wait.
    let resp = app
        .clone()
        .oneshot(from(remote, post_raw(node.tx(10, b"one"))))
        .await
        .unwrap();
    assert!(resp.headers().get("retry-after").is_some());
    assert_error(
        &json_of(resp).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    );
    let got = send_as_is(&app, post_batch_from(remote, batch(10, 2))).await;
    assert_error(&got, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    // More than the burst at once: no wait makes room.
    let got = send_as_is(&app, post_batch_from([203, 0, 113, 10], batch(10, 11))).await;
    assert_error(&got, StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large");
    // Another address, and loopback (exempt by default), are not held up.
    let (status, answer) = send_as_is(&app, post_batch_from([203, 0, 113, 11], batch(10, 5))).await;
    assert_eq!(
        (status, answer["accepted"].clone()),
        (StatusCode::OK, json!(5)),
        "{answer}"
    );
    let (status, answer) = send(&app, post_batch(None, batch(15, 15))).await;
    assert_eq!(
        (status, answer["accepted"].clone()),
        (StatusCode::OK, json!(15)),
        "{answer}"
    );
}

#[tokio::test]
async fn bad_batches_are_refused_whole_with_clear_errors() {
    let node = batch_node(NOWHERE);
    let app = node.router();
    let one = node.tx(0, b"a");
    let cases: Vec<(Request<Body>, StatusCode, &str)> = vec![
        (
            post_batch(None, Vec::new()),
            StatusCode::BAD_REQUEST,
            "empty_batch",
        ),
        (
            post_batch(None, [5u8, 0, 0, 0, 1, 2].to_vec()),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            post_batch(None, [1u8, 0].to_vec()),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            post_batch(None, encode_frames([&[][..]])),
            StatusCode::BAD_REQUEST,
            "empty_tx",
        ),
        (
            post_batch(None, ((MAX_TX_BYTES + 1) as u32).to_le_bytes().to_vec()),
            StatusCode::PAYLOAD_TOO_LARGE,
            "tx_too_large",
        ),
        (
            post_batch(None, encode_frames(vec![&one[..]; MAX_BATCH_TXS + 1])),
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
        ),
        (
            post_batch(Some("application/json"), "[\"%%%\"]"),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            post_batch(Some("application/json"), "{\"tx\": 1}"),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            post_batch(Some("text/plain"), "x"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            post_batch(None, vec![0u8; MAX_BATCH_BODY_BYTES + 1]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
        ),
    ];
    for (req, status, code) in cases {
        assert_error(&send(&app, req).await, status, code);
    }
    assert!(mempool::lock(&node.state.mempool).is_empty());
    // Without envelopes configured, batches are refused, not dropped.
    let (plain, _keep) = state(NOWHERE);
    let got = call(plain, post_batch(None, encode_frames([&one[..]]))).await;
    assert_error(&got, StatusCode::SERVICE_UNAVAILABLE, "batches_disabled");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 2000, ..Default::default() })]

    /// Any batch body, binary or JSON: transactions whose frames re-encode
    /// to the body, or a client error; never a panic.
    #[test]
    fn any_batch_body_decodes_or_is_a_client_error(
        body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
        json in proptest::prelude::any::<bool>(),
    ) {
        let mut headers = axum::http::HeaderMap::new();
        if json {
            headers.insert(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            );
        }
        match decode_batch(&headers, &Bytes::from(body.clone())) {
            Ok(txs) => {
                proptest::prop_assert!(!txs.is_empty());
                if !json {
                    proptest::prop_assert_eq!(encode_frames(txs.iter().map(|t| &t[..])), body);
                }
            }
            Err(e) => proptest::prop_assert!(e.status().is_client_error(), "{:?}", e),
        }
    }
}

/// Batch bodies still arriving hold their slots: past
/// MAX_CONCURRENT_BATCHES, a batch is shed with 503 at once (its body is
/// never read), while other endpoints still answer; a finished upload
/// frees its slot.
#[tokio::test]
async fn batches_over_their_own_cap_are_shed_before_their_bodies_are_read() {
    let node = batch_node(NOWHERE);
    let app = node.router();
    let one = node.tx(0, b"a");
    let mut feeders = Vec::new();
    let mut held = Vec::new();
    for _ in 0..MAX_CONCURRENT_BATCHES {
        let (feed, body) = futures::channel::mpsc::unbounded::<Result<Bytes, std::io::Error>>();
        feeders.push(feed);
        let app = app.clone();
        held.push(tokio::spawn(async move {
            send(&app, post_batch(None, Body::from_stream(body))).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let resp = app
        .clone()
        .oneshot(post_batch(None, encode_frames([&one[..]])))
        .await
        .unwrap();
    assert!(resp.headers().get("retry-after").is_some());
    assert_error(
        &json_of(resp).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "overloaded",
    );
    assert_eq!(send(&app, get("/health")).await.0, StatusCode::OK);
    // The uploads finish (empty batches: 400), and batches are taken again.
    drop(feeders);
    for h in held {
        assert_eq!(h.await.unwrap().0, StatusCode::BAD_REQUEST);
    }
    let (status, answer) = send(&app, post_batch(None, encode_frames([&one[..]]))).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["accepted"], 1);
}
