//! The relay's one error shape, `{ code, message }` with a matching HTTP
//! status, and the mapping that turns whatever a layer or the framework
//! answers on its own (405, 408, 413, 503) into it.

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

impl From<PathRejection> for RelayError {
    fn from(r: PathRejection) -> Self {
        match r {
            PathRejection::FailedToDeserializePathParams(e) => {
                Self::bad_request("bad_path", format!("path parameter: {}", e.body_text()))
            }
            other => Self::internal(other.body_text()),
        }
    }
}

impl From<QueryRejection> for RelayError {
    fn from(r: QueryRejection) -> Self {
        Self::bad_request("bad_query", r.body_text())
    }
}

impl From<BytesRejection> for RelayError {
    fn from(r: BytesRejection) -> Self {
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

/// `Path` whose rejection is a [`RelayError`].
pub struct RelayPath<T>(pub T);

impl<T, S> FromRequestParts<S> for RelayPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = RelayError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, RelayError> {
        let Path(t) = Path::<T>::from_request_parts(parts, state).await?;
        Ok(RelayPath(t))
    }
}

/// `Query` whose rejection is a [`RelayError`].
pub struct RelayQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for RelayQuery<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = RelayError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, RelayError> {
        let Query(t) = Query::<T>::from_request_parts(parts, state).await?;
        Ok(RelayQuery(t))
    }
}

fn code_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE => "overloaded",
        s if s.is_client_error() => "bad_request",
        _ => "internal",
    }
}

/// Most bytes of a plain-text error body kept as its message.
const MAX_MESSAGE_BYTES: usize = 4096;

/// Outermost response mapping: an error answer that is not JSON yet becomes
/// `{ code, message }` with the same status and headers.
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
