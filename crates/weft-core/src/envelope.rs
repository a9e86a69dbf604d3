//! Envelopes: one CometBFT transaction carrying many users' signed
//! transactions, so CometBFT's per-transaction mempool work (a CheckTx
//! round trip, cache and lock, gossip, recheck after every block) is paid
//! once per envelope instead of once per user transaction.
//!
//! An envelope only travels: a node's API packs admitted transactions
//! into one, CometBFT gossips it, and every node's CheckTx admits its
//! inner transactions one by one into the app's mempool. Blocks never
//! carry envelopes: a proposer takes the inner transactions from its
//! mempool as ordinary block transactions, so each keeps its own hash,
//! nonce, fee, position, result and inclusion-list entry.

use borsh::{BorshDeserialize, BorshSerialize};

use crate::{
    encoding::{decode_strict, encode, DecodeError},
    transaction::MAX_TX_BYTES,
};

/// Bytes that open an envelope. Read as a transaction, they would announce
/// a chain id of over a billion bytes, so no transaction starts like them.
pub const ENVELOPE_MAGIC: [u8; 4] = *b"WFTE";
/// The envelope layout this code writes and accepts.
pub const ENVELOPE_VERSION: u8 = 1;
/// Largest encoded envelope (it is one CometBFT transaction, under
/// CometBFT's default mempool `max_tx_bytes`).
pub const MAX_ENVELOPE_BYTES: usize = MAX_TX_BYTES;
/// Most transactions in one envelope.
pub const MAX_ENVELOPE_TXS: usize = 4096;
/// Bytes an envelope spends besides its transactions: magic, version and
/// the list's length.
pub const ENVELOPE_OVERHEAD: usize = 4 + 1 + 4;
/// Bytes each transaction adds besides its own: its length prefix.
pub const ENVELOPE_TX_OVERHEAD: usize = 4;

#[derive(BorshSerialize, BorshDeserialize)]
struct Body {
    version: u8,
    txs: Vec<Vec<u8>>,
}

/// Why bytes are not an envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Malformed, over a limit, or another version.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// No transactions at all.
    #[error("an envelope carries at least one transaction")]
    Empty,
    /// More than [`MAX_ENVELOPE_TXS`].
    #[error("an envelope carries at most {MAX_ENVELOPE_TXS} transactions; this one {0}")]
    TooManyTxs(usize),
    /// An empty inner transaction, or an envelope inside an envelope.
    #[error("transaction {index} of the envelope is {what}")]
    BadTx {
        /// Its position.
        index: usize,
        /// What is wrong with it.
        what: &'static str,
    },
}

/// Signed transactions (their wire bytes), in the order they were packed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Envelope {
    /// Each one `borsh(SignedTransaction)`, not checked here.
    pub txs: Vec<Vec<u8>>,
}

impl Envelope {
    /// Whether `bytes` claim to be an envelope (by their magic).
    pub fn is_envelope(bytes: &[u8]) -> bool {
        bytes.starts_with(&ENVELOPE_MAGIC)
    }

    /// The encoded size of an envelope holding transactions of `sizes`.
    pub fn encoded_len(sizes: impl IntoIterator<Item = usize>) -> usize {
        sizes
            .into_iter()
            .fold(ENVELOPE_OVERHEAD, |n, s| n + ENVELOPE_TX_OVERHEAD + s)
    }

