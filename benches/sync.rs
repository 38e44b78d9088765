//! Membership sync from anvil: time to sync 1,000 and 10,000 registrations into a fresh
//! database, and the growth between them. Not criterion: one registration history is built
//! (minutes of transactions) and each sync size is timed three times; medians are printed.
//!
//! `cargo bench --bench sync` (release). Under `cargo test --all-targets` it runs a small
//! version once.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::node_bindings::Anvil;
use alloy::primitives::U256;
use alloy::providers::{Provider, ProviderBuilder};
use rln_chain::contract::{ContractParams, RlnMembership};
use rln_chain::{MembershipSync, RetryPolicy, RpcPool, SyncConfig};
use rln_core::{fr_to_le_bytes, Identity};
use rln_db::{DbConfig, RlnDb};

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

    let anvil_path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tools/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
    let anvil = Anvil::at(anvil_path).spawn();
    let provider = ProviderBuilder::new()
        .wallet(anvil.wallet().unwrap())
        .connect_http(anvil.endpoint_url())
        .erased();
    let params = ContractParams {
        deposit_per_message: U256::from(1u64),
        min_limit: 1,
        max_limit: 100,
    };
    let contract = rln_chain::deploy(&provider, params).await.unwrap();
    let membership = RlnMembership::new(contract, provider.clone());

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
            let db = Arc::new(
                RlnDb::open(
                    dir.path(),
                    DbConfig {
                        chain_id: anvil.chain_id(),
                        contract: contract.0 .0,
                        sync_writes: false,
                        ..DbConfig::default()
                    },
                )
                .unwrap(),
            );
            let sync = MembershipSync::new(
                RpcPool::new(&[anvil.endpoint()], RetryPolicy::default()).unwrap(),
                Arc::clone(&db),
                SyncConfig {
                    contract,
                    chain_id: anvil.chain_id(),
                    ..SyncConfig::default()
                },
            );
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
