//! What a benchmark reports: the JSON document (everything measured), a
//! Markdown summary and an SVG plot of latency against offered load with
//! Weft and kvstore on the same axes.

use std::{collections::BTreeMap, fmt::Write as _, path::Path};

use serde::Serialize;
use weft_core::ChainParams;
use weft_testnet::App;

use crate::{
    hot_path::HandlerUsage, procstat::ProcessUsage, scenario::Scenario, search::SearchConfig,
    stats::LatencySummary, BenchError, Result,
};

/// One step: a fixed offered rate for a fixed time.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StepReport {
    /// Step number in the run.
    pub step: u32,
    /// Target rate, transactions per second.
    pub offered_tx_per_s: f64,
    /// Length of the load window, seconds.
    pub duration_s: f64,
    /// Transactions sent.
    pub txs_offered: usize,
    /// Admitted by CheckTx (`broadcast_tx_sync` code 0).
    pub txs_accepted: usize,
    /// Seen in a committed block by the end of the step.
    pub txs_included: usize,
    /// Refusals by reason.
    pub rejections: BTreeMap<String, usize>,
    /// Accepted per second of the window.
    pub accepted_tx_per_s: f64,
    /// Included per second, measured between the blocks committed in the
    /// window after the warm-up (steady state).
    pub included_tx_per_s: f64,
    /// Rollup payloads included per second (for kvstore: the same number
    /// of equally sized transactions, counted as Weft would).
    pub payloads_per_s: f64,
    /// Megabytes (10^6) of rollup payload per second.
    pub rollup_mb_per_s: f64,
    /// Megabytes of transactions per second.
    pub tx_mb_per_s: f64,
    /// Submission (request sent) to commit (the block's NewBlockHeader
    /// event received); a transaction never included counts as infinitely
    /// late.
    pub inclusion_latency: LatencySummary,
    /// Submission to the node's answer (`broadcast_tx_sync` returns after
    /// CheckTx), of the transactions it accepted.
    #[serde(default)]
    pub checktx_answer: LatencySummary,
    /// Submission to delivery by `weft-conductor` (Weft, one rollup).
    pub e2e_latency: Option<LatencySummary>,
    /// Blocks committed during the step.
    pub blocks: usize,
    /// Mean time between consecutive commits, ms.
    pub block_interval_ms: Option<f64>,
    /// Longest time between consecutive commits, ms.
    pub block_interval_max_ms: Option<f64>,
    /// Mean transactions per block.
    pub txs_per_block: Option<f64>,
    /// Mean block size, bytes of transactions.
    pub block_bytes_mean: Option<f64>,
    /// How late requests went out against the schedule, p99 ms.
    pub send_lag_p99_ms: Option<f64>,
    /// Transactions the nodes still held when the step started.
    pub backlog_at_start: Option<u64>,
    /// p99 inclusion within twice the block interval, and the generator
    /// kept its schedule.
    pub passed: bool,
    /// Why it passed or failed.
    pub verdict: String,
    /// Share of all cores busy (whole machine).
    pub machine_cpu_busy: Option<f64>,
    /// Cores used by processes outside the benchmark (other work on the
    /// machine: a sign the figures are disturbed when well above 0).
    pub other_cpu_cores: Option<f64>,
    /// Every process's CPU and peak memory.
    pub processes: Vec<ProcessUsage>,
    /// Weft's ABCI handlers, summed over nodes.
    pub hot_path: Vec<HandlerUsage>,
}

/// The network a run used.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NetworkReport {
    /// Validators.
    pub validators: usize,
    /// CometBFT settings that shape the results, read back from node0's
    /// config.toml and genesis.json (identical for Weft and kvstore).
    pub cometbft: BTreeMap<String, serde_json::Value>,
    /// Weft's chain parameters (not used by kvstore).
    pub chain_params: Option<ChainParams>,
    /// Extra `weft-sequencer` flags.
    pub sequencer_args: Vec<String>,
    /// Whether the Weft network ran with inclusion lists (vote
    /// extensions on, listed commits carried and checked).
    pub inclusion_lists: bool,
    /// Funded benchmark accounts.
    pub accounts: usize,
    /// The binaries run.
    pub binaries: BTreeMap<String, String>,
}

