//! The miner's configuration: one typed [`MinerConfig`], built in layers (a
//! TOML file, then environment variables, then flags) and checked at start
//! by one pure function, [`validate`], so that a bad value stops the miner
//! with its key, where the value came from, and the reason.
//!
//! The file's keys are the flags' long names with `_` for `-`
//! (`--cpu-threads` → `cpu_threads`), all listed in [`KEYS`]; every flag
//! reads the variable `SATPOOL_MINER_` + its key in upper case
//! (`SATPOOL_MINER_CPU_THREADS`). The file is `--config <path>` (or
//! `SATPOOL_MINER_CONFIG`); without one, flags and environment alone. Clap
//! puts the environment below the flags; the file lies below both. A key
//! the file does not know is refused, naming it. `deploy/satpool-miner.toml`
//! shows every key.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, FromArgMatches};
use serde::Deserialize;

use crate::client::{ClientConfig, PoolUrl};
use crate::gpu::AdapterChoice;

/// The prefix of every option's environment variable.
pub const ENV_PREFIX: &str = "SATPOOL_MINER_";

/// Every key of the file, in `--help`'s order. Each is also a flag
/// ([`flag_name`]) and an environment variable ([`env_name`]).
pub const KEYS: [&str; 8] = ["url", "user", "pass", "gpu", "cpu_threads", "intensity", "status_interval", "json"];

/// The batch lengths `intensity` may ask for, in tens of milliseconds.
pub const INTENSITY: RangeInclusive<u32> = 1..=10;
/// 20 ms: a GPU's two dispatches in flight stay within the 50 ms a clean
/// job may take to replace the current work.
pub const DEFAULT_INTENSITY: u32 = 2;
/// More CPU threads than this is a typing error, not a machine: the largest
/// servers have a few hundred hardware threads.
pub const MAX_CPU_THREADS: usize = 1024;
/// The seconds `status_interval` may be.
pub const STATUS_INTERVAL_SECS: RangeInclusive<u64> = 1..=3600;
/// The default seconds between status lines.
pub const DEFAULT_STATUS_INTERVAL_SECS: u64 = 5;
/// The worker name when none is given.
pub const DEFAULT_USER: &str = "satpool-miner";
/// The worker password when none is given (what most pools expect).
pub const DEFAULT_PASSWORD: &str = "x";
/// Longest worker name or password: pools refuse far shorter ones.
pub const MAX_CREDENTIAL_LEN: usize = 512;

/// The environment variable of a key: `cpu_threads` → `SATPOOL_MINER_CPU_THREADS`.
pub fn env_name(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.to_uppercase())
}

/// The flag of a key: `cpu_threads` → `--cpu-threads`.
pub fn flag_name(key: &str) -> String {
    format!("--{}", key.replace('_', "-"))
}

