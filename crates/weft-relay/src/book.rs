//! The bids the relay holds, per target height: one live bid per builder
//! (a later bid replaces an earlier one; amount 0 or a signed cancel
//! removes it), the hashes already seen (replays), the winners (computed
//! once per change), and, once a height is committed, only a summary of
//! its auction (the bundles themselves are dropped).

use std::{
    collections::{BTreeMap, HashSet},
    sync::Arc,
};

use serde::Serialize;
use utoipa::ToSchema;
use weft_core::{Address, Hash, RollupId, SignedBid};

use crate::auction::{self, Candidate};

/// A bid the relay accepted.
#[derive(Debug, Clone)]
pub struct LiveBid {
    /// The bid as signed.
    pub signed: SignedBid,
    /// Its wire bytes (what validators receive).
    pub encoded: Vec<u8>,
    /// Its hash.
    pub hash: Hash,
    /// Arrival order at this relay.
    pub arrival: u64,
    /// The relay's clock at arrival, ms since the Unix epoch.
    pub received_ms: u64,
    /// The rollups it covers, bytewise ordered.
    pub rollups: Vec<RollupId>,
    /// Its rollup data bytes.
    pub data_bytes: u64,
}

impl LiveBid {
    /// Wraps an accepted bid.
    pub fn new(signed: SignedBid, encoded: Vec<u8>, arrival: u64, received_ms: u64) -> Self {
        let hash = weft_core::sha256(&encoded);
        Self::with_hash(signed, encoded, hash, arrival, received_ms)
    }

    /// Like [`LiveBid::new`] with the hash of `encoded` already computed.
    pub fn with_hash(
        signed: SignedBid,
        encoded: Vec<u8>,
        hash: weft_core::Hash,
        arrival: u64,
        received_ms: u64,
    ) -> Self {
        LiveBid {
            rollups: signed.bid.rollups().into_iter().collect(),
            data_bytes: signed.bid.data_bytes(),
            signed,
            encoded,
            hash,
            arrival,
            received_ms,
        }
    }

    fn candidate(&self) -> Candidate<'_> {
        Candidate {
            amount: self.signed.bid.amount,
            arrival: self.arrival,
            rollups: &self.rollups,
            data_bytes: self.data_bytes,
        }
    }
}

/// The best bid on one rollup, without its contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TopBid {
    /// The rollup.
    #[schema(value_type = String)]
    pub rollup_id: RollupId,
    /// The amount, decimal.
    pub amount: String,
    /// The builder's address.
    #[schema(value_type = String)]
    pub builder: Address,
    /// The whole bid's hash.
    #[schema(value_type = String)]
    pub bid_hash: Hash,
    /// `H(borsh(Bundle))` of this rollup's bundle.
    #[schema(value_type = String)]
    pub bundle_hash: Hash,
}

/// One height's auction as the data API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AuctionView {
    /// The target height.
    pub height: u64,
    /// Whether the height is committed (bidding is over).
    pub committed: bool,
    /// Live bids held (at commit time, for a committed height).
    pub bids: usize,
    /// The top bid per rollup, by rollup id.
    pub rollups: Vec<TopBid>,
}

/// Why a bid or cancellation was not placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BookError {
    /// The same bytes (bid or cancel request) were seen before.
    #[error("already seen")]
    Replayed,
    /// The height holds as many bids as the relay takes.
    #[error("the book for this height is full")]
    Full,
    /// The height is no longer open for bids.
    #[error("height {0} is closed")]
    Closed(u64),
}

/// What placing a bid did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    /// The bid is live; it replaced the builder's earlier one, if any.
    Accepted {
        /// The hash of the bid it replaced.
        replaced: Option<Hash>,
    },
    /// The builder's bid was removed (amount 0 or a cancel request).
    Cancelled {
        /// The hash of the bid removed, if there was one.
        removed: Option<Hash>,
    },
}

#[derive(Default)]
struct HeightBook {
    bids: BTreeMap<Address, Arc<LiveBid>>,
    seen: HashSet<Hash>,
    version: u64,
    winners: Option<(u64, Arc<[Arc<LiveBid>]>)>,
    /// Set once the height is committed; the bids are dropped then.
    closed: Option<AuctionView>,
}

