//! Network parameters: genesis blocks, message starts, ports, activation
//! heights and difficulty rules of each network the node can run.

use std::fmt;
use std::str::FromStr;

use bitcoin::blockdata::constants::genesis_block;
use bitcoin::hashes::Hash;
use bitcoin::script::Builder;
use bitcoin::{
    absolute, block, transaction, Amount, Block, BlockHash, CompactTarget, OutPoint, ScriptBuf, Sequence, Target,
    Transaction, TxIn, TxMerkleNode, TxOut, Witness,
};

/// The networks the node knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Network {
    /// Bitcoin's main network.
    Mainnet,
    /// Bitcoin's fourth test network (BIP 94).
    Testnet4,
    /// Bitcoin Core's regression-test network, byte for byte.
    Regtest,
    /// satpool's own demo network: a per-block moving-average difficulty so
    /// that a laptop finds blocks at a steady pace.
    Devnet,
}

impl Network {
    /// Every network, in the order `--help` lists them.
    pub const ALL: [Network; 4] = [Network::Mainnet, Network::Testnet4, Network::Regtest, Network::Devnet];

    /// The name used on the command line and in `getblockchaininfo`'s `chain`
    /// (Core says `main` and `test`; we accept those too).
    pub fn name(self) -> &'static str {
        match self {
            Network::Mainnet => "main",
            Network::Testnet4 => "testnet4",
            Network::Regtest => "regtest",
            Network::Devnet => "devnet",
        }
    }

    /// The rust-bitcoin network whose address formats this network uses.
    pub fn address_network(self) -> bitcoin::Network {
        match self {
            Network::Mainnet => bitcoin::Network::Bitcoin,
            Network::Testnet4 => bitcoin::Network::Testnet4,
            // Devnet shares regtest's address formats (bech32 `bcrt`), so that
            // tools that know regtest addresses work with it unchanged.
            Network::Regtest | Network::Devnet => bitcoin::Network::Regtest,
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown network name.
#[derive(Debug, thiserror::Error)]
#[error("unknown network '{0}' (expected one of: main, testnet4, regtest, devnet)")]
pub struct UnknownNetwork(String);

impl FromStr for Network {
    type Err = UnknownNetwork;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "main" | "mainnet" | "bitcoin" => Ok(Network::Mainnet),
            "testnet4" => Ok(Network::Testnet4),
            "regtest" => Ok(Network::Regtest),
            "devnet" => Ok(Network::Devnet),
            other => Err(UnknownNetwork(other.to_owned())),
        }
    }
}

/// How the proof-of-work target of the next block is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DifficultyRule {
    /// Bitcoin's rule: every `interval` blocks, scale the target by the time
    /// the last interval took over the time it should have taken, clamped to
    /// a factor of four either way.
    Retarget {
        /// Blocks between retargets (2016).
        interval: u32,
        /// Testnet's rule: a block more than twice the spacing after its
        /// parent may use the proof-of-work limit.
        allow_min_difficulty: bool,
        /// BIP 94: the first block of a period may not be more than 600 s
        /// earlier than its parent (the timewarp fix), and the retarget reads
        /// the first block of the period rather than the last min-difficulty one.
        bip94: bool,
    },
    /// The target never changes (regtest).
    Fixed,
    /// aserti3-2d, the absolutely scheduled exponential rule: the target of
    /// the next block is the anchor's target times 2^((t - s·(h+1)) / half_life),
    /// where t is the time elapsed since the anchor's parent, h the blocks
    /// since the anchor and s the target spacing. Each block only reads its
    /// parent and the fixed anchor (here the genesis block), so it cannot
    /// oscillate, needs no window of past blocks, and recovers from a sudden
    /// loss of hashrate in about one half-life. The arithmetic is the integer
    /// cubic approximation of 2^x that Bitcoin Cash uses, so it is exact and
    /// identical on every machine.
    Asert {
        /// Seconds over which a schedule deviation doubles or halves the target.
        half_life: u64,
    },
}

/// Which always-on script rules a historical block is exempt from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptRuleException {
    /// No P2SH, segwit or taproot rules.
    NoP2sh,
    /// P2SH and segwit, but no taproot.
    NoTaproot,
}

