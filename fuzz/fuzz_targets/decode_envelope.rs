//! Envelopes (many transactions in one CometBFT transaction, decoded by
//! every node's CheckTx). Each input is tried bare and behind the magic,
//! so the fuzzer spends its time in the borsh body; whatever decodes
//! re-encodes to the same bytes, and its inner transactions go through the
//! transaction decoder too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_core::{envelope::ENVELOPE_MAGIC, Envelope, SignedTransaction};

fuzz_target!(|data: &[u8]| {
    for candidate in [data.to_vec(), [&ENVELOPE_MAGIC[..], data].concat()] {
        if let Ok(envelope) = Envelope::decode(&candidate) {
            assert_eq!(envelope.encode(), candidate);
            assert_eq!(
                Envelope::encoded_len(envelope.txs.iter().map(Vec::len)),
                candidate.len()
            );
            for tx in &envelope.txs {
                if let Ok(decoded) = SignedTransaction::decode(tx) {
                    assert_eq!(&decoded.encode(), tx);
                }
            }
        }
    }
});
