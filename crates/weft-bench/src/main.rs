//! `weft-bench`: wiring only. Parses the command line, runs scenarios,
//! writes the reports.

use std::{path::PathBuf, time::Duration};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use weft_bench::{
    harness::{run_scenario, BenchOptions, DEFAULT_API_BATCH},
    pacing::MAX_BATCH_SPAN,
    report,
    scenario::Scenario,
    search::SearchConfig,
    submit::SubmitMode,
};
use weft_testnet::App;

/// Throughput and latency of Weft on real CometBFT networks on loopback,
/// against CometBFT's own kvstore on the same network and load.
///
/// Build in release mode first (the harness runs the weft-sequencer and
/// weft-conductor binaries next to its own):
///   cargo build --release -p weft-sequencer -p weft-conductor -p weft-bench
///   target/release/weft-bench run --scenario 1v-200b-batched
///   target/release/weft-bench all
#[derive(Debug, Parser)]
#[command(name = "weft-bench", version, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Lists the scenarios.
    List,
    /// Runs one scenario (a saturation search per app unless --rates).
    Run {
        /// Scenario name, e.g. 1v-200b-batched (see `weft-bench list`).
        #[arg(long)]
        scenario: String,
        #[command(flatten)]
        options: Options,
    },
    /// The soak: one offered rate held for a long time on a Weft network,
    /// a process fault every few minutes (kill -9, SIGSTOP, the sequencer
    /// alone, on nodes other than node0), the resident memory of every
    /// process and the data on disk of every node after each step, and
    /// every node's app hash compared at the end. E.g. the hour of issue
    /// 14 at half the 4-validator saturation rate:
    ///   weft-bench soak --scenario 4v-200b-single --rate 300 --minutes 60 --step-secs 60
    Soak {
        /// Scenario (its validators, payload size and batching).
        #[arg(long, default_value = "4v-200b-single")]
        scenario: String,
        /// Offered transactions per second, held throughout.
        #[arg(long)]
        rate: f64,
        /// Minutes of load.
        #[arg(long, default_value_t = 60.0)]
        minutes: f64,
        /// Seconds between faults.
        #[arg(long, default_value_t = 300)]
        fault_every_secs: u64,
        /// Heights of state history each sequencer keeps (older JMT
        /// versions are pruned); small, so a soak shows pruning at work.
        #[arg(long, default_value_t = 2000)]
        state_retention_heights: u64,
        #[command(flatten)]
        options: Options,
    },
    /// Runs every scenario and writes a summary.
    All {
        #[command(flatten)]
        options: Options,
    },
    /// The builder-bid relay alone, in process: bid submissions at an
    /// open-loop rate, then winner fetches.
    Relay {
        /// Offered bids per second.
        #[arg(long, default_value_t = 5000.0)]
        rate: f64,
        /// Seconds of submissions.
        #[arg(long, default_value_t = 5.0)]
        secs: f64,
        /// Bundle payload bytes.
        #[arg(long, default_value_t = 4096)]
        bundle_bytes: usize,
        /// Distinct builders.
        #[arg(long, default_value_t = 1024)]
        builders: usize,
        /// Distinct rollups.
        #[arg(long, default_value_t = 16)]
        rollups: usize,
        /// Concurrent connections.
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// Winner fetches.
        #[arg(long, default_value_t = 2000)]
        fetches: usize,
        /// Where the report and the relay's trace store go.
        #[arg(long, default_value = "target/bench")]
        out: PathBuf,
        /// Log filter.
        #[arg(long, default_value = "warn")]
        log: String,
    },
    /// A sample builder: follows committed blocks over the node's
    /// websocket and bids for the next height at a relay after each one,
    /// then reports how many of its bids landed.
    Builder {
        /// A node's CometBFT RPC.
        #[arg(long, default_value = "http://127.0.0.1:26657")]
        node: String,
        /// The relay.
        #[arg(long, default_value = "http://127.0.0.1:18550")]
        relay: String,
        /// The builder's key file (`weft keys new`); its account pays.
        #[arg(long)]
        key: PathBuf,
        /// Rollups each bid leads (one bundle each), by name.
        #[arg(long, value_delimiter = ',', default_value = "sample-rollup")]
        rollups: Vec<String>,
        /// Offered per bid.
        #[arg(long, default_value_t = 10_000)]
        amount: u128,
        /// Payload bytes per bundle.
        #[arg(long, default_value_t = 256)]
        payload_bytes: usize,
        /// Blocks to bid on.
        #[arg(long, default_value_t = 20)]
        blocks: u64,
        /// Where the report goes.
        #[arg(long, default_value = "target/bench")]
        out: PathBuf,
        /// Log filter.
        #[arg(long, default_value = "warn")]
        log: String,
    },
}