/// Everything that distinguishes one network from another.
#[derive(Debug, Clone)]
pub struct ChainParams {
    /// Which network.
    pub network: Network,
    /// The first block.
    pub genesis: Block,
    /// The four bytes that open every P2P message.
    pub message_start: [u8; 4],
    /// Default P2P port.
    pub default_port: u16,
    /// Default JSON-RPC port.
    pub default_rpc_port: u16,
    /// Blocks between subsidy halvings.
    pub subsidy_halving_interval: u32,
    /// The easiest target a block may have.
    pub pow_limit: Target,
    /// Seconds a block should take.
    pub pow_target_spacing: u64,
    /// How the next target is found.
    pub difficulty: DifficultyRule,
    /// BIP 34 (height in coinbase) from this height.
    pub bip34_height: u32,
    /// BIP 65 (CHECKLOCKTIMEVERIFY) from this height.
    pub bip65_height: u32,
    /// BIP 66 (strict DER) from this height.
    pub bip66_height: u32,
    /// BIP 68/112/113 (CSV, sequence locks, MTP lock time) from this height.
    pub csv_height: u32,
    /// BIP 141/143/147 (segwit) from this height.
    pub segwit_height: u32,
    /// Blocks whose scripts are checked with fewer rules than their height
    /// implies (Core's `script_flag_exceptions`).
    pub script_flag_exceptions: Vec<(BlockHash, ScriptRuleException)>,
    /// Blocks a coinbase output must wait before it is spent.
    pub coinbase_maturity: u32,
}

/// Devnet's genesis: a 50-coin coinbase paying to an unspendable script.
const DEVNET_GENESIS_TIME: u32 = 1_764_028_800; // 2025-11-25 00:00:00 UTC
const DEVNET_GENESIS_NONCE: u32 = 1476;
/// Devnet's proof-of-work limit: about 65,536 hashes a block, a few
/// milliseconds on one core, so the first blocks come at once and ASERT then
/// raises the difficulty to the hashrate present.
const DEVNET_POW_LIMIT_BITS: u32 = 0x1f00_ffff;

impl ChainParams {
    /// The parameters of `network`, with devnet's default spacing of 30 s.
    pub fn new(network: Network) -> ChainParams {
        match network {
            Network::Mainnet => Self::mainnet(),
            Network::Testnet4 => Self::testnet4(),
            Network::Regtest => Self::regtest(),
            Network::Devnet => Self::devnet(30),
        }
    }

    fn mainnet() -> ChainParams {
        ChainParams {
            network: Network::Mainnet,
            genesis: genesis_block(bitcoin::Network::Bitcoin),
            message_start: [0xf9, 0xbe, 0xb4, 0xd9],
            default_port: 8333,
            default_rpc_port: 8332,
            subsidy_halving_interval: 210_000,
            pow_limit: Target::MAX_ATTAINABLE_MAINNET,
            pow_target_spacing: 600,
            difficulty: DifficultyRule::Retarget { interval: 2016, allow_min_difficulty: false, bip94: false },
            bip34_height: 227_931,
            bip65_height: 388_381,
            bip66_height: 363_725,
            csv_height: 419_328,
            segwit_height: 481_824,
            script_flag_exceptions: vec![
                // The one block before BIP 16 whose P2SH spend is invalid under it.
                (
                    block_hash("00000000000002dc756eebf4f49723ed8d30cc28a5f108eb94b1ba88ac4f9c22"),
                    ScriptRuleException::NoP2sh,
                ),
                // The one block with a taproot-invalid spend before activation.
                (
                    block_hash("0000000000000000000f14c35b2d841e986ab5441de8c585d5ffe55ea1e395ad"),
                    ScriptRuleException::NoTaproot,
                ),
            ],
            coinbase_maturity: 100,
        }
    }

    fn testnet4() -> ChainParams {
        ChainParams {
            network: Network::Testnet4,
            genesis: genesis_block(bitcoin::Network::Testnet4),
            message_start: [0x1c, 0x16, 0x3f, 0x28],
            default_port: 48333,
            default_rpc_port: 48332,
            subsidy_halving_interval: 210_000,
            pow_limit: Target::MAX_ATTAINABLE_TESTNET,
            pow_target_spacing: 600,
            difficulty: DifficultyRule::Retarget { interval: 2016, allow_min_difficulty: true, bip94: true },
            bip34_height: 1,
            bip65_height: 1,
            bip66_height: 1,
            csv_height: 1,
            segwit_height: 1,
            script_flag_exceptions: Vec::new(),
            coinbase_maturity: 100,
        }
    }

    fn regtest() -> ChainParams {
        ChainParams {
            network: Network::Regtest,
            genesis: genesis_block(bitcoin::Network::Regtest),
            message_start: [0xfa, 0xbf, 0xb5, 0xda],
            default_port: 18444,
            default_rpc_port: 18443,
            subsidy_halving_interval: 150,
            pow_limit: Target::MAX_ATTAINABLE_REGTEST,
            pow_target_spacing: 600,
            difficulty: DifficultyRule::Fixed,
            bip34_height: 1,
            bip65_height: 1,
            bip66_height: 1,
            csv_height: 1,
            segwit_height: 0,
            script_flag_exceptions: Vec::new(),
            coinbase_maturity: 100,
        }
    }

