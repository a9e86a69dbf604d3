//! The fault suite's short version (issue 14's first slice): four real
//! validators under a steady load that records every submission and its
//! CheckTx answer, through a sequence of process faults:
//!
//! 1. `kill -9` one validator, restart it;
//! 2. SIGSTOP one validator for a few seconds, SIGCONT it;
//! 3. `kill -9` two validators: the chain must stop (never fork), then
//!    resume once they are back;
//! 4. `kill -9` one sequencer alone (CometBFT exits by design), restart
//!    both: the ABCI handshake replays what the app missed.
//!
//! Two conductors of the load's rollup run throughout, each failing over
//! across the four nodes' APIs (in opposite orders), so every fault takes
//! an endpoint from one of them.
//!
//! After the faults the checker proves over the recorded history: every
//! accepted transaction is included exactly once or has a final status
//! with a reason; every node has the same block hash and app hash at every
//! height; the rollup's delivered sequence is identical at both conductors
//! (every height once, in order) and equal to the chain's, read from the
//! blocks themselves (the data of every transaction that executed); the
//! total supply is unchanged on every node. A transaction CheckTx accepted
//! lives only in that node's mempool until gossiped, so one accepted just
//! before its node is killed can be gone with it (CometBFT's
//! `broadcast_tx_sync` promises no more); the load (`weft_e2e::history`)
//! resends it, byte for byte, as a wallet would, and the checker then
//! finds it in the chain exactly once. Recovery times are printed.
//! `WEFT_FAULT_ROUNDS=N` repeats the sequence N times (the long version).

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use weft_e2e::{
    eventually,
    history::{caught_up, conclude, height_of, Load, Witnesses},
    TestNetwork,
};

struct Faults<'a> {
    t: &'a TestNetwork,
    load: &'a Load,
    report: Vec<String>,
}

impl Faults<'_> {
    fn mark(&self, nodes: &[usize], is_up: bool) {
        self.load.mark(nodes, is_up);
    }

    async fn kill_and_restart(&mut self, i: usize) -> Result<()> {
        self.mark(&[i], false);
        self.t.net.kill_node(i)?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        self.t.net.start_node(i).await?;
        let took = caught_up(self.t, i).await?;
        self.mark(&[i], true);
        self.report.push(format!(
            "kill -9 node{i} for 3 s: caught up {took:.1?} after restart"
        ));
        Ok(())
    }

    async fn pause(&mut self, i: usize) -> Result<()> {
        self.mark(&[i], false);
        self.t.net.pause_node(i)?;
        tokio::time::sleep(Duration::from_secs(4)).await;
        self.t.net.resume_node(i)?;
        let took = caught_up(self.t, i).await?;
        self.mark(&[i], true);
        self.report.push(format!(
            "SIGSTOP node{i} for 4 s: caught up {took:.1?} after SIGCONT"
        ));
        Ok(())
    }

    async fn halt_and_resume(&mut self, a: usize, b: usize) -> Result<()> {
        self.mark(&[a, b], false);
        self.t.net.kill_node(a)?;
        self.t.net.kill_node(b)?;
        // In-flight rounds may finish one more block; then nothing.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let stopped_at = height_of(self.t, 0).await.context("node0 answers")?;
        tokio::time::sleep(Duration::from_secs(4)).await;
        let still = height_of(self.t, 0).await.context("node0 answers")?;
        ensure!(
            still == stopped_at,
            "with half the power down the chain went on: {stopped_at} -> {still}"
        );
        let began = Instant::now();
        self.t.net.start_node(a).await?;
        self.t.net.start_node(b).await?;
        eventually(Duration::from_secs(120), "the chain to resume", || async {
            Ok(height_of(self.t, 0).await.filter(|h| *h >= still + 2))
        })
        .await?;
        let resumed = began.elapsed();
        caught_up(self.t, a).await?;
        caught_up(self.t, b).await?;
        self.mark(&[a, b], true);
        self.report.push(format!(
            "kill -9 node{a} and node{b}: halted at {still} (no block for 4 s), resumed {resumed:.1?} after restart"
        ));
        Ok(())
    }

    async fn kill_app(&mut self, i: usize) -> Result<()> {
        self.mark(&[i], false);
        self.t.net.kill_app(i)?;
        // CometBFT exits once it loses its app.
        let exited = eventually(Duration::from_secs(30), "CometBFT to exit", || async {
            Ok(self.t.net.check_running(i).is_err().then_some(()))
        })
        .await;
        self.t.net.start_node(i).await?;
        let took = caught_up(self.t, i).await?;
        self.mark(&[i], true);
        self.report.push(format!(
            "kill -9 node{i}'s sequencer alone: CometBFT {} ; both restarted, handshake replayed, caught up {took:.1?}",
            if exited.is_ok() { "exited" } else { "did NOT exit" }
        ));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_lose_nothing_and_never_fork() -> Result<()> {
    let t = TestNetwork::start(4, 8).await?;
    let result = run(&t).await;
    t.finish(result).await
}

async fn run(t: &TestNetwork) -> Result<()> {
    let rounds: usize = std::env::var("WEFT_FAULT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let witnesses = Witnesses::start(t).await?;
    let load = Load::start(t);
    tokio::time::sleep(Duration::from_secs(3)).await;

    let mut faults = Faults {
        t,
        load: &load,
        report: Vec::new(),
    };
    for _ in 0..rounds {
        faults.kill_and_restart(3).await?;
        faults.pause(2).await?;
        faults.halt_and_resume(2, 3).await?;
        faults.kill_app(1).await?;
    }
    let report = faults.report;
    conclude(t, load, &witnesses, &report, 50).await
}
