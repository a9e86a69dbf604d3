//! The API's one error shape, `{ code, message }` with a matching status,
//! and how every failure becomes it: handler errors, axum's extractor
//! rejections (through the `ApiPath`/`ApiQuery` extractors), and whatever
//! the framework or a layer answers on its own (405, 408, 413) through
//! [`json_errors`].

use axum::{
    body::{to_bytes, Body},
    extract::{
        rejection::{BytesRejection, PathRejection, QueryRejection},
        FromRequestParts, Path, Query,
    },
    http::{
        header::{CONTENT_LENGTH, CONTENT_TYPE},
        request::Parts,
        HeaderValue, StatusCode,
    },
    response::{IntoResponse, Response},
    Json,
};
use serde::{de::DeserializeOwned, Serialize};

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

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        match r {
            PathRejection::FailedToDeserializePathParams(e) => Self::new(
                StatusCode::BAD_REQUEST,
                "bad_path",
                format!("path parameter: {}", e.body_text()),
            ),
            // A route and its handler disagree: our bug, not the client's.
            other => Self::internal(other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_query", r.body_text())
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        // The body limit is the one way reading a body fails on input.
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                r.body_text(),
            )
        } else {
            Self::new(r.status(), "bad_body", r.body_text())
        }
    }
}

/// `Path` whose rejection is an [`ApiError`].
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(t) = Path::<T>::from_request_parts(parts, state).await?;
        Ok(ApiPath(t))
    }
}

/// `Query` whose rejection is an [`ApiError`].
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(t) = Query::<T>::from_request_parts(parts, state).await?;
        Ok(ApiQuery(t))
    }
}

/// The code a bare status is answered with when the framework or a layer
/// produced it without a JSON body.
fn code_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_client_error() => "bad_request",
        _ => "internal",
    }
}

/// Most bytes of a non-JSON error body kept as its message.
const MAX_MESSAGE_BYTES: usize = 4096;

/// Response mapping (outermost layer): an error answer that is not JSON
/// already (axum's 405, a timeout's 408, a rejection's plain text) becomes
/// `{ code, message }` with the same status and headers (`Allow`,
/// `Retry-After`). Successful answers and JSON errors pass untouched.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = to_bytes(body, MAX_MESSAGE_BYTES)
        .await
        .ok()
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .filter(|t| !t.is_empty());
    let message = text.unwrap_or_else(|| match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            let allowed = parts
                .headers
                .get("allow")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            format!("method not allowed here; allowed: {allowed}")
        }
        StatusCode::REQUEST_TIMEOUT => "the request took too long and was abandoned".into(),
        s => s.canonical_reason().unwrap_or("error").to_string(),
    });
    let body = serde_json::json!({ "code": code_of(status), "message": message });
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body.to_string()))
}
