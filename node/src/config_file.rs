//! The daemon's configuration in layers: a TOML file, then environment
//! variables, then flags — one typed [`Cli`] in the end.
//!
//! The flags stay the one definition of every option (`daemon::Config` and
//! the P2P flags): the file's keys are the flags' long names with `_` for
//! `-` (`--devnet-spacing` → `devnet_spacing`), and every flag without a
//! variable of its own reads `SATPOOL_NODE_` + its name in upper case
//! (`SATPOOL_NODE_DBCACHE`). The four older names (`SATPOOL_NETWORK`,
//! `SATPOOL_DATADIR`, `SATPOOL_RPCUSER`, `SATPOOL_RPCPASSWORD`) are kept.
//!
//! How the layers meet: clap parses the flags and the environment once;
//! [`clap::ArgMatches::value_source`] then says which options were given
//! there. The file's value of every other option becomes a flag placed
//! before the real ones, and clap parses again, so that a value from the
//! file goes through the very parser and range check of its flag. A key
//! that names no option is refused, naming the key; so is a bad value,
//! naming its key and the reason.
//!
//! The file: `--conf <file>` (or `SATPOOL_NODE_CONF`), which must exist;
//! else `<datadir>/satpool-node.toml` if it exists, the data directory being
//! the one the flags, the environment or the default give.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, CommandFactory, FromArgMatches};

use crate::daemon::Cli;

/// The file read from the data directory when `--conf` is not given.
pub const FILE_NAME: &str = "satpool-node.toml";

/// The prefix of the environment variables of flags that have no older name.
pub const ENV_PREFIX: &str = "SATPOOL_NODE_";

/// Flags that the file cannot set: the file's own path, and clap's.
const NOT_IN_FILE: &[&str] = &["conf", "help", "version"];

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    /// The flags or the environment were refused, or `--help`/`--version`
    /// was asked for (`clap::Error::exit` prints either).
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
    #[error("unknown key '{key}' in {path}{hint}")]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// A suggestion, or nothing.
        hint: String,
    },
    /// A value its option refuses.
    #[error("invalid {key} in {path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
}

/// The command line of `satpool-node`: [`Cli`]'s, with an environment
/// variable for every flag and the layering told in `--help`.
pub fn command() -> clap::Command {
    Cli::command()
        .mut_args(|arg| {
            let name = arg.get_long().map(str::to_owned);
            match name {
                Some(long)
                    if arg.get_env().is_none() && !arg.is_hide_set() && !NOT_IN_FILE.contains(&long.as_str()) =>
                {
                    arg.env(env_name(&long))
                }
                _ => arg,
            }
        })
        .after_help(
            "Configuration in layers: a TOML file, then environment variables, then flags. \
             The file is --conf, else <datadir>/satpool-node.toml if it exists; its keys are \
             the flags' names with '_' for '-' (devnet_spacing = 10). Unknown keys and bad \
             values are refused at start. See deploy/satpool-node.toml for every key.",
        )
}

/// The variable of a flag that has no older name: `--devnet-spacing` →
/// `SATPOOL_NODE_DEVNET_SPACING`.
pub fn env_name(long: &str) -> String {
    format!("{ENV_PREFIX}{}", long.replace('-', "_").to_uppercase())
}

/// The file key of a flag: `--devnet-spacing` → `devnet_spacing`.
pub fn file_key(long: &str) -> String {
    long.replace('-', "_")
}

/// Every key the file may hold, with the flag it sets, in `--help`'s order.
pub fn file_keys(command: &clap::Command) -> Vec<(String, &Arg)> {
    command
        .get_arguments()
        .filter(|arg| !arg.is_hide_set() && !arg.is_positional())
        .filter_map(|arg| {
            let long = arg.get_long()?;
            (!NOT_IN_FILE.contains(&long)).then(|| (file_key(long), arg))
        })
        .collect()
}

/// The process's command line, environment and file.
pub fn load() -> Result<Cli, ConfError> {
    load_from(std::env::args_os())
}

