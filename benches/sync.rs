//! Membership sync from anvil: time to sync 1,000 and 10,000 registrations into a fresh
//! database, and the growth between them. Not criterion: one registration history is built
//! (minutes of transactions) and each sync size is timed three times; medians are printed.
//!
//! `cargo bench --bench sync` (release). Under `cargo test --all-targets` it runs a small
//! version once.

use std::time::{Duration, Instant};

use alloy::primitives::U256;
use alloy::providers::Provider;
use rln_core::{fr_to_le_bytes, Identity};
use rln_testkit::chain::CHEAP;
use rln_testkit::TestChain;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let sizes: Vec<u64> = if measuring {
        vec![1_000, 10_000]
    } else {
        vec![200, 400]
    };
    let total = *sizes.iter().max().unwrap_or(&0);

    let chain = TestChain::with_params(CHEAP).await;
    let provider = &chain.provider;
    let membership = chain.membership();

    // One registration per block (anvil mines each transaction), sent in pipelined chunks.
    let started = Instant::now();
    let mut block_after = Vec::new();
    for chunk in (0..total).collect::<Vec<_>>().chunks(200) {
        let mut pending = Vec::new();
        for i in chunk {
            let id = Identity::from_seed(&i.to_le_bytes());
            let commitment = U256::from_le_bytes(fr_to_le_bytes(&id.commitment()));
            let limit = (i % 100 + 1) as u32;
            pending.push(
                membership
                    .register(commitment, limit)
                    .value(U256::from(limit))
                    .send()
                    .await
                    .unwrap(),
            );
        }
        for tx in pending {
            tx.get_receipt().await.unwrap();
        }
        block_after.push(provider.get_block_number().await.unwrap());
    }
    eprintln!(
        "registered {total} members in {:.1} s (head at block {})",
        started.elapsed().as_secs_f64(),
        provider.get_block_number().await.unwrap()
    );

    let mut medians = Vec::new();
    for &n in &sizes {
        // The block after which the first n registrations are mined.
        let head = block_after[(n as usize).div_ceil(200) - 1];
        let mut samples = Vec::new();
        for _ in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let (db, sync) = chain.follower(dir.path(), rln_chain::sync::DEFAULT_MAX_BLOCK_RANGE);
            let start = Instant::now();
            sync.sync_until(head).await.unwrap();
            samples.push(start.elapsed());
            assert_eq!(
                db.next_index().unwrap(),
                n,
                "sizes must be multiples of the 200-transaction chunks"
            );
        }
        let m = median(samples);
        println!(
            "sync of {n} registrations: median {:.3} s ({:.1} µs per registration)",
            m.as_secs_f64(),
            m.as_secs_f64() * 1e6 / n as f64
        );
        medians.push(m);
    }
    if let [small, large] = medians[..] {
        println!(
            "growth {}→{}: {:.2}× the time for {:.0}× the registrations",
            sizes[0],
            sizes[1],
            large.as_secs_f64() / small.as_secs_f64(),
            sizes[1] as f64 / sizes[0] as f64
        );
    }
}
