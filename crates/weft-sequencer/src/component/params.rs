//! Parameters per component, each under the component's own key with a
//! version byte in front of its borsh encoding: a component adds a
//! parameter by bumping its own version (and migrating its own value),
//! never by migrating one struct shared by the whole chain.

use borsh::{BorshDeserialize, BorshSerialize};

use crate::{
    error::StorageError,
    storage::{StateRead, StateWrite},
};

/// A component's parameters as kept in state.
pub trait ComponentParams: BorshSerialize + BorshDeserialize {
    /// The state key (under the component's prefix).
    const KEY: &'static str;
    /// The layout version; stored values of another version are refused
    /// rather than misread.
    const VERSION: u8;
}

/// Typed reads of component parameters.
pub trait ParamsRead: StateRead {
    /// The parameters of one component; genesis always writes them.
    fn component_params<P: ComponentParams>(&self) -> Result<P, StorageError> {
        self.optional_component_params()?
            .ok_or_else(|| StorageError::Corrupt(format!("{} missing", P::KEY)))
    }

    /// The parameters of a component a chain may run without (genesis
    /// writes them only when it is switched on); `None` when absent.
    fn optional_component_params<P: ComponentParams>(&self) -> Result<Option<P>, StorageError> {
        let Some(bytes) = self.get_raw(P::KEY)? else {
            return Ok(None);
        };
        match bytes.split_first() {
            Some((&v, rest)) if v == P::VERSION => borsh::from_slice(rest)
                .map(Some)
                .map_err(|_| StorageError::Corrupt(P::KEY.to_string())),
            Some((&v, _)) => Err(StorageError::Corrupt(format!(
                "{}: parameters of version {v}, this build reads version {}",
                P::KEY,
                P::VERSION
            ))),
            None => Err(StorageError::Corrupt(P::KEY.to_string())),
        }
    }
}

impl<S: StateRead + ?Sized> ParamsRead for S {}

/// Typed writes of component parameters.
pub trait ParamsWrite: StateWrite {
    /// Stores a component's parameters with their version.
    fn put_component_params<P: ComponentParams>(&mut self, params: &P) {
        let mut bytes = vec![P::VERSION];
        bytes.extend(weft_core::encoding::encode(params));
        self.put_raw(P::KEY.to_string(), bytes);
    }
}

impl<S: StateWrite + ?Sized> ParamsWrite for S {}
