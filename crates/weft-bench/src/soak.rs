//! The soak (issue 14): a fixed offered rate held on a real network for a
//! long time, a process fault every few minutes on a node other than
//! node0 (which the block follower reads), and the footprint of every
//! process sampled after each step: resident memory per process, data on
//! disk per node (CometBFT's `data/` and the sequencer's store). The
//! report shows whether memory and disk level off (the sequencer prunes
//! state history past `--state-retention-heights`) and what each fault
//! cost; at the end every node's app hash must agree at a common height.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use serde::Serialize;
use weft_testnet::Testnet;

/// The soak's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SoakOptions {
    /// Offered transactions per second, held throughout.
    pub rate: f64,
    /// How long the load runs.
    pub duration: Duration,
    /// A fault this often (the first one after one interval).
    pub fault_every: Duration,
}

/// The faults, in rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// `kill -9` CometBFT and the sequencer, restart 10 s later.
    KillNode,
    /// SIGSTOP both for 10 s, then SIGCONT.
    Pause,
    /// `kill -9` the sequencer alone (CometBFT exits), restart both.
    KillApp,
}

const ROTATION: [FaultKind; 3] = [FaultKind::KillNode, FaultKind::Pause, FaultKind::KillApp];

/// One injected fault.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultRecord {
    /// Seconds since the soak began.
    pub at_s: f64,
    /// What was done.
    pub kind: FaultKind,
    /// To which node.
    pub node: usize,
    /// Seconds from the restart (or SIGCONT) until the node was back within
    /// one height of node0; `None` if it never was within two minutes.
    pub recovery_s: Option<f64>,
    /// An error injecting or recovering, if any.
    pub error: Option<String>,
}

/// Memory and disk after one step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Footprint {
    /// Seconds since the soak began.
    pub at_s: f64,
    /// node0's height.
    pub height: u64,
    /// Resident memory per process, KiB.
    pub rss_kib: Vec<(String, u64)>,
    /// Bytes on disk per node: (`node<i>/cometbft`, CometBFT's `data/`)
    /// and (`node<i>/sequencer`, the sequencer's store).
    pub disk_bytes: Vec<(String, u64)>,
}

/// What the soak saw, beside its steps.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SoakRecord {
    /// Offered rate.
    pub rate: f64,
    /// Planned seconds of load.
    pub duration_s: f64,
    /// Seconds between faults.
    pub fault_every_s: f64,
    /// Every fault.
    pub faults: Vec<FaultRecord>,
    /// Footprints, the first before any load.
    pub footprints: Vec<Footprint>,
    /// The final check: every node's app hash at a common height.
    pub final_check: String,
    /// Whether that check passed.
    pub consistent: bool,
}

/// The fault for the `n`th interval: kinds in rotation, nodes 1.. in
/// rotation (never node0).
pub fn plan(n: usize, nodes: usize) -> (FaultKind, usize) {
    let kind = ROTATION[n % ROTATION.len()];
    let node = if nodes > 1 { 1 + n % (nodes - 1) } else { 0 };
    (kind, node)
}

