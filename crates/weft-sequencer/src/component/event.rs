//! Events as execution records them: typed values, formatted into ABCI
//! event strings only when FinalizeBlock answers, so building and checking
//! proposals formats nothing.

use weft_core::{Address, Amount, RollupId};

/// An attribute's value, kept typed until it is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventValue {
    /// An account (bech32m).
    Address(Address),
    /// A count or nonce (decimal).
    U64(u64),
    /// An amount (decimal).
    Amount(Amount),
    /// A rollup id (hex).
    Rollup(RollupId),
    /// Already text.
    Text(String),
}

impl std::fmt::Display for EventValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EventValue::Address(a) => write!(f, "{a}"),
            EventValue::U64(v) => write!(f, "{v}"),
            EventValue::Amount(v) => write!(f, "{v}"),
            EventValue::Rollup(r) => f.write_str(&r.to_hex()),
            EventValue::Text(t) => f.write_str(t),
        }
    }
}

/// One attribute of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventAttribute {
    /// Attribute key.
    pub key: &'static str,
    /// Its value.
    pub value: EventValue,
    /// Whether CometBFT's tx indexer indexes it (`tx_search` can find it).
    /// Every indexed attribute is a write to CometBFT's index for every
    /// transaction, so only what users look transactions up by is indexed.
    pub index: bool,
}

/// A typed ABCI event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The event type, e.g. `weft.transfer`.
    pub kind: &'static str,
    /// Its attributes in order.
    pub attributes: Vec<EventAttribute>,
}

impl Event {
    /// An event with no attributes yet.
    pub fn new(kind: &'static str) -> Self {
        Event {
            kind,
            attributes: Vec::new(),
        }
    }

    /// Adds an attribute CometBFT indexes.
    pub fn indexed(mut self, key: &'static str, value: EventValue) -> Self {
        self.attributes.push(EventAttribute {
            key,
            value,
            index: true,
        });
        self
    }

    /// Adds an attribute CometBFT stores but does not index.
    pub fn stored(mut self, key: &'static str, value: EventValue) -> Self {
        self.attributes.push(EventAttribute {
            key,
            value,
            index: false,
        });
        self
    }

    /// The value under `key`, if any.
    pub fn get(&self, key: &str) -> Option<&EventValue> {
        self.attributes
            .iter()
            .find(|a| a.key == key)
            .map(|a| &a.value)
    }

    /// The value under `key`, mutably.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut EventValue> {
        self.attributes
            .iter_mut()
            .find(|a| a.key == key)
            .map(|a| &mut a.value)
    }

    /// The ABCI event.
    pub fn to_abci(&self) -> tendermint::abci::Event {
        tendermint::abci::Event::new(
            self.kind,
            self.attributes
                .iter()
                .map(|a| (a.key, a.value.to_string(), a.index)),
        )
    }
}
