//! Builds the report model from the typed results of the earlier stages. This is selection and
//! formatting (which classes need a decision this period, labels, pre-formatted numbers); every
//! statistic was computed upstream.

use std::collections::BTreeMap;

use readiness_governance::policy::Mode;
use readiness_governance::recommend::{Kind, Recommendation, RuleOutcome};
use readiness_metrics::period::civil_from_days;
use readiness_metrics::{Cell, Granularity, Period};
use readiness_report::model::{
    AgreementPoint, AutonomyPoint, ClassSection, DataQuality, DecisionItem, InputFile,
    ManipulationDay, MatrixRow, ReliabilityBin, ReportModel, RiskCoveragePoint, RowSource,
};

use crate::analysis::ClassResult;
use crate::pipeline::Computed;

/// Most classes given their own evidence section, charts and matrix row in the report. Every
/// class the policy names is shown (policies are written by people and stay small), then the
/// unowned classes with the most decisions up to this bound; the Parquet and JSON outputs
/// always hold every class. Without the bound 10,000 classes would mean 80,000 chart files.
pub const MAX_REPORT_CLASSES: usize = 40;

/// Most unowned class names listed by name in the data-quality section.
pub const MAX_LISTED: usize = 30;

/// The classes the report shows individually (see [`MAX_REPORT_CLASSES`]).
pub fn shown_classes(a: &crate::analysis::Analysis) -> std::collections::BTreeSet<&str> {
    let mut shown: std::collections::BTreeSet<&str> = a
        .classes
        .iter()
        .filter(|cl| cl.settings.is_some())
        .map(|cl| cl.action_class.as_str())
        .collect();
    let mut volume: BTreeMap<&str, u64> = BTreeMap::new();
    for r in &a.agreement {
        *volume.entry(r.action_class.as_str()).or_default() += r.n_decisions;
    }
    let mut unowned: Vec<(&str, u64)> = volume
        .into_iter()
        .filter(|(c, _)| !shown.contains(c))
        .collect();
    unowned.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(y.0)));
    let room = MAX_REPORT_CLASSES.saturating_sub(shown.len());
    shown.extend(unowned.into_iter().take(room).map(|(c, _)| c));
    shown
}

/// The label of a period, which names the whole period rather than its first day: `2025-10`
/// (month), `2025-Q4` (quarter), `2025-W41` (ISO week, Monday to Sunday; its year is the year
/// of its Thursday).
pub fn period_label(g: Granularity, p: Period) -> String {
    let (y, m, _) = civil_from_days(p.start);
    match g {
        Granularity::Month => format!("{y:04}-{m:02}"),
        Granularity::Quarter => format!("{y:04}-Q{}", (m - 1) / 3 + 1),
        Granularity::Week => {
            let thursday = g.period_of(p.start).start + 3;
            let (iso_year, _, _) = civil_from_days(thursday);
            let first = readiness_metrics::period::days_from_civil(iso_year, 1, 1);
            format!("{iso_year:04}-W{:02}", (thursday - first) / 7 + 1)
        }
    }
}

/// "2025-10 to 2025-12": the periods from `first` to `last`, both included (one label when they
/// are the same period).
pub fn period_range(g: Granularity, first: Period, last: Period) -> String {
    if first == last {
        period_label(g, first)
    } else {
        format!("{} to {}", period_label(g, first), period_label(g, last))
    }
}

/// [`period_range`] of periods given by their first day (`YYYY-MM-DD`, as the JSON outputs
/// hold them); a string that is not a date is shown as it is.
pub fn date_range(g: Granularity, first: &str, last: &str) -> String {
    use readiness_metrics::period::parse_date;
    match (parse_date(first), parse_date(last)) {
        (Some(a), Some(b)) => period_range(g, Period { start: a }, Period { start: b }),
        _ if first == last => first.to_string(),
        _ => format!("{first} to {last}"),
    }
}

fn pct(x: f64) -> String {
    format!("{:.2}%", 100.0 * x)
}

fn opt_pct(x: Option<f64>) -> String {
    x.map(pct).unwrap_or_else(|| "n/a".into())
}

