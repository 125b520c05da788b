//! HTTP Basic credentials: the cookie file Core writes at start, or a fixed
//! user and password; shared by the server and the client.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use rand::RngCore;

/// Core's cookie user name.
pub const COOKIE_USER: &str = "__cookie__";

/// Core's cookie file name inside the data directory.
pub const COOKIE_FILE: &str = ".cookie";

/// A secret that never reaches a log: `Debug` and `Display` print `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::str::FromStr for Password {
    type Err = std::convert::Infallible;

    /// Any text is a password; this lets command-line parsers build one
    /// directly, so the secret is never held in a plain, printable `String`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::new(s))
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How the RPC server checks callers, and how the client proves itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// Core's cookie: the server writes `__cookie__:<64 hex>` to `path` at
    /// start (mode 0600) and deletes it at shutdown; the client reads it,
    /// and reads it again after a 401 since a restarted node writes a new one.
    Cookie {
        /// The cookie file, by default `<datadir>/.cookie`.
        path: PathBuf,
    },
    /// A fixed user and password (Core's `-rpcuser`/`-rpcpassword`).
    UserPassword {
        /// The user name.
        user: String,
        /// The password.
        password: Password,
    },
}

impl Auth {
    /// Cookie authentication with Core's file, `<datadir>/.cookie`.
    pub fn cookie_in(datadir: impl AsRef<Path>) -> Self {
        Auth::Cookie { path: datadir.as_ref().join(COOKIE_FILE) }
    }

    /// A fixed user and password.
    pub fn user_password(user: impl Into<String>, password: impl Into<String>) -> Self {
        Auth::UserPassword { user: user.into(), password: Password::new(password) }
    }
}

/// The `user:password` the server accepts.
#[derive(Clone)]
pub(crate) struct Credentials {
    user_colon_pass: Vec<u8>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials(<redacted>)")
    }
}

/// Why a request's credentials were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No `Authorization` header: Core answers at once.
    Missing,
    /// Present but wrong or unreadable: Core waits before answering.
    Wrong,
}

impl Credentials {
    pub(crate) fn new(user: &str, password: &str) -> Self {
        Self { user_colon_pass: format!("{user}:{password}").into_bytes() }
    }

    /// Core's `RPCAuthorized`: `Basic <base64(user:password)>`, compared in
    /// constant time.
    pub(crate) fn check(&self, header: Option<&[u8]>) -> Result<(), Refusal> {
        let header = header.ok_or(Refusal::Missing)?;
        let encoded = header.strip_prefix(b"Basic ").ok_or(Refusal::Wrong)?;
        let decoded =
            base64::engine::general_purpose::STANDARD.decode(encoded.trim_ascii()).map_err(|_| Refusal::Wrong)?;
        if timing_resistant_equal(&decoded, &self.user_colon_pass) {
            Ok(())
        } else {
            Err(Refusal::Wrong)
        }
    }
}

/// Core's `TimingResistantEqual`: the time taken depends on `a`'s length
/// only, not on where the first difference lies.
fn timing_resistant_equal(a: &[u8], b: &[u8]) -> bool {
    if b.is_empty() {
        return a.is_empty();
    }
    let mut accumulator = a.len() ^ b.len();
    for (i, byte) in a.iter().enumerate() {
        accumulator |= usize::from(byte ^ b[i % b.len()]);
    }
    accumulator == 0
}

/// The cookie file the server wrote; removed when dropped (shutdown, or the
/// serving future being dropped).
#[derive(Debug)]
pub(crate) struct CookieFile {
    path: PathBuf,
}

impl CookieFile {
    /// Core's `GenerateAuthCookie`: 32 random bytes as hex, written to a
    /// temporary file with mode 0600, then renamed into place.
    pub(crate) fn create(path: &Path) -> io::Result<(Self, Credentials)> {
        let mut secret = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut secret);
        let secret = hex::encode(secret);
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
            options.mode(0o600);
            // A stale file keeps its old mode through `open`; set it anyway.
            let mut file = options.open(&tmp)?;
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
            file.write_all(format!("{COOKIE_USER}:{secret}").as_bytes())?;
            file.sync_all()?;
        }
        #[cfg(not(unix))]
        {
            let mut file = options.open(&tmp)?;
            file.write_all(format!("{COOKIE_USER}:{secret}").as_bytes())?;
            file.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        tracing::info!(path = %path.display(), "rpc cookie written");
        Ok((Self { path: path.to_owned() }, Credentials::new(COOKIE_USER, &secret)))
    }
}

impl Drop for CookieFile {
    fn drop(&mut self) {
        match fs::remove_file(&self.path) {
            Ok(()) => tracing::info!(path = %self.path.display(), "rpc cookie removed"),
            Err(e) => tracing::warn!(path = %self.path.display(), error = %e, "cannot remove rpc cookie"),
        }
    }
}

/// Reads a cookie file as the client does: `user:password`, trailing
/// whitespace ignored. `None` when the text holds no colon.
pub(crate) fn read_cookie(path: &Path) -> io::Result<Option<(String, Password)>> {
    let text = fs::read_to_string(path)?;
    Ok(text.trim_end().split_once(':').map(|(user, password)| (user.to_owned(), Password::new(password))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(userpass: &str) -> Vec<u8> {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(userpass)).into_bytes()
    }

    #[test]
    fn checks_basic_credentials() {
        let creds = Credentials::new("u", "p:w");
        type Case = (&'static str, Option<Vec<u8>>, Result<(), Refusal>);
        let cases: &[Case] = &[
            ("right", Some(basic("u:p:w")), Ok(())),
            ("surrounding blanks", Some([b"Basic  ".as_slice(), &basic("u:p:w")[6..], b" "].concat()), Ok(())),
            ("missing", None, Err(Refusal::Missing)),
            ("wrong password", Some(basic("u:p:x")), Err(Refusal::Wrong)),
            ("prefix of the password", Some(basic("u:p:")), Err(Refusal::Wrong)),
            ("not basic", Some(b"Bearer abc".to_vec()), Err(Refusal::Wrong)),
            ("bad base64", Some(b"Basic !!!".to_vec()), Err(Refusal::Wrong)),
        ];
        for (name, header, want) in cases {
            assert_eq!(creds.check(header.as_deref()), *want, "{name}");
        }
    }

    #[test]
    fn constant_time_compare() {
        assert!(timing_resistant_equal(b"abc", b"abc"));
        assert!(!timing_resistant_equal(b"abc", b"abcabc"));
        assert!(!timing_resistant_equal(b"abcabc", b"abc"));
        assert!(!timing_resistant_equal(b"", b"a"));
        assert!(timing_resistant_equal(b"", b""));
    }

    #[test]
    fn password_is_redacted() {
        let auth = Auth::user_password("alice", "hunter2");
        let shown = format!("{auth:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
}
