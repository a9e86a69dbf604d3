//! The two child processes of one node: spawning them with their output
//! appended to log files, signalling them and reaping them.
//!
//! Each child leads its own process group and every signal goes to the
//! whole group, so whatever a node process starts dies with it. A child
//! also gets SIGKILL from the kernel when this process dies
//! (`PR_SET_PDEATHSIG`), so a test runner killed with SIGKILL, which runs no
//! `Drop`, still leaves no CometBFT behind holding ports and files.

use std::{
    fs::OpenOptions,
    io::{Read, Seek, SeekFrom},
    os::unix::process::CommandExt,
    path::Path,
    process::{Child, Command, Stdio},
    sync::{mpsc, Mutex},
};

use nix::{
    errno::Errno,
    sys::{
        signal::Signal,
        wait::{waitid, Id, WaitPidFlag, WaitStatus},
    },
    unistd::Pid,
};

use crate::{Result, TestnetError};

/// Which of a node's processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Sequencer,
    Cometbft,
}

impl Role {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Sequencer => "weft-sequencer",
            Role::Cometbft => "cometbft",
        }
    }
}

/// A spawned child process, leader of its own process group. Dropping it
/// SIGKILLs the group and reaps the child.
///
/// The child is reaped only by [`Proc::kill_and_reap`] (or drop): until
/// then an exited child stays a zombie, which keeps its pid, and so the
/// group id, from being reused, so signalling the group can never hit an
/// unrelated process.
#[derive(Debug)]
pub(crate) struct Proc {
    child: Child,
    reaped: bool,
}

impl Proc {
    /// Spawns `program args…` in a new process group with stdout and stderr
    /// appended to `log`.
    pub(crate) fn spawn(program: &Path, args: &[String], log: &Path) -> Result<Proc> {
        let open = || {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .map_err(|e| TestnetError::io(format!("opening log {}", log.display()), e))
        };
        let (out, err) = (open()?, open()?);
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .process_group(0);
        die_with_this_process(&mut command);
        let child = spawn_on_keeper_thread(command)
            .map_err(|e| TestnetError::io(format!("starting {}", program.display()), e))?;
        tracing::debug!(pid = child.id(), program = %program.display(), "spawned");
        Ok(Proc {
            child,
            reaped: false,
        })
    }

    /// The child's pid, which is also its process group id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `None` while running, else how it exited. Does not reap the child
    /// (see [`Proc`]).
    pub(crate) fn exit_status(&mut self) -> Option<String> {
        if self.reaped {
            return Some(match self.child.try_wait() {
                Ok(Some(status)) => status.to_string(),
                _ => "reaped".to_string(),
            });
        }
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        match waitid(Id::Pid(self.group()), flags) {
            Ok(WaitStatus::Exited(_, code)) => Some(format!("exit status: {code}")),
            Ok(WaitStatus::Signaled(_, signal, core_dumped)) => Some(format!(
                "signal: {} ({}){}",
                signal as i32,
                signal.as_str(),
                if core_dumped { " (core dumped)" } else { "" }
            )),
            Ok(_) => None,
            Err(e) => Some(format!("unknown ({e})")),
        }
    }

    /// Sends `signal` to the child's process group; a group that is gone is
    /// not an error.
    pub(crate) fn signal(&mut self, signal: Signal) -> Result<()> {
        if self.reaped {
            return Ok(());
        }
        match nix::sys::signal::killpg(self.group(), signal) {
            Ok(()) | Err(Errno::ESRCH) => Ok(()),
            Err(source) => Err(TestnetError::Signal {
                signal: signal.as_str(),
                pid: self.pid(),
                source,
            }),
        }
    }

    /// SIGKILLs the child's whole process group and reaps the child.
    pub(crate) fn kill_and_reap(&mut self) {
        if self.reaped {
            return;
        }
        // Even when the child itself has exited, what it started may live
        // on in its group.
        let _ = nix::sys::signal::killpg(self.group(), Signal::SIGKILL);
        if let Err(e) = self.child.wait() {
            tracing::warn!(pid = self.pid(), error = %e, "reaping a child failed");
        }
        self.reaped = true;
    }

