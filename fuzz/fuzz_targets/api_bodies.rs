//! The request bodies the sequencer API (`POST /v1/tx`) and the relay
//! (`POST /relay/v1/builder/bids`) accept, through their own decoders:
//! the content type, JSON (`{"tx": base64}`, `{"signed_bid": hex}`) and
//! the bytes inside. The first input byte picks the endpoint and the
//! content type, the rest is the body. Whatever the body, the answer is a
//! value or a client error (4xx), never a panic or a 5xx.
#![no_main]

use http::{header::CONTENT_TYPE, HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use weft_core::{SignedBid, SignedTransaction};

const CONTENT_TYPES: [Option<&str>; 4] = [
    Some("application/octet-stream"),
    Some("application/json"),
    Some("application/json; charset=utf-8"),
    None,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let mut headers = HeaderMap::new();
    if let Some(ct) = CONTENT_TYPES[usize::from(selector & 3)] {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    if selector & 4 == 0 {
        match weft_sequencer::api::decode_submission(&headers, body) {
            Ok(tx) => {
                if let Ok(decoded) = SignedTransaction::decode(&tx) {
                    assert_eq!(decoded.encode(), tx);
                }
            }
            Err(e) => assert!(e.status().is_client_error(), "{e:?}"),
        }
    } else {
        match weft_relay::api::decode_submission(&headers, body) {
            Ok(bid) => {
                if let Ok(decoded) = SignedBid::decode(&bid) {
                    assert_eq!(decoded.encode(), bid);
                }
            }
            Err(e) => assert!(e.status().is_client_error(), "{e:?}"),
        }
    }
});
