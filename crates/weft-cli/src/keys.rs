//! `weft keys`: creating key files and showing what is in them.

use std::{io::Write, path::PathBuf};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use serde_json::json;
use weft_core::{KeyFile, SigningKey};

use crate::{args::load_key, output::Output};

/// Key management.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generates a new ed25519 key and writes it as a key file.
    New {
        /// Where to write the key file.
        #[arg(long, value_name = "FILE", default_value = "weft-key.json")]
        out: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Prints a key file's address and public key.
    Show {
        /// The key file.
        #[arg(long, env = "WEFT_KEY", value_name = "FILE")]
        key: PathBuf,
    },
}

/// Runs a `weft keys` command.
pub fn run(command: KeysCommand, out: Output) -> Result<()> {
    match command {
        KeysCommand::New { out: path, force } => {
            if path.exists() && !force {
                bail!(
                    "{} already exists; pass --force to overwrite it (its key would be lost)",
                    path.display()
                );
            }
            let key = SigningKey::generate();
            let text = serde_json::to_string_pretty(&KeyFile::new(&key))?;
            write_private(&path, text.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            out.emit(
                &json!({ "address": key.address(), "public_key": key.public_key().to_hex(), "file": path }),
                || format!("address: {}\nwrote {}", key.address(), path.display()),
            );
        }
        KeysCommand::Show { key } => {
            let signing = load_key(&key)?;
            out.emit(
                &json!({ "address": signing.address(), "public_key": signing.public_key().to_hex() }),
                || {
                    format!(
                        "address:    {}\npublic key: {}",
                        signing.address(),
                        signing.public_key().to_hex()
                    )
                },
            );
        }
    }
    Ok(())
}

/// Writes a file only its owner can read.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.write_all(b"\n")
}
