//! Local Weft networks connect CometBFT to the sequencer over a Unix socket
//! in the node's home by default (no TCP on every ABCI round trip), survive
//! a SIGKILL that leaves the socket file behind, fall back to a socket in
//! the temporary directory (removed with the network) for a home too long
//! for a socket path, and can still use TCP.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_home_too_long_for_a_socket_gets_one_in_the_temp_dir_removed_with_the_network() {
    let home = std::env::temp_dir().join(format!(
        "weft-testnet-long-{}-{}",
        std::process::id(),
        "h".repeat(100)
    ));
    let cfg = TestnetConfig {
        home: home.clone(),
        ..config(AbciTransport::Unix)
    };
    let net = Testnet::create(cfg).await.expect("creating the network");
    let AbciEndpoint::Unix(socket) = net.nodes()[0].abci.clone() else {
        panic!("not a Unix socket: {:?}", net.nodes()[0].abci);
    };
    assert!(socket.starts_with(std::env::temp_dir()) && !socket.starts_with(&home));
    assert!(socket
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("weft-abci-"));

    // Removed at shutdown...
    net.start().await.expect("starting");
    let first = net.wait_for_height(0, 2, Duration::from_secs(60)).await;
    let was_socket = socket.exists();
    net.shutdown().await.expect("stopping");
    let gone_after_shutdown = !socket.exists();
    // ...and when the network is dropped while running.
    net.start().await.expect("starting again");
    let h = first.as_ref().copied().unwrap_or(0);
    let again = net.wait_for_height(0, h + 1, Duration::from_secs(60)).await;
    let was_socket_again = socket.exists();
    drop(net);
    first.expect("blocks over the socket in the temp dir");
    again.expect("blocks after starting again");
    assert!(
        was_socket && was_socket_again,
        "the sequencer served {}",
        socket.display()
    );
    assert!(
        gone_after_shutdown,
        "{} removed at shutdown",
        socket.display()
    );
    assert!(!socket.exists(), "{} removed on drop", socket.display());
    std::fs::remove_dir_all(home).ok();
}
