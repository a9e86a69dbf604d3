//! Sending one node's share of a step, open loop: each batch goes out when
//! due, without waiting for earlier answers (up to a bound on requests in
//! flight, whose exhaustion shows up as lag).
//!
//! Three ways in ([`SubmitMode`]): CometBFT's JSON-RPC (`broadcast_tx_sync`
//! batches), or the sequencer's HTTP API, one transaction per `POST /v1/tx`
//! or many per `POST /v1/txs` (a length-prefixed binary body).
//!
//! Hand-made JSON-RPC on purpose, the one exception to using
//! `tendermint-rpc`: that client sends one HTTP request per call, while the
//! load generator must offer thousands of tx/s from one process, which it
//! does with JSON-RPC batches of `broadcast_tx_sync` (one POST, many
//! transactions). Everything else talks to CometBFT through `tendermint-rpc`.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

/// Most requests in flight to one node: each is an HTTP/1.1 connection,
/// and CometBFT's RPC accepts 900 (`rpc.max_open_connections`).
pub const MAX_IN_FLIGHT: usize = 640;

/// How a step's transactions reach the network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SubmitMode {
    /// CometBFT's JSON-RPC: batches of `broadcast_tx_sync` (up to
    /// `--rpc-batch` per request). The only way into kvstore.
    #[default]
    Rpc,
    /// The sequencer API, one transaction per `POST /v1/tx` (raw bytes).
    Api,
    /// The sequencer API, up to `--api-batch` transactions per
    /// `POST /v1/txs` (`u32le length ‖ bytes`, repeated).
    ApiBatch,
}

impl SubmitMode {
    /// `rpc`, `api` or `api-batch`.
    pub fn name(self) -> &'static str {
        match self {
            SubmitMode::Rpc => "rpc",
            SubmitMode::Api => "api",
            SubmitMode::ApiBatch => "api-batch",
        }
    }

    /// Whether requests go to the sequencer's API (which kvstore lacks).
    pub fn uses_api(self) -> bool {
        !matches!(self, SubmitMode::Rpc)
    }

    /// Where requests go, given a node's CometBFT RPC and sequencer API
    /// base URLs.
    pub fn url(self, rpc_url: &str, api_url: &str) -> String {
        match self {
            SubmitMode::Rpc => rpc_url.to_string(),
            SubmitMode::Api => format!("{api_url}/v1/tx"),
            SubmitMode::ApiBatch => format!("{api_url}/v1/txs"),
        }
    }

    /// The request's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            SubmitMode::Rpc => "application/json",
            SubmitMode::Api | SubmitMode::ApiBatch => "application/octet-stream",
        }
    }

    /// Bytes a transaction of `tx_len` bytes adds to a request body of
    /// this mode (`rpc_len`: its JSON-RPC request's length).
    pub fn body_cost(self, tx_len: usize, rpc_len: usize) -> usize {
        match self {
            // Its request and a comma.
            SubmitMode::Rpc => rpc_len + 1,
            SubmitMode::Api => tx_len,
            SubmitMode::ApiBatch => API_BATCH_PREFIX + tx_len,
        }
    }
}

impl std::fmt::Display for SubmitMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for SubmitMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "rpc" => Ok(SubmitMode::Rpc),
            "api" => Ok(SubmitMode::Api),
            "api-batch" => Ok(SubmitMode::ApiBatch),
            other => Err(format!(
                "unknown submission mode `{other}` (rpc, api or api-batch)"
            )),
        }
    }
}

/// Bytes of the length prefix before each transaction of a
/// `POST /v1/txs` binary body.
pub const API_BATCH_PREFIX: usize = 4;

/// A `POST /v1/txs` binary body: each transaction as `u32 little-endian
/// length ‖ bytes`. `None` if one is longer than a `u32` can say (never a
/// valid transaction).
pub fn api_batch_body<'a>(txs: impl IntoIterator<Item = &'a [u8]>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    for tx in txs {
        let len = u32::try_from(tx.len()).ok()?;
        body.extend_from_slice(&len.to_le_bytes());
        body.extend_from_slice(tx);
    }
    Some(body)
}

