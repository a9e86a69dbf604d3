//! Finding the `cometbft` and `weft-sequencer` executables: the one place
//! that knows the environment overrides and the default locations.

use std::path::{Path, PathBuf};

use crate::{Result, TestnetError};

/// Environment variable naming the CometBFT binary.
pub const COMETBFT_BIN_ENV: &str = "WEFT_COMETBFT_BIN";
/// Environment variable naming the `weft-sequencer` binary.
pub const SEQUENCER_BIN_ENV: &str = "WEFT_SEQUENCER_BIN";

/// The repository root this crate was built from.
pub fn repo_root() -> PathBuf {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    root.canonicalize().unwrap_or(root)
}

/// The CometBFT binary: `$WEFT_COMETBFT_BIN`, else `<repo>/.tools/bin/cometbft`
/// (where `scripts/install-cometbft` puts it).
pub fn cometbft_binary() -> Result<PathBuf> {
    const HINT: &str =
        "run scripts/install-cometbft (it installs CometBFT v0.38.25 into .tools/bin) \
                        or set WEFT_COMETBFT_BIN to a cometbft v0.38.25 binary";
    if let Some(path) = std::env::var_os(COMETBFT_BIN_ENV).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if is_file(&path) {
            Ok(path)
        } else {
            Err(TestnetError::BinaryNotFound {
                what: "cometbft",
                searched: format!("{COMETBFT_BIN_ENV}={}", path.display()),
                hint: HINT,
            })
        };
    }
    let path = repo_root().join(".tools/bin/cometbft");
    if is_file(&path) {
        Ok(path)
    } else {
        Err(TestnetError::BinaryNotFound {
            what: "cometbft",
            searched: path.display().to_string(),
            hint: HINT,
        })
    }
}

/// The sequencer binary: `$WEFT_SEQUENCER_BIN`, else as [`workspace_binary`] finds it.
pub fn sequencer_binary() -> Result<PathBuf> {
    workspace_binary("weft-sequencer", SEQUENCER_BIN_ENV)
}

/// The `weft` command: `$WEFT_CLI_BIN`, else as [`workspace_binary`] finds it.
pub fn cli_binary() -> Result<PathBuf> {
    workspace_binary("weft", "WEFT_CLI_BIN")
}

/// One of this workspace's binaries: the path in `env_var` if set; else
/// `name` next to the running executable or in its parent directory
/// (covers `target/debug/weft` and `target/debug/deps/<test>`); else the
/// newer of `<repo>/target/{debug,release}/<name>`.
pub fn workspace_binary(name: &'static str, env_var: &str) -> Result<PathBuf> {
    let hint = "run `cargo build --workspace --bins` (or set the binary's WEFT_*_BIN variable)";
    if let Some(path) = std::env::var_os(env_var).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if is_file(&path) {
            Ok(path)
        } else {
            Err(TestnetError::BinaryNotFound {
                what: name,
                searched: format!("{env_var}={}", path.display()),
                hint,
            })
        };
    }
    let mut searched = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        for candidate in [Some(dir.join(name)), dir.parent().map(|p| p.join(name))]
            .into_iter()
            .flatten()
        {
            if is_file(&candidate) {
                return Ok(candidate);
            }
            searched.push(candidate);
        }
    }
    let target = repo_root().join("target");
    let builds = [
        target.join("debug").join(name),
        target.join("release").join(name),
    ];
    let newest = builds
        .iter()
        .filter_map(|p| Some((std::fs::metadata(p).ok()?.modified().ok()?, p)))
        .filter(|(_, p)| is_file(p))
        .max_by_key(|(modified, _)| *modified)
        .map(|(_, p)| p.clone());
    if let Some(path) = newest {
        return Ok(path);
    }
    searched.extend(builds);
    Err(TestnetError::BinaryNotFound {
        what: name,
        searched: searched
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        hint,
    })
}

fn is_file(path: &Path) -> bool {
    path.is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_root_holds_the_workspace_manifest() {
        assert!(repo_root().join("Cargo.toml").is_file());
        assert!(repo_root().join("crates/weft-testnet").is_dir());
    }
}
