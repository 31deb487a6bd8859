//! Monte Carlo: re-checking every month inflates false promotions for a fixed-n test but not for
//! the anytime-valid e-process (DESIGN.md, "Promotion evidence that survives monthly
//! re-checking").
//!
//! Each simulated action class accrues `per_month` reviews a month for `months` months with
//! a true agreement p. Every month both rules look at all data so far and the class is promoted
//! the first month the rule passes:
//!
//! - naive: one-sided exact binomial test at α (P(X ≥ k | n, target) ≤ α), re-run monthly;
//! - anytime: mixture e-value E_n(target) > 1/α.
//!
//! With p = target, any promotion is a false promotion. Seeded SplitMix64, no external crates.
//!
//! `cargo test -p readiness-metrics --release --test monte_carlo -- --nocapture` prints the
//! figures; add `--ignored` for the 20 000-class version.

use readiness_metrics::evidence::{ln_e_value, naive_fixed_n_test, promotion_evidence, BetaPrior};

const TARGET: f64 = 0.98;
const LEVEL: f64 = 0.95;
const ALPHA: f64 = 1.0 - LEVEL;
const MONTHS: usize = 24;

/// SplitMix64 (Steele, Lea & Flood 2014): tiny, fast, well-mixed; enough for Bernoulli draws.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform on [0, 1) with 53 random bits.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1_u64 << 53) as f64)
    }
}

/// Month (1-based) of first promotion under each rule, `None` if never within `MONTHS`.
struct Run {
    naive: Option<usize>,
    anytime: Option<usize>,
}

fn simulate(sims: usize, p_true: f64, per_month: u64, seed: u64) -> Vec<Run> {
    let mut rng = SplitMix64(seed);
    (0..sims)
        .map(|_| {
            let (mut k, mut n) = (0_u64, 0_u64);
            let mut run = Run {
                naive: None,
                anytime: None,
            };
            for month in 1..=MONTHS {
                for _ in 0..per_month {
                    k += u64::from(rng.next_f64() < p_true);
                }
                n += per_month;
                if run.naive.is_none() && naive_fixed_n_test(k, n, TARGET, LEVEL) {
                    run.naive = Some(month);
                }
                // `promotion_evidence(..).crosses` is exactly this comparison; calling the e-value
                // directly skips the confidence-bound bisection the simulation does not need.
                if run.anytime.is_none()
                    && ln_e_value(k, n, TARGET, BetaPrior::UNIFORM).unwrap() > -ALPHA.ln()
                {
                    run.anytime = Some(month);
                }
                if run.naive.is_some() && run.anytime.is_some() {
                    break;
                }
            }
            run
        })
        .collect()
}

fn rate(runs: &[Run], pick: impl Fn(&Run) -> Option<usize>) -> f64 {
    runs.iter().filter(|r| pick(r).is_some()).count() as f64 / runs.len() as f64
}

/// Median month of promotion among all runs (never = ∞), `None` if fewer than half promote.
fn median_month(runs: &[Run], pick: impl Fn(&Run) -> Option<usize>) -> Option<usize> {
    let mut months: Vec<usize> = runs.iter().map(|r| pick(r).unwrap_or(usize::MAX)).collect();
    months.sort_unstable();
    let m = months[(months.len() - 1) / 2];
    (m != usize::MAX).then_some(m)
}

/// The naive rule's false-promotion rate is well above α; the anytime rule's is within α plus
/// three Monte Carlo standard errors.
fn check_false_promotions(sims: usize, per_month: u64, seed: u64) {
    let runs = simulate(sims, TARGET, per_month, seed);
    let naive = rate(&runs, |r| r.naive);
    let anytime = rate(&runs, |r| r.anytime);
    let slack = 3.0 * (ALPHA * (1.0 - ALPHA) / sims as f64).sqrt();
    let within = |m: usize, pick: fn(&Run) -> Option<usize>| {
        100.0 * rate(&runs, |r| pick(r).filter(|&month| month <= m))
    };
    println!(
        "true agreement = target {TARGET}, {per_month} reviews/month, alpha {ALPHA:.2}, {sims} \
         classes: false promotions over {MONTHS} monthly looks naive {:.2}%, anytime {:.2}% \
         (bound {:.2}%); over the first 12 looks naive {:.2}%, anytime {:.2}%",
        100.0 * naive,
        100.0 * anytime,
        100.0 * (ALPHA + slack),
        within(12, |r| r.naive),
        within(12, |r| r.anytime),
    );
    assert!(naive > 2.0 * ALPHA, "naive re-testing: {naive}");
    assert!(anytime <= ALPHA + slack, "anytime: {anytime}");
}

/// The anytime rule still promotes a genuinely better class, and fast.
fn check_power(sims: usize, p_true: f64, per_month: u64, seed: u64, min_power: f64) {
    let runs = simulate(sims, p_true, per_month, seed);
    let anytime = rate(&runs, |r| r.anytime);
    let naive = rate(&runs, |r| r.naive);
    let show = |m: Option<usize>| m.map_or("never".to_string(), |m| m.to_string());
    let med_any = show(median_month(&runs, |r| r.anytime));
    let med_naive = show(median_month(&runs, |r| r.naive));
    println!(
        "true agreement {p_true}, {per_month} reviews/month, {sims} classes: promoted within \
         {MONTHS} months: anytime {:.2}% (median month {med_any}), naive {:.2}% (median month \
         {med_naive})",
        100.0 * anytime,
        100.0 * naive,
    );
    assert!(anytime >= min_power, "power {anytime}");
}

#[test]
fn the_shortcut_is_the_promotion_rule() {
    for (k, n) in [
        (148, 150),
        (594, 600),
        (595, 600),
        (1780, 1800),
        (0, 10),
        (10, 10),
    ] {
        let e = promotion_evidence(k, n, TARGET, LEVEL).unwrap();
        let ln_e = ln_e_value(k, n, TARGET, BetaPrior::UNIFORM).unwrap();
        assert_eq!(e.crosses, ln_e > -ALPHA.ln(), "k={k} n={n}");
    }
}

#[test]
fn monthly_rechecking_naive_vs_anytime() {
    check_false_promotions(2_000, 150, 0x5EED_0001);
}

#[test]
fn anytime_promotes_a_better_class() {
    check_power(2_000, 0.995, 150, 0x5EED_0002, 0.95);
    check_power(2_000, 0.99, 150, 0x5EED_0003, 0.95);
}

#[test]
#[ignore = "20 000 classes: run with --release --ignored to reproduce the documented figures"]
fn monthly_rechecking_large() {
    check_false_promotions(20_000, 150, 0x5EED_1001);
    check_power(20_000, 0.995, 150, 0x5EED_1002, 0.95);
    check_power(20_000, 0.99, 150, 0x5EED_1003, 0.95);
}
