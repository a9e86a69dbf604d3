//! A test that panics while its network runs still leaves nothing behind:
//! unwinding drops the `Testnet`, which kills every node's process group.

use std::time::Duration;

use weft_testnet::{App, NodePids, NodePorts, Testnet, TestnetConfig};

/// Whether `pid` is a live process (not gone, not a zombie).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next()),
            Some('Z' | 'X')
        ),
        Err(_) => false,
    }
}

#[test]
fn a_panicking_test_leaves_no_node_running() {
    let cfg = TestnetConfig {
        validators: 1,
        timeout_commit: Duration::from_millis(200),
        app: App::Kvstore,
        ..TestnetConfig::default()
    };
    let home = cfg.home.clone();
    let (report, seen) = std::sync::mpsc::channel::<(NodePids, NodePorts)>();
    // A test body on its own thread, as the test harness runs it.
    let outcome = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let net = Testnet::create(cfg).await.expect("creating the network");
            net.start().await.expect("starting");
            net.wait_for_height(0, 1, Duration::from_secs(60))
                .await
                .expect("first block");
            report
                .send((net.pids(0).expect("pids"), net.nodes()[0].ports))
                .expect("reporting");
            panic!("a test failing while its network runs");
        })
    })
    .join();
    assert!(outcome.is_err(), "the test body panicked");
    let (pids, ports) = seen.recv().expect("the network started");
    let cometbft = pids.cometbft.expect("CometBFT was running");
    assert!(
        !alive(cometbft),
        "CometBFT (pid {cometbft}) outlived the panic"
    );
    for port in ports.all() {
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "port {port} still taken"
        );
    }
    std::fs::remove_dir_all(home).ok();
}
