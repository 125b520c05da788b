//! Banned addresses and subnets (`setban`, `listbanned`, misbehaving peers),
//! kept in `<datadir>/banlist.json` across restarts.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The file the list lives in.
pub const FILE_NAME: &str = "banlist.json";

/// An address with a prefix length: `1.2.3.4/32`, `10.0.0.0/8`, `::1/128`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subnet {
    network: IpAddr,
    prefix: u8,
}

/// Text that is not an address or subnet.
#[derive(Debug, thiserror::Error)]
#[error("invalid IP/Subnet '{0}'")]
pub struct InvalidSubnet(String);

impl Subnet {
    /// The single address `ip`.
    pub fn host(ip: IpAddr) -> Subnet {
        let ip = canonical(ip);
        Subnet { network: ip, prefix: max_prefix(ip) }
    }

    /// Whether `ip` lies in the subnet.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => mask32(u32::from(a), self.prefix) == u32::from(n),
            (IpAddr::V6(n), IpAddr::V6(a)) => mask128(u128::from(a), self.prefix) == u128::from(n),
            _ => false,
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn max_prefix(ip: IpAddr) -> u8 {
    if ip.is_ipv4() {
        32
    } else {
        128
    }
}

fn mask32(v: u32, prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        v & (u32::MAX << (32 - u32::from(prefix)))
    }
}

fn mask128(v: u128, prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        v & (u128::MAX << (128 - u32::from(prefix)))
    }
}

impl FromStr for Subnet {
    type Err = InvalidSubnet;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidSubnet(s.to_owned());
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let ip = canonical(addr.parse::<IpAddr>().map_err(|_| bad())?);
        let max = max_prefix(ip);
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                Ok(_) => return Err(bad()),
                // A netmask (`255.255.255.0`) as Core also accepts.
                Err(_) => match p.parse::<IpAddr>().map_err(|_| bad())? {
                    IpAddr::V4(m) if ip.is_ipv4() => {
                        let m = u32::from(m);
                        if m.leading_ones() + m.trailing_zeros() != 32 {
                            return Err(bad());
                        }
                        m.leading_ones() as u8
                    }
                    _ => return Err(bad()),
                },
            },
        };
        let network = match ip {
            IpAddr::V4(v4) => IpAddr::V4(mask32(u32::from(v4), prefix).into()),
            IpAddr::V6(v6) => IpAddr::V6(mask128(u128::from(v6), prefix).into()),
        };
        Ok(Subnet { network, prefix })
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// One ban.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanEntry {
    /// When it was made, Unix seconds.
    pub created: i64,
    /// When it ends, Unix seconds.
    pub until: i64,
    /// Why.
    pub reason: String,
}

#[derive(Serialize, Deserialize)]
struct StoredBan {
    subnet: String,
    #[serde(flatten)]
    entry: BanEntry,
}