/// The highest passing step.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Saturation {
    /// Its step number.
    pub step: u32,
    /// Offered rate.
    pub offered_tx_per_s: f64,
    /// Included rate.
    pub included_tx_per_s: f64,
    /// Payloads per second.
    pub payloads_per_s: f64,
    /// Rollup MB/s.
    pub rollup_mb_per_s: f64,
    /// p50 inclusion, ms.
    pub p50_ms: Option<f64>,
    /// p99 inclusion, ms.
    pub p99_ms: Option<f64>,
    /// Block interval, ms.
    pub block_interval_ms: Option<f64>,
}

/// One app's part of a scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppRun {
    /// `weft` or `kvstore`.
    pub app: App,
    /// The network.
    pub network: NetworkReport,
    /// Bytes per transaction.
    pub tx_bytes: usize,
    /// How transactions were sent: JSON-RPC, or the sequencer API.
    pub submit: crate::submit::SubmitMode,
    /// Most transactions per request.
    pub txs_per_request: usize,
    /// Block interval with no load, ms.
    pub idle_block_interval_ms: Option<f64>,
    /// The search, when one ran.
    pub search: Option<SearchConfig>,
    /// Every step, in order.
    pub steps: Vec<StepReport>,
    /// The highest passing step.
    pub saturation: Option<Saturation>,
    /// A longer step at the saturation rate, when asked for: whether that
    /// rate holds beyond a short step.
    pub confirmation: Option<StepReport>,
    /// The highest included rate of any step, passing or not.
    pub peak_included_tx_per_s: f64,
    /// Problems that did not stop the run.
    pub warnings: Vec<String>,
    /// The soak's faults and footprints, when the run was a soak.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soak: Option<crate::soak::SoakRecord>,
}

impl AppRun {
    /// Fills `saturation` and `peak_included_tx_per_s` from the steps.
    pub fn summarize(&mut self) {
        self.peak_included_tx_per_s = self
            .steps
            .iter()
            .map(|s| s.included_tx_per_s)
            .fold(0.0, f64::max);
        self.saturation = self
            .steps
            .iter()
            .filter(|s| s.passed)
            .max_by(|a, b| a.offered_tx_per_s.total_cmp(&b.offered_tx_per_s))
            .map(|s| Saturation {
                step: s.step,
                offered_tx_per_s: s.offered_tx_per_s,
                included_tx_per_s: s.included_tx_per_s,
                payloads_per_s: s.payloads_per_s,
                rollup_mb_per_s: s.rollup_mb_per_s,
                p50_ms: s.inclusion_latency.p50_ms,
                p99_ms: s.inclusion_latency.p99_ms,
                block_interval_ms: s.block_interval_ms,
            });
    }
}

/// Weft against kvstore.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Ratio {
    /// Weft / kvstore included rate at each one's saturation point.
    pub sustained: Option<f64>,
    /// Weft / kvstore highest included rate of any step.
    pub peak: Option<f64>,
}

impl Ratio {
    /// The ratios of two runs.
    pub fn of(weft: &AppRun, kvstore: &AppRun) -> Ratio {
        let div = |a: f64, b: f64| (b > 0.0).then(|| a / b);
        Ratio {
            sustained: match (&weft.saturation, &kvstore.saturation) {
                (Some(w), Some(k)) => div(w.included_tx_per_s, k.included_tx_per_s),
                (None, Some(_)) => Some(0.0),
                _ => None,
            },
            peak: div(weft.peak_included_tx_per_s, kvstore.peak_included_tx_per_s),
        }
    }
}

/// The machine the run used.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Machine {
    /// Logical CPUs.
    pub cpus: usize,
    /// `model name` from /proc/cpuinfo.
    pub cpu_model: String,
    /// Total memory, GiB.
    pub memory_gib: f64,
    /// Kernel release.
    pub kernel: String,
    /// `cometbft version`.
    pub cometbft_version: String,
}

