//! What Weft's HTTP services share (the sequencer's API and the relay):
//! the server below and the JSON shape of refusals ([`error`]).
//!
//! Serving over TCP with hyper directly rather than `axum::serve`:
//! axum's server sets no timer, so hyper's header-read timeout is off and a
//! client that opens connections and dribbles its request headers
//! (slowloris) holds each connection and its file descriptor for as long
//! as it likes. Here every connection must deliver a request's headers
//! within [`HEADER_READ_TIMEOUT`] or be closed. HTTP/1 only, as before
//! (axum's `http2` feature is off in this workspace).

pub mod error;

pub use error::{json_errors, JsonPath, JsonQuery, Rejection};

use std::{convert::Infallible, future::Future, time::Duration};

use axum::{extract::ConnectInfo, Router};
use hyper::{body::Incoming, server::conn::http1, service::service_fn, Request};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
};
use tokio::net::TcpListener;
use tower::ServiceExt;

/// Longest wait for a request's headers on a connection (the first one, and
/// each next one on a kept-alive connection).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause after a failed accept (out of file descriptors, most likely):
/// retrying at once would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `router` on `listener` until `shutdown` completes, then waits for
/// the requests in flight. Each request carries its peer's
/// `ConnectInfo<SocketAddr>` (the per-IP rate limit's key).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting an API connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let router = router.clone();
            async move {
                let answer: Result<_, Infallible> = router.oneshot(req).await;
                answer
            }
        });
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "API connection ended");
            }
        });
    }
    graceful.shutdown().await;
}
