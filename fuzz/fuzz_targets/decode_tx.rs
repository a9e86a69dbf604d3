//! Signed transactions from the wire: decode, re-encode, check, verify.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_core::SignedTransaction;

fuzz_target!(|data: &[u8]| {
    if let Ok(tx) = SignedTransaction::decode(data) {
        // One encoding per value: what decodes re-encodes byte for byte.
        assert_eq!(tx.encode(), data);
        let _ = tx.check_structure();
        let _ = tx.verify_signature();
        let _ = tx.transaction.rollup_data_bytes();
    }
});
