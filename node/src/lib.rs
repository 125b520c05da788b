//! satpool-node: a Bitcoin full node for mining pools.