/// What `broadcast_tx_sync` said about one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// CheckTx code 0: in the mempool.
    Accepted,
    /// Refused: CheckTx code (`codespace:code`) or the RPC error.
    Rejected(String),
}

/// One transaction's send.
#[derive(Debug, Clone)]
pub struct Sent {
    /// Index in the step.
    pub tx: u32,
    /// When its request went out.
    pub at: Instant,
    /// How late that was against its due time.
    pub lag: Duration,
    /// From the request going out to its answer: for
    /// `broadcast_tx_sync`, the CheckTx answer time (a batch's requests
    /// are answered together, after the node checked each in turn).
    pub answered: Duration,
    /// The answer.
    pub outcome: Outcome,
}

/// One request ready to go.
#[derive(Debug, Clone)]
pub struct Request {
    /// When to send, from the step's start.
    pub due: Duration,
    /// Transactions it carries (their indexes).
    pub txs: Vec<u32>,
    /// The body: a JSON-RPC batch, one raw transaction, or a
    /// length-prefixed batch, per [`SubmitMode`].
    pub body: Bytes,
}

#[derive(Deserialize)]
struct Reply {
    id: serde_json::Value,
    #[serde(default)]
    result: Option<CheckTxResult>,
    #[serde(default)]
    error: Option<RpcError>,
}

#[derive(Deserialize)]
struct CheckTxResult {
    code: u32,
    #[serde(default)]
    codespace: String,
}

#[derive(Deserialize)]
struct RpcError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    data: Option<String>,
}

/// Sends `requests` to `url` (as `mode` wants) on schedule from `start`;
/// returns every transaction's send and outcome.
pub async fn send_all(
    http: reqwest::Client,
    mode: SubmitMode,
    url: String,
    requests: Vec<Request>,
    start: Instant,
) -> Vec<Sent> {
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut in_flight = Vec::with_capacity(requests.len());
    for request in requests {
        let due = start + request.due;
        tokio::time::sleep_until(due.into()).await;
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let at = Instant::now();
        let lag = at.saturating_duration_since(due);
        let http = http.clone();
        let url = url.clone();
        in_flight.push(tokio::spawn(async move {
            let answer = post(&http, mode, &url, request.body).await;
            let answered = at.elapsed();
            drop(permit);
            answer_outcomes(mode, &request.txs, answer)
                .into_iter()
                .map(|(tx, outcome)| Sent {
                    tx,
                    at,
                    lag,
                    answered,
                    outcome,
                })
                .collect::<Vec<_>>()
        }));
    }
    let mut all = Vec::new();
    for task in in_flight {
        if let Ok(sent) = task.await {
            all.extend(sent);
        }
    }
    all
}

/// An HTTP answer: status and body.
pub type Answer = Result<(u16, String), String>;

async fn post(http: &reqwest::Client, mode: SubmitMode, url: &str, body: Bytes) -> Answer {
    let response = http
        .post(url)
        .header("content-type", mode.content_type())
        .body(body)
        .send()
        .await
        .map_err(|e| format!("http: {e}"))?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|e| format!("http: {e}"))?;
    Ok((status, text))
}

/// Each transaction's outcome from the answer to a request of `mode`
/// carrying `txs`.
pub fn answer_outcomes(mode: SubmitMode, txs: &[u32], answer: Answer) -> Vec<(u32, Outcome)> {
    match mode {
        SubmitMode::Rpc => outcomes(
            txs,
            answer.and_then(|(status, text)| {
                // CometBFT answers JSON-RPC errors with 200 or 500 and a
                // JSON body; anything else is the HTTP layer's refusal.
                if (200..300).contains(&status) || text.starts_with('[') || text.starts_with('{') {
                    Ok(text)
                } else {
                    Err(format!("http {status}"))
                }
            }),
        ),
        SubmitMode::Api => {
            let outcome = match answer {
                Err(reason) => Outcome::Rejected(reason),
                Ok((status, text)) => api_tx_outcome(status, &text),
            };
            txs.iter().map(|&t| (t, outcome.clone())).collect()
        }
        SubmitMode::ApiBatch => api_batch_outcomes(txs, answer),
    }
}

/// The API's error body, `{ code, message, … }`.
#[derive(Deserialize)]
struct ApiErrorBody {
    code: String,
}

