//! Chain-wide facts kept in authenticated state: the chain id, the chain
//! parameters (fees, limits) and the last executed height.

use weft_core::ChainParams;

use crate::storage::{decode_stored, encode_stored, StateRead, StateWrite, StorageError};

/// Storage keys owned by this component.
pub mod keys {
    /// The chain id set at genesis.
    pub const CHAIN_ID: &str = "chain/id";
    /// Borsh `ChainParams`.
    pub const PARAMS: &str = "chain/params";
    /// The height of the last executed block (u64 borsh). Written every
    /// block, so every JMT version has a change and its own root.
    pub const HEIGHT: &str = "chain/height";
}

/// Typed reads of chain facts.
pub trait ChainRead: StateRead {
    /// The chain parameters; genesis always writes them.
    fn params(&self) -> Result<ChainParams, StorageError> {
        match self.get_raw(keys::PARAMS)? {
            Some(b) => decode_stored(keys::PARAMS, &b),
            None => Err(StorageError::Corrupt(format!("{} missing", keys::PARAMS))),
        }
    }

    /// The chain id set at genesis.
    fn chain_id(&self) -> Result<Option<String>, StorageError> {
        self.get_raw(keys::CHAIN_ID)?
            .map(|b| decode_stored(keys::CHAIN_ID, &b))
            .transpose()
    }
}

impl<S: StateRead + ?Sized> ChainRead for S {}

/// Typed writes of chain facts.
pub trait ChainWrite: StateWrite {
    /// Sets the chain parameters.
    fn put_params(&mut self, params: &ChainParams) {
        self.put_raw(keys::PARAMS.into(), encode_stored(params));
    }

    /// Sets the chain id (genesis only).
    fn put_chain_id(&mut self, chain_id: &str) {
        self.put_raw(keys::CHAIN_ID.into(), encode_stored(&chain_id.to_string()));
    }

    /// Records the executed height.
    fn put_height(&mut self, height: u64) {
        self.put_raw(keys::HEIGHT.into(), encode_stored(&height));
    }
}

impl<S: StateWrite + ?Sized> ChainWrite for S {}
