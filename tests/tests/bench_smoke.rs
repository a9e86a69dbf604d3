//! A short `weft-bench` run on real networks (one validator, Weft and then
//! CometBFT's kvstore): load flows and every number comes out. Figures are
//! not judged here; they belong to the benchmark runs in docs/benchmarks.md.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use weft_bench::{
    harness::{run_scenario, BenchOptions},
    report,
    scenario::Scenario,
};
use weft_testnet::App;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_bench_run_measures_weft_and_kvstore() -> Result<()> {
    let out = tempfile::Builder::new()
        .prefix("weft-bench-smoke-")
        .tempdir()?;
    let scenario = Scenario {
        name: "smoke".into(),
        payloads_per_tx: 8,
        rollups: 2,
        ..Scenario::named("1v-200b-batched")?
    };
    let opts = BenchOptions {
        apps: vec![App::Weft, App::Kvstore],
        rates: Some(vec![20.0]),
        step_duration: Duration::from_secs(4),
        warmup: Duration::from_secs(1),
        timeout_commit: Duration::from_millis(300),
        accounts: 64,
        conductor: true,
        work_dir: out.path().join("networks"),
        quiet_wait: Duration::ZERO,
        ..BenchOptions::default()
    };
    let r = run_scenario(&scenario, &opts).await.context("bench run")?;
    report::write_scenario(&r, out.path())?;

    for run in &r.runs {
        let app = run.app;
        ensure!(run.steps.len() == 1, "{app}: one step per rate");
        let step = &run.steps[0];
        ensure!(step.txs_offered == 80, "{app}: 20 tx/s for 4 s");
        ensure!(
            step.txs_accepted > 0,
            "{app}: nothing accepted: {:?}",
            step.rejections
        );
        ensure!(step.txs_included > 0, "{app}: nothing included");
        ensure!(step.included_tx_per_s > 0.0, "{app}: no throughput");
        ensure!(
            step.inclusion_latency.p50_ms.is_some_and(|ms| ms > 0.0),
            "{app}: no inclusion latency: {:?}",
            step.inclusion_latency
        );
        ensure!(
            step.blocks >= 2 && step.block_interval_ms.is_some(),
            "{app}: no blocks"
        );
        ensure!(
            step.processes
                .iter()
                .any(|p| p.name == "node0/cometbft" && p.cpu_seconds > 0.0),
            "{app}: no CometBFT CPU: {:?}",
            step.processes
        );
        ensure!(
            step.processes
                .iter()
                .any(|p| p.name.starts_with("weft-bench") && p.peak_rss_mib > 0.0),
            "{app}: no generator memory"
        );
    }
    let weft = r.run(App::Weft).context("weft ran")?;
    let step = &weft.steps[0];
    let e2e = step.e2e_latency.as_ref().context("conductor latency")?;
    ensure!(
        e2e.count > 0 && e2e.p50_ms.is_some(),
        "no conductor delivery: {e2e:?}"
    );
    ensure!(
        step.processes
            .iter()
            .any(|p| p.name == "node0/weft-sequencer"),
        "sequencer not watched"
    );
    ensure!(
        step.hot_path
            .iter()
            .any(|h| h.handler == "CheckTx (new)" && h.calls > 0),
        "no CheckTx metrics: {:?}",
        step.hot_path
    );
    ensure!(
        step.hot_path
            .iter()
            .any(|h| h.handler == "FinalizeBlock" && h.calls > 0),
        "no FinalizeBlock metrics"
    );
    let kvstore = r.run(App::Kvstore).context("kvstore ran")?;
    ensure!(kvstore.tx_bytes == weft.tx_bytes, "same transaction size");
    ensure!(
        !kvstore.steps[0]
            .processes
            .iter()
            .any(|p| p.name.contains("weft-sequencer")),
        "kvstore runs no sequencer"
    );
    ensure!(r.ratio.as_ref().and_then(|x| x.peak).is_some(), "no ratio");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("smoke.json"))?)?;
    ensure!(
        json["runs"].as_array().map(Vec::len) == Some(2),
        "JSON has both runs"
    );
    ensure!(json["runs"][0]["network"]["cometbft"]["consensus.timeout_commit"] == "300ms");
    ensure!(out.path().join("smoke.md").is_file() && out.path().join("smoke.svg").is_file());
    Ok(())
}

/// Weft through the sequencer API, one `POST /v1/tx` per transaction and
/// then up to 16 per `POST /v1/txs`: every transaction admitted and
/// included, each request's answer timed, the mode in the report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_bench_run_through_the_sequencer_api() -> Result<()> {
    use weft_bench::submit::SubmitMode;
    for (mode, per_request) in [(SubmitMode::Api, 1), (SubmitMode::ApiBatch, 16)] {
        let out = tempfile::Builder::new()
            .prefix("weft-bench-smoke-api-")
            .tempdir()?;
        let scenario = Scenario {
            name: "smoke-api".into(),
            rollups: 2,
            ..Scenario::named("1v-200b-single")?
        };
        let opts = BenchOptions {
            apps: vec![App::Weft],
            rates: Some(vec![100.0]),
            step_duration: Duration::from_secs(3),
            warmup: Duration::from_secs(1),
            timeout_commit: Duration::from_millis(300),
            accounts: 64,
            conductor: false,
            work_dir: out.path().join("networks"),
            quiet_wait: Duration::ZERO,
            submit: mode,
            api_batch: per_request,
            // Fill requests: 100 tx/s over 200 ms is 20 due, 16 per request.
            batch_span: Duration::from_millis(200),
            ..BenchOptions::default()
        };
        let r = run_scenario(&scenario, &opts)
            .await
            .with_context(|| format!("bench run via {mode}"))?;
        let run = r.run(App::Weft).context("weft ran")?;
        ensure!(run.submit == mode, "{mode}: report says {}", run.submit);
        ensure!(run.txs_per_request == per_request, "{mode}: request size");
        let step = &run.steps[0];
        ensure!(step.txs_offered == 300, "{mode}: 100 tx/s for 3 s");
        ensure!(
            step.txs_accepted == 300 && step.rejections.is_empty(),
            "{mode}: {} accepted, refusals {:?}",
            step.txs_accepted,
            step.rejections
        );
        ensure!(
            step.txs_included == 300,
            "{mode}: {} of 300 included",
            step.txs_included
        );
        ensure!(
            step.checktx_answer.count == 300 && step.checktx_answer.p50_ms.is_some(),
            "{mode}: answer times {:?}",
            step.checktx_answer
        );
        let md = report::markdown(&r);
        ensure!(
            md.contains(&format!("Sent weft via `{mode}`")),
            "{mode}: report does not name the mode: {md}"
        );
    }
    Ok(())
}
