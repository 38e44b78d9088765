//! A running node: [`Node::start`] runs the start-up steps in call order (`steps`) and the
//! supervisor owns what they start; the background tasks that are not a protocol's own live
//! in `tasks` and `slashing`.

mod slashing;
mod steps;
mod tasks;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rln_relay::{Outbox, OutboxSettings};

use crate::config::NodeConfig;
use crate::error::NodeError;
use crate::handle::{KeysInfo, NodeHandle, Shared};
use crate::keys::{check_dev_keys, load_keys, load_member};
use crate::supervisor::Supervisor;
use steps::{
    connect_chain, new_metrics, open_archive, open_ledger, open_state, start_archive,
    start_light_services, start_network, start_publisher, start_sync, start_validation, Signer,
};
use tasks::prune_nullifiers;

/// A running node. Stop it with [`Node::shutdown`], which also reports a background task
/// that failed.
#[derive(Debug)]
pub struct Node {
    handle: NodeHandle,
    supervisor: Supervisor,
    rest_addr: Option<SocketAddr>,
}

impl Node {
    /// Starts a node: checks the settings, opens the state, starts chain sync, validation,
    /// the network, the publisher and (if configured) the REST API.
    pub async fn start(config: NodeConfig) -> Result<Self, NodeError> {
        let checked = config.validate()?;
        let chain = connect_chain(&config, &checked).await?;
        let db = open_state(&config, &chain)?;
        let archive = open_archive(&config, &db).await?;
        let (mut registry, metrics) = new_metrics();
        let member = config.membership.as_ref().map(load_member).transpose()?;
        let ledger = match (&config.membership, &member) {
            (Some(c), Some(m)) => Some(open_ledger(&c.keystore, m, &db, config.rln.epoch_secs)?),
            _ => None,
        };
        let keys = load_keys(&config.rln, member.is_some()).await?;
        check_dev_keys(&keys, chain.chain_id, config.rln.insecure_dev_keys)?;
        tracing::info!("keys: {}", keys.source);
        let keys_info = KeysInfo {
            source: keys.source,
            insecure: keys.insecure,
        };
        let (prover, verifier) = (keys.prover.map(Arc::new), keys.verifier);

        let mut supervisor = Supervisor::new();
        let (sync_status, synced) = start_sync(&mut supervisor, &config, chain, &db, &metrics);
        let validation = start_validation(
            &mut supervisor,
            &config,
            &checked,
            (&db, &archive),
            verifier,
            synced,
            &metrics,
        )?;
        let hub = validation.hub.clone();
        start_archive(&mut supervisor, &config, &checked, &archive, &hub, &metrics)?;
        let (validator, sinks) = (validation.validator.clone(), validation.sinks.clone());
        let pipeline = validation.pipeline.clone();
        let net = start_network(
            &mut supervisor,
            &config,
            validation,
            &metrics,
            &mut registry,
        )
        .await?;
        let publisher = start_publisher(
            &mut supervisor,
            &config,
            &checked,
            member
                .zip(prover)
                .zip(ledger)
                .map(|((member, prover), ledger)| Signer {
                    member,
                    prover,
                    ledger,
                }),
            &db,
            &metrics,
            &sync_status,
        );
        let outbox = Arc::new(Outbox::new(
            OutboxSettings {
                epoch_secs: config.rln.epoch_secs,
                max_clock_gap: Duration::from_secs(config.rln.max_clock_gap_secs),
                max_message_bytes: config.network.max_message_bytes,
                client_proofs: config.lightpush.rln_proofs,
                client_share: config.lightpush.client_share,
            },
            net.clone(),
            pipeline,
            hub.clone(),
            publisher,
            metrics.clone(),
        ));
        let store = start_light_services(
            &mut supervisor,
            &config,
            &checked,
            &net,
            validator,
            &outbox,
            sinks,
        )?;
        supervisor.spawn(
            "nullifier pruning",
            prune_nullifiers(
                db.clone(),
                config.rln.epoch_secs,
                config.rln.max_clock_gap_secs,
                supervisor.signal(),
            ),
        );
        let rest = config.rest.listen;
        let handle = NodeHandle::new(Shared {
            config,
            db,
            archive,
            hub,
            outbox,
            metrics,
            registry: Mutex::new(registry),
            net,
            sync_status,
            keys: keys_info,
            store,
        });
        let rest_addr = match rest {
            Some(addr) => {
                let (bound, serve) =
                    crate::rest::serve(handle.clone(), addr, supervisor.signal()).await?;
                supervisor.spawn("REST API", serve);
                Some(bound)
            }
            None => None,
        };
        tracing::info!(
            peer_id = %handle.peer_id(),
            publishing = handle.publisher().is_some(),
            backend = %rln_bn254::backend_report(),
            "node started"
        );
        Ok(Self {
            handle,
            supervisor,
            rest_addr,
        })
    }

    /// The parts the REST API, the binary and tests use.
    pub fn handle(&self) -> &NodeHandle {
        &self.handle
    }

    /// Where the REST API listens.
    pub fn rest_addr(&self) -> Option<SocketAddr> {
        self.rest_addr
    }

    /// Resolves when the node stops by itself, because a background task failed.
    pub fn stopping(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.supervisor.stopping()
    }

    /// Stops every task and worker, flushes the state, and reports a task that failed.
    pub async fn shutdown(self) -> Result<(), NodeError> {
        // The outbox holds a sender of the validation queue; the workers end only once
        // every sender is gone.
        self.handle.outbox().close();
        let tasks = self.supervisor.shutdown().await;
        if let Err(e) = self.handle.db().flush() {
            tracing::error!("flushing the state failed: {e}");
        }
        tasks
    }
}
