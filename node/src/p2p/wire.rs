//! Message framing on the wire (Core's `V1Transport`): a 24-byte header of
//! message start, command, payload length and checksum, then the payload.
//!
//! The payloads themselves are rust-bitcoin's [`NetworkMessage`]s; this module
//! only adds what that crate leaves to the caller: a configurable size limit
//! checked before the payload is read, the network's message start, and a
//! streaming decoder for bytes that arrive in arbitrary pieces.

use bitcoin::consensus::encode::{self, Decodable};
use bitcoin::hashes::{sha256d, Hash};
use bitcoin::p2p::message::{NetworkMessage, RawNetworkMessage};
use bitcoin::p2p::Magic;

/// Bytes in a message header.
pub const HEADER_LEN: usize = 24;

/// Core's `MAX_PROTOCOL_MESSAGE_LENGTH`: the largest payload accepted.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 4_000_000;

/// A parsed message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The command, NUL-padded ASCII.
    pub command: [u8; 12],
    /// Payload bytes that follow.
    pub length: u32,
    /// First four bytes of the payload's SHA-256d.
    pub checksum: [u8; 4],
}

impl FrameHeader {
    /// The command without its padding.
    pub fn command_name(&self) -> String {
        command_name(&self.command)
    }
}

fn command_name(raw: &[u8; 12]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(12);
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

/// Why bytes from a peer are not a message.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The message start is another network's, or garbage.
    #[error("wrong message start {found:02x?}, expected {expected:02x?}")]
    WrongMagic {
        /// What came.
        found: [u8; 4],
        /// Our network's.
        expected: [u8; 4],
    },
    /// The command is not NUL-padded printable ASCII.
    #[error("malformed command field {0:02x?}")]
    BadCommand([u8; 12]),
    /// The announced payload is larger than the limit.
    #[error("{command} message of {length} bytes exceeds the limit of {max}")]
    Oversized {
        /// The command.
        command: String,
        /// The announced length.
        length: u32,
        /// The limit.
        max: usize,
    },
    /// The payload does not hash to the checksum.
    #[error("{command} message fails its checksum")]
    BadChecksum {
        /// The command.
        command: String,
    },
    /// The payload does not decode as its command says.
    #[error("malformed {command} message")]
    Malformed {
        /// The command.
        command: String,
        /// The decoder's complaint.
        #[source]
        source: encode::Error,
    },
}

/// Parses a header, checking the message start, the command and the length
/// limit before any payload is read (Core's `V1Transport::readHeader`).
pub fn parse_header(bytes: &[u8; HEADER_LEN], magic: Magic, max: usize) -> Result<FrameHeader, WireError> {
    let found: [u8; 4] = bytes[..4].try_into().expect("a 24-byte header has 4 bytes of magic");
    if found != magic.to_bytes() {
        return Err(WireError::WrongMagic { found, expected: magic.to_bytes() });
    }
    let command: [u8; 12] = bytes[4..16].try_into().expect("a 24-byte header has a 12-byte command");
    if !command_is_valid(&command) {
        return Err(WireError::BadCommand(command));
    }
    let length = u32::from_le_bytes(bytes[16..20].try_into().expect("4 bytes of length"));
    if length as usize > max {
        return Err(WireError::Oversized { command: command_name(&command), length, max });
    }
    let checksum = bytes[20..24].try_into().expect("4 bytes of checksum");
    Ok(FrameHeader { command, length, checksum })
}

/// Core's `CMessageHeader::IsCommandValid`: printable ASCII, then only NULs.
fn command_is_valid(command: &[u8; 12]) -> bool {
    let end = command.iter().position(|&b| b == 0).unwrap_or(12);
    end > 0 && command[..end].iter().all(|b| (b' '..=b'~').contains(b)) && command[end..].iter().all(|&b| b == 0)
}

/// Decodes a whole frame (header and payload), which [`parse_header`] has
/// already accepted.
pub fn decode_frame(frame: &[u8]) -> Result<NetworkMessage, WireError> {
    let command = frame.get(4..16).map(|c| command_name(c.try_into().expect("12 bytes"))).unwrap_or_default();
    let mut reader = frame;
    match RawNetworkMessage::consensus_decode_from_finite_reader(&mut reader) {
        Ok(raw) if reader.is_empty() => Ok(raw.into_payload()),
        Ok(_) => Err(WireError::Malformed { command, source: encode::Error::ParseFailed("bytes after the payload") }),
        Err(encode::Error::InvalidChecksum { .. }) => Err(WireError::BadChecksum { command }),
        Err(source) => Err(WireError::Malformed { command, source }),
    }
}

