//! Registered members and their keystores.

use std::path::{Path, PathBuf};

use rln_chain::keystore::{Keystore, KeystoreMembership};
use rln_core::Identity;

use crate::chain::TestChain;

/// The password of every test keystore.
pub const PASSWORD: &str = "rln-testkit";

/// PBKDF2 rounds of test keystores: few, so tests do not spend seconds deriving keys.
const TEST_KDF_ROUNDS: u32 = 1_000;

/// A member registered on a [`TestChain`], with its credential in a keystore.
#[derive(Debug, Clone)]
pub struct TestMember {
    /// The identity.
    pub identity: Identity,
    /// Its leaf index.
    pub index: u64,
    /// Its message limit.
    pub limit: u64,
    /// The keystore holding it (password [`PASSWORD`]).
    pub keystore: PathBuf,
}

impl TestChain {
    /// Registers a random identity with `limit` and writes its keystore to
    /// `dir/keystore.json`.
    pub async fn register_member(&self, dir: &Path, limit: u32) -> TestMember {
        self.register_identity(Identity::random(&mut rand::rngs::OsRng), dir, limit)
            .await
    }

    /// Registers `identity` with `limit` and writes its keystore to `dir/keystore.json`.
    pub async fn register_identity(
        &self,
        identity: Identity,
        dir: &Path,
        limit: u32,
    ) -> TestMember {
        let index = self.register(&identity, limit).await;
        let keystore = dir.join("keystore.json");
        let mut ks = Keystore::load_or_new(&keystore).expect("the keystore opens");
        let credential = KeystoreMembership::new(
            &identity,
            None,
            self.anvil.chain_id(),
            &self.contract.to_checksum(None),
            index,
            u64::from(limit),
        );
        ks.add(
            &credential,
            PASSWORD.as_bytes(),
            TEST_KDF_ROUNDS,
            &mut rand::rngs::OsRng,
        )
        .expect("the credential is stored");
        ks.save(&keystore).expect("the keystore is written");
        rln_db::MessageIdLedger::open(&rln_db::MessageIdLedger::path_for(&keystore))
            .and_then(|l| l.record_new(&identity.commitment()))
            .expect("the new membership is recorded in the message-id ledger");
        TestMember {
            identity,
            index,
            limit: u64::from(limit),
            keystore,
        }
    }
}
