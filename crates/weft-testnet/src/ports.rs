//! The port plan for networks on one machine: every node gets a block of 10
//! loopback ports, and each network gets a base that does not collide.
//!
//! Node `i` of a network with base `b` uses `b + 10*i + {0: p2p, 1: CometBFT
//! RPC, 2: ABCI, 3: sequencer HTTP API}`. Nothing else in Weft hard-codes ports.
//!
//! Random blocks stay out of the kernel's ephemeral range: a port there can
//! be handed to any outgoing connection (CometBFT dialling a peer, a test's
//! HTTP client) between the moment the plan checks it is free and the moment
//! the node binds it, and the node then fails to start.

use std::{
    collections::{hash_map::RandomState, HashSet},
    hash::{BuildHasher, Hasher},
    net::TcpListener,
    ops::RangeInclusive,
    sync::Mutex,
};

use serde::{Deserialize, Serialize};

use crate::{Result, TestnetError};

/// Ports reserved for each node.
pub const PORTS_PER_NODE: u16 = 10;
/// Base used by `weft devnet up`: node0 then gets CometBFT's well-known ports
/// (p2p 26656, RPC 26657, ABCI 26658) and the sequencer API on 26659.
pub const DEVNET_BASE_PORT: u16 = 26656;
/// The CometBFT RPC URL of node0 of a devnet on [`DEVNET_BASE_PORT`]; the
/// default `--node` of the `weft` CLI.
pub const DEVNET_RPC_URL: &str = "http://127.0.0.1:26657";

/// Lowest random base (inclusive); the ports below hold many well-known
/// services.
const RANDOM_BASE_MIN: u16 = 20_000;
/// Random bases are multiples of this.
const RANDOM_BASE_STEP: u16 = 100;
/// Nodes of a devnet whose ports random plans leave alone, so a test
/// network never takes the ports `weft devnet up` uses by default.
const DEVNET_KEPT_NODES: u16 = 10;
/// Where Linux publishes its ephemeral (local) port range.
const EPHEMERAL_RANGE_FILE: &str = "/proc/sys/net/ipv4/ip_local_port_range";
/// Linux's default ephemeral port range, assumed when
/// [`EPHEMERAL_RANGE_FILE`] cannot be read.
pub const LINUX_DEFAULT_EPHEMERAL_PORTS: RangeInclusive<u16> = 32_768..=60_999;
/// Random bases tried before giving up.
const RANDOM_ATTEMPTS: usize = 20;

/// Bases handed out in this process, so parallel networks in one test binary
/// never pick the same block even before their processes bind.
static RESERVED_BASES: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// The ports of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodePorts {
    /// CometBFT p2p.
    pub p2p: u16,
    /// CometBFT RPC.
    pub rpc: u16,
    /// ABCI (the sequencer listens, CometBFT connects).
    pub abci: u16,
    /// Sequencer HTTP API.
    pub api: u16,
}

impl NodePorts {
    /// All ports, in plan order.
    pub fn all(&self) -> [u16; 4] {
        [self.p2p, self.rpc, self.abci, self.api]
    }
}

/// The ports of a whole network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortPlan {
    /// First port of node0's block.
    pub base: u16,
    /// Number of nodes.
    pub nodes: usize,
}

impl PortPlan {
    /// A plan at a fixed base; fails if the ports do not fit below 65536.
    pub fn at(base: u16, nodes: usize) -> Result<Self> {
        let last = u32::from(base) + u32::from(PORTS_PER_NODE) * nodes as u32;
        if base == 0 || nodes == 0 || last > u32::from(u16::MAX) + 1 {
            return Err(TestnetError::InvalidConfig(format!(
                "{nodes} nodes do not fit in ports starting at {base}"
            )));
        }
        Ok(PortPlan { base, nodes })
    }

    /// The plan for a network: at `base` when given (checking every port is
    /// free on 127.0.0.1), else at a random free base outside the kernel's
    /// ephemeral port range (see [`PortPlan::random`]).
    pub fn choose(base: Option<u16>, nodes: usize) -> Result<Self> {
        match base {
            Some(base) => {
                let plan = Self::at(base, nodes)?;
                if let Some(port) = plan.first_busy_port() {
                    return Err(TestnetError::PortInUse { port });
                }
                Ok(plan)
            }
            None => Self::random(nodes),
        }
    }