#[derive(Debug, clap::Args)]
struct Options {
    /// Apps to run, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "weft,kvstore")]
    apps: Vec<App>,
    /// Fixed offered rates (tx/s), one step each, instead of the search.
    #[arg(long, value_delimiter = ',')]
    rates: Option<Vec<f64>>,
    /// Seconds of load per step.
    #[arg(long, default_value_t = 6.0)]
    step_secs: f64,
    /// Seconds at the start of a step left out of the steady throughput.
    #[arg(long, default_value_t = 1.5)]
    warmup_secs: f64,
    /// Most steps of the search.
    #[arg(long, default_value_t = 5)]
    max_steps: usize,
    /// The search stops once the lowest failure is within this factor of
    /// the highest pass.
    #[arg(long, default_value_t = 1.3)]
    resolution: f64,
    /// First rate of the search (tx/s) [default: per scenario].
    #[arg(long)]
    start_rate: Option<f64>,
    /// CometBFT timeout_commit, milliseconds.
    #[arg(long, default_value_t = 500)]
    timeout_commit_ms: u64,
    /// Funded accounts (Weft); each sends at most 24 transactions a step.
    #[arg(long, default_value_t = 16_384)]
    accounts: usize,
    /// No conductor (no end-to-end latency).
    #[arg(long)]
    no_conductor: bool,
    /// Where reports go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Where network homes go [default: <out>/networks].
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Keep network homes (logs) after the run.
    #[arg(long)]
    keep_networks: bool,
    /// Extra weft-sequencer flag (repeatable), e.g. --sequencer-arg=--mempool-max-txs=50000.
    #[arg(long = "sequencer-arg", allow_hyphen_values = true)]
    sequencer_args: Vec<String>,
    /// After the search, hold the saturation rate for this many seconds
    /// (0: no confirmation step).
    #[arg(long, default_value_t = 0)]
    confirm_secs: u64,
    /// Most transactions per JSON-RPC request (1-10). CometBFT checks a
    /// batch's transactions one after another, so batches add the app's
    /// CheckTx round trips to latency; 1 = one concurrent request per tx.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u8).range(1..=10))]
    rpc_batch: u8,
    /// How Weft's transactions are sent: `rpc` (CometBFT JSON-RPC
    /// batches), `api` (one `POST /v1/tx` each) or `api-batch` (up to
    /// --api-batch per `POST /v1/txs`), to each validator's own sequencer
    /// API. kvstore has no API and always gets `rpc`.
    #[arg(long, default_value_t = SubmitMode::Rpc)]
    submit: SubmitMode,
    /// Most transactions per `POST /v1/txs` (--submit api-batch; the
    /// endpoint takes at most 4096).
    #[arg(long, default_value_t = DEFAULT_API_BATCH as u32, value_parser = clap::value_parser!(u32).range(1..=4096))]
    api_batch: u32,
    /// Longest span of due times one request gathers, milliseconds: each
    /// request goes out when its first transaction is due. The default
    /// keeps every send within 5 ms of schedule, so at a few hundred tx/s
    /// requests carry one or two transactions; a long span (e.g. 1000)
    /// fills every request to its limit, as a generator sending fixed
    /// batches of 10 does.
    #[arg(long, default_value_t = MAX_BATCH_SPAN.as_millis() as u64)]
    batch_span_ms: u64,
    /// The method of the independent generator of issue 15: 30 s steps,
    /// no warm-up left out of the throughput, and every JSON-RPC request
    /// a full batch of 10 (--step-secs 30 --warmup-secs 0 --rpc-batch 10
    /// --batch-span-ms 1000; explicit flags are overridden). Its pass
    /// rule (99 % included, p99 ≤ 2 × mean block interval) is weft-bench's.
    #[arg(long)]
    independent_method: bool,
    /// Before each step, wait up to this many seconds for other
    /// processes on the machine to go quiet (0: never wait).
    #[arg(long, default_value_t = 180)]
    quiet_wait_secs: u64,
    /// Start the Weft network without inclusion lists (no `inclusion`
    /// genesis section, vote extensions off), to measure what they cost.
    #[arg(long)]
    no_inclusion_lists: bool,
    /// Log filter.
    #[arg(long, default_value = "info")]
    log: String,
}

