//! The metric tables of a run directory as DataFrames, built from the typed results of the
//! metrics and recommend stages. Column names are the output contract (README, "Outputs"):
//! notebooks, dashboards and tests read them.

use polars::prelude::*;
use readiness_metrics::Period;

use crate::aggregate::signals::{CitedId, SignalTables};
use crate::analysis::Analysis;

/// A DataFrame under construction, one typed column at a time.
#[derive(Default)]
struct Frame {
    columns: Vec<Column>,
}

impl Frame {
    fn str<S: AsRef<str>>(mut self, name: &str, values: impl IntoIterator<Item = S>) -> Self {
        let v: Vec<String> = values.into_iter().map(|s| s.as_ref().to_string()).collect();
        self.columns.push(Column::new(name.into(), v));
        self
    }

    fn u64(mut self, name: &str, values: impl IntoIterator<Item = u64>) -> Self {
        let v: Vec<u64> = values.into_iter().collect();
        self.columns.push(Column::new(name.into(), v));
        self
    }

    fn f64(mut self, name: &str, values: impl IntoIterator<Item = f64>) -> Self {
        let v: Vec<f64> = values.into_iter().collect();
        self.columns.push(Column::new(name.into(), v));
        self
    }

    fn opt_f64(mut self, name: &str, values: impl IntoIterator<Item = Option<f64>>) -> Self {
        let v: Vec<Option<f64>> = values.into_iter().collect();
        self.columns.push(Column::new(name.into(), v));
        self
    }

    fn opt_u64(mut self, name: &str, values: impl IntoIterator<Item = Option<u64>>) -> Self {
        let v: Vec<Option<u64>> = values.into_iter().collect();
        self.columns.push(Column::new(name.into(), v));
        self
    }

    fn bool(mut self, name: &str, values: impl IntoIterator<Item = bool>) -> Self {
        let v: Vec<bool> = values.into_iter().collect();
        self.columns.push(Column::new(name.into(), v));
        self
    }

    fn date(self, name: &str, values: impl IntoIterator<Item = Period>) -> PolarsResult<Self> {
        self.opt_date(name, values.into_iter().map(Some))
    }

    fn opt_date(
        mut self,
        name: &str,
        values: impl IntoIterator<Item = Option<Period>>,
    ) -> PolarsResult<Self> {
        let v: Vec<Option<i32>> = values.into_iter().map(|p| p.map(|p| p.start)).collect();
        self.columns
            .push(Column::new(name.into(), v).cast(&DataType::Date)?);
        Ok(self)
    }

    fn finish(self) -> PolarsResult<DataFrame> {
        DataFrame::new_infer_height(self.columns)
    }
}

/// `metrics/agreement.parquet`: exactly DESIGN.md's columns, per class and period.
pub fn agreement(a: &Analysis) -> PolarsResult<DataFrame> {
    let r = &a.agreement;
    Frame::default()
        .str("action_class", r.iter().map(|x| &x.action_class))
        .date("period_start", r.iter().map(|x| x.period))?
        .u64("n_decisions", r.iter().map(|x| x.n_decisions))
        .u64("n_reviewed", r.iter().map(|x| x.n_reviewed))
        .u64("n_approve", r.iter().map(|x| x.n_approve))
        .u64("n_override", r.iter().map(|x| x.n_override))
        .u64("n_reject", r.iter().map(|x| x.n_reject))
        .u64("n_timeout", r.iter().map(|x| x.n_timeout))
        .u64("n_unreviewed", r.iter().map(|x| x.n_unreviewed))
        .opt_f64("agreement", r.iter().map(|x| x.agreement))
        .opt_f64("wilson_low", r.iter().map(|x| x.wilson_low))
        .opt_f64("wilson_high", r.iter().map(|x| x.wilson_high))
        .opt_f64("exact_low", r.iter().map(|x| x.exact_low))
        .opt_f64("exact_high", r.iter().map(|x| x.exact_high))
        .finish()
}

