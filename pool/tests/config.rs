//! The committed example configuration parses, and says what the defaults are.

use std::path::Path;

use clap::Parser;
use satpool::config::{Args, Config, Environment, FileConfig, Network, PayoutMode, PplnsWindow};

#[test]
fn the_example_parses_and_matches_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/satpool.toml");
    let file = FileConfig::read(&path).expect("the example parses");
    let env = Environment { node_password: None, home: Some("/home/op".into()) };
    let config = Config::from_layers(file, Args::parse_from(["satpool"]), &env).expect("the example is valid");
    assert_eq!(config.network, Network::Devnet);
    assert_eq!(config.payout.mode, PayoutMode::Pplns);
    assert_eq!(config.payout.window, PplnsWindow::NetworkMultiple(2.0));
    assert_eq!(config.stratum.listen.port(), 3333);

    // The example states the defaults: the same address alone gives the same configuration.
    let defaults = Config::from_layers(
        FileConfig::default(),
        Args::parse_from(["satpool", "--pool-address", "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"]),
        &env,
    )
    .expect("valid");
    assert_eq!(format!("{config:?}"), format!("{defaults:?}"));
}
