//! Where things are: the repository root, the tools `make tools` installs, the interop data.

use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A tool installed under `tools/node_modules` by `make tools`; panics with the fix when it
/// is missing.
fn tool(relative: &str) -> PathBuf {
    let path = repo().join("tools/node_modules").join(relative);
    assert!(
        path.exists(),
        "{} is missing: run `make tools` (make test does it)",
        path.display()
    );
    path
}

/// The anvil binary (npm `@foundry-rs/anvil-linux-amd64`).
pub fn anvil() -> PathBuf {
    tool("@foundry-rs/anvil-linux-amd64/bin/anvil")
}

/// A JavaScript tool's launcher in `tools/node_modules/.bin` (circom2, snarkjs, …).
pub fn node_tool(name: &str) -> PathBuf {
    tool(&format!(".bin/{name}"))
}

/// The reference implementation's data: `../shared/interop/zerokit-v2.0.2` beside the
/// repository, or `$RLN_INTEROP_DIR`.
pub fn interop_dir() -> PathBuf {
    std::env::var_os("RLN_INTEROP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/interop/zerokit-v2.0.2"))
}
