//! Chain-wide facts kept in authenticated state: the chain id and the
//! height of the last executed block.

use crate::{
    component::{BlockContext, Component, Genesis},
    storage::{decode_stored, encode_stored, StateRead, StateWrite, StorageError},
};

/// Storage keys owned by this component.
pub mod keys {
    /// The chain id set at genesis.
    pub const CHAIN_ID: &str = "chain/id";
    /// The height of the last executed block (u64 borsh). Written every
    /// block, so every JMT version has a change and its own root.
    pub const HEIGHT: &str = "chain/height";
}

/// The chain component.
pub struct Chain;

impl Component for Chain {
    fn name(&self) -> &'static str {
        "chain"
    }

    fn init_chain(
        &self,
        state: &mut dyn StateWrite,
        genesis: &Genesis<'_>,
    ) -> Result<(), StorageError> {
        state.put_chain_id(genesis.chain_id);
        state.put_height(0);
        Ok(())
    }

    fn begin_block(
        &self,
        state: &mut dyn StateWrite,
        ctx: &BlockContext,
    ) -> Result<(), StorageError> {
        state.put_height(ctx.height);
        Ok(())
    }
}

/// Typed reads of chain facts.
pub trait ChainRead: StateRead {
    /// The chain id set at genesis.
    fn chain_id(&self) -> Result<Option<String>, StorageError> {
        self.get_raw(keys::CHAIN_ID)?
            .map(|b| decode_stored(keys::CHAIN_ID, &b))
            .transpose()
    }

    /// The height of the last executed block.
    fn height(&self) -> Result<u64, StorageError> {
        self.get_raw(keys::HEIGHT)?
            .map(|b| decode_stored(keys::HEIGHT, &b))
            .transpose()
            .map(Option::unwrap_or_default)
    }
}

impl<S: StateRead + ?Sized> ChainRead for S {}

/// Typed writes of chain facts.
pub trait ChainWrite: StateWrite {
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
