//! The start-up steps of [`super::Node::start`], in the order it calls them, and what each
//! hands to the next.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use rln_chain::{Address, MembershipSync, RetryPolicy, RpcPool, Slasher, SyncConfig, SyncStatus};
use rln_core::TREE_DEPTH;
use rln_db::{Adoption, DbConfig, MessageArchive, MessageIdLedger, PgArchive, RlnDb};
use rln_relay::archive::{self, ArchiveSettings};
use rln_relay::hub::Hub;
use rln_relay::metrics::{Metrics, ResultLabel};
use rln_relay::network::{self, NetworkParts, NetworkSettings, SwarmSettings};
use rln_relay::protocols::filter::{Filter, FilterSettings};
use rln_relay::protocols::lightpush::{LightPush, LightPushSettings};
use rln_relay::protocols::metadata;
use rln_relay::protocols::relay::pipeline::{Pipeline, Sinks, Validated};
use rln_relay::protocols::resume::{self, ResumeSettings};
use rln_relay::protocols::store::{Store, StoreSettings};
use rln_relay::wire::metadata::Metadata;
use rln_relay::{Member, NetworkHandle, Outbox, Publisher, Reason, Rules, SyncView, Validator};
use rln_zk::{Prover, Verifier};
use tokio::sync::{mpsc, watch};

use crate::config::{Checked, NodeConfig};
use crate::error::NodeError;

use super::slashing::{run_slasher, SlashPolicy, SLASH_RESULTS};
use super::tasks::{now_secs, prepare_after_sync, watch_sync};
use crate::supervisor::Supervisor;

/// What the chain step finds.
pub(super) struct Chain {
    pub(super) rpc: RpcPool,
    pub(super) contract: Address,
    pub(super) chain_id: u64,
}

/// What the validation step starts.
pub(super) struct Validation {
    pub(super) pipeline: Pipeline,
    pub(super) verdicts: mpsc::Receiver<Validated>,
    pub(super) hub: Arc<Hub>,
    /// The validator and sinks again, for the light push service.
    pub(super) validator: Arc<Validator>,
    pub(super) sinks: Sinks,
}

/// Step 1: the RPC endpoints and the chain id. With the chain id set, a node may start while
/// the RPC is down (sync retries in the background); otherwise the endpoint must answer.
pub(super) async fn connect_chain(
    config: &NodeConfig,
    checked: &Checked,
) -> Result<Chain, NodeError> {
    let rpc = RpcPool::with_ca(
        &config.chain.rpc,
        RetryPolicy::default(),
        config.chain.ca_file.as_deref(),
    )?;
    let chain_id = match config.chain.chain_id {
        Some(expected) => match rpc.chain_id().await {
            Ok(actual) if actual != expected => {
                return Err(rln_chain::ChainError::WrongChain { expected, actual }.into())
            }
            _ => expected,
        },
        None => rpc.chain_id().await.map_err(|e| NodeError::Config {
            key: "chain.chain_id",
            problem: format!("is not set and the RPC cannot tell it ({e}); set it to start while the RPC is down"),
        })?,
    };
    let chain = Chain {
        rpc,
        contract: checked.contract,
        chain_id,
    };
    check_withdrawal_delay(config, &chain).await;
    Ok(chain)
}

/// Time a slash may take beyond the epoch and the chain lag: commit, a block, reveal, and the
/// slasher's retries through a short RPC outage.
const SLASH_ALLOWANCE: Duration = Duration::from_secs(3600);