/// Reading or writing the ban list failed.
#[derive(Debug, thiserror::Error)]
pub enum BanListError {
    /// The file could not be read or written.
    #[error("while accessing {path}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a ban list.
    #[error("{path} is not a ban list")]
    Format {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

/// The bans in force.
#[derive(Debug, Default, Clone)]
pub struct BanList {
    bans: BTreeMap<Subnet, BanEntry>,
    dirty: bool,
}

impl BanList {
    /// Bans `subnet` until `until` (replacing an earlier ban of it).
    pub fn ban(&mut self, subnet: Subnet, now: i64, until: i64, reason: &str) {
        self.bans.insert(subnet, BanEntry { created: now, until, reason: reason.to_owned() });
        self.dirty = true;
    }

    /// Lifts the ban of exactly `subnet`; whether there was one.
    pub fn unban(&mut self, subnet: &Subnet) -> bool {
        let removed = self.bans.remove(subnet).is_some();
        self.dirty |= removed;
        removed
    }

    /// Whether `ip` is banned at `now`.
    pub fn is_banned(&self, ip: IpAddr, now: i64) -> bool {
        self.bans.iter().any(|(s, e)| e.until > now && s.contains(ip))
    }

    /// Whether `subnet` itself is on the list.
    pub fn contains(&self, subnet: &Subnet) -> bool {
        self.bans.contains_key(subnet)
    }

    /// Forgets expired bans.
    pub fn sweep(&mut self, now: i64) {
        let before = self.bans.len();
        self.bans.retain(|_, e| e.until > now);
        self.dirty |= self.bans.len() != before;
    }

    /// Every ban.
    pub fn entries(&self) -> impl Iterator<Item = (&Subnet, &BanEntry)> {
        self.bans.iter()
    }

    /// Lifts every ban.
    pub fn clear(&mut self) {
        self.dirty |= !self.bans.is_empty();
        self.bans.clear();
    }

    /// Whether there are changes not yet saved.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Writes the list to `path` (atomically, through a temporary file).
    pub fn save(&mut self, path: &Path) -> Result<(), BanListError> {
        let stored: Vec<StoredBan> =
            self.bans.iter().map(|(s, e)| StoredBan { subnet: s.to_string(), entry: e.clone() }).collect();
        let text = serde_json::to_vec_pretty(&stored).expect("a ban list always serialises");
        write_atomically(path, &text)
            .map_err(|source| BanListError::Io { path: path.display().to_string(), source })?;
        self.dirty = false;
        Ok(())
    }

    /// Reads the list from `path`; a missing file is an empty list. Entries
    /// that are not subnets are skipped.
    pub fn load(path: &Path) -> Result<BanList, BanListError> {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BanList::default()),
            Err(source) => return Err(BanListError::Io { path: path.display().to_string(), source }),
        };
        let stored: Vec<StoredBan> = serde_json::from_slice(&text)
            .map_err(|source| BanListError::Format { path: path.display().to_string(), source })?;
        let bans = stored.into_iter().filter_map(|b| Some((b.subnet.parse().ok()?, b.entry))).collect();
        Ok(BanList { bans, dirty: false })
    }
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.new");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_parse_and_match() {
        let cases = [
            ("1.2.3.4", "1.2.3.4/32", "1.2.3.4", true),
            ("1.2.3.4", "1.2.3.4/32", "1.2.3.5", false),
            ("10.1.2.3/8", "10.0.0.0/8", "10.200.0.1", true),
            ("10.0.0.0/255.255.0.0", "10.0.0.0/16", "10.0.9.9", true),
            ("10.0.0.0/255.255.0.0", "10.0.0.0/16", "10.1.0.0", false),
            ("::1", "::1/128", "::1", true),
            ("::ffff:127.0.0.2", "127.0.0.2/32", "127.0.0.2", true),
        ];
        for (text, shown, ip, inside) in cases {
            let subnet: Subnet = text.parse().unwrap();
            assert_eq!(subnet.to_string(), shown, "{text}");
            assert_eq!(subnet.contains(ip.parse().unwrap()), inside, "{text} contains {ip}");
        }
        for bad in ["", "1.2.3", "1.2.3.4/33", "1.2.3.4/255.0.255.0", "nonsense/8"] {
            assert!(bad.parse::<Subnet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn bans_expire_and_persist() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let mut list = BanList::default();
        let ip: IpAddr = "127.0.0.2".parse().unwrap();
        list.ban(Subnet::host(ip), 100, 200, "garbage");
        assert!(list.is_banned(ip, 150));
        assert!(!list.is_banned(ip, 200));
        assert!(!list.is_banned("127.0.0.1".parse().unwrap(), 150));
        list.save(&path).unwrap();
        let mut loaded = BanList::load(&path).unwrap();
        assert!(loaded.is_banned(ip, 150));
        loaded.sweep(250);
        assert_eq!(loaded.entries().count(), 0);
        assert!(BanList::load(&dir.path().join("missing.json")).unwrap().entries().next().is_none());
    }
}