/// The mining options on the command line; clap reads each from its
/// environment variable when the flag is absent. Every value is optional
/// here: what is absent comes from the file, then from the default.
#[derive(Clone, Default, Args)]
pub struct MineArgs {
    /// A TOML file with any of the options below, each key the flag's name
    /// with '_' for '-' (cpu_threads = 4); environment variables override
    /// it, flags override both. Unknown keys and bad values are refused at
    /// start. deploy/satpool-miner.toml shows every key.
    #[arg(long, env = "SATPOOL_MINER_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Pool URL, [stratum+tcp://]host:port ([::1]:3333 for IPv6). Repeat the
    /// flag (or comma-separate in the variable) for failover pools, tried in
    /// order. Required. In the file: url = ["stratum+tcp://host:3333"].
    #[arg(long, env = "SATPOOL_MINER_URL", value_delimiter = ',', value_name = "URL")]
    pub url: Vec<String>,
    /// Worker name; on satpool <payout address>.<worker>, the address being
    /// what the coinbase pays [default: satpool-miner].
    #[arg(long, env = "SATPOOL_MINER_USER", value_name = "NAME")]
    pub user: Option<String>,
    /// Worker password, sent with mining.authorize; most pools ignore it
    /// [default: x]. Prefer the variable or the file: a flag shows in the
    /// process list.
    #[arg(long, env = "SATPOOL_MINER_PASS", hide_env_values = true, value_name = "PASSWORD")]
    pub pass: Option<String>,
    /// GPUs to mine on: an adapter index, several comma-separated (0,2;
    /// `satpool-miner adapters` lists them, software ones included), `all`
    /// hardware adapters, or `none`. Without a usable adapter the miner says
    /// so and mines on the CPU [default: all].
    #[arg(long, env = "SATPOOL_MINER_GPU", value_name = "ADAPTERS")]
    pub gpu: Option<String>,
    /// CPU mining threads, 0 to 1024; 0 mines on the GPUs only [default:
    /// every core, less one per GPU in use].
    #[arg(long, env = "SATPOOL_MINER_CPU_THREADS", value_name = "N")]
    pub cpu_threads: Option<usize>,
    /// Batch length in tens of milliseconds, 1 to 10: lower takes new jobs
    /// over sooner, higher costs less overhead. The default, 2 (20 ms), keeps
    /// a GPU's two dispatches in flight within the 50 ms a clean job may
    /// take to replace the current work [default: 2].
    #[arg(long, env = "SATPOOL_MINER_INTENSITY", value_name = "N")]
    pub intensity: Option<u32>,
    /// Seconds between status lines, 1 to 3600 [default: 5].
    #[arg(long, env = "SATPOOL_MINER_STATUS_INTERVAL", value_name = "SECONDS")]
    pub status_interval: Option<u64>,
    /// Status as one JSON object per line (accepted, rejected, rejected by
    /// code, hash rates) instead of the human line; --json=false turns off
    /// what the file or the variable turned on [default: false].
    #[arg(
        long,
        env = "SATPOOL_MINER_JSON",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_name = "BOOL",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub json: Option<bool>,
}

impl fmt::Debug for MineArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MineArgs")
            .field("config", &self.config)
            .field("url", &self.url)
            .field("user", &self.user)
            .field("pass", &self.pass.as_ref().map(|_| "<redacted>"))
            .field("gpu", &self.gpu)
            .field("cpu_threads", &self.cpu_threads)
            .field("intensity", &self.intensity)
            .field("status_interval", &self.status_interval)
            .field("json", &self.json)
            .finish()
    }
}

/// Every option as one layer gives it; `None` where that layer says
/// nothing. The file is read into this directly.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `url`: pool URLs, in failover order.
    pub url: Option<Vec<String>>,
    /// `user`: the worker name.
    pub user: Option<String>,
    /// `pass`: the worker password.
    pub pass: Option<String>,
    /// `gpu`: adapter indexes, `all` or `none`.
    pub gpu: Option<String>,
    /// `cpu_threads`.
    pub cpu_threads: Option<usize>,
    /// `intensity`: batch length in tens of milliseconds.
    pub intensity: Option<u32>,
    /// `status_interval`: seconds between status lines.
    pub status_interval: Option<u64>,
    /// `json`: status as JSON lines.
    pub json: Option<bool>,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("pass", &self.pass.as_ref().map(|_| "<redacted>"))
            .field("gpu", &self.gpu)
            .field("cpu_threads", &self.cpu_threads)
            .field("intensity", &self.intensity)
            .field("status_interval", &self.status_interval)
            .field("json", &self.json)
            .finish()
    }
}

/// Where a value came from, for the error that refuses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The configuration file.
    File(PathBuf),
    /// An environment variable (its name).
    Env(String),
    /// A flag (`--intensity`).
    Flag(String),
    /// Nobody gave it: the default.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::Env(name) => write!(f, "environment {name}"),
            Origin::Flag(flag) => write!(f, "flag {flag}"),
            Origin::Default => f.write_str("default"),
        }
    }
}

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The flags or the environment were refused (or `--help` asked for).
    #[error(transparent)]
    Args(#[from] clap::Error),
    /// The file could not be read.
    #[error("cannot read the configuration file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not TOML.
    #[error("cannot parse the configuration file {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A key that names no option.
    #[error("{path}: unknown key `{key}`{hint}")]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// A suggestion (`; did you mean `intensity`?`), or nothing.
        hint: String,
    },
    /// A value refused: of the wrong type in the file, or out of range.
    #[error("{origin}: key `{key}`: {reason}")]
    Invalid {
        /// Where the value came from.
        origin: Origin,
        /// Its key.
        key: &'static str,
        /// Why, naming the value.
        reason: String,
    },
    /// No pool URL anywhere.
    #[error("key `url`: no pool given: set url in the configuration file, SATPOOL_MINER_URL or --url")]
    NoPool,
}

