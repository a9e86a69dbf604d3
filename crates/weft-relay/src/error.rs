//! The relay's one error shape, `{ code, message }` with a matching HTTP
//! status. Refusals before a handler (extractor rejections, what a layer or
//! the framework answers on its own) take the same shape from
//! `weft_http::error`.

use axum::{
    extract::rejection::BytesRejection,
    http::{HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;
use utoipa::ToSchema;

/// A JSON error body: `{ code, message }`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RelayError {
    /// Machine-readable code; one per reason (see docs/builders.md).
    pub code: &'static str,
    /// What went wrong and what to do.
    pub message: String,
    #[serde(skip)]
    status: StatusCode,
    #[serde(skip)]
    retry_after: Option<u64>,
}

impl RelayError {
    /// An error with its status.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        RelayError {
            code,
            message: message.into(),
            status,
            retry_after: None,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Adds a `Retry-After` of `seconds` (at least 1).
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub(crate) fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub(crate) fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message).with_retry_after(1)
    }

    pub(crate) fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub(crate) fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    }
}

impl std::fmt::Display for RelayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl IntoResponse for RelayError {
    fn into_response(self) -> Response {
        let retry_after = self.retry_after;
        let mut response = (self.status, Json(&self)).into_response();
        if let Some(s) = retry_after {
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from(s));
        }
        response
    }
}

impl From<BytesRejection> for RelayError {
    fn from(r: BytesRejection) -> Self {
        let r = weft_http::Rejection::from(r);
        Self::new(r.status, r.code, r.message)
    }
}

/// Outermost response mapping: an error answer that is not JSON yet becomes
/// `{ code, message }` with the same status and headers (a 503 from the
/// load-shedding layer is `overloaded`).
pub async fn json_errors(response: Response) -> Response {
    weft_http::json_errors(response, "overloaded").await
}
