//! Calibration of the agent's confidence against analyst verdicts.
//!
//! Reviewed decisions only; the outcome is y = 1 when the final verdict is approve, 0 when it is
//! override or reject; the forecast is the confidence c. Everything is computed from a [`Cell`]'s
//! sufficient statistics, so it merges across partitions and periods.
//!
//! **Bins** (DESIGN.md): ten equal-width bins with edges k/10, bin 0 = [0, 0.1],
//! bin i = (i/10, (i+1)/10]. For a bin b with n_b decisions, c̄_b and ȳ_b are the mean
//! confidence and the observed agreement; ȳ is the overall agreement.
//!
//! - **Brier score** (Brier 1950): mean((c − y)²) = (Σc² − 2Σc·y + Σy)/n, exact from the
//!   power sums.
//! - **ECE** (expected calibration error, Naeini, Cooper & Hauskrecht 2015, AAAI):
//!   Σ_b (n_b/n)·|ȳ_b − c̄_b| over non-empty bins. **MCE**: max_b |ȳ_b − c̄_b| over non-empty bins.
//! - **Murphy decomposition** (Murphy 1973, *J. Appl. Meteor.* 12:595–600) over the ten bins:
//!   reliability REL = Σ (n_b/n)(c̄_b − ȳ_b)², resolution RES = Σ (n_b/n)(ȳ_b − ȳ)²,
//!   uncertainty UNC = ȳ(1 − ȳ). The identity Brier = REL − RES + UNC is exact only when every
//!   forecast in a bin equals the bin's mean. With continuous confidences grouped into bins it is
//!   approximate: Brier = REL − RES + UNC + WBV − WBC (Stephenson, Coelho & Jolliffe 2008,
//!   *Weather and Forecasting* 23:752–757), where WBV = (1/n)Σ_b Σ_{i∈b} (c_i − c̄_b)² is the
//!   within-bin variance of the forecasts and WBC = (2/n)Σ_b Σ_{i∈b} (y_i − ȳ_b)(c_i − c̄_b) the
//!   within-bin covariance. Both vanish as bins narrow; with 0.1-wide bins they are at most a few
//!   thousandths.
//! - **Spiegelhalter's z** (Spiegelhalter 1986, *Statistics in Medicine* 5:421–433): under the
//!   null hypothesis that the confidences are the true approval probabilities,
//!
//!   ```text
//!   Z = Σ (y − c)(1 − 2c) / √(Σ (1 − 2c)² c (1 − c))
//!   ```
//!
//!   is approximately standard normal; the p-value is two-sided, 2·(1 − Φ(|Z|)). Expanding the
//!   products gives it from the power sums: numerator = (Σy − 2Σc·y) − (Σc − 2Σc²),
//!   variance = Σc − 5Σc² + 8Σc³ − 4Σc⁴.
//!
//! **Equal-mass bins** ([`equal_mass_bins`]): the hundred fine bins (width 0.01) are merged into
//! groups of roughly equal reviewed count, the quantile binning of reliability diagrams. It is
//! approximate at the 0.01 resolution: group boundaries can only fall on fine-bin edges, and a
//! single crowded fine bin cannot be split. The fine bins carry counts but no confidence sums,
//! so a group reports its observed agreement and its confidence range, not a mean confidence.

use serde::{Deserialize, Serialize};

use crate::special::norm_sf;
use crate::suffstats::{Cell, CAL_BINS, FINE_BINS};

/// Calibration summary of one set of reviewed decisions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Reviewed decisions.
    pub n: u64,
    /// Mean squared difference between confidence and outcome.
    pub brier: f64,
    /// Expected calibration error over the ten DESIGN.md bins.
    pub ece: f64,
    /// Maximum calibration error over the non-empty bins.
    pub mce: f64,
    /// Murphy reliability (lower is better calibrated).
    pub reliability: f64,
    /// Murphy resolution (higher separates approvals from disagreements better).
    pub resolution: f64,
    /// Murphy uncertainty ȳ(1 − ȳ) of the outcomes.
    pub uncertainty: f64,
    /// Spiegelhalter's z; `None` when its variance is zero (every confidence 0, ½ or 1).
    pub spiegelhalter_z: Option<f64>,
    /// Two-sided p-value of Spiegelhalter's z.
    pub spiegelhalter_p: Option<f64>,
}