/// One layer (the file, or the flags with the environment): its settings
/// and where each value given came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layer {
    /// The values.
    pub settings: Settings,
    /// The origin of each key whose value is set.
    origins: BTreeMap<&'static str, Origin>,
}

impl Layer {
    /// The file's layer, from its text: TOML, known keys only, each value
    /// of its key's type.
    pub fn parse_file(text: &str, path: &Path) -> Result<Layer, ConfigError> {
        let table: toml::Table =
            text.parse().map_err(|source| ConfigError::Parse { path: path.to_owned(), source: Box::new(source) })?;
        let mut origins = BTreeMap::new();
        for (name, value) in &table {
            let Some(key) = KEYS.iter().copied().find(|k| k == name) else {
                return Err(ConfigError::UnknownKey { path: path.to_owned(), key: name.clone(), hint: hint(name) });
            };
            // One key at a time, so that a value of the wrong type is
            // refused naming its key.
            let mut one = toml::Table::new();
            one.insert(name.clone(), value.clone());
            one.try_into::<Settings>().map_err(|e| ConfigError::Invalid {
                origin: Origin::File(path.to_owned()),
                key,
                reason: e.message().trim().to_owned(),
            })?;
            origins.insert(key, Origin::File(path.to_owned()));
        }
        let settings = table
            .try_into()
            .map_err(|source| ConfigError::Parse { path: path.to_owned(), source: Box::new(source) })?;
        Ok(Layer { settings, origins })
    }

    /// Reads and parses the file at `path`.
    pub fn read_file(path: &Path) -> Result<Layer, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Layer::parse_file(&text, path)
    }

    /// The flags' and the environment's layer; `matches` (of a command
    /// holding [`MineArgs`]) says which of the two gave each value.
    pub fn from_args(args: &MineArgs, matches: &ArgMatches) -> Layer {
        let settings = Settings {
            url: (!args.url.is_empty()).then(|| args.url.clone()),
            user: args.user.clone(),
            pass: args.pass.clone(),
            gpu: args.gpu.clone(),
            cpu_threads: args.cpu_threads,
            intensity: args.intensity,
            status_interval: args.status_interval,
            json: args.json,
        };
        let origins = KEYS
            .iter()
            .filter_map(|&key| match matches.value_source(key) {
                Some(ValueSource::CommandLine) => Some((key, Origin::Flag(flag_name(key)))),
                Some(ValueSource::EnvVariable) => Some((key, Origin::Env(env_name(key)))),
                _ => None,
            })
            .collect();
        Layer { settings, origins }
    }

    /// This layer over `lower`: a value set here wins.
    pub fn over(self, lower: Layer) -> Layer {
        let (upper, low) = (self.settings, lower.settings);
        let settings = Settings {
            url: upper.url.or(low.url),
            user: upper.user.or(low.user),
            pass: upper.pass.or(low.pass),
            gpu: upper.gpu.or(low.gpu),
            cpu_threads: upper.cpu_threads.or(low.cpu_threads),
            intensity: upper.intensity.or(low.intensity),
            status_interval: upper.status_interval.or(low.status_interval),
            json: upper.json.or(low.json),
        };
        let mut origins = lower.origins;
        origins.extend(self.origins);
        Layer { settings, origins }
    }

    /// Where the value of `key` came from.
    pub fn origin(&self, key: &str) -> Origin {
        self.origins.get(key).cloned().unwrap_or(Origin::Default)
    }
}

/// `; did you mean `intensity`?` for a key a letter or two off, or one of
/// the usual other names; else nothing.
fn hint(key: &str) -> String {
    let normal = key.trim().to_lowercase().replace('-', "_");
    let aliases = [("urls", "url"), ("password", "pass"), ("threads", "cpu_threads"), ("interval", "status_interval")];
    let guess = aliases.iter().find(|(alias, _)| *alias == normal).map(|&(_, key)| key).or_else(|| {
        KEYS.iter().copied().map(|k| (edit_distance(&normal, k), k)).filter(|&(d, _)| d <= 2).min().map(|(_, k)| k)
    });
    guess.map_or_else(|| format!(" (the keys: {})", KEYS.join(", ")), |k| format!("; did you mean `{k}`?"))
}