impl Options {
    fn bench(&self) -> anyhow::Result<BenchOptions> {
        let (step_secs, warmup_secs, rpc_batch, batch_span_ms) = if self.independent_method {
            (30.0, 0.0, 10, 1000)
        } else {
            (
                self.step_secs,
                self.warmup_secs,
                self.rpc_batch,
                self.batch_span_ms,
            )
        };
        if !(step_secs > warmup_secs && warmup_secs >= 0.0) {
            bail!("--step-secs must be longer than --warmup-secs");
        }
        Ok(BenchOptions {
            apps: self.apps.clone(),
            rates: self.rates.clone(),
            search: SearchConfig {
                start_rate: self.start_rate.unwrap_or(0.0),
                max_steps: self.max_steps,
                resolution: self.resolution,
                ..SearchConfig::default()
            },
            step_duration: Duration::from_secs_f64(step_secs),
            warmup: Duration::from_secs_f64(warmup_secs),
            timeout_commit: Duration::from_millis(self.timeout_commit_ms),
            accounts: self.accounts,
            conductor: !self.no_conductor,
            work_dir: self
                .work_dir
                .clone()
                .unwrap_or_else(|| self.out.join("networks")),
            keep_networks: self.keep_networks,
            sequencer_args: self.sequencer_args.clone(),
            quiet_wait: Duration::from_secs(self.quiet_wait_secs),
            confirm: Duration::from_secs(self.confirm_secs),
            rpc_batch: usize::from(rpc_batch),
            submit: self.submit,
            api_batch: self.api_batch as usize,
            batch_span: Duration::from_millis(batch_span_ms),
            inclusion_lists: !self.no_inclusion_lists,
            soak: None,
        })
    }

    fn scenario(&self, mut s: Scenario) -> Scenario {
        if let Some(rate) = self.start_rate {
            s.start_rate = rate;
        }
        s
    }
}

/// Writes a scenario's report files and prints its Markdown.
fn publish(r: &report::ScenarioReport, out: &std::path::Path) -> anyhow::Result<()> {
    report::write_scenario(r, out)?;
    println!("{}", report::markdown(r));
    println!(
        "wrote {}/{}.{{json,md,svg}}",
        out.display(),
        r.scenario.name
    );
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let log = match &cli.command {
        Command::List => "warn".to_string(),
        Command::Relay { log, .. } | Command::Builder { log, .. } => log.clone(),
        Command::Run { options, .. } | Command::All { options } | Command::Soak { options, .. } => {
            options.log.clone()
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(log))
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Relay {
            rate,
            secs,
            bundle_bytes,
            builders,
            rollups,
            connections,
            fetches,
            out,
            ..
        } => {
            if !(rate > 0.0 && secs > 0.0) {
                bail!("--rate and --secs must be positive");
            }
            let r = weft_bench::relay::run(&weft_bench::relay::RelayBenchOptions {
                rate,
                secs,
                bundle_bytes,
                builders,
                rollups,
                connections,
                fetches,
                work_dir: out.join("relay"),
            })
            .await?;
            std::fs::create_dir_all(&out)?;
            std::fs::write(out.join("relay.json"), serde_json::to_string_pretty(&r)?)?;
            println!("{}", weft_bench::relay::markdown(&r));
            println!("wrote {}/relay.json", out.display());
        }
        Command::Builder {
            node,
            relay,
            key,
            rollups,
            amount,
            payload_bytes,
            blocks,
            out,
            ..
        } => {
            let text = std::fs::read_to_string(&key)
                .with_context(|| format!("reading {}", key.display()))?;
            let key = serde_json::from_str::<weft_core::KeyFile>(&text)
                .with_context(|| format!("{} is not a weft key file", key.display()))?
                .signing_key()?;
            let chain_id =
                tendermint_rpc::Client::status(&tendermint_rpc::HttpClient::new(node.as_str())?)
                    .await?
                    .node_info
                    .network
                    .to_string();
            let r = weft_bench::builder::run(&weft_bench::builder::BuilderOptions {
                node_rpc: node,
                relay,
                chain_id,
                key,
                rollups: rollups
                    .iter()
                    .map(|r| weft_core::RollupId::from_name(r))
                    .collect(),
                amount,
                payload_bytes,
                blocks,
            })
            .await?;
            std::fs::create_dir_all(&out)?;
            std::fs::write(out.join("builder.json"), serde_json::to_string_pretty(&r)?)?;
            println!("{}", weft_bench::builder::markdown(&r));
            println!("wrote {}/builder.json", out.display());
        }
        Command::List => {
            for s in Scenario::catalog() {
                println!(
                    "{:<18} {} validator(s), {} B payloads, {} per tx",
                    s.name, s.validators, s.payload_bytes, s.payloads_per_tx
                );
            }
        }
        Command::Run { scenario, options } => {
            let scenario = options.scenario(Scenario::named(&scenario)?);
            let bench = options.bench()?;
            warn_if_debug();
            let r = run_scenario(&scenario, &bench)
                .await
                .with_context(|| format!("scenario {}", scenario.name))?;
            publish(&r, &options.out)?;
        }
        Command::Soak {
            scenario,
            rate,
            minutes,
            fault_every_secs,
            state_retention_heights,
            options,
        } => {
            if !(rate > 0.0 && minutes > 0.0 && fault_every_secs > 0) {
                bail!("--rate, --minutes and --fault-every-secs must be positive");
            }
            let scenario = Scenario::named(&scenario)?;
            let mut bench = options.bench()?;
            bench.apps = vec![weft_testnet::App::Weft];
            bench.quiet_wait = Duration::ZERO;
            bench.sequencer_args.push(format!(
                "--state-retention-heights={state_retention_heights}"
            ));
            bench.soak = Some(weft_bench::soak::SoakOptions {
                rate,
                duration: Duration::from_secs_f64(minutes * 60.0),
                fault_every: Duration::from_secs(fault_every_secs),
            });
            warn_if_debug();
            let r = run_scenario(&scenario, &bench)
                .await
                .with_context(|| format!("soak on {}", scenario.name))?;
            publish(&r, &options.out)?;
            let consistent = r
                .runs
                .first()
                .and_then(|run| run.soak.as_ref())
                .is_some_and(|s| s.consistent);
            if !consistent {
                bail!("the nodes' app hashes did not agree at the end");
            }
        }
        Command::All { options } => {
            let bench = options.bench()?;
            warn_if_debug();
            let mut reports = Vec::new();
            for s in Scenario::catalog() {
                let s = options.scenario(s);
                let r = run_scenario(&s, &bench)
                    .await
                    .with_context(|| format!("scenario {}", s.name))?;
                report::write_scenario(&r, &options.out)?;
                eprintln!("{}", report::markdown(&r));
                reports.push(r);
                report::write_summary(&reports, &options.out)?;
            }
            println!("{}", report::summary_markdown(&reports));
            println!("wrote {}/summary.{{json,md}}", options.out.display());
        }
    }
    Ok(())
}

