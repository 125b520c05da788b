//! Context-free Bitcoin consensus rules.
//!
//! What it is: the script interpreter (legacy, P2SH, segwit v0, taproot key
//! path and tapscript) with Bitcoin Core's verification flags and error
//! names, signature hashes, sigop counting, and `CheckTransaction`.
//!
//! What it is not: anything that needs the chain (UTXO lookups, heights,
//! median time past, block rules). Those live in `satpool-node`.
