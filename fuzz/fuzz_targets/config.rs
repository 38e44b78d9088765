//! The node's configuration file (`rln-node run --config FILE`): TOML read into `NodeConfig`,
//! as the binary reads it, then `NodeConfig::validate`, which derives every typed value.
//!
//! Checks: no panic; a configuration that was read, printed again as TOML (as `rln-node run
//! --print-config` prints it), reads back and prints the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rln_node::NodeConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = toml::from_str::<NodeConfig>(text) else {
        return;
    };
    let _ = config.validate();
    if let Ok(printed) = toml::to_string_pretty(&config) {
        let back: NodeConfig = toml::from_str(&printed).expect("a printed config reads back");
        let again = toml::to_string_pretty(&back).expect("and prints again");
        assert_eq!(again, printed);
    }
});
