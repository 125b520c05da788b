//! The committed example configuration, `deploy/satpool-node.toml`: it
//! parses into the daemon's configuration, and it explains every key.

use std::path::PathBuf;

use satpool_node::config_file::{self, file_keys};

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/satpool-node.toml")
}

#[test]
fn example_parses_into_the_config() {
    let path = example();
    let conf = format!("--conf={}", path.display());
    let cli = config_file::load_from(["satpool-node", conf.as_str()]).expect("the example is valid");
    let config = cli.config;
    assert_eq!(config.network, satpool_node::params::Network::Devnet);
    assert_eq!(config.devnet_spacing, 30);
    assert_eq!(config.dbcache, 256);
    assert!(config.p2p.listen);
    assert!(!config.mine);
}

#[test]
fn example_explains_every_key() {
    let text = std::fs::read_to_string(example()).expect("the example is there");
    let command = config_file::command();
    for (key, _) in file_keys(&command) {
        let set = format!("{key} =");
        let commented = format!("# {key}");
        assert!(
            text.lines().any(|line| line.starts_with(&set) || line.starts_with(&commented)),
            "deploy/satpool-node.toml does not mention {key}"
        );
    }
}
