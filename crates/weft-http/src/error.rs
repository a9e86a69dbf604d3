//! The one error shape of Weft's HTTP services, `{ code, message }` with a
//! matching status, for what is refused before a handler runs: axum's
//! extractor rejections (through [`JsonPath`] and [`JsonQuery`]) and
//! whatever the framework or a layer answers on its own (405, 408, 413,
//! 429, 503), mapped by [`json_errors`]. Each service keeps its own handler
//! error type with its own codes; both answer the same shape.

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
use serde::de::DeserializeOwned;

/// A request refused before its handler: status, code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The HTTP status.
    pub status: StatusCode,
    /// Machine-readable code.
    pub code: &'static str,
    /// What went wrong.
    pub message: String,
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "code": self.code, "message": self.message });
        (self.status, Json(body)).into_response()
    }
}

impl From<PathRejection> for Rejection {
    fn from(r: PathRejection) -> Self {
        match r {
            PathRejection::FailedToDeserializePathParams(e) => Rejection {
                status: StatusCode::BAD_REQUEST,
                code: "bad_path",
                message: format!("path parameter: {}", e.body_text()),
            },
            // A route and its handler disagree: our bug, not the client's.
            other => Rejection {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                code: "internal",
                message: other.body_text(),
            },
        }
    }
}

impl From<QueryRejection> for Rejection {
    fn from(r: QueryRejection) -> Self {
        Rejection {
            status: StatusCode::BAD_REQUEST,
            code: "bad_query",
            message: r.body_text(),
        }
    }
}

impl From<BytesRejection> for Rejection {
    fn from(r: BytesRejection) -> Self {
        // The body limit is the one way reading a body fails on input.
        let code = if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            "body_too_large"
        } else {
            "bad_body"
        };
        Rejection {
            status: r.status(),
            code,
            message: r.body_text(),
        }
    }
}

/// `Path` whose rejection is a JSON [`Rejection`].
pub struct JsonPath<T>(pub T);

impl<T, S> FromRequestParts<S> for JsonPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Rejection> {
        let Path(t) = Path::<T>::from_request_parts(parts, state).await?;
        Ok(JsonPath(t))
    }
}

/// `Query` whose rejection is a JSON [`Rejection`].
pub struct JsonQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for JsonQuery<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Rejection> {
        let Query(t) = Query::<T>::from_request_parts(parts, state).await?;
        Ok(JsonQuery(t))
    }
}

/// The code a bare status is answered with when the framework or a layer
/// produced it without a JSON body; `unavailable` names the service's 503.
pub fn code_of(status: StatusCode, unavailable: &'static str) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE => unavailable,
        s if s.is_client_error() => "bad_request",
        _ => "internal",
    }
}

/// Most bytes of a non-JSON error body kept as its message.
const MAX_MESSAGE_BYTES: usize = 4096;

/// Response mapping (a service's outermost layer, through a one-line
/// wrapper naming its 503 code): an error answer that is not JSON already
/// (axum's 405, a timeout's 408, a rejection's plain text) becomes
/// `{ code, message }` with the same status and headers (`Allow`,
/// `Retry-After`). Successful answers and JSON errors pass untouched.
pub async fn json_errors(response: Response, unavailable: &'static str) -> Response {
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
    let body = serde_json::json!({ "code": code_of(status, unavailable), "message": message });
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_bare_error_becomes_json_with_its_status_and_headers() {
        let response = Response::builder()
            .status(StatusCode::METHOD_NOT_ALLOWED)
            .header("allow", "GET,HEAD")
            .body(Body::empty())
            .unwrap();
        let mapped = json_errors(response, "overloaded").await;
        assert_eq!(mapped.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(mapped.headers()["allow"], "GET,HEAD");
        let body = to_bytes(mapped.into_body(), 1 << 16).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["code"], "method_not_allowed");
        assert_eq!(v["message"], "method not allowed here; allowed: GET,HEAD");
    }

    #[tokio::test]
    async fn a_503_takes_the_service_code_and_success_passes_untouched() {
        let busy = Response::builder()
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .body(Body::from("busy"))
            .unwrap();
        let body = to_bytes(json_errors(busy, "overloaded").await.into_body(), 1 << 16)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (v["code"].as_str(), v["message"].as_str()),
            (Some("overloaded"), Some("busy"))
        );

        let ok = Response::builder()
            .status(StatusCode::OK)
            .body(Body::from("plain"))
            .unwrap();
        let body = to_bytes(json_errors(ok, "overloaded").await.into_body(), 1 << 16)
            .await
            .unwrap();
        assert_eq!(&body[..], b"plain");
    }
}
