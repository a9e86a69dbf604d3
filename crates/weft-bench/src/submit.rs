//! Sending one node's share of a step, open loop: each batch goes out when
//! due, without waiting for earlier answers (up to a bound on requests in
//! flight, whose exhaustion shows up as lag).
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
use serde::Deserialize;
use tokio::sync::Semaphore;

/// Most requests in flight to one node: each is an HTTP/1.1 connection,
/// and CometBFT's RPC accepts 900 (`rpc.max_open_connections`).
pub const MAX_IN_FLIGHT: usize = 640;

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
    /// The JSON-RPC batch.
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

/// Sends `requests` to `url` on schedule from `start`; returns every
/// transaction's send and outcome.
pub async fn send_all(
    http: reqwest::Client,
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
            let answer = post(&http, &url, request.body).await;
            let answered = at.elapsed();
            drop(permit);
            outcomes(&request.txs, answer)
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

async fn post(http: &reqwest::Client, url: &str, body: Bytes) -> Result<String, String> {
    let response = http
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("http: {e}"))?;
    let status = response.status();
    let text = response.text().await.map_err(|e| format!("http: {e}"))?;
    if !status.is_success() && !text.starts_with('[') {
        return Err(format!("http {}", status.as_u16()));
    }
    Ok(text)
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
    fn a_batch_of_one_is_answered_with_a_bare_object() {
        let one = r#"{"jsonrpc":"2.0","id":0,"result":{"code":0,"data":"","log":"","codespace":"","hash":"AA"}}"#;
        assert_eq!(outcomes(&[0], Ok(one.into())), vec![(0, Outcome::Accepted)]);
    }
}
