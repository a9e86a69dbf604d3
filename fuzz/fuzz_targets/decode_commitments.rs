//! Item 0 of a block: the commitments decoder.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_core::BlockCommitments;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = BlockCommitments::decode(data) {
        assert_eq!(c.encode(), data);
    }
});
