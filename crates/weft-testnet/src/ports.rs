//! The port plan for networks on one machine: every node gets a block of 10
//! loopback ports, and each network gets a base that does not collide.
//!
//! Node `i` of a network with base `b` uses `b + 10*i + {0: p2p, 1: CometBFT
//! RPC, 2: ABCI, 3: sequencer HTTP API}`. Nothing else in Weft hard-codes ports.

use std::{
    collections::{hash_map::RandomState, HashSet},
    hash::{BuildHasher, Hasher},
    net::TcpListener,
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

/// Lowest random base (inclusive).
const RANDOM_BASE_MIN: u16 = 20_000;
/// Highest random base (exclusive).
const RANDOM_BASE_MAX: u16 = 60_000;
/// Random bases are multiples of this.
const RANDOM_BASE_STEP: u16 = 100;
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
    /// free on 127.0.0.1), else at a random free base in [20000, 60000).
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
    /// this process.
    pub fn random(nodes: usize) -> Result<Self> {
        let slots = (RANDOM_BASE_MAX - RANDOM_BASE_MIN) / RANDOM_BASE_STEP;
        for _ in 0..RANDOM_ATTEMPTS {
            let base =
                RANDOM_BASE_MIN + (random_u64() % u64::from(slots)) as u16 * RANDOM_BASE_STEP;
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
    fn random_plans_are_in_range_distinct_and_free() {
        let a = PortPlan::random(4).unwrap();
        let b = PortPlan::random(4).unwrap();
        for plan in [a, b] {
            assert!((RANDOM_BASE_MIN..RANDOM_BASE_MAX).contains(&plan.base));
            assert_eq!(plan.base % RANDOM_BASE_STEP, 0);
        }
        assert_ne!(a.base, b.base);
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