/// `metrics/calibration.parquet`: per class over the whole input.
pub fn calibration(a: &Analysis) -> PolarsResult<DataFrame> {
    let r = &a.calibration;
    Frame::default()
        .str("action_class", r.iter().map(|x| &x.action_class))
        .u64("n", r.iter().map(|x| x.calibration.n))
        .f64("brier", r.iter().map(|x| x.calibration.brier))
        .f64("ece", r.iter().map(|x| x.calibration.ece))
        .f64("mce", r.iter().map(|x| x.calibration.mce))
        .f64("reliability", r.iter().map(|x| x.calibration.reliability))
        .f64("resolution", r.iter().map(|x| x.calibration.resolution))
        .f64("uncertainty", r.iter().map(|x| x.calibration.uncertainty))
        .opt_f64(
            "spiegelhalter_z",
            r.iter().map(|x| x.calibration.spiegelhalter_z),
        )
        .opt_f64(
            "spiegelhalter_p",
            r.iter().map(|x| x.calibration.spiegelhalter_p),
        )
        .opt_f64(
            "spiegelhalter_p_adjusted",
            r.iter().map(|x| x.spiegelhalter_p_adjusted),
        )
        .finish()
}

/// `metrics/calibration_bins.parquet`: the ten DESIGN.md bins per class.
pub fn calibration_bins(a: &Analysis) -> PolarsResult<DataFrame> {
    let r = &a.calibration_bins;
    Frame::default()
        .str("action_class", r.iter().map(|x| &x.0))
        .u64("bin", r.iter().map(|x| x.1.bin as u64))
        .f64("lower", r.iter().map(|x| x.1.lower))
        .f64("upper", r.iter().map(|x| x.1.upper))
        .u64("n", r.iter().map(|x| x.1.n))
        .opt_f64("mean_confidence", r.iter().map(|x| x.1.mean_confidence))
        .opt_f64(
            "observed_agreement",
            r.iter().map(|x| x.1.observed_agreement),
        )
        .opt_f64("gap", r.iter().map(|x| x.1.gap))
        .finish()
}

/// `metrics/calibration_periods.parquet`: calibration per class and period.
pub fn calibration_periods(a: &Analysis) -> PolarsResult<DataFrame> {
    let r = &a.calibration_periods;
    Frame::default()
        .str("action_class", r.iter().map(|x| &x.0))
        .date("period_start", r.iter().map(|x| x.1))?
        .u64("n", r.iter().map(|x| x.2.n))
        .f64("brier", r.iter().map(|x| x.2.brier))
        .f64("ece", r.iter().map(|x| x.2.ece))
        .f64("mce", r.iter().map(|x| x.2.mce))
        .opt_f64("spiegelhalter_z", r.iter().map(|x| x.2.spiegelhalter_z))
        .opt_f64("spiegelhalter_p", r.iter().map(|x| x.2.spiegelhalter_p))
        .finish()
}

/// `metrics/calibration_quantile_bins.parquet`: the equal-mass variant of the reliability bins
/// (ten groups of roughly equal reviewed count, built from the 0.01-wide fine bins).
pub fn calibration_quantile_bins(a: &Analysis) -> PolarsResult<DataFrame> {
    let r = &a.calibration_quantile_bins;
    Frame::default()
        .str("action_class", r.iter().map(|x| &x.0))
        .u64("group", r.iter().map(|x| x.1.group as u64))
        .f64("lower", r.iter().map(|x| x.1.lower))
        .f64("upper", r.iter().map(|x| x.1.upper))
        .u64("n", r.iter().map(|x| x.1.n))
        .u64("approve", r.iter().map(|x| x.1.approve))
        .f64(
            "observed_agreement",
            r.iter().map(|x| x.1.observed_agreement),
        )
        .finish()
}