/// A whole scenario: both apps, their ratio.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioReport {
    /// The scenario.
    pub scenario: Scenario,
    /// Where it ran.
    pub machine: Machine,
    /// Unix time it started.
    pub started_unix: u64,
    /// `git rev-parse --short HEAD` of the tree built.
    pub git_commit: String,
    /// Whether the tree had uncommitted changes.
    pub git_dirty: bool,
    /// Load window of each step, seconds.
    pub step_duration_s: f64,
    /// Steady-state throughput ignores blocks before this, seconds.
    pub warmup_s: f64,
    /// Each app's run.
    pub runs: Vec<AppRun>,
    /// Weft / kvstore, when both ran.
    pub ratio: Option<Ratio>,
}

impl ScenarioReport {
    /// The run of `app`.
    pub fn run(&self, app: App) -> Option<&AppRun> {
        self.runs.iter().find(|r| r.app == app)
    }

    /// Computes the ratio when both apps ran.
    pub fn compute_ratio(&mut self) {
        self.ratio = match (self.run(App::Weft), self.run(App::Kvstore)) {
            (Some(w), Some(k)) => Some(Ratio::of(w, k)),
            _ => None,
        };
    }
}

fn ms(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{v:.0}"))
}

fn rate(v: f64) -> String {
    if v >= 100.0 {
        thousands(v.round() as u64)
    } else {
        format!("{v:.1}")
    }
}

/// `12345` → `12,345`.
pub fn thousands(v: u64) -> String {
    let s = v.to_string();
    // The leading group has 1 to 3 digits, every later one 3.
    let first = match s.len() % 3 {
        0 => 3.min(s.len()),
        r => r,
    };
    let mut out = s[..first].to_string();
    for group in s.as_bytes()[first..].chunks(3) {
        out.push(',');
        out.push_str(std::str::from_utf8(group).unwrap_or_default());
    }
    out
}

/// How one app's transactions were sent, in words.
fn submission(run: &AppRun) -> String {
    use crate::submit::SubmitMode;
    let n = run.txs_per_request;
    let how = match run.submit {
        SubmitMode::Rpc => format!("CometBFT JSON-RPC, `broadcast_tx_sync` batches of up to {n}"),
        SubmitMode::Api => "the sequencer API, one `POST /v1/tx` per transaction".to_string(),
        SubmitMode::ApiBatch => {
            format!("the sequencer API, up to {n} per `POST /v1/txs` (binary)")
        }
    };
    format!("{} via `{}` ({how})", run.app, run.submit)
}

fn ratio(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{v:.2}"))
}

