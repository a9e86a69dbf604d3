//! Where batches come from: one or more sequencer API endpoints, used in
//! order with failover. An endpoint that errors, serves an oversized body
//! or serves something that does not verify is left for the next one.

use std::time::Duration;

use serde::{de::DeserializeOwned, Deserialize};
use tendermint::{block::signed_header::SignedHeader, validator};
use weft_core::{RollupBatchProof, RollupId};

/// Default cap on one response body from a sequencer endpoint. One height
/// can carry a whole block of one rollup's data (4 MiB on the default
/// network, a third more as base64), so this leaves room for several full
/// heights per range; a range that does not fit is asked for again in
/// smaller pieces.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Why a fetch failed (the conductor then tries the next endpoint).
#[derive(Debug, thiserror::Error)]
#[error("{endpoint}: {kind}")]
pub struct SourceError {
    /// Which endpoint.
    pub endpoint: String,
    /// What went wrong.
    pub kind: SourceErrorKind,
}

/// What went wrong with one request.
#[derive(Debug, thiserror::Error)]
pub enum SourceErrorKind {
    /// No answer: connection, TLS, the client's own timeout.
    #[error("request failed: {0}")]
    Request(#[source] reqwest::Error),
    /// A non-2xx answer.
    #[error("HTTP {0}")]
    Status(reqwest::StatusCode),
    /// The body grew past the cap; reading stopped there.
    #[error("response body larger than {limit} bytes")]
    TooLarge {
        /// The cap in force.
        limit: usize,
    },
    /// The body is not the JSON the API documents.
    #[error("malformed answer: {0}")]
    Malformed(#[source] serde_json::Error),
    /// The whole step (fetch and check) did not finish in time.
    #[error("no verified answer within {0:?}")]
    Timeout(Duration),
    /// A background task of ours failed (it panicked or was cancelled).
    #[error("{0}")]
    Task(String),
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

/// What one endpoint says about one height (unverified).
#[derive(Debug)]
pub enum HeaderAt {
    /// The signed header it serves for the height.
    Committed(Box<SignedHeader>),
    /// It has not committed the height; its latest height.
    NotYet {
        /// The endpoint's last committed height.
        latest: u64,
    },
}

/// The sequencer endpoints of one rollup.
#[derive(Clone)]
pub struct BatchSource {
    endpoints: Vec<String>,
    current: usize,
    rollup_id: RollupId,
    max_response_bytes: usize,
    http: reqwest::Client,
}

impl BatchSource {
    /// Endpoints are sequencer API base URLs (e.g. `http://127.0.0.1:26659`).
    /// Response bodies are capped at [`DEFAULT_MAX_RESPONSE_BYTES`].
    pub fn new(endpoints: Vec<String>, rollup_id: RollupId) -> Self {
        BatchSource {
            endpoints: endpoints
                .into_iter()
                .map(|e| e.trim_end_matches('/').to_string())
                .collect(),
            current: 0,
            rollup_id,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
        }
    }

    /// Caps every response body at `bytes`: reading stops there and the
    /// request fails with [`SourceErrorKind::TooLarge`].
    pub fn with_max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// The endpoint in use.
    pub fn endpoint(&self) -> &str {
        self.endpoints
            .get(self.current)
            .map(String::as_str)
            .unwrap_or("")
    }

    /// Every endpoint, in failover order.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// Moves to the next endpoint (after an error or a refusal).
    pub fn fail_over(&mut self) {
        if !self.endpoints.is_empty() {
            self.current = (self.current + 1) % self.endpoints.len();
        }
        tracing::warn!(endpoint = self.endpoint(), "switching sequencer endpoint");
    }

    fn err(&self, endpoint: &str, kind: SourceErrorKind) -> SourceError {
        SourceError {
            endpoint: endpoint.to_string(),
            kind,
        }
    }

    /// GET `url` and decode its JSON body, reading at most the cap.
    async fn get_json<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<T, SourceError> {
        let resp = request
            .send()
            .await
            .map_err(|e| self.err(endpoint, SourceErrorKind::Request(e)))?;
        if !resp.status().is_success() {
            return Err(self.err(endpoint, SourceErrorKind::Status(resp.status())));
        }
        let body = read_capped(resp, self.max_response_bytes)
            .await
            .map_err(|e| self.err(endpoint, e))?;
        serde_json::from_slice(&body).map_err(|e| self.err(endpoint, SourceErrorKind::Malformed(e)))
    }

    /// Heights `from..from+limit` that the endpoint in use has, waiting up
    /// to `wait` for the first one (long poll).
    pub async fn fetch(
        &self,
        from: u64,
        limit: u64,
        wait: Duration,
    ) -> Result<Fetched, SourceError> {
        self.fetch_from(self.endpoint(), from, limit, wait).await
    }

    async fn fetch_from(
        &self,
        endpoint: &str,
        from: u64,
        limit: u64,
        wait: Duration,
    ) -> Result<Fetched, SourceError> {
        let url = format!("{endpoint}/v1/rollups/{}/batches", self.rollup_id.to_hex());
        let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        let request =
            self.http
                .get(url)
                .query(&[("from", from), ("limit", limit), ("wait_ms", wait_ms)]);
        let range: Range = self.get_json(endpoint, request).await?;
        Ok(Fetched {
            items: range.items,
            latest: range.latest,
        })
    }

    /// The signed header `endpoint` serves for `height`, or its latest
    /// height if it has not committed that one. Nothing is verified here.
    pub async fn header_at(&self, endpoint: &str, height: u64) -> Result<HeaderAt, SourceError> {
        let fetched = self.fetch_from(endpoint, height, 1, Duration::ZERO).await?;
        Ok(
            match fetched.items.into_iter().find(|i| i.height == height) {
                Some(item) => HeaderAt::Committed(Box::new(item.signed_header)),
                None => HeaderAt::NotYet {
                    latest: fetched.latest,
                },
            },
        )
    }

    /// The validator set at `height`, from the endpoint in use.
    pub async fn validators(&self, height: u64) -> Result<validator::Set, SourceError> {
        let endpoint = self.endpoint();
        let url = format!("{endpoint}/v1/validator-sets/{height}");
        let v: Validators = self.get_json(endpoint, self.http.get(url)).await?;
        Ok(validator::Set::without_proposer(v.validators))
    }
}

/// Reads a response body chunk by chunk, stopping with
/// [`SourceErrorKind::TooLarge`] as soon as it would pass `limit` bytes, so
/// an endless or huge body costs at most `limit` bytes of memory.
pub(crate) async fn read_capped(
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, SourceErrorKind> {
    // A declared length over the cap is refused before reading anything.
    if resp
        .content_length()
        .is_some_and(|n| n > u64::try_from(limit).unwrap_or(u64::MAX))
    {
        return Err(SourceErrorKind::TooLarge { limit });
    }
    let declared = resp
        .content_length()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0);
    let mut body = Vec::with_capacity(declared.min(limit));
    while let Some(chunk) = resp.chunk().await.map_err(SourceErrorKind::Request)? {
        if chunk.len() > limit.saturating_sub(body.len()) {
            return Err(SourceErrorKind::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
