//! The relay's HTTP API in process: the router with a fake chain head and
//! a fake sequencer.

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
};

use axum::{
    body::Body,
    http::{Request, StatusCode},
    Router,
};
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::sync::watch;
use tower::ServiceExt;
use weft_core::{
    bid::{RelayRequest, RelayRequestKind, SignedRelayRequest},
    Address, Amount, Bid, Bundle, Hash, RollupId, SignedBid, SigningKey,
};

use super::*;
use crate::{
    chain::Head,
    sequencer::{Balance, Directory, SequencerError, ValidatorEntry},
};

const CHAIN: &str = "relay-test";

/// Balances and a directory the tests set; counts balance reads.
#[derive(Default)]
struct FakeSequencer {
    balances: Mutex<BTreeMap<Address, Amount>>,
    directory: Mutex<Directory>,
    height: Mutex<u64>,
    balance_reads: AtomicUsize,
}

#[async_trait::async_trait]
impl SequencerApi for FakeSequencer {
    async fn balance(&self, address: &Address) -> Result<Balance, SequencerError> {
        self.balance_reads.fetch_add(1, Ordering::SeqCst);
        Ok(Balance {
            balance: self
                .balances
                .lock()
                .unwrap()
                .get(address)
                .copied()
                .unwrap_or(0),
            height: *self.height.lock().unwrap(),
        })
    }

    async fn directory(&self) -> Result<Directory, SequencerError> {
        Ok(self.directory.lock().unwrap().clone())
    }
}

struct Harness {
    app: Router,
    heads: watch::Sender<Option<Head>>,
    sequencer: Arc<FakeSequencer>,
    relay: Relay,
    _dir: tempfile::TempDir,
}

fn block_hash(height: u64) -> Hash {
    weft_core::sha256(&height.to_le_bytes())
}

