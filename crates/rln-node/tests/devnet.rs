//! A short scripted devnet run, as `make devnet DURATION=…` does it: anvil, four `rln-node run`
//! processes, honest traffic and a spammer. The run must pass its own verdict.

use std::process::Command;

#[test]
fn a_short_devnet_run_delivers_honest_messages_and_catches_the_spammer() {
    let anvil = rln_testkit::paths::anvil();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rln-devnet"))
        .args(["--nodes", "4", "--duration", "30", "--epoch-secs", "6"])
        .arg("--dir")
        .arg(dir.path().join("devnet"))
        .arg("--anvil")
        .arg(&anvil)
        .arg("--rln-node")
        .arg(env!("CARGO_BIN_EXE_rln-node"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("devnet: PASS"), "{text}");
    assert!(text.contains("secret recovered: yes"), "{text}");
    assert!(text.contains(" 0 excess delivered"), "{text}");
}

/// `make chaos` in short: the same network with a node killed (SIGKILL) and restarted, anvil
/// restarted from its state file and a reorganisation that drops a registration, during the
/// traffic. The verdict must still pass, roots included.
#[test]
fn a_short_chaos_run_keeps_every_root_equal_to_the_contracts() {
    let anvil = rln_testkit::paths::anvil();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rln-devnet"))
        .args(["--nodes", "4", "--duration", "45", "--epoch-secs", "6"])
        .args(["--chaos", "--chaos-every", "5"])
        .arg("--dir")
        .arg(dir.path().join("chaos"))
        .arg("--anvil")
        .arg(&anvil)
        .arg("--rln-node")
        .arg(env!("CARGO_BIN_EXE_rln-node"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("chaos: PASS"), "{text}");
    assert!(
        text.contains("every node has the contract's root"),
        "{text}"
    );
    assert!(text.contains(" 0 excess delivered"), "{text}");
    for fault in [
        "chaos: kill -9 node",
        "chaos: anvil is back",
        "chaos: reorganisation",
    ] {
        assert!(text.contains(fault), "{fault} missing:\n{text}");
    }
}