/// Levenshtein distance, for [`hint`].
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let next = (diagonal + usize::from(ca != cb)).min(row[j] + 1).min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// Everything the miner runs with, checked.
#[derive(Clone, PartialEq)]
pub struct MinerConfig {
    /// Pools in failover order.
    pub urls: Vec<PoolUrl>,
    /// The worker name.
    pub user: String,
    /// The worker password (`Debug` prints `<redacted>`).
    pub password: String,
    /// Which GPUs; `None` for none.
    pub gpu: Option<AdapterChoice>,
    /// CPU threads; `None` for every core less one per GPU in use.
    pub cpu_threads: Option<usize>,
    /// Batch length in tens of milliseconds.
    pub intensity: u32,
    /// Time between status lines.
    pub status_interval: Duration,
    /// Status as JSON lines.
    pub json: bool,
}

impl fmt::Debug for MinerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MinerConfig")
            .field("urls", &self.urls)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("gpu", &self.gpu)
            .field("cpu_threads", &self.cpu_threads)
            .field("intensity", &self.intensity)
            .field("status_interval", &self.status_interval)
            .field("json", &self.json)
            .finish()
    }
}

impl MinerConfig {
    /// The time each batch aims at.
    pub fn batch_target(&self) -> Duration {
        Duration::from_millis(u64::from(self.intensity) * 10)
    }

    /// The Stratum client's settings.
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig::new(self.urls.clone(), self.user.clone(), self.password.clone())
    }
}

/// Parses a GPU choice: `all` hardware adapters, `none`, or adapter indexes
/// (`0`, `0,2`). The error names the input.
pub fn parse_gpu(text: &str) -> Result<Option<AdapterChoice>, String> {
    match text.trim() {
        "all" => Ok(Some(AdapterChoice::AllHardware)),
        "none" => Ok(None),
        "" => Err("empty: expected an adapter index, a comma-separated list of them, all or none".to_owned()),
        list => {
            let mut indexes = Vec::new();
            for part in list.split(',').map(str::trim) {
                let index: usize = part.parse().map_err(|_| {
                    format!("{part:?} in {text:?} is not an adapter index (expected 0, 0,2, all or none)")
                })?;
                if indexes.contains(&index) {
                    return Err(format!("adapter {index} is listed twice in {text:?}"));
                }
                indexes.push(index);
            }
            Ok(Some(AdapterChoice::Indexes(indexes)))
        }
    }
}

fn check_credential(value: &str, what: &str) -> Result<(), String> {
    if value.len() > MAX_CREDENTIAL_LEN {
        return Err(format!("{what} of {} bytes is longer than {MAX_CREDENTIAL_LEN}", value.len()));
    }
    if value.contains(char::is_control) {
        return Err(format!("{what} {value:?} holds a control character"));
    }
    Ok(())
}

/// Checks every value of the merged layers and applies the defaults: the
/// one place where the miner's settings are judged. Pure: no file, no
/// environment, no device.
pub fn validate(layer: &Layer) -> Result<MinerConfig, ConfigError> {
    let s = &layer.settings;
    let invalid = |key: &'static str, reason: String| ConfigError::Invalid { origin: layer.origin(key), key, reason };

    let urls = match &s.url {
        None => return Err(ConfigError::NoPool),
        Some(list) if list.is_empty() => return Err(invalid("url", "empty list: give at least one pool".to_owned())),
        Some(list) => list
            .iter()
            .map(|text| PoolUrl::parse(text).map_err(|e| invalid("url", format!("{text:?}: {e}"))))
            .collect::<Result<Vec<_>, _>>()?,
    };

    let user = s.user.clone().unwrap_or_else(|| DEFAULT_USER.to_owned());
    if user.trim().is_empty() {
        return Err(invalid("user", "empty: the pool needs a worker name".to_owned()));
    }
    check_credential(&user, "worker name").map_err(|reason| invalid("user", reason))?;
    let password = s.pass.clone().unwrap_or_else(|| DEFAULT_PASSWORD.to_owned());
    // The reason must not echo the password.
    check_credential(&password, "password")
        .map_err(|_| invalid("pass", "too long or holds a control character".to_owned()))?;

    let gpu = parse_gpu(s.gpu.as_deref().unwrap_or("all")).map_err(|reason| invalid("gpu", reason))?;

    let cpu_threads = s.cpu_threads;
    if let Some(n) = cpu_threads {
        if n > MAX_CPU_THREADS {
            return Err(invalid("cpu_threads", format!("must be at most {MAX_CPU_THREADS}, got {n}")));
        }
        if n == 0 && gpu.is_none() {
            return Err(invalid("cpu_threads", "0 with gpu = \"none\" leaves nothing to mine on".to_owned()));
        }
    }

    let intensity = s.intensity.unwrap_or(DEFAULT_INTENSITY);
    if !INTENSITY.contains(&intensity) {
        return Err(invalid(
            "intensity",
            format!("must be between {} and {}, got {intensity}", INTENSITY.start(), INTENSITY.end()),
        ));
    }

    let status_interval = s.status_interval.unwrap_or(DEFAULT_STATUS_INTERVAL_SECS);
    if !STATUS_INTERVAL_SECS.contains(&status_interval) {
        return Err(invalid(
            "status_interval",
            format!(
                "must be between {} and {} seconds, got {status_interval}",
                STATUS_INTERVAL_SECS.start(),
                STATUS_INTERVAL_SECS.end()
            ),
        ));
    }

    Ok(MinerConfig {
        urls,
        user,
        password,
        gpu,
        cpu_threads,
        intensity,
        status_interval: Duration::from_secs(status_interval),
        json: s.json.unwrap_or(false),
    })
}