impl Harness {
    fn new(configure: impl FnOnce(&mut RelayConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let traces = TraceStore::open(&dir.path().join("traces.redb")).unwrap();
        let mut config = RelayConfig::new(CHAIN);
        configure(&mut config);
        let (heads, rx) = watch::channel(None);
        let sequencer = Arc::new(FakeSequencer::default());
        for name in ["alice", "bob", "carol"] {
            sequencer
                .balances
                .lock()
                .unwrap()
                .insert(key(name).address(), 1_000_000);
        }
        let mut validators = BTreeMap::new();
        validators.insert(
            key("val-op").address(),
            ValidatorEntry {
                active: true,
                relay_key: Some(key("val-relay").public_key()),
            },
        );
        validators.insert(
            key("idle-op").address(),
            ValidatorEntry {
                active: false,
                relay_key: Some(key("idle-relay").public_key()),
            },
        );
        *sequencer.directory.lock().unwrap() = Directory {
            height: 10,
            validators,
        };
        let relay = Relay::new(config, rx, sequencer.clone(), traces, None);
        let h = Harness {
            app: router(relay.clone()),
            heads,
            sequencer,
            relay,
            _dir: dir,
        };
        h.set_head(10);
        h
    }

    fn set_head(&self, height: u64) {
        *self.sequencer.height.lock().unwrap() = height;
        self.heads.send_replace(Some(Head {
            height,
            hash: block_hash(height),
        }));
    }

    async fn call(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    async fn submit_raw(&self, bytes: Vec<u8>) -> (StatusCode, Value) {
        self.call(
            Request::post("/relay/v1/builder/bids")
                .header("content-type", "application/octet-stream")
                .body(Body::from(bytes))
                .unwrap(),
        )
        .await
    }

    async fn submit(&self, bid: &SignedBid) -> (StatusCode, Value) {
        let body = serde_json::json!({ "signed_bid": hex::encode(bid.encode()) });
        self.call(
            Request::post("/relay/v1/builder/bids")
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.call(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    async fn winners(&self, height: u64, signed: Option<String>) -> (StatusCode, Value) {
        let mut r = Request::get(format!("/relay/v1/validator/winners?height={height}"));
        if let Some(h) = signed {
            r = r.header("weft-relay-request", h);
        }
        self.call(r.body(Body::empty()).unwrap()).await
    }
}

fn key(name: &str) -> SigningKey {
    SigningKey::from_seed(name)
}

fn bid(builder: &str, height: u64, rollups: &[&str], amount: Amount) -> SignedBid {
    bid_with(builder, height, rollups, amount, |_| {})
}

fn bid_with(
    builder: &str,
    height: u64,
    rollups: &[&str],
    amount: Amount,
    change: impl FnOnce(&mut Bid),
) -> SignedBid {
    let k = key(builder);
    let mut b = Bid {
        chain_id: CHAIN.into(),
        target_height: height,
        parent_hash: block_hash(height - 1),
        bundles: rollups
            .iter()
            .map(|r| Bundle {
                rollup_id: RollupId::from_name(r),
                payloads: vec![format!("{builder}-{r}").into_bytes()],
            })
            .collect(),
        amount,
        builder: k.public_key(),
    };
    change(&mut b);
    b.sign(&k)
}

fn request(
    signer: &str,
    requester: Address,
    kind: RelayRequestKind,
    height: u64,
    timestamp_ms: u64,
) -> String {
    hex::encode(
        RelayRequest {
            chain_id: CHAIN.into(),
            kind,
            height,
            timestamp_ms,
            requester,
            key: key(signer).public_key(),
        }
        .sign(&key(signer))
        .encode(),
    )
}

fn fetch(height: u64) -> String {
    request(
        "val-relay",
        key("val-op").address(),
        RelayRequestKind::FetchWinners,
        height,
        now_ms(),
    )
}

fn code(v: &Value) -> &str {
    v["code"].as_str().unwrap_or("<no code>")
}

#[tokio::test]
async fn every_invalid_bid_class_has_its_own_code() {
    let h = Harness::new(|c| {
        c.rate_limit_per_second = 1;
        c.rate_limit_burst = 2;
    });
    let good = bid("alice", 11, &["x"], 100);
    assert_eq!(h.submit(&good).await.0, StatusCode::OK);

    let mut forged = bid("alice", 11, &["x"], 100);
    forged.bid.amount = 101;
    let other_chain = bid_with("alice", 11, &["x"], 100, |b| b.chain_id = "other".into());
    let stale = bid("alice", 10, &["x"], 100);
    let future = bid("alice", 12, &["x"], 100);
    let wrong_parent = bid_with("alice", 11, &["x"], 100, |b| b.parent_hash = block_hash(3));
    let unfunded = bid("alice", 11, &["x"], 1_000_001);
    let nobody = bid("mallory", 11, &["x"], 1);
    let no_bundles = bid_with("alice", 11, &["x"], 1, |b| b.bundles.clear());

    let mut cases: Vec<(&str, StatusCode, Value)> = Vec::new();
    let (s, v) = h.submit(&forged).await;
    cases.push(("bad signature", s, v));
    let (s, v) = h.submit(&other_chain).await;
    cases.push(("other chain", s, v));
    let (s, v) = h.submit(&stale).await;
    cases.push(("stale height", s, v));
    let (s, v) = h.submit(&wrong_parent).await;
    cases.push(("wrong parent", s, v));
    let (s, v) = h.submit(&future).await;
    cases.push(("future height", s, v));
    let (s, v) = h.submit(&good).await;
    cases.push(("replayed", s, v));
    let (s, v) = h.submit(&unfunded).await;
    cases.push(("unfunded", s, v));
    let (s, v) = h.submit(&nobody).await;
    cases.push(("no account", s, v));
    let (s, v) = h.submit_raw(vec![0xff; MAX_BODY_BYTES + 1]).await;
    cases.push(("oversized", s, v));
    let (s, v) = h.submit_raw(vec![1, 2, 3]).await;
    cases.push(("malformed borsh", s, v));
    let (s, v) = h.submit(&no_bundles).await;
    cases.push(("no bundles", s, v));
    // The burst is 2: the good bid and this one pass, the next is refused.
    let (s, _) = h.submit(&bid("alice", 11, &["y"], 50)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = h.submit(&bid("alice", 11, &["z"], 60)).await;
    cases.push(("over the rate limit", s, v));

    let expected = [
        ("bad signature", StatusCode::BAD_REQUEST, "bad_signature"),
        ("other chain", StatusCode::BAD_REQUEST, "wrong_chain"),
        ("stale height", StatusCode::CONFLICT, "stale_height"),
        ("wrong parent", StatusCode::CONFLICT, "unknown_parent"),
        ("future height", StatusCode::CONFLICT, "unknown_parent"),
        ("replayed", StatusCode::CONFLICT, "replayed"),
        (
            "unfunded",
            StatusCode::PAYMENT_REQUIRED,
            "insufficient_funds",
        ),
        (
            "no account",
            StatusCode::PAYMENT_REQUIRED,
            "insufficient_funds",
        ),
        ("oversized", StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
        ("malformed borsh", StatusCode::BAD_REQUEST, "malformed_bid"),
        ("no bundles", StatusCode::BAD_REQUEST, "invalid_bid"),
        (
            "over the rate limit",
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
        ),
    ];
    for ((name, status, value), (want_name, want_status, want_code)) in
        cases.iter().zip(expected.iter())
    {
        assert_eq!(name, want_name);
        assert_eq!(
            (status, code(value)),
            (want_status, *want_code),
            "{name}: {value}"
        );
        assert!(value["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

#[tokio::test]
async fn hostile_bodies_are_4xx_never_a_panic() {
    let h = Harness::new(|_| {});
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    for (content_type, body, want) in [
        ("application/json", "{".to_string(), "malformed_bid"),
        ("application/json", deep, "malformed_bid"),
        (
            "application/json",
            r#"{"signed_bid": 7}"#.into(),
            "malformed_bid",
        ),
        (
            "application/json",
            r#"{"signed_bid": "zz"}"#.into(),
            "malformed_bid",
        ),
        (
            "application/json",
            r#"{"signed_bid": "00", "extra": 1}"#.into(),
            "malformed_bid",
        ),
        ("text/plain", "hello".into(), "unsupported_media_type"),
    ] {
        let (s, v) = h
            .call(
                Request::post("/relay/v1/builder/bids")
                    .header("content-type", content_type)
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await;
        assert!(s.is_client_error(), "{s}");
        assert_eq!(code(&v), want);
    }
    // A length prefix announcing 4 GiB of bundles: refused, not allocated.
    let mut huge = bid("alice", 11, &["x"], 1).encode();
    // chain id (4 + 10) + height (8) + parent (32): the bundle count.
    huge.truncate(54);
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    let (s, v) = h.submit_raw(huge).await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "malformed_bid"));
    for uri in [
        "/relay/v1/data/bids_received?limit=99999999999999999999999",
        "/relay/v1/data/bids_received?limit=-1",
        "/relay/v1/data/bids_received?height=x",
        "/relay/v1/data/bids_received?rollup=nothex",
        "/relay/v1/data/bids_received?builder=weft1nope",
        "/relay/v1/data/bids_received?cursor=junk",
        "/relay/v1/data/bids_received?what=1",
        "/relay/v1/validator/winners",
        "/relay/v1/auctions/notanumber",
    ] {
        let (s, v) = h.get(uri).await;
        assert!(s.is_client_error(), "{uri}: {s}");
        assert!(v["code"].is_string(), "{uri}: {v}");
    }
    let (s, v) = h
        .call(
            Request::put("/relay/v1/builder/bids")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
}

#[tokio::test]
async fn a_later_bid_replaces_amount_zero_cancels_and_a_signed_delete_cancels() {
    let h = Harness::new(|_| {});
    let first = bid("alice", 11, &["x"], 100);
    let (_, v) = h.submit(&first).await;
    assert_eq!(v["status"], "accepted");
    assert!(v["replaced"].is_null());
    let second = bid("alice", 11, &["x"], 150);
    let (_, v) = h.submit(&second).await;
    assert_eq!(v["replaced"], first.hash().to_hex());
    let (_, v) = h.submit(&bid("alice", 11, &["x"], 0)).await;
    assert_eq!(v["status"], "cancelled");
    assert_eq!(v["replaced"], second.hash().to_hex());
    let (_, a) = h.get("/relay/v1/auctions/11").await;
    assert_eq!(a["bids"], 0);

    // DELETE, signed by the builder.
    h.submit(&bid("bob", 11, &["x"], 70)).await;
    let bob = key("bob").address();
    let uri = "/relay/v1/builder/bids/11";
    let (s, v) = h
        .call(Request::delete(uri).body(Body::empty()).unwrap())
        .await;
    assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "unauthorized"));
    // Signed by someone else for bob: refused.
    let forged = request("mallory", bob, RelayRequestKind::CancelBid, 11, now_ms());
    let (s, _) = h
        .call(
            Request::delete(uri)
                .header("weft-relay-request", forged)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let old = request(
        "bob",
        bob,
        RelayRequestKind::CancelBid,
        11,
        now_ms() - 60_000,
    );
    let (s, v) = h
        .call(
            Request::delete(uri)
                .header("weft-relay-request", old)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "stale_request"));
    let good = request("bob", bob, RelayRequestKind::CancelBid, 11, now_ms() + 5);
    let delete = || {
        Request::delete(uri)
            .header("weft-relay-request", good.clone())
            .body(Body::empty())
            .unwrap()
    };
    let (s, v) = h.call(delete()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["removed"].is_string());
    let (s, v) = h.call(delete()).await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "replayed"));
    let (_, a) = h.get("/relay/v1/auctions/11").await;
    assert_eq!(a["bids"], 0);
}

#[tokio::test]
async fn winners_go_only_to_signed_requests_of_active_validators_for_the_next_height() {
    let h = Harness::new(|_| {});
    let low = bid("alice", 11, &["x"], 100);
    let high = bid("bob", 11, &["x"], 200);
    let both = bid("carol", 11, &["y", "z"], 150);
    for b in [&low, &high, &both] {
        assert_eq!(h.submit(b).await.0, StatusCode::OK);
    }
    let (s, v) = h.winners(11, None).await;
    assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "unauthorized"));
    let (s, v) = h.winners(12, Some(fetch(12))).await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "not_next_height"));
    let (s, v) = h.winners(11, Some(fetch(12))).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNAUTHORIZED, "unauthorized"),
        "height mismatch"
    );
    let inactive = request(
        "idle-relay",
        key("idle-op").address(),
        RelayRequestKind::FetchWinners,
        11,
        now_ms(),
    );
    let (s, v) = h.winners(11, Some(inactive)).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::FORBIDDEN, "not_active_validator")
    );
    let wrong_key = request(
        "val-op",
        key("val-op").address(),
        RelayRequestKind::FetchWinners,
        11,
        now_ms(),
    );
    let (s, v) = h.winners(11, Some(wrong_key)).await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "wrong_relay_key"));
    let mut tampered = hex::decode(fetch(11)).unwrap();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let (s, v) = h.winners(11, Some(hex::encode(tampered))).await;
    assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "bad_signature"));

    let (s, v) = h.winners(11, Some(fetch(11))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let got: Vec<&str> = v["bids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["hash"].as_str().unwrap())
        .collect();
    assert_eq!(got, vec![high.hash().to_hex(), both.hash().to_hex()]);
    assert_eq!(v["parent_hash"], block_hash(10).to_hex());
    // The full signed bid comes back and verifies.
    let bytes = hex::decode(v["bids"][0]["signed_bid"].as_str().unwrap()).unwrap();
    assert_eq!(SignedBid::decode(&bytes).unwrap(), high);

    // The delivery is recorded, with the validator.
    h.relay.traces().flush().await.unwrap();
    let (_, d) = h.get("/relay/v1/data/bids_delivered?height=11").await;
    let traces = d["traces"].as_array().unwrap();
    assert_eq!(traces.len(), 2);
    assert!(traces
        .iter()
        .all(|t| t["validator"] == key("val-op").address().to_string()));

    // Once 11 commits, its winners are no longer served.
    h.set_head(11);
    let (s, _) = h.winners(11, Some(fetch(11))).await;
    assert_eq!(s, StatusCode::CONFLICT);
}

#[tokio::test]
async fn auctions_show_the_top_bid_per_rollup_never_the_bundles() {
    let h = Harness::new(|_| {});
    let low = bid("alice", 11, &["x"], 100);
    let high = bid("bob", 11, &["x", "y"], 200);
    h.submit(&low).await;
    h.submit(&high).await;
    let (s, v) = h.get("/relay/v1/auctions/11").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["committed"], false);
    assert_eq!(v["bids"], 2);
    let rollups = v["rollups"].as_array().unwrap();
    assert_eq!(rollups.len(), 2);
    for r in rollups {
        assert_eq!(r["bid_hash"], high.hash().to_hex());
        assert_eq!(r["amount"], "200");
    }
    let text = v.to_string();
    assert!(!text.contains(&hex::encode(b"bob-x")) && !text.contains("Ym9iLXg"));
    assert!(text.contains(&high.bid.bundles[0].hash().to_hex()));
    h.set_head(11);
    let (_, v) = h.get("/relay/v1/auctions/11").await;
    assert_eq!(v["committed"], true);
    assert_eq!(v["rollups"].as_array().unwrap().len(), 2);
    let (s, v) = h.get("/relay/v1/auctions/99").await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "unknown_auction"));
}