/// A refusal by the API: its error code, or the HTTP status when the body
/// is not the API's error shape.
fn api_refusal(status: u16, text: &str) -> Outcome {
    match serde_json::from_str::<ApiErrorBody>(text) {
        Ok(e) => Outcome::Rejected(format!("api:{}", e.code)),
        Err(_) => Outcome::Rejected(format!("http {status}")),
    }
}

/// `POST /v1/tx`: 202 `{ "hash", "status" }` admitted (pending, or parked
/// until an earlier nonce arrives); anything else an error body.
pub fn api_tx_outcome(status: u16, text: &str) -> Outcome {
    if (200..300).contains(&status) {
        let admitted = serde_json::from_str::<serde_json::Value>(text)
            .is_ok_and(|v| v.get("hash").is_some() && v.get("status").is_some());
        if admitted {
            Outcome::Accepted
        } else {
            Outcome::Rejected("unreadable answer".into())
        }
    } else {
        api_refusal(status, text)
    }
}

/// One entry of a `POST /v1/txs` answer: a status or an error.
#[derive(Deserialize)]
struct BatchResult {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    error: Option<ApiErrorBody>,
}

#[derive(Deserialize)]
struct BatchAnswer {
    results: Vec<BatchResult>,
}

/// `POST /v1/txs`: 200 `{ "accepted", "refused", "results": [...] }`, one
/// result per transaction in the order sent, each `{ "hash", "status" }`
/// or `{ "hash"?, "error": { "code", "message" } }`. A whole-request
/// refusal (400, 413, 429, 503) is an error body and refuses them all; so
/// does an answer whose results do not match the transactions one to one.
pub fn api_batch_outcomes(txs: &[u32], answer: Answer) -> Vec<(u32, Outcome)> {
    let all = |o: Outcome| txs.iter().map(|&t| (t, o.clone())).collect();
    let (status, text) = match answer {
        Err(reason) => return all(Outcome::Rejected(reason)),
        Ok(a) => a,
    };
    if !(200..300).contains(&status) {
        return all(api_refusal(status, &text));
    }
    let answer: BatchAnswer = match serde_json::from_str(&text) {
        Ok(a) => a,
        Err(_) => {
            tracing::debug!(answer = %text.chars().take(200).collect::<String>(), "unreadable answer");
            return all(Outcome::Rejected("unreadable answer".into()));
        }
    };
    if answer.results.len() != txs.len() {
        return all(Outcome::Rejected(format!(
            "{} results for {} txs",
            answer.results.len(),
            txs.len()
        )));
    }
    txs.iter()
        .zip(answer.results)
        .map(|(&t, r)| {
            let outcome = match r {
                BatchResult { error: Some(e), .. } => Outcome::Rejected(format!("api:{}", e.code)),
                BatchResult {
                    status: Some(_), ..
                } => Outcome::Accepted,
                _ => Outcome::Rejected("empty result".into()),
            };
            (t, outcome)
        })
        .collect()
}

