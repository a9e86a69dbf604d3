//! The conductor against in-process sequencer endpoints that serve a
//! really signed synthetic chain, and against hostile ones: an endless
//! body, a body declared larger than the cap, an answer dripped a byte at a
//! time. Also the cursor's binding to its chain: a cursor left by a
//! re-created network (same chain id), a cursor beyond the chain's head, an
//! explicit `--from-height` that disagrees with the cursor, and a reset.

use std::{
    collections::BTreeMap,
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use axum::{
    extract::{Path as UrlPath, Query, State},
    routing::get,
    Json, Router,
};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weft_conductor::{
    testing::TestChain, Anchor, BatchSource, ChainMismatch, ChainVerifier, Conductor,
    ConductorError, ConductorOptions, CursorFile, Executor, ExecutorError, HttpExecutor,
    RollupBlock, SourceErrorKind,
};
use weft_core::RollupId;

const CHAIN_ID: &str = "weft-test";
/// The synthetic chain's clock is in 2023: trust it for a century.
const TRUSTING_PERIOD: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

fn rollup() -> RollupId {
    RollupId::from_name("follow")
}

// ------------------------------------------------------------- the chain

/// `heights` blocks, each carrying one item `"{tag}-{h}"` for the rollup:
/// two chains with different tags share chain id and validators but differ
/// in every block, like a devnet re-created from the same template.
fn chain(tag: &str, heights: u64) -> TestChain {
    let mut chain = TestChain::new(CHAIN_ID, 4);
    grow(&mut chain, tag, heights);
    chain
}

fn grow(chain: &mut TestChain, tag: &str, to: u64) {
    while chain.height() < to {
        let h = chain.height() + 1;
        chain.push(BTreeMap::from([(
            rollup(),
            vec![format!("{tag}-{h}").into_bytes()],
        )]));
    }
}

fn header_hash(chain: &TestChain, h: u64) -> String {
    hex::encode(chain.block(h).signed_header.header.hash().as_bytes())
}

type Shared = Arc<Mutex<TestChain>>;

#[derive(Deserialize)]
struct RangeQuery {
    from: u64,
    limit: u64,
    wait_ms: u64,
}

/// The sequencer's range API over a [`TestChain`].
async fn batches(
    State(chain): State<Shared>,
    UrlPath(_rollup): UrlPath<String>,
    Query(q): Query<RangeQuery>,
) -> Json<Value> {
    if chain.lock().unwrap().height() < q.from && q.wait_ms > 0 {
        tokio::time::sleep(Duration::from_millis(q.wait_ms.min(100))).await;
    }
    let chain = chain.lock().unwrap();
    let last = chain.height().min(q.from + q.limit - 1);
    let items: Vec<Value> = (q.from..=last)
        .map(|h| {
            let item = chain.sequenced(h, rollup());
            json!({ "height": h, "signed_header": item.signed_header, "batch": item.batch })
        })
        .collect();
    Json(json!({ "items": items, "next": last + 1, "latest": chain.height() }))
}

async fn validators(State(chain): State<Shared>, UrlPath(_h): UrlPath<u64>) -> Json<Value> {
    Json(json!({ "validators": chain.lock().unwrap().validators().validators() }))
}

async fn serve_chain(chain: Shared) -> String {
    let router = Router::new()
        .route("/v1/rollups/{rollup}/batches", get(batches))
        .route("/v1/validator-sets/{height}", get(validators))
        .with_state(chain);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

// ------------------------------------------------------ hostile endpoints

#[derive(Clone, Copy)]
enum Hostile {
    /// 200, chunked, whitespace forever.
    Endless,
    /// 200 with `Content-Length: 10^12`, then whitespace forever.
    DeclaredHuge,
    /// 200, chunked, one byte every 100 ms, forever.
    Drip,
}

/// A raw HTTP/1.1 server misbehaving as told on every request.
async fn serve_hostile(kind: Hostile) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = conn.read(&mut request).await;
                let head = match kind {
                    Hostile::DeclaredHuge => {
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000000000000\r\n\r\n"
                    }
                    _ => "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
                };
                if conn.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let spaces = vec![b' '; 64 * 1024];
                loop {
                    let written = match kind {
                        Hostile::Endless => {
                            let mut chunk = format!("{:x}\r\n", spaces.len()).into_bytes();
                            chunk.extend_from_slice(&spaces);
                            chunk.extend_from_slice(b"\r\n");
                            conn.write_all(&chunk).await
                        }
                        Hostile::DeclaredHuge => conn.write_all(&spaces).await,
                        Hostile::Drip => {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            conn.write_all(b"1\r\n \r\n").await
                        }
                    };
                    if written.is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

// ------------------------------------------------------- the test rollup

/// Records what it executes.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<RollupBlock>>>);

impl Recorder {
    fn heights(&self) -> Vec<u64> {
        self.0.lock().unwrap().iter().map(|b| b.height).collect()
    }

    fn last(&self) -> u64 {
        self.heights().last().copied().unwrap_or(0)
    }
}

#[async_trait]
impl Executor for Recorder {
    async fn head(&self) -> Result<Option<u64>, ExecutorError> {
        Ok(None)
    }

    async fn execute(&self, block: &RollupBlock) -> Result<String, ExecutorError> {
        self.0.lock().unwrap().push(block.clone());
        Ok(format!("rollup-{}", block.height))
    }
}

fn conductor(
    endpoints: Vec<String>,
    cursor: &Path,
    from_height: Option<u64>,
    recorder: &Recorder,
) -> Conductor<Recorder> {
    let template = TestChain::new(CHAIN_ID, 4);
    let anchor = Anchor::Genesis {
        chain_id: template.chain_id().clone(),
        validators: template.validators().clone(),
    };
    Conductor::new(
        rollup(),
        BatchSource::new(endpoints, rollup()).with_max_response_bytes(1024 * 1024),
        recorder.clone(),
        CursorFile::open(cursor).unwrap(),
        ChainVerifier::new(anchor, TRUSTING_PERIOD),
        from_height,
    )
}

/// Runs until the rollup has executed `height`; fails after `limit`.
async fn run_to(c: Conductor<Recorder>, recorder: &Recorder, height: u64, limit: Duration) {
    let watched = recorder.clone();
    let stop = async move {
        while watched.last() < height {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    match tokio::time::timeout(limit, c.run(stop)).await {
        Ok(result) => result.unwrap(),
        Err(_) => panic!(
            "height {height} not delivered within {limit:?}; delivered {:?}",
            recorder.heights()
        ),
    }
}

/// Runs expecting the conductor to stop with an error by itself.
async fn run_to_error(c: Conductor<Recorder>) -> ConductorError {
    match tokio::time::timeout(Duration::from_secs(10), c.run(std::future::pending())).await {
        Ok(result) => result.expect_err("the conductor should refuse to start"),
        Err(_) => panic!("the conductor neither delivered nor stopped: it waits silently"),
    }
}

// ------------------------------------------------------------------ bounds

#[tokio::test]
async fn an_endless_body_is_cut_off_and_the_next_endpoint_delivers() {
    let honest = serve_chain(Arc::new(Mutex::new(chain("a", 5)))).await;
    let hostile = serve_hostile(Hostile::Endless).await;
    let dir = tempfile::tempdir().unwrap();
    let recorder = Recorder::default();
    let c = conductor(
        vec![hostile, honest],
        &dir.path().join("c"),
        None,
        &recorder,
    );
    run_to(c, &recorder, 5, Duration::from_secs(20)).await;
    assert_eq!(recorder.heights(), vec![1, 2, 3, 4, 5]);
    assert_eq!(recorder.0.lock().unwrap()[4].txs, vec![b"a-5".to_vec()]);
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_a_typed_error() {
    for kind in [Hostile::Endless, Hostile::DeclaredHuge] {
        let url = serve_hostile(kind).await;
        let source = BatchSource::new(vec![url], rollup()).with_max_response_bytes(256 * 1024);
        let result =
            tokio::time::timeout(Duration::from_secs(10), source.fetch(1, 10, Duration::ZERO))
                .await
                .expect("an oversized body must not hang the fetch");
        let err = result.expect_err("an oversized body is an error");
        assert!(
            matches!(err.kind, SourceErrorKind::TooLarge { limit: 262144 }),
            "{err}"
        );
        let err = tokio::time::timeout(Duration::from_secs(10), source.validators(1))
            .await
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(err.kind, SourceErrorKind::TooLarge { .. }),
            "{err}"
        );
    }
}

#[tokio::test]
async fn a_dripping_endpoint_times_out_and_the_next_delivers() {
    let honest = serve_chain(Arc::new(Mutex::new(chain("a", 3)))).await;
    let drip = serve_hostile(Hostile::Drip).await;
    let dir = tempfile::tempdir().unwrap();
    let recorder = Recorder::default();
    let c = conductor(vec![drip, honest], &dir.path().join("c"), None, &recorder).with_options(
        ConductorOptions {
            step_timeout: Duration::from_secs(2),
            ..ConductorOptions::default()
        },
    );
    // The HTTP client's own timeout is 30 s: only the step timeout can
    // get this done in 10.
    run_to(c, &recorder, 3, Duration::from_secs(10)).await;
    assert_eq!(recorder.heights(), vec![1, 2, 3]);
}

#[tokio::test]
async fn a_rollup_node_answering_without_end_is_an_error_not_a_hang() {
    let url = serve_hostile(Hostile::Endless).await;
    let executor = HttpExecutor::new(&url);
    let err = tokio::time::timeout(Duration::from_secs(10), executor.head())
        .await
        .expect("reading the head must stop at the cap")
        .unwrap_err();
    assert!(err.to_string().contains("larger than"), "{err}");
}

// ------------------------------------------------------------------ cursor

/// A cursor at height 6 of chain "a", left in `dir`.
async fn cursor_at_6(dir: &Path) -> (Shared, std::path::PathBuf) {
    let chain_a = Arc::new(Mutex::new(chain("a", 6)));
    let url = serve_chain(chain_a.clone()).await;
    let path = dir.join("weft-conductor.cursor");
    let recorder = Recorder::default();
    run_to(
        conductor(vec![url], &path, None, &recorder),
        &recorder,
        6,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(CursorFile::open(&path).unwrap().last().unwrap().height, 6);
    (chain_a, path)
}

#[tokio::test]
async fn a_cursor_left_by_a_recreated_network_is_refused_with_both_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let (chain_a, path) = cursor_at_6(dir.path()).await;
    // Same chain id, same validators, different blocks.
    let chain_b = chain("b", 8);
    let (ours, theirs) = (
        header_hash(&chain_a.lock().unwrap(), 6),
        header_hash(&chain_b, 6),
    );
    let url = serve_chain(Arc::new(Mutex::new(chain_b))).await;
    let recorder = Recorder::default();
    let err = run_to_error(conductor(vec![url.clone()], &path, None, &recorder)).await;
    match &err {
        ConductorError::ForeignCursor {
            path: p,
            mismatch:
                ChainMismatch::BlockHash {
                    height: 6,
                    cursor,
                    chain,
                    endpoint,
                },
        } => {
            assert_eq!(p, &path);
            assert_eq!((cursor, chain, endpoint), (&ours, &theirs, &url));
        }
        other => panic!("wrong error: {other}"),
    }
    let text = err.to_string();
    for part in [
        path.display().to_string(),
        "belongs to another chain".into(),
        format!("block 6 hash {ours}, chain has {theirs}"),
        "--reset-cursor".into(),
    ] {
        assert!(text.contains(&part), "{text:?} lacks {part:?}");
    }
    assert!(recorder.heights().is_empty(), "nothing delivered");
}

#[tokio::test]
async fn a_cursor_beyond_the_chains_head_is_refused_not_waited_on() {
    let dir = tempfile::tempdir().unwrap();
    let (_chain_a, path) = cursor_at_6(dir.path()).await;
    let url = serve_chain(Arc::new(Mutex::new(chain("b", 3)))).await;
    let recorder = Recorder::default();
    // The reported case: `--from-height 1` beside an old cursor.
    let err = run_to_error(conductor(vec![url.clone()], &path, Some(1), &recorder)).await;
    assert!(
        matches!(
            err,
            ConductorError::FromHeightBeforeCursor {
                cursor_height: 6,
                from_height: 1,
                ..
            }
        ),
        "{err}"
    );
    // Without --from-height: the new chain has not reached the cursor.
    let err = run_to_error(conductor(vec![url], &path, None, &recorder)).await;
    assert!(
        matches!(
            err,
            ConductorError::ForeignCursor {
                mismatch: ChainMismatch::Behind {
                    height: 6,
                    latest: 3,
                    ..
                },
                ..
            }
        ),
        "{err}"
    );
    assert!(recorder.heights().is_empty());
}

#[tokio::test]
async fn one_endpoint_on_the_cursors_chain_is_enough_to_resume() {
    let dir = tempfile::tempdir().unwrap();
    let (chain_a, path) = cursor_at_6(dir.path()).await;
    grow(&mut chain_a.lock().unwrap(), "a", 9);
    let stale = serve_chain(Arc::new(Mutex::new(chain("b", 8)))).await;
    let good = serve_chain(chain_a).await;
    let recorder = Recorder::default();
    run_to(
        conductor(vec![stale, good], &path, None, &recorder),
        &recorder,
        9,
        Duration::from_secs(20),
    )
    .await;
    // Resumed after the cursor: nothing repeated.
    assert_eq!(recorder.heights(), vec![7, 8, 9]);
}

#[tokio::test]
async fn an_explicit_from_height_is_refused_or_obeyed_never_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let (chain_a, path) = cursor_at_6(dir.path()).await;
    grow(&mut chain_a.lock().unwrap(), "a", 12);
    let url = serve_chain(chain_a).await;
    for from in [1, 6] {
        let recorder = Recorder::default();
        let err = run_to_error(conductor(vec![url.clone()], &path, Some(from), &recorder)).await;
        let text = err.to_string();
        assert!(
            text.contains(&format!("--from-height {from}")) && text.contains("up to 6"),
            "{text}"
        );
    }
    // Beyond the cursor: heights 7..=9 are verified, not delivered.
    let recorder = Recorder::default();
    run_to(
        conductor(vec![url.clone()], &path, Some(10), &recorder),
        &recorder,
        12,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(recorder.heights(), vec![10, 11, 12]);
    // Right after the cursor is simply agreement.
    let (chain_c, path_c) = cursor_at_6(&dir.path().join("c")).await;
    grow(&mut chain_c.lock().unwrap(), "a", 7);
    let url_c = serve_chain(chain_c).await;
    let recorder = Recorder::default();
    run_to(
        conductor(vec![url_c], &path_c, Some(7), &recorder),
        &recorder,
        7,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(recorder.heights(), vec![7]);
}

#[tokio::test]
async fn after_a_reset_the_new_network_is_followed_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let (_chain_a, path) = cursor_at_6(dir.path()).await;
    let url = serve_chain(Arc::new(Mutex::new(chain("b", 4)))).await;
    CursorFile::open(&path).unwrap().reset().unwrap();
    let recorder = Recorder::default();
    run_to(
        conductor(vec![url], &path, Some(1), &recorder),
        &recorder,
        4,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(recorder.heights(), vec![1, 2, 3, 4]);
    assert_eq!(recorder.0.lock().unwrap()[0].txs, vec![b"b-1".to_vec()]);
}

#[tokio::test]
async fn a_cursor_for_another_chain_id_is_refused_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let (_chain_a, path) = cursor_at_6(dir.path()).await;
    let recorder = Recorder::default();
    let other = TestChain::new("another-chain", 4);
    let c = Conductor::new(
        rollup(),
        // Nothing listens here: the refusal needs no endpoint.
        BatchSource::new(vec!["http://127.0.0.1:9".into()], rollup()),
        recorder.clone(),
        CursorFile::open(&path).unwrap(),
        ChainVerifier::new(
            Anchor::Genesis {
                chain_id: other.chain_id().clone(),
                validators: other.validators().clone(),
            },
            TRUSTING_PERIOD,
        ),
        None,
    );
    let err = run_to_error(c).await;
    assert!(
        matches!(
            &err,
            ConductorError::ForeignCursor {
                mismatch: ChainMismatch::ChainId { cursor, anchor },
                ..
            } if cursor == CHAIN_ID && anchor == "another-chain"
        ),
        "{err}"
    );
}
