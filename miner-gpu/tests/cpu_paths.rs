//! Every CPU path finds exactly the nonces the plain reference finds.

use bitcoin::{CompactTarget, Target};
use proptest::prelude::*;
use satpool_miner::{reference_scan, sha256d, CpuPath, HeaderWork};

const GENESIS_HEADER: &str = "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c";
const GENESIS_NONCE: u32 = 2_083_236_893;

fn genesis() -> ([u8; 80], Target) {
    let header: [u8; 80] = hex::decode(GENESIS_HEADER).expect("hex").try_into().expect("80 bytes");
    (header, Target::from_compact(CompactTarget::from_consensus(0x1d00ffff)))
}

/// The nonces whose hash's top 32 bits are at most the target's: exactly
/// what a path's unchecked candidates must be.
fn reference_candidates(header: &[u8; 80], target: &Target, start: u32, count: u32) -> Vec<u32> {
    let top = u32::from_be_bytes(target.to_be_bytes()[..4].try_into().expect("4 bytes"));
    let mut header = *header;
    (start..start + count)
        .filter(|nonce| {
            header[76..].copy_from_slice(&nonce.to_le_bytes());
            let hash = sha256d(&header).to_byte_array();
            u32::from_le_bytes(hash[28..].try_into().expect("4 bytes")) <= top
        })
        .collect()
}

use bitcoin::hashes::Hash;

#[test]
fn every_path_finds_the_genesis_nonce_at_its_real_target() {
    let (header, target) = genesis();
    let work = HeaderWork::new(header, target);
    let start = GENESIS_NONCE - 3000;
    let want = reference_scan(&header, &target, start, 6001);
    assert_eq!(want, vec![GENESIS_NONCE]);
    for path in CpuPath::available() {
        assert_eq!(path.scan(&work, start, 6001), want, "{path}");
        let mut candidates = Vec::new();
        path.scan_candidates(&work, start, 6001, &mut candidates);
        assert_eq!(candidates, want, "{path} candidates");
    }
}

#[test]
fn sha_ni_is_detected_where_the_cpu_has_it() {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("sha") {
        assert!(CpuPath::available().contains(&CpuPath::ShaNi(4)));
    }
    assert!(CpuPath::available().contains(&CpuPath::Portable));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn paths_match_the_reference(
        header in proptest::collection::vec(any::<u8>(), 80),
        top in 0u32..0x0200_0000,
        rest in proptest::collection::vec(any::<u8>(), 28),
        start in any::<u32>(),
        count in 0u32..700,
    ) {
        let header: [u8; 80] = header.try_into().expect("80 bytes");
        let mut be = [0u8; 32];
        be[..4].copy_from_slice(&top.to_be_bytes());
        be[4..].copy_from_slice(&rest);
        let target = Target::from_be_bytes(be);
        let start = start.min(u32::MAX - count);
        let work = HeaderWork::new(header, target);
        let want = reference_scan(&header, &target, start, count);
        let want_candidates = reference_candidates(&header, &target, start, count);
        for path in CpuPath::available() {
            let mut candidates = Vec::new();
            path.scan_candidates(&work, start, count, &mut candidates);
            prop_assert_eq!(&candidates, &want_candidates, "{} candidates", path);
            prop_assert_eq!(path.scan(&work, start, count), want.clone(), "{}", path);
        }
    }
}
