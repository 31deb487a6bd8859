//! Manipulation signature: autonomous-defense-induced disruption, where an attacker feeds the
//! agent alerts that make it contain the organisation's own assets.
//!
//! The signature of one day of one high-impact class, against a trailing baseline of the
//! `baseline_days` calendar days before it (days already flagged are left out of the baseline,
//! so a multi-day burst cannot raise its own baseline; days with no decisions count as 0):
//!
//! 1. **Surge** (required): volume v at least `min_ratio` × the baseline mean λ, at least
//!    `min_volume`, and an upper-tail test significant at `surge_alpha`. Daily volumes are
//!    over-dispersed (weekdays, incidents), so the test is quasi-Poisson: with φ = max(1,
//!    variance / mean) of the baseline's daily volumes, p = P(X ≥ v/φ) for X ~ Poisson(λ/φ),
//!    computed as the regularized lower incomplete gamma P(v/φ, λ/φ) (McCullagh & Nelder 1989,
//!    *Generalized Linear Models*, §6.2 on quasi-likelihood for over-dispersed counts).
//! 2. **Concentration**: the effective number of targets n²/Σcᵢ² (the inverse Herfindahl index
//!    of the day's target counts cᵢ) is at most `max_effective_share` of the day's decisions and
//!    at least `min_share_increase` below the baseline days' mean of the same share.
//! 3. **Privilege shift**: the share of decisions on privileged or high/critical assets is at
//!    least `min_share_increase` above the baseline's.
//! 4. **Disagreement**: among at least `min_reviewed` reviewed decisions, the override + reject
//!    share is at least `min_share_increase` above the baseline's.
//!
//! A day is flagged when it surges and at least `min_corroborating` of 2–4 hold. Flagged days
//! at most one day apart form a window. A day is assessed only with at least
//! `min_baseline_days` days of the class's history before it.
//!
//! The thresholds are effect sizes, not only significance: at 10⁸ decisions every wobble is
//! significant, and a SOC wants to hear about a burst that looks like an attack, not about a
//! busy Monday. The false-alarm rate on the generator's data without a burst is recorded in the
//! README.

use serde::{Deserialize, Serialize};

use crate::special::gamma_p;

/// One class's decisions on one UTC day.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DayCounts {
    /// Days since 1970-01-01.
    pub day: i32,
    /// Decisions.
    pub n: u64,
    /// Decisions on privileged targets or high/critical assets.
    pub n_priv_crit: u64,
    /// Σ confidence.
    pub sum_conf: f64,
    /// Reviewed decisions (final verdict approve, override or reject).
    pub n_reviewed: u64,
    /// Of which override or reject.
    pub n_disagree: u64,
    /// Decisions with a known target.
    pub n_with_target: u64,
    /// Distinct targets.
    pub n_targets: u64,
    /// Decisions on the day's most frequent target.
    pub top_target: u64,
    /// Σ over targets of (decisions on the target)².
    pub sum_sq_targets: f64,
    /// Decisions on targets never seen before this day in this class.
    pub n_new_target: u64,
}

/// Detection settings; [`Default`] gives the documented values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManipulationConfig {
    /// Trailing baseline length in days.
    pub baseline_days: u32,
    /// Days of history needed before a day is assessed.
    pub min_baseline_days: u32,
    /// Volume at least this multiple of the baseline mean.
    pub min_ratio: f64,
    /// Volume at least this many decisions.
    pub min_volume: u64,
    /// Level of the quasi-Poisson surge test.
    pub surge_alpha: f64,
    /// Concentration: effective targets at most this share of the day's decisions.
    pub max_effective_share: f64,
    /// Concentration, privilege and disagreement: the day's share differs from the baseline's
    /// by at least this much.
    pub min_share_increase: f64,
    /// Reviewed decisions needed to judge disagreement.
    pub min_reviewed: u64,
    /// Corroborating signals needed besides the surge.
    pub min_corroborating: u32,
}