    fn group(&self) -> Pid {
        // A pid always fits in pid_t; `Child::id` widens it to u32.
        Pid::from_raw(self.child.id() as i32)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}

/// Asks the kernel to SIGKILL the child when this process dies.
fn die_with_this_process(command: &mut Command) {
    let parent = Pid::this();
    // SAFETY: the closure runs in the forked child, before exec, where only
    // async-signal-safe code may run (another thread of the parent may have
    // held the allocator's or any other lock at the fork). It makes two raw
    // system calls, prctl(2) and getppid(2), reads errno, and builds an
    // `io::Error` from an errno code, which does not allocate; it captures
    // only a `Copy` pid. Nothing else.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            // If this process died between fork and prctl, the signal was
            // never sent: the child has been re-parented. Do not exec.
            if nix::unistd::getppid() != parent {
                return Err(Errno::ESRCH.into());
            }
            Ok(())
        });
    }
}

/// A spawn for the keeper thread, and where to send the child.
type SpawnJob = (Command, mpsc::SyncSender<std::io::Result<Child>>);

/// Spawns `command` on one long-lived thread.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits,
/// not the process. Tokio may retire the thread a node was started from
/// (blocking threads idle out; `block_in_place` hands a worker's core to a
/// new thread) and a test harness ends a test's thread while a shared
/// network lives on; forking from a thread that lives as long as the
/// process ties the children to the process.
fn spawn_on_keeper_thread(command: Command) -> std::io::Result<Child> {
    static KEEPER: Mutex<Option<mpsc::Sender<SpawnJob>>> = Mutex::new(None);
    let sender = {
        let mut keeper = KEEPER.lock().unwrap_or_else(|e| e.into_inner());
        match &*keeper {
            Some(sender) => sender.clone(),
            None => {
                let (sender, jobs) = mpsc::channel::<SpawnJob>();
                std::thread::Builder::new()
                    .name("weft-testnet-spawner".into())
                    .spawn(move || {
                        for (mut command, reply) in jobs {
                            let _ = reply.send(command.spawn());
                        }
                    })?;
                keeper.insert(sender).clone()
            }
        }
    };
    let (reply, answer) = mpsc::sync_channel(1);
    let gone = || std::io::Error::other("the weft-testnet spawner thread is gone");
    sender.send((command, reply)).map_err(|_| gone())?;
    answer.recv().map_err(|_| gone())?
}

