//! The rules of ARCHITECTURE.md that a machine can check: which workspace crates each crate
//! may depend on (never upwards), and no `unsafe` outside rln-bn254.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layering of ARCHITECTURE.md, "Crates": each crate and the workspace crates it may
/// depend on (normal dependencies).
const ALLOWED: [(&str, &[&str]); 8] = [
    (
        "rln-testkit",
        &[
            "rln-node",
            "rln-relay",
            "rln-chain",
            "rln-db",
            "rln-zk",
            "rln-core",
        ],
    ),
    (
        "rln-node",
        &[
            "rln-relay",
            "rln-chain",
            "rln-db",
            "rln-zk",
            "rln-core",
            "rln-bn254",
        ],
    ),
    ("rln-relay", &["rln-db", "rln-zk", "rln-core"]),
    ("rln-chain", &["rln-db", "rln-core"]),
    ("rln-db", &["rln-core"]),
    ("rln-zk", &["rln-core", "rln-bn254"]),
    ("rln-core", &["rln-bn254"]),
    ("rln-bn254", &[]),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The workspace crates named in one `[section]` of a manifest (`name.workspace = true` or
/// `name = { … }` lines).
fn workspace_deps(manifest: &str, section: &str) -> BTreeSet<String> {
    let mut deps = BTreeSet::new();
    let mut inside = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line == section;
            continue;
        }
        if !inside {
            continue;
        }
        let name = line
            .split(['=', '.', ' '])
            .next()
            .unwrap_or_default()
            .trim();
        if name.starts_with("rln-") {
            deps.insert(name.to_string());
        }
    }
    deps
}

#[test]
fn no_crate_depends_on_a_crate_above_it() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.into_iter().collect();
    let crates = std::fs::read_dir(root().join("crates")).unwrap();
    let mut seen = BTreeSet::new();
    for entry in crates {
        let dir = entry.unwrap().path();
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let name = dir.file_name().unwrap().to_str().unwrap().to_string();
        let Some(may) = allowed.get(name.as_str()) else {
            panic!("crate {name} is not in ARCHITECTURE.md's layering (and this test's list)");
        };
        for dep in workspace_deps(&manifest, "[dependencies]") {
            assert!(
                may.contains(&dep.as_str()),
                "{name} depends on {dep}, which ARCHITECTURE.md does not allow"
            );
        }
        seen.insert(name);
    }
    assert_eq!(
        seen.len(),
        ALLOWED.len(),
        "every listed crate exists: {seen:?}"
    );
    // The parser sees what it should: the node's dependencies are found.
    let node = std::fs::read_to_string(root().join("crates/rln-node/Cargo.toml")).unwrap();
    assert!(workspace_deps(&node, "[dependencies]").contains("rln-relay"));
}

/// Rust files under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Whether a line of code (comments stripped) uses the `unsafe` keyword.
fn uses_unsafe(line: &str) -> bool {
    let code = line.split("//").next().unwrap_or_default();
    // Strings are rare enough here to ignore, but a string mentioning the word must not
    // count: drop quoted parts.
    let mut outside = String::new();
    for (i, part) in code.split('"').enumerate() {
        if i % 2 == 0 {
            outside.push_str(part);
            outside.push(' ');
        }
    }
    outside
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .any(|word| word == "unsafe")
}

#[test]
fn unsafe_code_lives_in_rln_bn254_only() {
    assert!(uses_unsafe(
        "    unsafe { core::arch::x86_64::_mm_pause() }"
    ));
    assert!(!uses_unsafe("// unsafe is only in rln-bn254"));
    let quoted = format!("let s = {:?};", "unsafe");
    assert!(!uses_unsafe(&quoted));
    let mut files = Vec::new();
    for dir in ["crates", "tests", "benches", "fuzz/fuzz_targets"] {
        let path = root().join(dir);
        if path.exists() {
            rust_files(&path, &mut files);
        }
    }
    assert!(files.len() > 100, "found only {} files", files.len());
    let bn254 = root().join("crates/rln-bn254");
    let mut found = Vec::new();
    for file in files.iter().filter(|f| !f.starts_with(&bn254)) {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if uses_unsafe(line) {
                found.push(format!("{}:{}", file.display(), n + 1));
            }
        }
    }
    assert!(found.is_empty(), "unsafe outside rln-bn254: {found:?}");
}
