//! The smallest useful rollup on Weft, using the conductor as a library: its
//! "state" is a hash chain over every transaction it is given, and its head
//! is persisted so a restart never executes a height twice.
//!
//! Run against a local devnet (`scripts/devnet` in another terminal):
//!
//! ```sh
//! cargo run -p weft-conductor --example hash_chain_rollup -- .devnet/devnet.json my-rollup
//! ```

use std::{path::PathBuf, sync::Mutex};

use async_trait::async_trait;
use weft_conductor::{
    config::Args, BatchSource, ChainVerifier, Conductor, CursorFile, Executor, ExecutorError,
    RollupBlock,
};

/// A rollup whose state is `H(previous state ‖ tx)` over all its txs.
struct HashChain {
    file: PathBuf,
    state: Mutex<(u64, [u8; 32])>,
}

#[async_trait]
impl Executor for HashChain {
    async fn head(&self) -> Result<Option<u64>, ExecutorError> {
        let (height, _) = *self
            .state
            .lock()
            .map_err(|e| ExecutorError(e.to_string()))?;
        Ok((height > 0).then_some(height))
    }

    async fn execute(&self, block: &RollupBlock) -> Result<String, ExecutorError> {
        let mut state = self
            .state
            .lock()
            .map_err(|e| ExecutorError(e.to_string()))?;
        let mut root = state.1;
        for tx in &block.txs {
            root = weft_core::hash::sha256_parts(&[&root, tx]).0;
        }
        *state = (block.height, root);
        // Persist before acknowledging: this is what makes head() truthful.
        std::fs::write(
            &self.file,
            format!("{} {}", block.height, hex::encode(root)),
        )
        .map_err(|e| ExecutorError(e.to_string()))?;
        println!(
            "height {:>6}  txs {:>3}  state {}",
            block.height,
            block.txs.len(),
            hex::encode(root)
        );
        Ok(hex::encode(root))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut argv = std::env::args().skip(1);
    let (Some(devnet), Some(rollup)) = (argv.next(), argv.next()) else {
        anyhow::bail!("usage: hash_chain_rollup <devnet.json> <rollup name>");
    };
    let config = Args {
        devnet: Some(devnet.into()),
        rollup: Some(rollup.clone()),
        cursor: Some(format!("{rollup}.example.cursor").into()),
        ..Args::default()
    }
    .resolve()?;
    let file = PathBuf::from(format!("{rollup}.example.state"));
    let saved = std::fs::read_to_string(&file).unwrap_or_default();
    let mut parts = saved.split_whitespace();
    let height = parts.next().and_then(|h| h.parse().ok()).unwrap_or(0);
    let mut root = [0u8; 32];
    if let Some(h) = parts.next() {
        hex::decode_to_slice(h, &mut root).ok();
    }
    let rollup = HashChain {
        file,
        state: Mutex::new((height, root)),
    };
    let conductor = Conductor::new(
        config.rollup_id,
        BatchSource::new(config.endpoints, config.rollup_id)
            .with_max_response_bytes(config.max_response_bytes),
        rollup,
        CursorFile::open(&config.cursor)?,
        ChainVerifier::new(config.anchor, config.trusting_period),
        config.from_height,
    )
    .with_options(config.options);
    conductor
        .run(async {
            tokio::signal::ctrl_c().await.ok();
        })
        .await?;
    Ok(())
}