    /// A random base whose ports are all free, not handed out before in
    /// this process, and whose whole block lies outside the kernel's
    /// ephemeral port range ([`ephemeral_port_range`]) and the default devnet
    /// ports.
    pub fn random(nodes: usize) -> Result<Self> {
        let ephemeral = ephemeral_port_range();
        let mut bases = random_bases(nodes, &ephemeral);
        if bases.is_empty() {
            // The ephemeral range leaves no room (a host configured to use
            // nearly every port for outgoing connections): a block that may
            // race with outgoing connections beats not running at all.
            tracing::warn!(
                ephemeral = ?ephemeral,
                "no port block outside the ephemeral range; picking inside it"
            );
            bases = random_bases(nodes, &(0..=0));
        }
        if bases.is_empty() {
            return Err(TestnetError::InvalidConfig(format!(
                "{nodes} nodes do not fit in ports starting at {RANDOM_BASE_MIN}"
            )));
        }
        for _ in 0..RANDOM_ATTEMPTS {
            let base = bases[(random_u64() % bases.len() as u64) as usize];
            let Ok(plan) = Self::at(base, nodes) else {
                continue;
            };
            if !reserve(base) {
                continue;
            }
            if plan.first_busy_port().is_none() {
                return Ok(plan);
            }
        }
        Err(TestnetError::NoFreePorts {
            ports: nodes * PORTS_PER_NODE as usize,
            attempts: RANDOM_ATTEMPTS,
        })
    }

    /// The ports of the whole plan, first to last.
    pub fn span(&self) -> RangeInclusive<u16> {
        let len = u32::from(PORTS_PER_NODE) * self.nodes as u32;
        // `at` guarantees base + len <= 65536.
        self.base..=(u32::from(self.base) + len - 1) as u16
    }

    /// The ports of node `i`.
    pub fn node(&self, i: usize) -> NodePorts {
        let start = self.base + PORTS_PER_NODE * i as u16;
        NodePorts {
            p2p: start,
            rpc: start + 1,
            abci: start + 2,
            api: start + 3,
        }
    }

    /// Every node's ports.
    pub fn all_nodes(&self) -> Vec<NodePorts> {
        (0..self.nodes).map(|i| self.node(i)).collect()
    }

    /// The first planned port that cannot be bound on 127.0.0.1.
    pub fn first_busy_port(&self) -> Option<u16> {
        self.all_nodes()
            .iter()
            .flat_map(NodePorts::all)
            .find(|port| TcpListener::bind(("127.0.0.1", *port)).is_err())
    }
}

/// The kernel's ephemeral port range, read from
/// `/proc/sys/net/ipv4/ip_local_port_range`; Linux's default when that file
/// is missing or unreadable (other systems, restricted containers).
pub fn ephemeral_port_range() -> RangeInclusive<u16> {
    std::fs::read_to_string(EPHEMERAL_RANGE_FILE)
        .ok()
        .and_then(|text| parse_port_range(&text))
        .unwrap_or(LINUX_DEFAULT_EPHEMERAL_PORTS)
}

/// Parses `ip_local_port_range`'s "<low> <high>" (tab-separated on Linux).
fn parse_port_range(text: &str) -> Option<RangeInclusive<u16>> {
    let mut numbers = text.split_whitespace().map(str::parse::<u16>);
    let low = numbers.next()?.ok()?;
    let high = numbers.next()?.ok()?;
    (numbers.next().is_none() && low <= high).then_some(low..=high)
}

/// Every base a random plan of `nodes` may take: multiples of
/// [`RANDOM_BASE_STEP`] from [`RANDOM_BASE_MIN`] whose whole block fits
/// below 65536 and overlaps neither `ephemeral` nor the default devnet ports.
fn random_bases(nodes: usize, ephemeral: &RangeInclusive<u16>) -> Vec<u16> {
    let devnet = DEVNET_BASE_PORT..=DEVNET_BASE_PORT + DEVNET_KEPT_NODES * PORTS_PER_NODE - 1;
    (RANDOM_BASE_MIN..=u16::MAX)
        .step_by(usize::from(RANDOM_BASE_STEP))
        .filter_map(|base| PortPlan::at(base, nodes).ok())
        .filter(|plan| {
            let span = plan.span();
            !overlaps(&span, ephemeral) && !overlaps(&span, &devnet)
        })
        .map(|plan| plan.base)
        .collect()
}

fn overlaps(a: &RangeInclusive<u16>, b: &RangeInclusive<u16>) -> bool {
    a.start() <= b.end() && b.start() <= a.end()
}

/// Marks `base` as used by this process; false if it already was.
fn reserve(base: u16) -> bool {
    let mut guard = RESERVED_BASES.lock().unwrap_or_else(|e| e.into_inner());
    guard.get_or_insert_with(HashSet::new).insert(base)
}

