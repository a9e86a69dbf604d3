//! Where batches come from: one or more sequencer API endpoints, used in
//! order with failover. An endpoint that errors or serves something that
//! does not verify is left for the next one.

use std::time::Duration;

use serde::Deserialize;
use tendermint::{block::signed_header::SignedHeader, validator};
use weft_core::{RollupBatchProof, RollupId};

/// Why a fetch failed (the conductor then tries the next endpoint).
#[derive(Debug, thiserror::Error)]
#[error("{endpoint}: {message}")]
pub struct SourceError {
    /// Which endpoint.
    pub endpoint: String,
    /// What went wrong.
    pub message: String,
}

/// One height as served: unverified until the conductor checks it.
#[derive(Debug, Clone, Deserialize)]
pub struct SequencedBatch {
    /// Height.
    pub height: u64,
    /// CometBFT's signed header (header + commit).
    pub signed_header: SignedHeader,
    /// The rollup's batch with its proofs.
    pub batch: RollupBatchProof,
}

#[derive(Debug, Deserialize)]
struct Range {
    items: Vec<SequencedBatch>,
    latest: u64,
}

#[derive(Debug, Deserialize)]
struct Validators {
    validators: Vec<validator::Info>,
}

/// A range answer: consecutive heights and the endpoint's latest height.
#[derive(Debug)]
pub struct Fetched {
    /// Consecutive heights from the one asked for.
    pub items: Vec<SequencedBatch>,
    /// The endpoint's last committed height.
    pub latest: u64,
}

/// The sequencer endpoints of one rollup.
#[derive(Clone)]
pub struct BatchSource {
    endpoints: Vec<String>,
    current: usize,
    rollup_id: RollupId,
    http: reqwest::Client,
}

impl BatchSource {
    /// Endpoints are sequencer API base URLs (e.g. `http://127.0.0.1:26659`).
    pub fn new(endpoints: Vec<String>, rollup_id: RollupId) -> Self {
        BatchSource {
            endpoints: endpoints
                .into_iter()
                .map(|e| e.trim_end_matches('/').to_string())
                .collect(),
            current: 0,
            rollup_id,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
        }
    }

    /// The endpoint in use.
    pub fn endpoint(&self) -> &str {
        self.endpoints
            .get(self.current)
            .map(String::as_str)
            .unwrap_or("")
    }

    /// Moves to the next endpoint (after an error or a refusal).
    pub fn fail_over(&mut self) {
        if !self.endpoints.is_empty() {
            self.current = (self.current + 1) % self.endpoints.len();
        }
        tracing::warn!(endpoint = self.endpoint(), "switching sequencer endpoint");
    }

    fn err(&self, message: impl ToString) -> SourceError {
        SourceError {
            endpoint: self.endpoint().to_string(),
            message: message.to_string(),
        }
    }

    /// Heights `from..from+limit` that the endpoint has, waiting up to
    /// `wait` for the first one (long poll).
    pub async fn fetch(
        &self,
        from: u64,
        limit: u64,
        wait: Duration,
    ) -> Result<Fetched, SourceError> {
        let url = format!(
            "{}/v1/rollups/{}/batches",
            self.endpoint(),
            self.rollup_id.to_hex()
        );
        let resp = self
            .http
            .get(url)
            .query(&[
                ("from", from),
                ("limit", limit),
                ("wait_ms", wait.as_millis() as u64),
            ])
            .send()
            .await
            .map_err(|e| self.err(e))?;
        if !resp.status().is_success() {
            return Err(self.err(format!("HTTP {}", resp.status())));
        }
        let range: Range = resp
            .json()
            .await
            .map_err(|e| self.err(format!("malformed answer: {e}")))?;
        Ok(Fetched {
            items: range.items,
            latest: range.latest,
        })
    }

    /// The validator set at `height`.
    pub async fn validators(&self, height: u64) -> Result<validator::Set, SourceError> {
        let url = format!("{}/v1/validators/{height}", self.endpoint());
        let resp = self.http.get(url).send().await.map_err(|e| self.err(e))?;
        if !resp.status().is_success() {
            return Err(self.err(format!("validators: HTTP {}", resp.status())));
        }
        let v: Validators = resp
            .json()
            .await
            .map_err(|e| self.err(format!("malformed validators: {e}")))?;
        Ok(validator::Set::without_proposer(v.validators))
    }
}
