//! `weft genesis` as a user runs it: the repository's genesis files
//! validate, a genesis built step by step validates, and a broken one is
//! refused with the field named.

use std::{path::Path, process::Command};

use serde_json::Value;

fn weft(args: &[&str]) -> (bool, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_weft"))
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{args:?}: stdout is not JSON ({e}): {stdout}"));
    (out.status.success(), json)
}

fn repo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
        .display()
        .to_string()
}

#[test]
fn the_repository_genesis_files_validate() {
    for file in ["genesis/devnet-4.json", "genesis/testnet-template.json"] {
        let (ok, v) = weft(&["genesis", "validate", &repo(file)]);
        assert!(ok, "{file}: {v}");
        assert_eq!(v["valid"], true);
    }
}

#[test]
fn build_edit_and_validate() {
    let dir = std::env::temp_dir().join(format!("weft-genesis-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("genesis.json");
    let f = file.to_str().unwrap();
    let alice = "weft1rsxyjrcm255ds9euthjx6yc3vrjt9sxr7pc3ns";
    let key = "Oe4AyooHiz+pp1kgy+Y1kkbNcezGV1WYXF0mz16cdwQ=";

    let (ok, v) = weft(&[
        "genesis",
        "new",
        "--chain-id",
        "weft-cli-test",
        "--out",
        f,
        "--force",
        "--vote-extensions-enable-height",
        "3",
    ]);
    assert!(ok, "{v}");
    // No validators yet: refused, naming the field.
    let (ok, v) = weft(&["genesis", "validate", f]);
    assert!(!ok);
    assert_eq!(v["field"], "validators", "{v}");

    assert!(weft(&["genesis", "add-account", "--genesis", f, alice, "5000000"]).0);
    let (ok, v) = weft(&["genesis", "add-account", "--genesis", f, alice, "1"]);
    assert!(
        !ok && v["error"].as_str().unwrap().contains("already funded"),
        "{v}"
    );
    let (ok, v) = weft(&["genesis", "add-account", "--genesis", f, "weft1bogus", "1"]);
    assert!(!ok, "{v}");

    let (ok, v) = weft(&[
        "genesis",
        "add-validator",
        "--genesis",
        f,
        "--pubkey",
        key,
        "--power",
        "2000000",
        "--name",
        "v0",
        "--operator",
        alice,
        "--self-bond",
        "2000000",
    ]);
    assert!(ok, "{v}");
    let (ok, _) = weft(&[
        "genesis",
        "add-validator",
        "--genesis",
        f,
        "--pubkey",
        key,
        "--power",
        "1",
    ]);
    assert!(!ok, "a key twice is refused");

    assert!(weft(&["genesis", "set-param", "--genesis", f, "base_fee", "5"]).0);
    let (ok, v) = weft(&["genesis", "set-param", "--genesis", f, "bogus", "5"]);
    assert!(!ok);
    let e = v["error"].as_str().unwrap();
    assert!(
        e.contains("unknown parameter `bogus`")
            && e.contains("staking.min_self_bond")
            && e.contains("governance.voting_period_blocks"),
        "{e}"
    );
    assert!(
        weft(&[
            "genesis",
            "set-param",
            "--genesis",
            f,
            "staking.epoch_blocks",
            "5"
        ])
        .0
    );
    assert!(
        weft(&[
            "genesis",
            "set-param",
            "--genesis",
            f,
            "governance.voting_period_blocks",
            "7"
        ])
        .0
    );
    assert!(
        weft(&[
            "genesis",
            "set-param",
            "--genesis",
            f,
            "governance.quorum_bps",
            "2500"
        ])
        .0
    );
    let (ok, v) = weft(&[
        "genesis",
        "set-param",
        "--genesis",
        f,
        "governance.quorm_bps",
        "1",
    ]);
    assert!(!ok);
    let e = v["error"].as_str().unwrap();
    assert!(
        e.contains("unknown parameter `governance.quorm_bps`"),
        "{e}"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(doc["app_state"]["staking"]["params"]["epoch_blocks"], 5);
    assert_eq!(doc["app_state"]["governance"]["voting_period_blocks"], 7);
    assert_eq!(doc["app_state"]["governance"]["quorum_bps"], 2500);

    let (ok, v) = weft(&["genesis", "validate", f]);
    assert!(ok, "{v}");
    assert_eq!(v["vote_extensions_enable_height"], 3);
    assert_eq!(v["staking_validators"], 1);

    // Broken by hand: zero power.
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    doc["validators"][0]["power"] = "0".into();
    std::fs::write(&file, doc.to_string()).unwrap();
    let (ok, v) = weft(&["genesis", "validate", f]);
    assert!(!ok);
    assert_eq!(v["field"], "validators[0].power", "{v}");
    let _ = std::fs::remove_dir_all(&dir);
}