/// `metrics/drift.parquet`: per class and period, against its baseline.
pub fn drift(a: &Analysis) -> PolarsResult<DataFrame> {
    let r = &a.drift;
    Frame::default()
        .str("action_class", r.iter().map(|x| &x.action_class))
        .date("period_start", r.iter().map(|x| x.period))?
        .opt_date("baseline_start", r.iter().map(|x| x.baseline_start))?
        .opt_date("baseline_end", r.iter().map(|x| x.baseline_end))?
        .u64("n_current", r.iter().map(|x| x.n_current))
        .u64("n_baseline", r.iter().map(|x| x.n_baseline))
        .opt_f64("psi", r.iter().map(|x| x.psi))
        .opt_f64("chi2", r.iter().map(|x| x.chi2))
        .opt_u64("chi2_df", r.iter().map(|x| x.chi2_df))
        .opt_f64("chi2_p", r.iter().map(|x| x.chi2_p))
        .opt_f64("chi2_p_adjusted", r.iter().map(|x| x.chi2_p_adjusted))
        .opt_f64("agreement_current", r.iter().map(|x| x.agreement_current))
        .opt_f64("agreement_baseline", r.iter().map(|x| x.agreement_baseline))
        .opt_f64("agreement_change", r.iter().map(|x| x.agreement_change))
        .opt_f64("agreement_z", r.iter().map(|x| x.agreement_z))
        .opt_f64("agreement_p", r.iter().map(|x| x.agreement_p))
        .str(
            "agreement_test",
            r.iter().map(|x| x.agreement_test.unwrap_or("")),
        )
        .opt_f64(
            "agreement_p_adjusted",
            r.iter().map(|x| x.agreement_p_adjusted),
        )
        .opt_f64("cohens_h", r.iter().map(|x| x.cohens_h))
        .f64("max_psi", r.iter().map(|x| x.max_psi))
        .bool("psi_flag", r.iter().map(|x| x.psi_flag))
        .bool("distribution_flag", r.iter().map(|x| x.distribution_flag))
        .bool("agreement_flag", r.iter().map(|x| x.agreement_flag))
        .finish()
}

/// `metrics/versions.parquet`: each model version against its predecessor, per class.
pub fn versions(a: &Analysis) -> PolarsResult<DataFrame> {
    let r = &a.versions;
    Frame::default()
        .str("action_class", r.iter().map(|x| &x.action_class))
        .str("previous_version", r.iter().map(|x| &x.previous_version))
        .str("model_version", r.iter().map(|x| &x.model_version))
        .u64("n_previous", r.iter().map(|x| x.n_previous))
        .u64("n_current", r.iter().map(|x| x.n_current))
        .opt_f64("agreement_previous", r.iter().map(|x| x.agreement_previous))
        .opt_f64("agreement_current", r.iter().map(|x| x.agreement_current))
        .opt_f64("agreement_change", r.iter().map(|x| x.agreement_change))
        .opt_f64("p_value", r.iter().map(|x| x.p_value))
        .str("test", r.iter().map(|x| x.test.unwrap_or("")))
        .opt_f64("p_adjusted", r.iter().map(|x| x.p_adjusted))
        .opt_f64("cohens_h", r.iter().map(|x| x.cohens_h))
        .bool("flagged", r.iter().map(|x| x.flagged))
        .finish()
}

/// `metrics/gates.parquet`: per class and scope, the certified threshold and what it covers,
/// over the class's evidence window; `selected` marks the recommended scope.
pub fn gates(a: &Analysis) -> PolarsResult<DataFrame> {
    let rows: Vec<_> = a
        .classes
        .iter()
        .flat_map(|c| {
            c.gates
                .iter()
                .map(move |g| (c, g, c.selected_gate.as_ref() == Some(g)))
        })
        .collect();
    Frame::default()
        .str("action_class", rows.iter().map(|x| &x.0.action_class))
        .str(
            "max_criticality",
            rows.iter().map(|x| x.1.max_criticality.as_str()),
        )
        .bool(
            "privileged_allowed",
            rows.iter().map(|x| x.1.privileged_allowed),
        )
        .opt_f64("threshold", rows.iter().map(|x| x.1.threshold))
        .f64("coverage", rows.iter().map(|x| x.1.coverage))
        .u64("n_decisions", rows.iter().map(|x| x.1.n_decisions))
        .u64("n_reviewed", rows.iter().map(|x| x.1.n_reviewed))
        .u64("n_disagree", rows.iter().map(|x| x.1.n_disagree))
        .opt_f64("risk", rows.iter().map(|x| x.1.risk))
        .opt_f64("p_value", rows.iter().map(|x| x.1.p_value))
        .bool("selected", rows.iter().map(|x| x.2))
        .finish()
}

