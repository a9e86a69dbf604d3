//! The two child processes of one node: spawning them with their output
//! appended to log files, signalling them and reaping them.

use std::{
    fs::OpenOptions,
    io::{Read, Seek, SeekFrom},
    path::Path,
    process::{Child, Command, Stdio},
};

use nix::{sys::signal::Signal, unistd::Pid};

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

/// A spawned child process.
#[derive(Debug)]
pub(crate) struct Proc {
    pub(crate) child: Child,
}

impl Proc {
    /// Spawns `program args…` with stdout and stderr appended to `log`.
    pub(crate) fn spawn(program: &Path, args: &[String], log: &Path) -> Result<Proc> {
        let open = || {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .map_err(|e| TestnetError::io(format!("opening log {}", log.display()), e))
        };
        let (out, err) = (open()?, open()?);
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .map_err(|e| TestnetError::io(format!("starting {}", program.display()), e))?;
        tracing::debug!(pid = child.id(), program = %program.display(), "spawned");
        Ok(Proc { child })
    }

    /// `None` while running, else how it exited (reaping it).
    pub(crate) fn exit_status(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(None) => None,
            Ok(Some(status)) => Some(status.to_string()),
            Err(e) => Some(format!("unknown ({e})")),
        }
    }

    /// Sends `signal`; a process that already exited is not an error.
    pub(crate) fn signal(&mut self, signal: Signal) -> Result<()> {
        if self.exit_status().is_some() {
            return Ok(());
        }
        let pid = self.child.id();
        match nix::sys::signal::kill(Pid::from_raw(pid as i32), signal) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(source) => Err(TestnetError::Signal {
                signal: signal.as_str(),
                pid,
                source,
            }),
        }
    }

    /// SIGKILLs and reaps the process.
    pub(crate) fn kill_and_reap(&mut self) {
        if self.exit_status().is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
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
    use super::*;

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