/// The Markdown summary of one scenario.
pub fn markdown(r: &ScenarioReport) -> String {
    let s = &r.scenario;
    let mut out = String::new();
    let tx_bytes = r.runs.first().map_or(0, |x| x.tx_bytes);
    let _ = writeln!(
        out,
        "## {} — {} validator{}, {} B payloads, {} per tx ({} B txs), {} rollups\n",
        s.name,
        s.validators,
        if s.validators == 1 { "" } else { "s" },
        thousands(s.payload_bytes as u64),
        s.payloads_per_tx,
        thousands(tx_bytes as u64),
        s.rollups
    );
    let _ =
        writeln!(
        out,
        "Commit `{}`{}, {} s steps (throughput after {} s of warm-up), {} CPUs ({}), {:.0} GiB.\n",
        r.git_commit,
        if r.git_dirty { " (with local changes)" } else { "" },
        r.step_duration_s,
        r.warmup_s,
        r.machine.cpus,
        r.machine.cpu_model,
        r.machine.memory_gib
    );
    let sending: Vec<String> = r.runs.iter().map(submission).collect();
    if !sending.is_empty() {
        let _ = writeln!(out, "Sent {}.\n", sending.join("; "));
    }
    let _ = writeln!(out, "| app | step | offered tx/s | accepted tx/s | included tx/s | payloads/s | rollup MB/s | p50 ms | p90 ms | p99 ms | CheckTx answer p50 / p99 ms | e2e p99 ms | block ms | CPU busy | result |");
    let _ = writeln!(out, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    for run in &r.runs {
        for st in &run.steps {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {:.2} | {} | {} | {} | {} / {} | {} | {} | {} | {} |",
                run.app,
                st.step,
                rate(st.offered_tx_per_s),
                rate(st.accepted_tx_per_s),
                rate(st.included_tx_per_s),
                rate(st.payloads_per_s),
                st.rollup_mb_per_s,
                ms(st.inclusion_latency.p50_ms),
                ms(st.inclusion_latency.p90_ms),
                ms(st.inclusion_latency.p99_ms),
                ms(st.checktx_answer.p50_ms),
                ms(st.checktx_answer.p99_ms),
                ms(st.e2e_latency.as_ref().and_then(|e| e.p99_ms)),
                ms(st.block_interval_ms),
                match (st.machine_cpu_busy, st.other_cpu_cores) {
                    (Some(b), Some(o)) if o >= 0.1 => {
                        format!("{:.0} % ({o:.1} other)", b * 100.0)
                    }
                    (Some(b), _) => format!("{:.0} %", b * 100.0),
                    _ => "—".into(),
                },
                if st.passed {
                    "pass".to_string()
                } else {
                    format!("fail: {}", st.verdict)
                }
            );
        }
    }
    let _ = writeln!(
        out,
        "\n**Saturation** (highest offered rate with p99 inclusion ≤ 2 block intervals):\n"
    );
    for run in &r.runs {
        match &run.saturation {
            Some(sat) => {
                let _ = writeln!(
                    out,
                    "- {}: {} tx/s offered, {} tx/s included = **{} payloads/s**, {:.2} MB/s of rollup data, p50 {} ms, p99 {} ms, blocks every {} ms (idle: {} ms); highest included rate of any step {} tx/s",
                    run.app,
                    rate(sat.offered_tx_per_s),
                    rate(sat.included_tx_per_s),
                    rate(sat.payloads_per_s),
                    sat.rollup_mb_per_s,
                    ms(sat.p50_ms),
                    ms(sat.p99_ms),
                    ms(sat.block_interval_ms),
                    ms(run.idle_block_interval_ms),
                    rate(run.peak_included_tx_per_s)
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "- {}: no step passed; highest included rate {} tx/s",
                    run.app,
                    rate(run.peak_included_tx_per_s)
                );
            }
        }
        if let Some(c) = &run.confirmation {
            let _ = writeln!(
                out,
                "  - held for {:.0} s at {} tx/s: {} tx/s included = {} payloads/s, p50 {} ms, p99 {} ms, blocks every {} ms: **{}**",
                c.duration_s,
                rate(c.offered_tx_per_s),
                rate(c.included_tx_per_s),
                rate(c.payloads_per_s),
                ms(c.inclusion_latency.p50_ms),
                ms(c.inclusion_latency.p99_ms),
                ms(c.block_interval_ms),
                if c.passed {
                    "pass".to_string()
                } else {
                    format!("fail: {}", c.verdict)
                }
            );
        }
    }
    if let Some(x) = &r.ratio {
        let _ = writeln!(
            out,
            "- **Weft ({}) / kvstore ({}): {} at saturation** (target ≥ 0.90), {} at peak\n",
            r.run(App::Weft).map_or("—", |x| x.submit.name()),
            r.run(App::Kvstore).map_or("—", |x| x.submit.name()),
            ratio(x.sustained),
            ratio(x.peak)
        );
    } else {
        out.push('\n');
    }
    for run in &r.runs {
        let Some(step) = focus_step(run) else {
            continue;
        };
        let _ = writeln!(
            out,
            "{} processes in step {} ({} tx/s offered):\n",
            run.app,
            step.step,
            rate(step.offered_tx_per_s)
        );
        let _ = writeln!(out, "| process | CPU s | cores | peak RSS MiB |");
        let _ = writeln!(out, "| --- | ---: | ---: | ---: |");
        for p in &step.processes {
            let _ = writeln!(
                out,
                "| {} | {:.1} | {:.2} | {:.0} |",
                p.name, p.cpu_seconds, p.cpu_cores, p.peak_rss_mib
            );
        }
        if !step.hot_path.is_empty() {
            let _ = writeln!(
                out,
                "\n| ABCI handler (all nodes) | calls | mean µs | cores |"
            );
            let _ = writeln!(out, "| --- | ---: | ---: | ---: |");
            for h in &step.hot_path {
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.0} | {:.3} |",
                    h.handler,
                    thousands(h.calls),
                    h.mean_us,
                    h.cores
                );
            }
        }
        out.push('\n');
        if let Some(soak) = &run.soak {
            out.push_str(&crate::soak::markdown(soak));
        }
        for w in &run.warnings {
            let _ = writeln!(out, "- warning: {w}");
        }
    }
    if let Some(run) = r.runs.first() {
        let settings: Vec<String> = run
            .network
            .cometbft
            .iter()
            .map(|(k, v)| format!("`{k}` = {v}"))
            .collect();
        let _ = writeln!(
            out,
            "CometBFT settings (both apps): {}.\n",
            settings.join(", ")
        );
    }
    out
}