    /// `ENVELOPE_MAGIC ‖ borsh { version, txs }`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::encoded_len(self.txs.iter().map(Vec::len)));
        out.extend_from_slice(&ENVELOPE_MAGIC);
        // Encoding a borrowed list without cloning it: the same bytes
        // `Body` derives.
        out.push(ENVELOPE_VERSION);
        out.extend_from_slice(&encode(&(self.txs.len() as u32)));
        for tx in &self.txs {
            out.extend_from_slice(&encode(&(tx.len() as u32)));
            out.extend_from_slice(tx);
        }
        out
    }

    /// Strictly decodes an envelope: magic, version, size, 1 to
    /// [`MAX_ENVELOPE_TXS`] non-empty transactions, none of them an
    /// envelope.
    pub fn decode(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(DecodeError::TooLarge {
                len: bytes.len(),
                limit: MAX_ENVELOPE_BYTES,
            }
            .into());
        }
        let body = bytes
            .strip_prefix(&ENVELOPE_MAGIC[..])
            .ok_or_else(|| DecodeError::Invalid("not an envelope (bad magic)".into()))?;
        let body: Body = decode_strict(body, MAX_ENVELOPE_BYTES)?;
        if body.version != ENVELOPE_VERSION {
            return Err(DecodeError::Invalid(format!(
                "envelope version {} unsupported",
                body.version
            ))
            .into());
        }
        match body.txs.len() {
            0 => return Err(EnvelopeError::Empty),
            n if n > MAX_ENVELOPE_TXS => return Err(EnvelopeError::TooManyTxs(n)),
            _ => {}
        }
        for (index, tx) in body.txs.iter().enumerate() {
            if tx.is_empty() {
                return Err(EnvelopeError::BadTx {
                    index,
                    what: "empty",
                });
            }
            if Self::is_envelope(tx) {
                return Err(EnvelopeError::BadTx {
                    index,
                    what: "an envelope (envelopes do not nest)",
                });
            }
        }
        Ok(Envelope { txs: body.txs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_is_the_documented_layout_and_round_trips() {
        let e = Envelope {
            txs: vec![vec![1, 2, 3], vec![4]],
        };
        let bytes = e.encode();
        assert_eq!(
            bytes,
            [
                b"WFTE".as_slice(),
                &[1],
                &2u32.to_le_bytes(),
                &3u32.to_le_bytes(),
                &[1, 2, 3],
                &1u32.to_le_bytes(),
                &[4]
            ]
            .concat()
        );
        assert_eq!(bytes.len(), Envelope::encoded_len([3, 1]));
        assert_eq!(
            bytes,
            [
                b"WFTE".as_slice(),
                &encode(&Body {
                    version: ENVELOPE_VERSION,
                    txs: e.txs.clone()
                })
            ]
            .concat(),
            "the hand-rolled encoder writes what borsh derives"
        );
        assert_eq!(Envelope::decode(&bytes), Ok(e));
    }

    #[test]
    fn bad_envelopes_are_refused_with_their_reason() {
        let ok = Envelope { txs: vec![vec![1]] }.encode();
        let mut v2 = ok.clone();
        v2[4] = 2;
        assert!(matches!(
            Envelope::decode(&v2),
            Err(EnvelopeError::Decode(DecodeError::Invalid(_)))
        ));
        let mut trailing = ok.clone();
        trailing.push(0);
        assert!(matches!(
            Envelope::decode(&trailing),
            Err(EnvelopeError::Decode(DecodeError::Malformed(_)))
        ));
        assert!(Envelope::decode(&ok[..ok.len() - 1]).is_err());
        assert!(Envelope::decode(b"WFTC....").is_err());
        assert_eq!(
            Envelope::decode(&Envelope::default().encode()),
            Err(EnvelopeError::Empty)
        );
        assert_eq!(
            Envelope::decode(&Envelope { txs: vec![vec![]] }.encode()),
            Err(EnvelopeError::BadTx {
                index: 0,
                what: "empty"
            })
        );
        let nested = Envelope {
            txs: vec![vec![9], ok.clone()],
        };
        assert!(matches!(
            Envelope::decode(&nested.encode()),
            Err(EnvelopeError::BadTx { index: 1, .. })
        ));
        let many = Envelope {
            txs: vec![vec![1]; MAX_ENVELOPE_TXS + 1],
        };
        assert_eq!(
            Envelope::decode(&many.encode()),
            Err(EnvelopeError::TooManyTxs(MAX_ENVELOPE_TXS + 1))
        );
        let huge = Envelope {
            txs: vec![vec![1; MAX_ENVELOPE_BYTES]],
        };
        assert!(matches!(
            Envelope::decode(&huge.encode()),
            Err(EnvelopeError::Decode(DecodeError::TooLarge { .. }))
        ));
        // A count announcing more transactions than there are bytes.
        let lying = [b"WFTE".as_slice(), &[1], &u32::MAX.to_le_bytes()].concat();
        assert!(Envelope::decode(&lying).is_err());
    }

    #[test]
    fn no_transaction_is_mistaken_for_an_envelope() {
        let tx = crate::Transaction {
            chain_id: "c".into(),
            nonce: 0,
            actions: vec![],
        }
        .sign(&crate::SigningKey::from_seed("a"))
        .encode();
        assert!(!Envelope::is_envelope(&tx));
        // Read as a transaction, the magic is a chain id length over the
        // limit.
        assert!(u32::from_le_bytes(ENVELOPE_MAGIC) as usize > crate::transaction::MAX_CHAIN_ID_LEN);
    }
}
