//! A synthetic, really signed chain for tests and benchmarks of
//! verification: N ed25519 validators sign every height's commit over a
//! header whose `data_hash` commits to Weft's block layout, exactly as
//! CometBFT and the sequencer would. Nothing here is used by the conductor
//! itself (feature `test-util`).

use std::collections::BTreeMap;

use ed25519_dalek::{Signer, SigningKey};
use tendermint::{
    account,
    block::{self, header::Version, parts, signed_header::SignedHeader, Commit, CommitSig},
    chain, validator, vote, AppHash, Hash as TmHash, PublicKey, Signature, Time,
};
use weft_core::{
    block::{batch_roots, prove_batch},
    merkle, sha256, BlockCommitments, Hash, RollupBatchProof, RollupId,
};

use crate::source::SequencedBatch;

/// Seconds between synthetic blocks.
const BLOCK_SECONDS: u64 = 1;
/// Time of height 1 (2023-11-14T22:13:20Z).
const GENESIS_UNIX: u64 = 1_700_000_000;

/// One synthetic height.
#[derive(Debug, Clone)]
pub struct TestBlock {
    /// The signed header.
    pub signed_header: SignedHeader,
    /// Rollup data in the block.
    pub batches: BTreeMap<RollupId, Vec<Vec<u8>>>,
    /// Hashes of the block's txs (the commitments item first).
    pub tx_hashes: Vec<Hash>,
    /// The commitments item.
    pub commitments: BlockCommitments,
}

/// A chain signed by deterministic test validators.
#[derive(Debug, Clone)]
pub struct TestChain {
    chain_id: chain::Id,
    keys: Vec<SigningKey>,
    validators: validator::Set,
    blocks: Vec<TestBlock>,
}

impl TestChain {
    /// An empty chain with `validators` equal-power validators.
    pub fn new(chain_id: &str, validators: usize) -> Self {
        let keys: Vec<SigningKey> = (0..validators)
            .map(|i| {
                let mut seed = [0u8; 32];
                seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
                SigningKey::from_bytes(&seed)
            })
            .collect();
        let infos = keys
            .iter()
            .map(|k| {
                let pk = PublicKey::from_raw_ed25519(k.verifying_key().as_bytes())
                    .expect("a dalek key is a valid ed25519 key");
                validator::Info::new(pk, vote::Power::from(10u32))
            })
            .collect();
        TestChain {
            chain_id: chain_id.parse().expect("test chain ids are valid"),
            keys,
            validators: validator::Set::without_proposer(infos),
            blocks: Vec::new(),
        }
    }

    /// The chain id.
    pub fn chain_id(&self) -> &chain::Id {
        &self.chain_id
    }

    /// The (constant) validator set.
    pub fn validators(&self) -> &validator::Set {
        &self.validators
    }

    /// The last height (0 when empty).
    pub fn height(&self) -> u64 {
        self.blocks.len() as u64
    }

    /// A time after every block, for `now` in verification.
    pub fn now(&self) -> Time {
        unix(GENESIS_UNIX + (self.height() + 1) * BLOCK_SECONDS)
    }

    /// Appends a height carrying `batches`, signed by every validator.
    pub fn push(&mut self, batches: BTreeMap<RollupId, Vec<Vec<u8>>>) -> u64 {
        let height = self.height() + 1;
        let commitments = BlockCommitments::compute(&batches);
        let mut tx_hashes = vec![sha256(&commitments.encode())];
        // The rollup txs themselves, as the block would carry them.
        for items in batches.values() {
            tx_hashes.extend(items.iter().map(|i| sha256(i)));
        }
        let leaves: Vec<Hash> = tx_hashes.iter().map(|h| merkle::leaf_hash(&h.0)).collect();
        let data_hash = merkle::root_from_leaf_hashes(&leaves);
        let time = unix(GENESIS_UNIX + height * BLOCK_SECONDS);
        let last_block_id = self.blocks.last().map(|b| b.signed_header.commit.block_id);
        let header = block::Header {
            version: Version { block: 11, app: 0 },
            chain_id: self.chain_id.clone(),
            height: height_of(height),
            time,
            last_block_id,
            last_commit_hash: last_block_id.map(|_| TmHash::Sha256([1; 32])),
            data_hash: Some(TmHash::Sha256(data_hash.0)),
            validators_hash: self.validators.hash(),
            next_validators_hash: self.validators.hash(),
            consensus_hash: TmHash::Sha256([2; 32]),
            app_hash: AppHash::try_from(vec![3u8; 32]).expect("32 bytes"),
            last_results_hash: None,
            evidence_hash: None,
            proposer_address: self.validators.validators()[0].address,
        };
        let header_hash = header.hash();
        let block_id = block::Id {
            hash: header_hash,
            part_set_header: parts::Header::new(1, TmHash::Sha256([4; 32]))
                .expect("a valid part set header"),
        };
        let signatures = self
            .validators
            .validators()
            .iter()
            .enumerate()
            .map(|(index, info)| {
                let key = self
                    .key_for(&info.address)
                    .expect("every validator has a key");
                let vote = vote::Vote {
                    vote_type: vote::Type::Precommit,
                    height: height_of(height),
                    round: block::Round::default(),
                    block_id: Some(block_id),
                    timestamp: Some(time),
                    validator_address: info.address,
                    validator_index: vote::ValidatorIndex::try_from(index as u32)
                        .expect("few validators"),
                    signature: None,
                    extension: Vec::new(),
                    extension_signature: None,
                };
                let sign_bytes = vote.into_signable_vec(self.chain_id.clone());
                let signature = key.sign(&sign_bytes).to_bytes();
                CommitSig::BlockIdFlagCommit {
                    validator_address: info.address,
                    timestamp: time,
                    signature: Signature::new(signature).expect("64 bytes"),
                }
            })
            .collect();
        let commit = Commit {
            height: height_of(height),
            round: block::Round::default(),
            block_id,
            signatures,
        };
        let signed_header =
            SignedHeader::new(header, commit).expect("header and commit heights match");
        self.blocks.push(TestBlock {
            signed_header,
            batches,
            tx_hashes,
            commitments,
        });
        height
    }

    fn key_for(&self, address: &account::Id) -> Option<&SigningKey> {
        self.keys.iter().find(|k| {
            PublicKey::from_raw_ed25519(k.verifying_key().as_bytes())
                .map(|pk| account::Id::from(pk) == *address)
                .unwrap_or(false)
        })
    }

    /// The block at `height` (1-based).
    pub fn block(&self, height: u64) -> &TestBlock {
        &self.blocks[(height - 1) as usize]
    }

    /// `rollup_id`'s batch at `height` with its proofs.
    pub fn batch(&self, height: u64, rollup_id: RollupId) -> RollupBatchProof {
        let block = self.block(height);
        let items = block.batches.get(&rollup_id).cloned().unwrap_or_default();
        prove_batch(
            height,
            rollup_id,
            &block.tx_hashes,
            &batch_roots(&block.batches),
            items,
            block.commitments,
        )
        .expect("a block always has its commitments item")
    }

    /// What a sequencer endpoint would serve for `rollup_id` at `height`.
    pub fn sequenced(&self, height: u64, rollup_id: RollupId) -> SequencedBatch {
        SequencedBatch {
            height,
            signed_header: self.block(height).signed_header.clone(),
            batch: self.batch(height, rollup_id),
        }
    }
}

fn height_of(h: u64) -> block::Height {
    block::Height::try_from(h).expect("test heights fit")
}

fn unix(secs: u64) -> Time {
    Time::from_unix_timestamp(secs as i64, 0).expect("a valid time")
}
