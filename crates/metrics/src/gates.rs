//! Gate recommendation with a guarantee: within which scope, and above which confidence, may an
//! action class run on its own?
//!
//! A *scope* is a maximum asset criticality L ∈ {low, medium, high, critical} (decisions with
//! criticality ≤ L) and whether privileged targets are allowed (if not, only non-privileged
//! decisions). Within a scope, a *threshold* λ = j/100 (j = 99, 98, …, 0) keeps the decisions
//! with confidence ≥ λ: fine bins j and above of [`Cell::fine`].
//!
//! # Learn then Test
//!
//! Following Angelopoulos, Bates, Candès, Jordan & Lei (2021), "Learn then Test: calibrating
//! predictive algorithms to achieve risk control", each λ is a hypothesis
//!
//! ```text
//! H0(λ): risk(λ) ≥ ε,   ε = 1 − target agreement,   risk(λ) = P(disagree | confidence ≥ λ)
//! ```
//!
//! tested with the exact binomial p-value of its d disagreements among n reviewed decisions:
//!
//! ```text
//! p(λ) = P(X ≤ d | X ~ Binomial(n, ε)) = binom_cdf(d, n, ε)
//! ```
//!
//! (super-uniform under H0 because the binomial CDF is decreasing in its rate).
//!
//! **Fixed-sequence testing.** The hypotheses are ordered in advance from λ = 0.99 downwards (a
//! higher bar is the safer claim) and tested in that order, each at the full level δ; the first
//! failure stops the sequence, and the certified set is the prefix before it. This controls the
//! family-wise error rate at δ without any multiplicity correction. If some λ with risk ≥ ε (a
//! true H0) is certified, then so is the *first* true H0 in the order, since certification is a
//! prefix. That one hypothesis is rejected with probability ≤ δ, whatever happened before it. So
//! P(any true H0 certified) ≤ P(the first true H0 rejected) ≤ δ: there is one chance, not one per
//! threshold, to make the first false claim. The gate is the lowest certified λ, and with
//! probability ≥ 1 − δ every certified λ (the gate included) has risk < ε. Nothing here assumes
//! that risk is monotone in λ; monotonicity only makes the order a powerful one.
//!
//! **Where the sequence starts: the evidence floor.** Decisions with confidence ≥ λ are a
//! suffix sum of the fine bins, so the reviewed count n(λ) can only grow as λ decreases; the
//! thresholds with n < `min_reviewed` (the policy's evidence floor, at least 1) are exactly the
//! top of the order. They are *skipped*, not failed: the sequence starts at the highest λ with
//! n ≥ floor. The start depends on the reviewed counts only, never on the verdicts, so
//! conditionally on the counts the order is still fixed before the verdicts are looked at and the
//! guarantee is unchanged (this assumes that whether a decision gets reviewed does not depend on
//! its verdict, the assumption every agreement rate here makes). Once n ≥ floor it stays so: the
//! sequence has no gaps.
//!
//! The start deliberately does not depend on the target, so that a stricter target can never
//! produce a lower threshold or a larger coverage (a target-dependent start could skip, under the
//! stricter target, a thin top threshold that stops the looser one). The price: if the floor is
//! below [`GateConfig::min_testable_reviews`] = ⌈ln δ' / ln(1 − ε)⌉ (δ' the per-scope level), the
//! first threshold tested cannot pass even with no disagreement whenever its n is that small,
//! and the sequence ends there. For a 95% level with the Bonferroni split that is 252 reviews
//! for a 0.98 target (the default floor of 400 is enough), 505 for 0.99 and 1 013 for 0.995.
//! Callers should warn when `min_reviewed` is below it.
//!
//! **Multiplicity across scopes.** Each class has 8 scopes, and the recommendation picks the best
//! certified one: a selection among 8 sequences. With [`GateConfig::bonferroni_scopes`] (the
//! default) each scope's sequence runs at δ/8 (Bonferroni), so all 8 scopes' certificates hold
//! simultaneously with probability ≥ 1 − δ and picking the best of them keeps the guarantee.
//! Turning it off tests each scope at δ, which is only valid for a scope chosen before looking at
//! the data. (Multiplicity across *classes* is the business of `fdr`.)
//!
//! **Coverage** of a λ in a scope = decisions (reviewed or not) in the scope with confidence ≥ λ,
//! divided by all decisions of the class in every scope: the share of the class's work that would
//! run without a human.
//!
//! Only the fine bins of each cell are read. A malformed bin with approvals > reviewed counts
//! zero disagreements there (counts saturate; nothing panics).