impl Default for ManipulationConfig {
    fn default() -> Self {
        ManipulationConfig {
            baseline_days: 28,
            min_baseline_days: 14,
            min_ratio: 2.0,
            min_volume: 10,
            surge_alpha: 1e-3,
            max_effective_share: 0.5,
            min_share_increase: 0.2,
            min_reviewed: 5,
            min_corroborating: 2,
        }
    }
}

/// The assessment of one day.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DayAssessment {
    /// Days since 1970-01-01.
    pub day: i32,
    /// Decisions that day.
    pub volume: u64,
    /// Mean daily volume of the baseline (`None`: not enough history).
    pub baseline_mean: Option<f64>,
    /// volume / baseline mean.
    pub ratio: Option<f64>,
    /// Quasi-Poisson upper-tail p-value of the volume.
    pub surge_p: Option<f64>,
    /// Effective number of targets n²/Σc² divided by n.
    pub effective_target_share: Option<f64>,
    /// Mean of the same share over the baseline days.
    pub baseline_effective_target_share: Option<f64>,
    /// Share of decisions on the most frequent target.
    pub top_target_share: Option<f64>,
    /// Share of decisions on targets never seen before in the class.
    pub new_target_share: Option<f64>,
    /// Share on privileged targets or high/critical assets.
    pub priv_crit_share: f64,
    /// The same share in the baseline.
    pub baseline_priv_crit_share: Option<f64>,
    /// Override + reject share among reviewed decisions.
    pub disagree_share: Option<f64>,
    /// The same share in the baseline.
    pub baseline_disagree_share: Option<f64>,
    /// Mean confidence that day.
    pub mean_confidence: f64,
    /// Mean confidence in the baseline.
    pub baseline_mean_confidence: Option<f64>,
    /// Signal 1.
    pub surge: bool,
    /// Signal 2.
    pub concentration: bool,
    /// Signal 3.
    pub privilege_shift: bool,
    /// Signal 4.
    pub disagreement: bool,
    /// Surge and enough corroboration.
    pub flagged: bool,
    /// Index of the window (per class, from 0) when flagged.
    pub window: Option<u32>,
}

fn share(k: u64, n: u64) -> Option<f64> {
    (n > 0).then(|| k as f64 / n as f64)
}