/// One of the ten equal-width calibration bins.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    /// Bin index 0..=9.
    pub bin: usize,
    /// Lower edge i/10 (exclusive, except for bin 0).
    pub lower: f64,
    /// Upper edge (i+1)/10 (inclusive).
    pub upper: f64,
    /// Reviewed decisions in the bin.
    pub n: u64,
    /// Mean confidence c̄_b; `None` for an empty bin.
    pub mean_confidence: Option<f64>,
    /// Observed agreement ȳ_b (approve share); `None` for an empty bin.
    pub observed_agreement: Option<f64>,
    /// ȳ_b − c̄_b: positive when the agent is under-confident, negative when over-confident.
    pub gap: Option<f64>,
}

/// One group of fine bins of roughly equal reviewed count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EqualMassBin {
    /// Group index, in increasing confidence.
    pub group: usize,
    /// Lower edge of the group's first non-empty fine bin (inclusive).
    pub lower: f64,
    /// Upper edge of the group's last non-empty fine bin (exclusive, except 1.0).
    pub upper: f64,
    /// Reviewed decisions in the group.
    pub n: u64,
    /// Approved decisions in the group.
    pub approve: u64,
    /// approve / n.
    pub observed_agreement: f64,
}

/// Calibration metrics of a cell's reviewed decisions; `None` when there are none.
pub fn calibration(cell: &Cell) -> Option<Calibration> {
    let n = cell.n_reviewed();
    if n == 0 {
        return None;
    }
    let nf = n as f64;
    let y_sum = cell.n_approve as f64;
    let y_bar = y_sum / nf;

    let brier = (cell.sum_conf2 - 2.0 * cell.sum_conf_approve + y_sum) / nf;

    let (mut ece, mut mce, mut reliability, mut resolution) = (0.0, 0.0_f64, 0.0, 0.0);
    for b in cell.cal.iter().filter(|b| b.n > 0) {
        let w = b.n as f64 / nf;
        let c_bar = b.sum_conf / b.n as f64;
        let y_b = b.approve as f64 / b.n as f64;
        let gap = (y_b - c_bar).abs();
        ece += w * gap;
        mce = mce.max(gap);
        reliability += w * gap * gap;
        resolution += w * (y_b - y_bar) * (y_b - y_bar);
    }
    let uncertainty = y_bar * (1.0 - y_bar);

    let (spiegelhalter_z, spiegelhalter_p) = match spiegelhalter(cell) {
        Some(z) => (Some(z), Some(2.0 * norm_sf(z.abs()))),
        None => (None, None),
    };

    Some(Calibration {
        n,
        brier,
        ece,
        mce,
        reliability,
        resolution,
        uncertainty,
        spiegelhalter_z,
        spiegelhalter_p,
    })
}

/// Spiegelhalter's z from the power sums; `None` when the variance is zero up to rounding.
fn spiegelhalter(cell: &Cell) -> Option<f64> {
    let (s1, s2, s3, s4) = (
        cell.sum_conf,
        cell.sum_conf2,
        cell.sum_conf3,
        cell.sum_conf4,
    );
    let numerator = (cell.n_approve as f64 - 2.0 * cell.sum_conf_approve) - (s1 - 2.0 * s2);
    let variance = s1 - 5.0 * s2 + 8.0 * s3 - 4.0 * s4;
    // The variance is a difference of sums of magnitude up to 18·Σc; below a few ulps of that
    // scale it is rounding noise (all confidences in {0, ½, 1}), not information.
    let scale = s1 + 5.0 * s2 + 8.0 * s3 + 4.0 * s4;
    if !variance.is_finite() || variance <= 64.0 * f64::EPSILON * scale {
        return None;
    }
    let z = numerator / variance.sqrt();
    z.is_finite().then_some(z)
}

/// The ten equal-width calibration bins of a cell (all ten, empty ones included, for reliability
/// diagrams); `None` when the cell has no reviewed decisions.
pub fn calibration_bins(cell: &Cell) -> Option<Vec<CalibrationBin>> {
    if cell.n_reviewed() == 0 {
        return None;
    }
    let bins = (0..CAL_BINS)
        .map(|i| {
            let b = &cell.cal[i];
            let (mean_confidence, observed_agreement) = if b.n > 0 {
                (
                    Some(b.sum_conf / b.n as f64),
                    Some(b.approve as f64 / b.n as f64),
                )
            } else {
                (None, None)
            };
            CalibrationBin {
                bin: i,
                lower: i as f64 / 10.0,
                upper: (i + 1) as f64 / 10.0,
                n: b.n,
                mean_confidence,
                observed_agreement,
                gap: observed_agreement.zip(mean_confidence).map(|(y, c)| y - c),
            }
        })
        .collect();
    Some(bins)
}

