//! Prometheus metrics, one registry for the node and libp2p. Names follow nwaku's
//! `waku_rln_*` where nwaku has one; the rest are `rln_node_*`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// A `type` label (nwaku's name for the reason of an invalid message).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabel {
    /// The reason.
    pub r#type: String,
}

/// A `result` label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// The outcome.
    pub result: String,
}

/// A light protocol and the status code of an answer.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabel {
    /// `lightpush_v3`, `lightpush_v2`, `filter`.
    pub protocol: String,
    /// The status code answered.
    pub code: String,
}

/// The node's own metrics.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Messages that reached validation.
    pub messages: Counter,
    /// Valid messages (accepted and relayed).
    pub valid: Counter,
    /// Rejected messages by reason.
    pub invalid: Family<TypeLabel, Counter>,
    /// Ignored messages (duplicates, full queue, not yet synced) by reason.
    pub ignored: Family<TypeLabel, Counter>,
    /// Double signals detected.
    pub spam: Counter,
    /// Secrets recovered from double signals.
    pub secrets_recovered: Counter,
    /// Slash attempts by result.
    pub slashes: Family<ResultLabel, Counter>,
    /// Groth16 verifications performed (single or inside a batch).
    pub proof_verifications: Counter,
    /// Time to verify one proof (a batch's time divided by its size).
    pub verification_seconds: Histogram,
    /// Proofs in each verification batch.
    pub batch_size: Histogram,
    /// Time to generate one proof.
    pub generation_seconds: Histogram,
    /// Proofs this node generated.
    pub generated: Counter,
    /// Message ids left this epoch for the node's membership.
    pub remaining_proofs: Gauge,
    /// Active members in the synced tree.
    pub registered_members: Gauge,
    /// The last synced block.
    pub synced_block: Gauge,
    /// 1 when caught up with the chain head.
    pub synced: Gauge,
    /// Messages waiting for a validation worker.
    pub queue_depth: Gauge,
    /// Connected peers.
    pub peers: Gauge,
    /// Light-protocol requests by protocol and answered code.
    pub edge_requests: Family<RequestLabel, Counter>,
    /// Proofs made for light-push clients with the node's membership.
    pub lightpush_proofs: Counter,
    /// Light pushes refused because the client used its share of the membership's limit.
    pub lightpush_quota_refusals: Counter,
    /// Filter subscribers (peers) and their criteria.
    pub filter_subscribers: Gauge,
    /// Filter criteria (pubsub topic, content topic) over all subscribers.
    pub filter_criteria: Gauge,
    /// Filter pushes by result (`sent`, `dropped` for a full queue, `failed` stream).
    pub filter_pushes: Family<ResultLabel, Counter>,
    /// Messages offered to the archive, by what became of them (`stored`, `duplicate`,
    /// `dropped` when the writer was behind, `skipped` when not storable, `failed`).
    pub store_archived: Family<ResultLabel, Counter>,
    /// Messages in the archive.
    pub store_messages: Gauge,
    /// Bytes of the archive's keys and values.
    pub store_bytes: Gauge,
    /// Timestamp of the oldest archived message, Unix seconds (0 when empty).
    pub store_oldest_seconds: Gauge,
    /// Time to answer one store query.
    pub store_query_seconds: Histogram,
}

