//! Inclusion lists (a validator's vote extension) and listed commits (a
//! block's second item). Each input is tried bare and behind each magic,
//! so the fuzzer spends its time in the borsh bodies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_core::inclusion::{
    InclusionList, ListedCommit, INCLUSION_LIST_MAGIC, LISTED_COMMIT_MAGIC,
};

fuzz_target!(|data: &[u8]| {
    for candidate in [
        data.to_vec(),
        [&INCLUSION_LIST_MAGIC[..], data].concat(),
        [&LISTED_COMMIT_MAGIC[..], data].concat(),
    ] {
        if let Ok(list) = InclusionList::decode(&candidate, usize::MAX) {
            assert_eq!(list.encode(), candidate);
            assert_eq!(
                InclusionList::encoded_len(list.txs.iter().map(Vec::len)),
                candidate.len()
            );
        }
        if let Ok(commit) = ListedCommit::decode(&candidate) {
            assert!(ListedCommit::is_item(&candidate));
            assert_eq!(commit.encode(), candidate);
        }
    }
});
