//! The committed example configuration parses, and says what the defaults
//! are; every key of the file has a flag and an environment variable, and
//! takes effect the same from either.

use std::path::Path;

use clap::{CommandFactory, Parser};
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

/// Every key of the file, with its flag and a value other than the default
/// (as TOML, and as the flag takes it).
const KEYS: &[(&str, &str, &str, &str)] = &[
    ("network", "network", "\"regtest\"", "regtest"),
    ("data_dir", "data-dir", "\"/srv/pool\"", "/srv/pool"),
    ("db", "db", "\"sqlite:/srv/ledger.db\"", "sqlite:/srv/ledger.db"),
    ("node.url", "node-url", "\"http://10.0.0.1:8332/\"", "http://10.0.0.1:8332/"),
    ("node.cookie", "node-cookie", "\"/srv/node/.cookie\"", "/srv/node/.cookie"),
    ("node.user", "node-user", "\"pool\"", "pool"),
    // Read only with a user, and then only when the environment has no password.
    ("node.password_file", "node-password-file", "\"/srv/password\"", "/srv/password"),
    ("stratum.listen", "stratum", "\"127.0.0.1:4444\"", "127.0.0.1:4444"),
    ("stratum.extranonce2_size", "extranonce2-size", "4", "4"),
    ("stratum.start_difficulty", "start-difficulty", "2.0", "2"),
    ("stratum.min_difficulty", "min-difficulty", "0.5", "0.5"),
    ("stratum.max_difficulty", "max-difficulty", "1e9", "1e9"),
    ("stratum.share_rate", "share-rate", "5.0", "5"),
    ("stratum.vardiff_window", "vardiff-window", "120", "120"),
    ("http.listen", "http", "\"127.0.0.1:9090\"", "127.0.0.1:9090"),
    (
        "pool.address",
        "pool-address",
        "\"bcrt1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qzf4jry\"",
        "bcrt1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qzf4jry",
    ),
    ("pool.fee", "pool-fee", "2.5", "2.5"),
    ("pool.payout", "payout", "\"solo\"", "solo"),
    ("pool.pplns_window", "pplns-window", "\"3x\"", "3x"),
    ("pool.min_payout", "min-payout", "5000", "5000"),
    ("pool.max_outputs", "max-outputs", "50", "50"),
    ("pool.tag", "pool-tag", "\"/x/\"", "/x/"),
    ("pool.template_refresh", "template-refresh", "10", "10"),
    ("limits.max_connections", "max-connections", "100", "100"),
    ("limits.max_connections_per_ip", "max-connections-per-ip", "10", "10"),
    ("limits.max_line_length", "max-line-length", "4096", "4096"),
    ("limits.idle_timeout", "idle-timeout", "300", "300"),
    ("limits.handshake_timeout", "handshake-timeout", "10", "10"),
    ("limits.max_jobs", "max-jobs", "8", "8"),
    ("limits.max_shares_per_job", "max-shares-per-job", "5000", "5000"),
    ("limits.pending_shares", "pending-shares", "8", "8"),
    ("limits.share_queue", "share-queue", "1000", "1000"),
    ("limits.outbound_queue", "outbound-queue", "64", "64"),
    ("limits.write_timeout", "write-timeout", "5", "5"),
    ("limits.ban_threshold", "ban-threshold", "10", "10"),
    ("limits.ban_window", "ban-window", "30", "30"),
    ("limits.ban_duration", "ban-duration", "60", "60"),
    ("limits.db_connections", "db-connections", "4", "4"),
];

const ALICE: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";

/// The keys `FileConfig` knows, as `key` or `section.key`, read from its
/// `Debug` (so that a key added there and not here fails the test).
fn file_keys() -> Vec<String> {
    let debug = format!("{:#?}", FileConfig::default());
    let mut keys = Vec::new();
    let mut section = None;
    for line in debug.lines() {
        let depth = line.len() - line.trim_start().len();
        let Some((name, value)) = line.trim().split_once(": ") else { continue };
        match depth {
            4 if value.ends_with('{') => section = Some(name.to_owned()),
            4 => keys.push(name.to_owned()),
            8 => keys.push(format!("{}.{name}", section.as_deref().expect("inside a section"))),
            _ => {}
        }
    }
    keys
}

