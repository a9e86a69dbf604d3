//! Request limits of the public API: a per-client-IP rate limit
//! (tower_governor), a per-client-IP budget of submitted transactions
//! (governor), a global cap on requests in flight (shed with 503 rather
//! than queued), a cap on open event streams, and the timeout of one
//! request. All configurable; see [`ApiLimits`] for the defaults and why.

use std::{
    convert::Infallible,
    net::{IpAddr, SocketAddr},
    num::NonZeroU32,
    sync::Arc,
    time::Duration,
};

use governor::{clock::Clock, DefaultKeyedRateLimiter, Quota, RateLimiter};

use axum::{
    body::Body,
    extract::{ConnectInfo, Request},
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
    BoxError,
};
use tower::{Layer, ServiceExt};
use tower_governor::{governor::GovernorConfigBuilder, GovernorError, GovernorLayer};

use super::ApiError;

/// The API's limits. Every field has a command-line flag and a
/// `WEFT_SEQUENCER_API_*` environment variable (see `config.rs`).
///
/// Defaults, and why:
/// - 100 requests/s per client IP with bursts of 200: far above what a
///   wallet, a conductor (about one long-poll per block) or a builder
///   needs, low enough that one address cannot take the node's two cores.
/// - 20,000 submitted transactions/s per client IP with bursts of 8,192
///   (two full `POST /v1/txs` requests): the request rate alone would let
///   one address submit 4,096 transactions per request, more than the
///   node admits in all; this is about a third of what the node can admit.
/// - loopback exempt: on a validator host, loopback clients are the
///   operator's own tools (the benchmark, co-located conductors, tests),
///   which must not be throttled. Behind a reverse proxy on the same host
///   every client looks like loopback: rate-limit in the proxy, or set
///   `rate_limit_loopback`.
/// - 1024 requests in flight: a long-poll holds one for up to 10 s, so
///   this is room for hundreds of followers; beyond it requests are shed
///   with 503 at once, not queued behind the ones already waiting.
/// - 256 open streams: each costs a task and a storage read per height.
/// - 15 s per request: longer than the longest long-poll (10 s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiLimits {
    /// Sustained requests per second allowed per client IP; 0 turns the
    /// per-IP limit off.
    pub rate_limit_per_second: u32,
    /// Requests a client IP may send at once before the sustained rate
    /// applies.
    pub rate_limit_burst: u32,
    /// Whether loopback clients are rate-limited too (requests and
    /// transactions).
    pub rate_limit_loopback: bool,
    /// Sustained transactions per second a client IP may submit
    /// (`POST /v1/tx` counts one, `POST /v1/txs` its length); 0 turns the
    /// budget off.
    pub rate_limit_txs_per_second: u32,
    /// Transactions a client IP may submit at once; a larger request is
    /// refused whole (413).
    pub rate_limit_txs_burst: u32,
    /// Requests handled at once (streams count only while opening); the
    /// rest are answered 503 `overloaded`.
    pub max_concurrent_requests: usize,
    /// Event streams open at once; more are answered 503 `too_many_streams`.
    pub max_streams: usize,
    /// A request not answered within this is answered 408.
    pub request_timeout: Duration,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            rate_limit_per_second: 100,
            rate_limit_burst: 200,
            rate_limit_loopback: false,
            rate_limit_txs_per_second: 20_000,
            rate_limit_txs_burst: 8_192,
            max_concurrent_requests: 1024,
            max_streams: 256,
            request_timeout: Duration::from_secs(15),
        }
    }
}

/// What the rate-limit middleware returns for one request.
type Limited = std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>;

/// How often the rate limiter forgets clients that are back to a full
/// quota (its memory grows with the number of distinct addresses).
const FORGET_IDLE_CLIENTS_EVERY: Duration = Duration::from_secs(60);

/// The per-IP rate limit as an axum middleware, or `None` when it is off.
/// Clients are keyed by their peer address, so the server must be served
/// with `into_make_service_with_connect_info::<SocketAddr>()`; a request
/// without one is refused with 500 rather than let through unlimited.
pub(super) fn rate_limit(
    limits: &ApiLimits,
) -> Option<impl Fn(Request, Next) -> Limited + Clone + Send + Sync + 'static> {
    if limits.rate_limit_per_second == 0 {
        return None;
    }
    let period_ns = (1_000_000_000 / u64::from(limits.rate_limit_per_second)).max(1);
    let config = GovernorConfigBuilder::default()
        .per_nanosecond(period_ns)
        .burst_size(limits.rate_limit_burst.max(1))
        .finish()?;
    forget_idle_clients(config.limiter(), |l| l.retain_recent());
    let layer = GovernorLayer::new(config).error_handler(refusal);
    let limit_loopback = limits.rate_limit_loopback;
    Some(move |req: Request, next: Next| {
        let layer = layer.clone();
        Box::pin(async move {
            let peer = req
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip());
            if !limit_loopback && peer.is_some_and(is_loopback) {
                return next.run(req).await;
            }
            let answer: Result<Response, Infallible> = layer.layer(next).oneshot(req).await;
            answer.into_response()
        }) as Limited
    })
}