/// Injects one fault and waits for the node to recover.
pub async fn inject(net: &Testnet, kind: FaultKind, node: usize, began: Instant) -> FaultRecord {
    let at_s = began.elapsed().as_secs_f64();
    let outage = Duration::from_secs(10);
    let result: Result<(), String> = async {
        match kind {
            FaultKind::KillNode => {
                net.kill_node(node).map_err(|e| e.to_string())?;
                tokio::time::sleep(outage).await;
                net.start_node(node).await.map_err(|e| e.to_string())
            }
            FaultKind::Pause => {
                net.pause_node(node).map_err(|e| e.to_string())?;
                tokio::time::sleep(outage).await;
                net.resume_node(node).map_err(|e| e.to_string())
            }
            FaultKind::KillApp => {
                net.kill_app(node).map_err(|e| e.to_string())?;
                // CometBFT exits once its app is gone.
                let deadline = Instant::now() + Duration::from_secs(30);
                while net.is_running(node) && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                net.kill_node(node).map_err(|e| e.to_string())?;
                net.start_node(node).await.map_err(|e| e.to_string())
            }
        }
    }
    .await;
    let back = Instant::now();
    let mut recovery_s = None;
    if result.is_ok() {
        while back.elapsed() < Duration::from_secs(120) {
            if let (Ok(h), Ok(top)) = (net.height(node).await, net.height(0).await) {
                if h > 0 && h + 1 >= top {
                    recovery_s = Some(back.elapsed().as_secs_f64());
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    FaultRecord {
        at_s,
        kind,
        node,
        recovery_s,
        error: result.err(),
    }
}

/// Bytes of the files under `dir` (0 if it is missing).
pub fn disk_usage(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => disk_usage(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

/// The footprint of `processes` and of every node's data now.
pub async fn footprint(net: &Testnet, processes: &[(String, u32)], began: Instant) -> Footprint {
    let rss_kib = processes
        .iter()
        .filter_map(|(name, pid)| Some((name.clone(), crate::procstat::sample(*pid)?.rss_kib)))
        .collect();
    let mut disk_bytes = Vec::new();
    for node in net.nodes() {
        disk_bytes.push((
            format!("{}/cometbft", node.name),
            disk_usage(&node.cometbft_home().join("data")),
        ));
        disk_bytes.push((
            format!("{}/sequencer", node.name),
            disk_usage(&node.app_home()),
        ));
    }
    Footprint {
        at_s: began.elapsed().as_secs_f64(),
        height: net.height(0).await.unwrap_or(0),
        rss_kib,
        disk_bytes,
    }
}

/// Every node's app hash at the highest height all of them have, through
/// their CometBFT RPC (`/commit`).
pub async fn final_check(net: &Testnet, http: &reqwest::Client) -> (bool, String) {
    let mut common = u64::MAX;
    for i in 0..net.nodes().len() {
        match net.height(i).await {
            Ok(h) => common = common.min(h),
            Err(e) => return (false, format!("node{i} does not answer: {e}")),
        }
    }
    let mut hashes = Vec::new();
    for node in net.nodes() {
        let url = format!("{}/commit?height={common}", node.rpc_url());
        let hash = match http.get(&url).send().await {
            Ok(r) => r.json::<serde_json::Value>().await.ok().and_then(|v| {
                v["result"]["signed_header"]["header"]["app_hash"]
                    .as_str()
                    .map(str::to_owned)
            }),
            Err(_) => None,
        };
        hashes.push(hash.unwrap_or_else(|| "?".into()));
    }
    let agree = hashes.iter().all(|h| h != "?" && *h == hashes[0]);
    let text = if agree {
        format!(
            "all {} nodes have app hash {} at height {common}",
            hashes.len(),
            hashes[0]
        )
    } else {
        format!("app hashes at height {common} differ or are missing: {hashes:?}")
    };
    (agree, text)
}

const MIB: f64 = 1024.0 * 1024.0;

/// Growth of one series (bytes) from `first` to `last` over `hours`.
fn growth(first: u64, last: u64, hours: f64) -> String {
    let delta = last as f64 - first as f64;
    let per_hour = if hours > 0.0 { delta / hours } else { 0.0 };
    format!(
        "{:.1} → {:.1} MiB ({:+.1} MiB, {:+.1} MiB/h)",
        first as f64 / MIB,
        last as f64 / MIB,
        delta / MIB,
        per_hour / MIB
    )
}

/// The soak's section of the report.
pub fn markdown(r: &SoakRecord) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### Soak\n\n{:.0} tx/s offered for {:.0} min, a fault every {:.0} s (nodes 1.. in turn: kill -9 and restart 10 s later, SIGSTOP 10 s, kill -9 the sequencer alone).\n",
        r.rate,
        r.duration_s / 60.0,
        r.fault_every_s
    );
    let _ = writeln!(out, "| at | fault | node | recovered after | error |");
    let _ = writeln!(out, "| ---: | --- | ---: | ---: | --- |");
    for f in &r.faults {
        let _ = writeln!(
            out,
            "| {:.0} s | {:?} | node{} | {} | {} |",
            f.at_s,
            f.kind,
            f.node,
            f.recovery_s
                .map_or("never (2 min)".into(), |s| format!("{s:.1} s")),
            f.error.as_deref().unwrap_or("")
        );
    }
    out.push('\n');
    if let (Some(first), Some(last)) = (
        r.footprints.get(1).or(r.footprints.first()),
        r.footprints.last(),
    ) {
        let hours = (last.at_s - first.at_s) / 3600.0;
        let _ = writeln!(
            out,
            "Footprint from {:.0} s (height {}) to {:.0} s (height {}):\n",
            first.at_s, first.height, last.at_s, last.height
        );
        let _ = writeln!(out, "| what | resident memory or bytes on disk |");
        let _ = writeln!(out, "| --- | --- |");
        for (name, last_kib) in &last.rss_kib {
            if let Some((_, first_kib)) = first.rss_kib.iter().find(|(n, _)| n == name) {
                let _ = writeln!(
                    out,
                    "| {name} RSS | {} |",
                    growth(first_kib * 1024, last_kib * 1024, hours)
                );
            }
        }
        for (name, last_bytes) in &last.disk_bytes {
            if let Some((_, first_bytes)) = first.disk_bytes.iter().find(|(n, _)| n == name) {
                let _ = writeln!(
                    out,
                    "| {name} disk | {} |",
                    growth(*first_bytes, *last_bytes, hours)
                );
            }
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "Final check: {} ({}).\n",
        r.final_check,
        if r.consistent { "pass" } else { "FAIL" }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_rotate_kinds_and_spare_node0() {
        let planned: Vec<_> = (0..6).map(|n| plan(n, 4)).collect();
        assert_eq!(
            planned,
            vec![
                (FaultKind::KillNode, 1),
                (FaultKind::Pause, 2),
                (FaultKind::KillApp, 3),
                (FaultKind::KillNode, 1),
                (FaultKind::Pause, 2),
                (FaultKind::KillApp, 3),
            ]
        );
        assert!((0..100).all(|n| plan(n, 4).1 != 0));
    }

    #[test]
    fn growth_is_signed_and_per_hour() {
        let mib = 1024 * 1024;
        assert_eq!(
            growth(10 * mib, 15 * mib, 0.5),
            "10.0 → 15.0 MiB (+5.0 MiB, +10.0 MiB/h)"
        );
        assert_eq!(
            growth(10 * mib, 8 * mib, 1.0),
            "10.0 → 8.0 MiB (-2.0 MiB, -2.0 MiB/h)"
        );
    }

    #[test]
    fn disk_usage_sums_nested_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("x"), [0u8; 10]).unwrap();
        std::fs::write(dir.path().join("a/b/y"), [0u8; 32]).unwrap();
        assert_eq!(disk_usage(dir.path()), 42);
        assert_eq!(disk_usage(&dir.path().join("missing")), 0);
    }
}
