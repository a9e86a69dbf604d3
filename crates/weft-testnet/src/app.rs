//! Which ABCI application a network's nodes run: Weft's own sequencer, or
//! CometBFT's built-in `kvstore`, the ceiling benchmarks compare against.

use serde::{Deserialize, Serialize};

use crate::ports::NodePorts;

/// The ABCI application behind every CometBFT node of a network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum App {
    /// A `weft-sequencer` process per node, talking ABCI over TCP.
    #[default]
    Weft,
    /// CometBFT's in-process `kvstore` example (`proxy_app = "kvstore"`):
    /// no second process, no ABCI socket, state in memory. It does almost
    /// nothing, so it is the ceiling for any app on the same CometBFT.
    Kvstore,
}

impl App {
    /// `weft` or `kvstore`.
    pub fn name(self) -> &'static str {
        match self {
            App::Weft => "weft",
            App::Kvstore => "kvstore",
        }
    }

    /// CometBFT's `proxy_app` for a node with `ports`.
    pub fn proxy_app(self, ports: &NodePorts) -> String {
        match self {
            App::Weft => format!("tcp://127.0.0.1:{}", ports.abci),
            App::Kvstore => "kvstore".into(),
        }
    }

    /// Whether each node has a `weft-sequencer` process beside CometBFT.
    pub fn has_sequencer(self) -> bool {
        matches!(self, App::Weft)
    }
}

impl std::fmt::Display for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for App {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "weft" => Ok(App::Weft),
            "kvstore" => Ok(App::Kvstore),
            other => Err(format!("unknown app `{other}` (weft or kvstore)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_app_points_weft_at_its_abci_port_and_kvstore_in_process() {
        let ports = NodePorts {
            p2p: 30_000,
            rpc: 30_001,
            abci: 30_002,
            api: 30_003,
        };
        assert_eq!(App::Weft.proxy_app(&ports), "tcp://127.0.0.1:30002");
        assert_eq!(App::Kvstore.proxy_app(&ports), "kvstore");
        assert!(App::Weft.has_sequencer());
        assert!(!App::Kvstore.has_sequencer());
        assert_eq!(App::default(), App::Weft);
    }

    #[test]
    fn names_round_trip() {
        for app in [App::Weft, App::Kvstore] {
            assert_eq!(app.name().parse::<App>(), Ok(app));
            assert_eq!(app.to_string(), app.name());
        }
        assert!("kv".parse::<App>().is_err());
    }
}