impl HeightBook {
    fn view(&self, height: u64) -> AuctionView {
        if let Some(closed) = &self.closed {
            return closed.clone();
        }
        let mut top: BTreeMap<RollupId, (&LiveBid, Hash)> = BTreeMap::new();
        for bid in self.bids.values() {
            for bundle in &bid.signed.bid.bundles {
                let better = top.get(&bundle.rollup_id).is_none_or(|(best, _)| {
                    auction::rank(&bid.candidate(), &best.candidate()).is_lt()
                });
                if better {
                    top.insert(bundle.rollup_id, (bid, bundle.hash()));
                }
            }
        }
        AuctionView {
            height,
            committed: false,
            bids: self.bids.len(),
            rollups: top
                .into_iter()
                .map(|(rollup_id, (bid, bundle_hash))| TopBid {
                    rollup_id,
                    amount: bid.signed.bid.amount.to_string(),
                    builder: bid.signed.bid.builder_address(),
                    bid_hash: bid.hash,
                    bundle_hash,
                })
                .collect(),
        }
    }
}

/// Every height's bids.
pub struct Book {
    heights: BTreeMap<u64, HeightBook>,
    max_bids_per_height: usize,
}

impl Book {
    /// An empty book holding at most `max_bids_per_height` live bids per
    /// height.
    pub fn new(max_bids_per_height: usize) -> Self {
        Book {
            heights: BTreeMap::new(),
            max_bids_per_height,
        }
    }

    /// Whether `hash` (a bid or a cancel request) was already seen at
    /// `height`.
    pub fn seen(&self, height: u64, hash: &Hash) -> bool {
        self.heights
            .get(&height)
            .is_some_and(|h| h.seen.contains(hash))
    }

    fn open(&mut self, height: u64) -> Result<&mut HeightBook, BookError> {
        let book = self.heights.entry(height).or_default();
        if book.closed.is_some() {
            return Err(BookError::Closed(height));
        }
        Ok(book)
    }

    /// Places a checked bid: amount 0 cancels the builder's bid at that
    /// height, anything else replaces it.
    pub fn place(&mut self, bid: Arc<LiveBid>) -> Result<Placed, BookError> {
        let height = bid.signed.bid.target_height;
        let limit = self.max_bids_per_height;
        let book = self.open(height)?;
        if book.seen.contains(&bid.hash) {
            return Err(BookError::Replayed);
        }
        let builder = bid.signed.bid.builder_address();
        if bid.signed.bid.amount == 0 {
            book.seen.insert(bid.hash);
            let removed = book.bids.remove(&builder).map(|b| b.hash);
            book.version += 1;
            return Ok(Placed::Cancelled { removed });
        }
        if !book.bids.contains_key(&builder) && book.bids.len() >= limit {
            return Err(BookError::Full);
        }
        book.seen.insert(bid.hash);
        let replaced = book.bids.insert(builder, bid).map(|b| b.hash);
        book.version += 1;
        Ok(Placed::Accepted { replaced })
    }

    /// A signed cancel request (hash `request`) removes the builder's bid
    /// at `height` if the relay received it before `before_ms`, so a
    /// replayed old request cannot cancel a newer bid.
    pub fn cancel(
        &mut self,
        height: u64,
        builder: &Address,
        before_ms: u64,
        request: Hash,
    ) -> Result<Placed, BookError> {
        let book = self.open(height)?;
        if !book.seen.insert(request) {
            return Err(BookError::Replayed);
        }
        let removed = match book.bids.get(builder) {
            Some(bid) if bid.received_ms <= before_ms => book.bids.remove(builder).map(|b| b.hash),
            _ => None,
        };
        if removed.is_some() {
            book.version += 1;
        }
        Ok(Placed::Cancelled { removed })
    }

    /// The winners at `height` under `byte_cap`, in rank order (computed
    /// once per change of the height's bids).
    pub fn winners(&mut self, height: u64, byte_cap: u64) -> Arc<[Arc<LiveBid>]> {
        let Some(book) = self.heights.get_mut(&height) else {
            return Arc::from(Vec::new());
        };
        if let Some((version, winners)) = &book.winners {
            if *version == book.version {
                return winners.clone();
            }
        }
        let bids: Vec<&Arc<LiveBid>> = book.bids.values().collect();
        let candidates: Vec<Candidate<'_>> = bids.iter().map(|b| b.candidate()).collect();
        let winners: Arc<[Arc<LiveBid>]> = auction::select_winners(&candidates, byte_cap)
            .into_iter()
            .map(|i| bids[i].clone())
            .collect();
        book.winners = Some((book.version, winners.clone()));
        winners
    }

