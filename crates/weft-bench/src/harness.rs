//! Running a scenario: a fresh network per app (Weft, then kvstore, same
//! CometBFT settings), then steps of open-loop load at fixed rates (given,
//! or chosen by the saturation search), each measured end to end.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use bytes::Bytes;
use serde_json::Value;
use weft_core::ChainParams;
use weft_testnet::{genesis::BLOCK_MAX_BYTES, App, Testnet, TestnetConfig};

use crate::{
    blocks::BlockFollower,
    conductor::ConductorFollower,
    hot_path::{self, Scrape},
    pacing::{self, BatchLimits},
    procstat::{self, ProcSample, ProcessUsage},
    report::{AppRun, Machine, NetworkReport, ScenarioReport, StepReport},
    scenario::Scenario,
    search::{SaturationSearch, SearchConfig, StepOutcome},
    stats::{self, LatencySummary},
    submit::{self, Outcome, Request, SubmitMode},
    workload::{rollup_name, rollup_of, Workload},
    BenchError, Result,
};

/// Chain id of benchmark networks.
pub const CHAIN_ID: &str = "weft-bench";

/// Transactions per `POST /v1/txs` unless told otherwise.
pub const DEFAULT_API_BATCH: usize = 64;
/// Most bytes in one `POST /v1/txs` body: far under the endpoint's 8 MiB,
/// so one request's admission stays short (its answer is the CheckTx
/// answer time of every transaction in it).
pub const MAX_API_BATCH_BODY: usize = 900_000;

impl BenchOptions {
    /// How `app`'s transactions are sent: the chosen mode for Weft, JSON-RPC
    /// for kvstore (it has no API).
    pub fn submit_mode(&self, app: App) -> SubmitMode {
        match app {
            App::Weft => self.submit,
            App::Kvstore => SubmitMode::Rpc,
        }
    }

    /// The limits of one request of `mode`.
    pub fn batch_limits(&self, mode: SubmitMode) -> BatchLimits {
        let (max_items, max_body) = match mode {
            SubmitMode::Rpc => (
                self.rpc_batch.clamp(1, pacing::MAX_BATCH_ITEMS),
                pacing::MAX_BATCH_BODY,
            ),
            SubmitMode::Api => (1, usize::MAX),
            SubmitMode::ApiBatch => (self.api_batch.max(1), MAX_API_BATCH_BODY),
        };
        BatchLimits {
            max_items,
            max_body,
            max_span: self.batch_span,
        }
    }
}

/// How a scenario is run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Apps to run, in order.
    pub apps: Vec<App>,
    /// Fixed offered rates (tx/s), one step each; `None` runs the search.
    pub rates: Option<Vec<f64>>,
    /// The search (its start rate defaults to the scenario's).
    pub search: SearchConfig,
    /// Load window of each step.
    pub step_duration: Duration,
    /// Blocks committed before this much of the window are left out of
    /// the steady-state throughput.
    pub warmup: Duration,
    /// CometBFT `timeout_commit`.
    pub timeout_commit: Duration,
    /// Funded accounts (Weft).
    pub accounts: usize,
    /// Run a conductor for end-to-end latency (Weft).
    pub conductor: bool,
    /// Where network homes go.
    pub work_dir: PathBuf,
    /// Keep network homes (logs) after a successful run.
    pub keep_networks: bool,
    /// Extra `weft-sequencer` flags.
    pub sequencer_args: Vec<String>,
    /// Before each step, wait up to this long for other processes on the
    /// machine to go quiet (zero: do not wait).
    pub quiet_wait: Duration,
    /// After the search, hold the saturation rate this long (zero: no).
    pub confirm: Duration,
    /// Most transactions per JSON-RPC request. CometBFT runs a batch's
    /// `broadcast_tx_sync` calls one after another, each waiting for its
    /// CheckTx answer, so batching adds the app's round trip times the
    /// position in the batch to a transaction's latency (nothing for the
    /// in-process kvstore); 1 sends every transaction as its own concurrent
    /// request, as independent users do, at more HTTP cost per transaction.
    pub rpc_batch: usize,
    /// How Weft's transactions are sent (kvstore, which has no API, always
    /// gets JSON-RPC).
    pub submit: SubmitMode,
    /// Most transactions per `POST /v1/txs` ([`SubmitMode::ApiBatch`]).
    pub api_batch: usize,
    /// Longest span of due times one request may gather: a transaction
    /// goes out with the first of its request, up to this much early.
    /// Short (5 ms) keeps sends on schedule; long fills every request to
    /// its item limit, as a generator sending fixed batches of 10 does.
    pub batch_span: Duration,
    /// Inclusion lists (vote extensions) on the Weft network, as on any
    /// Weft network by default; off measures what they cost.
    pub inclusion_lists: bool,
    /// Run a soak instead of the rates or the search.
    pub soak: Option<crate::soak::SoakOptions>,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            apps: vec![App::Weft, App::Kvstore],
            rates: None,
            search: SearchConfig::default(),
            step_duration: Duration::from_secs(6),
            warmup: Duration::from_millis(1500),
            timeout_commit: Duration::from_millis(500),
            accounts: 16_384,
            conductor: true,
            work_dir: std::env::temp_dir().join("weft-bench"),
            keep_networks: false,
            sequencer_args: Vec::new(),
            quiet_wait: Duration::from_secs(180),
            confirm: Duration::ZERO,
            rpc_batch: pacing::MAX_BATCH_ITEMS,
            submit: SubmitMode::Rpc,
            api_batch: DEFAULT_API_BATCH,
            batch_span: pacing::MAX_BATCH_SPAN,
            inclusion_lists: true,
            soak: None,
        }
    }
}

