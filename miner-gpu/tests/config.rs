//! The miner's configuration through its public loader and through the
//! real binary: the committed example parses to the values it shows, bad
//! values and unknown keys stop the binary naming the key, the layers
//! apply in order (file < environment < flags), and `--help` explains every
//! option.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use satpool_miner::client::PoolUrl;
use satpool_miner::config::{self, env_name, flag_name, MinerConfig, KEYS};
use satpool_miner::gpu::AdapterChoice;

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/satpool-miner.toml")
}

/// A file in a fresh folder, kept as long as the folder.
fn config_file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("satpool-miner.toml");
    std::fs::write(&path, text).expect("write the configuration");
    (dir, path)
}

/// Runs the binary with none of the caller's `SATPOOL_MINER_*` variables
/// but `env`; a run that outlives 60 s (the configuration was accepted and
/// it started mining) is killed and fails the test.
fn run_miner(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_satpool-miner"));
    command.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for key in KEYS {
        command.env_remove(env_name(key));
    }
    command.env_remove("SATPOOL_MINER_CONFIG");
    command.envs(env.iter().copied());
    let mut child = command.spawn().expect("the miner starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait for the miner").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("the killed miner's output");
            panic!("the miner ran on with {args:?}:\n{}", String::from_utf8_lossy(&output.stderr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("the miner's output")
}

/// The run failed, and its stderr holds every one of `needles`.
fn refused(output: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "exit status {:?}; stderr:\n{stderr}", output.status);
    for needle in needles {
        assert!(stderr.contains(needle), "stderr does not say {needle:?}:\n{stderr}");
    }
}

#[test]
fn deploy_example_is_what_the_miner_reads() {
    let path = example();
    let argv = [OsStr::new("satpool-miner"), OsStr::new("--config"), path.as_os_str()];
    let config: MinerConfig = config::load_from(argv).expect("the example loads");
    assert_eq!(config.urls, [PoolUrl { host: "127.0.0.1".into(), port: 3333 }]);
    assert_eq!(config.user, "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080.rig1");
    assert_eq!(config.password, "x");
    assert_eq!(config.gpu, Some(AdapterChoice::AllHardware));
    assert_eq!(config.cpu_threads, None, "commented out: every core");
    assert_eq!(config.intensity, config::DEFAULT_INTENSITY);
    assert_eq!(config.status_interval, Duration::from_secs(config::DEFAULT_STATUS_INTERVAL_SECS));
    assert!(!config.json);
}

/// Every option appears in the example, set or commented out, with its
/// flag named in the comment above it.
#[test]
fn deploy_example_shows_every_key() {
    let text = std::fs::read_to_string(example()).expect("the example");
    for key in KEYS {
        let set = text.lines().any(|l| l.starts_with(&format!("{key} = ")) || l.starts_with(&format!("# {key} = ")));
        assert!(set, "deploy/satpool-miner.toml lacks `{key} = `");
        assert!(text.contains(&format!("({}", flag_name(key))), "the example does not name {}", flag_name(key));
    }
}

#[test]
fn flags_win_over_the_file() {
    let (_dir, path) = config_file("url = [\"stratum+tcp://127.0.0.1:3333\"]\nintensity = 3\ngpu = \"none\"\n");
    let path = path.to_str().expect("a UTF-8 temporary path");
    let config = config::load_from(["satpool-miner", "--config", path, "--intensity", "5"]).expect("valid");
    assert_eq!(config.intensity, 5);
    assert_eq!(config.gpu, None, "what no flag sets comes from the file");
}

#[test]
fn binary_refuses_a_bad_value_naming_the_key() {
    let (_dir, path) = config_file("url = [\"stratum+tcp://127.0.0.1:3333\"]\nintensity = 20\n");
    let output = run_miner(&["--config", path.to_str().expect("UTF-8")], &[]);
    refused(&output, &["satpool-miner.toml: key `intensity`: must be between 1 and 10, got 20"]);
}

#[test]
fn binary_refuses_a_bad_url_naming_the_key() {
    let (_dir, path) = config_file("url = [\"stratum+ssl://pool.example:3333\"]\n");
    let output = run_miner(&["--config", path.to_str().expect("UTF-8")], &[]);
    refused(&output, &["key `url`", "only stratum+tcp://"]);
}

#[test]
fn binary_refuses_an_unknown_key_naming_it() {
    let (_dir, path) = config_file("url = [\"stratum+tcp://127.0.0.1:3333\"]\nintensty = 3\n");
    let output = run_miner(&["--config", path.to_str().expect("UTF-8")], &[]);
    refused(&output, &["unknown key `intensty`", "did you mean `intensity`?"]);
}

/// The environment overrides the file and a flag the environment: each
/// refusal names the layer the value came from.
#[test]
fn binary_layers_file_then_environment_then_flags() {
    let (_dir, path) = config_file("url = [\"stratum+tcp://127.0.0.1:3333\"]\nintensity = 3\n");
    let path = path.to_str().expect("UTF-8");
    let output = run_miner(&["--config", path], &[("SATPOOL_MINER_INTENSITY", "30")]);
    refused(&output, &["environment SATPOOL_MINER_INTENSITY: key `intensity`", "got 30"]);
    let output = run_miner(&["--config", path, "--intensity", "40"], &[("SATPOOL_MINER_INTENSITY", "30")]);
    refused(&output, &["flag --intensity: key `intensity`", "got 40"]);
    // The file itself named by the environment.
    let output = run_miner(&["--status-interval", "0"], &[("SATPOOL_MINER_CONFIG", path)]);
    refused(&output, &["flag --status-interval: key `status_interval`", "got 0"]);
}

#[test]
fn binary_refuses_a_missing_file_and_no_pool() {
    let output = run_miner(&["--config", "/nonexistent/satpool-miner.toml"], &[]);
    refused(&output, &["cannot read the configuration file /nonexistent/satpool-miner.toml"]);
    let output = run_miner(&[], &[]);
    refused(&output, &["no pool given"]);
}

#[test]
fn help_explains_every_option() {
    let output = run_miner(&["--help"], &[]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for key in KEYS {
        assert!(help.contains(&format!("{} ", flag_name(key))) || help.contains(&format!("{}[", flag_name(key))));
        assert!(help.contains(&env_name(key)), "--help does not name {}:\n{help}", env_name(key));
    }
    for needle in ["--config", "SATPOOL_MINER_CONFIG", "deploy/satpool-miner.toml", "[default: 2]", "1 to 10"] {
        assert!(help.contains(needle), "--help does not say {needle:?}:\n{help}");
    }
}