/// Merges the hundred fine bins into at most `k` groups of roughly equal reviewed count.
///
/// Walking the fine bins in increasing confidence, a group is closed as soon as the cumulative
/// reviewed count reaches the next multiple of n/k; a fine bin holding more than n/k decisions
/// makes one large group, so fewer than `k` groups can result. Fine bins without reviewed
/// decisions belong to no group. `None` when `k` = 0 or the cell has no reviewed decisions.
pub fn equal_mass_bins(cell: &Cell, k: usize) -> Option<Vec<EqualMassBin>> {
    let total: u64 = cell.fine.iter().map(|f| f.reviewed).sum();
    if k == 0 || total == 0 {
        return None;
    }
    let (total, k128) = (u128::from(total), k as u128);
    let mut groups = Vec::new();
    let mut open: Option<(usize, usize, u64, u64)> = None; // (first, last, n, approve)
    let mut cumulative: u128 = 0;
    for (j, f) in cell.fine.iter().enumerate().take(FINE_BINS) {
        if f.reviewed == 0 {
            continue;
        }
        let g = open.get_or_insert((j, j, 0, 0));
        g.1 = j;
        g.2 += f.reviewed;
        g.3 += f.approve;
        cumulative += u128::from(f.reviewed);
        // Close at the next quantile cut: cumulative ≥ total·(groups + 1)/k, in integers.
        if cumulative * k128 >= total * (groups.len() as u128 + 1) {
            if let Some((first, last, n, approve)) = open.take() {
                groups.push(group(groups.len(), first, last, n, approve));
            }
        }
    }
    if let Some((first, last, n, approve)) = open {
        groups.push(group(groups.len(), first, last, n, approve));
    }
    Some(groups)
}

