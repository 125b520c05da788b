//! Stratum V1 messages and the job-to-header arithmetic, shared by the
//! satpool pool server and the satpool miner (and by nothing copied).
//!
//! What it is:
//! - [`message`]: typed Stratum V1 requests, notifications and responses,
//!   parsed from one line of JSON and written back as one `\n`-terminated
//!   line, with typed parse errors that name what is wrong;
//! - the arithmetic from a job to a header: extranonces ([`Extranonce1`],
//!   [`Extranonce2`]), the coinbase and its split into coinb1/coinb2
//!   ([`CoinbaseParts`]), the merkle branch and root, the previous-hash word
//!   swap, BIP 310 version rolling ([`VersionMask`]), the 80-byte header;
//! - [`ShareDifficulty`] with the one conversion from a difficulty to a
//!   256-bit target, and back from a hash;
//! - [`check_share`]: job + extranonce1 + submit + mask → header and hash.
//!
//! What it is not: no sockets, no clocks, no threads, no async, no state.
//! Job lookup, the ntime window, duplicate detection, difficulty policy
//! (vardiff), sessions and line-length limits belong to the pool and the
//! miner that call into it.

pub mod coinbase;
pub mod difficulty;
pub mod extranonce;
pub mod header;
pub mod merkle;
pub mod message;
pub mod prevhash;

pub use coinbase::{
    assemble_coinbase, coinbase_txid, serialize_without_witness, CoinbaseError, CoinbaseParts,
    MAX_COINBASE_SCRIPT_SIG_LEN,
};
pub use difficulty::{hash_difficulty, meets, DifficultyError, ShareDifficulty, DIFF1_TARGET};
pub use extranonce::{Extranonce1, Extranonce2, ExtranonceError, MAX_EXTRANONCE_LEN};
pub use header::{build_header, check_share, header_bytes, Share, ShareError, VersionMask};
pub use merkle::{merkle_branch, merkle_root};
pub use message::{
    Authorize, Configure, ConfigureResult, ErrorCode, ErrorReply, FieldError, Id, Message, Method, Notify, ParseError,
    Reconnect, Request, Response, SetExtranonce, Submit, Subscribe, SubscribeResult, DEFAULT_MAX_LINE_LEN,
    VERSION_ROLLING,
};
pub use prevhash::{prev_hash_from_stratum, prev_hash_to_stratum};
