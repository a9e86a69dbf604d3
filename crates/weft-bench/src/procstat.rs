//! CPU time and memory of processes, read from `/proc`: the benchmark
//! reports what every process of the network (and the generator itself)
//! cost during each step.

use serde::Serialize;

/// Clock ticks per second of `/proc` CPU times (`USER_HZ`, fixed at 100
/// on Linux whatever the kernel's own tick rate).
pub const TICKS_PER_SECOND: f64 = 100.0;

/// One reading of one process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcSample {
    /// User + system CPU time, in ticks.
    pub cpu_ticks: u64,
    /// Resident set now, KiB.
    pub rss_kib: u64,
    /// Peak resident set (since start or the last reset), KiB.
    pub peak_rss_kib: u64,
}

/// Reads `/proc/<pid>/stat` and `/proc/<pid>/status`; `None` if the
/// process is gone.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let (rss_kib, peak_rss_kib) = parse_status(&status);
    Some(ProcSample {
        cpu_ticks: parse_stat_cpu(&stat)?,
        rss_kib,
        peak_rss_kib,
    })
}

/// This process's reading.
pub fn sample_self() -> Option<ProcSample> {
    sample(std::process::id())
}

/// Resets the peak resident set of `pid` (Linux ≥ 4.0, own processes), so
/// the next reading's peak belongs to the step. False if refused.
pub fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// `utime + stime` (fields 14 and 15) from a `/proc/<pid>/stat` line. The
/// command name (field 2) may hold spaces and parentheses, so fields are
/// counted after its last `)`.
pub fn parse_stat_cpu(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, index 11.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// `(VmRSS, VmHWM)` in KiB from `/proc/<pid>/status` (0 when absent).
pub fn parse_status(status: &str) -> (u64, u64) {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Busy and total ticks of the whole machine, from `/proc/stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MachineSample {
    /// Ticks not idle and not waiting on I/O, all CPUs.
    pub busy: u64,
    /// All ticks, all CPUs.
    pub total: u64,
}

/// Reads `/proc/stat`.
pub fn sample_machine() -> Option<MachineSample> {
    parse_machine(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// Parses the `cpu` line of `/proc/stat`.
pub fn parse_machine(stat: &str) -> Option<MachineSample> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest is in user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some(MachineSample {
        busy: total.saturating_sub(idle),
        total,
    })
}

/// What one process cost over a step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessUsage {
    /// e.g. `node0/cometbft`, `weft-bench`.
    pub name: String,
    /// Its pid.
    pub pid: u32,
    /// CPU seconds used in the step.
    pub cpu_seconds: f64,
    /// Average cores busy (CPU seconds / wall seconds).
    pub cpu_cores: f64,
    /// Peak resident set during the step (or since start when the peak
    /// could not be reset), MiB.
    pub peak_rss_mib: f64,
}

impl ProcessUsage {
    /// Usage between two readings `wall_seconds` apart.
    pub fn between(
        name: &str,
        pid: u32,
        before: &ProcSample,
        after: &ProcSample,
        wall_seconds: f64,
    ) -> Self {
        let cpu_seconds =
            after.cpu_ticks.saturating_sub(before.cpu_ticks) as f64 / TICKS_PER_SECOND;
        ProcessUsage {
            name: name.into(),
            pid,
            cpu_seconds,
            cpu_cores: if wall_seconds > 0.0 {
                cpu_seconds / wall_seconds
            } else {
                0.0
            },
            peak_rss_mib: after.peak_rss_kib.max(after.rss_kib) as f64 / 1024.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_cpu_is_counted_after_the_command_name() {
        let line = "1234 (weft (bench) x) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 100 1000 200 18446744073709551615";
        assert_eq!(parse_stat_cpu(line), Some(300));
        assert_eq!(parse_stat_cpu("garbage"), None);
        assert_eq!(parse_stat_cpu("1 (x) S 1 2"), None);
    }

    #[test]
    fn status_gives_rss_and_peak() {
        let status =
            "Name:\tcometbft\nVmPeak:\t 900 kB\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n";
        assert_eq!(parse_status(status), (102_400, 204_800));
        assert_eq!(parse_status(""), (0, 0));
    }

    #[test]
    fn machine_busy_excludes_idle_and_iowait() {
        let stat = "cpu  100 10 50 800 40 0 5 0 0 0\ncpu0 1 2 3 4 5 6 7 8\n";
        assert_eq!(
            parse_machine(stat),
            Some(MachineSample {
                busy: 165,
                total: 1005
            })
        );
    }

    #[test]
    fn usage_over_a_step() {
        let before = ProcSample {
            cpu_ticks: 100,
            rss_kib: 1024,
            peak_rss_kib: 2048,
        };
        let after = ProcSample {
            cpu_ticks: 400,
            rss_kib: 1024,
            peak_rss_kib: 4096,
        };
        let u = ProcessUsage::between("node0/cometbft", 7, &before, &after, 2.0);
        assert_eq!(u.cpu_seconds, 3.0);
        assert_eq!(u.cpu_cores, 1.5);
        assert_eq!(u.peak_rss_mib, 4.0);
    }

    #[test]
    fn this_process_can_be_read() {
        let me = sample_self().expect("/proc/self readable");
        assert!(me.rss_kib > 0);
        assert!(sample(u32::MAX).is_none());
    }
}
