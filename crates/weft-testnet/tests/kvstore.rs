//! A network can run CometBFT's built-in `kvstore` instead of Weft (the
//! benchmarks' ceiling): one real CometBFT process per node, no sequencer.

use std::time::Duration;

use tendermint_rpc::{Client, HttpClient};
use weft_core::transaction::MAX_TX_BYTES;
use weft_testnet::{App, Testnet, TestnetConfig};

/// Sends a transaction of exactly `MAX_TX_BYTES` (the largest the
/// sequencer's CheckTx accepts) through the node's RPC as a JSON-RPC POST:
/// with CometBFT's default `rpc.max_body_bytes` the request itself was
/// refused (HTTP 400), which the sequencer's `POST /v1/tx` turned into 502.
async fn broadcast_the_largest_valid_tx(rpc_url: &str) -> Result<(), String> {
    // kvstore's CheckTx wants `key=value`.
    let mut tx = vec![b'v'; MAX_TX_BYTES];
    tx[0] = b'k';
    tx[1] = b'=';
    let client = HttpClient::new(rpc_url).map_err(|e| e.to_string())?;
    let response = client
        .broadcast_tx_sync(tx)
        .await
        .map_err(|e| format!("broadcast_tx_sync: {e}"))?;
    if response.code.is_ok() {
        Ok(())
    } else {
        Err(format!("CheckTx refused it: {response:?}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kvstore_network_makes_blocks_with_cometbft_alone() {
    let cfg = TestnetConfig {
        validators: 1,
        timeout_commit: Duration::from_millis(200),
        app: App::Kvstore,
        ..TestnetConfig::default()
    };
    let home = cfg.home.clone();
    let net = Testnet::create(cfg).await.expect("creating the network");
    assert_eq!(net.app(), App::Kvstore);
    let config =
        std::fs::read_to_string(net.nodes()[0].cometbft_home().join("config/config.toml")).unwrap();
    assert!(config.contains("proxy_app = \"kvstore\""), "{config}");

    net.start().await.expect("starting");
    let height = net
        .wait_all_for_height(3, Duration::from_secs(60))
        .await
        .map(|()| true);
    let largest = broadcast_the_largest_valid_tx(&net.nodes()[0].rpc_url()).await;
    let pids = net.pids(0).unwrap();
    let running = net.check_running(0);
    net.shutdown().await.expect("stopping");
    let stopped = net.pids(0).unwrap();
    height.expect("kvstore blocks");
    largest.expect("the largest valid transaction fits CometBFT's RPC and mempool limits");
    running.expect("node running");
    assert!(pids.cometbft.is_some());
    assert_eq!(pids.sequencer, None, "kvstore runs inside CometBFT");
    assert_eq!(stopped.cometbft, None);
    std::fs::remove_dir_all(home).ok();
}
