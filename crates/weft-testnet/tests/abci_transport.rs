//! Local Weft networks connect CometBFT to the sequencer over a Unix socket
//! in the node's home by default (no TCP on every ABCI round trip), survive
//! a SIGKILL that leaves the socket file behind, and can still use TCP.
//! Needs `cargo build --workspace --bins` (real CometBFT and sequencer).

use std::{os::unix::fs::FileTypeExt, time::Duration};

use weft_testnet::{AbciEndpoint, AbciTransport, Testnet, TestnetConfig};

fn config(transport: AbciTransport) -> TestnetConfig {
    TestnetConfig {
        validators: 1,
        timeout_commit: Duration::from_millis(200),
        abci_transport: transport,
        ..TestnetConfig::default()
    }
}

fn proxy_app(net: &Testnet) -> String {
    let text =
        std::fs::read_to_string(net.nodes()[0].cometbft_home().join("config/config.toml")).unwrap();
    let config: toml::Table = text.parse().unwrap();
    config["proxy_app"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weft_node_talks_abci_over_a_unix_socket_by_default() {
    // Nothing said about the transport.
    let cfg = TestnetConfig {
        validators: 1,
        timeout_commit: Duration::from_millis(200),
        ..TestnetConfig::default()
    };
    let home = cfg.home.clone();
    let net = Testnet::create(cfg).await.expect("creating the network");
    let node = net.nodes()[0].clone();
    let socket = node.home.join("abci.sock");
    assert_eq!(node.abci, AbciEndpoint::Unix(socket.clone()));
    assert_eq!(proxy_app(&net), format!("unix://{}", socket.display()));
    assert_eq!(node.abci_address(), format!("unix://{}", socket.display()));

    net.start().await.expect("starting");
    let first = net.wait_for_height(0, 3, Duration::from_secs(60)).await;
    let is_socket = std::fs::metadata(&socket).map(|m| m.file_type().is_socket());
    // SIGKILL leaves the socket file behind; the next sequencer replaces
    // it and CometBFT reconnects (the ABCI handshake replays nothing lost).
    net.kill_node(0).expect("killing");
    let stale = socket.exists();
    let restarted = net.start_node(0).await;
    let h = first.as_ref().copied().unwrap_or(0);
    let after = net.wait_for_height(0, h + 2, Duration::from_secs(60)).await;
    net.shutdown().await.expect("stopping");
    first.expect("blocks over the Unix socket");
    assert!(
        is_socket.expect("socket file"),
        "{} is a socket",
        socket.display()
    );
    assert!(stale, "a killed sequencer leaves its socket file");
    restarted.expect("restarting over a stale socket file");
    after.expect("blocks after the restart");
    std::fs::remove_dir_all(home).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_stays_available_as_an_option() {
    let cfg = config(AbciTransport::Tcp);
    let home = cfg.home.clone();
    let net = Testnet::create(cfg).await.expect("creating the network");
    let node = net.nodes()[0].clone();
    assert_eq!(node.abci, AbciEndpoint::Tcp(node.ports.abci));
    assert_eq!(
        proxy_app(&net),
        format!("tcp://127.0.0.1:{}", node.ports.abci)
    );
    net.start().await.expect("starting");
    let height = net.wait_for_height(0, 3, Duration::from_secs(60)).await;
    net.shutdown().await.expect("stopping");
    height.expect("blocks over TCP");
    assert!(!node.home.join("abci.sock").exists());
    std::fs::remove_dir_all(home).ok();
}
