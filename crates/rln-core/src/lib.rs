//! The pure core of rln-node: RLN v2 ("RLN-Diff") arithmetic without I/O.
//!
//! - [`field`]: BN254 scalar field elements and their 32-byte little-endian wire encoding.
//! - [`poseidon`]: circomlib-compatible Poseidon for 1–3 inputs (computed by `rln-bn254`).
//! - [`identity`]: member secrets, id commitments and rate commitments (the tree leaves).
//! - [`protocol`]: epochs, external nullifiers, signal hashing, shares and secret recovery.
//! - [`merkle`]: the depth-20 membership tree over a [`merkle::NodeStore`].
//! - [`root_window`]: the recent roots a proof may be made against.
//!
//! A member with identity `secret` and limit `L` owns the leaf
//! `Poseidon(Poseidon(secret), L)`. For each message it reveals a share
//! `(x, y = secret + a1·x)` and a nullifier `Poseidon(a1)`, where `a1` depends on the
//! secret, the epoch and the message id; `rln-zk` proves all of this in zero knowledge.

pub mod error;
pub mod field;
pub mod identity;
pub mod merkle;
pub mod poseidon;
pub mod protocol;
pub mod root_window;

pub use error::{FieldError, RlnError, TreeError};
pub use field::{
    fr_from_hex, fr_from_le_bytes, fr_from_le_slice, fr_to_hex, fr_to_le_bytes, Fr, FR_BYTES,
};
pub use identity::{rate_commitment, Identity, MAX_USER_MESSAGE_LIMIT};
pub use merkle::{MemoryStore, MerkleProof, MerkleTree, NodeStore, TreeChanges, TREE_DEPTH};
pub use protocol::{
    compute_share, epoch_at, epoch_bytes, epoch_from_bytes, epoch_to_fr, external_nullifier,
    hash_to_field, recover_secret, Epoch, RlnIdentifier, Share, ShareAndNullifier,
};
pub use root_window::{RootEntry, RootWindow, DEFAULT_ROOT_WINDOW};
