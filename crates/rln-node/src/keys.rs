//! What a node proves and verifies with: the membership from its keystore, the proving key
//! (only with a membership) and the verifying key.

use std::path::Path;

use rln_chain::Keystore;
use rln_relay::Member;
use rln_zk::{KeyFiles, LoadedKeys};

use crate::config::{MembershipConfig, RlnConfig};
use crate::error::NodeError;

/// The membership `config` points to, decrypted.
pub fn load_member(config: &MembershipConfig) -> Result<Member, NodeError> {
    let path = &config.keystore;
    if !path.exists() {
        return Err(NodeError::Membership(format!(
            "the keystore {} does not exist; register a membership into it first",
            path.display()
        )));
    }
    let keystore = Keystore::load(path)?;
    let id = choose(&keystore, config.id.as_deref(), path)?;
    let m = keystore.get(&id, config.password.as_bytes())?;
    let identity = m.identity()?;
    let limit = m.user_message_limit.ok_or_else(|| {
        NodeError::Membership(format!("membership {id} does not record its message limit"))
    })?;
    Ok(Member {
        identity,
        limit,
        index: m.tree_index,
    })
}

/// The membership id to use: the one asked for, or the keystore's only one.
pub fn choose(keystore: &Keystore, wanted: Option<&str>, path: &Path) -> Result<String, NodeError> {
    let ids: Vec<&str> = keystore.memberships().collect();
    match (wanted, ids.as_slice()) {
        (Some(id), _) => Ok(id.to_string()),
        (None, [one]) => Ok(one.to_string()),
        (None, []) => Err(NodeError::Membership(format!(
            "the keystore {} holds no membership",
            path.display()
        ))),
        (None, many) => Err(NodeError::Membership(format!(
            "the keystore {} holds {} memberships ({}); choose one with `membership.id`",
            path.display(),
            many.len(),
            many.join(", ")
        ))),
    }
}

/// The chain id of anvil and Hardhat: a local development chain, where the INSECURE
/// development key is acceptable.
pub const DEV_CHAIN_ID: u64 = 31_337;

/// The prover (when the node publishes) and the verifier, loaded off the async threads and
/// checked to belong together: a proving key takes a second or two to parse and precompute.
pub async fn load_keys(rln: &RlnConfig, need_prover: bool) -> Result<LoadedKeys, NodeError> {
    let set = rln.keys;
    let files = KeyFiles {
        zkey: rln.zkey.clone(),
        witness_graph: rln.witness_graph.clone(),
        verifying_key: rln.verifying_key.clone(),
    };
    tokio::task::spawn_blocking(move || rln_zk::key_set::load(set, &files, need_prover))
        .await
        .map_err(|_| NodeError::Stopped)?
        .map_err(NodeError::from)
}

/// Refuses the INSECURE development key on a chain that is not a local development chain,
/// unless the operator insists; warns loudly whenever it is in use.
pub fn check_dev_keys(keys: &LoadedKeys, chain_id: u64, allowed: bool) -> Result<(), NodeError> {
    if !keys.insecure {
        return Ok(());
    }
    if chain_id != DEV_CHAIN_ID && !allowed {
        return Err(NodeError::Config {
            key: "rln.keys",
            problem: format!(
                "selects the INSECURE development key on chain {chain_id}, which is not a local \
                 development chain ({DEV_CHAIN_ID}): anyone can forge proofs against that key, \
                 so the rate limit would not hold; use the `waku` key set or a ceremony key"
            ),
        });
    }
    tracing::warn!(
        "INSECURE: proving and verifying with the development key ({}); anyone can forge \
         proofs against it and the rate limit does not hold. Never use it on a real network.",
        keys.source
    );
    Ok(())
}