/// `metrics/gate_curves.parquet`: the risk–coverage curve of every class and scope.
pub fn gate_curves(a: &Analysis) -> PolarsResult<DataFrame> {
    let rows: Vec<_> = a
        .classes
        .iter()
        .flat_map(|c| {
            c.gates
                .iter()
                .flat_map(move |g| g.curve.iter().map(move |p| (c, g, p)))
        })
        .collect();
    Frame::default()
        .str("action_class", rows.iter().map(|x| &x.0.action_class))
        .str(
            "max_criticality",
            rows.iter().map(|x| x.1.max_criticality.as_str()),
        )
        .bool(
            "privileged_allowed",
            rows.iter().map(|x| x.1.privileged_allowed),
        )
        .f64("threshold", rows.iter().map(|x| x.2.threshold))
        .u64("n_decisions", rows.iter().map(|x| x.2.n_decisions))
        .u64("n_reviewed", rows.iter().map(|x| x.2.n_reviewed))
        .u64("n_disagree", rows.iter().map(|x| x.2.n_disagree))
        .opt_f64("risk", rows.iter().map(|x| x.2.risk))
        .opt_f64("p_value", rows.iter().map(|x| x.2.p_value))
        .f64("coverage", rows.iter().map(|x| x.2.coverage))
        .bool("tested", rows.iter().map(|x| x.2.tested))
        .bool("certified", rows.iter().map(|x| x.2.certified))
        .finish()
}

/// `metrics/evidence.parquet`: per class, the evidence window's numbers and the recommendation
/// (the tabular twin of `recommendations.json`).
pub fn evidence(a: &Analysis) -> PolarsResult<DataFrame> {
    let r: Vec<_> = a.classes.iter().map(|c| &c.recommendation).collect();
    Frame::default()
        .str("action_class", r.iter().map(|x| &x.action_class))
        .str(
            "current_version",
            r.iter()
                .map(|x| x.evidence.current_version.clone().unwrap_or_default()),
        )
        .str("current_mode", r.iter().map(|x| &x.current_mode))
        .str(
            "recommendation",
            r.iter().map(|x| x.recommendation.as_str()),
        )
        .u64("n_decisions", r.iter().map(|x| x.evidence.n_decisions))
        .u64("n_reviewed", r.iter().map(|x| x.evidence.n_reviewed))
        .u64("n_approve", r.iter().map(|x| x.evidence.n_approve))
        .opt_f64("agreement", r.iter().map(|x| x.evidence.agreement))
        .opt_f64("wilson_low", r.iter().map(|x| x.evidence.wilson_low))
        .opt_f64("anytime_lower", r.iter().map(|x| x.evidence.anytime_lower))
        .opt_f64("e_value", r.iter().map(|x| x.evidence.e_value))
        .bool(
            "crosses_target",
            r.iter().map(|x| x.evidence.crosses_target),
        )
        .opt_f64("ece", r.iter().map(|x| x.evidence.ece))
        .opt_f64("calibration_p", r.iter().map(|x| x.evidence.calibration_p))
        .opt_f64("psi_latest", r.iter().map(|x| x.evidence.psi_latest))
        .u64("n_executed", r.iter().map(|x| x.evidence.n_executed))
        .u64(
            "n_executed_reversed",
            r.iter().map(|x| x.evidence.n_executed_reversed),
        )
        .finish()
}