/// `args` (the program's name first), the process's environment, and the
/// file they lead to.
pub fn load_from<I, T>(args: I) -> Result<Cli, ConfError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let matches = command().try_get_matches_from(&args)?;
    let cli = Cli::from_arg_matches(&matches)?;
    if cli.command.is_some() {
        // A one-off calculation: no daemon, no file.
        return Ok(cli);
    }
    let path = match &cli.config.conf {
        Some(path) => path.clone(),
        None => match cli.config.datadir() {
            Ok(datadir) if datadir.join(FILE_NAME).is_file() => datadir.join(FILE_NAME),
            _ => return Ok(cli),
        },
    };
    let text = std::fs::read_to_string(&path).map_err(|source| ConfError::Read { path: path.clone(), source })?;
    let table = parse_file(&text, &path)?;
    layer_file(&args, &matches, &table, &path)
}

/// Parses the file's text into its table of keys, refusing any key that
/// names no option.
pub fn parse_file(text: &str, path: &Path) -> Result<toml::Table, ConfError> {
    let table: toml::Table =
        toml::from_str(text).map_err(|source| ConfError::Parse { path: path.to_owned(), source: Box::new(source) })?;
    let command = command();
    let keys = file_keys(&command);
    for key in table.keys() {
        if !keys.iter().any(|(known, _)| known == key) {
            let dashed = key.replace('-', "_");
            let hint = if dashed != *key && keys.iter().any(|(known, _)| *known == dashed) {
                format!(" (did you mean '{dashed}'?)")
            } else if key == "conf" {
                " (the file cannot name another file)".to_owned()
            } else {
                String::new()
            };
            return Err(ConfError::UnknownKey { path: path.to_owned(), key: key.clone(), hint });
        }
    }
    Ok(table)
}

/// The file's values of the options that the flags and the environment left
/// unset, as flags, then `args` again after them.
fn layer_file(args: &[OsString], matches: &ArgMatches, table: &toml::Table, path: &Path) -> Result<Cli, ConfError> {
    let command = command();
    let mut injected: Vec<(String, OsString)> = Vec::new();
    for (key, arg) in file_keys(&command) {
        let Some(value) = table.get(&key) else { continue };
        if matches!(
            matches.value_source(arg.get_id().as_str()),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        let long = arg.get_long().expect("file keys are long flags");
        let invalid =
            |reason: &str| ConfError::Invalid { path: path.to_owned(), key: key.clone(), reason: reason.to_owned() };
        // A switch that takes no value (`--mine`); `--listen` is a switch
        // that also takes one (`--listen=0`) and gets the value form.
        let pure_switch = matches!(arg.get_action(), ArgAction::SetTrue)
            && !arg.get_num_args().is_some_and(|range| range.takes_values());
        match (arg.get_action(), value) {
            (ArgAction::SetTrue, toml::Value::Boolean(true)) if pure_switch => {
                injected.push((key.clone(), format!("--{long}").into()))
            }
            (ArgAction::SetTrue, toml::Value::Boolean(false)) if pure_switch => {}
            (ArgAction::SetTrue, _) if pure_switch => return Err(invalid("expected true or false")),
            (ArgAction::Append, toml::Value::Array(items)) => {
                for item in items {
                    let text = scalar(item).ok_or_else(|| invalid("expected a list of single values"))?;
                    injected.push((key.clone(), format!("--{long}={text}").into()));
                }
            }
            (_, value) => {
                let text = scalar(value).ok_or_else(|| invalid("expected a single value"))?;
                injected.push((key.clone(), format!("--{long}={text}").into()));
            }
        }
    }
    let mut layered: Vec<OsString> = Vec::with_capacity(args.len() + injected.len());
    layered.extend(args.first().cloned());
    layered.extend(injected.iter().map(|(_, flag)| flag.clone()));
    layered.extend(args.iter().skip(1).cloned());
    let matches = command.try_get_matches_from(&layered).map_err(|error| blame_file(error, &injected, path))?;
    Ok(Cli::from_arg_matches(&matches)?)
}

/// A TOML scalar as its flag's text.
fn scalar(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Datetime(_) | toml::Value::Array(_) | toml::Value::Table(_) => None,
    }
}

