//! The files in `deploy/`, checked with parsers (no container engine runs
//! here): the compose file's services, Prometheus' and Grafana's
//! provisioning, the Grafana dashboard's panels and every metric its
//! expressions name, and each example TOML against its binary's
//! configuration.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_yaml::Value as Yaml;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(deploy().join(path)).unwrap_or_else(|e| panic!("deploy/{path}: {e}"))
}

fn yaml(path: &str) -> Yaml {
    let mut value: Yaml =
        serde_yaml::from_str(&read(path)).unwrap_or_else(|e| panic!("deploy/{path} is not YAML: {e}"));
    // `<<: *anchor`, as compose applies it.
    value.apply_merge().unwrap_or_else(|e| panic!("deploy/{path}: a merge key: {e}"));
    value
}

#[test]
fn compose_services_are_complete() {
    let compose = yaml("compose.yaml");
    let services = compose["services"].as_mapping().expect("services is a mapping");
    let names: BTreeSet<&str> = services.keys().filter_map(Yaml::as_str).collect();
    for expected in ["node", "postgres", "pool", "prometheus", "grafana"] {
        assert!(names.contains(expected), "compose.yaml has no {expected} service");
    }
    for (name, service) in services {
        let name = name.as_str().expect("service names are strings");
        assert!(
            service.get("image").is_some() || service.get("build").is_some(),
            "service {name} has neither image nor build"
        );
        if let Some(build) = service.get("build") {
            let dockerfile = build["dockerfile"].as_str().expect("build.dockerfile");
            let context = build["context"].as_str().expect("build.context");
            let path = deploy().join(context).join(dockerfile);
            assert!(path.is_file(), "service {name}: {} is missing", path.display());
        }
        for port in service.get("ports").and_then(Yaml::as_sequence).into_iter().flatten() {
            let port =
                port.as_str().unwrap_or_else(|| panic!("service {name}: quote ports, as YAML reads 1:2 in base 60"));
            let parts: Vec<&str> = port.split(':').collect();
            assert!((2..=3).contains(&parts.len()), "service {name}: port {port} is not [ip:]host:container");
            for number in &parts[parts.len() - 2..] {
                number.parse::<u16>().unwrap_or_else(|_| panic!("service {name}: port {port}"));
            }
        }
        if let Some(depends) = service.get("depends_on") {
            let depends = depends.as_mapping().expect("depends_on with conditions");
            for (other, condition) in depends {
                let other = other.as_str().expect("a service name");
                assert!(names.contains(other), "service {name} depends on unknown service {other}");
                let condition = condition["condition"].as_str().expect("a condition");
                if condition == "service_healthy" {
                    assert!(
                        services[other].get("healthcheck").is_some(),
                        "{name} waits for {other}'s health, which has no healthcheck"
                    );
                }
            }
        }
    }
    // The pool waits for a healthy database.
    assert_eq!(services["pool"]["depends_on"]["postgres"]["condition"].as_str(), Some("service_healthy"));
    assert!(services["postgres"]["healthcheck"]["test"].is_sequence());
    // Its bind mounts exist.
    for service in ["prometheus", "grafana"] {
        for volume in services[service]["volumes"].as_sequence().expect("volumes") {
            let source = volume.as_str().expect("short syntax").split(':').next().expect("a source");
            if source.starts_with("./") {
                assert!(deploy().join(source).exists(), "{service}: {source} is missing");
            }
        }
    }
}

#[test]
fn compose_keeps_secrets_off_the_file() {
    let text = read("compose.yaml");
    for line in text.lines().filter(|l| l.contains("PASSWORD")) {
        assert!(line.contains("${"), "a password is written into compose.yaml: {line}");
    }
}

#[test]
fn prometheus_scrapes_pool_and_node() {
    let config = yaml("prometheus/prometheus.yml");
    let jobs = config["scrape_configs"].as_sequence().expect("scrape_configs");
    let targets: Vec<&str> = jobs
        .iter()
        .flat_map(|job| job["static_configs"].as_sequence().into_iter().flatten())
        .flat_map(|sc| sc["targets"].as_sequence().into_iter().flatten())
        .filter_map(Yaml::as_str)
        .collect();
    assert!(targets.contains(&"pool:8080"), "{targets:?}");
    assert!(targets.contains(&"node:9332"), "{targets:?}");
}

#[test]
fn grafana_provisioning_parses() {
    let datasources = yaml("grafana/provisioning/datasources/prometheus.yml");
    let source = &datasources["datasources"][0];
    assert_eq!(source["type"].as_str(), Some("prometheus"));
    assert_eq!(source["uid"].as_str(), Some(DATASOURCE_UID));
    let dashboards = yaml("grafana/provisioning/dashboards/satpool.yml");
    assert_eq!(dashboards["providers"][0]["options"]["path"].as_str(), Some("/var/lib/grafana/dashboards"));
}

const DATASOURCE_UID: &str = "satpool-prometheus";

