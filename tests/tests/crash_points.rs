//! Crash points inside the app (issue 14): four real validators under the
//! recorded load of `weft_e2e::history`; one node's sequencer is started
//! with `--unsafe-test-crash-at <point> --unsafe-test-crash-height <h>`
//! and aborts (SIGABRT, no clean-up) there:
//!
//! - `after-finalize-block`: FinalizeBlock answered, Commit called, nothing
//!   of height h written;
//! - `mid-commit`: height h staged in the store's write transaction, which
//!   never commits.
//!
//! CometBFT exits once its app is gone. Both are restarted without the
//! flag; the ABCI handshake must find the app at h - 1 (nothing of h
//! half-written), replay h, and the node catches up with the same block
//! and app hash as the others at every height (the checker).

use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use weft_e2e::{
    eventually,
    history::{caught_up, check, height_of, summarize, Load},
    TestNetwork,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_points_come_back_through_the_handshake() -> Result<()> {
    let mut t = TestNetwork::start(4, 4).await?;
    let result = run(&mut t).await;
    t.finish(result).await
}

async fn run(t: &mut TestNetwork) -> Result<()> {
    let load = Load::start(t);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut report = Vec::new();
    for (node, point, name) in [
        (3, "after-finalize-block", "AfterFinalizeBlock"),
        (2, "mid-commit", "MidCommit"),
    ] {
        load.mark(&[node], false);
        report.push(crash_and_recover(t, node, point, name).await?);
        load.mark(&[node], true);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let history = load.stop().await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    check(t, &history).await?;
    for line in &report {
        eprintln!("fault: {line}");
    }
    summarize(&history, 20)
}

/// Restarts `node` with the crash flag for a height a few blocks ahead,
/// waits for the abort, restarts it without the flag and checks the
/// handshake found the app one height short.
async fn crash_and_recover(
    t: &mut TestNetwork,
    node: usize,
    point: &str,
    logged: &str,
) -> Result<String> {
    let at = height_of(t, 0).await.context("node0 answers")? + 6;
    t.net.set_node_sequencer_args(
        node,
        vec![
            "--unsafe-test-crash-at".into(),
            point.into(),
            "--unsafe-test-crash-height".into(),
            at.to_string(),
        ],
    )?;
    t.net.restart_node(node).await?;
    let exited = eventually(Duration::from_secs(60), "the crash point", || async {
        Ok(t.net.check_running(node).err())
    })
    .await?;
    let log = std::fs::read_to_string(t.net.node(node)?.sequencer_log())?;
    let line = format!("unsafe-test-crash: aborting at {logged} of height {at}");
    ensure!(
        log.contains(&line),
        "node{node}'s sequencer did not stop at {point} of {at}: {exited}"
    );
    // Let the node's CometBFT notice its app is gone and exit too.
    eventually(Duration::from_secs(30), "CometBFT to exit", || async {
        Ok(t.net.pids(node)?.cometbft.is_none().then_some(()))
    })
    .await
    .ok();

    t.net.set_node_sequencer_args(node, Vec::new())?;
    let cometbft_log = t.net.node(node)?.cometbft_log();
    let before = std::fs::read_to_string(&cometbft_log)?.len();
    t.net.start_node(node).await?;
    let took = caught_up(t, node).await?;
    let after = std::fs::read_to_string(&cometbft_log)?;
    let (app, store, state) = replay_heights(&after[before..])?;
    ensure!(
        app == at - 1,
        "after a crash at {point} of {at} the app reported height {app} (expected {})",
        at - 1
    );
    Ok(format!(
        "crash at {point} of height {at} on node{node} ({}): handshake saw app {app}, block store {store}, state {state}; caught up {took:.1?} after restart",
        exited_how(&exited.to_string())
    ))
}

/// CometBFT's `ABCI Replay Blocks appHeight=… storeHeight=… stateHeight=…`
/// line, logged by the handshake.
fn replay_heights(log: &str) -> Result<(u64, u64, u64)> {
    let Some(line) = log.lines().find(|l| l.contains("ABCI Replay Blocks")) else {
        bail!("no handshake in CometBFT's log since the restart");
    };
    let field = |name: &str| -> Result<u64> {
        let start = line
            .find(&format!("{name}="))
            .with_context(|| format!("{name} in {line}"))?
            + name.len()
            + 1;
        let digits: String = line[start..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().with_context(|| format!("{name} in {line}"))
    };
    Ok((
        field("appHeight")?,
        field("storeHeight")?,
        field("stateHeight")?,
    ))
}

/// "exited with …" from a process-exited error, for the report.
fn exited_how(error: &str) -> String {
    error
        .split_once("exited")
        .map(|(_, rest)| format!("exited{}", rest.split(';').next().unwrap_or("")))
        .unwrap_or_else(|| "exited".into())
}