/// The last `lines` lines of a log file.
///
/// A process that dies without a word usually could not write at all (a
/// full disk, a removed home), so an empty or unreadable log says so, with
/// the free space where it lives.
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    const MAX_BYTES: u64 = 64 * 1024;
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) => return format!("(cannot read the log: {e}; {})", free_space(path)),
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(MAX_BYTES)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    if all.is_empty() {
        return format!("(the log is empty; {})", free_space(path));
    }
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Free space on the filesystem holding `path` (or its nearest existing
/// ancestor), for error messages.
fn free_space(path: &Path) -> String {
    let existing = path.ancestors().find(|p| p.exists()).unwrap_or(path);
    match nix::sys::statvfs::statvfs(existing) {
        Ok(stat) => {
            let free = stat.blocks_available() as u128 * stat.fragment_size() as u128;
            format!(
                "{} MiB free on the filesystem of {}",
                free / (1024 * 1024),
                existing.display()
            )
        }
        Err(e) => format!("free space unknown: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// Whether `pid` is a live process: it exists and is not a zombie (a
    /// killed orphan stays a zombie until its new parent reaps it, and in
    /// some containers nobody does).
    fn alive(pid: i32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            // "pid (comm) S …": the state follows the last ')'.
            Ok(stat) => !matches!(
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.trim_start().chars().next()),
                Some('Z' | 'X')
            ),
            Err(_) => false,
        }
    }

    fn eventually(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
        let start = Instant::now();
        while !done() {
            assert!(start.elapsed() < timeout, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for a pid that a test child writes into `file`.
    fn read_pid(file: &Path) -> i32 {
        let mut pid = None;
        eventually(
            "the child to write its pid",
            Duration::from_secs(20),
            || {
                pid = std::fs::read_to_string(file)
                    .ok()
                    .and_then(|t| t.trim().parse().ok());
                pid.is_some()
            },
        );
        pid.unwrap_or_default()
    }

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("weft-testnet-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A shell that starts `sleep` in the background, writes its pid and
    /// waits: a process with a child of its own, as in the issue.
    fn shell_with_a_child(dir: &Path) -> (Proc, i32) {
        let pid_file = dir.join("child.pid");
        let script = format!("sleep 1000 & echo $! > '{}'; wait", pid_file.display());
        let proc = Proc::spawn(
            Path::new("sh"),
            &["-c".to_string(), script],
            &dir.join("sh.log"),
        )
        .unwrap();
        let child = read_pid(&pid_file);
        (proc, child)
    }

    #[test]
    fn dropping_a_process_kills_its_whole_group() {
        let dir = temp_dir("group-drop");
        let (proc, child) = shell_with_a_child(&dir);
        let leader = proc.pid() as i32;
        assert!(alive(leader) && alive(child));
        drop(proc);
        // The leader is reaped by the drop; its child is killed with it.
        assert!(!alive(leader));
        eventually("the grandchild to die", Duration::from_secs(5), || {
            !alive(child)
        });
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn signals_reach_the_whole_group() {
        let dir = temp_dir("group-signal");
        let (mut proc, child) = shell_with_a_child(&dir);
        proc.signal(Signal::SIGTERM).unwrap();
        eventually(
            "the group to exit on SIGTERM",
            Duration::from_secs(5),
            || proc.exit_status().is_some() && !alive(child),
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_exited_child_is_reported_but_kept_until_reaped() {
        let dir = temp_dir("zombie");
        let mut proc = Proc::spawn(
            Path::new("sh"),
            &["-c".to_string(), "exit 3".to_string()],
            &dir.join("sh.log"),
        )
        .unwrap();
        let pid = proc.pid();
        eventually("the child to exit", Duration::from_secs(5), || {
            proc.exit_status().is_some()
        });
        assert_eq!(proc.exit_status().as_deref(), Some("exit status: 3"));
        // Still a zombie of ours: its pid (and group id) cannot be reused
        // while we may still signal the group.
        assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
        proc.signal(Signal::SIGTERM).unwrap();
        proc.kill_and_reap();
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
        assert_eq!(proc.exit_status().as_deref(), Some("exit status: 3"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Set for the helper below when it runs in a child test process.
    const PDEATHSIG_PID_FILE: &str = "WEFT_TESTNET_PDEATHSIG_PID_FILE";

    #[test]
    fn children_die_when_the_spawning_process_is_sigkilled() {
        let dir = temp_dir("pdeathsig");
        let pid_file = dir.join("sleeper.pid");
        // This test binary again, running only the helper: it spawns a
        // sleeper through `Proc` and waits to be killed.
        let mut helper = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "process::tests::spawn_a_sleeper_then_wait_to_be_killed",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(PDEATHSIG_PID_FILE, &pid_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let sleeper = read_pid(&pid_file);
        assert!(alive(sleeper));
        // SIGKILL: no Drop runs in the helper; only the kernel can act.
        helper.kill().unwrap();
        helper.wait().unwrap();
        eventually(
            "the orphaned sleeper to be killed",
            Duration::from_secs(10),
            || !alive(sleeper),
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Helper process of the test above; does nothing when run by hand.
    #[test]
    #[ignore = "run by children_die_when_the_spawning_process_is_sigkilled in its own process"]
    fn spawn_a_sleeper_then_wait_to_be_killed() {
        let Some(pid_file) = std::env::var_os(PDEATHSIG_PID_FILE) else {
            return;
        };
        let pid_file = std::path::PathBuf::from(pid_file);
        let log = pid_file.with_extension("log");
        let proc = Proc::spawn(Path::new("sleep"), &["1000".to_string()], &log).unwrap();
        // Written atomically so the parent never reads half a pid.
        let tmp = pid_file.with_extension("tmp");
        std::fs::write(&tmp, proc.pid().to_string()).unwrap();
        std::fs::rename(&tmp, &pid_file).unwrap();
        std::thread::sleep(Duration::from_secs(60));
        // Not reached in the test: the parent SIGKILLs this process first.
        drop(proc);
    }

    #[test]
    fn log_tail_returns_the_last_lines() {
        let dir = std::env::temp_dir().join(format!("weft-testnet-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.log");
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, text).unwrap();
        assert_eq!(log_tail(&path, 2), "line 98\nline 99");
        let missing = log_tail(&dir.join("missing.log"), 5);
        assert!(
            missing.starts_with("(cannot read the log:") && missing.contains("MiB free"),
            "{missing}"
        );
        std::fs::write(dir.join("empty.log"), "").unwrap();
        let empty = log_tail(&dir.join("empty.log"), 5);
        assert!(
            empty.starts_with("(the log is empty;") && empty.contains("MiB free"),
            "{empty}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