/// Chain parameters of benchmark networks: the defaults, except that a
/// block may carry as much rollup data as it has bytes, so Weft and
/// kvstore are bound by the same limit (the block's `max_bytes`).
pub fn bench_params() -> ChainParams {
    ChainParams {
        max_rollup_data_per_block: BLOCK_MAX_BYTES,
        ..ChainParams::default()
    }
}

/// Runs `scenario` for every app in `opts` and computes the ratio.
pub async fn run_scenario(scenario: &Scenario, opts: &BenchOptions) -> Result<ScenarioReport> {
    scenario.validate(&bench_params())?;
    if opts.step_duration <= opts.warmup {
        return Err(BenchError::Invalid(
            "the step must be longer than its warm-up".into(),
        ));
    }
    let started_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (git_commit, git_dirty) = git_state();
    let mut report = ScenarioReport {
        scenario: scenario.clone(),
        machine: machine().await,
        started_unix,
        git_commit,
        git_dirty,
        step_duration_s: opts.step_duration.as_secs_f64(),
        warmup_s: opts.warmup.as_secs_f64(),
        runs: Vec::new(),
        ratio: None,
    };
    for &app in &opts.apps {
        tracing::info!(scenario = %scenario.name, %app, "starting");
        let run = run_app(scenario, app, opts).await?;
        report.runs.push(run);
    }
    report.compute_ratio();
    Ok(report)
}

/// One app's network and steps.
async fn run_app(scenario: &Scenario, app: App, opts: &BenchOptions) -> Result<AppRun> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let home = opts
        .work_dir
        .join(format!("{}-{app}-{stamp}", scenario.name));
    let mut workload = Workload::new(scenario, app, CHAIN_ID, scenario.validators, opts.accounts);
    let params = bench_params();
    let mut cfg = TestnetConfig::new(&home);
    cfg.validators = scenario.validators;
    cfg.chain_id = CHAIN_ID.into();
    cfg.timeout_commit = opts.timeout_commit;
    cfg.extra_accounts = workload.accounts.genesis_accounts();
    cfg.params = params.clone();
    cfg.sequencer_args = opts.sequencer_args.clone();
    cfg.app = app;
    if !opts.inclusion_lists {
        cfg.inclusion = None;
    }
    let net = Testnet::create(cfg).await?;
    let mut run = AppRun {
        app,
        network: NetworkReport {
            validators: scenario.validators,
            cometbft: cometbft_settings(&net),
            chain_params: (app == App::Weft).then_some(params),
            sequencer_args: opts.sequencer_args.clone(),
            inclusion_lists: app == App::Weft && opts.inclusion_lists,
            accounts: workload.accounts.len(),
            binaries: binaries(&net),
        },
        tx_bytes: workload.tx_len(),
        submit: opts.submit_mode(app),
        txs_per_request: opts.batch_limits(opts.submit_mode(app)).max_items,
        idle_block_interval_ms: None,
        search: None,
        steps: Vec::new(),
        saturation: None,
        confirmation: None,
        peak_included_tx_per_s: 0.0,
        warnings: Vec::new(),
        soak: None,
    };
    let result = match net.start().await {
        Ok(()) => drive(&net, &home, scenario, &mut workload, opts, &mut run).await,
        Err(e) => Err(e.into()),
    };
    let stopped = net.shutdown().await;
    if result.is_ok() && !opts.keep_networks {
        let _ = std::fs::remove_dir_all(&home);
    } else {
        eprintln!("network home kept: {}", home.display());
    }
    result?;
    stopped?;
    run.summarize();
    Ok(run)
}

/// Everything measured on one running network.
struct Context<'a> {
    net: &'a Testnet,
    scenario: &'a Scenario,
    opts: &'a BenchOptions,
    follower: BlockFollower,
    conductor: Option<ConductorFollower>,
    http: reqwest::Client,
    idle_interval: Duration,
    /// Cores the network and generator use with no load.
    idle_cores: f64,
}

