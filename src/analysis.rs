//! Metrics and recommendations: pure functions from the sufficient statistics, the confidence
//! samples and the policy to every number the outputs show. No polars, no files, no clock.
//!
//! Windows, as documented in the README:
//!
//! - the **evaluated period** is the latest period present in the data;
//! - a class's **current model version** is the version with the most decisions in the class's
//!   latest period (ties: the greatest version name);
//! - the **evidence window** of a class is its current model version within the last
//!   `evidence_periods` periods up to the evaluated one. Promotion evidence, calibration for the
//!   recommendation, gates and reversal rates use only this window;
//! - drift compares each period with its baseline: the `baseline_periods` calendar periods before
//!   it, or the policy's fixed baseline window;
//! - `calibration.parquet` describes each class over the whole input;
//! - periods holding a flagged manipulation window are left out of the drift baselines of other
//!   periods and of the model-version comparisons, so that an attack is reported as an attack
//!   and not as the new normal or as a model regression.
//!
//! Drift flags: `psi_flag` = PSI above the class's `max_psi` **and** the chi-square test on the
//! same bins significant after Benjamini–Hochberg (PSI alone is noisy on small samples: its
//! expectation without drift is about (bins − 1)(1/n_current + 1/n_baseline));
//! `agreement_flag` = a significant (BH-adjusted) drop of agreement against the baseline.
//!
//! Multiplicity: the distribution tests and the agreement tests of all classes × periods are each
//! a family whose p-values are adjusted by Benjamini–Hochberg; so are the version comparisons
//! and the calibration tests across classes. Flags use the adjusted values at `run.fdr_level`.

use std::collections::{BTreeMap, BTreeSet};

use readiness_governance::policy::{EffectiveSettings, Policy, Thresholds};
use readiness_governance::recommend::{
    recommend, AgreementDrop, ClassEvidence, Gate, PsiFlag, Recommendation, VersionRegression,
};
use readiness_metrics::calibration::{
    calibration, calibration_bins, equal_mass_bins, Calibration, CalibrationBin, EqualMassBin,
};
use readiness_metrics::drift::{agreement_change, psi};
use readiness_metrics::evidence::{promotion_evidence, reviews_to_promotion};
use readiness_metrics::fdr::bh_adjust;
use readiness_metrics::gates::{best_gate, gate_scopes, GateConfig, GateScope};
use readiness_metrics::interval::{clopper_pearson, wilson, ConfidenceLevel};
use readiness_metrics::{Cell, CellKey, Granularity, Period, SuffStats};
use serde::Serialize;

use readiness_metrics::manipulation::{assess, DayAssessment, ManipulationConfig};
use readiness_metrics::reasoning::{shares as reasoning_shares, ReasoningCounts, ReasoningShares};
use readiness_metrics::Criticality;

use crate::aggregate::signals::SignalTables;
use crate::aggregate::ConfidenceSamples;

/// One assessed day of a high-impact class (`metrics/manipulation.parquet` keeps the flagged
/// ones; the report's timeline shows them all).
#[derive(Clone, Debug, Serialize)]
pub struct ManipulationRow {
    pub action_class: String,
    pub assessment: DayAssessment,
}

/// One row of `metrics/reasoning.parquet`: ATT&CK citations of one class and model version.
#[derive(Clone, Debug, Serialize)]
pub struct ReasoningRow {
    pub action_class: String,
    pub model_version: String,
    pub counts: ReasoningCounts,
    pub shares: Option<ReasoningShares>,
}

/// Whether a class's tier calls for the manipulation signature: high and critical classes, and
/// unowned classes (whose impact nobody has rated).
pub fn manipulation_watched(settings: Option<&EffectiveSettings>) -> bool {
    settings.is_none_or(|s| s.tier >= Criticality::High)
}

/// One row of `metrics/agreement.parquet`.
#[derive(Clone, Debug, Serialize)]
pub struct AgreementRow {
    pub action_class: String,
    pub period: Period,
    pub n_decisions: u64,
    pub n_reviewed: u64,
    pub n_approve: u64,
    pub n_override: u64,
    pub n_reject: u64,
    pub n_timeout: u64,
    pub n_unreviewed: u64,
    pub agreement: Option<f64>,
    pub wilson_low: Option<f64>,
    pub wilson_high: Option<f64>,
    pub exact_low: Option<f64>,
    pub exact_high: Option<f64>,
    pub confidence_level: f64,
    pub n_executed: u64,
}