/// A command holding only [`MineArgs`], for [`load_from`] and tests.
pub fn command() -> clap::Command {
    MineArgs::augment_args(clap::Command::new("satpool-miner"))
}

/// The configuration from parsed flags and environment (`matches` being
/// what `args` came from) and the file they name.
pub fn load(args: &MineArgs, matches: &ArgMatches) -> Result<MinerConfig, ConfigError> {
    let upper = Layer::from_args(args, matches);
    let layer = match &args.config {
        Some(path) => upper.over(Layer::read_file(path)?),
        None => upper,
    };
    validate(&layer)
}

/// `argv` (the program's name first) with the process's environment, and
/// the file they lead to.
pub fn load_from<I, T>(argv: I) -> Result<MinerConfig, ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = command().try_get_matches_from(argv)?;
    let args = MineArgs::from_arg_matches(&matches)?;
    load(&args, &matches)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/etc/satpool/satpool-miner.toml";

    fn file(text: &str) -> Result<Layer, ConfigError> {
        Layer::parse_file(text, Path::new(PATH))
    }

    /// The flags alone (no environment: `try_get_matches_from` still reads
    /// it, so the variables are cleared from the command).
    fn flags(extra: &[&str]) -> Layer {
        let command = command().mut_args(|arg| arg.env(None::<&str>));
        let matches = command.try_get_matches_from(std::iter::once("satpool-miner").chain(extra.iter().copied()));
        let matches = matches.expect("test flags parse");
        let args = MineArgs::from_arg_matches(&matches).expect("test flags parse");
        Layer::from_args(&args, &matches)
    }

    fn load(text: &str, extra: &[&str]) -> Result<MinerConfig, ConfigError> {
        validate(&flags(extra).over(file(text)?))
    }

    #[test]
    fn defaults_with_only_a_url() {
        let config = load("url = [\"stratum+tcp://pool:3333\"]", &[]).expect("valid");
        assert_eq!(config.urls, [PoolUrl { host: "pool".into(), port: 3333 }]);
        assert_eq!(config.user, DEFAULT_USER);
        assert_eq!(config.password, DEFAULT_PASSWORD);
        assert_eq!(config.gpu, Some(AdapterChoice::AllHardware));
        assert_eq!(config.cpu_threads, None);
        assert_eq!(config.intensity, DEFAULT_INTENSITY);
        assert_eq!(config.batch_target(), Duration::from_millis(20));
        assert_eq!(config.status_interval, Duration::from_secs(5));
        assert!(!config.json);
    }

    #[test]
    fn flags_win_over_the_file() {
        let text = "url = [\"a:1\", \"b:2\"]\nuser = \"file\"\nintensity = 3\njson = true\ngpu = \"none\"\n";
        let config = load(text, &["--intensity", "5", "--json=false", "--url", "c:3", "--url", "d:4"]).expect("valid");
        assert_eq!(config.intensity, 5);
        assert!(!config.json);
        assert_eq!(config.user, "file");
        assert_eq!(config.gpu, None);
        let hosts: Vec<&str> = config.urls.iter().map(|u| u.host.as_str()).collect();
        assert_eq!(hosts, ["c", "d"], "the flags' list replaces the file's");
        assert!(load("url = [\"a:1\"]", &["--json"]).expect("valid").json, "--json alone is true");
    }

    /// A value's error names where it came from.
    #[test]
    fn origins() {
        let layer =
            flags(&["--intensity", "0"]).over(file("intensity = 3\ncpu_threads = 5000\nurl = [\"a:1\"]").unwrap());
        assert_eq!(layer.origin("intensity"), Origin::Flag("--intensity".into()));
        assert_eq!(layer.origin("cpu_threads"), Origin::File(PATH.into()));
        assert_eq!(layer.origin("user"), Origin::Default);
        let error = load("url = [\"a:1\"]\nintensity = 20\n", &[]).expect_err("out of range");
        assert_eq!(error.to_string(), format!("{PATH}: key `intensity`: must be between 1 and 10, got 20"));
        let error = load("url = [\"a:1\"]\nintensity = 2\n", &["--intensity", "11"]).expect_err("out of range");
        assert_eq!(error.to_string(), "flag --intensity: key `intensity`: must be between 1 and 10, got 11");
        let env = Layer {
            settings: Settings { intensity: Some(0), ..Settings::default() },
            origins: [("intensity", Origin::Env(env_name("intensity")))].into(),
        };
        let error = validate(&env.over(file("url = [\"a:1\"]").unwrap())).expect_err("out of range");
        assert_eq!(
            error.to_string(),
            "environment SATPOOL_MINER_INTENSITY: key `intensity`: must be between 1 and 10, got 0"
        );
    }

    /// Each bad value is refused by `validate`, naming its key.
    #[test]
    fn bad_values_name_their_key() {
        let cases: &[(&str, &str, &str, &str)] = &[
            ("no url", "", "url", "no pool given"),
            ("empty url list", "url = []", "url", "empty list"),
            ("other scheme", "url = [\"stratum+ssl://pool:3333\"]", "url", "only stratum+tcp://"),
            ("http url", "url = [\"http://pool:3333\"]", "url", "scheme \"http\""),
            ("no port", "url = [\"stratum+tcp://pool\"]", "url", "no port"),
            ("port zero", "url = [\"pool:0\"]", "url", "1 to 65535"),
            ("second url bad", "url = [\"pool:3333\", \"pool\"]", "url", "\"pool\": no port"),
            ("empty user", "url = [\"a:1\"]\nuser = \" \"", "user", "empty"),
            ("control in user", "url = [\"a:1\"]\nuser = \"a\\nb\"", "user", "control character"),
            ("long password", &format!("url = [\"a:1\"]\npass = \"{}\"", "p".repeat(600)), "pass", "too long"),
            ("gpu word", "url = [\"a:1\"]\ngpu = \"some\"", "gpu", "\"some\""),
            ("gpu empty", "url = [\"a:1\"]\ngpu = \"\"", "gpu", "empty"),
            ("gpu list", "url = [\"a:1\"]\ngpu = \"0,,1\"", "gpu", "\"\" in \"0,,1\""),
            ("gpu twice", "url = [\"a:1\"]\ngpu = \"1,1\"", "gpu", "twice"),
            ("too many threads", "url = [\"a:1\"]\ncpu_threads = 5000", "cpu_threads", "at most 1024, got 5000"),
            ("nothing to mine", "url = [\"a:1\"]\ncpu_threads = 0\ngpu = \"none\"", "cpu_threads", "nothing to mine"),
            ("intensity zero", "url = [\"a:1\"]\nintensity = 0", "intensity", "between 1 and 10, got 0"),
            ("intensity high", "url = [\"a:1\"]\nintensity = 11", "intensity", "between 1 and 10, got 11"),
            ("interval zero", "url = [\"a:1\"]\nstatus_interval = 0", "status_interval", "got 0"),
            ("interval long", "url = [\"a:1\"]\nstatus_interval = 3601", "status_interval", "got 3601"),
            ("wrong type", "url = [\"a:1\"]\nintensity = \"high\"", "intensity", "invalid type"),
            ("negative", "url = [\"a:1\"]\ncpu_threads = -1", "cpu_threads", "-1"),
            ("url not a list", "url = \"a:1\"", "url", "invalid type"),
            ("json not a bool", "url = [\"a:1\"]\njson = \"yes\"", "json", "invalid type"),
        ];
        for (name, text, key, reason) in cases {
            let error = load(text, &[]).expect_err(name);
            let message = error.to_string();
            assert!(message.contains(&format!("key `{key}`")), "{name}: {message:?} does not name `{key}`");
            assert!(message.contains(reason), "{name}: {message:?} does not say {reason:?}");
        }
    }

    #[test]
    fn a_bad_password_is_not_echoed() {
        let error = load("url = [\"a:1\"]\npass = \"hunter2\\u0007\"", &[]).expect_err("control character");
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let cases = [
            ("intensty = 3", "intensty", "; did you mean `intensity`?"),
            ("urls = [\"a:1\"]", "urls", "; did you mean `url`?"),
            ("password = \"x\"", "password", "; did you mean `pass`?"),
            ("cpu-threads = 2", "cpu-threads", "; did you mean `cpu_threads`?"),
            ("colour = true", "colour", " (the keys: url, user, pass"),
            ("[pool]\nurl = \"a:1\"", "pool", " (the keys"),
        ];
        for (text, key, hint) in cases {
            match file(text) {
                Err(ConfigError::UnknownKey { key: got, hint: got_hint, .. }) => {
                    assert_eq!(got, key);
                    assert!(got_hint.starts_with(hint), "{text}: {got_hint:?}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        let message = file("intensty = 3").expect_err("unknown").to_string();
        assert_eq!(message, format!("{PATH}: unknown key `intensty`; did you mean `intensity`?"));
    }

    #[test]
    fn not_toml_is_a_parse_error() {
        assert!(matches!(file("url = ["), Err(ConfigError::Parse { .. })));
    }

    #[test]
    fn gpu_choices() {
        assert_eq!(parse_gpu("all"), Ok(Some(AdapterChoice::AllHardware)));
        assert_eq!(parse_gpu("none"), Ok(None));
        assert_eq!(parse_gpu("1"), Ok(Some(AdapterChoice::Indexes(vec![1]))));
        assert_eq!(parse_gpu(" 0, 2 "), Ok(Some(AdapterChoice::Indexes(vec![0, 2]))));
        assert!(parse_gpu("-1").is_err());
        assert!(parse_gpu("0;1").is_err());
        assert!(parse_gpu("ALL").is_err());
    }

    /// Every key is a flag, an environment variable and a file field, and
    /// nothing else is.
    #[test]
    fn keys_flags_and_variables_agree() {
        let command = command();
        let mut long: Vec<String> = command.get_arguments().filter_map(|a| a.get_long()).map(str::to_owned).collect();
        long.retain(|l| l != "config");
        let from_keys: Vec<String> = KEYS.iter().map(|k| flag_name(k)[2..].to_owned()).collect();
        assert_eq!(long, from_keys);
        for arg in command.get_arguments() {
            let env = arg.get_env().expect("every flag has a variable").to_str().expect("ASCII");
            let key = arg.get_id().as_str();
            assert_eq!(env, if key == "config" { "SATPOOL_MINER_CONFIG".to_owned() } else { env_name(key) });
            assert!(arg.get_help().is_some(), "--{key} is explained in --help");
        }
        // A file with every key parses.
        let all = "url = [\"a:1\"]\nuser = \"u\"\npass = \"p\"\ngpu = \"0\"\ncpu_threads = 1\nintensity = 1\n\
                   status_interval = 1\njson = true\n";
        let layer = file(all).expect("every key");
        assert!(KEYS.iter().all(|k| layer.origin(k) == Origin::File(PATH.into())));
    }

    #[test]
    fn password_is_redacted() {
        let text = "url = [\"a:1\"]\npass = \"hunter2\"";
        let layer = file(text).expect("valid");
        assert!(!format!("{layer:?}").contains("hunter2"));
        let config = validate(&layer).expect("valid");
        assert_eq!(config.password, "hunter2");
        assert!(!format!("{config:?}").contains("hunter2"));
        let args = MineArgs { pass: Some("hunter2".into()), ..MineArgs::default() };
        assert!(!format!("{args:?}").contains("hunter2"));
    }
}
