//! A network can run CometBFT's built-in `kvstore` instead of Weft (the
//! benchmarks' ceiling): one real CometBFT process per node, no sequencer.

use std::time::Duration;

use weft_testnet::{App, Testnet, TestnetConfig};

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
    let pids = net.pids(0).unwrap();
    let running = net.check_running(0);
    net.shutdown().await.expect("stopping");
    let stopped = net.pids(0).unwrap();
    height.expect("kvstore blocks");
    running.expect("node running");
    assert!(pids.cometbft.is_some());
    assert_eq!(pids.sequencer, None, "kvstore runs inside CometBFT");
    assert_eq!(stopped.cometbft, None);
    std::fs::remove_dir_all(home).ok();
}
