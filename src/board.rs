//! The quarterly board report's model: quarter totals selected from the monthly results of the
//! pipeline, and plain sentences for what went wrong and the top risks. Every number comes from
//! the earlier stages; this module picks, sums counts and words them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use readiness_governance::recommend::{Kind, RuleOutcome};
use readiness_governance::Mode;
use readiness_metrics::{Granularity, Period};
use readiness_report::model::BoardModel;

use crate::output::RunDir;
use crate::pipeline::{compute, run_id, Computed, InputConfig, Passes, Progress, RunError};

/// What `readiness board` needs.
#[derive(Clone, Debug)]
pub struct BoardConfig {
    pub input: InputConfig,
    /// `2025Q3` (or `2025-Q3`); `None` = the latest complete quarter in the data.
    pub quarter: Option<String>,
    pub out: PathBuf,
    pub quiet: bool,
}

/// `2025-Q3` for the quarter starting at `p`.
pub fn quarter_label(p: Period) -> String {
    crate::present::period_label(Granularity::Quarter, p)
}

/// Parses `2025Q3`, `2025-Q3` or `2025q3` into the quarter's first day.
pub fn parse_quarter(s: &str) -> Option<Period> {
    let s = s.trim().to_ascii_uppercase().replace('-', "");
    let (y, q) = s.split_once('Q')?;
    let y: i32 = y.parse().ok()?;
    let q: u32 = q.parse().ok()?;
    if !(1..=4).contains(&q) || !(1970..=2100).contains(&y) {
        return None;
    }
    Some(Period {
        start: readiness_metrics::period::days_from_civil(y, 3 * (q - 1) + 1, 1),
    })
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

/// The demotion triggers that fired for a class, in words for the board (POLICY.md's demotion
/// triggers, in their order).
fn demotion_words(cl: &crate::analysis::ClassResult) -> Vec<String> {
    let r = &cl.recommendation;
    let ev = &r.evidence;
    let failed = |id: &str| {
        r.rules
            .iter()
            .any(|x| x.id == id && x.outcome == RuleOutcome::Fail)
    };
    let periods = |ps: Vec<&str>| ps.join(", ");
    let mut words = Vec::new();
    if failed("manipulation") {
        words
            .push("a suspected attempt to steer it was flagged in its recent activity".to_string());
    }
    if failed("drift.psi") {
        let when = periods(
            ev.psi_flagged_periods
                .iter()
                .map(|f| f.period.as_str())
                .collect(),
        );
        words.push(if when.is_empty() {
            "how sure it is of its decisions changed markedly in recent periods".to_string()
        } else {
            format!("how sure it is of its decisions changed markedly in {when}")
        });
    }
    if failed("drift.agreement") {
        let drops: Vec<String> = ev
            .agreement_drops
            .iter()
            .map(|d| {
                format!(
                    "in {} ({} of its reviewed actions, against {} before)",
                    d.period,
                    pct(d.agreement),
                    pct(d.baseline)
                )
            })
            .collect();
        words.push(if drops.is_empty() {
            "analysts agreed with it markedly less often than before".to_string()
        } else {
            format!(
                "analysts agreed with it markedly less often {}",
                drops.join(" and ")
            )
        });
    }
    if failed("version_regression") {
        if let Some(v) = &ev.version_regression {
            words.push(format!(
                "analysts agree less often with its new AI model version ({}: {} of reviewed actions, against {} for {})",
                v.current_version,
                pct(v.current_agreement),
                pct(v.previous_agreement),
                v.previous_version
            ));
        }
    }
    if failed("reversal_rate") && ev.n_executed > 0 {
        words.push(format!(
            "{} of the actions it took on its own were later reversed, against at most {} allowed",
            pct(ev.n_executed_reversed as f64 / ev.n_executed as f64),
            pct(cl.thresholds.max_reversal_rate)
        ));
    }
    if words.is_empty() {
        words.push("the evidence no longer supports its autonomy".to_string());
    }
    words
}

/// Builds the board model for `quarter` from a monthly (or weekly) analysis.
pub fn board_model(c: &Computed, quarter: Period, run_id: &str) -> BoardModel {
    let a = &c.analysis;
    let g = c.granularity;
    let q = Granularity::Quarter;
    let in_quarter = |p: Period| q.period_of(p.start) == quarter;
    let previous = q.shift(quarter, -1);
    let in_previous = |p: Period| q.period_of(p.start) == previous;
    let stats = &c.aggregated.stats;
    let now = stats.total(|k| in_quarter(k.period));
    let before = stats.total(|k| in_previous(k.period));
    let share = |x: u64, n: u64| (n > 0).then(|| x as f64 / n as f64);

    // Classes by tier and current mode (as the policy states them).
    let mut by_tier: BTreeMap<u8, (String, u64, u64)> = BTreeMap::new();
    for cl in &a.classes {
        let Some(s) = &cl.settings else { continue };
        let e = by_tier
            .entry(s.tier as u8)
            .or_insert_with(|| (s.tier.as_str().to_string(), 0, 0));
        match s.mode {
            Mode::Hitl => e.1 += 1,
            Mode::Hotl => e.2 += 1,
        }
    }

    // Manipulation windows in the quarter, one sentence each.
    let mut windows: BTreeMap<(String, u32), Vec<&crate::analysis::ManipulationRow>> =
        BTreeMap::new();
    for m in a.manipulation.iter().filter(|m| m.assessment.flagged) {
        if in_quarter(g.period_of(m.assessment.day)) {
            windows
                .entry((m.action_class.clone(), m.assessment.window.unwrap_or(0)))
                .or_default()
                .push(m);
        }
    }
    let day = |d: i32| Period { start: d }.date_string();
    let manipulation_signals: Vec<String> = windows
        .iter()
        .map(|((class, _), days)| {
            let volume: u64 = days.iter().map(|d| d.assessment.volume).sum();
            let usual: f64 = days
                .iter()
                .map(|d| d.assessment.baseline_mean.unwrap_or(0.0))
                .sum();
            let mut what = Vec::new();
            if days.iter().any(|d| d.assessment.concentration) {
                what.push("concentrated on a few targets");
            }
            if days.iter().any(|d| d.assessment.privilege_shift) {
                what.push("aimed at privileged or critical assets more than usual");
            }
            if days.iter().any(|d| d.assessment.disagreement) {
                what.push("often rejected by analysts");
            }
            format!(
                "{class}: from {} to {}, {} actions where about {:.0} were usual, {}.",
                day(days[0].assessment.day),
                day(days[days.len() - 1].assessment.day),
                volume,
                usual,
                what.join(", ")
            )
        })
        .collect();

    // Top risks, most important first.
    let mut risks = Vec::new();
    for cl in &a.classes {
        let r = &cl.recommendation;
        if r.recommendation == Kind::Demote {
            risks.push(format!(
                "{} runs on its own but should go back to human approval: {}.",
                cl.action_class,
                demotion_words(cl).join("; ")
            ));
        }
    }
    if !windows.is_empty() {
        risks.push(format!(
            "Suspected attempts to steer the AI into acting against the organisation's own assets ({} this quarter); while such a window is in a class's recent evidence, the class is not promoted.",
            windows.len()
        ));
    }
    let limit = c.policy.policy.defaults().max_invented_share;
    let mut invented: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    let active: std::collections::BTreeSet<&str> = stats
        .cells
        .keys()
        .filter(|k| in_quarter(k.period))
        .map(|k| k.model_version.as_str())
        .collect();
    for r in a
        .reasoning
        .iter()
        .filter(|r| active.contains(r.model_version.as_str()))
    {
        let e = invented.entry(r.model_version.as_str()).or_default();
        e.0 += r.counts.n_unknown;
        e.1 += r.counts.n_decisions;
    }
    for (version, (k, n)) in invented {
        if n > 0 && k as f64 / n as f64 > limit {
            risks.push(format!(
                "Model version {version} cites attack techniques that do not exist in {} of its decisions: its explanations cannot be fully trusted.",
                pct(k as f64 / n as f64)
            ));
        }
    }
    let run = c.policy.policy.run();
    let mut stampers = 0;
    let mut per_analyst: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for x in c.signals.analysts.iter().filter(|x| in_quarter(x.period)) {
        let e = per_analyst.entry(x.analyst_id.as_str()).or_default();
        e.0 += x.n_fast_approvals;
        e.1 += x.n_approvals;
    }
    for (fast, all) in per_analyst.values() {
        if *all >= 20 && *fast as f64 / *all as f64 > 0.5 {
            stampers += 1;
        }
    }
    if stampers > 0 {
        risks.push(format!(
            "{stampers} analyst(s) approved most reviews in under {:.0} seconds: human oversight of those reviews may be in name only.",
            run.rubber_stamp_seconds
        ));
    }
    let unowned: Vec<&str> = a
        .classes
        .iter()
        .filter(|cl| cl.settings.is_none())
        .map(|cl| cl.action_class.as_str())
        .collect();
    if !unowned.is_empty() {
        risks.push(format!(
            "{} kind(s) of AI action have no accountable owner in the policy: {}.",
            unowned.len(),
            unowned.join(", ")
        ));
    }

    // Autonomy over time by tier, up to the quarter's end.
    let autonomy = crate::present::autonomy_points(a, g, |p| q.period_of(p.start) <= quarter);

    BoardModel {
        quarter: quarter_label(quarter),
        previous_quarter: (before.n_decisions() > 0).then(|| quarter_label(previous)),
        autonomy_share: share(now.n_executed, now.n_decisions()).unwrap_or(0.0),
        autonomy_share_previous: share(before.n_executed, before.n_decisions()),
        classes_by_mode: by_tier.into_values().collect(),
        reversed_actions: now.n_executed_reversed,
        autonomous_actions: now.n_executed,
        manipulation_signals,
        hours_saved: now.n_executed as f64 * run.review_minutes / 60.0,
        top_risks: risks,
        risks_as_of: (q.period_of(a.evaluated.start) > quarter)
            .then(|| crate::present::period_label(g, a.evaluated)),
        autonomy,
        engine_version: env!("CARGO_PKG_VERSION").into(),
        run_id: run_id.into(),
    }
}

/// The latest quarter whose every month (or week) has data.
fn latest_complete_quarter(c: &Computed) -> Option<Period> {
    let a = &c.analysis;
    let q = Granularity::Quarter;
    let mut quarters: Vec<Period> = a.periods.iter().map(|p| q.period_of(p.start)).collect();
    quarters.dedup();
    quarters.into_iter().rev().find(|qs| {
        // Complete when every period of the quarter is in the data.
        let next = q.shift(*qs, 1);
        let mut p = c.granularity.period_of(qs.start);
        let mut all = true;
        while p.start < next.start {
            all &= a.periods.contains(&p) && c.analysis.agreement.iter().any(|r| r.period == p);
            p = c.granularity.shift(p, 1);
        }
        all
    })
}

/// `readiness board`: writes `board.html`, `board.md`, `board.json` and the chart into `out`.
pub fn run_board(cfg: &BoardConfig) -> Result<(PathBuf, String), RunError> {
    let progress = Progress::new(cfg.quiet);
    let asked = match &cfg.quarter {
        Some(s) => Some(parse_quarter(s).ok_or_else(|| {
            RunError::Usage(format!("--quarter {s}: expected a quarter such as 2025Q3"))
        })?),
        None => None,
    };
    crate::output::refuse_foreign(&cfg.out, crate::output::OutputKind::Board)?;
    let c = compute(&cfg.input, progress, Passes { oversight: true }, |_| Ok(()))?;
    crate::pipeline::warn(&c.warnings());
    let quarter = match asked {
        Some(q) => q,
        None => latest_complete_quarter(&c)
            .ok_or_else(|| RunError::Other("no complete quarter in the data".into()))?,
    };
    if !c
        .analysis
        .periods
        .iter()
        .any(|p| Granularity::Quarter.period_of(p.start) == quarter)
    {
        return Err(RunError::Other(format!(
            "--quarter {}: no decisions in that quarter (the data covers {})",
            quarter_label(quarter),
            crate::present::period_range(
                c.granularity,
                c.analysis
                    .periods
                    .first()
                    .copied()
                    .unwrap_or(c.analysis.evaluated),
                c.analysis.evaluated
            )
        )));
    }
    let id = run_id(&c.inputs, &c.policy.sha256, c.granularity);
    let model = board_model(&c, quarter, &id);
    let dir = RunDir::create(&cfg.out, crate::output::OutputKind::Board)?;
    readiness_report::render_board(&model, dir.root())?;
    dir.json("board.json", &model)?;
    let out = dir.commit()?;
    Ok((out, model.quarter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarters_parse_and_label() {
        let p = parse_quarter("2025Q3").unwrap();
        assert_eq!(p.date_string(), "2025-07-01");
        assert_eq!(quarter_label(p), "2025-Q3");
        assert_eq!(
            parse_quarter("2025-q4").unwrap().date_string(),
            "2025-10-01"
        );
        assert!(parse_quarter("2025Q5").is_none());
        assert!(parse_quarter("Q3").is_none());
        assert!(parse_quarter("").is_none());
    }
}
