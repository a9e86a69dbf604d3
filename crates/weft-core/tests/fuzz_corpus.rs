//! Replays the committed cargo-fuzz corpora (`fuzz/corpus/<target>/`) of
//! the weft-core decoders through the same checks as the fuzz targets, on
//! the stable toolchain: every input the fuzzers kept (and every crash
//! input, once fixed) is a regression test without nightly. The corpora
//! of `api_bodies` are replayed by the sequencer's and the relay's API
//! tests.

use std::path::PathBuf;

use weft_core::{
    bid::{SignedBid, SignedRelayRequest},
    inclusion::{InclusionList, ListedCommit, INCLUSION_LIST_MAGIC, LISTED_COMMIT_MAGIC},
    BlockCommitments, Hash, RollupBatchProof, SignedTransaction,
};

/// The inputs of one target's corpus; at least one, so a moved or empty
/// corpus fails here instead of passing on nothing.
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "{} is empty", dir.display());
    inputs
}

#[test]
fn decode_tx_corpus() {
    let mut decoded = 0;
    for (path, data) in corpus("decode_tx") {
        if let Ok(tx) = SignedTransaction::decode(&data) {
            assert_eq!(tx.encode(), data, "{}", path.display());
            let _ = tx.check_structure();
            let _ = tx.verify_signature();
            let _ = tx.transaction.rollup_data_bytes();
            decoded += 1;
        }
    }
    // The seeds include the valid transactions of docs/test-vectors.json.
    assert!(decoded > 0);
}

#[test]
fn decode_commitments_corpus() {
    for (path, data) in corpus("decode_commitments") {
        if let Ok(c) = BlockCommitments::decode(&data) {
            assert_eq!(c.encode(), data, "{}", path.display());
        }
    }
}

#[test]
fn batch_proof_corpus() {
    for (_, data) in corpus("batch_proof") {
        if let Ok(proof) = serde_json::from_slice::<RollupBatchProof>(&data) {
            let id = proof.rollup_id;
            let _ = proof.verify(&Hash::default(), &id);
        }
    }
}

#[test]
fn decode_bid_corpus() {
    let (mut bids, mut requests) = (0, 0);
    for (path, data) in corpus("decode_bid") {
        if let Ok(bid) = SignedBid::decode(&data) {
            assert_eq!(bid.encode(), data, "{}", path.display());
            let _ = bid.check_structure();
            let _ = bid.verify_signature();
            bids += 1;
        }
        if let Ok(request) = SignedRelayRequest::decode(&data) {
            assert_eq!(request.encode(), data, "{}", path.display());
            let _ = request.verify_signature();
            requests += 1;
        }
    }
    assert!(bids > 0 && requests > 0, "{bids} bids, {requests} requests");
}

#[test]
fn decode_inclusion_corpus() {
    for (path, data) in corpus("decode_inclusion") {
        for candidate in [
            data.clone(),
            [&INCLUSION_LIST_MAGIC[..], &data].concat(),
            [&LISTED_COMMIT_MAGIC[..], &data].concat(),
        ] {
            if let Ok(list) = InclusionList::decode(&candidate, usize::MAX) {
                assert_eq!(list.encode(), candidate, "{}", path.display());
                assert_eq!(
                    InclusionList::encoded_len(list.txs.iter().map(Vec::len)),
                    candidate.len()
                );
            }
            if let Ok(commit) = ListedCommit::decode(&candidate) {
                assert_eq!(commit.encode(), candidate, "{}", path.display());
            }
        }
    }
}

#[test]
fn decode_envelope_corpus() {
    let mut decoded = 0;
    for (path, data) in corpus("decode_envelope") {
        for candidate in [
            data.clone(),
            [&weft_core::envelope::ENVELOPE_MAGIC[..], &data].concat(),
        ] {
            if let Ok(e) = weft_core::Envelope::decode(&candidate) {
                assert_eq!(e.encode(), candidate, "{}", path.display());
                for tx in &e.txs {
                    let _ = SignedTransaction::decode(tx);
                }
                decoded += 1;
            }
        }
    }
    // The seeds include the envelope of docs/test-vectors.json.
    assert!(decoded > 0);
}