/// One row of `metrics/calibration.parquet`.
#[derive(Clone, Debug, Serialize)]
pub struct CalibrationRow {
    pub action_class: String,
    pub calibration: Calibration,
    pub spiegelhalter_p_adjusted: Option<f64>,
}

/// One row of `metrics/drift.parquet`.
#[derive(Clone, Debug, Serialize)]
pub struct DriftRow {
    pub action_class: String,
    pub period: Period,
    pub baseline_start: Option<Period>,
    pub baseline_end: Option<Period>,
    /// The baseline periods actually used (periods with a flagged manipulation window left out).
    pub baseline_periods: Vec<Period>,
    pub n_current: u64,
    pub n_baseline: u64,
    pub psi: Option<f64>,
    pub chi2: Option<f64>,
    pub chi2_df: Option<u64>,
    pub chi2_p: Option<f64>,
    pub chi2_p_adjusted: Option<f64>,
    pub agreement_current: Option<f64>,
    pub agreement_baseline: Option<f64>,
    pub agreement_change: Option<f64>,
    pub agreement_z: Option<f64>,
    pub agreement_p: Option<f64>,
    pub agreement_test: Option<&'static str>,
    pub agreement_p_adjusted: Option<f64>,
    pub cohens_h: Option<f64>,
    pub max_psi: f64,
    pub psi_flag: bool,
    pub distribution_flag: bool,
    pub agreement_flag: bool,
}

/// One row of `metrics/versions.parquet`: a model version against its predecessor.
#[derive(Clone, Debug, Serialize)]
pub struct VersionRow {
    pub action_class: String,
    pub previous_version: String,
    pub model_version: String,
    pub n_previous: u64,
    pub n_current: u64,
    pub agreement_previous: Option<f64>,
    pub agreement_current: Option<f64>,
    pub agreement_change: Option<f64>,
    pub p_value: Option<f64>,
    pub test: Option<&'static str>,
    pub p_adjusted: Option<f64>,
    pub cohens_h: Option<f64>,
    pub flagged: bool,
    /// Periods left out of the comparison (a flagged manipulation window) where either version
    /// had decisions.
    pub excluded_periods: Vec<Period>,
}

/// Everything computed for one class.
#[derive(Clone, Debug)]
pub struct ClassResult {
    pub action_class: String,
    pub settings: Option<EffectiveSettings>,
    pub thresholds: Thresholds,
    pub evidence_cell: Cell,
    pub evidence_calibration: Option<Calibration>,
    pub bins: Vec<CalibrationBin>,
    pub gates: Vec<GateScope>,
    pub selected_gate: Option<GateScope>,
    pub recommendation: Recommendation,
}

/// The output of the metrics and recommend stages.
#[derive(Clone, Debug)]
pub struct Analysis {
    pub granularity: Granularity,
    pub periods: Vec<Period>,
    pub evaluated: Period,
    pub agreement: Vec<AgreementRow>,
    pub calibration: Vec<CalibrationRow>,
    pub calibration_bins: Vec<(String, CalibrationBin)>,
    /// Calibration per class and period.
    pub calibration_periods: Vec<(String, Period, Calibration)>,
    /// Ten groups of roughly equal reviewed count per class (whole input).
    pub calibration_quantile_bins: Vec<(String, EqualMassBin)>,
    pub drift: Vec<DriftRow>,
    pub versions: Vec<VersionRow>,
    /// Every assessed day of the watched classes.
    pub manipulation: Vec<ManipulationRow>,
    pub reasoning: Vec<ReasoningRow>,
    pub classes: Vec<ClassResult>,
}

fn level(t: &Thresholds) -> ConfidenceLevel {
    // Policy validation guarantees (0, 1); fall back to 0.95 rather than panic.
    ConfidenceLevel::new(t.confidence_level)
        .unwrap_or_else(|_| ConfidenceLevel::new(0.95).expect("0.95 is a valid level"))
}

fn ratio(k: u64, n: u64) -> Option<f64> {
    (n > 0).then(|| k as f64 / n as f64)
}