/// Warns when the contract lets a spammer withdraw its deposit before a slash can land (a
/// withdrawal delay shorter than an epoch + the chain lag + [`SLASH_ALLOWANCE`], or none).
/// Advisory: the node runs either way, and an RPC that does not answer quickly is skipped.
async fn check_withdrawal_delay(config: &NodeConfig, chain: &Chain) {
    let needed = config.epoch() + config.chain_lag() + SLASH_ALLOWANCE;
    let read = tokio::time::timeout(
        Duration::from_secs(5),
        chain.rpc.withdrawal_delay(chain.contract),
    )
    .await;
    match read {
        Ok(Ok(secs)) if Duration::from_secs(secs) < needed => tracing::warn!(
            withdrawal_delay_secs = secs,
            needed_secs = needed.as_secs(),
            "the contract's withdrawal delay is shorter than an epoch + the chain lag + an hour \
             for the slash: a spammer can erase and withdraw its deposit before it is slashed"
        ),
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(
            "cannot read the contract's withdrawal delay ({e}); a contract without one lets a \
             spammer withdraw its deposit before it is slashed"
        ),
        Err(_) => {}
    }
}

/// Step 2: the state, bound to this chain, contract and tree depth.
pub(super) fn open_state(config: &NodeConfig, chain: &Chain) -> Result<Arc<RlnDb>, NodeError> {
    Ok(Arc::new(RlnDb::open(
        config.data_dir.join("db"),
        DbConfig {
            depth: TREE_DEPTH,
            chain_id: chain.chain_id,
            contract: chain.contract.into_array(),
            root_window: config.rln.root_window,
            ..DbConfig::default()
        },
    )?))
}

/// Step 3: one registry for the node's metrics and libp2p's, every counter created at zero.
pub(super) fn new_metrics() -> (Registry, Metrics) {
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    Reason::register_all(&metrics);
    for result in SLASH_RESULTS {
        metrics
            .slashes
            .get_or_create(&ResultLabel {
                result: result.into(),
            })
            .get();
    }
    (registry, metrics)
}

/// Step 4: membership sync, and the view of it validation reads to tell an unknown root from
/// one not synced yet.
pub(super) fn start_sync(
    supervisor: &mut Supervisor,
    config: &NodeConfig,
    chain: Chain,
    db: &Arc<RlnDb>,
    metrics: &Metrics,
) -> (watch::Receiver<SyncStatus>, Arc<SyncView>) {
    let sync = Arc::new(MembershipSync::new(
        chain.rpc,
        db.clone(),
        SyncConfig {
            max_block_range: config.chain.max_block_range,
            confirmations: config.chain.confirmations,
            poll_interval: Duration::from_millis(config.chain.poll_interval_ms),
            ..SyncConfig::new(chain.contract, chain.chain_id)
        },
    ));
    let status = sync.status();
    let signal = supervisor.signal();
    supervisor.spawn("membership sync", async move { sync.run(signal).await });
    let synced = Arc::new(SyncView::default());
    supervisor.spawn(
        "sync status",
        watch_sync(
            status.clone(),
            synced.clone(),
            metrics.clone(),
            supervisor.signal(),
        ),
    );
    (status, synced)
}

