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

/// The lane paths (AVX2, AVX-512) this test binary expects on x86-64, with
/// whether this CPU has them; a path it lacks is skipped with a notice.
fn lane_paths() -> Vec<(CpuPath, bool)> {
    #[cfg(target_arch = "x86_64")]
    {
        vec![
            (CpuPath::Avx2, std::is_x86_feature_detected!("avx2")),
            (CpuPath::Avx512, std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bw")),
        ]
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Vec::new()
    }
}

#[test]
fn lane_paths_are_offered_where_the_cpu_has_them() {
    let available = CpuPath::available();
    for (path, has) in lane_paths() {
        if has {
            assert!(available.contains(&path), "{path} detected but not offered");
        } else {
            eprintln!("notice: this CPU lacks {path}; its tests are skipped");
            assert!(!available.contains(&path), "{path} offered on a CPU without it");
        }
    }
    let names: Vec<String> = [CpuPath::Avx2, CpuPath::Avx512].iter().map(ToString::to_string).collect();
    assert_eq!(names, ["avx2 x8", "avx-512 x16"]);
}

/// Every path's candidates on `work` over `start .. start + count`
/// (wrapping), against the portable path's.
fn assert_paths_match_portable(work: &HeaderWork, start: u32, count: u32, what: &str) -> usize {
    let mut want = Vec::new();
    satpool_miner::cpu::portable::scan(work, start, count, &mut want);
    for path in CpuPath::available() {
        let mut got = Vec::new();
        path.scan_candidates(work, start, count, &mut got);
        assert_eq!(got, want, "{path} on {what}, nonces {start} + {count}");
    }
    want.len()
}

#[test]
fn every_path_matches_portable_on_random_headers_and_odd_ranges() {
    use rand::{Rng, RngCore, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5a70_0001);
    let mut found = 0;
    for i in 0..10 {
        let mut header = [0u8; 80];
        rng.fill_bytes(&mut header);
        // About one nonce in 256 (top word 0x00ff_ffff) to one in 128: the
        // candidates exist, fall in every lane and come several per vector.
        let mut be = [0u8; 32];
        be[..4].copy_from_slice(&rng.gen_range(0x00ff_ffffu32..0x0200_0000).to_be_bytes());
        rng.fill_bytes(&mut be[4..]);
        let work = HeaderWork::new(header, Target::from_be_bytes(be));
        let ranges = [
            // Odd starts, lengths that are not multiples of 8 or 16.
            (rng.gen::<u32>() | 1, 16 * rng.gen_range(50..200) + rng.gen_range(1..16)),
            (rng.gen::<u32>() | 1, rng.gen_range(0..40)),
            (rng.gen::<u32>() & !15, 16 * 64 + 7),
            // Wrapping past u32::MAX, the wrap inside a vector.
            (u32::MAX - 2 * i - 10, 1001 + 16 * i),
        ];
        for (start, count) in ranges {
            found += assert_paths_match_portable(&work, start, count, &format!("random header {i}"));
        }
    }
    assert!(found > 50, "an easy target gives candidates to compare ({found})");
}

#[test]
fn every_path_finds_the_genesis_nonce_in_every_lane() {
    let (header, target) = genesis();
    let work = HeaderWork::new(header, target);
    for lane in 0..16 {
        // The genesis nonce at lane `lane` of the first vector, then of a
        // later one, then in the portable tail.
        for (start, count) in [(GENESIS_NONCE - lane, 16 * 4 + 3), (GENESIS_NONCE - 32 - lane, 16 * 5 + 1)] {
            for path in CpuPath::available() {
                assert_eq!(path.scan(&work, start, count), vec![GENESIS_NONCE], "{path} from {start} + {count}");
            }
        }
        let start = GENESIS_NONCE - 48 - lane;
        for path in CpuPath::available() {
            assert_eq!(path.scan(&work, start, lane + 49), vec![GENESIS_NONCE], "{path} tail from {start}");
        }
    }
    for (path, has) in lane_paths() {
        if !has {
            eprintln!("notice: this CPU lacks {path}; skipped");
        }
    }
}
