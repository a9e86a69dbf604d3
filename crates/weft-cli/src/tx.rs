//! `weft tx`: building, signing and submitting transactions, and optionally
//! waiting until they are committed.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use weft_core::{Action, Address, Amount, RollupId, Transaction};
use weft_testnet::DEV_KEY_WARNING;

use crate::{
    args::{KeyArgs, NodeArgs},
    output::Output,
};

/// How long `--wait` waits for a transaction to be committed.
const WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Transactions.
#[derive(Debug, Subcommand)]
pub enum TxCommand {
    /// Sends native asset to another account.
    Transfer {
        /// Recipient address (weft1…).
        #[arg(long, value_name = "ADDR")]
        to: Address,
        /// Amount in the smallest unit.
        #[arg(long, value_name = "N")]
        amount: Amount,
        #[command(flatten)]
        options: TxOptions,
    },
    /// Submits opaque data for a rollup.
    SubmitRollupData {
        /// Rollup name (hashed to its id) or 64-hex rollup id.
        #[arg(long, value_name = "NAME")]
        rollup: String,
        /// The data: hex (optionally 0x-prefixed), or @FILE for a file's bytes.
        #[arg(long, value_name = "HEX|@FILE")]
        data: String,
        #[command(flatten)]
        options: TxOptions,
    },
}

/// Options every transaction command takes.
#[derive(Debug, Args)]
pub struct TxOptions {
    #[command(flatten)]
    node: NodeArgs,
    #[command(flatten)]
    key: KeyArgs,
    /// Nonce to sign with, instead of asking the node for the account's
    /// next one (its pending nonce: the nonce after the account's
    /// transactions still waiting in the node's mempool).
    #[arg(long, value_name = "N")]
    nonce: Option<u64>,
    /// Wait (up to 30s) until the transaction is in a block and print its height.
    #[arg(long)]
    wait: bool,
}

/// Runs a `weft tx` command; `Ok(false)` when the chain refused the tx.
pub async fn run(command: TxCommand, out: Output) -> Result<bool> {
    let (action, options) = match command {
        TxCommand::Transfer {
            to,
            amount,
            options,
        } => (Action::Transfer { to, amount }, options),
        TxCommand::SubmitRollupData {
            rollup,
            data,
            options,
        } => (
            Action::SubmitRollupData {
                rollup_id: RollupId::from_name_or_hex(&rollup),
                data: read_data(&data)?,
            },
            options,
        ),
    };
    let key = options.key.signing_key(&options.node)?;
    if options.key.uses_devnet_dev_key(&options.node) {
        out.note(format!(
            "signing with the devnet's developer key {}. {DEV_KEY_WARNING}",
            key.address()
        ));
    }
    let client = options.node.client()?;
    let chain_id = client.chain_id().await?;
    let nonce = match options.nonce {
        Some(nonce) => nonce,
        // The pending nonce, not the committed one: a second `weft tx` while
        // the first still waits in the mempool must follow it, not reuse
        // its nonce (CheckTx would refuse it as a duplicate).
        None => client
            .account(&key.address())
            .await
            .with_context(|| format!("looking up the nonce of {}", key.address()))?
            .next_nonce(),
    };
    let signed = Transaction {
        chain_id: chain_id.clone(),
        nonce,
        actions: vec![action],
    }
    .sign(&key);
    let hash = signed.hash().to_hex().to_uppercase();
    let check = client.broadcast_tx_sync(&signed.encode()).await?;
    let mut report = json!({
        "hash": hash,
        "chain_id": chain_id,
        "signer": key.address(),
        "nonce": nonce,
        "check_tx": { "code": check.code, "log": check.log },
    });
    if check.code != 0 {
        out.emit(&report, || {
            format!(
                "tx hash:  {hash}\nCheckTx:  code {} (rejected)\nlog:      {}",
                check.code, check.log
            )
        });
        return Ok(false);
    }
    if !options.wait {
        out.emit(&report, || {
            format!(
                "tx hash:  {hash}\nCheckTx:  code 0 (accepted into the mempool)\nnonce:    {nonce}"
            )
        });
        return Ok(true);
    }
    out.note(format!(
        "tx {hash} accepted; waiting for it to be committed..."
    ));
    let deadline = Instant::now() + WAIT_TIMEOUT;
    let committed = loop {
        if let Some(committed) = client.tx(&check.hash).await? {
            break committed;
        }
        if Instant::now() >= deadline {
            bail!("tx {hash} was not committed within {WAIT_TIMEOUT:?} (it may still be in the mempool)");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    report["committed"] = json!({
        "height": committed.height,
        "code": committed.code,
        "log": committed.log,
    });
    out.emit(&report, || {
        let mut text = format!(
            "tx hash:  {hash}\nCheckTx:  code 0\nheight:   {}\nresult:   code {}",
            committed.height, committed.code
        );
        if committed.code != 0 {
            text.push_str(&format!(" (failed)\nlog:      {}", committed.log));
        }
        text
    });
    Ok(committed.code == 0)
}

/// Reads `--data`: `@FILE` for a file's bytes, else hex.
fn read_data(data: &str) -> Result<Vec<u8>> {
    let bytes = match data.strip_prefix('@') {
        Some(path) => std::fs::read(path).with_context(|| format!("reading --data file {path}"))?,
        None => hex::decode(data.strip_prefix("0x").unwrap_or(data))
            .context("--data must be hex (or @FILE to read a file)")?,
    };
    if bytes.is_empty() {
        bail!("--data is empty; rollup data must be at least one byte");
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_hex_or_a_file() {
        assert_eq!(read_data("0x0aff").unwrap(), vec![0x0a, 0xff]);
        assert_eq!(read_data("0aff").unwrap(), vec![0x0a, 0xff]);
        assert!(read_data("xyz").is_err());
        assert!(read_data("").is_err());
        let path = std::env::temp_dir().join(format!("weft-cli-data-{}", std::process::id()));
        std::fs::write(&path, b"hello").unwrap();
        assert_eq!(
            read_data(&format!("@{}", path.display())).unwrap(),
            b"hello"
        );
        std::fs::remove_file(&path).unwrap();
    }
}
