use std::path::Path;

use serde::{Deserialize, Serialize};

use super::*;

/// A service's settings, as a service declares them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    listen: String,
    max_txs: u64,
    verbose: bool,
    peers: Vec<String>,
    rollup: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: "127.0.0.1:1".into(),
            max_txs: 10,
            verbose: false,
            peers: vec![],
            rollup: None,
        }
    }
}

/// Its flags: every setting optional, with an environment variable.
#[derive(Debug, Default, Serialize, clap::Parser)]
struct Flags {
    /// The config file.
    #[arg(long)]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Where to listen.
    #[arg(long, env = "WEFT_TEST_CONFIG_LISTEN")]
    listen: Option<String>,
    /// Most transactions.
    #[arg(long, env = "WEFT_TEST_CONFIG_MAX_TXS")]
    max_txs: Option<u64>,
    /// Say more.
    #[arg(long, env = "WEFT_TEST_CONFIG_VERBOSE", num_args = 0..=1, default_missing_value = "true")]
    verbose: Option<bool>,
    /// A peer (repeatable).
    #[arg(long = "peer", env = "WEFT_TEST_CONFIG_PEERS", value_delimiter = ',')]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    peers: Vec<String>,
    /// The rollup.
    #[arg(long, env = "WEFT_TEST_CONFIG_ROLLUP")]
    rollup: Option<String>,
}

/// Held by every parse of the flags (clap reads the environment then) and
/// by the one test that sets variables: environment variables are
/// process-wide and tests run in parallel.
static ENVIRONMENT: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn environment() -> std::sync::MutexGuard<'static, ()> {
    ENVIRONMENT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Parses `args` (the caller holds [`ENVIRONMENT`]).
fn parse(args: &[&str]) -> Flags {
    use clap::Parser;
    Flags::try_parse_from(std::iter::once("t").chain(args.iter().copied())).unwrap()
}

fn flags(args: &[&str]) -> Flags {
    let _environment = environment();
    parse(args)
}

fn load_text(text: &str, args: &[&str]) -> Result<Settings, ConfigError> {
    load_str(Some((Path::new("t.toml"), text)), &flags(args))
}

#[test]
fn each_layer_beats_the_one_below() {
    // Default only.
    let s: Settings = load_str(None, &flags(&[])).unwrap();
    assert_eq!(s, Settings::default());
    // File over default.
    let file = "max_txs = 20\nlisten = \"file:1\"\npeers = [\"a\", \"b\"]\n";
    let s = load_text(file, &[]).unwrap();
    assert_eq!((s.max_txs, s.listen.as_str()), (20, "file:1"));
    assert_eq!(s.peers, ["a", "b"]);
    // Flag over file; keys the flags leave unset stay the file's.
    let s = load_text(file, &["--max-txs", "30", "--peer", "c"]).unwrap();
    assert_eq!((s.max_txs, s.listen.as_str()), (30, "file:1"));
    assert_eq!(s.peers, ["c"]);
    assert!(!s.verbose);
    let s = load_text(file, &["--verbose"]).unwrap();
    assert!(s.verbose, "a bare boolean flag means true");
}

#[test]
fn environment_sits_between_file_and_flags() {
    // Environment variables are process-wide: no other test parses flags
    // while these are set (they wait for ENVIRONMENT).
    let _environment = environment();
    std::env::set_var("WEFT_TEST_CONFIG_MAX_TXS", "40");
    std::env::set_var("WEFT_TEST_CONFIG_ROLLUP", "from-env");
    let file = "max_txs = 20\nrollup = \"from-file\"\n";
    let load = |args: &[&str]| -> Settings {
        load_str(Some((Path::new("t.toml"), file)), &parse(args)).unwrap()
    };
    let s = load(&[]);
    assert_eq!(s.max_txs, 40, "env beats file");
    assert_eq!(s.rollup.as_deref(), Some("from-env"));
    let s = load(&["--max-txs", "50"]);
    assert_eq!(s.max_txs, 50, "flag beats env");
    std::env::remove_var("WEFT_TEST_CONFIG_MAX_TXS");
    std::env::remove_var("WEFT_TEST_CONFIG_ROLLUP");
}

#[test]
fn an_unknown_key_is_refused_by_name_with_a_hint() {
    let err = load_text("max_tx = 5\n", &[]).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, ConfigError::UnknownKey { ref key, .. } if key == "max_tx"),
        "{msg}"
    );
    assert!(
        msg.contains("t.toml") && msg.contains("did you mean `max_txs`"),
        "{msg}"
    );
    // A key whose default is unset is still known.
    assert!(load_text("rollup = \"r\"\n", &[]).is_ok());
    // Far from any key: no hint.
    let msg = load_text("completely_else = 1\n", &[])
        .unwrap_err()
        .to_string();
    assert!(!msg.contains("did you mean"), "{msg}");
}

#[test]
fn a_wrong_type_names_the_key_and_bad_toml_the_file() {
    let err = load_text("max_txs = \"many\"\n", &[]).unwrap_err();
    assert!(
        matches!(err, ConfigError::Invalid { ref key, .. } if key == "max_txs"),
        "{err}"
    );
    let err = load_text("max_txs = = 1\n", &[]).unwrap_err();
    assert!(matches!(err, ConfigError::Syntax { .. }), "{err}");
    assert!(err.to_string().contains("t.toml"), "{err}");
}

#[test]
fn a_missing_file_is_an_error() {
    let err =
        load::<Settings, _>(Some(Path::new("/nonexistent/weft.toml")), &flags(&[])).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");
}

#[test]
fn the_printed_defaults_document_every_key_and_parse_back_to_the_defaults() {
    use clap::CommandFactory;
    let text = default_toml::<Settings>(&Flags::command(), &["config"], "test service").unwrap();
    for needle in [
        "# Most transactions\n",
        "flag --max-txs, env WEFT_TEST_CONFIG_MAX_TXS",
        "max_txs = 10",
        "listen = \"127.0.0.1:1\"",
        "peers = []",
        "# rollup = (unset)",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    assert!(!text.contains("config ="), "{text}");
    let back: Settings = load_str(Some((Path::new("printed"), &text)), &Flags::default()).unwrap();
    assert_eq!(back, Settings::default());
}

#[test]
fn a_setting_without_a_flag_is_caught() {
    #[derive(Default, Serialize)]
    struct Orphan {
        max_txs: u64,
        no_flag_for_me: u64,
    }
    use clap::CommandFactory;
    let err = default_toml::<Orphan>(&Flags::command(), &["config"], "t").unwrap_err();
    assert!(
        matches!(err, ConfigError::NoFlag(ref k) if k == "no_flag_for_me"),
        "{err}"
    );
}

#[test]
fn display_fromstr_round_trips() {
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct A {
        #[serde(with = "crate::display_fromstr")]
        addr: std::net::SocketAddr,
    }
    let a: A = toml::from_str("addr = \"127.0.0.1:9\"").unwrap();
    assert_eq!(
        toml::to_string(&a).unwrap().trim(),
        "addr = \"127.0.0.1:9\""
    );
    assert!(toml::from_str::<A>("addr = \"nope\"").is_err());
}
