//! The `weft` command against `weft devnet up`, as a user runs them: a
//! rollup transaction lands in a block, `weft query batch` returns it
//! verified, and SIGTERM stops the devnet and every process it started.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{ensure, Context, Result};
use serde_json::Value;
use weft_testnet::{cli_binary, PortPlan};

fn weft(args: &[&str]) -> Result<(bool, Value, String)> {
    let out = Command::new(cli_binary()?)
        .args(args)
        .output()
        .context("running weft")?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let json = serde_json::from_str(&stdout)
        .with_context(|| format!("weft {args:?} printed no JSON: {stdout} {stderr}"))?;
    Ok((out.status.success(), json, stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devnet_tx_and_verified_batch_query_through_the_cli() -> Result<()> {
    let home = tempfile::Builder::new().prefix("weft-cli-e2e-").tempdir()?;
    let devnet_home = home.path().join("devnet");
    let plan = PortPlan::random(2)?;
    let base = plan.node(0).p2p.to_string();
    let log = std::fs::File::create(home.path().join("devnet.log"))?;
    let mut devnet = Command::new(cli_binary()?)
        .args([
            "devnet",
            "up",
            "--validators",
            "2",
            "--timeout-commit-ms",
            "300",
            "--base-port",
            &base,
            "--home",
        ])
        .arg(&devnet_home)
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .spawn()?;

    let result = async {
        let devnet_json = devnet_home.join("devnet.json");
        let start = Instant::now();
        while !devnet_json.exists() {
            ensure!(devnet.try_wait()?.is_none(), "weft devnet up exited early");
            ensure!(
                start.elapsed() < Duration::from_secs(120),
                "devnet.json never appeared"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let file: Value = serde_json::from_slice(&std::fs::read(&devnet_json)?)?;
        ensure!(
            file["nodes"].as_array().map(Vec::len) == Some(2),
            "devnet.json lists both nodes: {file}"
        );
        ensure!(
            file["chain_id"].is_string() && file["dev_key"].is_string(),
            "devnet.json shape: {file}"
        );
        ensure!(
            file["dev_key_warning"]
                .as_str()
                .is_some_and(|w| w.starts_with("DEV ONLY")),
            "devnet.json labels the dev key dev-only: {file}"
        );
        let devnet_arg = devnet_json.to_str().context("utf-8 path")?;

        let (ok, tx, err) = weft(&[
            "--json",
            "tx",
            "submit-rollup-data",
            "--devnet",
            devnet_arg,
            "--rollup",
            "cli-rollup",
            "--data",
            "68656c6c6f2077656674",
            "--wait",
        ])?;
        ensure!(ok, "submit failed: {tx} {err}");
        let height = tx["committed"]["height"]
            .as_u64()
            .context("committed height")?;
        ensure!(tx["committed"]["code"] == 0, "tx failed in block: {tx}");

        // Two transactions in a row from one key, the first still pending
        // when the second is signed: the CLI takes the account's pending
        // nonce, as a wallet would, so neither is refused as a duplicate.
        let mut nonces = Vec::new();
        for data in ["6f6e65", "74776f"] {
            let (ok, sent, err) = weft(&[
                "--json",
                "tx",
                "submit-rollup-data",
                "--devnet",
                devnet_arg,
                "--rollup",
                "cli-rollup",
                "--data",
                data,
            ])?;
            ensure!(ok, "back-to-back submission refused: {sent} {err}");
            nonces.push(sent["nonce"].as_u64().context("nonce in report")?);
        }
        ensure!(
            nonces[1] == nonces[0] + 1,
            "the second transaction signs the next pending nonce: {nonces:?}"
        );

        let (ok, batch, err) = weft(&[
            "--json",
            "query",
            "batch",
            "--devnet",
            devnet_arg,
            "--rollup",
            "cli-rollup",
            "--height",
            &height.to_string(),
        ])?;
        ensure!(ok, "query batch failed: {batch} {err}");
        ensure!(batch["verified"] == true, "batch not verified: {batch}");
        ensure!(
            batch["items"][0]["text"] == "hello weft",
            "batch content: {batch}"
        );

        // The documented one-liner: a conductor on the devnet, NDJSON on stdout.
        let mut conductor = Command::new(weft_testnet::workspace_binary(
            "weft-conductor",
            "WEFT_CONDUCTOR_BIN",
        )?)
        .args([
            "--devnet",
            devnet_arg,
            "--rollup",
            "cli-rollup",
            "--deliver",
            "stdout",
        ])
        .arg("--cursor")
        .arg(home.path().join("cli.cursor"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
        let stdout = conductor.stdout.take().context("conductor stdout")?;
        let lines = std::thread::spawn(move || {
            use std::io::BufRead;
            let mut seen = Vec::new();
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
                let h = v["height"].as_u64().unwrap_or(0);
                seen.push(v);
                if h >= height {
                    break;
                }
            }
            seen
        });
        let start = Instant::now();
        while !lines.is_finished() && start.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        conductor.kill()?;
        conductor.wait()?;
        let seen = lines
            .join()
            .map_err(|_| anyhow::anyhow!("reader panicked"))?;
        let heights: Vec<u64> = seen.iter().filter_map(|v| v["height"].as_u64()).collect();
        ensure!(
            heights == (1..=height).collect::<Vec<_>>(),
            "conductor delivered heights {heights:?}"
        );
        let last = seen.last().context("no delivery")?;
        ensure!(
            last["txs"][0] == "aGVsbG8gd2VmdA==",
            "conductor delivered {last}"
        );

        // An unaffordable transfer from a fresh key is refused with its code.
        let key = home.path().join("poor.json");
        let (ok, _, err) = weft(&[
            "--json",
            "keys",
            "new",
            "--out",
            key.to_str().context("utf-8")?,
        ])?;
        ensure!(ok, "keys new: {err}");
        let (ok, refused, _) = weft(&[
            "--json",
            "tx",
            "transfer",
            "--devnet",
            devnet_arg,
            "--key",
            key.to_str().context("utf-8")?,
            "--to",
            "weft1rsxyjrcm255ds9euthjx6yc3vrjt9sxr7pc3ns",
            "--amount",
            "5",
        ])?;
        ensure!(!ok, "an unfunded transfer must fail");
        ensure!(
            refused["check_tx"]["code"] == weft_core::TxCode::InsufficientFunds.value(),
            "refusal code: {refused}"
        );
        Ok(())
    }
    .await;

    // SIGTERM: the devnet stops every child and exits 0.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(devnet.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )?;
    let start = Instant::now();
    let status = loop {
        if let Some(s) = devnet.try_wait()? {
            break s;
        }
        if start.elapsed() > Duration::from_secs(40) {
            devnet.kill()?;
            anyhow::bail!("weft devnet up did not stop within 40s of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    if result.is_err() || !status.success() {
        let kept = home.keep();
        eprintln!("devnet home kept: {}", kept.display());
    }
    result?;
    ensure!(status.success(), "devnet exited with {status}");
    ensure!(
        plan.first_busy_port().is_none(),
        "a devnet process outlived SIGTERM"
    );
    Ok(())
}