/// Assesses every day of one class. `days` must be sorted by day with at most one entry per
/// day (days without decisions may be absent); the output has one entry per input day.
pub fn assess(days: &[DayCounts], cfg: &ManipulationConfig) -> Vec<DayAssessment> {
    let mut out: Vec<DayAssessment> = Vec::with_capacity(days.len());
    let Some(first_day) = days.first().map(|d| d.day) else {
        return out;
    };
    let mut window = 0u32;
    let mut last_flagged: Option<i32> = None;
    for (i, d) in days.iter().enumerate() {
        let from = d.day - cfg.baseline_days as i32;
        let history_start = from.max(first_day);
        // Baseline: earlier input days within the window that were not flagged.
        let base: Vec<(&DayCounts, &DayAssessment)> = (0..i)
            .rev()
            .map(|j| (&days[j], &out[j]))
            .take_while(|(b, _)| b.day >= from)
            .filter(|(_, a)| !a.flagged)
            .collect();
        let flagged_in_window = (0..i)
            .rev()
            .take_while(|&j| days[j].day >= from)
            .filter(|&j| out[j].flagged)
            .count() as i32;
        let calendar_days = d.day - history_start - flagged_in_window;
        let enough = d.day - first_day >= cfg.min_baseline_days as i32 && calendar_days > 0;
        let mut a = DayAssessment {
            day: d.day,
            volume: d.n,
            baseline_mean: None,
            ratio: None,
            surge_p: None,
            effective_target_share: (d.n_with_target > 0 && d.sum_sq_targets > 0.0).then(|| {
                (d.n_with_target as f64).powi(2) / d.sum_sq_targets / d.n_with_target as f64
            }),
            baseline_effective_target_share: None,
            top_target_share: share(d.top_target, d.n_with_target),
            new_target_share: share(d.n_new_target, d.n_with_target),
            priv_crit_share: share(d.n_priv_crit, d.n).unwrap_or(0.0),
            baseline_priv_crit_share: None,
            disagree_share: share(d.n_disagree, d.n_reviewed),
            baseline_disagree_share: None,
            mean_confidence: if d.n > 0 {
                d.sum_conf / d.n as f64
            } else {
                0.0
            },
            baseline_mean_confidence: None,
            surge: false,
            concentration: false,
            privilege_shift: false,
            disagreement: false,
            flagged: false,
            window: None,
        };
        if enough {
            let days_n = calendar_days as f64;
            let total: u64 = base.iter().map(|(b, _)| b.n).sum();
            let mean = total as f64 / days_n;
            // Variance over calendar days, absent days counting as 0.
            let sum_sq: f64 = base.iter().map(|(b, _)| (b.n as f64).powi(2)).sum();
            let variance =
                (sum_sq / days_n - mean * mean).max(0.0) * days_n / (days_n - 1.0).max(1.0);
            let phi = if mean > 0.0 {
                (variance / mean).max(1.0)
            } else {
                1.0
            };
            a.baseline_mean = Some(mean);
            a.ratio = (mean > 0.0).then(|| d.n as f64 / mean);
            let p = if d.n == 0 {
                1.0
            } else if mean <= 0.0 {
                0.0
            } else {
                gamma_p(d.n as f64 / phi, mean / phi)
            };
            a.surge_p = Some(p);
            a.surge = d.n >= cfg.min_volume
                && a.ratio.is_none_or(|r| r >= cfg.min_ratio)
                && p < cfg.surge_alpha;
            let shares: Vec<f64> = base
                .iter()
                .filter_map(|(_, b)| b.effective_target_share)
                .collect();
            a.baseline_effective_target_share =
                (!shares.is_empty()).then(|| shares.iter().sum::<f64>() / shares.len() as f64);
            let base_priv: u64 = base.iter().map(|(b, _)| b.n_priv_crit).sum();
            a.baseline_priv_crit_share = share(base_priv, total);
            let base_rev: u64 = base.iter().map(|(b, _)| b.n_reviewed).sum();
            let base_dis: u64 = base.iter().map(|(b, _)| b.n_disagree).sum();
            a.baseline_disagree_share = share(base_dis, base_rev);
            let base_conf: f64 = base.iter().map(|(b, _)| b.sum_conf).sum();
            a.baseline_mean_confidence = (total > 0).then(|| base_conf / total as f64);

            a.concentration = d.n_with_target >= cfg.min_volume
                && match (a.effective_target_share, a.baseline_effective_target_share) {
                    (Some(s), Some(b)) => {
                        s <= cfg.max_effective_share && b - s >= cfg.min_share_increase
                    }
                    (Some(s), None) => s <= cfg.max_effective_share,
                    _ => false,
                };
            a.privilege_shift = a
                .baseline_priv_crit_share
                .is_some_and(|b| a.priv_crit_share - b >= cfg.min_share_increase);
            a.disagreement = d.n_reviewed >= cfg.min_reviewed
                && match (a.disagree_share, a.baseline_disagree_share) {
                    (Some(s), Some(b)) => s - b >= cfg.min_share_increase,
                    (Some(s), None) => s >= cfg.min_share_increase,
                    _ => false,
                };
            let corroborating =
                a.concentration as u32 + a.privilege_shift as u32 + a.disagreement as u32;
            a.flagged = a.surge && corroborating >= cfg.min_corroborating;
        }
        if a.flagged {
            if let Some(prev) = last_flagged {
                if d.day - prev > 2 {
                    window += 1;
                }
            }
            a.window = Some(window);
            last_flagged = Some(d.day);
        }
        out.push(a);
    }
    out
}