/// The step whose processes and hot path are shown: the first failing
/// step above saturation (where the pressure is), else the highest step.
fn focus_step(run: &AppRun) -> Option<&StepReport> {
    let sat = run.saturation.as_ref().map_or(0.0, |s| s.offered_tx_per_s);
    run.steps
        .iter()
        .filter(|s| !s.passed && s.offered_tx_per_s > sat)
        .min_by(|a, b| a.offered_tx_per_s.total_cmp(&b.offered_tx_per_s))
        .or_else(|| {
            run.steps
                .iter()
                .max_by(|a, b| a.offered_tx_per_s.total_cmp(&b.offered_tx_per_s))
        })
}

/// One line per scenario, for the summary table.
pub fn summary_markdown(reports: &[ScenarioReport]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| scenario | tx bytes | Weft tx/s | Weft payloads/s | Weft MB/s | Weft p50 / p99 ms | Weft block ms | kvstore tx/s | kvstore p50 / p99 ms | kvstore block ms | ratio (saturation) | ratio (peak) |");
    let _ = writeln!(
        out,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for r in reports {
        let sat = |app| r.run(app).and_then(|x| x.saturation.clone());
        let w = sat(App::Weft);
        let k = sat(App::Kvstore);
        let tx_bytes = r.runs.first().map_or(0, |x| x.tx_bytes);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} / {} | {} | {} | {} / {} | {} | {} | {} |",
            r.scenario.name,
            thousands(tx_bytes as u64),
            w.as_ref().map_or("—".into(), |s| rate(s.included_tx_per_s)),
            w.as_ref().map_or("—".into(), |s| rate(s.payloads_per_s)),
            w.as_ref()
                .map_or("—".into(), |s| format!("{:.2}", s.rollup_mb_per_s)),
            ms(w.as_ref().and_then(|s| s.p50_ms)),
            ms(w.as_ref().and_then(|s| s.p99_ms)),
            ms(w.as_ref().and_then(|s| s.block_interval_ms)),
            k.as_ref().map_or("—".into(), |s| rate(s.included_tx_per_s)),
            ms(k.as_ref().and_then(|s| s.p50_ms)),
            ms(k.as_ref().and_then(|s| s.p99_ms)),
            ms(k.as_ref().and_then(|s| s.block_interval_ms)),
            ratio(r.ratio.as_ref().and_then(|x| x.sustained)),
            ratio(r.ratio.as_ref().and_then(|x| x.peak)),
        );
    }
    out
}

/// A "nice" tick step (1, 2 or 5 × 10^k) for an axis up to `max` with
/// about `ticks` ticks.
pub fn nice_step(max: f64, ticks: usize) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let raw = max / ticks.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let norm = raw / magnitude;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// Colours of the two apps.
fn colour(app: App) -> &'static str {
    match app {
        App::Weft => "#1f77b4",
        App::Kvstore => "#ff7f0e",
    }
}

