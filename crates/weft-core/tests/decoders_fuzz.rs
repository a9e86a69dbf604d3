//! Property-based fuzzing of every decoder of outside bytes: arbitrary and
//! mutated inputs must yield a value or an error, never a panic, and
//! whatever decodes must re-encode to the same bytes (one encoding per
//! value, so hashes and signatures cannot be malleated).

use proptest::prelude::*;
use weft_core::{
    bid::{Bid, Bundle, SignedBid, SignedRelayRequest},
    block::BlockCommitments,
    Action, RollupBatchProof, RollupId, SignedTransaction, SigningKey, Transaction,
};

fn valid_tx(nonce: u64, data: Vec<u8>, amount: u128) -> Vec<u8> {
    Transaction {
        chain_id: "fuzz".into(),
        nonce,
        actions: vec![
            Action::SubmitRollupData {
                rollup_id: RollupId::from_name("r"),
                data,
            },
            Action::Transfer {
                to: SigningKey::from_seed("to").address(),
                amount,
            },
        ],
    }
    .sign(&SigningKey::from_seed("fuzzer"))
    .encode()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(tx) = SignedTransaction::decode(&bytes) {
            prop_assert_eq!(tx.encode(), bytes.clone());
            let _ = tx.verify_signature();
            let _ = tx.check_structure();
        }
        if let Ok(c) = BlockCommitments::decode(&bytes) {
            prop_assert_eq!(c.encode(), bytes.clone());
        }
        let _ = serde_json::from_slice::<RollupBatchProof>(&bytes);
        // Inclusion lists and listed commits, bare and behind their magic
        // (so the fuzzer reaches the borsh body).
        for candidate in [bytes.clone(), [&weft_core::envelope::ENVELOPE_MAGIC[..], &bytes].concat()] {
            if let Ok(e) = weft_core::Envelope::decode(&candidate) {
                prop_assert_eq!(e.encode(), candidate.clone());
                prop_assert_eq!(
                    weft_core::Envelope::encoded_len(e.txs.iter().map(Vec::len)),
                    candidate.len()
                );
            }
        }
        for candidate in [
            bytes.clone(),
            [&weft_core::inclusion::INCLUSION_LIST_MAGIC[..], &bytes].concat(),
            [&weft_core::inclusion::LISTED_COMMIT_MAGIC[..], &bytes].concat(),
        ] {
            if let Ok(l) = weft_core::inclusion::InclusionList::decode(&candidate, 1 << 20) {
                prop_assert_eq!(l.encode(), candidate.clone());
            }
            if let Ok(c) = weft_core::inclusion::ListedCommit::decode(&candidate) {
                prop_assert_eq!(c.encode(), candidate.clone());
            }
        }
    }

    #[test]
    fn mutated_transactions_never_panic_and_never_verify(
        nonce in any::<u64>(),
        data in proptest::collection::vec(any::<u8>(), 1..64),
        amount in 1u128..u128::MAX,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let good = valid_tx(nonce, data, amount);
        let mut bad = good.clone();
        for (i, x) in &flips {
            let i = i.index(bad.len());
            bad[i] ^= x;
        }
        // Two flips of one byte by the same value cancel out: that is the
        // untouched transaction, which verifies, as it should.
        prop_assume!(bad != good, "the flips cancelled out");
        if let Ok(tx) = SignedTransaction::decode(&bad) {
            prop_assert_eq!(tx.encode(), bad.clone());
            prop_assert!(tx.verify_signature().is_err(), "a mutated tx must not verify");
        }
        let truncated = &good[..cut.index(good.len())];
        prop_assert!(SignedTransaction::decode(truncated).is_err());
    }

    #[test]
    fn commitments_decoder_rejects_everything_but_exact_items(
        bytes in proptest::collection::vec(any::<u8>(), 0..100),
    ) {
        let mut item = b"WFTC\x01".to_vec();
        item.extend_from_slice(&bytes);
        let ok = BlockCommitments::decode(&item).is_ok();
        prop_assert_eq!(ok, bytes.len() == 64);
    }
}

fn valid_bid(height: u64, payload: Vec<u8>, amount: u128) -> Vec<u8> {
    let key = SigningKey::from_seed("fuzz-builder");
    Bid {
        chain_id: "fuzz".into(),
        target_height: height,
        parent_hash: weft_core::sha256(b"parent"),
        bundles: vec![Bundle {
            rollup_id: RollupId::from_name("r"),
            payloads: vec![payload],
        }],
        amount,
        builder: key.public_key(),
    }
    .sign(&key)
    .encode()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_the_bid_decoders(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        if let Ok(bid) = SignedBid::decode(&bytes) {
            prop_assert_eq!(bid.encode(), bytes.clone());
            let _ = bid.verify_signature();
            let _ = bid.check_structure();
        }
        if let Ok(r) = SignedRelayRequest::decode(&bytes) {
            prop_assert_eq!(r.encode(), bytes.clone());
            let _ = r.verify_signature();
        }
    }

    #[test]
    fn mutated_bids_never_panic_and_never_verify(
        height in 1u64..,
        payload in proptest::collection::vec(any::<u8>(), 1..64),
        amount in any::<u128>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let good = valid_bid(height, payload, amount);
        let mut bad = good.clone();
        for (i, x) in &flips {
            let i = i.index(bad.len());
            bad[i] ^= x;
        }
        if let Ok(bid) = SignedBid::decode(&bad) {
            prop_assert_eq!(bid.encode(), bad.clone());
            // Any change to the signed bytes breaks the signature (or the
            // flips cancelled out).
            if bad != good {
                prop_assert!(bid.verify_signature().is_err());
            }
        }
        let cut = cut.index(good.len());
        prop_assert!(SignedBid::decode(&good[..cut]).is_err());
    }
}