#[tokio::test]
async fn balances_are_read_once_per_builder_and_height() {
    let h = Harness::new(|_| {});
    h.submit(&bid("alice", 11, &["x"], 1)).await;
    h.submit(&bid("alice", 11, &["x"], 2)).await;
    assert_eq!(h.sequencer.balance_reads.load(Ordering::SeqCst), 1);
    h.set_head(11);
    h.submit(&bid("alice", 12, &["x"], 3)).await;
    assert_eq!(h.sequencer.balance_reads.load(Ordering::SeqCst), 2);
    // The sequencer ahead of the relay's head: the bid is stale.
    *h.sequencer.height.lock().unwrap() = 13;
    let (s, v) = h.submit(&bid("bob", 12, &["x"], 3)).await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "stale_height"));
    // Behind it: retry later.
    *h.sequencer.height.lock().unwrap() = 10;
    let (s, v) = h.submit(&bid("carol", 12, &["x"], 3)).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::SERVICE_UNAVAILABLE, "balance_unavailable")
    );
}

#[tokio::test]
async fn the_data_api_filters_pages_and_prunes_past_the_retention_window() {
    let h = Harness::new(|c| c.retention_heights = 2);
    for height in 11..=14 {
        for (b, r) in [("alice", "x"), ("bob", "y")] {
            assert_eq!(h.submit(&bid(b, height, &[r], 5)).await.0, StatusCode::OK);
        }
        h.set_head(height);
    }
    h.get("/health").await;
    h.relay.traces().flush().await.unwrap();
    let (_, v) = h.get("/relay/v1/data/bids_received?limit=0").await;
    assert_eq!(v["traces"].as_array().unwrap().len(), 1, "limit 0 is 1");
    let (_, v) = h.get("/relay/v1/data/bids_received?limit=100000").await;
    let all = v["traces"].as_array().unwrap();
    // Head 14, retention 2: heights 13 and 14 stay.
    assert_eq!(all.len(), 4);
    assert!(all.iter().all(|t| t["height"].as_u64().unwrap() >= 13));
    assert!(v["next_cursor"].is_null());
    let (_, p1) = h.get("/relay/v1/data/bids_received?limit=3").await;
    let cursor = p1["next_cursor"].as_str().unwrap().to_string();
    let (_, p2) = h
        .get(&format!(
            "/relay/v1/data/bids_received?limit=3&cursor={cursor}"
        ))
        .await;
    assert_eq!(p2["traces"].as_array().unwrap().len(), 1);
    assert!(p2["next_cursor"].is_null());
    let alice = key("alice").address();
    let (_, v) = h
        .get(&format!(
            "/relay/v1/data/bids_received?builder={alice}&height=14"
        ))
        .await;
    assert_eq!(v["traces"].as_array().unwrap().len(), 1);
    let y = RollupId::from_name("y");
    let (_, v) = h
        .get(&format!("/relay/v1/data/bids_received?rollup={y}"))
        .await;
    assert_eq!(v["traces"].as_array().unwrap().len(), 2);
    assert!(v["traces"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["builder"] == key("bob").address().to_string()));
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let h = Harness::new(|_| {});
    let (s, doc) = h.get("/relay/v1/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    for (method, path) in ROUTES {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is missing from the OpenAPI document"
        );
        // And the router serves it (not the fallback).
        let uri = path.replace("{height}", "11");
        let (s, v) = h
            .call(
                Request::builder()
                    .method(method.to_uppercase().as_str())
                    .uri(uri.as_str())
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert!(
            s != StatusCode::METHOD_NOT_ALLOWED
                && !(s == StatusCode::NOT_FOUND && code(&v) == "not_found" && path != "/metrics"),
            "{method} {path}: {s} {v}"
        );
    }
    let documented = doc["paths"].as_object().unwrap().len();
    let served: std::collections::BTreeSet<&str> = ROUTES.iter().map(|(_, p)| *p).collect();
    assert_eq!(
        documented,
        served.len(),
        "the document lists a route the router lacks"
    );
}