/// Debug builds of the sequencer measure the compiler, not Weft.
fn warn_if_debug() {
    if let Ok(p) = weft_testnet::sequencer_binary() {
        if p.components().any(|c| c.as_os_str() == "debug") {
            eprintln!(
                "warning: using a debug build of weft-sequencer ({}); build with --release for real figures",
                p.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bench(args: &[&str]) -> BenchOptions {
        let cli = Cli::try_parse_from(
            ["weft-bench", "run", "--scenario", "1v-200b-batched"]
                .iter()
                .chain(args),
        )
        .unwrap();
        let Command::Run { options, .. } = cli.command else {
            panic!("not a run");
        };
        options.bench().unwrap()
    }

    #[test]
    fn defaults_are_rpc_with_6_s_steps_and_5_ms_batches() {
        let b = bench(&[]);
        assert_eq!(b.submit, SubmitMode::Rpc);
        assert_eq!(b.step_duration, Duration::from_secs(6));
        assert_eq!(b.warmup, Duration::from_millis(1500));
        assert_eq!(b.batch_span, Duration::from_millis(5));
        assert_eq!((b.rpc_batch, b.api_batch), (10, 64));
    }

    #[test]
    fn the_independent_method_overrides_steps_warmup_and_batching() {
        let b = bench(&[
            "--independent-method",
            "--step-secs",
            "6",
            "--rpc-batch",
            "1",
        ]);
        assert_eq!(b.step_duration, Duration::from_secs(30));
        assert_eq!(b.warmup, Duration::ZERO);
        assert_eq!(b.rpc_batch, 10);
        assert_eq!(b.batch_span, Duration::from_secs(1));
    }

    #[test]
    fn api_modes_parse() {
        let b = bench(&["--submit", "api-batch", "--api-batch", "32"]);
        assert_eq!((b.submit, b.api_batch), (SubmitMode::ApiBatch, 32));
        assert_eq!(bench(&["--submit", "api"]).submit, SubmitMode::Api);
        let bad = Cli::try_parse_from(["weft-bench", "run", "--scenario", "x", "--submit", "grpc"]);
        assert!(bad.is_err());
        let zero =
            Cli::try_parse_from(["weft-bench", "run", "--scenario", "x", "--api-batch", "0"]);
        assert!(zero.is_err());
    }
}
