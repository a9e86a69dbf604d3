//! Verification cost per height on a synthetic 4-validator chain with real
//! ed25519 signatures: the CPU ceiling of a conductor's catch-up, without
//! the network or the rollup. `check` is the parallelisable part
//! (signatures, validator set, merkle proofs), `accept` the sequential link.

use std::{collections::BTreeMap, time::Duration};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use weft_conductor::{testing::TestChain, Anchor, ChainVerifier};
use weft_core::RollupId;

const HEIGHTS: u64 = 200;

fn chain() -> (TestChain, RollupId) {
    let id = RollupId::from_name("bench");
    let mut chain = TestChain::new("weft-bench", 4);
    for h in 0..HEIGHTS {
        let mut batches = BTreeMap::new();
        batches.insert(id, vec![vec![h as u8; 64]]);
        batches.insert(RollupId::from_name("other"), vec![vec![1; 200]]);
        chain.push(batches);
    }
    (chain, id)
}

fn verifier(chain: &TestChain) -> ChainVerifier {
    ChainVerifier::new(
        Anchor::Genesis {
            chain_id: chain.chain_id().clone(),
            validators: chain.validators().clone(),
        },
        Duration::from_secs(24 * 3600),
    )
}

fn bench_verify(c: &mut Criterion) {
    let (chain, id) = chain();
    let chain = &chain;
    let items: Vec<_> = (1..=HEIGHTS).map(|h| chain.sequenced(h, id)).collect();
    let now = chain.now();
    let mut group = c.benchmark_group("conductor_verify");
    group.throughput(Throughput::Elements(HEIGHTS));
    group.sample_size(20);

    group.bench_function("verify_200_heights_one_thread", |b| {
        b.iter(|| {
            let mut v = verifier(chain);
            for item in &items {
                v.verify(
                    &item.signed_header,
                    chain.validators(),
                    &item.batch,
                    &id,
                    now,
                )
                .unwrap();
            }
        })
    });

    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    group.bench_function(
        format!("check_200_heights_{threads}_threads_then_accept"),
        |b| {
            b.iter(|| {
                let v = verifier(chain);
                let checked: Vec<_> = std::thread::scope(|s| {
                    let chunk = items.len().div_ceil(threads);
                    let handles: Vec<_> = items
                        .chunks(chunk)
                        .map(|part| {
                            let v = &v;
                            s.spawn(move || {
                                part.iter()
                                    .map(|i| {
                                        v.check(&i.signed_header, chain.validators(), &i.batch, &id)
                                            .unwrap()
                                    })
                                    .collect::<Vec<_>>()
                            })
                        })
                        .collect();
                    handles
                        .into_iter()
                        .flat_map(|h| h.join().unwrap())
                        .collect()
                });
                let mut v = v;
                for c in &checked {
                    v.accept(c, now).unwrap();
                }
            })
        },
    );

    group.bench_function("decode_200_heights_json", |b| {
        let json = serde_json::to_vec(&serde_json::json!({
            "items": items.iter().map(|i| serde_json::json!({
                "height": i.height,
                "signed_header": i.signed_header,
                "batch": i.batch,
            })).collect::<Vec<_>>(),
            "latest": HEIGHTS,
        }))
        .unwrap();
        b.iter(|| {
            let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
            let items: Vec<weft_conductor::SequencedBatch> =
                serde_json::from_value(v["items"].clone()).unwrap();
            assert_eq!(items.len() as u64, HEIGHTS);
        })
    });
    group.finish();
}

criterion_group!(benches, bench_verify);
criterion_main!(benches);