/// Step 5: the validator, the worker threads and (when configured) the slasher.
pub(super) fn start_validation(
    supervisor: &mut Supervisor,
    config: &NodeConfig,
    checked: &Checked,
    (db, archive): (&Arc<RlnDb>, &Arc<dyn MessageArchive>),
    verifier: Verifier,
    synced: Arc<SyncView>,
    metrics: &Metrics,
) -> Result<Validation, NodeError> {
    let rules = Rules {
        epoch_secs: config.rln.epoch_secs,
        max_clock_gap: Duration::from_secs(config.rln.max_clock_gap_secs),
        chain_lag: config.chain_lag(),
        rln_identifier: checked.rln_identifier,
        signal: config.rln.signal,
    };
    let validator = Arc::new(
        Validator::new(db.clone(), verifier, rules, synced, metrics.clone())
            .grouping_by_standing(config.validation.group_by_standing),
    );
    let hub = Arc::new(Hub::new(config.rest.cache_per_topic));
    for topic in &config.network.pubsub_topics {
        hub.cache_topic(topic);
    }
    // Room for every queued message and a few batches in flight, so workers rarely wait on
    // the swarm task.
    let (verdict_tx, verdicts) =
        mpsc::channel(config.validation.queue + config.validation.max_batch * 16);
    let spam = match &config.slash {
        Some(slash) => {
            // One slasher per configured endpoint: attempts rotate through them.
            let slashers = config
                .chain
                .rpc
                .iter()
                .map(|url| {
                    Slasher::new(
                        url,
                        &slash.private_key,
                        checked.contract,
                        checked.slash_receiver,
                        config.chain.ca_file.as_deref(),
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            let wake = Arc::new(tokio::sync::Notify::new());
            supervisor.spawn(
                "slasher",
                run_slasher(
                    slashers,
                    SlashPolicy {
                        confirmations: slash.confirmations,
                        recheck: Duration::from_millis(config.chain.poll_interval_ms.max(100)),
                    },
                    wake.clone(),
                    db.clone(),
                    metrics.clone(),
                    supervisor.signal(),
                ),
            );
            Some(wake)
        }
        None => None,
    };
    let sinks = Sinks {
        verdicts: verdict_tx,
        hub: hub.clone(),
        spam,
        db: db.clone(),
        archive: archive.clone(),
        metrics: metrics.clone(),
    };
    let (pipeline, workers) = Pipeline::start(
        validator.clone(),
        checked.workers,
        config.validation.queue,
        config.validation.max_batch,
        sinks.clone(),
    )
    .map_err(|source| NodeError::Io {
        what: "starting validation workers".into(),
        source,
    })?;
    for worker in workers {
        supervisor.watch_thread("validation worker", worker);
    }
    Ok(Validation {
        pipeline,
        verdicts,
        hub,
        validator,
        sinks,
    })
}

/// Step 6: the swarm, listening, with the relay protocol's queue behind it.
pub(super) async fn start_network(
    supervisor: &mut Supervisor,
    config: &NodeConfig,
    validation: Validation,
    metrics: &Metrics,
    registry: &mut Registry,
) -> Result<NetworkHandle, NodeError> {
    let key_path = config
        .network
        .node_key
        .clone()
        .unwrap_or_else(|| config.data_dir.join("node_key"));
    let settings = NetworkSettings {
        swarm: SwarmSettings {
            topics: config.network.pubsub_topics.clone(),
            max_message_bytes: config.network.max_message_bytes,
            seen_ttl: Duration::from_secs(config.network.seen_ttl_secs),
            heartbeat: Duration::from_millis(config.network.heartbeat_ms),
            invalid_message_weight: config.network.invalid_message_weight,
            discovery: config.network.discovery,
            mesh_degree: config.network.mesh_degree,
            metadata: Metadata {
                cluster_id: Some(config.network.cluster_id),
                shards: metadata::shards_of(
                    config.network.cluster_id,
                    &config.network.pubsub_topics,
                )
                .map_err(|problem| NodeError::Config {
                    key: "network.pubsub_topics",
                    problem,
                })?,
            },
        },
        listen: config.network.listen.clone(),
        static_peers: config.network.static_peers.clone(),
        bootstrap: config.network.bootstrap.clone(),
    };
    let parts = NetworkParts {
        key: network::load_or_create_key(&key_path)?,
        pipeline: validation.pipeline,
        verdicts: validation.verdicts,
        metrics: metrics.clone(),
        shutdown: supervisor.signal(),
    };
    let (net, swarm_task) = network::start(&settings, parts, registry).await?;
    supervisor.spawn("swarm", swarm_task);
    // A started node listens: its caller prints or hands out the addresses next, and an
    // address missing from that list would leave peers nothing to dial.
    net.wait_listening(LISTEN_TIMEOUT)
        .await
        .map_err(|e| rln_relay::RelayError::Network(format!("not listening: {e}")))?;
    Ok(net)
}

/// How long the listeners may take to report their addresses (the swarm task polls them
/// first; a loaded machine can delay it by seconds).
const LISTEN_TIMEOUT: Duration = Duration::from_secs(30);

/// Step 2b: the message archive: the node's own RocksDB, or the PostgreSQL server of
/// `store.db_url` (connected, and its tables created, off the async runtime).
pub(super) async fn open_archive(
    config: &NodeConfig,
    db: &Arc<RlnDb>,
) -> Result<Arc<dyn MessageArchive>, NodeError> {
    let Some(url) = config.store.db_url.clone().filter(|_| config.store.enabled) else {
        let embedded: Arc<dyn MessageArchive> = db.clone();
        return Ok(embedded);
    };
    let shown = rln_db::postgres::describe_url(&url);
    let archive = tokio::task::spawn_blocking(move || PgArchive::connect(&url))
        .await
        .map_err(|_| NodeError::Config {
            key: "store.db_url",
            problem: "connecting to the server stopped unexpectedly".into(),
        })??;
    tracing::info!("message archive: PostgreSQL at {shown}");
    Ok(Arc::new(archive))
}

/// Step 5b: the message archive's writer, fed by the hub with every valid message (before
/// the network starts, so none goes unarchived).
pub(super) fn start_archive(
    supervisor: &mut Supervisor,
    config: &NodeConfig,
    checked: &Checked,
    archive: &Arc<dyn MessageArchive>,
    hub: &Hub,
    metrics: &Metrics,
) -> Result<(), NodeError> {
    if !config.store.enabled {
        return Ok(());
    }
    let settings = ArchiveSettings {
        queue: config.store.queue,
        max_batch: ARCHIVE_BATCH,
        max_clock_gap: Duration::from_secs(config.rln.max_clock_gap_secs),
        retention: checked.retention,
        keep_proofs: config.store.keep_proofs,
        prune_interval: Duration::from_secs(config.store.prune_interval_secs),
    };
    let (sender, writer) = archive::start_writer(
        archive.clone(),
        &settings,
        metrics.clone(),
        supervisor.signal(),
    )
    .map_err(|source| NodeError::Io {
        what: "starting the archive writer".into(),
        source,
    })?;
    hub.attach_archive(sender);
    supervisor.watch_thread("archive writer", writer);
    supervisor.spawn(
        "archive pruning",
        archive::prune(
            archive.clone(),
            settings.retention,
            settings.prune_interval,
            metrics.clone(),
            supervisor.signal(),
        ),
    );
    Ok(())
}

/// Messages per archive write batch.
const ARCHIVE_BATCH: usize = 1_024;

/// How far back a resume with an empty archive and no age bound goes.
const DEFAULT_LOOKBACK: Duration = Duration::from_secs(86_400);

/// Step 8: the services of light clients, light push, filter and store, each when enabled;
/// returns the store service (the REST API answers local queries with it).
pub(super) fn start_light_services(
    supervisor: &mut Supervisor,
    config: &NodeConfig,
    checked: &Checked,
    net: &NetworkHandle,
    validator: Arc<Validator>,
    outbox: &Arc<Outbox>,
    sinks: Sinks,
) -> Result<Option<Arc<Store>>, NodeError> {
    let topics = config.network.pubsub_topics.clone();
    if config.lightpush.enabled {
        let lightpush = Arc::new(LightPush::new(
            LightPushSettings {
                topics: topics.clone(),
                requests_per_minute: config.lightpush.requests_per_minute,
                max_message_bytes: config.network.max_message_bytes,
            },
            net.clone(),
            Arc::clone(outbox),
            sinks.metrics.clone(),
        ));
        supervisor.spawn("light push", lightpush.serve(supervisor.signal())?);
    }
    if config.filter.enabled {
        let f = &config.filter;
        let filter = Filter::new(
            FilterSettings {
                topics,
                max_content_topics_per_request: f.max_content_topics_per_request,
                max_criteria_per_peer: f.max_criteria_per_peer,
                max_peers: f.max_peers,
                subscription_ttl: Duration::from_secs(f.subscription_ttl_secs),
                requests_per_minute: f.requests_per_minute,
                push_queue: f.push_queue,
                push_timeout: Duration::from_secs(f.push_timeout_secs),
            },
            net.clone(),
            sinks.metrics.clone(),
        );
        supervisor.spawn("filter", filter.serve(&sinks.hub, supervisor.signal())?);
    }
    if !config.store.enabled {
        return Ok(None);
    }
    let store = Store::new(
        sinks.archive.clone(),
        StoreSettings {
            requests_per_minute: config.store.requests_per_minute,
        },
        sinks.metrics.clone(),
    );
    supervisor.spawn("store", store.serve(net, supervisor.signal())?);
    if config.store.resume {
        let peer = config
            .store
            .resume_peer
            .as_ref()
            .or(config.network.static_peers.first())
            .ok_or(NodeError::Config {
                key: "store.resume",
                problem: "needs a peer to resume from".into(),
            })?;
        let settings = ResumeSettings {
            peer: peer.parse().map_err(|_| NodeError::Config {
                key: "store.resume_peer",
                problem: format!("`{peer}` is not a multiaddress"),
            })?,
            topics: config.network.pubsub_topics.clone(),
            lookback: checked
                .retention
                .max_age_ns
                .map_or(DEFAULT_LOOKBACK, Duration::from_nanos),
            keep_proofs: config.store.keep_proofs,
        };
        let (net, mut stop) = (net.clone(), supervisor.signal());
        supervisor.spawn("store resume", async move {
            if let Err(e) = resume::resume(&net, validator, &sinks, &settings).await {
                tracing::warn!("store resume failed; the history keeps its gap: {e}");
            }
            // One pass; the task then waits for the node to stop, as every task does.
            let _ = stop.wait_for(|s| *s).await;
        });
    }
    Ok(Some(store))
}

/// What a publisher proves with.
pub(super) struct Signer {
    pub(super) member: Member,
    pub(super) prover: Arc<Prover>,
    pub(super) ledger: Arc<MessageIdLedger>,
}

/// The message-id ledger beside the keystore, with a record of `member` (taken over from the
/// database of an older version, or marked unrecorded for the current epoch).
pub(super) fn open_ledger(
    keystore: &std::path::Path,
    member: &Member,
    db: &RlnDb,
    epoch_secs: u64,
) -> Result<Arc<MessageIdLedger>, NodeError> {
    let path = MessageIdLedger::path_for(keystore);
    let ledger = MessageIdLedger::open(&path)?;
    let commitment = member.identity.commitment();
    let epoch = rln_core::epoch_at(now_secs(), epoch_secs);
    match ledger.adopt(&commitment, epoch, db.legacy_message_ids(&commitment)?)? {
        Adoption::Known => {}
        Adoption::Migrated => tracing::info!(
            "message ids used so far moved from the database to {}",
            path.display()
        ),
        Adoption::Unrecorded { .. } => tracing::warn!(
            "{} has no record of membership {}: it may have published this epoch from \
             elsewhere, so this node publishes from the next epoch on (in {} s)",
            path.display(),
            member.index,
            epoch_secs - now_secs() % epoch_secs
        ),
    }
    Ok(Arc::new(ledger))
}

/// Step 7: the publisher, when the node has a membership, with its membership part of the
/// proofs kept ready after every sync.
pub(super) fn start_publisher(
    supervisor: &mut Supervisor,
    config: &NodeConfig,
    checked: &Checked,
    signer: Option<Signer>,
    db: &Arc<RlnDb>,
    metrics: &Metrics,
    sync_status: &watch::Receiver<SyncStatus>,
) -> Option<Arc<Publisher>> {
    let Signer {
        member,
        prover,
        ledger,
    } = signer?;
    let publisher = Arc::new(Publisher::new(
        member,
        db.clone(),
        ledger,
        prover,
        config.rln.epoch_secs,
        checked.rln_identifier,
        config.rln.signal,
        metrics.clone(),
    ));
    // Sets the remaining-messages gauge; an error here shows again on the first publication.
    if let Err(e) = publisher.remaining() {
        tracing::warn!("cannot read the message ids used this epoch: {e}");
    }
    supervisor.spawn(
        "proof preparation",
        prepare_after_sync(publisher.clone(), sync_status.clone(), supervisor.signal()),
    );
    Some(publisher)
}
