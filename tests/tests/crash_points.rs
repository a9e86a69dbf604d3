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
//!
//! A full data disk: node3's sequencer keeps its store on a small tmpfs
//! (mounted by the test: it needs root, and is skipped, saying so,
//! without). The disk is filled while the node runs: the sequencer stops
//! with a fatal line naming the full disk (exit status 1, no panic), the
//! other three go on; the space is freed, the node restarted, and it
//! catches up; then the checker.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{bail, ensure, Context, Result};
use weft_e2e::{
    eventually,
    history::{caught_up, conclude, height_of, Load, Witnesses},
    TestNetwork,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_points_come_back_through_the_handshake() -> Result<()> {
    let mut t = TestNetwork::start(4, 4).await?;
    let result = run(&mut t).await;
    t.finish(result).await
}

async fn run(t: &mut TestNetwork) -> Result<()> {
    let witnesses = Witnesses::start(t).await?;
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
    conclude(t, load, &witnesses, &report, 20).await
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

/// A tmpfs mounted for a test; unmounted (lazily, so a process still
/// holding a file cannot keep it) and its directory removed when dropped,
/// whatever the test's outcome.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `bytes` on `path` (created); fails without root.
    fn mount(path: &Path, bytes: u64) -> Result<Tmpfs> {
        std::fs::create_dir_all(path)?;
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(path)
            .status()
            .context("running mount")?;
        ensure!(
            status.success(),
            "mount -t tmpfs {}: {status}",
            path.display()
        );
        Ok(Tmpfs {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Size of node3's data disk.
const DISK_BYTES: u64 = 32 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_data_disk_stops_the_node_clearly_and_it_recovers() -> Result<()> {
    let mut disk: Option<Result<Tmpfs>> = None;
    let t = TestNetwork::start_with(4, 4, |cfg| {
        // Before the network exists: the sequencer creates its store on
        // the small disk at its first start.
        disk = Some(Tmpfs::mount(&cfg.home.join("node3/app"), DISK_BYTES));
    })
    .await?;
    let disk = match disk {
        Some(Ok(disk)) => disk,
        Some(Err(e)) => {
            // Mounting needs root (the test machines run as root).
            eprintln!("SKIPPED: cannot mount a tmpfs here: {e:#}");
            return t.finish(Ok(())).await;
        }
        None => bail!("the config hook did not run"),
    };
    let result = full_disk(&t, &disk).await;
    let finished = t.finish(result).await;
    drop(disk);
    finished
}

async fn full_disk(t: &TestNetwork, disk: &Tmpfs) -> Result<()> {
    const NODE: usize = 3;
    let witnesses = Witnesses::start(t).await?;
    let load = Load::start(t);
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Fill the disk while the node runs.
    load.mark(&[NODE], false);
    let filler = disk.path.join("filler");
    let filled = fill(&filler)?;
    let full_at = height_of(t, NODE).await.context("node3 answers")?;
    let began = std::time::Instant::now();
    let exited = eventually(Duration::from_secs(120), "node3 to stop", || async {
        Ok(t.net.check_running(NODE).err())
    })
    .await?;
    let stopped_after = began.elapsed();
    let log = std::fs::read_to_string(t.net.node(NODE)?.sequencer_log())?;
    let fatal = log
        .lines()
        .find(|l| l.starts_with("weft-sequencer: fatal:"))
        .with_context(|| format!("node3 stopped without a fatal line: {exited}"))?;
    ensure!(
        fatal.contains("the disk holding the store") && fatal.contains("is full"),
        "node3's last word does not name the full disk: {fatal}"
    );
    ensure!(
        !log.contains("panicked"),
        "node3 panicked on the full disk:\n{log}"
    );
    ensure!(
        exited.to_string().contains("exit status: 1"),
        "node3 did not exit cleanly with status 1: {exited}"
    );
    let stopped_at = t.net.height(0).await?;

    // The three go on without it (a round node3 was due to propose costs
    // them CometBFT's 3 s timeout_propose first).
    tokio::time::sleep(Duration::from_secs(8)).await;
    let later = t.net.height(0).await?;
    ensure!(
        later >= stopped_at + 2,
        "the other three stalled: {stopped_at} -> {later}"
    );

    // Space back, restart: the node catches up.
    std::fs::remove_file(&filler)?;
    t.net.kill_node(NODE)?;
    t.net.start_node(NODE).await?;
    let took = caught_up(t, NODE).await?;
    load.mark(&[NODE], true);

    let report = format!(
        "data disk of node3 ({} MiB tmpfs) filled at height {full_at} ({} MiB of filler): stopped {stopped_after:.1?} later with `{fatal}`; the others went {stopped_at} -> {later} in 8 s; space freed, restarted, caught up {took:.1?}",
        DISK_BYTES >> 20,
        filled >> 20
    );
    conclude(t, load, &witnesses, &[report], 20).await
}

/// Writes `path` until the disk is full; the bytes written.
fn fill(path: &Path) -> Result<u64> {
    use std::io::Write;
    let mut file = std::fs::File::create(path)?;
    let chunk = vec![0x5au8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
            Err(e) => return Err(e.into()),
        }
    }
    // What a partial last write left is on the disk too.
    let _ = file.sync_all();
    Ok(written)
}