/// Each transaction's outcome from a batch answer (matched by id; a
/// transaction with no answer is rejected with the reason).
pub fn outcomes(txs: &[u32], answer: Result<String, String>) -> Vec<(u32, Outcome)> {
    let reject_all = |reason: &str| {
        txs.iter()
            .map(|&t| (t, Outcome::Rejected(reason.to_string())))
            .collect()
    };
    let replies: Vec<Reply> = match answer {
        // CometBFT answers a batch of one with a bare object.
        Ok(text) => match serde_json::from_str(&text)
            .or_else(|_| serde_json::from_str::<Reply>(&text).map(|r| vec![r]))
        {
            Ok(r) => r,
            Err(_) => {
                tracing::debug!(answer = %text.chars().take(200).collect::<String>(), "unreadable answer");
                return reject_all("unreadable answer");
            }
        },
        Err(reason) => return reject_all(&reason),
    };
    txs.iter()
        .map(|&t| {
            let reply = replies.iter().find(|r| r.id.as_u64() == Some(u64::from(t)));
            let outcome = match reply {
                None => Outcome::Rejected("no answer".into()),
                Some(Reply {
                    result: Some(r), ..
                }) if r.code == 0 => Outcome::Accepted,
                Some(Reply {
                    result: Some(r), ..
                }) => Outcome::Rejected(if r.codespace.is_empty() {
                    format!("code {}", r.code)
                } else {
                    format!("{}:{}", r.codespace, r.code)
                }),
                Some(Reply { error: Some(e), .. }) => {
                    let detail = e.data.clone().unwrap_or_else(|| e.message.clone());
                    // Keep the reason, not the tx-specific tail.
                    Outcome::Rejected(detail.chars().take(40).collect())
                }
                Some(_) => Outcome::Rejected("empty answer".into()),
            };
            (t, outcome)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_answers_are_matched_by_id() {
        let answer = r#"[
          {"jsonrpc":"2.0","id":7,"result":{"code":0,"data":"","log":"","codespace":"","hash":"AA"}},
          {"jsonrpc":"2.0","id":8,"result":{"code":11,"data":"","log":"full","codespace":"weft","hash":"BB"}},
          {"jsonrpc":"2.0","id":9,"error":{"code":-32603,"message":"Internal error","data":"tx already exists in cache"}}
        ]"#;
        let o = outcomes(&[9, 7, 8, 10], Ok(answer.into()));
        assert_eq!(
            o,
            vec![
                (9, Outcome::Rejected("tx already exists in cache".into())),
                (7, Outcome::Accepted),
                (8, Outcome::Rejected("weft:11".into())),
                (10, Outcome::Rejected("no answer".into())),
            ]
        );
    }

    #[test]
    fn a_failed_request_rejects_all_its_transactions() {
        let o = outcomes(&[1, 2], Err("http: connection refused".into()));
        assert!(o
            .iter()
            .all(|(_, r)| *r == Outcome::Rejected("http: connection refused".into())));
        let o = outcomes(&[1], Ok("<html>".into()));
        assert_eq!(o[0].1, Outcome::Rejected("unreadable answer".into()));
        let kv = outcomes(&[3], Ok(r#"[{"id":3,"result":{"code":1}}]"#.into()));
        assert_eq!(kv[0].1, Outcome::Rejected("code 1".into()));
    }

    #[test]
    fn rpc_answers_through_the_mode_dispatch() {
        let one = r#"{"jsonrpc":"2.0","id":4,"result":{"code":0}}"#;
        assert_eq!(
            answer_outcomes(SubmitMode::Rpc, &[4], Ok((200, one.into()))),
            vec![(4, Outcome::Accepted)]
        );
        // CometBFT's JSON-RPC error bodies come with a 500.
        let err = r#"[{"jsonrpc":"2.0","id":4,"error":{"code":-32603,"message":"Internal error","data":"mempool is full"}}]"#;
        assert_eq!(
            answer_outcomes(SubmitMode::Rpc, &[4], Ok((500, err.into()))),
            vec![(4, Outcome::Rejected("mempool is full".into()))]
        );
        assert_eq!(
            answer_outcomes(SubmitMode::Rpc, &[4], Ok((413, "too big".into()))),
            vec![(4, Outcome::Rejected("http 413".into()))]
        );
    }

    #[test]
    fn api_batch_bodies_are_length_prefixed() {
        let body = api_batch_body([&b"abc"[..], &[][..], &[7u8; 300][..]]).unwrap();
        assert_eq!(&body[..7], &[3, 0, 0, 0, b'a', b'b', b'c']);
        assert_eq!(&body[7..11], &[0, 0, 0, 0]);
        assert_eq!(&body[11..15], &300u32.to_le_bytes());
        assert_eq!(&body[15..], &[7u8; 300][..]);
        assert_eq!(
            body.len(),
            SubmitMode::ApiBatch.body_cost(3, 0)
                + SubmitMode::ApiBatch.body_cost(0, 0)
                + SubmitMode::ApiBatch.body_cost(300, 0)
        );
        assert_eq!(
            api_batch_body(std::iter::empty::<&[u8]>()),
            Some(Vec::new())
        );
    }

    #[test]
    fn single_api_answers() {
        let ok = r#"{"hash":"ab","status":"pending"}"#;
        assert_eq!(api_tx_outcome(202, ok), Outcome::Accepted);
        let parked = r#"{"hash":"ab","status":"parked","waiting_for_nonce":3}"#;
        assert_eq!(api_tx_outcome(202, parked), Outcome::Accepted);
        let dup = r#"{"code":"duplicate","message":"already pending","hash":"ab"}"#;
        assert_eq!(
            api_tx_outcome(409, dup),
            Outcome::Rejected("api:duplicate".into())
        );
        assert_eq!(
            api_tx_outcome(502, "<html>bad gateway</html>"),
            Outcome::Rejected("http 502".into())
        );
        assert_eq!(
            api_tx_outcome(202, "{}"),
            Outcome::Rejected("unreadable answer".into())
        );
        let o = answer_outcomes(SubmitMode::Api, &[5], Err("http: refused".into()));
        assert_eq!(o, vec![(5, Outcome::Rejected("http: refused".into()))]);
    }

    #[test]
    fn batch_api_answers_are_matched_in_order() {
        let answer = r#"{"accepted":2,"refused":2,"results":[
            {"hash":"aa","status":"pending"},
            {"hash":"bb","error":{"code":"bad_signature","message":"no"}},
            {"error":{"code":"undecodable","message":"not a transaction"}},
            {"hash":"dd","status":"parked","waiting_for_nonce":7}
        ]}"#;
        assert_eq!(
            api_batch_outcomes(&[10, 11, 12, 13], Ok((200, answer.into()))),
            vec![
                (10, Outcome::Accepted),
                (11, Outcome::Rejected("api:bad_signature".into())),
                (12, Outcome::Rejected("api:undecodable".into())),
                (13, Outcome::Accepted),
            ]
        );
        // Fewer results than transactions: nothing can be matched.
        let short = r#"{"accepted":1,"refused":0,"results":[{"hash":"aa","status":"pending"}]}"#;
        assert!(api_batch_outcomes(&[1, 2], Ok((200, short.into())))
            .iter()
            .all(|(_, o)| *o == Outcome::Rejected("1 results for 2 txs".into())));
        // A whole-request refusal refuses every transaction with its code.
        let busy = r#"{"code":"overloaded","message":"try later"}"#;
        assert!(api_batch_outcomes(&[1, 2], Ok((503, busy.into())))
            .iter()
            .all(|(_, o)| *o == Outcome::Rejected("api:overloaded".into())));
        assert!(api_batch_outcomes(&[1], Ok((200, "[]".into())))
            .iter()
            .all(|(_, o)| *o == Outcome::Rejected("unreadable answer".into())));
        assert_eq!(
            answer_outcomes(SubmitMode::ApiBatch, &[3], Err("http: reset".into())),
            vec![(3, Outcome::Rejected("http: reset".into()))]
        );
    }

    #[test]
    fn modes_name_their_urls_and_parse() {
        for m in [SubmitMode::Rpc, SubmitMode::Api, SubmitMode::ApiBatch] {
            assert_eq!(m.name().parse::<SubmitMode>(), Ok(m));
            assert_eq!(m.to_string(), m.name());
        }
        assert!("grpc".parse::<SubmitMode>().is_err());
        let (rpc, api) = ("http://127.0.0.1:1", "http://127.0.0.1:2");
        assert_eq!(SubmitMode::Rpc.url(rpc, api), rpc);
        assert_eq!(SubmitMode::Api.url(rpc, api), "http://127.0.0.1:2/v1/tx");
        assert_eq!(
            SubmitMode::ApiBatch.url(rpc, api),
            "http://127.0.0.1:2/v1/txs"
        );
        assert!(!SubmitMode::Rpc.uses_api() && SubmitMode::ApiBatch.uses_api());
        assert_eq!(SubmitMode::default(), SubmitMode::Rpc);
    }

    #[test]
    fn a_batch_of_one_is_answered_with_a_bare_object() {
        let one = r#"{"jsonrpc":"2.0","id":0,"result":{"code":0,"data":"","log":"","codespace":"","hash":"AA"}}"#;
        assert_eq!(outcomes(&[0], Ok(one.into())), vec![(0, Outcome::Accepted)]);
    }
}
