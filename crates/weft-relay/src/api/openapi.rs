//! The OpenAPI document, generated from the handlers' annotations by
//! utoipa and served at `/relay/v1/openapi.json`.

use axum::Json;
use utoipa::OpenApi;

use super::{builder, data, validator};

/// Every route the router serves, as (method, path): the OpenAPI test
/// checks each is documented.
pub const ROUTES: [(&str, &str); 9] = [
    ("get", "/health"),
    ("get", "/metrics"),
    ("get", "/relay/v1/openapi.json"),
    ("post", "/relay/v1/builder/bids"),
    ("delete", "/relay/v1/builder/bids/{height}"),
    ("get", "/relay/v1/validator/winners"),
    ("get", "/relay/v1/data/bids_received"),
    ("get", "/relay/v1/data/bids_delivered"),
    ("get", "/relay/v1/auctions/{height}"),
];

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Weft builder-bid relay",
        description = "Builders submit signed bids for the top of rollup batches at the next height; active validators fetch the winners with signed requests. Wire formats: docs/protocol.md section 12. Guide: docs/builders.md."
    ),
    paths(
        super::health,
        super::metrics_text,
        serve,
        builder::submit,
        builder::cancel,
        validator::winners,
        data::bids_received,
        data::bids_delivered,
        data::auction,
    ),
    components(schemas(
        crate::error::RelayError,
        super::Health,
        builder::SubmitBid,
        builder::Submitted,
        builder::Cancelled,
        validator::Winners,
        validator::WinningBid,
        data::TracePage,
        crate::traces::BidTrace,
        crate::book::AuctionView,
        crate::book::TopBid,
    )),
    tags(
        (name = "builder", description = "Submitting and cancelling bids"),
        (name = "validator", description = "Fetching the winners of the next height"),
        (name = "data", description = "Public record of bids and auctions"),
        (name = "service", description = "Health, metrics, this document"),
    )
)]
struct RelayApi;

/// The relay's OpenAPI document.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    RelayApi::openapi()
}

#[utoipa::path(get, path = "/relay/v1/openapi.json", tag = "service",
    responses((status = 200, description = "This OpenAPI document", content_type = "application/json")))]
pub(crate) async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi_document())
}