/// `metrics/manipulation.parquet`: the flagged days of the watched classes with their evidence.
pub fn manipulation(a: &Analysis) -> PolarsResult<DataFrame> {
    let r: Vec<_> = a
        .manipulation
        .iter()
        .filter(|m| m.assessment.flagged)
        .collect();
    Frame::default()
        .str("action_class", r.iter().map(|x| &x.action_class))
        .date(
            "day",
            r.iter().map(|x| Period {
                start: x.assessment.day,
            }),
        )?
        .u64(
            "window",
            r.iter().map(|x| x.assessment.window.unwrap_or(0) as u64),
        )
        .u64("volume", r.iter().map(|x| x.assessment.volume))
        .opt_f64(
            "baseline_mean",
            r.iter().map(|x| x.assessment.baseline_mean),
        )
        .opt_f64("ratio", r.iter().map(|x| x.assessment.ratio))
        .opt_f64("surge_p", r.iter().map(|x| x.assessment.surge_p))
        .opt_f64(
            "effective_target_share",
            r.iter().map(|x| x.assessment.effective_target_share),
        )
        .opt_f64(
            "baseline_effective_target_share",
            r.iter()
                .map(|x| x.assessment.baseline_effective_target_share),
        )
        .opt_f64(
            "top_target_share",
            r.iter().map(|x| x.assessment.top_target_share),
        )
        .opt_f64(
            "new_target_share",
            r.iter().map(|x| x.assessment.new_target_share),
        )
        .f64(
            "priv_crit_share",
            r.iter().map(|x| x.assessment.priv_crit_share),
        )
        .opt_f64(
            "baseline_priv_crit_share",
            r.iter().map(|x| x.assessment.baseline_priv_crit_share),
        )
        .opt_f64(
            "disagree_share",
            r.iter().map(|x| x.assessment.disagree_share),
        )
        .opt_f64(
            "baseline_disagree_share",
            r.iter().map(|x| x.assessment.baseline_disagree_share),
        )
        .f64(
            "mean_confidence",
            r.iter().map(|x| x.assessment.mean_confidence),
        )
        .opt_f64(
            "baseline_mean_confidence",
            r.iter().map(|x| x.assessment.baseline_mean_confidence),
        )
        .bool("surge", r.iter().map(|x| x.assessment.surge))
        .bool(
            "concentration",
            r.iter().map(|x| x.assessment.concentration),
        )
        .bool(
            "privilege_shift",
            r.iter().map(|x| x.assessment.privilege_shift),
        )
        .bool("disagreement", r.iter().map(|x| x.assessment.disagreement))
        .finish()
}

/// `metrics/reasoning.parquet`: invented and stale ATT&CK citations per class and model
/// version, with Wilson intervals.
pub fn reasoning(a: &Analysis) -> PolarsResult<DataFrame> {
    let r = &a.reasoning;
    Frame::default()
        .str("action_class", r.iter().map(|x| &x.action_class))
        .str("model_version", r.iter().map(|x| &x.model_version))
        .u64("n_decisions", r.iter().map(|x| x.counts.n_decisions))
        .u64("n_citing", r.iter().map(|x| x.counts.n_citing))
        .u64("n_unknown", r.iter().map(|x| x.counts.n_unknown))
        .u64("n_stale", r.iter().map(|x| x.counts.n_stale))
        .opt_f64(
            "invented_share",
            r.iter()
                .map(|x| x.shares.as_ref().map(|s| s.invented_share)),
        )
        .opt_f64(
            "invented_low",
            r.iter().map(|x| x.shares.as_ref().map(|s| s.invented_low)),
        )
        .opt_f64(
            "invented_high",
            r.iter().map(|x| x.shares.as_ref().map(|s| s.invented_high)),
        )
        .opt_f64(
            "stale_share",
            r.iter().map(|x| x.shares.as_ref().map(|s| s.stale_share)),
        )
        .opt_f64(
            "stale_low",
            r.iter().map(|x| x.shares.as_ref().map(|s| s.stale_low)),
        )
        .opt_f64(
            "stale_high",
            r.iter().map(|x| x.shares.as_ref().map(|s| s.stale_high)),
        )
        .finish()
}