#[tokio::test]
async fn health_reports_the_head() {
    let h = Harness::new(|_| {});
    let (s, v) = h.get("/health").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["status"], "ok");
    assert_eq!(v["next_height"], 11);
    h.heads.send_replace(None);
    let (_, v) = h.get("/health").await;
    assert_eq!(v["status"], "waiting");
    let (s, v) = h.submit(&bid("alice", 11, &["x"], 1)).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::SERVICE_UNAVAILABLE, "head_unknown")
    );
}

// ------------------------------------------------------------ hostile input

#[tokio::test]
async fn a_bid_replayed_at_another_height_fails() {
    let h = Harness::new(|_| {});
    let original = bid("alice", 11, &["x"], 100);
    assert_eq!(h.submit(&original).await.0, StatusCode::OK);
    // The chain moves on: the same signed bytes are for a committed height.
    h.set_head(11);
    let (s, v) = h.submit(&original).await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "stale_height"), "{v}");
    // Moved to the new height (and its parent) without the builder's key:
    // the signature no longer covers it.
    let mut moved = original.clone();
    moved.bid.target_height = 12;
    moved.bid.parent_hash = block_hash(11);
    let (s, v) = h.submit(&moved).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::BAD_REQUEST, "bad_signature"),
        "{v}"
    );
    // The same for a validator's signed winners fetch.
    let at_11 = fetch(11);
    let mut bytes = hex::decode(&at_11).unwrap();
    let mut moved = SignedRelayRequest::decode(&bytes).unwrap();
    moved.request.height = 12;
    bytes = moved.encode();
    let (s, v) = h.winners(12, Some(hex::encode(bytes))).await;
    assert!(s.is_client_error(), "{s} {v}");
    assert_eq!(code(&v), "bad_signature", "{v}");
}