/// A message framed for `magic`.
pub fn encode_message(magic: Magic, message: NetworkMessage) -> Vec<u8> {
    encode::serialize(&RawNetworkMessage::new(magic, message))
}

/// A frame around an already serialised payload (a stored block, sent
/// without decoding it first).
pub fn encode_raw(magic: Magic, command: &str, payload: &[u8]) -> Vec<u8> {
    debug_assert!(command.len() <= 12, "commands are at most 12 bytes");
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&magic.to_bytes());
    let mut name = [0u8; 12];
    name[..command.len()].copy_from_slice(command.as_bytes());
    out.extend_from_slice(&name);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&sha256d::Hash::hash(payload)[..4]);
    out.extend_from_slice(payload);
    out
}

/// Decodes messages from bytes that arrive in pieces of any size.
#[derive(Debug)]
pub struct FrameDecoder {
    magic: Magic,
    max: usize,
    buffer: Vec<u8>,
    header: Option<FrameHeader>,
}

impl FrameDecoder {
    /// A decoder for `magic` with payloads up to `max` bytes.
    pub fn new(magic: Magic, max: usize) -> FrameDecoder {
        FrameDecoder { magic, max, buffer: Vec::new(), header: None }
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete message, with its size on the wire; `None` until
    /// enough bytes have arrived. After an error the stream is unusable.
    pub fn next_message(&mut self) -> Option<Result<(NetworkMessage, usize), WireError>> {
        if self.header.is_none() {
            let head: &[u8; HEADER_LEN] = self.buffer.get(..HEADER_LEN)?.try_into().expect("HEADER_LEN bytes");
            match parse_header(head, self.magic, self.max) {
                Ok(header) => self.header = Some(header),
                Err(e) => return Some(Err(e)),
            }
        }
        let header = self.header.expect("set above");
        let total = HEADER_LEN + header.length as usize;
        if self.buffer.len() < total {
            return None;
        }
        let result = decode_frame(&self.buffer[..total]).map(|m| (m, total));
        self.buffer.drain(..total);
        self.header = None;
        Some(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::p2p::message_blockdata::{GetHeadersMessage, Inventory};
    use bitcoin::p2p::message_compact_blocks::SendCmpct;
    use bitcoin::{BlockHash, Wtxid};
    use proptest::prelude::*;

    const REGTEST: Magic = Magic::REGTEST;

    #[test]
    fn ping_round_trips_with_core_framing() {
        let frame = encode_message(REGTEST, NetworkMessage::Ping(7));
        assert_eq!(&frame[..4], &[0xfa, 0xbf, 0xb5, 0xda]);
        assert_eq!(&frame[4..16], b"ping\0\0\0\0\0\0\0\0");
        assert_eq!(u32::from_le_bytes(frame[16..20].try_into().unwrap()), 8);
        assert_eq!(decode_frame(&frame).unwrap(), NetworkMessage::Ping(7));
    }

    #[test]
    fn raw_frames_equal_encoded_ones() {
        let block = bitcoin::blockdata::constants::genesis_block(bitcoin::Network::Regtest);
        let payload = encode::serialize(&block);
        assert_eq!(encode_raw(REGTEST, "block", &payload), encode_message(REGTEST, NetworkMessage::Block(block)));
    }

    type IsExpected = fn(&WireError) -> bool;

    #[test]
    fn header_errors_are_named() {
        let good = encode_message(REGTEST, NetworkMessage::Verack);
        let head = |f: &[u8]| -> [u8; 24] { f[..24].try_into().unwrap() };
        let cases: Vec<(&str, Vec<u8>, IsExpected)> = vec![
            ("wrong magic", [&[0u8, 1, 2, 3][..], &good[4..]].concat(), |e| matches!(e, WireError::WrongMagic { .. })),
            (
                "bad command",
                {
                    let mut f = good.clone();
                    f[4] = 0x01;
                    f
                },
                |e| matches!(e, WireError::BadCommand(_)),
            ),
            (
                "oversized",
                {
                    let mut f = good.clone();
                    f[16..20].copy_from_slice(&4_000_001u32.to_le_bytes());
                    f
                },
                |e| matches!(e, WireError::Oversized { length: 4_000_001, .. }),
            ),
        ];
        for (name, frame, check) in cases {
            let err = parse_header(&head(&frame), REGTEST, DEFAULT_MAX_MESSAGE_SIZE).unwrap_err();
            assert!(check(&err), "{name}: {err}");
        }
        assert!(parse_header(&head(&good), REGTEST, DEFAULT_MAX_MESSAGE_SIZE).is_ok());
    }

    #[test]
    fn bad_checksum_and_trailing_bytes_are_refused() {
        let mut frame = encode_message(REGTEST, NetworkMessage::Ping(1));
        frame[20] ^= 1;
        assert!(matches!(decode_frame(&frame), Err(WireError::BadChecksum { .. })));
        let frame = encode_raw(REGTEST, "ping", &[0; 9]);
        assert!(matches!(decode_frame(&frame), Err(WireError::Malformed { .. })));
    }

    #[test]
    fn decoder_reassembles_pieces() {
        let mut bytes = encode_message(REGTEST, NetworkMessage::Ping(1));
        bytes.extend(encode_message(REGTEST, NetworkMessage::SendCmpct(SendCmpct { send_compact: true, version: 2 })));
        let mut decoder = FrameDecoder::new(REGTEST, DEFAULT_MAX_MESSAGE_SIZE);
        let mut got = Vec::new();
        for byte in bytes {
            decoder.push(&[byte]);
            while let Some(m) = decoder.next_message() {
                got.push(m.unwrap().0);
            }
        }
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], NetworkMessage::Ping(1));
    }

    fn hash32() -> impl Strategy<Value = [u8; 32]> {
        proptest::array::uniform32(any::<u8>())
    }

    fn message() -> impl Strategy<Value = NetworkMessage> {
        prop_oneof![
            any::<u64>().prop_map(NetworkMessage::Ping),
            any::<u64>().prop_map(NetworkMessage::Pong),
            Just(NetworkMessage::Verack),
            Just(NetworkMessage::SendHeaders),
            Just(NetworkMessage::WtxidRelay),
            Just(NetworkMessage::SendAddrV2),
            (0i64..2_100_000_000_000_000).prop_map(NetworkMessage::FeeFilter),
            proptest::collection::vec(hash32(), 0..20).prop_map(|hs| NetworkMessage::Inv(
                hs.into_iter().map(|h| Inventory::WTx(Wtxid::from_byte_array(h))).collect()
            )),
            (proptest::collection::vec(hash32(), 0..10), hash32()).prop_map(|(l, s)| {
                NetworkMessage::GetHeaders(GetHeadersMessage::new(
                    l.into_iter().map(BlockHash::from_byte_array).collect(),
                    BlockHash::from_byte_array(s),
                ))
            }),
            (any::<bool>(), any::<u64>())
                .prop_map(|(send_compact, version)| NetworkMessage::SendCmpct(SendCmpct { send_compact, version })),
        ]
    }

    const COMMANDS: &[&str] = &[
        "version",
        "verack",
        "addr",
        "addrv2",
        "inv",
        "getdata",
        "notfound",
        "getheaders",
        "headers",
        "tx",
        "block",
        "ping",
        "pong",
        "sendcmpct",
        "cmpctblock",
        "getblocktxn",
        "blocktxn",
        "feefilter",
        "reject",
        "whatever",
    ];

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096), split in 0usize..4096) {
            let mut decoder = FrameDecoder::new(REGTEST, DEFAULT_MAX_MESSAGE_SIZE);
            let split = split.min(bytes.len());
            decoder.push(&bytes[..split]);
            let _ = decoder.next_message();
            decoder.push(&bytes[split..]);
            let _ = decoder.next_message();
        }

        #[test]
        fn random_payloads_never_panic(cmd in 0usize..COMMANDS.len(), payload in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = decode_frame(&encode_raw(REGTEST, COMMANDS[cmd], &payload));
        }

        #[test]
        fn encode_then_decode_round_trips(msg in message()) {
            let frame = encode_message(REGTEST, msg.clone());
            prop_assert_eq!(decode_frame(&frame).unwrap(), msg.clone());
            let mut decoder = FrameDecoder::new(REGTEST, DEFAULT_MAX_MESSAGE_SIZE);
            decoder.push(&frame);
            let (decoded, size) = decoder.next_message().unwrap().unwrap();
            prop_assert_eq!(decoded, msg);
            prop_assert_eq!(size, frame.len());
        }
    }
}
