//! What a node proves and verifies with: the membership from its keystore, the proving key
//! (only with a membership) and the verifying key.

use std::path::Path;
use std::sync::Arc;

use rln_chain::Keystore;
use rln_relay::Member;
use rln_zk::{Prover, Verifier, ZkeyData};

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

/// The prover (when the node publishes) and the verifier, loaded off the async threads: a
/// proving key takes a second or two to parse and precompute.
pub async fn load_keys(
    rln: &RlnConfig,
    need_prover: bool,
) -> Result<(Option<Arc<Prover>>, Verifier), NodeError> {
    let zkey = rln.zkey.clone();
    let vk_path = rln.verifying_key.clone();
    tokio::task::spawn_blocking(move || {
        let prover = match (need_prover, &zkey) {
            (false, _) => None,
            (true, Some(path)) => Some(Arc::new(Prover::with_zkey_path(path)?)),
            (true, None) => Some(Arc::new(Prover::dev()?)),
        };
        let verifier = match (&vk_path, &prover, &zkey) {
            (Some(path), _, _) => Verifier::from_path(path)?,
            (None, Some(p), _) => Verifier::new(p.verifying_key())?,
            (None, None, Some(path)) => Verifier::new(&ZkeyData::from_path(path)?.proving_key.vk)?,
            (None, None, None) => Verifier::dev()?,
        };
        Ok::<_, NodeError>((prover, verifier))
    })
    .await
    .map_err(|_| NodeError::Stopped)?
}