    /// Devnet with blocks every `spacing` seconds. The spacing is part of the
    /// consensus rules: every node of one devnet must use the same.
    pub fn devnet(spacing: u64) -> ChainParams {
        let spacing = spacing.max(1);
        ChainParams {
            network: Network::Devnet,
            genesis: devnet_genesis(),
            message_start: [0x5a, 0x70, 0x6f, 0x6c], // "Zpol"
            default_port: 28444,
            default_rpc_port: 28443,
            subsidy_halving_interval: 210_000,
            pow_limit: Target::from_compact(CompactTarget::from_consensus(DEVNET_POW_LIMIT_BITS)),
            pow_target_spacing: spacing,
            // A half-life of 20 blocks: the target follows a miner joining or
            // leaving within minutes, as a demo needs.
            difficulty: DifficultyRule::Asert { half_life: 20 * spacing },
            bip34_height: 1,
            bip65_height: 1,
            bip66_height: 1,
            csv_height: 1,
            segwit_height: 0,
            script_flag_exceptions: Vec::new(),
            coinbase_maturity: 100,
        }
    }

    /// The genesis block's hash.
    pub fn genesis_hash(&self) -> BlockHash {
        self.genesis.block_hash()
    }

    /// The block subsidy at `height`: 50 coins, halved every interval, zero
    /// after 64 halvings.
    pub fn block_subsidy(&self, height: u32) -> Amount {
        let halvings = height / self.subsidy_halving_interval;
        if halvings >= 64 {
            return Amount::ZERO;
        }
        Amount::from_sat((50 * 100_000_000u64) >> halvings)
    }
}

fn block_hash(hex: &str) -> BlockHash {
    hex.parse().expect("hard-coded block hashes are valid hex")
}

fn devnet_genesis() -> Block {
    let coinbase = Transaction {
        version: transaction::Version::ONE,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig: Builder::new()
                .push_int(DEVNET_POW_LIMIT_BITS as i64)
                .push_slice([4u8])
                .push_slice(b"satpool devnet: a peer-to-peer electronic cash system for mining pools")
                .into_script(),
            sequence: Sequence::MAX,
            witness: Witness::default(),
        }],
        // OP_RETURN: the genesis output is unspendable, as Core treats it.
        output: vec![TxOut { value: Amount::from_sat(50 * 100_000_000), script_pubkey: ScriptBuf::new_op_return([]) }],
    };
    let merkle_root = TxMerkleNode::from_raw_hash(coinbase.compute_txid().to_raw_hash());
    Block {
        header: block::Header {
            version: block::Version::ONE,
            prev_blockhash: BlockHash::all_zeros(),
            merkle_root,
            time: DEVNET_GENESIS_TIME,
            bits: CompactTarget::from_consensus(DEVNET_POW_LIMIT_BITS),
            nonce: DEVNET_GENESIS_NONCE,
        },
        txdata: vec![coinbase],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genesis_hashes_are_cores() {
        let cases = [
            (Network::Mainnet, "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"),
            (Network::Regtest, "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"),
            (Network::Testnet4, "00000000da84f2bafbbc53dee25a72ae507ff4914b867c565be350b0da8bf043"),
        ];
        for (network, hash) in cases {
            assert_eq!(ChainParams::new(network).genesis_hash().to_string(), hash, "{network}");
        }
    }

    #[test]
    fn devnet_genesis_meets_its_own_target() {
        let params = ChainParams::new(Network::Devnet);
        let header = params.genesis.header;
        assert!(params.pow_limit.is_met_by(header.block_hash()));
        assert_eq!(header.block_hash().to_string(), "0000a49e55388ba4a21105164ed6a66d157fda02f8138cc7873f2dc74fe8092b");
        assert!(params.genesis.check_merkle_root());
    }

    #[test]
    fn subsidy_halves() {
        let regtest = ChainParams::new(Network::Regtest);
        assert_eq!(regtest.block_subsidy(0), Amount::from_btc(50.0).unwrap());
        assert_eq!(regtest.block_subsidy(149), Amount::from_btc(50.0).unwrap());
        assert_eq!(regtest.block_subsidy(150), Amount::from_btc(25.0).unwrap());
        assert_eq!(regtest.block_subsidy(150 * 64), Amount::ZERO);
        let main = ChainParams::new(Network::Mainnet);
        assert_eq!(main.block_subsidy(840_000), Amount::from_sat(312_500_000));
    }

    #[test]
    fn network_names_round_trip() {
        for n in Network::ALL {
            assert_eq!(n.name().parse::<Network>().unwrap(), n);
        }
        assert!("testnet3".parse::<Network>().is_err());
    }
}