/// `metrics/reasoning_ids.parquet`: the invented and stale IDs each model version cited, most
/// cited first (at most 200 rows).
pub fn reasoning_ids(ids: &[CitedId]) -> PolarsResult<DataFrame> {
    Frame::default()
        .str("model_version", ids.iter().map(|x| &x.model_version))
        .str("technique_id", ids.iter().map(|x| &x.technique_id))
        .str("status", ids.iter().map(|x| x.status))
        .str(
            "replaced_by",
            ids.iter()
                .map(|x| x.replaced_by.clone().unwrap_or_default()),
        )
        .u64("decisions", ids.iter().map(|x| x.decisions))
        .finish()
}

/// `metrics/oversight.parquet`: review load per class and period. `timeout_rate` is the share
/// of the period's decisions whose final verdict is a timeout; `review_hours` = reviews ×
/// `run.review_minutes` / 60, the analyst time a full promotion of the class would free.
pub fn oversight(
    a: &Analysis,
    s: &SignalTables,
    run: &readiness_governance::RunSettings,
) -> PolarsResult<DataFrame> {
    let r = &s.oversight;
    let rates: std::collections::BTreeMap<(&str, Period), f64> = a
        .agreement
        .iter()
        .filter(|g| g.n_decisions > 0)
        .map(|g| {
            (
                (g.action_class.as_str(), g.period),
                g.n_timeout as f64 / g.n_decisions as f64,
            )
        })
        .collect();
    let timeout_rate = |x: &crate::aggregate::signals::OversightRow| {
        rates.get(&(x.action_class.as_str(), x.period)).copied()
    };
    Frame::default()
        .str("action_class", r.iter().map(|x| &x.action_class))
        .date("period_start", r.iter().map(|x| x.period))?
        .u64("n_reviews", r.iter().map(|x| x.n_reviews))
        .u64("n_timeout_rows", r.iter().map(|x| x.n_timeouts))
        .opt_f64("timeout_rate", r.iter().map(timeout_rate))
        .opt_f64("median_delay_s", r.iter().map(|x| x.median_delay_s))
        .opt_f64("p90_delay_s", r.iter().map(|x| x.p90_delay_s))
        .u64("n_analysts", r.iter().map(|x| x.n_analysts))
        .opt_f64(
            "reviews_per_analyst",
            r.iter()
                .map(|x| (x.n_analysts > 0).then(|| x.n_reviews as f64 / x.n_analysts as f64)),
        )
        .u64("n_approvals", r.iter().map(|x| x.n_approvals))
        .u64("n_fast_approvals", r.iter().map(|x| x.n_fast_approvals))
        .opt_f64(
            "rubber_stamp_share",
            r.iter().map(|x| {
                (x.n_approvals > 0).then(|| x.n_fast_approvals as f64 / x.n_approvals as f64)
            }),
        )
        .f64(
            "review_hours",
            r.iter()
                .map(|x| x.n_reviews as f64 * run.review_minutes / 60.0),
        )
        .finish()
}

/// `metrics/oversight_analysts.parquet`: review load per analyst and period.
pub fn oversight_analysts(s: &SignalTables) -> PolarsResult<DataFrame> {
    let r = &s.analysts;
    Frame::default()
        .str("analyst_id", r.iter().map(|x| &x.analyst_id))
        .date("period_start", r.iter().map(|x| x.period))?
        .u64("n_reviews", r.iter().map(|x| x.n_reviews))
        .u64("n_approvals", r.iter().map(|x| x.n_approvals))
        .u64("n_fast_approvals", r.iter().map(|x| x.n_fast_approvals))
        .opt_f64(
            "rubber_stamp_share",
            r.iter().map(|x| {
                (x.n_approvals > 0).then(|| x.n_fast_approvals as f64 / x.n_approvals as f64)
            }),
        )
        .opt_f64("median_delay_s", r.iter().map(|x| x.median_delay_s))
        .finish()
}
