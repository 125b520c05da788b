//! Whitepaper section 11, "Calculations": the probability that an attacker
//! with a share `q` of the hash power ever catches up from `z` blocks behind,
//! and the confirmations a payee should wait for a given risk.
//!
//! The attacker's progress while the honest chain finds `z` blocks is Poisson
//! with mean λ = z·q/p; from `k` blocks of progress he still needs to make up
//! `z − k`, which he does with probability (q/p)^(z−k) (the gambler's ruin).
//! So
//!
//! P = 1 − Σ_{k=0..z} (λ^k e^{−λ} / k!) · (1 − (q/p)^(z−k))
//!
//! and P = 1 when q ≥ p. Pure arithmetic, no I/O.

/// A bad argument to the calculation, naming the offending value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AttackError {
    /// The attacker's share must lie strictly between 0 and 1.
    #[error("attacker share q = {0} must be strictly between 0 and 1")]
    Share(f64),
    /// The risk must lie strictly between 0 and 1.
    #[error("risk P = {0} must be strictly between 0 and 1")]
    Risk(f64),
}

/// An attacker's share of the hash power, strictly between 0 and 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttackerShare(f64);

impl AttackerShare {
    /// `q`, checked to lie in (0, 1).
    pub fn new(q: f64) -> Result<AttackerShare, AttackError> {
        if q > 0.0 && q < 1.0 {
            Ok(AttackerShare(q))
        } else {
            Err(AttackError::Share(q))
        }
    }

    /// The share `q`.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl Default for AttackerShare {
    /// 10%, the whitepaper's first table.
    fn default() -> Self {
        AttackerShare(0.1)
    }
}

impl std::str::FromStr for AttackerShare {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let q: f64 = s.parse().map_err(|_| format!("'{s}' is not a number"))?;
        AttackerShare::new(q).map_err(|e| e.to_string())
    }
}

/// The probability that an attacker with share `q` ever catches up from `z`
/// blocks behind (the whitepaper's `AttackerSuccessProbability`).
pub fn attacker_success_probability(q: AttackerShare, z: u64) -> f64 {
    let q = q.get();
    let p = 1.0 - q;
    if q >= p {
        return 1.0;
    }
    let ratio = q / p;
    let lambda = z as f64 * ratio;
    // Poisson terms built up iteratively: term_k = λ^k e^{−λ} / k!.
    let mut poisson = (-lambda).exp();
    let mut sum = 1.0;
    for k in 0..=z {
        if k > 0 {
            poisson *= lambda / k as f64;
        }
        // (q/p)^(z−k)
        sum -= poisson * (1.0 - ratio.powf((z - k) as f64));
    }
    sum.clamp(0.0, 1.0)
}

/// The smallest `z` with [`attacker_success_probability`] below `risk`, or
/// `None` when `q ≥ 0.5` (no number of blocks suffices).
pub fn blocks_for_risk(q: AttackerShare, risk: f64) -> Result<Option<u64>, AttackError> {
    if !(risk > 0.0 && risk < 1.0) {
        return Err(AttackError::Risk(risk));
    }
    if q.get() >= 0.5 {
        return Ok(None);
    }
    // The probability falls geometrically in z, so this ends; the cap only
    // guards against a risk so small that floating point cannot reach it.
    Ok((0..10_000_000u64).find(|&z| attacker_success_probability(q, z) < risk))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(q: f64) -> AttackerShare {
        AttackerShare::new(q).expect("test shares are in range")
    }

    /// The whitepaper's tables, printed to 7 decimals.
    #[test]
    fn whitepaper_tables() {
        let cases: &[(&str, f64, u64, f64)] = &[
            ("q=0.1 z=0", 0.1, 0, 1.0),
            ("q=0.1 z=1", 0.1, 1, 0.2045873),
            ("q=0.1 z=2", 0.1, 2, 0.0509779),
            ("q=0.1 z=3", 0.1, 3, 0.0131722),
            ("q=0.1 z=4", 0.1, 4, 0.0034552),
            ("q=0.1 z=5", 0.1, 5, 0.0009137),
            ("q=0.1 z=6", 0.1, 6, 0.0002428),
            ("q=0.1 z=7", 0.1, 7, 0.0000647),
            ("q=0.1 z=8", 0.1, 8, 0.0000173),
            ("q=0.1 z=9", 0.1, 9, 0.0000046),
            ("q=0.1 z=10", 0.1, 10, 0.0000012),
            ("q=0.3 z=0", 0.3, 0, 1.0),
            ("q=0.3 z=5", 0.3, 5, 0.1773523),
            ("q=0.3 z=10", 0.3, 10, 0.0416605),
            ("q=0.3 z=15", 0.3, 15, 0.0101008),
            ("q=0.3 z=20", 0.3, 20, 0.0024804),
            ("q=0.3 z=25", 0.3, 25, 0.0006132),
            ("q=0.3 z=30", 0.3, 30, 0.0001522),
            ("q=0.3 z=35", 0.3, 35, 0.0000379),
            ("q=0.3 z=40", 0.3, 40, 0.0000095),
            ("q=0.3 z=45", 0.3, 45, 0.0000024),
            ("q=0.3 z=50", 0.3, 50, 0.0000006),
        ];
        for &(name, q, z, expected) in cases {
            let got = attacker_success_probability(share(q), z);
            assert!((got - expected).abs() < 5e-8, "{name}: got {got:.7}, expected {expected:.7}");
        }
    }

    /// "Solving for P less than 0.1%".
    #[test]
    fn whitepaper_blocks_for_risk() {
        let cases = [(0.10, 5), (0.15, 8), (0.20, 11), (0.25, 15), (0.30, 24), (0.35, 41), (0.40, 89), (0.45, 340)];
        for (q, z) in cases {
            assert_eq!(blocks_for_risk(share(q), 0.001), Ok(Some(z)), "q={q}");
        }
    }

    #[test]
    fn majority_attacker_always_wins() {
        assert_eq!(attacker_success_probability(share(0.5), 100), 1.0);
        assert_eq!(attacker_success_probability(share(0.7), 3), 1.0);
        assert_eq!(blocks_for_risk(share(0.5), 0.001), Ok(None));
    }

    #[test]
    fn bad_arguments_are_named() {
        assert_eq!(AttackerShare::new(0.0), Err(AttackError::Share(0.0)));
        assert_eq!(AttackerShare::new(1.0), Err(AttackError::Share(1.0)));
        assert!(AttackerShare::new(f64::NAN).is_err());
        assert_eq!(blocks_for_risk(share(0.1), 0.0), Err(AttackError::Risk(0.0)));
        assert_eq!(blocks_for_risk(share(0.1), 1.5), Err(AttackError::Risk(1.5)));
        assert!("abc".parse::<AttackerShare>().is_err());
        assert!("0.2".parse::<AttackerShare>().is_ok());
    }

    proptest::proptest! {
        #[test]
        fn probability_falls_with_confirmations(q in 0.01f64..0.49, z in 0u64..200) {
            let q = share(q);
            let now = attacker_success_probability(q, z);
            let later = attacker_success_probability(q, z + 1);
            proptest::prop_assert!((0.0..=1.0).contains(&now));
            proptest::prop_assert!(later <= now + 1e-12);
        }
    }
}