/// Computes every metric and recommendation.
pub fn analyze(
    stats: &SuffStats,
    samples: &ConfidenceSamples,
    policy: &Policy,
    granularity: Granularity,
    signals: &SignalTables,
) -> Option<Analysis> {
    let first = stats.cells.keys().map(|k| k.period).min()?;
    let evaluated = stats.cells.keys().map(|k| k.period).max()?;
    let mut periods = vec![first];
    while *periods.last().expect("non-empty") < evaluated {
        let next = granularity.shift(*periods.last().expect("non-empty"), 1);
        periods.push(next);
    }
    let run = policy.run();
    let classes: BTreeSet<&str> = stats
        .cells
        .keys()
        .map(|k| k.action_class.as_str())
        .collect();

    // Cells per class, so that per-class loops stay linear in the number of cells.
    let mut cells_by_class: BTreeMap<&str, Vec<(&CellKey, &Cell)>> = BTreeMap::new();
    for (k, c) in &stats.cells {
        cells_by_class
            .entry(k.action_class.as_str())
            .or_default()
            .push((k, c));
    }
    let class_cells = |class: &str| {
        cells_by_class
            .get(class)
            .map(|v| v.as_slice())
            .unwrap_or(&[])
    };

    // Per class and period totals.
    let mut by_period: BTreeMap<(&str, Period), Cell> = BTreeMap::new();
    for (k, c) in &stats.cells {
        *by_period
            .entry((k.action_class.as_str(), k.period))
            .or_default() += c;
    }

    // Each class's effective settings, resolved once (unowned classes get `[defaults]`).
    let settings: BTreeMap<&str, Option<EffectiveSettings>> =
        classes.iter().map(|c| (*c, policy.effective(c))).collect();
    let thresholds_of = |class: &str| -> (Option<&EffectiveSettings>, &Thresholds) {
        match settings.get(class).and_then(|s| s.as_ref()) {
            Some(s) => (Some(s), &s.thresholds),
            None => (None, policy.defaults()),
        }
    };

    // Manipulation signature per watched class; periods holding a flagged day are left out of
    // other periods' drift baselines (a burst must not become the normal).
    let mcfg = ManipulationConfig::default();
    let mut manipulation = Vec::new();
    for (class, days) in &signals.daily {
        if !classes.contains(class.as_str()) || !manipulation_watched(thresholds_of(class).0) {
            continue;
        }
        manipulation.extend(assess(days, &mcfg).into_iter().map(|a| ManipulationRow {
            action_class: class.clone(),
            assessment: a,
        }));
    }
    let flagged: Vec<&ManipulationRow> = manipulation
        .iter()
        .filter(|m| m.assessment.flagged)
        .collect();
    let contaminated: BTreeSet<(String, Period)> = flagged
        .iter()
        .map(|m| {
            (
                m.action_class.clone(),
                granularity.period_of(m.assessment.day),
            )
        })
        .collect();

    // Reasoning: shares per class and model version.
    let mut reasoning = Vec::new();
    for ((class, version), counts) in &signals.reasoning {
        let (_, t) = thresholds_of(class);
        reasoning.push(ReasoningRow {
            action_class: class.clone(),
            model_version: version.clone(),
            counts: counts.clone(),
            shares: reasoning_shares(counts, level(t)),
        });
    }

    // Agreement per class and period.
    let mut agreement = Vec::new();
    for (&(class, period), cell) in &by_period {
        let (_, t) = thresholds_of(class);
        let lv = level(t);
        let (k, n) = (cell.n_approve, cell.n_reviewed());
        let w = wilson(k, n, lv);
        let e = clopper_pearson(k, n, lv);
        agreement.push(AgreementRow {
            action_class: class.to_string(),
            period,
            n_decisions: cell.n_decisions(),
            n_reviewed: n,
            n_approve: k,
            n_override: cell.n_override,
            n_reject: cell.n_reject,
            n_timeout: cell.n_timeout,
            n_unreviewed: cell.n_unreviewed,
            agreement: ratio(k, n),
            wilson_low: w.map(|i| i.low),
            wilson_high: w.map(|i| i.high),
            exact_low: e.map(|i| i.low),
            exact_high: e.map(|i| i.high),
            confidence_level: lv.level(),
            n_executed: cell.n_executed,
        });
    }

    // Drift per class and period.
    let mut drift = Vec::new();
    for (&(class, period), cell) in &by_period {
        let (_, t) = thresholds_of(class);
        let baseline: Vec<Period> = match &run.baseline {
            Some(fixed) => periods
                .iter()
                .copied()
                .filter(|p| fixed.holds(p.start) && *p != period)
                .collect(),
            None => (1..=run.baseline_periods as i32)
                .rev()
                .map(|k| granularity.shift(period, -k))
                .collect(),
        };
        let baseline: Vec<Period> = baseline
            .into_iter()
            .filter(|p| !contaminated.contains(&(class.to_string(), *p)))
            .collect();
        let mut base_cell = Cell::default();
        let mut base_samples: Vec<&[f64]> = Vec::new();
        for p in &baseline {
            if let Some(c) = by_period.get(&(class, *p)) {
                base_cell += c;
            }
            if let Some(s) = samples.get(&(class.to_string(), *p)) {
                base_samples.push(s);
            }
        }
        let current: &[f64] = samples
            .get(&(class.to_string(), period))
            .map(|v| v.as_slice())
            .unwrap_or(&[]);
        let psi_res = psi(&base_samples, current);
        let change = agreement_change(
            cell.n_approve,
            cell.n_reviewed(),
            base_cell.n_approve,
            base_cell.n_reviewed(),
        );
        let psi_value = psi_res.as_ref().map(|r| r.psi);
        drift.push(DriftRow {
            action_class: class.to_string(),
            period,
            baseline_start: baseline.first().copied(),
            baseline_end: baseline.last().copied(),
            baseline_periods: baseline.clone(),
            n_current: current.len() as u64,
            n_baseline: base_samples.iter().map(|s| s.len() as u64).sum(),
            psi: psi_value,
            chi2: psi_res.as_ref().and_then(|r| r.chi2),
            chi2_df: psi_res.as_ref().and_then(|r| r.chi2_df),
            chi2_p: psi_res.as_ref().and_then(|r| r.chi2_p),
            chi2_p_adjusted: None,
            agreement_current: change.as_ref().map(|c| c.current),
            agreement_baseline: change.as_ref().map(|c| c.baseline),
            agreement_change: change.as_ref().map(|c| c.diff),
            agreement_z: change.as_ref().and_then(|c| c.z),
            agreement_p: change.as_ref().and_then(|c| c.p_value),
            agreement_test: change.as_ref().map(|c| c.test.as_str()),
            agreement_p_adjusted: None,
            cohens_h: change.as_ref().map(|c| c.cohens_h),
            max_psi: t.max_psi,
            psi_flag: psi_value.is_some_and(|v| v > t.max_psi),
            distribution_flag: false,
            agreement_flag: false,
        });
    }
    let adj = bh_adjust(
        &drift
            .iter()
            .map(|d| d.chi2_p.unwrap_or(f64::NAN))
            .collect::<Vec<_>>(),
    );
    for (d, a) in drift.iter_mut().zip(adj) {
        d.chi2_p_adjusted = a.is_finite().then_some(a);
        d.distribution_flag = a < run.fdr_level;
        // PSI is the effect size, the chi-square test its significance: a large PSI on a
        // handful of decisions is noise, so the flag needs both.
        d.psi_flag = d.psi_flag && d.distribution_flag;
    }
    let adj = bh_adjust(
        &drift
            .iter()
            .map(|d| d.agreement_p.unwrap_or(f64::NAN))
            .collect::<Vec<_>>(),
    );
    for (d, a) in drift.iter_mut().zip(adj) {
        d.agreement_p_adjusted = a.is_finite().then_some(a);
        d.agreement_flag = a < run.fdr_level && d.agreement_change.is_some_and(|c| c < 0.0);
    }

    // Model versions: each against its predecessor (order of first appearance).
    let mut versions = Vec::new();
    for class in &classes {
        let mut first_seen: BTreeMap<&str, Period> = BTreeMap::new();
        let mut totals: BTreeMap<&str, Cell> = BTreeMap::new();
        let mut left_out: BTreeMap<&str, BTreeSet<Period>> = BTreeMap::new();
        for &(k, c) in class_cells(class) {
            let e = first_seen
                .entry(k.model_version.as_str())
                .or_insert(k.period);
            *e = (*e).min(k.period);
            // A period holding a flagged manipulation window would charge the attack to the
            // model version: leave it out of the comparison (it is reported on its own).
            let total = totals.entry(k.model_version.as_str()).or_default();
            if !contaminated.contains(&(class.to_string(), k.period)) {
                *total += c;
            } else {
                left_out
                    .entry(k.model_version.as_str())
                    .or_default()
                    .insert(k.period);
            }
        }
        let mut order: Vec<(&str, Period)> = first_seen.into_iter().collect();
        order.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(b.0)));
        for pair in order.windows(2) {
            let (prev, cur) = (&totals[pair[0].0], &totals[pair[1].0]);
            let change = agreement_change(
                cur.n_approve,
                cur.n_reviewed(),
                prev.n_approve,
                prev.n_reviewed(),
            );
            versions.push(VersionRow {
                action_class: class.to_string(),
                previous_version: pair[0].0.to_string(),
                model_version: pair[1].0.to_string(),
                n_previous: prev.n_reviewed(),
                n_current: cur.n_reviewed(),
                agreement_previous: ratio(prev.n_approve, prev.n_reviewed()),
                agreement_current: ratio(cur.n_approve, cur.n_reviewed()),
                agreement_change: change.as_ref().map(|c| c.diff),
                p_value: change.as_ref().and_then(|c| c.p_value),
                test: change.as_ref().map(|c| c.test.as_str()),
                p_adjusted: None,
                cohens_h: change.as_ref().map(|c| c.cohens_h),
                flagged: false,
                excluded_periods: [pair[0].0, pair[1].0]
                    .iter()
                    .flat_map(|v| left_out.get(v).into_iter().flatten().copied())
                    .collect::<BTreeSet<Period>>()
                    .into_iter()
                    .collect(),
            });
        }
    }
    let adj = bh_adjust(
        &versions
            .iter()
            .map(|v| v.p_value.unwrap_or(f64::NAN))
            .collect::<Vec<_>>(),
    );
    for (v, a) in versions.iter_mut().zip(adj) {
        v.p_adjusted = a.is_finite().then_some(a);
        v.flagged = a < run.fdr_level && v.agreement_change.is_some_and(|c| c < 0.0);
    }

    let mut drift_by_class: BTreeMap<&str, Vec<&DriftRow>> = BTreeMap::new();
    for d in &drift {
        drift_by_class
            .entry(d.action_class.as_str())
            .or_default()
            .push(d);
    }
    let mut versions_by_class: BTreeMap<&str, Vec<&VersionRow>> = BTreeMap::new();
    for v in &versions {
        versions_by_class
            .entry(v.action_class.as_str())
            .or_default()
            .push(v);
    }

    // Calibration per class and period, and the equal-mass variant of the whole input.
    let mut calibration_periods = Vec::new();
    for (&(class, period), cell) in &by_period {
        if let Some(cal) = calibration(cell) {
            calibration_periods.push((class.to_string(), period, cal));
        }
    }
    let mut quantile_bins = Vec::new();

    // Whole-input calibration per class.
    let mut calibration_rows = Vec::new();
    let mut calibration_bin_rows = Vec::new();
    for class in &classes {
        let mut cell = Cell::default();
        for &(_, c) in class_cells(class) {
            cell += c;
        }
        if let Some(cal) = calibration(&cell) {
            calibration_rows.push(CalibrationRow {
                action_class: class.to_string(),
                calibration: cal,
                spiegelhalter_p_adjusted: None,
            });
        }
        for b in calibration_bins(&cell).unwrap_or_default() {
            calibration_bin_rows.push((class.to_string(), b));
        }
        for b in equal_mass_bins(&cell, 10).unwrap_or_default() {
            quantile_bins.push((class.to_string(), b));
        }
    }
    let adj = bh_adjust(
        &calibration_rows
            .iter()
            .map(|c| c.calibration.spiegelhalter_p.unwrap_or(f64::NAN))
            .collect::<Vec<_>>(),
    );
    for (c, a) in calibration_rows.iter_mut().zip(adj) {
        c.spiegelhalter_p_adjusted = a.is_finite().then_some(a);
    }

    // Evidence windows, gates and recommendations.
    let mut partial = Vec::new();
    for class in &classes {
        let (settings, t) = thresholds_of(class);
        let latest = class_cells(class)
            .iter()
            .map(|(k, _)| k.period)
            .max()
            .unwrap_or(evaluated);
        let mut volume: BTreeMap<&str, u64> = BTreeMap::new();
        for (k, c) in class_cells(class)
            .iter()
            .filter(|(k, _)| k.period == latest)
        {
            *volume.entry(k.model_version.as_str()).or_default() += c.n_decisions();
        }
        let current_version = volume
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(a.0.cmp(b.0)))
            .map(|(v, _)| v.to_string());
        let window: Vec<Period> = (0..t.evidence_periods.max(1) as i32)
            .rev()
            .map(|k| granularity.shift(evaluated, -k))
            .collect();
        let in_window = |k: &CellKey| {
            k.action_class == *class
                && Some(&k.model_version) == current_version.as_ref()
                && window.contains(&k.period)
        };
        let cells: Vec<(&CellKey, &Cell)> = class_cells(class)
            .iter()
            .copied()
            .filter(|(k, _)| in_window(k))
            .collect();
        let mut ev_cell = Cell::default();
        for (_, c) in &cells {
            ev_cell += c;
        }
        let (k, n) = (ev_cell.n_approve, ev_cell.n_reviewed());
        let lv = level(t);
        let w = wilson(k, n, lv);
        let evidence = promotion_evidence(k, n, t.target_agreement, t.confidence_level).ok();
        let p_hat = ratio(k, n);
        let ev_cal = calibration(&ev_cell);
        let gate_analysis = GateConfig::new(t.target_agreement, t.confidence_level, t.min_reviewed)
            .ok()
            .and_then(|cfg| gate_scopes(&cells, &cfg).ok());
        let scopes = gate_analysis.map(|g| g.scopes).unwrap_or_default();
        let allowed: Vec<GateScope> = scopes
            .iter()
            .filter(|s| {
                s.max_criticality <= t.gate_max_criticality
                    && (!s.privileged_allowed || t.gate_allow_privileged)
            })
            .cloned()
            .collect();
        let selected = best_gate(&allowed);
        let class_drift = drift_by_class
            .get(*class)
            .map(|v| v.as_slice())
            .unwrap_or(&[]);
        let psi_latest = class_drift
            .iter()
            .find(|d| d.period == evaluated)
            .and_then(|d| d.psi);
        let label = |p: Period| crate::present::period_label(granularity, p);
        let window_drift: Vec<&&DriftRow> = class_drift
            .iter()
            .filter(|d| window.contains(&d.period))
            .collect();
        let psi_flagged_periods: Vec<PsiFlag> = window_drift
            .iter()
            .filter(|d| d.psi_flag)
            .map(|d| PsiFlag {
                period: label(d.period),
                period_start: d.period.date_string(),
                psi: d.psi.unwrap_or(f64::NAN),
            })
            .collect();
        let agreement_drops: Vec<AgreementDrop> = window_drift
            .iter()
            .filter(|d| d.agreement_flag)
            .map(|d| AgreementDrop {
                period: label(d.period),
                period_start: d.period.date_string(),
                agreement: d.agreement_current.unwrap_or(f64::NAN),
                baseline: d.agreement_baseline.unwrap_or(f64::NAN),
                p_adjusted: d.agreement_p_adjusted.unwrap_or(f64::NAN),
            })
            .collect();
        let version_regression = versions_by_class
            .get(*class)
            .into_iter()
            .flatten()
            .find(|v| Some(&v.model_version) == current_version.as_ref())
            .map(|v| VersionRegression {
                previous_version: v.previous_version.clone(),
                current_version: v.model_version.clone(),
                previous_agreement: v.agreement_previous.unwrap_or(f64::NAN),
                current_agreement: v.agreement_current.unwrap_or(f64::NAN),
                previous_reviewed: v.n_previous,
                current_reviewed: v.n_current,
                excluded_periods: v.excluded_periods.iter().map(|p| label(*p)).collect(),
                excluded_period_starts: v
                    .excluded_periods
                    .iter()
                    .map(|p| p.date_string())
                    .collect(),
                p_adjusted: v.p_adjusted.unwrap_or(1.0),
                flagged: v.flagged,
            });
        let periods_with_data = window
            .iter()
            .filter(|p| cells.iter().any(|(k, _)| k.period == **p))
            .count()
            .max(1);
        let ev = ClassEvidence {
            action_class: class.to_string(),
            current_version: current_version.clone(),
            evidence_periods: window.iter().map(|p| p.date_string()).collect(),
            n_decisions: ev_cell.n_decisions(),
            n_reviewed: n,
            n_approve: k,
            agreement: p_hat,
            wilson_low: w.map(|i| i.low),
            wilson_high: w.map(|i| i.high),
            anytime_lower: evidence.as_ref().map(|e| e.anytime_lower),
            e_value: evidence.as_ref().map(|e| e.e_value),
            crosses_target: evidence.as_ref().is_some_and(|e| e.crosses),
            reviews_to_promotion: p_hat
                .and_then(|p| reviews_to_promotion(p, n, t.target_agreement, t.confidence_level)),
            reviews_per_period: n as f64 / periods_with_data as f64,
            ece: ev_cal.as_ref().map(|c| c.ece),
            calibration_p: None,
            psi_latest,
            latest_period: label(evaluated),
            latest_period_start: evaluated.date_string(),
            psi_flagged: !psi_flagged_periods.is_empty(),
            psi_flagged_periods,
            agreement_drift_flagged: !agreement_drops.is_empty(),
            agreement_drops,
            version_regression,
            manipulation_windows: {
                let ids: BTreeSet<u32> = flagged
                    .iter()
                    .filter(|m| {
                        m.action_class == *class
                            && window.contains(&granularity.period_of(m.assessment.day))
                    })
                    .filter_map(|m| m.assessment.window)
                    .collect();
                ids.len() as u32
            },
            invented_share: current_version.as_ref().and_then(|v| {
                signals
                    .reasoning
                    .get(&(class.to_string(), v.clone()))
                    .and_then(|c| reasoning_shares(c, lv))
                    .map(|s| s.invented_share)
            }),
            n_executed: ev_cell.n_executed,
            n_executed_reversed: ev_cell.n_executed_reversed,
            gate: selected.as_ref().and_then(|g| {
                Some(Gate {
                    max_criticality: g.max_criticality,
                    privileged_allowed: g.privileged_allowed,
                    min_confidence: g.threshold?,
                    coverage: g.coverage,
                    n_reviewed: g.n_reviewed,
                    risk: g.risk.unwrap_or(0.0),
                })
            }),
        };
        partial.push((
            class.to_string(),
            settings,
            t,
            ev_cell,
            ev_cal,
            scopes,
            selected,
            ev,
        ));
    }
    // Calibration tests of the evidence windows, adjusted across classes.
    let adj = bh_adjust(
        &partial
            .iter()
            .map(|p| {
                p.4.as_ref()
                    .and_then(|c| c.spiegelhalter_p)
                    .unwrap_or(f64::NAN)
            })
            .collect::<Vec<_>>(),
    );
    let mut class_results = Vec::new();
    for ((class, settings, t, ev_cell, ev_cal, scopes, selected, mut ev), a) in
        partial.into_iter().zip(adj)
    {
        ev.calibration_p = a.is_finite().then_some(a);
        let recommendation = recommend(settings, &ev);
        let bins = calibration_bins(&ev_cell).unwrap_or_default();
        class_results.push(ClassResult {
            action_class: class,
            settings: settings.cloned(),
            thresholds: t.clone(),
            evidence_cell: ev_cell,
            evidence_calibration: ev_cal,
            bins,
            gates: scopes,
            selected_gate: selected,
            recommendation,
        });
    }
    Some(Analysis {
        granularity,
        periods,
        evaluated,
        agreement,
        calibration: calibration_rows,
        calibration_bins: calibration_bin_rows,
        calibration_periods,
        calibration_quantile_bins: quantile_bins,
        drift,
        versions,
        manipulation,
        reasoning,
        classes: class_results,
    })
}
