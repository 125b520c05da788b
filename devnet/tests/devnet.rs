//! The newcomer's path end to end: the real `satpool-devnet` binary in a
//! temporary data directory mines until a block is found and paid to its
//! miner, stops cleanly on SIGINT, and on the next start resumes the same
//! chain and ledger.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Generous: a debug build on a two-core machine.
const FIRST_PAID_BLOCK: Duration = Duration::from_secs(300);
const CLEAN_EXIT: Duration = Duration::from_secs(90);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port").local_addr().expect("its address").port()
}

struct Ports {
    rpc: u16,
    stratum: u16,
    http: u16,
}

struct Demo {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Demo {
    fn start(datadir: &Path, ports: &Ports) -> Demo {
        let log = std::fs::File::create(datadir.join(format!("stderr-{}.log", ports.rpc))).ok();
        let mut child = Command::new(env!("CARGO_BIN_EXE_satpool-devnet"))
            .arg(format!("--datadir={}", datadir.display()))
            .arg(format!("--rpc-port={}", ports.rpc))
            .arg(format!("--stratum=127.0.0.1:{}", ports.stratum))
            .arg(format!("--http=127.0.0.1:{}", ports.http))
            .args(["--gpu=none", "--cpu-threads=1", "--spacing=5"])
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(log.map(Stdio::from).unwrap_or_else(Stdio::null))
            .spawn()
            .expect("satpool-devnet starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().expect("not poisoned").push(line);
            }
        });
        Demo { child, lines }
    }

    fn output(&self) -> String {
        self.lines.lock().expect("not poisoned").join("\n")
    }

    fn wait_for(&mut self, what: &str, limit: Duration, mut done: impl FnMut(&str) -> bool) {
        let started = Instant::now();
        loop {
            if done(&self.output()) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("satpool-devnet exited ({status}) before {what}:\n{}", self.output());
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                panic!("no {what} after {} s:\n{}", limit.as_secs(), self.output());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// SIGINT, as Ctrl-C sends, then a clean exit.
    fn interrupt(mut self) -> String {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-INT", &pid]).status().expect("kill runs");
        assert!(status.success(), "kill -INT {pid}");
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                std::thread::sleep(Duration::from_millis(200));
                let output = self.output();
                assert!(status.success(), "satpool-devnet exited with {status}:\n{output}");
                assert!(output.contains("stopped cleanly"), "{output}");
                return output;
            }
            if started.elapsed() > CLEAN_EXIT {
                let _ = self.child.kill();
                panic!("satpool-devnet did not stop within {} s of SIGINT:\n{}", CLEAN_EXIT.as_secs(), self.output());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A JSON-RPC call to the demo's node with its cookie.
fn rpc(datadir: &Path, port: u16, method: &str, params: Value) -> Value {
    let cookie = std::fs::read_to_string(datadir.join("node").join(".cookie")).expect("the node's cookie");
    let (user, password) = cookie.trim().split_once(':').expect("user:password");
    let response: Value = reqwest::blocking::Client::new()
        .post(format!("http://127.0.0.1:{port}/"))
        .basic_auth(user, Some(password))
        .json(&json!({"jsonrpc": "1.0", "id": 1, "method": method, "params": params}))
        .send()
        .expect("the node answers")
        .json()
        .expect("JSON");
    assert!(response["error"].is_null(), "{method}: {response}");
    response["result"].clone()
}

fn api(port: u16, path: &str) -> Value {
    reqwest::blocking::get(format!("http://127.0.0.1:{port}{path}")).expect("the API answers").json().expect("JSON")
}

#[test]
fn finds_and_pays_a_block_stops_cleanly_and_resumes() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let datadir = dir.path();
    let ports = Ports { rpc: free_port(), stratum: free_port(), http: free_port() };

    let mut demo = Demo::start(datadir, &ports);
    demo.wait_for("dashboard address", Duration::from_secs(120), |out| out.contains("dashboard: http://"));
    demo.wait_for("block found and paid to the miner", FIRST_PAID_BLOCK, |out| {
        out.lines().any(|l| l.starts_with("  paid ") && l.ends_with("(this miner)"))
    });

    // What the ledger and the chain say now.
    let blocks = api(ports.http, "/api/blocks?limit=1000");
    let found: Vec<String> = blocks["blocks"]
        .as_array()
        .expect("blocks")
        .iter()
        .map(|b| b["hash"].as_str().expect("hash").to_owned())
        .collect();
    assert!(!found.is_empty(), "{blocks}");
    let payouts = api(ports.http, "/api/payouts?limit=1000");
    assert!(!payouts["payouts"].as_array().expect("payouts").is_empty(), "{payouts}");
    let height = rpc(datadir, ports.rpc, "getblockcount", json!([])).as_u64().expect("a height");
    assert!(height >= 1);
    let tip_hash = rpc(datadir, ports.rpc, "getblockhash", json!([height]));

    demo.interrupt();

    // The next start resumes the same chain and ledger.
    let mut demo = Demo::start(datadir, &ports);
    demo.wait_for("dashboard address", Duration::from_secs(120), |out| out.contains("dashboard: http://"));
    let resumed = rpc(datadir, ports.rpc, "getblockcount", json!([])).as_u64().expect("a height");
    assert!(resumed >= height, "the chain went back from {height} to {resumed}");
    assert_eq!(rpc(datadir, ports.rpc, "getblockhash", json!([height])), tip_hash, "a different chain");
    let blocks = api(ports.http, "/api/blocks?limit=1000");
    let kept: Vec<&str> =
        blocks["blocks"].as_array().expect("blocks").iter().filter_map(|b| b["hash"].as_str()).collect();
    for hash in &found {
        assert!(kept.contains(&hash.as_str()), "the ledger lost block {hash}");
    }
    demo.wait_for("the ledger summary", Duration::from_secs(30), |out| out.contains("blocks found before"));
    demo.interrupt();
}