/// "low/medium assets, non-privileged, confidence ≥ 0.97".
pub fn gate_text(g: &readiness_governance::Gate) -> String {
    let levels = ["low", "medium", "high", "critical"];
    let upto = g.max_criticality as usize;
    format!(
        "{} assets, {}, confidence ≥ {:.2} (covers {} of decisions)",
        levels[..=upto.min(3)].join("/"),
        if g.privileged_allowed {
            "privileged targets included"
        } else {
            "non-privileged"
        },
        g.min_confidence,
        pct(g.coverage)
    )
}

fn headline(r: &Recommendation) -> String {
    let first = r.reasons.first().cloned().unwrap_or_default();
    match r.recommendation {
        Kind::Promote => format!("Promote to human-on-the-loop: {first}"),
        Kind::PromoteGated => format!(
            "Promote within a gate ({}): {first}",
            r.gate.as_ref().map(gate_text).unwrap_or_default()
        ),
        Kind::Demote => format!("Demote to human-in-the-loop: {first}"),
        Kind::Hold if manipulation_blocked(r) => format!(
            "Investigate a suspected manipulation, then hold: {}",
            manipulation_text(r).unwrap_or(&first)
        ),
        Kind::Hold => match &r.hold {
            Some(h) => format!("Hold: {first} {}", h.text),
            None => format!("Hold: {first}"),
        },
        Kind::Never => format!("Never autonomous: {first}"),
    }
}

/// A hold worth a leader's attention: promotion within two periods at the current volume.
fn close_to_promotion(r: &Recommendation) -> bool {
    r.recommendation == Kind::Hold
        && r.hold
            .as_ref()
            .and_then(|h| h.periods_needed)
            .is_some_and(|p| p <= 2)
}

/// A class whose promotion a flagged manipulation window blocks, or an unowned class with
/// one: someone should look.
fn manipulation_blocked(r: &Recommendation) -> bool {
    manipulation_text(r).is_some()
}

/// The failing manipulation rule's words.
fn manipulation_text(r: &Recommendation) -> Option<&String> {
    r.rules
        .iter()
        .find(|x| x.id == "manipulation" && x.outcome == RuleOutcome::Fail)
        .map(|x| &x.text)
}

fn shares(cell: &Cell) -> Vec<f64> {
    let n = cell.n_decisions();
    if n == 0 {
        return Vec::new();
    }
    cell.fine.iter().map(|b| b.n as f64 / n as f64).collect()
}