impl Metrics {
    /// Creates the metrics and registers them.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            messages: Counter::default(),
            valid: Counter::default(),
            invalid: Family::default(),
            ignored: Family::default(),
            spam: Counter::default(),
            secrets_recovered: Counter::default(),
            slashes: Family::default(),
            proof_verifications: Counter::default(),
            verification_seconds: Histogram::new(exponential_buckets(0.000_05, 2.0, 14)),
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 8)),
            generation_seconds: Histogram::new(exponential_buckets(0.01, 1.6, 14)),
            generated: Counter::default(),
            remaining_proofs: Gauge::default(),
            registered_members: Gauge::default(),
            synced_block: Gauge::default(),
            synced: Gauge::default(),
            queue_depth: Gauge::default(),
            peers: Gauge::default(),
            edge_requests: Family::default(),
            lightpush_proofs: Counter::default(),
            lightpush_quota_refusals: Counter::default(),
            filter_subscribers: Gauge::default(),
            filter_criteria: Gauge::default(),
            filter_pushes: Family::default(),
            store_archived: Family::default(),
            store_messages: Gauge::default(),
            store_bytes: Gauge::default(),
            store_oldest_seconds: Gauge::default(),
            store_query_seconds: Histogram::new(exponential_buckets(0.000_1, 2.0, 14)),
        };
        let r = registry;
        r.register(
            "waku_rln_messages",
            "Messages that reached RLN validation",
            m.messages.clone(),
        );
        r.register(
            "waku_rln_valid_messages",
            "Messages with a valid RLN proof",
            m.valid.clone(),
        );
        r.register(
            "waku_rln_invalid_messages",
            "Rejected messages by reason",
            m.invalid.clone(),
        );
        r.register(
            "rln_node_ignored_messages",
            "Ignored messages by reason",
            m.ignored.clone(),
        );
        r.register(
            "waku_rln_spam_messages",
            "Double signals detected",
            m.spam.clone(),
        );
        r.register(
            "rln_node_secrets_recovered",
            "Secrets recovered from double signals",
            m.secrets_recovered.clone(),
        );
        r.register(
            "rln_node_slashes",
            "Slash attempts by result",
            m.slashes.clone(),
        );
        r.register(
            "waku_rln_proof_verification",
            "Groth16 verifications",
            m.proof_verifications.clone(),
        );
        r.register(
            "waku_rln_proof_verification_duration_seconds",
            "Time to verify one proof",
            m.verification_seconds.clone(),
        );
        r.register(
            "rln_node_verification_batch_size",
            "Proofs per verification batch",
            m.batch_size.clone(),
        );
        r.register(
            "waku_rln_proof_generation_duration_seconds",
            "Time to generate one proof",
            m.generation_seconds.clone(),
        );
        r.register(
            "waku_rln_total_generated_proofs",
            "Proofs generated by this node",
            m.generated.clone(),
        );
        r.register(
            "waku_rln_remaining_proofs_per_epoch",
            "Message ids left this epoch",
            m.remaining_proofs.clone(),
        );
        r.register(
            "waku_rln_number_registered_memberships",
            "Active members in the tree",
            m.registered_members.clone(),
        );
        r.register(
            "rln_node_synced_block",
            "Last block applied from the chain",
            m.synced_block.clone(),
        );
        r.register(
            "rln_node_synced",
            "1 when caught up with the chain head",
            m.synced.clone(),
        );
        r.register(
            "rln_node_validation_queue_depth",
            "Messages waiting for validation",
            m.queue_depth.clone(),
        );
        r.register("rln_node_peers", "Connected peers", m.peers.clone());
        r.register(
            "rln_node_light_requests",
            "Light-protocol requests by protocol and status code",
            m.edge_requests.clone(),
        );
        r.register(
            "rln_node_lightpush_proofs",
            "Proofs made for light-push clients",
            m.lightpush_proofs.clone(),
        );
        r.register(
            "rln_node_lightpush_quota_refusals",
            "Light pushes refused: the client's share of the limit is used",
            m.lightpush_quota_refusals.clone(),
        );
        r.register(
            "rln_node_filter_subscribers",
            "Peers with filter subscriptions",
            m.filter_subscribers.clone(),
        );
        r.register(
            "rln_node_filter_criteria",
            "Filter criteria over all subscribers",
            m.filter_criteria.clone(),
        );
        r.register(
            "rln_node_filter_pushes",
            "Filter pushes by result",
            m.filter_pushes.clone(),
        );
        r.register(
            "rln_node_store_archived",
            "Messages offered to the store's archive, by result",
            m.store_archived.clone(),
        );
        r.register(
            "rln_node_store_messages",
            "Messages in the store's archive",
            m.store_messages.clone(),
        );
        r.register(
            "rln_node_store_bytes",
            "Bytes of the store archive's keys and values",
            m.store_bytes.clone(),
        );
        r.register(
            "rln_node_store_oldest_timestamp_seconds",
            "Timestamp of the oldest archived message (0: empty)",
            m.store_oldest_seconds.clone(),
        );
        r.register(
            "rln_node_store_query_duration_seconds",
            "Time to answer one store query",
            m.store_query_seconds.clone(),
        );
        // Series that exist from the start, at zero, so dashboards show 0 rather than no data.
        for protocol in ["lightpush_v3", "lightpush_v2", "filter", "store"] {
            m.edge_requests
                .get_or_create(&RequestLabel {
                    protocol: protocol.into(),
                    code: "200".into(),
                })
                .get();
        }
        for result in ["stored", "duplicate", "dropped"] {
            m.store_archived
                .get_or_create(&ResultLabel {
                    result: result.into(),
                })
                .get();
        }
        for result in ["sent", "dropped", "failed"] {
            m.filter_pushes
                .get_or_create(&ResultLabel {
                    result: result.into(),
                })
                .get();
        }
        m
    }

    /// Counts a light-protocol answer.
    pub fn request(&self, protocol: &str, code: u32) {
        self.edge_requests
            .get_or_create(&RequestLabel {
                protocol: protocol.to_string(),
                code: code.to_string(),
            })
            .inc();
    }

    /// A counter of `invalid` or `ignored` by reason.
    pub fn reason(family: &Family<TypeLabel, Counter>, reason: &str) -> Counter {
        family
            .get_or_create(&TypeLabel {
                r#type: reason.to_string(),
            })
            .clone()
    }
}