/// One request over a fresh TCP connection, the answer's status line.
async fn status_line(addr: std::net::SocketAddr, path: &str) -> String {
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

/// `n` connections that send a request line, then one header byte every
/// 100 ms; each task ends with `true` once the server closes its
/// connection, `false` if it is still open after `patience`.
async fn slowloris(
    addr: std::net::SocketAddr,
    n: usize,
    patience: std::time::Duration,
) -> Vec<tokio::task::JoinHandle<bool>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tasks = Vec::new();
    for _ in 0..n {
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(b"POST /relay/v1/builder/bids HTTP/1.1\r\nHost: weft\r\nX-Slow: ")
            .await
            .unwrap();
        tasks.push(tokio::spawn(async move {
            let give_up = tokio::time::Instant::now() + patience;
            let mut buf = [0u8; 256];
            while tokio::time::Instant::now() < give_up {
                if c.write_all(b"a").await.is_err() {
                    return true;
                }
                let wait = std::time::Duration::from_millis(100);
                match tokio::time::timeout(wait, c.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => return true,
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
    use std::time::Duration;
    let h = Harness::new(|_| {});
    // A header-read timeout far beyond the test: the slow connections stay
    // open while a normal client is served.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let patient = tokio::spawn(serve(
        listener,
        h.app.clone(),
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
        h.app.clone(),
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

/// The bid-body decoder as the `api_bodies` fuzz target drives it: the
/// first byte picks the content type, the rest is the body.
fn decode_fuzzed(data: &[u8]) -> Option<Result<Vec<u8>, RelayError>> {
    let (&selector, body) = data.split_first()?;
    if selector & 4 == 0 {
        return None; // the sequencer's half
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
        Some(Ok(bid)) => {
            if let Ok(decoded) = SignedBid::decode(&bid) {
                assert_eq!(decoded.encode(), bid);
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
    assert!(replayed > 0, "no relay input in {}", dir.display());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 2000, ..Default::default() })]

    #[test]
    fn any_bid_body_decodes_or_is_a_client_error(
        data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
    ) {
        check_fuzzed(&[&[4u8 | (data.first().copied().unwrap_or(0) & 3)][..], &data].concat());
    }

    #[test]
    fn any_signed_bid_field_decodes_or_is_a_client_error(field in ".{0,64}", ct in 1u8..3) {
        let body = serde_json::to_vec(&serde_json::json!({ "signed_bid": field })).unwrap();
        check_fuzzed(&[&[4 | ct][..], &body].concat());
    }
}
