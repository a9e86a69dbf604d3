//! The API's one error shape, `{ code, message }` with a matching status.
//! Refusals before a handler (axum's extractor rejections through
//! `weft_http::JsonPath`/`JsonQuery`, and whatever the framework or a layer
//! answers on its own: 405, 408, 413) take the same shape from
//! `weft_http::error` through [`json_errors`].

use axum::{
    extract::rejection::BytesRejection,
    http::{HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;

/// A JSON error body: `{ code, message }` with a matching HTTP status.
#[derive(Debug, Serialize)]
pub struct ApiError {
    /// Machine-readable code.
    pub code: &'static str,
    /// What went wrong and what to do.
    pub message: String,
    /// Extra fields (tx hash, ABCI code) where they help.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
    #[serde(skip)]
    status: StatusCode,
    /// Seconds to send as `Retry-After`, for refusals that pass.
    #[serde(skip)]
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with a status.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            details: None,
            status,
            retry_after: None,
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub(super) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub(super) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// The one answer for a height this node has not committed yet, on
    /// every endpoint that takes a height.
    pub(super) fn not_committed(height: u64, latest: u64) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_committed",
            format!("height {height} is not committed yet (latest {latest})"),
        )
    }

    pub(super) fn internal(e: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    }

    pub(super) fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    pub(super) fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = self.retry_after;
        let mut response = (self.status, Json(self)).into_response();
        if let Some(s) = retry_after {
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from(s));
        }
        response
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        let r = weft_http::Rejection::from(r);
        Self::new(r.status, r.code, r.message)
    }
}

/// Response mapping (outermost layer): an error answer that is not JSON
/// already becomes `{ code, message }` with the same status and headers
/// (a 503 is `unavailable`).
pub async fn json_errors(response: Response) -> Response {
    weft_http::json_errors(response, "unavailable").await
}