use serde::Serialize;
use thiserror::Error;

use crate::special::binom_cdf;
use crate::suffstats::{Cell, CellKey, Criticality, FINE_BINS};

/// Number of scopes per class: four criticality limits × privileged allowed or not.
pub const N_SCOPES: usize = 8;

/// Invalid gate configuration.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum GateError {
    #[error("target agreement {0} is outside (0, 1]; set target_agreement to e.g. 0.98")]
    Target(f64),
    #[error("confidence level {0} is outside (0, 1); set confidence_level to e.g. 0.95")]
    Level(f64),
}

/// What a gate must satisfy. Build with [`GateConfig::new`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct GateConfig {
    /// Required agreement t; the tolerated disagreement rate is ε = 1 − t.
    pub target: f64,
    /// Confidence level; δ = 1 − level.
    pub level: f64,
    /// Evidence floor: a threshold needs at least this many reviewed decisions (at least 1).
    pub min_reviewed: u64,
    /// Test each scope at δ/8 so that the best of the 8 scopes keeps the guarantee (default on).
    pub bonferroni_scopes: bool,
}

impl GateConfig {
    /// A validated configuration, Bonferroni across scopes on.
    pub fn new(target: f64, level: f64, min_reviewed: u64) -> Result<GateConfig, GateError> {
        let cfg = GateConfig {
            target,
            level,
            min_reviewed,
            bonferroni_scopes: true,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// The same configuration with the Bonferroni correction across scopes on or off.
    pub fn with_bonferroni_scopes(self, on: bool) -> GateConfig {
        GateConfig {
            bonferroni_scopes: on,
            ..self
        }
    }

    fn validate(&self) -> Result<(), GateError> {
        if !(self.target > 0.0 && self.target <= 1.0) {
            return Err(GateError::Target(self.target));
        }
        if !(self.level > 0.0 && self.level < 1.0) {
            return Err(GateError::Level(self.level));
        }
        Ok(())
    }

    /// The fewest reviews with which a threshold can pass at all (zero disagreements):
    /// ⌈ln δ' / ln(1 − ε)⌉ with δ' = [`GateConfig::delta_per_scope`]. `None` for a target of 1
    /// (nothing can pass). A `min_reviewed` below this lets a thin top threshold end the
    /// sequence.
    pub fn min_testable_reviews(&self) -> Option<u64> {
        let eps = 1.0 - self.target;
        if self.validate().is_err() || eps <= 0.0 {
            return None;
        }
        let n = (self.delta_per_scope().ln() / (-eps).ln_1p()).ceil();
        // Guard the boundary against rounding in the logarithms.
        let mut n = n.max(1.0) as u64;
        while n > 1 && binom_cdf(0, n - 1, eps) <= self.delta_per_scope() {
            n -= 1;
        }
        while binom_cdf(0, n, eps) > self.delta_per_scope() {
            n += 1;
        }
        Some(n)
    }

    /// The level each scope's fixed sequence runs at.
    pub fn delta_per_scope(&self) -> f64 {
        let delta = 1.0 - self.level;
        if self.bonferroni_scopes {
            delta / N_SCOPES as f64
        } else {
            delta
        }
    }
}

/// One threshold of one scope: a point of the risk–coverage curve.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CurvePoint {
    /// λ = j/100.
    pub threshold: f64,
    /// Decisions in the scope with confidence ≥ λ.
    pub n_decisions: u64,
    /// Of which reviewed.
    pub n_reviewed: u64,
    /// Of which not approved (override or reject).
    pub n_disagree: u64,
    /// n_disagree / n_reviewed (`None` without reviews).
    pub risk: Option<f64>,
    /// binom_cdf(d, n, ε) (`None` without reviews).
    pub p_value: Option<f64>,
    /// n_decisions / all decisions of the class.
    pub coverage: f64,
    /// Part of the fixed sequence: at or above the evidence floor and reached (every higher λ
    /// tested passed).
    pub tested: bool,
    /// Tested and passed: in the certified prefix of the fixed sequence.
    pub certified: bool,
}

/// The gate of one scope: the lowest certified threshold, with the numbers behind it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GateScope {
    /// Decisions with criticality ≤ this are in scope.
    pub max_criticality: Criticality,
    /// Whether decisions on privileged targets are in scope.
    pub privileged_allowed: bool,
    /// The lowest certified λ; `None` if nothing was certified.
    pub threshold: Option<f64>,
    /// Coverage at the gate (0 when none).
    pub coverage: f64,
    /// Decisions in scope at the gate (0 when none).
    pub n_decisions: u64,
    /// Reviewed decisions at the gate (0 when none).
    pub n_reviewed: u64,
    /// Disagreements at the gate (0 when none).
    pub n_disagree: u64,
    /// Observed disagreement rate at the gate.
    pub risk: Option<f64>,
    /// p-value at the gate.
    pub p_value: Option<f64>,
    /// The whole curve, λ = 0.99 first (chart data).
    pub curve: Vec<CurvePoint>,
}

