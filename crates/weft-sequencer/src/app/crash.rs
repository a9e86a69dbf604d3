//! TEST ONLY crash points (`--unsafe-test-crash-at`): the process aborts
//! at a chosen point of a block's commit, as a power cut or an OOM kill
//! would stop it there, so the fault tests can show the node comes back
//! through CometBFT's ABCI handshake with the same app hash as the others.

/// Where in a block's commit the process aborts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CrashPoint {
    /// FinalizeBlock has answered (CometBFT holds the block's results and
    /// has called Commit); nothing of the height is written yet.
    AfterFinalizeBlock,
    /// Inside Commit's storage write: every row of the height (JMT nodes
    /// and values, state, meta, indexes) is staged in the store's write
    /// transaction, which has not committed.
    MidCommit,
}

/// A crash point and the height it fires at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnsafeTestCrash {
    /// Where.
    pub point: CrashPoint,
    /// At which height; `None`: the first block this process commits.
    pub height: Option<u64>,
}

impl UnsafeTestCrash {
    /// True when this crash fires at `point` of `height`.
    pub fn hits(&self, point: CrashPoint, height: u64) -> bool {
        self.point == point && self.height.is_none_or(|h| h == height)
    }

    /// Aborts the process if `crash` fires at `point` of `height`.
    pub fn check(crash: Option<Self>, point: CrashPoint, height: u64) {
        if crash.is_some_and(|c| c.hits(point, height)) {
            tracing::error!(?point, height, "unsafe-test-crash: aborting");
            // stderr is unbuffered: the line is in the log before the abort.
            eprintln!(
                "weft-sequencer: unsafe-test-crash: aborting at {point:?} of height {height}"
            );
            // No unwinding, no destructors, no flush: as abrupt as a kill.
            std::process::abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crash_fires_only_at_its_point_and_height() {
        let at = UnsafeTestCrash {
            point: CrashPoint::MidCommit,
            height: Some(7),
        };
        assert!(at.hits(CrashPoint::MidCommit, 7));
        assert!(!at.hits(CrashPoint::MidCommit, 8));
        assert!(!at.hits(CrashPoint::AfterFinalizeBlock, 7));
        let first = UnsafeTestCrash {
            point: CrashPoint::AfterFinalizeBlock,
            height: None,
        };
        assert!(first.hits(CrashPoint::AfterFinalizeBlock, 1));
        assert!(first.hits(CrashPoint::AfterFinalizeBlock, 90));
        assert!(!first.hits(CrashPoint::MidCommit, 1));
        // No crash configured: check returns (the test would abort otherwise).
        UnsafeTestCrash::check(None, CrashPoint::MidCommit, 7);
        UnsafeTestCrash::check(Some(at), CrashPoint::MidCommit, 6);
    }
}