/// SVG plot: inclusion latency (p50 dashed, p99 solid) against offered
/// rate, one colour per app, with each app's two-block threshold dotted.
/// Steps whose percentile was never reached sit on the top edge as crosses.
pub fn svg(r: &ScenarioReport) -> String {
    let (w, h) = (720.0, 440.0);
    let (left, right, top, bottom) = (70.0, 170.0, 40.0, 50.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let max_x = r
        .runs
        .iter()
        .flat_map(|x| x.steps.iter().map(|s| s.offered_tx_per_s))
        .fold(0.0, f64::max)
        * 1.05;
    let thresholds: Vec<(App, f64)> = r
        .runs
        .iter()
        .filter_map(|x| {
            let intervals: Vec<f64> = x.steps.iter().filter_map(|s| s.block_interval_ms).collect();
            crate::stats::mean(&intervals).map(|m| (x.app, 2.0 * m))
        })
        .collect();
    let max_y = r
        .runs
        .iter()
        .flat_map(|x| x.steps.iter())
        .filter_map(|s| s.inclusion_latency.p99_ms)
        .chain(thresholds.iter().map(|t| t.1))
        .fold(0.0, f64::max)
        * 1.1;
    let (max_x, max_y) = (max_x.max(1.0), max_y.max(1.0));
    let x = |v: f64| left + pw * v / max_x;
    let y = |v: f64| top + ph - ph * v.min(max_y) / max_y;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{}" y="22" font-size="14" text-anchor="middle">{}: inclusion latency against offered load</text>"#,
        left + pw / 2.0,
        xml(&r.scenario.name)
    );
    // Axes and grid.
    let xs = nice_step(max_x, 6);
    let mut v = 0.0;
    while v <= max_x {
        let _ = writeln!(
            out,
            r##"<line x1="{0:.1}" y1="{1}" x2="{0:.1}" y2="{2}" stroke="#ddd"/><text x="{0:.1}" y="{3}" text-anchor="middle">{4}</text>"##,
            x(v),
            top,
            top + ph,
            top + ph + 16.0,
            rate(v)
        );
        v += xs;
    }
    let ys = nice_step(max_y, 6);
    let mut v = 0.0;
    while v <= max_y {
        let _ = writeln!(
            out,
            r##"<line x1="{1}" y1="{0:.1}" x2="{2}" y2="{0:.1}" stroke="#ddd"/><text x="{3}" y="{4:.1}" text-anchor="end">{5}</text>"##,
            y(v),
            left,
            left + pw,
            left - 6.0,
            y(v) + 4.0,
            thousands(v.round() as u64)
        );
        v += ys;
    }
    let _ = writeln!(
        out,
        r#"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">offered load (tx/s)</text>"#,
        left + pw / 2.0,
        h - 12.0
    );
    let _ = writeln!(
        out,
        r#"<text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">inclusion latency (ms)</text>"#,
        top + ph / 2.0,
        top + ph / 2.0
    );
    for (app, t) in &thresholds {
        let _ = writeln!(
            out,
            r#"<line x1="{left}" y1="{0:.1}" x2="{1}" y2="{0:.1}" stroke="{2}" stroke-dasharray="2,4"/>"#,
            y(*t),
            left + pw,
            colour(*app)
        );
    }
    for run in &r.runs {
        let mut steps: Vec<&StepReport> = run.steps.iter().collect();
        steps.sort_by(|a, b| a.offered_tx_per_s.total_cmp(&b.offered_tx_per_s));
        for (dash, pick) in [
            (
                "",
                (|s: &StepReport| s.inclusion_latency.p99_ms) as fn(&StepReport) -> Option<f64>,
            ),
            ("6,4", |s: &StepReport| s.inclusion_latency.p50_ms),
        ] {
            let points: Vec<(f64, Option<f64>)> = steps
                .iter()
                .map(|s| (s.offered_tx_per_s, pick(s)))
                .collect();
            let line: Vec<String> = points
                .iter()
                .map(|(r, l)| format!("{:.1},{:.1}", x(*r), y(l.unwrap_or(max_y))))
                .collect();
            let _ = writeln!(
                out,
                r#"<polyline class="{}" points="{}" fill="none" stroke="{}" stroke-width="2" stroke-dasharray="{}"/>"#,
                run.app,
                line.join(" "),
                colour(run.app),
                dash
            );
            for (r, l) in &points {
                match l {
                    Some(l) => {
                        let _ = writeln!(
                            out,
                            r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"#,
                            x(*r),
                            y(*l),
                            colour(run.app)
                        );
                    }
                    None => {
                        let (cx, cy) = (x(*r), y(max_y));
                        let _ = writeln!(
                            out,
                            r#"<path d="M{} {} L{} {} M{} {} L{} {}" stroke="{}" stroke-width="2"/>"#,
                            cx - 4.0,
                            cy - 4.0,
                            cx + 4.0,
                            cy + 4.0,
                            cx - 4.0,
                            cy + 4.0,
                            cx + 4.0,
                            cy - 4.0,
                            colour(run.app)
                        );
                    }
                }
            }
        }
    }
    // Legend.
    let lx = left + pw + 12.0;
    let mut ly = top + 10.0;
    for run in &r.runs {
        for (label, dash) in [("p99", ""), ("p50", "6,4"), ("2 blocks", "2,4")] {
            let _ = writeln!(
                out,
                r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{}" stroke-width="2" stroke-dasharray="{dash}"/><text x="{}" y="{}">{} {label}</text>"#,
                lx + 24.0,
                colour(run.app),
                lx + 30.0,
                ly + 4.0,
                run.app
            );
            ly += 18.0;
        }
        ly += 6.0;
    }
    let _ = writeln!(
        out,
        r#"<text x="{lx}" y="{}">× p99 not reached</text>"#,
        ly + 4.0
    );
    out.push_str("</svg>\n");
    out
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Writes `<dir>/<scenario>.json`, `.md` and `.svg`.
pub fn write_scenario(r: &ScenarioReport, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| BenchError::io(format!("creating {}", dir.display()), e))?;
    let name = &r.scenario.name;
    write(&dir.join(format!("{name}.json")), &to_json(r)?)?;
    write(&dir.join(format!("{name}.md")), &markdown(r))?;
    write(&dir.join(format!("{name}.svg")), &svg(r))
}