/// The gates of one action class, every scope.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GateAnalysis {
    pub config: GateConfig,
    /// The level each scope was tested at (δ/8 with Bonferroni, δ without).
    pub delta_per_scope: f64,
    /// All decisions of the class (the coverage denominator).
    pub n_decisions_total: u64,
    /// Scopes in order: criticality low → critical, privileged not allowed before allowed.
    pub scopes: Vec<GateScope>,
}

impl GateAnalysis {
    /// The recommended scope; see [`best_gate`].
    pub fn best(&self) -> Option<GateScope> {
        best_gate(&self.scopes)
    }
}

/// Suffix sums over the fine bins of the cells in one scope: (decisions, reviewed, disagree)
/// with confidence ≥ j/100, for j = 0..100.
fn suffix_counts(cells: &[(&CellKey, &Cell)], keep: impl Fn(&CellKey) -> bool) -> Vec<[u64; 3]> {
    let mut bins = vec![[0_u64; 3]; FINE_BINS];
    for (key, cell) in cells {
        if !keep(key) {
            continue;
        }
        for (acc, b) in bins.iter_mut().zip(cell.fine.iter()) {
            acc[0] = acc[0].saturating_add(b.n);
            acc[1] = acc[1].saturating_add(b.reviewed);
            acc[2] = acc[2].saturating_add(b.reviewed.saturating_sub(b.approve));
        }
    }
    let mut run = [0_u64; 3];
    for acc in bins.iter_mut().rev() {
        for i in 0..3 {
            run[i] = run[i].saturating_add(acc[i]);
        }
        *acc = run;
    }
    bins
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Gate thresholds for every scope of one action class.
///
/// `cells` are the cells of ONE class (the caller has filtered periods and model versions); the
/// class name in the keys is not checked.
pub fn gate_scopes(
    cells: &[(&CellKey, &Cell)],
    config: &GateConfig,
) -> Result<GateAnalysis, GateError> {
    config.validate()?;
    let eps = 1.0 - config.target;
    let delta = config.delta_per_scope();
    let floor = config.min_reviewed.max(1);
    let total = suffix_counts(cells, |_| true)[0][0];

    let mut scopes = Vec::with_capacity(N_SCOPES);
    for max_criticality in Criticality::ALL {
        for privileged_allowed in [false, true] {
            let sums = suffix_counts(cells, |k| {
                k.criticality <= max_criticality && (privileged_allowed || !k.privileged)
            });
            let mut curve = Vec::with_capacity(FINE_BINS);
            let mut running = true;
            let mut gate: Option<usize> = None;
            for j in (0..FINE_BINS).rev() {
                let [nd, nr, dis] = sums[j];
                let p_value = (nr > 0).then(|| binom_cdf(dis, nr, eps));
                let tested = running && nr >= floor;
                let mut certified = false;
                if tested {
                    if p_value.is_some_and(|p| p <= delta) {
                        certified = true;
                        gate = Some(curve.len());
                    } else {
                        running = false;
                    }
                }
                curve.push(CurvePoint {
                    threshold: j as f64 / 100.0,
                    n_decisions: nd,
                    n_reviewed: nr,
                    n_disagree: dis,
                    risk: (nr > 0).then(|| ratio(dis, nr)),
                    p_value,
                    coverage: ratio(nd, total),
                    tested,
                    certified,
                });
            }
            let at = gate.map(|i| &curve[i]);
            scopes.push(GateScope {
                max_criticality,
                privileged_allowed,
                threshold: at.map(|p| p.threshold),
                coverage: at.map_or(0.0, |p| p.coverage),
                n_decisions: at.map_or(0, |p| p.n_decisions),
                n_reviewed: at.map_or(0, |p| p.n_reviewed),
                n_disagree: at.map_or(0, |p| p.n_disagree),
                risk: at.and_then(|p| p.risk),
                p_value: at.and_then(|p| p.p_value),
                curve,
            });
        }
    }
    Ok(GateAnalysis {
        config: *config,
        delta_per_scope: delta,
        n_decisions_total: total,
        scopes,
    })
}

/// The certified scope covering the most decisions. Ties go to the narrower claim: lower
/// maximum criticality, then privileged not allowed, then the higher threshold. `None` if no
/// scope certified anything.
pub fn best_gate(scopes: &[GateScope]) -> Option<GateScope> {
    // Coverage shares one denominator, so decision counts compare exactly.
    scopes
        .iter()
        .filter_map(|s| s.threshold.map(|t| (s, t)))
        .min_by(|(a, ta), (b, tb)| {
            b.n_decisions
                .cmp(&a.n_decisions)
                .then(a.max_criticality.cmp(&b.max_criticality))
                .then(a.privileged_allowed.cmp(&b.privileged_allowed))
                .then(tb.total_cmp(ta))
        })
        .map(|(s, _)| s.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::period::Period;

    fn key(c: Criticality, privileged: bool) -> CellKey {
        CellKey {
            action_class: "isolate_host".into(),
            period: Period { start: 0 },
            model_version: "v1".into(),
            criticality: c,
            privileged,
        }
    }

    /// A cell with `n` reviewed decisions of which `d` disagree, all in fine bin `j`, plus `u`
    /// unreviewed decisions in the same bin.
    fn cell(j: usize, n: u64, d: u64, u: u64) -> Cell {
        let mut c = Cell::default();
        c.fine[j].n = n + u;
        c.fine[j].reviewed = n;
        c.fine[j].approve = n - d;
        c
    }

    #[test]
    fn fixed_sequence_by_hand() {
        // Low, non-privileged: 500 reviews at 0.97 with 0 disagreements, 500 at 0.90 with 30.
        // ε = 0.02: P(X ≤ 0 | 500, 0.02) = 0.98^500 = 4.1e-5 ≤ 0.05/8: certified at 0.97..0.91.
        // At 0.90: 30 of 1000, P(X ≤ 30 | 1000, 0.02) ≈ 0.99: the sequence stops.
        let k = key(Criticality::Low, false);
        let (a, b) = (cell(97, 500, 0, 100), cell(90, 500, 30, 0));
        let cells = [(&k, &a), (&k, &b)];
        let cfg = GateConfig::new(0.98, 0.95, 400).unwrap();
        let g = gate_scopes(&cells, &cfg).unwrap();
        assert_eq!(g.n_decisions_total, 1100);
        let low = &g.scopes[0];
        assert_eq!(low.threshold, Some(0.91));
        assert_eq!(low.n_reviewed, 500);
        assert_eq!(low.n_decisions, 600);
        assert!((low.coverage - 600.0 / 1100.0).abs() < 1e-15);
        assert!((low.p_value.unwrap() - 0.98_f64.powi(500)).abs() < 1e-15);
        // λ ≥ 0.98 have no reviews: skipped, not failures; 0.90 fails and stops.
        assert!(!low.curve[0].certified && low.curve[0].p_value.is_none());
        assert!(!low.curve.iter().any(|p| p.threshold < 0.905 && p.certified));
        // Every scope contains the same decisions here.
        assert!(g.scopes.iter().all(|s| s.threshold == Some(0.91)));
        // Ties go to the narrowest scope.
        let best = g.best().unwrap();
        assert_eq!(
            (best.max_criticality, best.privileged_allowed),
            (Criticality::Low, false)
        );
    }

    #[test]
    fn floor_and_bonferroni() {
        let k = key(Criticality::Medium, true);
        // 150 clean reviews: 0.98^150 = 0.048 ≤ 0.05 but > 0.05/8.
        let a = cell(95, 150, 0, 0);
        let cells = [(&k, &a)];
        let cfg = GateConfig::new(0.98, 0.95, 100).unwrap();
        let g = gate_scopes(&cells, &cfg).unwrap();
        assert!(g.best().is_none());
        let g = gate_scopes(&cells, &cfg.with_bonferroni_scopes(false)).unwrap();
        let best = g.best().unwrap();
        assert_eq!(
            (best.max_criticality, best.privileged_allowed),
            (Criticality::Medium, true)
        );
        assert_eq!(best.threshold, Some(0.0));
        // Scopes without privileged decisions have nothing.
        assert!(g
            .scopes
            .iter()
            .filter(|s| !s.privileged_allowed)
            .all(|s| s.threshold.is_none()));
        // Below the floor nothing is certified.
        let cfg = GateConfig::new(0.98, 0.95, 151)
            .unwrap()
            .with_bonferroni_scopes(false);
        assert!(gate_scopes(&cells, &cfg).unwrap().best().is_none());
    }

    #[test]
    fn best_gate_prefers_coverage() {
        let (k1, k2) = (key(Criticality::Low, false), key(Criticality::High, true));
        let (a, b) = (cell(99, 2000, 0, 0), cell(99, 2000, 0, 0));
        let cells = [(&k1, &a), (&k2, &b)];
        let cfg = GateConfig::new(0.98, 0.95, 400).unwrap();
        let best = gate_scopes(&cells, &cfg).unwrap().best().unwrap();
        assert_eq!(
            (best.max_criticality, best.privileged_allowed),
            (Criticality::High, true)
        );
        assert_eq!(best.coverage, 1.0);
    }

    #[test]
    fn min_testable_reviews_by_hand() {
        // ⌈ln(0.05/8) / ln t⌉, computed independently: 252, 505, 1013; 149 without Bonferroni.
        let at = |t: f64| GateConfig::new(t, 0.95, 1).unwrap();
        assert_eq!(at(0.98).min_testable_reviews(), Some(252));
        assert_eq!(at(0.99).min_testable_reviews(), Some(505));
        assert_eq!(at(0.995).min_testable_reviews(), Some(1013));
        let plain = at(0.98).with_bonferroni_scopes(false);
        assert_eq!(plain.min_testable_reviews(), Some(149));
        assert_eq!(at(1.0).min_testable_reviews(), None);
        // 0.98^252 ≤ 0.05/8 < 0.98^251.
        assert!(0.98_f64.powi(252) <= 0.05 / 8.0 && 0.98_f64.powi(251) > 0.05 / 8.0);
    }

    #[test]
    fn empty_and_invalid() {
        let cfg = GateConfig::new(0.98, 0.95, 400).unwrap();
        let g = gate_scopes(&[], &cfg).unwrap();
        assert_eq!(g.scopes.len(), 8);
        assert!(g.best().is_none());
        assert!(g.scopes[0].curve.iter().all(|p| p.coverage == 0.0));
        assert!(GateConfig::new(0.0, 0.95, 1).is_err());
        assert!(GateConfig::new(0.98, 1.0, 1).is_err());
        assert!(GateConfig::new(f64::NAN, 0.95, 1).is_err());
        let bad = GateConfig { target: 2.0, ..cfg };
        assert!(gate_scopes(&[], &bad).is_err());
        // Target 1: ε = 0, nothing can be certified.
        let k = key(Criticality::Low, false);
        let a = cell(99, 10_000, 0, 0);
        let cfg = GateConfig::new(1.0, 0.95, 1).unwrap();
        assert!(gate_scopes(&[(&k, &a)], &cfg).unwrap().best().is_none());
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        type Spec = Vec<(u8, bool, usize, Vec<(u64, u64, u64)>)>;

        /// Up to 4 cells: criticality, privileged, a "clean above" bin, and per bin (decisions,
        /// reviewed %, disagreement % above the clean bin). Below it 8% disagree, so that
        /// sequences both certify and stop (about half the cases certify something at the
        /// looser target).
        fn cells_strategy() -> impl Strategy<Value = Spec> {
            let bin = (0_u64..60, 20_u64..=100, 0_u64..=3);
            prop::collection::vec(
                (
                    0_u8..4,
                    any::<bool>(),
                    0_usize..100,
                    prop::collection::vec(bin, FINE_BINS),
                ),
                1..4,
            )
        }

        fn build(spec: &Spec) -> Vec<(CellKey, Cell)> {
            spec.iter()
                .map(|(c, p, clean, bins)| {
                    let mut cell = Cell::default();
                    for (j, &(n, r_pct, bad_pct)) in bins.iter().enumerate() {
                        let reviewed = n * r_pct / 100;
                        let bad = if j >= *clean { bad_pct } else { 8 };
                        cell.fine[j] = crate::suffstats::FineBin {
                            n,
                            reviewed,
                            approve: reviewed - reviewed * bad / 100,
                        };
                    }
                    (key(Criticality::ALL[*c as usize], *p), cell)
                })
                .collect()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            /// A stricter target never yields a lower threshold or a larger coverage.
            #[test]
            fn stricter_target_never_widens_the_gate(
                spec in cells_strategy(),
                t1 in 0.9_f64..0.999,
                dt in 0.0_f64..0.05,
                floor in 1_u64..500,
                bonf in any::<bool>(),
            ) {
                let t2 = (t1 + dt).min(1.0);
                let owned = build(&spec);
                let cells: Vec<(&CellKey, &Cell)> = owned.iter().map(|(k, c)| (k, c)).collect();
                let c1 = GateConfig::new(t1, 0.95, floor).unwrap().with_bonferroni_scopes(bonf);
                let c2 = GateConfig { target: t2, ..c1 };
                let g1 = gate_scopes(&cells, &c1).unwrap();
                let g2 = gate_scopes(&cells, &c2).unwrap();
                for (a, b) in g1.scopes.iter().zip(&g2.scopes) {
                    if let Some(th2) = b.threshold {
                        let th1 = a.threshold;
                        prop_assert!(th1.is_some_and(|th1| th1 <= th2), "{th1:?} vs {th2}");
                    }
                    prop_assert!(b.coverage <= a.coverage);
                }
                let cov = |g: &GateAnalysis| g.best().map_or(0.0, |s| s.coverage);
                prop_assert!(cov(&g2) <= cov(&g1));
            }

            /// The certified thresholds form the prefix that ends at the gate.
            #[test]
            fn certified_points_are_a_prefix(spec in cells_strategy(), floor in 1_u64..500) {
                let owned = build(&spec);
                let cells: Vec<(&CellKey, &Cell)> = owned.iter().map(|(k, c)| (k, c)).collect();
                let cfg = GateConfig::new(0.98, 0.95, floor).unwrap();
                for s in gate_scopes(&cells, &cfg).unwrap().scopes {
                    let certified: Vec<f64> =
                        s.curve.iter().filter(|p| p.certified).map(|p| p.threshold).collect();
                    prop_assert_eq!(certified.last().copied(), s.threshold);
                    let tested: Vec<&CurvePoint> = s.curve.iter().filter(|p| p.tested).collect();
                    // All tested points pass except possibly the last one.
                    for (i, p) in tested.iter().enumerate() {
                        prop_assert!(p.certified || i + 1 == tested.len());
                        prop_assert!(p.n_reviewed >= floor);
                    }
                }
            }
        }
    }
}