/// Number of distinct flagged windows among assessments.
pub fn window_count(days: &[DayAssessment]) -> u32 {
    let mut ids: Vec<u32> = days.iter().filter_map(|d| d.window).collect();
    ids.dedup();
    ids.len() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A quiet class: `n` decisions a day on distinct targets, 5% privileged, 2% disagreement.
    fn quiet(day: i32, n: u64) -> DayCounts {
        DayCounts {
            day,
            n,
            n_priv_crit: n / 20,
            sum_conf: 0.9 * n as f64,
            n_reviewed: n,
            n_disagree: n / 50,
            n_with_target: n,
            n_targets: n,
            top_target: 1,
            sum_sq_targets: n as f64,
            n_new_target: n / 2,
        }
    }

    /// On top of a quiet day: `extra` decisions on 3 targets, all privileged, 80% rejected.
    fn burst(day: i32, n: u64, extra: u64) -> DayCounts {
        let mut d = quiet(day, n);
        d.n += extra;
        d.n_priv_crit += extra;
        d.sum_conf += 0.97 * extra as f64;
        d.n_reviewed += extra;
        d.n_disagree += extra * 4 / 5;
        d.n_with_target += extra;
        d.n_targets += 3;
        let per = extra as f64 / 3.0;
        d.top_target = extra.div_ceil(3);
        d.sum_sq_targets += 3.0 * per * per;
        d
    }

    #[test]
    fn a_burst_is_flagged_and_quiet_days_are_not() {
        let mut days: Vec<DayCounts> = (0..60).map(|d| quiet(d, 20 + (d as u64 % 7))).collect();
        for d in 40..43 {
            days[d as usize] = burst(d, 22, 120);
        }
        let a = assess(&days, &ManipulationConfig::default());
        let flagged: Vec<i32> = a.iter().filter(|x| x.flagged).map(|x| x.day).collect();
        assert_eq!(flagged, vec![40, 41, 42]);
        assert_eq!(window_count(&a), 1);
        // Hand check of day 40: baseline = days 12..=39, mean of 20 + (d mod 7).
        let mean: f64 = (12..40).map(|d| 20.0 + (d % 7) as f64).sum::<f64>() / 28.0;
        let x = &a[40];
        assert!((x.baseline_mean.unwrap() - mean).abs() < 1e-12);
        assert!((x.ratio.unwrap() - 142.0 / mean).abs() < 1e-12);
        assert!(x.surge && x.concentration && x.privilege_shift && x.disagreement);
        // The burst days do not enter the baseline of the days after them.
        assert!((a[43].baseline_mean.unwrap() - a[40].baseline_mean.unwrap()).abs() < 2.0);
    }

    #[test]
    fn a_busy_but_ordinary_day_is_not_flagged() {
        // Triple volume, but spread over new targets with the usual mix and agreement.
        let mut days: Vec<DayCounts> = (0..40).map(|d| quiet(d, 20)).collect();
        days[30] = quiet(30, 60);
        let a = assess(&days, &ManipulationConfig::default());
        assert!(a[30].surge, "the surge itself is real");
        assert!(!a[30].flagged, "but nothing corroborates it");
        assert!(a.iter().all(|x| !x.flagged));
    }

    #[test]
    fn too_little_history_is_not_assessed() {
        let days: Vec<DayCounts> = (0..10).map(|d| burst(d, 5, 100)).collect();
        let a = assess(&days, &ManipulationConfig::default());
        assert!(a.iter().all(|x| x.baseline_mean.is_none() && !x.flagged));
    }

    #[test]
    fn quasi_poisson_p_value_by_hand() {
        // Constant baseline of 10 a day (φ = 1): P(X ≥ 25 | λ = 10) = 1 − Σ_{k<25} e^-10 10^k/k!.
        let mut days: Vec<DayCounts> = (0..30).map(|d| quiet(d, 10)).collect();
        days.push(quiet(30, 25));
        let a = assess(&days, &ManipulationConfig::default());
        let mut cdf = 0.0;
        let mut term = (-10.0f64).exp();
        for k in 0..25 {
            if k > 0 {
                term *= 10.0 / k as f64;
            }
            cdf += term;
        }
        let p = a[30].surge_p.unwrap();
        assert!((p - (1.0 - cdf)).abs() < 1e-12, "{p} vs {}", 1.0 - cdf);
    }

    #[test]
    fn empty_input() {
        assert!(assess(&[], &ManipulationConfig::default()).is_empty());
    }
}