/// Forgets, in the background, the clients of a keyed `limiter` that are
/// back to a full quota (its memory grows with the number of distinct
/// addresses); the task ends with the limiter (a router dropped in a test).
fn forget_idle_clients<L: Send + Sync + 'static>(limiter: &Arc<L>, retain: fn(&L)) {
    let weak = Arc::downgrade(limiter);
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(FORGET_IDLE_CLIENTS_EVERY);
            loop {
                tick.tick().await;
                let Some(limiter) = weak.upgrade() else {
                    return;
                };
                retain(&limiter);
            }
        });
    }
}

/// The per-IP budget of submitted transactions.
pub(super) struct TxBudget {
    limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    burst: u32,
    limit_loopback: bool,
}

impl TxBudget {
    /// The budget `limits` set, or `None` when it is off.
    pub(super) fn new(limits: &ApiLimits) -> Option<Arc<Self>> {
        let rate = NonZeroU32::new(limits.rate_limit_txs_per_second)?;
        let burst = NonZeroU32::new(limits.rate_limit_txs_burst).unwrap_or(NonZeroU32::MIN);
        let limiter = Arc::new(RateLimiter::keyed(
            Quota::per_second(rate).allow_burst(burst),
        ));
        forget_idle_clients(&limiter, |l| l.retain_recent());
        Some(Arc::new(TxBudget {
            limiter,
            burst: burst.get(),
            limit_loopback: limits.rate_limit_loopback,
        }))
    }

    /// Takes `n` transactions from `peer`'s budget: 429 `rate_limited`
    /// (with `Retry-After`) when it is spent, 413 `batch_too_large` when
    /// `n` is over the burst (no wait would make room). A request without
    /// a peer address (no connect info) or from an exempt loopback client
    /// is not counted.
    pub(super) fn charge(&self, peer: Option<IpAddr>, n: usize) -> Result<(), ApiError> {
        let Some(ip) = peer else {
            return Ok(());
        };
        if !self.limit_loopback && is_loopback(ip) {
            return Ok(());
        }
        let Some(cells) = u32::try_from(n).ok().and_then(NonZeroU32::new) else {
            return Ok(());
        };
        match self.limiter.check_key_n(&ip.to_canonical(), cells) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => {
                let clock = governor::clock::DefaultClock::default();
                let wait = not_until.wait_time_from(clock.now()).as_secs().max(1);
                Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!("too many transactions from this address; retry in {wait} s or slow down"),
                )
                .with_retry_after(wait))
            }
            Err(_) => Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "batch_too_large",
                format!(
                    "{n} transactions at once are more than this node takes from one address at a time ({}); send smaller batches",
                    self.burst
                ),
            )),
        }
    }
}

/// Loopback, also as an IPv4-mapped IPv6 address (a dual-stack listener).
fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// The governor's refusals, as API errors.
fn refusal(e: GovernorError) -> Response<Body> {
    match e {
        GovernorError::TooManyRequests { wait_time, .. } => {
            // Whole seconds, rounded down by the governor: at least 1.
            let wait = wait_time.max(1);
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many requests from this address; retry in {wait} s or slow down"),
            )
            .with_retry_after(wait)
        }
        GovernorError::UnableToExtractKey => ApiError::internal(
            "the client's address is unknown, so it cannot be rate-limited (serve with connect info)",
        ),
        GovernorError::Other { code, msg, .. } => ApiError::new(
            code,
            "rate_limited",
            msg.unwrap_or_else(|| "refused by the rate limiter".into()),
        ),
    }
    .into_response()
}

/// What the load-shedding stack's errors become: 503 `overloaded` when
/// the in-flight cap is reached, 500 for anything else.
pub(super) async fn overloaded(e: BoxError) -> ApiError {
    if e.is::<tower::load_shed::error::Overloaded>() {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "the node is handling as many requests as it takes; retry shortly",
        )
        .with_retry_after(1)
    } else {
        ApiError::internal(e)
    }
}