/// A random number from the standard library's per-process hash seed, the
/// clock and the pid: enough to spread test networks over the port range.
fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    if let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(now.as_nanos());
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_blocks_are_ten_apart_with_fixed_offsets() {
        let plan = PortPlan::at(30_000, 3).unwrap();
        assert_eq!(
            plan.node(0),
            NodePorts {
                p2p: 30_000,
                rpc: 30_001,
                abci: 30_002,
                api: 30_003
            }
        );
        assert_eq!(plan.node(2).p2p, 30_020);
        assert_eq!(plan.node(2).api, 30_023);
        assert_eq!(plan.all_nodes().len(), 3);
    }

    #[test]
    fn devnet_rpc_url_is_node0_rpc_port() {
        let plan = PortPlan::at(DEVNET_BASE_PORT, 4).unwrap();
        assert_eq!(
            DEVNET_RPC_URL,
            format!("http://127.0.0.1:{}", plan.node(0).rpc)
        );
    }

    #[test]
    fn plans_that_overflow_the_port_range_are_refused() {
        assert!(PortPlan::at(65_500, 10).is_err());
        assert!(PortPlan::at(65_526, 1).is_ok());
        assert!(PortPlan::at(1000, 0).is_err());
    }

    #[test]
    fn random_plans_are_stepped_distinct_and_free() {
        let a = PortPlan::random(4).unwrap();
        let b = PortPlan::random(4).unwrap();
        for plan in [a, b] {
            assert!(plan.base >= RANDOM_BASE_MIN);
            assert_eq!(plan.base % RANDOM_BASE_STEP, 0);
            assert_eq!(plan.first_busy_port(), None);
        }
        assert_ne!(a.base, b.base);
    }

    #[test]
    fn random_plans_lie_outside_this_hosts_ephemeral_range() {
        let ephemeral = ephemeral_port_range();
        // Most of [20000, 65536) is ephemeral on a default Linux host, so a
        // plan that ignored the range would land in it within a few draws.
        for nodes in [1, 4, 4, 7, 10, 10, 10, 10] {
            let plan = PortPlan::random(nodes).unwrap();
            assert!(
                !overlaps(&plan.span(), &ephemeral),
                "plan {:?} overlaps the ephemeral range {ephemeral:?}",
                plan.span()
            );
        }
    }

    #[test]
    fn every_candidate_base_lies_outside_the_ephemeral_range_and_the_devnet() {
        for ephemeral in [
            LINUX_DEFAULT_EPHEMERAL_PORTS,
            ephemeral_port_range(),
            10_000..=40_000,
            // A block must not straddle either end of the range.
            32_705..=32_705,
            61_000..=61_000,
        ] {
            for nodes in [1, 4, 10, 50] {
                let bases = random_bases(nodes, &ephemeral);
                assert!(!bases.is_empty(), "{nodes} nodes, {ephemeral:?}");
                for base in bases {
                    let span = PortPlan::at(base, nodes).unwrap().span();
                    assert!(
                        span.end() < ephemeral.start() || span.start() > ephemeral.end(),
                        "{span:?} overlaps {ephemeral:?}"
                    );
                    assert!(
                        *span.end() < DEVNET_BASE_PORT || *span.start() >= DEVNET_BASE_PORT + 100,
                        "{span:?} overlaps the devnet ports"
                    );
                }
            }
        }
        // The default range leaves both the block below it and the one above.
        let bases = random_bases(4, &LINUX_DEFAULT_EPHEMERAL_PORTS);
        assert!(bases.contains(&20_000) && bases.contains(&32_700));
        assert!(bases.contains(&61_000) && bases.contains(&65_400));
        assert!(!bases.contains(&32_800) && !bases.contains(&60_900));
    }

    #[test]
    fn no_room_outside_the_range_leaves_no_candidates() {
        assert!(random_bases(4, &(1024..=65_535)).is_empty());
    }

    #[test]
    fn the_proc_port_range_format_is_parsed() {
        assert_eq!(parse_port_range("32768\t60999\n"), Some(32_768..=60_999));
        assert_eq!(parse_port_range(" 1024 65535 "), Some(1024..=65_535));
        assert_eq!(parse_port_range("60999 32768"), None);
        assert_eq!(parse_port_range("32768"), None);
        assert_eq!(parse_port_range("1 2 3"), None);
        assert_eq!(parse_port_range("a b"), None);
        assert_eq!(parse_port_range("70000 80000"), None);
    }

    #[test]
    fn a_plan_spans_ten_ports_per_node() {
        assert_eq!(PortPlan::at(30_000, 3).unwrap().span(), 30_000..=30_029);
        assert_eq!(PortPlan::at(65_526, 1).unwrap().span(), 65_526..=65_535);
    }

    #[test]
    fn a_busy_fixed_base_is_reported() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        match PortPlan::choose(Some(port), 1) {
            Err(TestnetError::PortInUse { port: p }) => assert_eq!(p, port),
            other => panic!("expected PortInUse, got {other:?}"),
        }
    }
}
