//! The saturation search: the highest offered rate whose p99 inclusion
//! latency stays under twice the block interval. It doubles the rate while
//! steps pass, then bisects (geometrically) between the highest pass and
//! the lowest failure until they are close or the step budget is spent.

use serde::Serialize;

/// How the search proceeds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SearchConfig {
    /// First offered rate (transactions per second).
    pub start_rate: f64,
    /// Never offer less.
    pub min_rate: f64,
    /// Never offer more.
    pub max_rate: f64,
    /// Most steps.
    pub max_steps: usize,
    /// Stop once the lowest failure is within this factor of the highest
    /// pass (e.g. 1.25: the answer is within 25 %).
    pub resolution: f64,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            start_rate: 100.0,
            min_rate: 1.0,
            max_rate: 100_000.0,
            max_steps: 6,
            resolution: 1.25,
        }
    }
}

/// What a step showed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepOutcome {
    /// The offered rate.
    pub rate: f64,
    /// p99 within twice the block interval (and nothing else broke).
    pub passed: bool,
    /// Transactions per second actually included: where a failing first
    /// step points the next one.
    pub included_rate: f64,
}

/// A saturation search in progress.
#[derive(Debug, Clone)]
pub struct SaturationSearch {
    config: SearchConfig,
    highest_pass: Option<f64>,
    lowest_fail: Option<f64>,
    steps: usize,
    next: Option<f64>,
}

impl SaturationSearch {
    /// A search starting at `config.start_rate` (clamped to the bounds).
    pub fn new(config: SearchConfig) -> Self {
        let start = clamp(config.start_rate, &config);
        SaturationSearch {
            config,
            highest_pass: None,
            lowest_fail: None,
            steps: 0,
            next: (config.max_steps > 0).then_some(start),
        }
    }

    /// The rate to offer next; `None` once the search is over.
    pub fn next_rate(&self) -> Option<f64> {
        self.next
    }

    /// Records a step's outcome and decides the next rate.
    pub fn record(&mut self, outcome: StepOutcome) {
        self.steps += 1;
        let rate = outcome.rate;
        if outcome.passed {
            self.highest_pass = Some(self.highest_pass.map_or(rate, |p| p.max(rate)));
        } else {
            self.lowest_fail = Some(self.lowest_fail.map_or(rate, |f| f.min(rate)));
        }
        let c = self.config;
        self.next = if self.steps >= c.max_steps {
            None
        } else {
            match (self.highest_pass, self.lowest_fail) {
                (Some(pass), None) if pass >= c.max_rate => None,
                (Some(pass), None) => Some(clamp(pass * 2.0, &c)),
                (None, Some(fail)) if fail <= c.min_rate => None,
                // Nothing passed yet: aim a little under what the failing
                // step managed to include, but at least halve nothing less
                // than a quarter of it, so a broken step still makes progress.
                (None, Some(fail)) => {
                    let aim = 0.85 * outcome.included_rate;
                    Some(clamp(aim.clamp(fail / 4.0, fail / 1.5), &c))
                }
                (Some(pass), Some(fail)) if fail <= pass * c.resolution => None,
                (Some(pass), Some(fail)) => Some(clamp((pass * fail).sqrt(), &c)),
                (None, None) => None,
            }
        };
    }

    /// The highest rate that passed.
    pub fn saturation(&self) -> Option<f64> {
        self.highest_pass
    }

    /// The lowest rate that failed.
    pub fn lowest_failure(&self) -> Option<f64> {
        self.lowest_fail
    }
}

fn clamp(rate: f64, c: &SearchConfig) -> f64 {
    let r = if rate.is_finite() { rate } else { c.min_rate };
    r.clamp(c.min_rate, c.max_rate.max(c.min_rate))
        .round()
        .max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a search against a system that passes up to `capacity`.
    fn run(config: SearchConfig, capacity: f64) -> (Vec<f64>, Option<f64>) {
        let mut s = SaturationSearch::new(config);
        let mut rates = Vec::new();
        while let Some(rate) = s.next_rate() {
            rates.push(rate);
            s.record(StepOutcome {
                rate,
                passed: rate <= capacity,
                included_rate: rate.min(capacity * 1.05),
            });
        }
        (rates, s.saturation())
    }

    #[test]
    fn doubles_then_bisects_to_the_resolution() {
        let cfg = SearchConfig {
            start_rate: 1000.0,
            ..Default::default()
        };
        let (rates, found) = run(cfg, 3000.0);
        assert_eq!(&rates[..3], &[1000.0, 2000.0, 4000.0]);
        // Between 2000 (pass) and 4000 (fail): 2828 passes, then 3363 fails,
        // and 3363 / 2828 < 1.25 ends it.
        assert_eq!(&rates[3..], &[2828.0, 3363.0]);
        assert_eq!(found, Some(2828.0));
    }

    #[test]
    fn a_failing_start_aims_below_what_was_included() {
        let cfg = SearchConfig {
            start_rate: 10_000.0,
            ..Default::default()
        };
        let (rates, found) = run(cfg, 2000.0);
        // Included 2100 at 10000 offered: next is 0.85 × 2100 = 1785, but
        // never more than 10000 / 1.5 nor less than 10000 / 4.
        assert_eq!(rates[1], 2500.0);
        let found = found.unwrap();
        assert!((2000.0 / 1.25..=2000.0).contains(&found), "{found}");
        assert!(rates.len() <= cfg.max_steps);
    }

    #[test]
    fn the_budget_and_bounds_end_the_search() {
        let cfg = SearchConfig {
            start_rate: 10.0,
            max_rate: 50.0,
            max_steps: 10,
            ..Default::default()
        };
        let (rates, found) = run(cfg, 1e9);
        assert_eq!(rates, vec![10.0, 20.0, 40.0, 50.0]);
        assert_eq!(found, Some(50.0));

        let cfg = SearchConfig {
            start_rate: 4.0,
            min_rate: 2.0,
            ..Default::default()
        };
        let (rates, found) = run(cfg, 0.5);
        assert_eq!(found, None);
        assert_eq!(*rates.last().unwrap(), 2.0);

        let cfg = SearchConfig {
            start_rate: 1000.0,
            max_steps: 2,
            ..Default::default()
        };
        assert_eq!(run(cfg, 1e9).0.len(), 2);
        let none = SaturationSearch::new(SearchConfig {
            max_steps: 0,
            ..Default::default()
        });
        assert_eq!(none.next_rate(), None);
    }

    #[test]
    fn the_lowest_failure_is_kept() {
        let mut s = SaturationSearch::new(SearchConfig::default());
        s.record(StepOutcome {
            rate: 100.0,
            passed: false,
            included_rate: 80.0,
        });
        assert_eq!(s.lowest_failure(), Some(100.0));
        assert_eq!(s.next_rate(), Some(67.0));
    }
}