/// The metric names a source file defines: every `opts("name"` and
/// `HistogramOpts::new("name"` under the namespace and subsystem given.
fn defined_metrics(source: &str, prefix: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for marker in ["opts(", "Opts::new("] {
        for (at, _) in source.match_indices(marker) {
            let rest = source[at + marker.len()..].trim_start();
            let Some(rest) = rest.strip_prefix('"') else { continue };
            let name = rest.split('"').next().unwrap_or_default();
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
                names.insert(format!("{prefix}{name}"));
            }
        }
    }
    names
}

fn all_defined_metrics() -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let pool = std::fs::read_to_string(root.join("pool/src/metrics.rs")).expect("pool/src/metrics.rs");
    let node = std::fs::read_to_string(root.join("node/src/metrics.rs")).expect("node/src/metrics.rs");
    let mut names = defined_metrics(&pool, "satpool_pool_");
    names.extend(defined_metrics(&node, "satpool_node_"));
    names
}

#[test]
fn the_scanner_finds_the_pools_rendered_metrics() {
    // The source scan agrees with what the pool really exports.
    let defined = all_defined_metrics();
    let rendered = satpool::metrics::PoolMetrics::new().render();
    for line in rendered.lines().filter(|l| l.starts_with("# TYPE ")) {
        let name = line.split_whitespace().nth(2).expect("# TYPE name kind");
        assert!(defined.contains(name), "{name} is exported but not found in pool/src/metrics.rs");
    }
}

#[test]
fn dashboard_panels_use_the_datasource_and_real_metrics() {
    let dashboard: serde_json::Value = serde_json::from_str(&read("grafana/dashboards/satpool.json")).expect("JSON");
    assert_eq!(dashboard["uid"], "satpool");
    let panels = dashboard["panels"].as_array().expect("panels");
    let defined = all_defined_metrics();
    let mut titles = BTreeSet::new();
    for panel in panels {
        let title = panel["title"].as_str().expect("a title");
        titles.insert(title.to_owned());
        assert_eq!(panel["datasource"]["uid"], DATASOURCE_UID, "{title}: datasource");
        let targets = panel["targets"].as_array().unwrap_or_else(|| panic!("{title}: no targets"));
        assert!(!targets.is_empty(), "{title}: no targets");
        for target in targets {
            assert_eq!(target["datasource"]["uid"], DATASOURCE_UID, "{title}: target datasource");
            let expr = target["expr"].as_str().unwrap_or_else(|| panic!("{title}: a target without expr"));
            let mut named = 0;
            for (at, _) in expr.match_indices("satpool_") {
                let name: String = expr[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(suffix).filter(|b| defined.contains(*b)))
                    .unwrap_or(&name);
                assert!(defined.contains(base), "{title}: {name} is not defined in pool/src or node/src metrics");
                named += 1;
            }
            assert!(named > 0, "{title}: {expr} names no satpool metric");
        }
    }
    for needed in [
        "Pool hashrate",
        "Workers",
        "Shares accepted and rejected by reason",
        "Blocks found",
        "Job broadcast latency",
        "Node height",
        "Node peers",
        "Node mempool",
    ] {
        assert!(titles.contains(needed), "the dashboard has no '{needed}' panel");
    }
}

#[test]
fn node_example_parses_into_its_config() {
    let path = deploy().join("satpool-node.toml");
    let conf = format!("--conf={}", path.display());
    let cli = satpool_node::config_file::load_from(["satpool-node", conf.as_str()]).expect("valid");
    assert_eq!(cli.config.network, satpool_node::params::Network::Devnet);
}

#[test]
fn pool_example_parses_into_its_config() {
    use satpool::config::{Args, Config, Environment, FileConfig};
    let file = FileConfig::read(&deploy().join("satpool.toml")).expect("parses");
    let env = Environment { node_password: None, home: Some("/home/op".into()) };
    Config::from_layers(file, Args::default(), &env).expect("valid");
}

#[test]
fn miner_example_parses_into_its_config() {
    use satpool_miner::config::{validate, Layer};
    let layer = Layer::read_file(&deploy().join("satpool-miner.toml")).expect("parses");
    validate(&layer).expect("valid");
}

#[test]
fn systemd_units_have_restart_hardening_and_secrets_files() {
    for unit in ["satpool-node.service", "satpool.service", "satpool-miner.service"] {
        let text = read(&format!("systemd/{unit}"));
        let keys: BTreeSet<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim()))
            .collect();
        for key in
            ["ExecStart", "Restart", "User", "EnvironmentFile", "NoNewPrivileges", "ProtectSystem", "ProtectHome"]
        {
            assert!(keys.contains(key), "{unit} has no {key}");
        }
        for section in ["[Unit]", "[Service]", "[Install]"] {
            assert!(text.contains(section), "{unit} has no {section}");
        }
        assert!(!text.to_lowercase().contains("--rpcpassword"), "{unit} puts a password on the command line");
    }
}