async fn drive(
    net: &Testnet,
    home: &Path,
    scenario: &Scenario,
    workload: &mut Workload,
    opts: &BenchOptions,
    run: &mut AppRun,
) -> Result<()> {
    net.wait_all_for_height(2, Duration::from_secs(120)).await?;
    let node0 = &net.nodes()[0];
    let follower = BlockFollower::start(&node0.rpc_url()).await?;
    let conductor = if net.app() == App::Weft && opts.conductor {
        Some(ConductorFollower::start(net, &rollup_name(0), &home.join("conductor")).await?)
    } else {
        None
    };
    let idle_from = Instant::now();
    follower.wait_blocks(4, Duration::from_secs(60)).await;
    let idle = intervals(&follower.blocks_between(idle_from, Instant::now()));
    let idle_ms = stats::mean(&idle);
    run.idle_block_interval_ms = idle_ms;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(submit::MAX_IN_FLIGHT)
        .build()
        .map_err(|e| BenchError::rpc("client", e))?;
    let mut ctx = Context {
        net,
        scenario,
        opts,
        follower,
        conductor,
        http,
        idle_interval: Duration::from_secs_f64(idle_ms.unwrap_or(1000.0) / 1000.0),
        idle_cores: 0.0,
    };
    ctx.idle_cores = sample_cores(&process_list(&ctx))
        .await
        .map_or(0.0, |(_, mine)| mine);

    let mut step = 0u32;
    if let Some(soak) = &opts.soak {
        run.soak = Some(soak_loop(&mut ctx, workload, soak, run).await?);
        run.summarize();
        return finish(ctx, workload, home, run).await;
    }
    match &opts.rates {
        Some(rates) => {
            for &rate in rates {
                let r = run_step(&mut ctx, workload, step, rate, opts.step_duration).await?;
                run.steps.push(r);
                step += 1;
            }
        }
        None => {
            let config = SearchConfig {
                start_rate: scenario.start_rate,
                ..opts.search
            };
            run.search = Some(config);
            let mut search = SaturationSearch::new(config);
            while let Some(rate) = search.next_rate() {
                let r = run_step(&mut ctx, workload, step, rate, opts.step_duration).await?;
                tracing::info!(
                    app = %net.app(),
                    step,
                    offered = rate,
                    included = r.included_tx_per_s,
                    p99_ms = ?r.inclusion_latency.p99_ms,
                    block_ms = ?r.block_interval_ms,
                    verdict = %r.verdict,
                    "step done"
                );
                search.record(StepOutcome {
                    rate,
                    passed: r.passed,
                    included_rate: r.included_tx_per_s,
                });
                run.steps.push(r);
                step += 1;
            }
        }
    }
    run.summarize();
    if let (Some(sat), false) = (&run.saturation, opts.confirm.is_zero()) {
        let rate = sat.offered_tx_per_s;
        let r = run_step(&mut ctx, workload, step, rate, opts.confirm).await?;
        run.confirmation = Some(r);
    }
    finish(ctx, workload, home, run).await
}

/// Warnings from the follower, the accounts and the conductor; stops the
/// conductor.
async fn finish(
    mut ctx: Context<'_>,
    workload: &mut Workload,
    home: &Path,
    run: &mut AppRun,
) -> Result<()> {
    if let Some(e) = ctx.follower.last_error() {
        run.warnings.push(format!("block follower: {e}"));
    }
    let retired = workload.accounts.retired();
    if retired > 0 {
        run.warnings.push(format!(
            "{retired} accounts retired after a refused or lost transaction"
        ));
    }
    if let Some(mut c) = ctx.conductor.take() {
        if let Some(status) = c.exit_status() {
            run.warnings.push(format!(
                "weft-conductor exited early ({status}); see {}/conductor/conductor.log",
                home.display()
            ));
        }
        c.stop().await;
    }
    Ok(())
}

/// The soak: steps at one rate until the duration is over, a fault
/// injected alongside the step in which it falls due, the footprint of
/// every process and node after each step, and the app hash check at the
/// end.
async fn soak_loop(
    ctx: &mut Context<'_>,
    workload: &mut Workload,
    soak: &crate::soak::SoakOptions,
    run: &mut AppRun,
) -> Result<crate::soak::SoakRecord> {
    use crate::soak;
    let net = ctx.net;
    let began = Instant::now();
    let mut record = soak::SoakRecord {
        rate: soak.rate,
        duration_s: soak.duration.as_secs_f64(),
        fault_every_s: soak.fault_every.as_secs_f64(),
        ..Default::default()
    };
    record
        .footprints
        .push(soak::footprint(net, &process_list(ctx), began).await);
    let mut next_fault = began + soak.fault_every;
    let mut faults = 0usize;
    let mut step = 0u32;
    while began.elapsed() < soak.duration {
        let due = Instant::now() >= next_fault;
        let fault = async {
            if !due {
                return None;
            }
            // Into the step's load, not before it.
            tokio::time::sleep(Duration::from_secs(2)).await;
            let (kind, node) = soak::plan(faults, net.nodes().len());
            Some(soak::inject(net, kind, node, began).await)
        };
        let (report, fault) = tokio::join!(
            run_step(ctx, workload, step, soak.rate, ctx.opts.step_duration),
            fault
        );
        let report = report?;
        tracing::info!(
            step,
            elapsed_s = began.elapsed().as_secs(),
            included = report.included_tx_per_s,
            accepted = report.txs_accepted,
            p99_ms = ?report.inclusion_latency.p99_ms,
            fault = ?fault.as_ref().map(|f| (f.kind, f.node, f.recovery_s)),
            "soak step"
        );
        run.steps.push(report);
        if let Some(f) = fault {
            record.faults.push(f);
            faults += 1;
            next_fault += soak.fault_every;
        }
        record
            .footprints
            .push(soak::footprint(net, &process_list(ctx), began).await);
        step += 1;
    }
    (record.consistent, record.final_check) = soak::final_check(net, &ctx.http).await;
    Ok(record)
}