/// Names the file's key when the value clap refused came from the file.
fn blame_file(error: clap::Error, injected: &[(String, OsString)], path: &Path) -> ConfError {
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::String(flag)) = error.get(ContextKind::InvalidArg) else { return error.into() };
    // "--dbcache <DBCACHE>" → "dbcache"
    let long = flag.trim_start_matches('-').split([' ', '=']).next().unwrap_or_default();
    let key = file_key(long);
    if !injected.iter().any(|(k, _)| *k == key) {
        return error.into();
    }
    let value = match error.get(ContextKind::InvalidValue) {
        Some(ContextValue::String(v)) => format!("'{v}': "),
        _ => String::new(),
    };
    let reason = match std::error::Error::source(&error) {
        Some(source) => format!("{value}{source}"),
        None => {
            let rendered = error.to_string();
            let first = rendered.lines().next().unwrap_or_default();
            first.trim_start_matches("error: ").to_owned()
        }
    };
    ConfError::Invalid { path: path.to_owned(), key, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_file(text: &str, extra: &[&str]) -> (tempfile::TempDir, Result<Cli, ConfError>) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("node.toml");
        std::fs::write(&path, text).expect("write the file");
        let mut args = vec!["satpool-node".to_owned(), format!("--conf={}", path.display())];
        args.extend(extra.iter().map(|s| s.to_string()));
        let result = load_from(args);
        (dir, result)
    }

    #[test]
    fn file_fills_what_flags_leave() {
        let (_dir, cli) = with_file(
            "network = \"regtest\"\ndbcache = 64\nmine = true\nconnect = [\"127.0.0.1:1\", \"127.0.0.1:2\"]\nlisten = false\nrpcport = 1234\n",
            &["--rpcport", "4321"],
        );
        let config = cli.expect("valid").config;
        assert_eq!(config.network, crate::params::Network::Regtest);
        assert_eq!(config.dbcache, 64);
        assert!(config.mine);
        assert_eq!(config.p2p.connect, vec!["127.0.0.1:1", "127.0.0.1:2"]);
        assert!(!config.p2p.listen);
        assert_eq!(config.rpcport, Some(4321), "the flag wins over the file");
    }

    #[test]
    fn defaults_without_a_file() {
        let cli = load_from(["satpool-node", "--datadir", "/nonexistent/satpool-test"]).expect("valid");
        assert_eq!(cli.config.dbcache, 256);
        assert!(cli.config.conf.is_none());
    }

    #[test]
    fn default_file_in_the_datadir() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(dir.path().join(FILE_NAME), "dbcache = 32\n").expect("write");
        let datadir = format!("--datadir={}", dir.path().display());
        let cli = load_from(["satpool-node", datadir.as_str()]).expect("valid");
        assert_eq!(cli.config.dbcache, 32);
    }

    /// Each bad file is refused, naming the key.
    #[test]
    fn bad_files_name_their_key() {
        let cases: &[(&str, &str, &str)] = &[
            ("unknown key", "dbcach = 5\n", "dbcach"),
            ("dashed key", "devnet-spacing = 5\n", "devnet_spacing"),
            ("out of range", "dbcache = 2\n", "dbcache"),
            ("not a number", "rpcport = \"x\"\n", "rpcport"),
            ("port too big", "rpcport = 70000\n", "rpcport"),
            ("bad network", "network = \"moon\"\n", "network"),
            ("bool expected", "mine = \"yes\"\n", "mine"),
            ("table", "[rpc]\nport = 1\n", "rpc"),
            ("hidden flag", "test_prune_target_bytes = 1\n", "test_prune_target_bytes"),
            ("conf in conf", "conf = \"x\"\n", "conf"),
        ];
        for (name, text, key) in cases {
            let (_dir, result) = with_file(text, &[]);
            let error = result.expect_err(name);
            assert!(matches!(error, ConfError::UnknownKey { .. } | ConfError::Invalid { .. }), "{name}: {error:?}");
            let text = error.to_string();
            assert!(text.contains(key), "{name}: '{text}' does not name {key}");
        }
    }

    #[test]
    fn bad_flag_is_still_the_flags_error() {
        let (_dir, result) = with_file("dbcache = 64\n", &["--dbcache", "1"]);
        assert!(matches!(result, Err(ConfError::Args(_))));
    }

    #[test]
    fn every_flag_has_a_variable() {
        let command = command();
        for (key, arg) in file_keys(&command) {
            assert!(arg.get_env().is_some(), "{key} has no environment variable");
        }
    }
}