fn class_section(c: &Computed, cl: &ClassResult) -> ClassSection {
    let a = &c.analysis;
    let g = c.granularity;
    let r = &cl.recommendation;
    let ev = &r.evidence;
    let t = &cl.thresholds;
    let agreement = a
        .agreement
        .iter()
        .filter(|x| x.action_class == cl.action_class)
        .map(|x| AgreementPoint {
            period: period_label(g, x.period),
            n_reviewed: x.n_reviewed,
            agreement: x.agreement,
            low: x.wilson_low,
            high: x.wilson_high,
        })
        .collect();
    let reliability = cl
        .bins
        .iter()
        .map(|b| ReliabilityBin {
            lower: b.lower,
            upper: b.upper,
            n: b.n,
            mean_confidence: b.mean_confidence,
            observed: b.observed_agreement,
        })
        .collect();
    // The curve of the recommended scope, else of the widest allowed one.
    let scope = cl.selected_gate.as_ref().or_else(|| {
        cl.gates.iter().rev().find(|s| {
            s.max_criticality <= t.gate_max_criticality
                && (!s.privileged_allowed || t.gate_allow_privileged)
        })
    });
    let risk_coverage = scope
        .map(|s| {
            s.curve
                .iter()
                .map(|p| RiskCoveragePoint {
                    threshold: p.threshold,
                    coverage: p.coverage,
                    risk: p.risk,
                    certified: p.certified,
                })
                .collect()
        })
        .unwrap_or_default();
    let drift_row = a
        .drift
        .iter()
        .find(|d| d.action_class == cl.action_class && d.period == a.evaluated);
    let stats = &c.aggregated.stats;
    let current = stats.total(|k| k.action_class == cl.action_class && k.period == a.evaluated);
    let baseline = drift_row
        .map(|d| {
            stats.total(|k| {
                k.action_class == cl.action_class && d.baseline_periods.contains(&k.period)
            })
        })
        .unwrap_or_default();
    let mut key_numbers = vec![
        (
            "Model version (evidence)".to_string(),
            ev.current_version.clone().unwrap_or_else(|| "n/a".into()),
        ),
        (
            "Evidence window".to_string(),
            date_range(
                g,
                ev.evidence_periods.first().map_or("", String::as_str),
                ev.evidence_periods.last().map_or("", String::as_str),
            ),
        ),
        (
            "Reviewed decisions".to_string(),
            format!("{} of {}", ev.n_reviewed, ev.n_decisions),
        ),
        (
            "Agreement (Wilson interval)".to_string(),
            format!(
                "{} ({} – {})",
                opt_pct(ev.agreement),
                opt_pct(ev.wilson_low),
                opt_pct(ev.wilson_high)
            ),
        ),
        (
            "Anytime-valid lower bound".to_string(),
            opt_pct(ev.anytime_lower),
        ),
        ("Target agreement".to_string(), pct(t.target_agreement)),
        (
            "Calibration error (ECE)".to_string(),
            ev.ece
                .map(|x| format!("{x:.4} (limit {:.3})", t.max_ece))
                .unwrap_or_else(|| "n/a".into()),
        ),
        (
            "Confidence drift (PSI, latest period)".to_string(),
            ev.psi_latest
                .map(|x| format!("{x:.3} (limit {:.2})", t.max_psi))
                .unwrap_or_else(|| "n/a".into()),
        ),
    ];
    // The drift rules look at every period of the evidence window, not only the latest.
    if !ev.psi_flagged_periods.is_empty() {
        key_numbers.push((
            "Confidence drift flagged (evidence window)".to_string(),
            ev.psi_flagged_periods
                .iter()
                .map(|f| format!("{}: PSI {:.3}", f.period, f.psi))
                .collect::<Vec<_>>()
                .join("; "),
        ));
    }
    if !ev.agreement_drops.is_empty() {
        key_numbers.push((
            "Agreement drop (evidence window)".to_string(),
            ev.agreement_drops
                .iter()
                .map(|d| {
                    format!(
                        "{}: {} against {} in its baseline",
                        d.period,
                        pct(d.agreement),
                        pct(d.baseline)
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
        ));
    }
    if ev.n_executed > 0 {
        key_numbers.push((
            "Autonomous actions reversed".to_string(),
            format!(
                "{} of {} ({})",
                ev.n_executed_reversed,
                ev.n_executed,
                pct(ev.n_executed_reversed as f64 / ev.n_executed as f64)
            ),
        ));
    }
    ClassSection {
        action_class: cl.action_class.clone(),
        owner: r.owner.clone(),
        tier: r.tier.clone(),
        current_mode: r.current_mode.clone(),
        recommendation: r.recommendation.as_str().to_string(),
        gate: r.gate.as_ref().map(gate_text),
        reasons: r.reasons.clone(),
        hold: r.hold.as_ref().map(|h| h.text.clone()),
        key_numbers,
        target: t.target_agreement,
        agreement,
        reliability,
        risk_coverage,
        max_risk: 1.0 - t.target_agreement,
        gate_threshold: r.gate.as_ref().map(|g| g.min_confidence),
        no_gate: no_gate_text(r),
        confidence_current: shares(&current),
        confidence_baseline: shares(&baseline),
        psi: drift_row.and_then(|d| d.psi),
    }
}

/// The gate rule's words where it did not apply (the whole class qualifies, or too few
/// reviewed decisions to consider one), so that the risk–coverage chart says what the
/// recommendation says; for a class already running without approval, which no gate rule
/// looks at, that; otherwise "no gate recommended".
fn no_gate_text(r: &Recommendation) -> String {
    let gate = r.rules.iter().find(|rule| rule.id == "gate");
    match gate {
        Some(rule) if rule.outcome == RuleOutcome::NotApplicable => rule.text.clone(),
        None if Mode::parse(&r.current_mode) == Some(Mode::Hotl) => {
            "no gate considered: the class already runs without prior approval".to_string()
        }
        _ => "no gate recommended".to_string(),
    }
}

fn rank(k: Kind) -> u8 {
    match k {
        Kind::Demote => 0,
        Kind::Promote => 1,
        Kind::PromoteGated => 2,
        Kind::Hold => 3,
        Kind::Never => 4,
    }
}

/// Share of decisions executed without prior approval, per period (those `keep` accepts) and
/// impact tier (`unowned` for classes the policy does not name).
pub fn autonomy_points(
    a: &crate::analysis::Analysis,
    g: Granularity,
    keep: impl Fn(Period) -> bool,
) -> Vec<AutonomyPoint> {
    let tier_of: BTreeMap<&str, String> = a
        .classes
        .iter()
        .map(|cl| {
            (
                cl.action_class.as_str(),
                cl.recommendation
                    .tier
                    .clone()
                    .unwrap_or_else(|| "unowned".into()),
            )
        })
        .collect();
    let mut by_tier: BTreeMap<(Period, String), (u64, u64)> = BTreeMap::new();
    for r in a.agreement.iter().filter(|r| keep(r.period)) {
        let tier = tier_of
            .get(r.action_class.as_str())
            .cloned()
            .unwrap_or_default();
        let e = by_tier.entry((r.period, tier)).or_default();
        e.0 += r.n_executed;
        e.1 += r.n_decisions;
    }
    by_tier
        .into_iter()
        .filter(|(_, (_, n))| *n > 0)
        .map(|((p, tier), (x, n))| AutonomyPoint {
            period: period_label(g, p),
            tier,
            share: x as f64 / n as f64,
        })
        .collect()
}

/// The monthly readiness report's model.
pub fn report_model(c: &Computed, run_id: &str) -> ReportModel {
    let a = &c.analysis;
    let g = c.granularity;
    let counts = &c.counts;
    let mut rejects_by_reason = Vec::new();
    for (table, reasons) in &counts.rejected_by_reason {
        for (reason, n) in reasons {
            rejects_by_reason.push((table.clone(), reason.clone(), *n));
        }
    }
    let all = c.aggregated.stats.total(|_| true);
    let mut unowned_classes: Vec<String> = a
        .classes
        .iter()
        .filter(|cl| cl.settings.is_none())
        .map(|cl| cl.action_class.clone())
        .collect();
    if unowned_classes.len() > MAX_LISTED {
        let more = unowned_classes.len() - MAX_LISTED;
        unowned_classes.truncate(MAX_LISTED);
        unowned_classes.push(format!(
            "… and {more} more (metrics/evidence.parquet lists every class)"
        ));
    }

    let mut decision_classes: Vec<&ClassResult> = a
        .classes
        .iter()
        .filter(|cl| {
            let k = cl.recommendation.recommendation;
            matches!(k, Kind::Promote | Kind::PromoteGated | Kind::Demote)
                || close_to_promotion(&cl.recommendation)
                || manipulation_blocked(&cl.recommendation)
        })
        .collect();
    decision_classes.sort_by(|x, y| {
        rank(x.recommendation.recommendation)
            .cmp(&rank(y.recommendation.recommendation))
            .then(x.action_class.cmp(&y.action_class))
    });
    let decisions = decision_classes
        .iter()
        .map(|cl| DecisionItem {
            action_class: cl.action_class.clone(),
            owner: cl.recommendation.owner.clone(),
            recommendation: cl.recommendation.recommendation.as_str().to_string(),
            headline: headline(&cl.recommendation),
        })
        .collect();

    let shown = shown_classes(a);
    let mut ordered: Vec<&ClassResult> = a
        .classes
        .iter()
        .filter(|cl| shown.contains(cl.action_class.as_str()))
        .collect();
    ordered.sort_by(|x, y| {
        rank(x.recommendation.recommendation)
            .cmp(&rank(y.recommendation.recommendation))
            .then(x.action_class.cmp(&y.action_class))
    });
    let classes = ordered.iter().map(|cl| class_section(c, cl)).collect();

    let periods: Vec<String> = a.periods.iter().map(|p| period_label(g, *p)).collect();
    let mut rows_by_class: BTreeMap<&str, Vec<&crate::analysis::AgreementRow>> = BTreeMap::new();
    for r in &a.agreement {
        rows_by_class
            .entry(r.action_class.as_str())
            .or_default()
            .push(r);
    }
    let matrix = a
        .classes
        .iter()
        .filter(|cl| shown.contains(cl.action_class.as_str()))
        .map(|cl| {
            let mut cells = vec![None; a.periods.len()];
            let mut n = vec![0; a.periods.len()];
            for row in rows_by_class
                .get(cl.action_class.as_str())
                .into_iter()
                .flatten()
            {
                if let Some(i) = a.periods.iter().position(|p| *p == row.period) {
                    cells[i] = row.agreement;
                    n[i] = row.n_reviewed;
                }
            }
            MatrixRow {
                action_class: cl.action_class.clone(),
                target: cl.thresholds.target_agreement,
                cells,
                n,
            }
        })
        .collect();

    let autonomy = autonomy_points(a, g, |_| true);

    // The manipulation timeline: classes with a flagged day, else the watched classes shown
    // in the report; at most six panels.
    let flagged: std::collections::BTreeSet<&str> = a
        .manipulation
        .iter()
        .filter(|m| m.assessment.flagged)
        .map(|m| m.action_class.as_str())
        .collect();
    let timeline: std::collections::BTreeSet<&str> = if flagged.is_empty() {
        a.manipulation
            .iter()
            .map(|m| m.action_class.as_str())
            .filter(|c| shown.contains(c))
            .collect()
    } else {
        flagged
    }
    .into_iter()
    .take(6)
    .collect();

    ReportModel {
        title: "Autonomy readiness review".into(),
        period_label: period_label(g, a.evaluated),
        engine_version: env!("CARGO_PKG_VERSION").into(),
        run_id: run_id.into(),
        policy_path: c.policy.path.clone(),
        policy_hash: c.policy.sha256.clone(),
        inputs: c
            .inputs
            .iter()
            .map(|f| InputFile {
                table: f.table.as_str().into(),
                path: f.path.clone(),
                sha256: f.sha256.clone(),
                rows: f.rows,
            })
            .collect(),
        quality: DataQuality {
            decisions_read: counts.decisions_read,
            decisions_rejected: counts.decisions_rejected,
            verdicts_read: counts.verdicts_read,
            verdicts_rejected: counts.verdicts_rejected,
            rejects_by_reason,
            timeouts: all.n_timeout,
            unreviewed: all.n_unreviewed,
            unowned_classes,
            source: {
                use crate::ingest::Table;
                let stats = c.inputs.iter().any(|f| f.table == Table::Stats);
                let raw = c.inputs.iter().any(|f| f.table != Table::Stats);
                match (raw, stats) {
                    (_, false) => RowSource::Raw,
                    (false, true) => RowSource::Statistics,
                    (true, true) => RowSource::RawAndStatistics,
                }
            },
        },
        decisions,
        classes,
        periods,
        matrix,
        manipulation: a
            .manipulation
            .iter()
            .filter(|m| timeline.contains(m.action_class.as_str()))
            .map(|m| ManipulationDay {
                action_class: m.action_class.clone(),
                day: Period {
                    start: m.assessment.day,
                }
                .date_string(),
                volume: m.assessment.volume,
                baseline: m.assessment.baseline_mean.unwrap_or(f64::NAN),
                flagged: m.assessment.flagged,
            })
            .collect(),
        autonomy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use readiness_metrics::period::parse_date;

    fn day(s: &str) -> Period {
        Period {
            start: parse_date(s).unwrap(),
        }
    }

    #[test]
    fn periods_are_labelled_as_periods() {
        let m = Granularity::Month;
        assert_eq!(
            period_range(m, day("2025-10-01"), day("2025-12-01")),
            "2025-10 to 2025-12"
        );
        assert_eq!(
            period_range(m, day("2025-12-01"), day("2025-12-01")),
            "2025-12"
        );
        let q = Granularity::Quarter;
        assert_eq!(
            period_range(q, day("2025-01-01"), day("2025-10-01")),
            "2025-Q1 to 2025-Q4"
        );
        // ISO weeks: the week holding 2025-10-06 (a Monday) is 2025-W41; 2024-12-30 starts
        // 2025-W01 (its Thursday is in 2025); 2021-01-03 (a Sunday) is in 2020-W53.
        let w = Granularity::Week;
        assert_eq!(period_label(w, day("2025-10-06")), "2025-W41");
        assert_eq!(period_label(w, day("2024-12-30")), "2025-W01");
        assert_eq!(period_label(w, day("2021-01-03")), "2020-W53");
        assert_eq!(period_label(w, day("2026-12-28")), "2026-W53");
        assert_eq!(
            date_range(w, "2025-09-22", "2025-10-06"),
            "2025-W39 to 2025-W41"
        );
        assert_eq!(date_range(m, "n/a", "n/a"), "n/a");
    }
}
