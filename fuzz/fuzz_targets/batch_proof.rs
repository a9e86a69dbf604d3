//! A batch proof as served over HTTP (JSON): parsing and verifying any of
//! them must never panic, whatever the indices, totals and aunt counts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_core::{Hash, RollupBatchProof};

fuzz_target!(|data: &[u8]| {
    if let Ok(proof) = serde_json::from_slice::<RollupBatchProof>(data) {
        let id = proof.rollup_id;
        let _ = proof.verify(&Hash::default(), &id);
    }
});
