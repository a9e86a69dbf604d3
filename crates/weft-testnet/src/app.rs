//! Which ABCI application a network's nodes run: Weft's own sequencer, or
//! CometBFT's built-in `kvstore`, the ceiling benchmarks compare against.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The ABCI application behind every CometBFT node of a network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum App {
    /// A `weft-sequencer` process per node, talking ABCI over a Unix
    /// socket (or TCP, see [`AbciTransport`]).
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

    /// CometBFT's `proxy_app` for a node whose sequencer serves ABCI at
    /// `abci` (unused by kvstore, which runs inside CometBFT).
    pub fn proxy_app(self, abci: &AbciEndpoint) -> String {
        match self {
            App::Weft => abci.proxy_app(),
            App::Kvstore => "kvstore".into(),
        }
    }

    /// Whether each node has a `weft-sequencer` process beside CometBFT.
    pub fn has_sequencer(self) -> bool {
        matches!(self, App::Weft)
    }
}

/// How CometBFT reaches its node's sequencer in a local network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AbciTransport {
    /// A Unix domain socket in the node's home (`<home>/abci.sock`): no
    /// TCP/IP stack on every ABCI round trip (CheckTx, FinalizeBlock,
    /// Commit, …), which is what a local network measures and what the
    /// Helm chart runs. A home too deep for a socket path falls back to TCP.
    #[default]
    Unix,
    /// Loopback TCP on the node's ABCI port, as before.
    Tcp,
}

/// Longest Unix socket path: `sockaddr_un.sun_path` is 108 bytes on Linux,
/// one of them the terminating NUL (Rust's and tokio's binds refuse more).
pub const MAX_UNIX_SOCKET_PATH: usize = 107;

/// File name of a node's ABCI socket, in the node's home.
pub const ABCI_SOCKET_NAME: &str = "abci.sock";

/// Where one node's sequencer serves ABCI.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AbciEndpoint {
    /// `127.0.0.1:<port>`.
    Tcp(u16),
    /// A Unix socket at this (absolute) path.
    Unix(PathBuf),
}

impl AbciEndpoint {
    /// The endpoint for a node with home `node_home` and ABCI port `port`:
    /// `<node_home>/abci.sock` with [`AbciTransport::Unix`]; when that path
    /// is longer than a socket path may be, a socket in the temporary
    /// directory named by a hash of the home (so each node keeps its own);
    /// TCP (with a warning) only if even that does not fit.
    pub fn choose(transport: AbciTransport, node_home: &Path, port: u16) -> AbciEndpoint {
        match transport {
            AbciTransport::Tcp => AbciEndpoint::Tcp(port),
            AbciTransport::Unix => {
                let fits = |p: &Path| p.as_os_str().len() <= MAX_UNIX_SOCKET_PATH;
                let path = node_home.join(ABCI_SOCKET_NAME);
                if fits(&path) {
                    return AbciEndpoint::Unix(path);
                }
                let digest = weft_core::sha256(node_home.as_os_str().as_encoded_bytes());
                let short =
                    std::env::temp_dir().join(format!("weft-abci-{}.sock", &digest.to_hex()[..16]));
                if fits(&short) {
                    return AbciEndpoint::Unix(short);
                }
                tracing::warn!(
                    path = %path.display(),
                    max = MAX_UNIX_SOCKET_PATH,
                    "ABCI socket path too long for a Unix socket, in the home or the temporary directory; using TCP on 127.0.0.1:{port}"
                );
                AbciEndpoint::Tcp(port)
            }
        }
    }

    /// `weft-sequencer --abci-listen` value: `127.0.0.1:<port>` or
    /// `unix:///path`.
    pub fn listen_arg(&self) -> String {
        match self {
            AbciEndpoint::Tcp(port) => format!("127.0.0.1:{port}"),
            AbciEndpoint::Unix(path) => format!("unix://{}", path.display()),
        }
    }

    /// CometBFT's `proxy_app`: `tcp://127.0.0.1:<port>` or `unix:///path`.
    pub fn proxy_app(&self) -> String {
        match self {
            AbciEndpoint::Tcp(port) => format!("tcp://127.0.0.1:{port}"),
            AbciEndpoint::Unix(path) => format!("unix://{}", path.display()),
        }
    }

    /// The socket's path, for the Unix transport.
    pub fn socket_path(&self) -> Option<&Path> {
        match self {
            AbciEndpoint::Tcp(_) => None,
            AbciEndpoint::Unix(path) => Some(path),
        }
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
    fn proxy_app_points_weft_at_its_abci_endpoint_and_kvstore_in_process() {
        let tcp = AbciEndpoint::Tcp(30_002);
        assert_eq!(App::Weft.proxy_app(&tcp), "tcp://127.0.0.1:30002");
        assert_eq!(tcp.listen_arg(), "127.0.0.1:30002");
        let unix = AbciEndpoint::Unix("/tmp/net/node0/abci.sock".into());
        assert_eq!(
            App::Weft.proxy_app(&unix),
            "unix:///tmp/net/node0/abci.sock"
        );
        assert_eq!(unix.listen_arg(), "unix:///tmp/net/node0/abci.sock");
        assert_eq!(App::Kvstore.proxy_app(&unix), "kvstore");
        assert_eq!(App::Kvstore.proxy_app(&tcp), "kvstore");
        assert!(App::Weft.has_sequencer());
        assert!(!App::Kvstore.has_sequencer());
        assert_eq!(App::default(), App::Weft);
    }

    #[test]
    fn a_unix_socket_is_the_default_and_long_homes_get_one_in_the_temp_dir() {
        assert_eq!(AbciTransport::default(), AbciTransport::Unix);
        let home = Path::new("/tmp/weft-testnet-1/node0");
        assert_eq!(
            AbciEndpoint::choose(AbciTransport::Unix, home, 26_658),
            AbciEndpoint::Unix(home.join("abci.sock"))
        );
        assert_eq!(
            AbciEndpoint::choose(AbciTransport::Tcp, home, 26_658),
            AbciEndpoint::Tcp(26_658)
        );
        // 107 bytes fit (sun_path's 108 with the NUL); 108 do not.
        let at = |len: usize| {
            let dir = format!("/{}", "d".repeat(len - 1 - "/abci.sock".len()));
            assert_eq!(Path::new(&dir).join("abci.sock").as_os_str().len(), len);
            AbciEndpoint::choose(AbciTransport::Unix, Path::new(&dir), 1)
        };
        assert!(
            matches!(at(107), AbciEndpoint::Unix(p) if p.as_os_str().len() == 107 && p.ends_with("abci.sock")),
            "a 107-byte path in the home fits"
        );
        // Longer homes get a socket in the temporary directory, one per home.
        for len in [108, 300] {
            match at(len) {
                AbciEndpoint::Unix(p) => {
                    assert!(p.starts_with(std::env::temp_dir()), "{}", p.display());
                    assert!(p.as_os_str().len() <= MAX_UNIX_SOCKET_PATH);
                }
                other => panic!("{other:?}"),
            }
        }
        assert_ne!(at(108), at(300));
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
