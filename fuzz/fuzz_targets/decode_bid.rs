//! The relay's two decoders of builder and validator bytes: signed bids
//! (a bid body, or a block's bid item) and signed relay requests (the
//! `weft-relay-request` header). Both are tried on every input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_core::bid::{SignedBid, SignedRelayRequest};

fuzz_target!(|data: &[u8]| {
    if let Ok(bid) = SignedBid::decode(data) {
        // One encoding per value: a bid id (its hash) cannot be malleated.
        assert_eq!(bid.encode(), data);
        assert_eq!(bid.hash(), weft_core::sha256(data));
        let _ = bid.check_structure();
        let _ = bid.verify_signature();
        let _ = bid.bid.rollups();
        let _ = bid.bid.data_bytes();
    }
    if let Ok(request) = SignedRelayRequest::decode(data) {
        assert_eq!(request.encode(), data);
        let _ = request.verify_signature();
    }
});
