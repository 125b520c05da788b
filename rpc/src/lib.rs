//! Bitcoin Core's JSON-RPC over HTTP.
//!
//! What it is: the transport both ends need, shaped like Bitcoin Core's.
//!
//! What it is not: the methods themselves; the node registers those.
