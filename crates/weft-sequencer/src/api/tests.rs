//! The HTTP API against real storage and mempool, with a stand-in for the
//! local CometBFT's RPC (unit scope: the e2e tests use the real one).

use std::sync::{Arc, Mutex};

use axum::{
    body::{to_bytes, Body},
    http::{Request, StatusCode},
    routing::post,
    Json, Router,
};
use serde_json::{json, Value};
use tower::ServiceExt;

use super::*;
use crate::mempool::MempoolConfig;

/// A fake CometBFT RPC that answers every broadcast with `answer`.
async fn fake_cometbft(answer: Value) -> String {
    let app = Router::new().route("/", post(move || async move { Json(answer) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn state(rpc: String) -> (ApiState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path()).unwrap();
    let pool = Arc::new(Mutex::new(Mempool::new(MempoolConfig::default())));
    (ApiState::new(storage, pool, rpc, None), dir)
}

async fn call(state: ApiState, req: Request<Body>) -> (StatusCode, Value) {
    let resp = router(state).oneshot(req).await.unwrap();
    let status = resp.status();
    let body = to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn post_json(body: Value) -> Request<Body> {
    Request::post("/v1/tx")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test]
async fn bad_requests_get_json_errors_with_matching_statuses() {
    let (s, _d) = state("http://127.0.0.1:1".into());
    let (st, body) = call(
        s.clone(),
        Request::get("/v1/tx/not-hex").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "bad_request");
    let (st, body) = call(
        s.clone(),
        Request::get("/v1/nothing").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(
        (st, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (st, _) = call(s.clone(), post_json(json!({ "tx": "%%% not base64" }))).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = call(s.clone(), post_json(json!({ "tx": "AAAA", "extra": 1 }))).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "unknown fields are refused");
    let (st, _) = call(
        s.clone(),
        Request::post("/v1/tx")
            .header("content-type", "application/json")
            .body(Body::from("{not json"))
            .unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // A body over the limit is refused before it is parsed.
    let huge = vec![0u8; MAX_BODY_BYTES + 1];
    let resp = router(s.clone())
        .oneshot(Request::post("/v1/tx").body(Body::from(huge)).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let (st, _) = call(
        s.clone(),
        Request::post("/v1/tx").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "an empty tx is not a tx");
    // CometBFT down: a clear 502, nothing panics.
    let (st, body) = call(
        s.clone(),
        Request::post("/v1/tx")
            .body(Body::from(vec![1u8; 10]))
            .unwrap(),
    )
    .await;
    assert_eq!(
        (st, body["code"].as_str()),
        (StatusCode::BAD_GATEWAY, Some("cometbft_unreachable"))
    );
    let (st, body) = call(
        s,
        Request::get(format!("/v1/tx/{}", "ab".repeat(32)))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        (st, body["status"].as_str()),
        (StatusCode::OK, Some("unknown"))
    );
}

#[tokio::test]
async fn check_tx_outcomes_map_to_statuses() {
    let rejected = fake_cometbft(json!({ "jsonrpc": "2.0", "id": 1,
        "result": { "code": 4, "log": "signature does not verify", "hash": "AB" } }))
    .await;
    let (s, _d) = state(rejected);
    let (st, body) = call(
        s,
        Request::post("/v1/tx")
            .body(Body::from(vec![9u8; 40]))
            .unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "bad_signature");
    assert_eq!(body["abci_code"], 4);
    assert_eq!(body["message"], "signature does not verify");
    assert_eq!(body["hash"], weft_core::sha256(&[9u8; 40]).to_hex());

    let dup = fake_cometbft(json!({ "jsonrpc": "2.0", "id": 1,
        "error": { "code": -32603, "message": "Internal error", "data": "tx already exists in cache" } }))
    .await;
    let (s, _d) = state(dup);
    let (st, body) = call(s, post_json(json!({ "tx": "AQID" }))).await;
    assert_eq!(
        (st, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("duplicate"))
    );

    let accepted =
        fake_cometbft(json!({ "jsonrpc": "2.0", "id": 1, "result": { "code": 0, "log": "" } }))
            .await;
    let (s, _d) = state(accepted);
    let (st, body) = call(s, post_json(json!({ "tx": "AQID" }))).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    assert_eq!(body["hash"], weft_core::sha256(&[1, 2, 3]).to_hex());
}