/// TOML for `entries` (`key` or `section.key`, and a TOML value).
fn render(entries: &[(&str, &str)]) -> String {
    let mut top = String::new();
    let mut sections: Vec<(&str, String)> = Vec::new();
    for (key, value) in entries {
        match key.split_once('.') {
            None => top.push_str(&format!("{key} = {value}\n")),
            Some((section, name)) => {
                let at = match sections.iter().position(|(s, _)| *s == section) {
                    Some(at) => at,
                    None => {
                        sections.push((section, String::new()));
                        sections.len() - 1
                    }
                };
                sections[at].1.push_str(&format!("{name} = {value}\n"));
            }
        }
    }
    for (section, body) in sections {
        top.push_str(&format!("[{section}]\n{body}"));
    }
    top
}

#[test]
fn every_file_key_has_a_flag_an_environment_variable_help_and_an_example() {
    let mut known: Vec<String> = KEYS.iter().map(|k| k.0.to_owned()).collect();
    let mut keys = file_keys();
    known.sort();
    keys.sort();
    assert_eq!(keys, known, "the keys of FileConfig and of this test");

    let command = Args::command();
    let example = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/satpool.toml"))
        .expect("the example");
    for (key, flag, _, _) in KEYS {
        let arg = command
            .get_arguments()
            .find(|a| a.get_long() == Some(*flag))
            .unwrap_or_else(|| panic!("{key}: no --{flag}"));
        let env = arg.get_env().and_then(|e| e.to_str()).unwrap_or_else(|| panic!("--{flag}: no environment"));
        let expected = match *flag {
            "network" => "SATPOOL_NETWORK".to_owned(),
            flag => format!("SATPOOL_POOL_{}", flag.trim_start_matches("pool-").replace('-', "_").to_uppercase()),
        };
        assert_eq!(env, expected, "--{flag}");
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        assert!(help.len() > 10, "--{flag}: no help");

        // The example documents the key in its section (set, or commented
        // out when its default depends on another), with its flag.
        let (section, name) = key.split_once('.').map_or(("", *key), |(s, n)| (s, n));
        let mut current = "";
        let documented = example.lines().any(|line| {
            let line = line.trim();
            if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                current = s;
            }
            current == section && line.trim_start_matches("# ").starts_with(&format!("{name} = "))
        });
        assert!(documented, "deploy/satpool.toml does not document {key}");
        let needle = format!("--{flag}");
        let named = example.match_indices(&needle).any(|(at, _)| {
            example[at + needle.len()..].chars().next().is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '-'))
        });
        assert!(named, "deploy/satpool.toml does not name --{flag}");
    }
}

#[test]
fn every_key_takes_effect_the_same_from_the_file_and_from_its_flag() {
    let env = Environment { node_password: Some("secret".into()), home: Some("/home/op".into()) };
    let load = |entries: &[(&str, &str)], flags: &[&str]| {
        let file = FileConfig::parse(&render(entries), Path::new("test.toml")).expect("parses");
        let mut argv = vec!["satpool"];
        argv.extend_from_slice(flags);
        let config = Config::from_layers(file, Args::parse_from(argv), &env);
        format!("{:?}", config.unwrap_or_else(|e| panic!("{entries:?} {flags:?}: {e}")))
    };
    let address = format!("\"{ALICE}\"");
    let defaults = load(&[("pool.address", &address)], &[]);
    for (key, flag, toml_value, flag_value) in KEYS {
        let base: Vec<(&str, &str)> =
            if *key == "pool.address" { Vec::new() } else { vec![("pool.address", address.as_str())] };
        let mut in_file = base.clone();
        in_file.push((key, toml_value));
        let from_file = load(&in_file, &[]);
        let flag = format!("--{flag}");
        let mut flags = vec![flag.as_str(), flag_value];
        if *key == "pool.address" {
            flags.clear();
            flags.extend(["--pool-address", flag_value]);
            let from_flag = load(&[("pool.address", &address)], &flags);
            assert_eq!(from_file, from_flag, "{key}");
            continue;
        }
        let from_flag = load(&base, &flags);
        assert_eq!(from_file, from_flag, "{key}: the file and the flag");
        if *key != "node.password_file" {
            assert_ne!(from_file, defaults, "{key} changes nothing");
        }
    }
}