/// Writes `<dir>/summary.json` (every report) and `summary.md`.
pub fn write_summary(reports: &[ScenarioReport], dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| BenchError::io(format!("creating {}", dir.display()), e))?;
    write(&dir.join("summary.json"), &to_json(&reports)?)?;
    let mut md = String::from("# weft-bench summary\n\n");
    md.push_str(&summary_markdown(reports));
    md.push('\n');
    for r in reports {
        md.push_str(&markdown(r));
    }
    write(&dir.join("summary.md"), &md)
}

fn to_json(v: &impl Serialize) -> Result<String> {
    serde_json::to_string_pretty(v).map_err(|e| BenchError::Report {
        path: "json".into(),
        message: e.to_string(),
    })
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| BenchError::Report {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(n: u32, offered: f64, p99: Option<f64>, passed: bool) -> StepReport {
        StepReport {
            step: n,
            offered_tx_per_s: offered,
            included_tx_per_s: offered.min(900.0),
            payloads_per_s: offered.min(900.0) * 64.0,
            inclusion_latency: LatencySummary {
                count: 10,
                p50_ms: p99.map(|p| p / 2.0),
                p99_ms: p99,
                ..Default::default()
            },
            block_interval_ms: Some(500.0),
            passed,
            verdict: if passed {
                "pass".into()
            } else {
                "p99 too high".into()
            },
            processes: vec![ProcessUsage {
                name: "node0/cometbft".into(),
                pid: 1,
                cpu_seconds: 4.0,
                cpu_cores: 0.5,
                peak_rss_mib: 120.0,
            }],
            ..Default::default()
        }
    }

    fn run(app: App, steps: Vec<StepReport>) -> AppRun {
        let mut r = AppRun {
            app,
            network: NetworkReport::default(),
            tx_bytes: 15_290,
            submit: match app {
                App::Weft => crate::submit::SubmitMode::ApiBatch,
                App::Kvstore => crate::submit::SubmitMode::Rpc,
            },
            txs_per_request: 10,
            idle_block_interval_ms: Some(450.0),
            search: None,
            steps,
            saturation: None,
            confirmation: None,
            peak_included_tx_per_s: 0.0,
            warnings: vec![],
            soak: None,
        };
        r.summarize();
        r
    }

    fn report() -> ScenarioReport {
        let mut r = ScenarioReport {
            scenario: Scenario::named("1v-200b-batched").unwrap(),
            machine: Machine {
                cpus: 2,
                cpu_model: "AMD EPYC".into(),
                memory_gib: 24.0,
                ..Default::default()
            },
            started_unix: 0,
            git_commit: "abc1234".into(),
            git_dirty: false,
            step_duration_s: 8.0,
            warmup_s: 2.0,
            runs: vec![
                run(
                    App::Weft,
                    vec![
                        step(0, 200.0, Some(700.0), true),
                        step(1, 400.0, Some(900.0), true),
                        step(2, 800.0, None, false),
                    ],
                ),
                run(
                    App::Kvstore,
                    vec![
                        step(0, 200.0, Some(600.0), true),
                        step(1, 500.0, Some(800.0), true),
                    ],
                ),
            ],
            ratio: None,
        };
        r.compute_ratio();
        r
    }

    #[test]
    fn saturation_is_the_highest_passing_step_and_ratios_follow() {
        let r = report();
        let w = r.run(App::Weft).unwrap();
        assert_eq!(w.saturation.as_ref().unwrap().offered_tx_per_s, 400.0);
        assert_eq!(w.peak_included_tx_per_s, 800.0);
        let ratio = r.ratio.clone().unwrap();
        assert_eq!(ratio.sustained, Some(400.0 / 500.0));
        assert_eq!(ratio.peak, Some(800.0 / 500.0));
        assert_eq!(focus_step(w).unwrap().step, 2);
    }

    #[test]
    fn markdown_has_every_step_the_saturation_and_the_ratio() {
        let md = markdown(&report());
        assert!(md.starts_with(
            "## 1v-200b-batched — 1 validator, 200 B payloads, 64 per tx (15,290 B txs)"
        ));
        assert_eq!(md.matches("| weft | ").count(), 3);
        assert_eq!(md.matches("| kvstore | ").count(), 2);
        assert!(md.contains("fail: p99 too high"));
        assert!(md.contains("**25,600 payloads/s**"), "{md}");
        assert!(
            md.contains("Weft (api-batch) / kvstore (rpc): 0.80 at saturation"),
            "{md}"
        );
        assert!(
            md.contains("Sent weft via `api-batch` (the sequencer API, up to 10 per `POST /v1/txs` (binary)); kvstore via `rpc`"),
            "{md}"
        );
        assert!(md.contains("| node0/cometbft | 4.0 | 0.50 | 120 |"));
        let summary = summary_markdown(&[report()]);
        assert!(
            summary.contains("| 1v-200b-batched | 15,290 | 400 | 25,600 |"),
            "{summary}"
        );
        assert!(summary.contains("| 0.80 | 1.60 |"));
    }

    #[test]
    fn the_plot_has_both_apps_and_marks_unreached_percentiles() {
        let svg = svg(&report());
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches(r#"<polyline class="weft""#).count(), 2);
        assert_eq!(svg.matches(r#"<polyline class="kvstore""#).count(), 2);
        // Weft's step 2 has neither p50 nor p99: two crosses.
        assert_eq!(svg.matches("<path d=").count(), 2);
        assert!(svg.contains("offered load (tx/s)"));
    }

    #[test]
    fn nice_steps_and_thousands() {
        assert_eq!(nice_step(1000.0, 5), 200.0);
        assert_eq!(nice_step(7.0, 6), 2.0);
        assert_eq!(nice_step(0.0, 5), 1.0);
        assert_eq!(nice_step(12_000.0, 6), 2000.0);
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn reports_are_written_as_json_markdown_and_svg() {
        let dir = std::env::temp_dir().join(format!("weft-bench-report-{}", std::process::id()));
        let r = report();
        write_scenario(&r, &dir).unwrap();
        write_summary(std::slice::from_ref(&r), &dir).unwrap();
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("1v-200b-batched.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(json["runs"][0]["app"], "weft");
        assert_eq!(json["ratio"]["sustained"], 0.8);
        assert!(dir.join("1v-200b-batched.svg").is_file());
        assert!(std::fs::read_to_string(dir.join("summary.md"))
            .unwrap()
            .contains("weft-bench summary"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