/// One step at `rate` for `duration`.
async fn run_step(
    ctx: &mut Context<'_>,
    workload: &mut Workload,
    step: u32,
    rate: f64,
    duration: Duration,
) -> Result<StepReport> {
    let opts = ctx.opts;
    let nodes = ctx.net.nodes().len();
    let mode = opts.submit_mode(ctx.net.app());
    let n = pacing::tx_count(rate, duration);
    // Sign everything before the clock starts.
    let txs = tokio::task::block_in_place(|| workload.prepare_step(step, n))?;
    let mut per_node: Vec<Vec<(u32, Duration, usize)>> = vec![Vec::new(); nodes];
    for (i, t) in txs.txs.iter().enumerate() {
        let cost = mode.body_cost(t.len, t.rpc_request_len());
        per_node[t.node % nodes].push((i as u32, pacing::due(i, rate), cost));
    }
    let limits = opts.batch_limits(mode);
    let requests: Vec<Vec<Request>> = per_node
        .iter()
        .map(|mine| {
            pacing::plan_batches(mine, limits)
                .into_iter()
                .map(|b| {
                    let tx = |i: u32| &txs.txs[i as usize];
                    let body = match mode {
                        SubmitMode::Rpc => Bytes::from(pacing::batch_body(
                            b.txs
                                .iter()
                                .map(|&i| tx(i).rpc_request(i as usize))
                                .collect::<Vec<_>>()
                                .iter()
                                .map(String::as_str),
                        )),
                        SubmitMode::Api => Bytes::from(
                            b.txs
                                .first()
                                .map(|&i| tx(i).bytes.clone())
                                .unwrap_or_default(),
                        ),
                        SubmitMode::ApiBatch => {
                            let body = submit::api_batch_body(
                                b.txs.iter().map(|&i| tx(i).bytes.as_slice()),
                            )
                            .ok_or_else(|| {
                                BenchError::Invalid("a transaction over 4 GiB".into())
                            })?;
                            Bytes::from(body)
                        }
                    };
                    Ok(Request {
                        due: b.due,
                        body,
                        txs: b.txs,
                    })
                })
                .collect::<Result<Vec<_>>>()
        })
        .collect::<Result<Vec<_>>>()?;
    let accounts: Vec<Option<usize>> = txs.txs.iter().map(|t| t.account).collect();
    let by_hash = txs.by_hash();
    drop(txs);

    wait_for_quiet_machine(&process_list(ctx), ctx.idle_cores, opts.quiet_wait).await;
    let backlog_at_start = unconfirmed(&ctx.http, ctx.net).await;
    ctx.follower.begin_step(by_hash);
    let pids = process_list(ctx);
    for (_, pid) in &pids {
        procstat::reset_peak(*pid);
    }
    let before: Vec<Option<ProcSample>> = pids.iter().map(|(_, p)| procstat::sample(*p)).collect();
    let machine_before = procstat::sample_machine();
    let metrics_before = scrape_all(ctx).await;

    let start = Instant::now() + Duration::from_millis(100);
    let senders: Vec<_> = requests
        .into_iter()
        .zip(ctx.net.nodes())
        .map(|(reqs, node)| {
            tokio::spawn(submit::send_all(
                ctx.http.clone(),
                mode,
                mode.url(&node.rpc_url(), &node.api_url()),
                reqs,
                start,
            ))
        })
        .collect();
    let mut sent: Vec<Option<submit::Sent>> = vec![None; n];
    for s in senders {
        for x in s.await.unwrap_or_default() {
            let i = x.tx as usize;
            if i < n {
                sent[i] = Some(x);
            }
        }
    }
    let load_end = start + duration;
    let accepted = sent
        .iter()
        .filter(|s| s.as_ref().is_some_and(|s| s.outcome == Outcome::Accepted))
        .count();

    // Drain: give accepted transactions a few blocks to land.
    let drain = (ctx.idle_interval * 6).max(Duration::from_secs(5));
    let deadline = load_end.max(Instant::now()) + drain;
    while Instant::now() < deadline && ctx.follower.included_so_far() < accepted {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let included_at = ctx.follower.end_step();
    let last_height = included_at.iter().flatten().map(|(_, h)| *h).max();
    if let (Some(c), Some(h)) = (&ctx.conductor, last_height) {
        let deadline = Instant::now() + drain;
        while Instant::now() < deadline && c.delivered_height() < h {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let end = Instant::now();
    let wall = end.duration_since(start).as_secs_f64();
    let machine_after = procstat::sample_machine();
    let after: Vec<Option<ProcSample>> = pids.iter().map(|(_, p)| procstat::sample(*p)).collect();
    let metrics_after = scrape_all(ctx).await;

    // Accounts whose transaction was refused or lost have an unknown nonce.
    for (i, account) in accounts.iter().enumerate() {
        if let Some(a) = account {
            if included_at[i].is_none() {
                workload.accounts.retire(*a);
            }
        }
    }

    let blocks = ctx.follower.blocks_between(start, end);
    let e2e = ctx.conductor.as_ref().map(|c| {
        let delivered = c.take_step(step);
        let s = ctx.scenario;
        let mut latencies = Vec::new();
        for (i, x) in sent.iter().enumerate() {
            for action in 0..s.payloads_per_tx as u32 {
                if rollup_of(i as u32, action, s.payloads_per_tx, s.rollups) != 0 {
                    continue;
                }
                let id = crate::workload::PayloadId {
                    step,
                    tx: i as u32,
                    action,
                };
                latencies.push(match (x, delivered.get(&id)) {
                    (Some(x), Some(at)) => Some(at.saturating_duration_since(x.at).as_secs_f64()),
                    _ => None,
                });
            }
        }
        LatencySummary::from_seconds(latencies)
    });

    let mut report = StepReport {
        step,
        offered_tx_per_s: rate,
        duration_s: duration.as_secs_f64(),
        txs_offered: n,
        txs_accepted: accepted,
        txs_included: included_at.iter().filter(|x| x.is_some()).count(),
        backlog_at_start,
        e2e_latency: e2e,
        ..Default::default()
    };
    for x in sent.iter().flatten() {
        if let Outcome::Rejected(reason) = &x.outcome {
            *report.rejections.entry(reason.clone()).or_default() += 1;
        }
    }
    let unsent = sent.iter().filter(|s| s.is_none()).count();
    if unsent > 0 {
        report.rejections.insert("not sent".into(), unsent);
    }
    report.accepted_tx_per_s = accepted as f64 / duration.as_secs_f64();
    report.checktx_answer = LatencySummary::from_seconds(
        sent.iter()
            .flatten()
            .filter(|s| s.outcome == Outcome::Accepted)
            .map(|s| Some(s.answered.as_secs_f64())),
    );
    report.inclusion_latency =
        LatencySummary::from_seconds(sent.iter().zip(&included_at).map(|(s, inc)| {
            match (s, inc) {
                (Some(s), Some((at, _))) => Some(at.saturating_duration_since(s.at).as_secs_f64()),
                _ => None,
            }
        }));
    report.included_tx_per_s = steady_rate(&blocks, start + opts.warmup, load_end)
        .unwrap_or(report.txs_included as f64 / duration.as_secs_f64());
    let s = ctx.scenario;
    report.payloads_per_s = report.included_tx_per_s * s.payloads_per_tx as f64;
    report.rollup_mb_per_s = report.payloads_per_s * s.payload_bytes as f64 / 1e6;
    report.tx_mb_per_s = report.included_tx_per_s * workload.tx_len() as f64 / 1e6;
    let gaps = intervals(&blocks);
    report.blocks = blocks.len();
    report.block_interval_ms = stats::mean(&gaps);
    report.block_interval_max_ms = gaps.iter().copied().reduce(f64::max);
    let block_txs: Vec<f64> = blocks.iter().map(|b| b.txs as f64).collect();
    let block_bytes: Vec<f64> = blocks.iter().map(|b| b.bytes as f64).collect();
    report.txs_per_block = stats::mean(&block_txs);
    report.block_bytes_mean = stats::mean(&block_bytes);
    let mut lags: Vec<f64> = sent
        .iter()
        .flatten()
        .map(|s| s.lag.as_secs_f64() * 1000.0)
        .collect();
    lags.sort_by(f64::total_cmp);
    report.send_lag_p99_ms = stats::percentile(&lags, 0, 0.99);
    (report.passed, report.verdict) = verdict(&report);
    report.machine_cpu_busy = match (machine_before, machine_after) {
        (Some(b), Some(a)) if a.total > b.total => {
            Some((a.busy - b.busy.min(a.busy)) as f64 / (a.total - b.total) as f64)
        }
        _ => None,
    };
    let ours: f64 = pids
        .iter()
        .zip(before.iter().zip(&after))
        .filter_map(|(_, (b, a))| Some(a.as_ref()?.cpu_ticks.saturating_sub(b.as_ref()?.cpu_ticks)))
        .sum::<u64>() as f64
        / procstat::TICKS_PER_SECOND;
    report.other_cpu_cores = report.machine_cpu_busy.map(|busy| {
        let cpus = std::thread::available_parallelism().map_or(1, |p| p.get()) as f64;
        (busy * cpus - ours / wall).max(0.0)
    });
    report.processes = pids
        .iter()
        .zip(before.iter().zip(&after))
        .filter_map(|((name, pid), (b, a))| {
            Some(ProcessUsage::between(
                name,
                *pid,
                b.as_ref()?,
                a.as_ref()?,
                wall,
            ))
        })
        .collect();
    report.hot_path = hot_path::usage(&metrics_before, &metrics_after, wall);

    wait_for_empty_mempools(&ctx.http, ctx.net, Duration::from_secs(30)).await;
    Ok(report)
}

/// Pass when the p99 inclusion latency is within two block intervals and
/// requests went out on time (a late generator means the nodes pushed
/// back, or the machine was too busy to keep the schedule).
pub fn verdict(r: &StepReport) -> (bool, String) {
    let Some(interval) = r.block_interval_ms else {
        return (false, "no blocks".into());
    };
    let Some(p99) = r.inclusion_latency.p99_ms else {
        let lost = r.inclusion_latency.missing as f64 / r.inclusion_latency.count.max(1) as f64;
        return (false, format!("{:.1} % never included", lost * 100.0));
    };
    if p99 > 2.0 * interval {
        return (false, format!("p99 {p99:.0} ms > 2 × {interval:.0} ms"));
    }
    if let Some(lag) = r.send_lag_p99_ms {
        if lag > interval {
            return (false, format!("sends {lag:.0} ms late (p99)"));
        }
    }
    (true, "pass".into())
}

/// Milliseconds between consecutive blocks.
pub fn intervals(blocks: &[crate::blocks::BlockSeen]) -> Vec<f64> {
    blocks
        .windows(2)
        .map(|w| w[1].at.saturating_duration_since(w[0].at).as_secs_f64() * 1000.0)
        .collect()
}

/// Step transactions per second between the first and the last block
/// committed in `[from, to]` (the first block's transactions are before the
/// measured span, so they are not counted); `None` with fewer than two.
pub fn steady_rate(blocks: &[crate::blocks::BlockSeen], from: Instant, to: Instant) -> Option<f64> {
    let inside: Vec<_> = blocks
        .iter()
        .filter(|b| b.at >= from && b.at <= to)
        .collect();
    let (first, last) = (inside.first()?, inside.last()?);
    let span = last.at.saturating_duration_since(first.at).as_secs_f64();
    if inside.len() < 2 || span <= 0.0 {
        return None;
    }
    let txs: usize = inside[1..].iter().map(|b| b.step_txs).sum();
    Some(txs as f64 / span)
}

/// Most cores other processes may use before a step waits for them.
const QUIET_OTHER_CORES: f64 = 0.3;
/// How far above its idle use the network's own CPU may be before a step
/// waits: after an overloaded step, CometBFT's database compactions run on
/// for seconds and would tax the next step.
const SETTLE_MARGIN_CORES: f64 = 0.3;

/// Cores used over one second: `(whole machine, the processes in ours)`.
async fn sample_cores(ours: &[(String, u32)]) -> Option<(f64, f64)> {
    let cpus = std::thread::available_parallelism().map_or(1, |p| p.get()) as f64;
    let ticks = || -> u64 {
        ours.iter()
            .filter_map(|(_, p)| procstat::sample(*p))
            .map(|s| s.cpu_ticks)
            .sum()
    };
    let (m0, p0) = (procstat::sample_machine()?, ticks());
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (m1, p1) = (procstat::sample_machine()?, ticks());
    let wall = t0.elapsed().as_secs_f64();
    if m1.total <= m0.total || wall <= 0.0 {
        return None;
    }
    let busy = m1.busy.saturating_sub(m0.busy) as f64 / (m1.total - m0.total) as f64 * cpus;
    let mine = p1.saturating_sub(p0) as f64 / procstat::TICKS_PER_SECOND / wall;
    Some((busy, mine))
}

/// Waits, up to `limit`, until the machine is fit for a step: processes
/// outside the benchmark use little CPU (the machine is shared with builds
/// and other benchmarks) and the network is back near its idle use
/// (`idle_cores`) after the previous step.
async fn wait_for_quiet_machine(ours: &[(String, u32)], idle_cores: f64, limit: Duration) {
    if limit.is_zero() {
        return;
    }
    let deadline = Instant::now() + limit;
    let mut warned = false;
    while let Some((busy, mine)) = sample_cores(ours).await {
        let other = (busy - mine).max(0.0);
        let settled = mine <= idle_cores + SETTLE_MARGIN_CORES;
        if (other < QUIET_OTHER_CORES && settled) || Instant::now() >= deadline {
            return;
        }
        if !warned {
            tracing::warn!(
                other_cores = other,
                network_cores = mine,
                idle_cores,
                "machine busy (other processes, or the network still settling); waiting before the step"
            );
            warned = true;
        }
    }
}

/// `(name, pid)` of every process to watch.
fn process_list(ctx: &Context<'_>) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    for (i, node) in ctx.net.nodes().iter().enumerate() {
        if let Ok(p) = ctx.net.pids(i) {
            if let Some(pid) = p.cometbft {
                out.push((format!("{}/cometbft", node.name), pid));
            }
            if let Some(pid) = p.sequencer {
                out.push((format!("{}/weft-sequencer", node.name), pid));
            }
        }
    }
    if let Some(pid) = ctx.conductor.as_ref().and_then(ConductorFollower::pid) {
        out.push(("weft-conductor".into(), pid));
    }
    out.push(("weft-bench (generator)".into(), std::process::id()));
    out
}

async fn scrape_all(ctx: &Context<'_>) -> Vec<Scrape> {
    if ctx.net.app() != App::Weft {
        return Vec::new();
    }
    let mut out = Vec::new();
    for node in ctx.net.nodes() {
        let text = match ctx
            .http
            .get(format!("{}/metrics", node.api_url()))
            .send()
            .await
        {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        out.push(hot_path::parse(&text));
    }
    out
}

/// Transactions node0 holds (CometBFT's mempool).
async fn unconfirmed(http: &reqwest::Client, net: &Testnet) -> Option<u64> {
    unconfirmed_on(http, &net.nodes()[0].rpc_url()).await
}

/// Hand-made GET: tendermint-rpc 0.40 has no `num_unconfirmed_txs` endpoint.
async fn unconfirmed_on(http: &reqwest::Client, rpc: &str) -> Option<u64> {
    let v: Value = http
        .get(format!("{rpc}/num_unconfirmed_txs"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    v.pointer("/result/n_txs")?.as_str()?.parse().ok()
}

/// Waits until no node holds transactions, so a step does not inherit the
/// previous one's backlog (or `timeout` passes).
async fn wait_for_empty_mempools(http: &reqwest::Client, net: &Testnet, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let mut empty = true;
        for node in net.nodes() {
            if unconfirmed_on(http, &node.rpc_url()).await != Some(0) {
                empty = false;
                break;
            }
        }
        if empty {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The CometBFT settings that shape results, from node0's files.
fn cometbft_settings(net: &Testnet) -> BTreeMap<String, Value> {
    const KEYS: [&str; 17] = [
        "consensus.timeout_commit",
        "consensus.timeout_propose",
        "consensus.create_empty_blocks",
        "consensus.peer_gossip_sleep_duration",
        "mempool.type",
        "mempool.size",
        "mempool.max_txs_bytes",
        "mempool.max_tx_bytes",
        "mempool.cache_size",
        "mempool.recheck",
        "p2p.send_rate",
        "p2p.recv_rate",
        "p2p.flush_throttle_timeout",
        "rpc.max_body_bytes",
        "rpc.max_request_batch_size",
        "tx_index.indexer",
        "db_backend",
    ];
    let mut out = BTreeMap::new();
    let home = net.nodes()[0].cometbft_home();
    if let Some(config) = std::fs::read_to_string(home.join("config/config.toml"))
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
    {
        for key in KEYS {
            let mut v: Option<&toml::Value> = None;
            for (i, part) in key.split('.').enumerate() {
                v = if i == 0 {
                    config.get(part)
                } else {
                    v.and_then(|t| t.get(part))
                };
            }
            if let Some(v) = v.and_then(|v| serde_json::to_value(v).ok()) {
                out.insert(key.to_string(), v);
            }
        }
    }
    if let Some(g) = std::fs::read_to_string(home.join("config/genesis.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
    {
        if let Some(v) = g.pointer("/consensus_params/block/max_bytes") {
            out.insert("genesis.block.max_bytes".into(), v.clone());
        }
    }
    out
}

/// Paths of the binaries the network runs (from its testnet.json).
fn binaries(net: &Testnet) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let desc = std::fs::read_to_string(net.home().join("testnet.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok());
    for key in ["cometbft_binary", "sequencer_binary"] {
        if let Some(p) = desc
            .as_ref()
            .and_then(|d| d.get(key))
            .and_then(Value::as_str)
        {
            out.insert(key.into(), p.into());
        }
    }
    if let Ok(p) =
        weft_testnet::workspace_binary("weft-conductor", crate::conductor::CONDUCTOR_BIN_ENV)
    {
        out.insert("conductor_binary".into(), p.display().to_string());
    }
    if let Ok(p) = std::env::current_exe() {
        out.insert("bench_binary".into(), p.display().to_string());
    }
    out
}

/// The machine, from /proc and `cometbft version`.
pub async fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let cometbft_version = match weft_testnet::cometbft_binary() {
        Ok(bin) => tokio::process::Command::new(bin)
            .arg("version")
            .output()
            .await
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default(),
        Err(_) => String::new(),
    };
    Machine {
        cpus: std::thread::available_parallelism().map_or(1, |p| p.get()),
        cpu_model: cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|l| l.trim_start_matches([' ', '\t', ':']).trim().to_string())
            .unwrap_or_default(),
        memory_gib: meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kib| kib / (1024.0 * 1024.0)),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string(),
        cometbft_version,
    }
}

/// `(short commit, dirty)` of the repository, when git is there.
fn git_state() -> (String, bool) {
    let root = weft_testnet::binaries::repo_root();
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(&root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = run(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty =
        run(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    (commit, dirty)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::BlockSeen;

    fn block(height: u64, at: Instant, step_txs: usize) -> BlockSeen {
        BlockSeen {
            height,
            at,
            txs: step_txs + 1,
            bytes: 0,
            step_txs,
        }
    }

    #[test]
    fn steady_rate_counts_between_the_first_and_last_block_in_the_window() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let blocks = vec![
            block(1, at(500), 999),
            block(2, at(1000), 100),
            block(3, at(1500), 100),
            block(4, at(2000), 100),
            block(5, at(2600), 999),
        ];
        // Blocks 2..4 are inside [900, 2500]: 200 txs over 1 s.
        let r = steady_rate(&blocks, at(900), at(2500)).unwrap();
        assert!((r - 200.0).abs() < 1e-9, "{r}");
        assert_eq!(steady_rate(&blocks, at(900), at(1200)), None);
        let gaps = intervals(&blocks[..3]);
        assert_eq!(gaps, vec![500.0, 500.0]);
    }

    fn step(p99: Option<f64>, missing: usize, interval: Option<f64>, lag: f64) -> StepReport {
        StepReport {
            inclusion_latency: LatencySummary {
                count: 100,
                missing,
                p99_ms: p99,
                ..Default::default()
            },
            block_interval_ms: interval,
            send_lag_p99_ms: Some(lag),
            ..Default::default()
        }
    }

    #[test]
    fn a_step_passes_with_p99_within_two_blocks_and_sends_on_time() {
        assert_eq!(
            verdict(&step(Some(900.0), 0, Some(500.0), 3.0)),
            (true, "pass".into())
        );
        let (ok, why) = verdict(&step(Some(1100.0), 0, Some(500.0), 3.0));
        assert!(!ok && why.contains("p99 1100 ms > 2 × 500 ms"), "{why}");
        let (ok, why) = verdict(&step(None, 5, Some(500.0), 3.0));
        assert!(!ok && why.contains("5.0 % never included"), "{why}");
        let (ok, why) = verdict(&step(Some(900.0), 0, Some(500.0), 600.0));
        assert!(!ok && why.contains("late"), "{why}");
        assert!(!verdict(&step(Some(1.0), 0, None, 0.0)).0);
    }

    #[test]
    fn kvstore_always_gets_rpc_and_each_mode_has_its_request_limits() {
        let opts = BenchOptions {
            submit: SubmitMode::ApiBatch,
            api_batch: 200,
            rpc_batch: 4,
            batch_span: Duration::from_secs(1),
            ..BenchOptions::default()
        };
        assert_eq!(opts.submit_mode(App::Weft), SubmitMode::ApiBatch);
        assert_eq!(opts.submit_mode(App::Kvstore), SubmitMode::Rpc);
        let rpc = opts.batch_limits(SubmitMode::Rpc);
        assert_eq!((rpc.max_items, rpc.max_body), (4, pacing::MAX_BATCH_BODY));
        assert_eq!(rpc.max_span, Duration::from_secs(1));
        assert_eq!(opts.batch_limits(SubmitMode::Api).max_items, 1);
        let batch = opts.batch_limits(SubmitMode::ApiBatch);
        assert_eq!((batch.max_items, batch.max_body), (200, MAX_API_BATCH_BODY));
        // 64-payload transactions: the body limit binds before 200 items.
        let txs: Vec<(u32, Duration, usize)> = (0..200)
            .map(|i| (i, Duration::ZERO, SubmitMode::ApiBatch.body_cost(15_290, 0)))
            .collect();
        let planned = pacing::plan_batches(&txs, batch);
        assert!(planned.len() > 1);
        assert!(planned
            .iter()
            .all(|b| b.txs.len() * (15_290 + 4) <= MAX_API_BATCH_BODY));
    }

    #[test]
    fn benchmark_blocks_may_be_filled_with_rollup_data() {
        let p = bench_params();
        assert_eq!(p.max_rollup_data_per_block, BLOCK_MAX_BYTES);
        assert_eq!(
            p.max_rollup_data_per_tx,
            ChainParams::default().max_rollup_data_per_tx
        );
    }
}
