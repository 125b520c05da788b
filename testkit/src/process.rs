//! Child processes with their output in a log file, killed (SIGKILL) when
//! dropped, and the binaries they run, built on demand.

use std::fs::OpenOptions;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free loopback port").port()
}

/// `target/<profile>/` of the running test or benchmark, with the given
/// `(package, binary)` pairs built there first (a no-op when up to date),
/// in the same profile as the caller.
///
/// # Panics
/// When the build fails, or the caller does not run from `target/<profile>/deps`.
pub fn profile_dir(binaries: &[(&str, &str)]) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("tests run from target/<profile>/deps").to_owned();
    if binaries.is_empty() {
        return profile_dir;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.arg("build");
    for (package, binary) in binaries {
        build.args(["-p", package, "--bin", binary]);
    }
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let status = build.status().expect("cargo runs");
    assert!(status.success(), "cargo build of {binaries:?} failed");
    profile_dir
}

/// A child process whose stdout and stderr go to a log file; SIGKILLed
/// when dropped.
pub struct Process {
    child: Option<Child>,
    log: PathBuf,
}

impl Process {
    /// Starts `command` with its output appended to `log`.
    ///
    /// # Panics
    /// When the log cannot be opened or the command cannot start.
    pub fn spawn(command: &mut Command, log: impl Into<PathBuf>) -> Process {
        let log = log.into();
        let file = OpenOptions::new().create(true).append(true).open(&log).expect("the log file opens");
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("the log file handle"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        Process { child: Some(child), log }
    }

    /// The process id, while it runs.
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL, and wait for it to go (a crash, as far as it can tell).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Everything it has written so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its last `n` lines, for a failure message.
    pub fn log_tail(&self, n: usize) -> String {
        let text = self.log();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill9();
    }
}
