//! `satpool-node attack-probability`: whitepaper section 11 from the command
//! line, and the daemon's flags still parsing without a subcommand.

use std::process::Command;

use clap::Parser;
use satpool_node::daemon::{Cli, Command as Sub};

const NODE_BIN: &str = env!("CARGO_BIN_EXE_satpool-node");

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(NODE_BIN).args(args).env("RUST_BACKTRACE", "0").output().expect("the binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn probability_and_blocks_for_risk() {
    assert_eq!(run(&["attack-probability", "--q", "0.1", "--z", "5"]), (true, "0.0009137".into(), String::new()));
    assert_eq!(run(&["attack-probability", "--q", "0.3", "--z", "10"]).1, "0.0416605");
    assert_eq!(run(&["attack-probability", "--q", "0.45", "--risk", "0.001"]).1, "340");
}

#[test]
fn bad_values_name_the_flag() {
    let cases: &[(&str, &[&str], &str)] = &[
        ("q above 1", &["attack-probability", "--q", "1.5", "--z", "1"], "--q"),
        ("q zero", &["attack-probability", "--q", "0", "--z", "1"], "--q"),
        ("negative z", &["attack-probability", "--q", "0.1", "--z", "-1"], "--z"),
        ("risk of 1", &["attack-probability", "--q", "0.1", "--risk", "1"], "--risk"),
        ("risk negative", &["attack-probability", "--q", "0.1", "--risk", "-0.5"], "--risk"),
        ("majority attacker", &["attack-probability", "--q", "0.6", "--risk", "0.01"], "--q"),
    ];
    for (name, args, flag) in cases {
        let (ok, _, stderr) = run(args);
        assert!(!ok, "{name}: should fail");
        assert!(stderr.contains(flag), "{name}: {stderr}");
    }
}

#[test]
fn daemon_flags_parse_as_before() {
    let cli = Cli::try_parse_from(["satpool-node", "--network", "devnet", "--mine"]).expect("parses");
    assert!(cli.command.is_none());
    assert!(cli.config.mine);
    assert_eq!(cli.config.attacker_share.get(), 0.1);
    let cli = Cli::try_parse_from(["satpool-node", "--attacker-share", "0.25"]).expect("parses");
    assert_eq!(cli.config.attacker_share.get(), 0.25);
    assert!(Cli::try_parse_from(["satpool-node", "--attacker-share", "2"]).is_err());
    let cli = Cli::try_parse_from(["satpool-node", "attack-probability", "--q", "0.2", "--z", "3"]).expect("parses");
    assert!(matches!(cli.command, Some(Sub::AttackProbability(_))));
}