fn group(index: usize, first: usize, last: usize, n: u64, approve: u64) -> EqualMassBin {
    EqualMassBin {
        group: index,
        lower: first as f64 / 100.0,
        upper: (last + 1) as f64 / 100.0,
        n,
        approve,
        observed_agreement: approve as f64 / n as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suffstats::Outcome;

    fn cell_of(data: &[(f64, bool)]) -> Cell {
        let mut c = Cell::default();
        for &(conf, approve) in data {
            let o = if approve {
                Outcome::Approve
            } else {
                Outcome::Reject
            };
            c.add_decision(conf, o, false);
        }
        c
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn empty_cell_has_no_calibration() {
        let mut c = Cell::default();
        c.add_decision(0.9, Outcome::Timeout, false);
        c.add_decision(0.9, Outcome::Unreviewed, false);
        assert!(calibration(&c).is_none());
        assert!(calibration_bins(&c).is_none());
        assert!(equal_mass_bins(&c, 5).is_none());
    }

    #[test]
    fn hand_computed_example() {
        // Bin 9: 0.95 (y=1), 0.95 (y=0), 0.92 (y=1) → c̄ = 0.94, ȳ = 2/3.
        // Bin 1: 0.2 (y=0) → c̄ = 0.2, ȳ = 0.
        let c = cell_of(&[(0.95, true), (0.95, false), (0.92, true), (0.2, false)]);
        let cal = calibration(&c).unwrap();
        assert_eq!(cal.n, 4);
        // Brier: (0.05² + 0.95² + 0.08² + 0.2²)/4.
        assert!(close(cal.brier, (0.0025 + 0.9025 + 0.0064 + 0.04) / 4.0));
        let gap9 = 0.94 - 2.0 / 3.0;
        assert!(close(cal.ece, 0.75 * gap9 + 0.25 * 0.2));
        assert!(close(cal.mce, gap9));
        assert!(close(cal.reliability, 0.75 * gap9 * gap9 + 0.25 * 0.04));
        // ȳ = ½: RES = ¾(2/3 − ½)² + ¼(½)², UNC = ¼.
        assert!(close(cal.resolution, 0.75 / 36.0 + 0.0625));
        assert!(close(cal.uncertainty, 0.25));
        // Spiegelhalter directly from its definition.
        let data = [(0.95, 1.0), (0.95, 0.0), (0.92, 1.0), (0.2, 0.0)];
        let num: f64 = data.iter().map(|&(c, y)| (y - c) * (1.0 - 2.0 * c)).sum();
        let var: f64 = data
            .iter()
            .map(|&(c, _)| (1.0 - 2.0 * c) * (1.0 - 2.0 * c) * c * (1.0 - c))
            .sum();
        let z = num / var.sqrt();
        assert!(close(cal.spiegelhalter_z.unwrap(), z));
        assert!(close(cal.spiegelhalter_p.unwrap(), 2.0 * norm_sf(z.abs())));

        let bins = calibration_bins(&c).unwrap();
        assert_eq!(bins.len(), 10);
        assert_eq!(bins[9].n, 3);
        assert!(close(bins[9].gap.unwrap(), 2.0 / 3.0 - 0.94));
        assert_eq!(bins[5].mean_confidence, None);
        assert_eq!((bins[1].lower, bins[1].upper), (0.1, 0.2));
    }

    #[test]
    fn murphy_identity_holds_with_within_bin_terms() {
        let data: Vec<(f64, bool)> = (0..200)
            .map(|i| {
                let c = ((i * 37) % 101) as f64 / 100.0;
                (c, (i * 13) % 7 < 5)
            })
            .collect();
        let cal = calibration(&cell_of(&data)).unwrap();
        // Within-bin variance and covariance, computed from the raw data.
        let (mut wbv, mut wbc) = (0.0, 0.0);
        let bin_of = crate::suffstats::cal_bin;
        for b in 0..10 {
            let members: Vec<(f64, f64)> = data
                .iter()
                .filter(|(c, _)| bin_of(*c) == b)
                .map(|&(c, y)| (c, if y { 1.0 } else { 0.0 }))
                .collect();
            if members.is_empty() {
                continue;
            }
            let m = members.len() as f64;
            let cb = members.iter().map(|p| p.0).sum::<f64>() / m;
            let yb = members.iter().map(|p| p.1).sum::<f64>() / m;
            wbv += members.iter().map(|p| (p.0 - cb) * (p.0 - cb)).sum::<f64>();
            wbc += 2.0 * members.iter().map(|p| (p.1 - yb) * (p.0 - cb)).sum::<f64>();
        }
        let n = data.len() as f64;
        let rhs = cal.reliability - cal.resolution + cal.uncertainty + wbv / n - wbc / n;
        assert!(close(cal.brier, rhs), "{} vs {rhs}", cal.brier);
    }

    #[test]
    fn spiegelhalter_undefined_when_forecasts_are_degenerate() {
        let c = cell_of(&[(1.0, true), (0.5, false), (0.0, false), (1.0, false)]);
        let cal = calibration(&c).unwrap();
        assert_eq!(cal.spiegelhalter_z, None);
        assert_eq!(cal.spiegelhalter_p, None);
    }

    #[test]
    fn equal_mass_groups() {
        // 10 decisions in each of fine bins 10, 20, ..., 90 (approve in the upper five).
        let mut data = Vec::new();
        for j in 1..10 {
            for _ in 0..10 {
                data.push((j as f64 / 10.0 + 0.005, j >= 5));
            }
        }
        let c = cell_of(&data);
        let g = equal_mass_bins(&c, 3).unwrap();
        assert_eq!(g.iter().map(|g| g.n).collect::<Vec<_>>(), vec![30, 30, 30]);
        assert_eq!((g[0].lower, g[0].upper), (0.1, 0.31));
        assert_eq!((g[2].lower, g[2].upper), (0.7, 0.91));
        assert!(close(g[1].observed_agreement, 2.0 / 3.0));
        // More groups than non-empty fine bins: one group per fine bin.
        assert_eq!(equal_mass_bins(&c, 50).unwrap().len(), 9);
        // A single crowded bin cannot be split.
        let one = cell_of(&[(0.97, true); 40]);
        assert_eq!(equal_mass_bins(&one, 4).unwrap().len(), 1);
        assert!(equal_mass_bins(&one, 0).is_none());
    }
}