    /// The chain committed `head`: heights up to it close (their bids are
    /// dropped, a summary stays), and summaries at or below `head -
    /// retention` are forgotten.
    pub fn advance(&mut self, head: u64, retention: u64) {
        for (height, book) in self.heights.range_mut(..=head) {
            if book.closed.is_none() {
                let mut view = book.view(*height);
                view.committed = true;
                book.closed = Some(view);
                book.bids.clear();
                book.seen.clear();
                book.winners = None;
            }
        }
        let keep_from = head.saturating_sub(retention).saturating_add(1);
        self.heights = self.heights.split_off(&keep_from);
    }

    /// The auction at `height`, if the relay knows it.
    pub fn auction(&self, height: u64) -> Option<AuctionView> {
        self.heights.get(&height).map(|b| b.view(height))
    }
}

#[cfg(test)]
mod tests {
    use weft_core::{Bid, Bundle, SigningKey};

    use super::*;

    fn bid(
        builder: &str,
        height: u64,
        rollups: &[&str],
        amount: u128,
        arrival: u64,
    ) -> Arc<LiveBid> {
        let key = SigningKey::from_seed(builder);
        let signed = Bid {
            chain_id: "c".into(),
            target_height: height,
            parent_hash: Hash::default(),
            bundles: rollups
                .iter()
                .map(|r| Bundle {
                    rollup_id: RollupId::from_name(r),
                    payloads: vec![vec![1, 2, 3]],
                })
                .collect(),
            amount,
            builder: key.public_key(),
        }
        .sign(&key);
        let encoded = signed.encode();
        Arc::new(LiveBid::new(signed, encoded, arrival, arrival))
    }

    #[test]
    fn a_later_bid_replaces_and_amount_zero_cancels() {
        let mut book = Book::new(10);
        let first = bid("a", 5, &["x"], 10, 1);
        assert_eq!(
            book.place(first.clone()),
            Ok(Placed::Accepted { replaced: None })
        );
        assert_eq!(book.place(first.clone()), Err(BookError::Replayed));
        let second = bid("a", 5, &["x"], 7, 2);
        assert_eq!(
            book.place(second.clone()),
            Ok(Placed::Accepted {
                replaced: Some(first.hash)
            })
        );
        assert_eq!(book.winners(5, 100)[0].hash, second.hash);
        assert_eq!(
            book.place(bid("a", 5, &["x"], 0, 3)),
            Ok(Placed::Cancelled {
                removed: Some(second.hash)
            })
        );
        assert!(book.winners(5, 100).is_empty());
    }

    #[test]
    fn signed_cancels_only_remove_earlier_bids_and_cannot_be_replayed() {
        let mut book = Book::new(10);
        let a = SigningKey::from_seed("a").address();
        book.place(bid("a", 5, &["x"], 10, 100)).unwrap();
        // A request from before the bid arrived removes nothing.
        assert_eq!(
            book.cancel(5, &a, 50, Hash([1; 32])),
            Ok(Placed::Cancelled { removed: None })
        );
        assert_eq!(book.winners(5, 100).len(), 1);
        assert!(matches!(
            book.cancel(5, &a, 150, Hash([2; 32])),
            Ok(Placed::Cancelled { removed: Some(_) })
        ));
        assert_eq!(
            book.cancel(5, &a, 150, Hash([2; 32])),
            Err(BookError::Replayed)
        );
        assert!(book.winners(5, 100).is_empty());
    }

    #[test]
    fn winners_top_bids_closing_and_retention() {
        let mut book = Book::new(2);
        book.place(bid("a", 5, &["x"], 10, 1)).unwrap();
        book.place(bid("b", 5, &["x", "y"], 30, 2)).unwrap();
        assert_eq!(book.place(bid("c", 5, &["y"], 20, 3)), Err(BookError::Full));
        let winners = book.winners(5, 100);
        assert_eq!(winners.len(), 1);
        assert_eq!(winners[0].signed.bid.amount, 30);
        let view = book.auction(5).unwrap();
        assert_eq!(view.bids, 2);
        assert_eq!(view.rollups.len(), 2);
        assert!(view.rollups.iter().all(|t| t.amount == "30"));
        book.advance(5, 3);
        let closed = book.auction(5).unwrap();
        assert!(closed.committed);
        assert_eq!(closed.rollups, view.rollups);
        assert!(matches!(
            book.place(bid("d", 5, &["z"], 1, 4)),
            Err(BookError::Closed(5))
        ));
        assert!(
            book.winners(5, 100).is_empty(),
            "bids are dropped at commit"
        );
        book.advance(8, 3);
        assert!(book.auction(5).is_none(), "past the retention window");
    }
}
