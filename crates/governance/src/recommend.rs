//! The rules that turn a class's evidence into a recommendation: promote, promote within a gate,
//! hold, demote, or never.
//!
//! The engine recommends; people decide (DESIGN.md principle 2). Every [`Recommendation`] carries
//! the evidence it rests on, every rule evaluated ([`Rule`], in evaluation order, for `explain`)
//! and the reasons in words with their numbers, binding constraint first.
//!
//! Decision table (documented for users in `POLICY.md`):
//!
//! | class | rules, in order | recommendation |
//! |---|---|---|
//! | not in the policy | `unowned`, `manipulation` (reported, not deciding) | hold, never promoted |
//! | ceiling `hitl` | `ceiling` | never, whatever the numbers |
//! | mode `hotl` | `manipulation`, `drift.psi`, `drift.agreement`, `version_regression`, `reversal_rate` | demote if any fails, else hold (stays `hotl`) |
//! | mode `hitl`, ceiling `hotl` | blockers `manipulation`, `drift.psi`, `drift.agreement`, `version_regression`, `calibration.ece`, `calibration.test`, `reasoning.invented`; then `evidence.min_reviewed`, `evidence.anytime`, `gate` | hold if a blocker fails; hold if fewer than `min_reviewed`; promote if the anytime-valid bound crosses the target; promote_gated if a certified gate lies within the policy's gate scope and has `min_reviewed` reviews; else hold |
//!
//! A hold for want of evidence carries a [`HoldEstimate`]: reviews needed =
//! max(`min_reviewed`, `reviews_to_promotion`) − `n_reviewed`, periods needed =
//! ⌈reviews needed / `reviews_per_period`⌉.

use readiness_metrics::Criticality;
use serde::{Deserialize, Serialize};

use crate::policy::{EffectiveSettings, Mode};

/// A new model version compared with its predecessor (agreement, FDR-adjusted test).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VersionRegression {
    /// The predecessor version.
    pub previous_version: String,
    /// The current version.
    pub current_version: String,
    /// Agreement of the predecessor.
    pub previous_agreement: f64,
    /// Agreement of the current version.
    pub current_agreement: f64,
    /// Reviewed decisions of the predecessor the comparison counts.
    #[serde(default)]
    pub previous_reviewed: u64,
    /// Reviewed decisions of the current version the comparison counts.
    #[serde(default)]
    pub current_reviewed: u64,
    /// Periods left out of the comparison because they hold a flagged manipulation window (as
    /// the reports print them), where either version had decisions.
    #[serde(default)]
    pub excluded_periods: Vec<String>,
    /// The same periods by their first day (`YYYY-MM-DD`), as the Parquet outputs name them.
    #[serde(default)]
    pub excluded_period_starts: Vec<String>,
    /// p-value of the test for a drop, FDR-adjusted across classes.
    pub p_adjusted: f64,
    /// Whether the drop is significant at the run's FDR level.
    pub flagged: bool,
}

/// A period of the evidence window whose confidence distribution drifted (`drift.psi`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PsiFlag {
    /// The period as the reports print it (`2025-10`, `2025-Q4`, `2025-W41`).
    pub period: String,
    /// Its first day (`YYYY-MM-DD`), as the Parquet outputs name it.
    #[serde(default)]
    pub period_start: String,
    /// PSI of that period against its baseline.
    pub psi: f64,
}

/// A period of the evidence window whose agreement dropped significantly against its baseline
/// (`drift.agreement`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgreementDrop {
    /// The period as the reports print it.
    pub period: String,
    /// Its first day (`YYYY-MM-DD`), as the Parquet outputs name it.
    #[serde(default)]
    pub period_start: String,
    /// Agreement in that period.
    pub agreement: f64,
    /// Agreement in its baseline.
    pub baseline: f64,
    /// p-value of the test for a drop, FDR-adjusted across classes and periods.
    pub p_adjusted: f64,
}

/// A certified gate: the scope within which a class may run on its own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gate {
    /// Most critical asset level covered.
    pub max_criticality: Criticality,
    /// Whether privileged targets are covered.
    pub privileged_allowed: bool,
    /// Lowest confidence that runs without a human.
    pub min_confidence: f64,
    /// Share of the class's decisions the gate covers, in [0, 1].
    pub coverage: f64,
    /// Reviewed decisions within the scope.
    pub n_reviewed: u64,
    /// The disagreement-rate bound certified within the scope at the class's confidence level
    /// (at most 1 − target).
    pub risk: f64,
}

/// One class's evidence, every number computed with the class's effective settings over the
/// evidence window (current model version, last `evidence_periods` periods).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassEvidence {
    /// The action class.
    pub action_class: String,
    /// Model version the evidence is for.
    pub current_version: Option<String>,
    /// Period start dates (`YYYY-MM-DD`) in the window.
    pub evidence_periods: Vec<String>,
    /// Decisions in the window.
    pub n_decisions: u64,
    /// Reviewed decisions (final verdict approve, override or reject).
    pub n_reviewed: u64,
    /// Approved decisions.
    pub n_approve: u64,
    /// n_approve / n_reviewed.
    pub agreement: Option<f64>,
    /// Wilson interval, lower end.
    pub wilson_low: Option<f64>,
    /// Wilson interval, upper end.
    pub wilson_high: Option<f64>,
    /// Anytime-valid lower confidence bound on agreement.
    pub anytime_lower: Option<f64>,
    /// E-value against H0: agreement ≤ target.
    pub e_value: Option<f64>,
    /// Whether the anytime-valid evidence shows agreement above the target.
    pub crosses_target: bool,
    /// Total reviewed decisions needed at the current agreement (`None`: unreachable).
    pub reviews_to_promotion: Option<u64>,
    /// Recent review volume per period.
    pub reviews_per_period: f64,
    /// Expected calibration error.
    pub ece: Option<f64>,
    /// Spiegelhalter calibration test p-value, FDR-adjusted.
    pub calibration_p: Option<f64>,
    /// PSI of the latest period against the baseline.
    pub psi_latest: Option<f64>,
    /// The latest (evaluated) period as the reports print it.
    #[serde(default)]
    pub latest_period: String,
    /// Its first day (`YYYY-MM-DD`).
    #[serde(default)]
    pub latest_period_start: String,
    /// Whether the confidence distribution drifted in a period of the evidence window.
    pub psi_flagged: bool,
    /// The periods of the evidence window whose drift was flagged, with their PSI.
    #[serde(default)]
    pub psi_flagged_periods: Vec<PsiFlag>,
    /// Significant agreement drop in a period of the evidence window (FDR-controlled).
    pub agreement_drift_flagged: bool,
    /// The periods of the evidence window with a significant agreement drop.
    #[serde(default)]
    pub agreement_drops: Vec<AgreementDrop>,
    /// The current version against its predecessor, when there is one.
    pub version_regression: Option<VersionRegression>,
    /// Flagged manipulation windows in the evidence window.
    pub manipulation_windows: u32,
    /// Share of decisions citing invented ATT&CK IDs.
    pub invented_share: Option<f64>,
    /// Actions executed without prior approval.
    pub n_executed: u64,
    /// Executed actions later reversed.
    pub n_executed_reversed: u64,
    /// Best certified gate, if any.
    pub gate: Option<Gate>,
}

/// The recommendation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Run the whole class on the loop (`hotl`).
    Promote,
    /// Run on the loop within the certified gate only.
    PromoteGated,
    /// Keep the current mode.
    Hold,
    /// Return to `hitl`.
    Demote,
    /// The policy's ceiling forbids autonomy.
    Never,
}

impl Kind {
    /// The output spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Promote => "promote",
            Kind::PromoteGated => "promote_gated",
            Kind::Hold => "hold",
            Kind::Demote => "demote",
            Kind::Never => "never",
        }
    }
}

/// The outcome of one rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleOutcome {
    /// The rule is satisfied.
    Pass,
    /// The rule is violated.
    Fail,
    /// The rule could not be evaluated (no data for it).
    NotApplicable,
}

/// One rule evaluated for a class.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rule {
    /// Stable identifier: `unowned`, `ceiling`, `manipulation`, `drift.psi`, `drift.agreement`,
    /// `version_regression`, `calibration.ece`, `calibration.test`, `reasoning.invented`,
    /// `reversal_rate`, `evidence.min_reviewed`, `evidence.anytime`, `gate`.
    pub id: &'static str,
    /// Pass, fail or not applicable.
    pub outcome: RuleOutcome,
    /// The rule in words with its numbers and the policy entry it applied.
    pub text: String,
}

/// How far a class held for want of evidence is from promotion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HoldEstimate {
    /// More reviewed decisions needed (`None`: unreachable at the current agreement, or unknown).
    pub reviews_needed: Option<u64>,
    /// Periods at the recent review volume (`None` when reviews are not needed-and-known or no
    /// reviews happen).
    pub periods_needed: Option<u64>,
    /// The estimate in words.
    pub text: String,
}

/// The recommendation for one class, with everything that decided it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Recommendation {
    /// The action class.
    pub action_class: String,
    /// The accountable person (`None`: unowned).
    pub owner: Option<String>,
    /// Who signs off a promotion, when named.
    pub approver: Option<String>,
    /// Impact tier (`None`: unowned).
    pub tier: Option<String>,
    /// Current mode; an unowned class is treated as `hitl`.
    pub current_mode: String,
    /// Ceiling (`None`: unowned).
    pub ceiling: Option<String>,
    /// The recommendation.
    pub recommendation: Kind,
    /// The certified gate, for `promote_gated` only.
    pub gate: Option<Gate>,
    /// The rules that decided, binding constraint first, in words.
    pub reasons: Vec<String>,
    /// Every rule evaluated, in evaluation order.
    pub rules: Vec<Rule>,
    /// For a hold for want of evidence: how far promotion is.
    pub hold: Option<HoldEstimate>,
    /// The evidence.
    pub evidence: ClassEvidence,
}

/// Applies the policy to a class's evidence. `settings` is `None` for a class the policy does
/// not own.
pub fn recommend(settings: Option<&EffectiveSettings>, ev: &ClassEvidence) -> Recommendation {
    let mut rec = Recommendation {
        action_class: ev.action_class.clone(),
        owner: None,
        approver: None,
        tier: None,
        current_mode: Mode::Hitl.as_str().to_string(),
        ceiling: None,
        recommendation: Kind::Hold,
        gate: None,
        reasons: Vec::new(),
        rules: Vec::new(),
        hold: None,
        evidence: ev.clone(),
    };
    let Some(s) = settings else {
        let text = "unowned: no policy entry, never promoted".to_string();
        rec.reasons.push(text.clone());
        if ev.n_executed > 0 {
            rec.reasons.push(format!(
                "{} actions ran without prior approval although no policy entry allows it",
                ev.n_executed
            ));
        }
        rec.rules.push(Rule {
            id: "unowned",
            outcome: RuleOutcome::Fail,
            text,
        });
        // Unowned classes are watched for manipulation (nobody has rated their impact): a
        // flagged window is reported like an owned class's, for someone to look into.
        let watch = manipulation(ev);
        if watch.outcome == RuleOutcome::Fail {
            rec.reasons.push(watch.text.clone());
        }
        rec.rules.push(watch);
        return rec;
    };
    rec.owner = Some(s.owner.clone());
    rec.approver = s.approver.clone();
    rec.tier = Some(s.tier.as_str().to_string());
    rec.current_mode = s.mode.as_str().to_string();
    rec.ceiling = Some(s.ceiling.as_str().to_string());
    rec.rules.push(Rule {
        id: "unowned",
        outcome: RuleOutcome::Pass,
        text: format!("owned by {} (policy classes.{})", s.owner, s.class),
    });

    if s.ceiling == Mode::Hitl {
        // The policy already refuses mode = "hotl" with ceiling = "hitl".
        let numbers = match ev.agreement {
            Some(a) => format!("agreement {a:.4} over {} reviewed", ev.n_reviewed),
            None => "no reviewed decisions".to_string(),
        };
        let text = format!(
            "ceiling hitl (policy classes.{}, {} tier): never autonomous, whatever the evidence ({numbers})",
            s.class,
            s.tier.as_str()
        );
        rec.rules.push(Rule {
            id: "ceiling",
            outcome: RuleOutcome::Fail,
            text: text.clone(),
        });
        rec.recommendation = Kind::Never;
        rec.reasons.push(text);
        return rec;
    }
    rec.rules.push(Rule {
        id: "ceiling",
        outcome: RuleOutcome::Pass,
        text: format!(
            "ceiling hotl (policy classes.{}): autonomy is allowed when earned",
            s.class
        ),
    });

    if s.mode == Mode::Hotl {
        let start = rec.rules.len();
        rec.rules.push(manipulation(ev));
        rec.rules.push(drift_psi(s, ev));
        rec.rules.push(drift_agreement(ev));
        rec.rules.push(version_regression(ev));
        rec.rules.push(reversal_rate(s, ev));
        let failing: Vec<String> = rec.rules[start..]
            .iter()
            .filter(|r| r.outcome == RuleOutcome::Fail)
            .map(|r| r.text.clone())
            .collect();
        if failing.is_empty() {
            rec.recommendation = Kind::Hold;
            let passing: Vec<&str> = rec.rules[start..]
                .iter()
                .filter(|r| r.outcome == RuleOutcome::Pass)
                .map(|r| r.text.as_str())
                .collect();
            rec.reasons.push(if passing.is_empty() {
                "evidence still supports autonomy: no demotion trigger fired".to_string()
            } else {
                format!("evidence still supports autonomy: {}", passing.join("; "))
            });
        } else {
            rec.recommendation = Kind::Demote;
            rec.reasons = failing;
        }
        return rec;
    }

    // mode hitl, ceiling hotl: blockers first, then the evidence.
    let start = rec.rules.len();
    rec.rules.push(manipulation(ev));
    rec.rules.push(drift_psi(s, ev));
    rec.rules.push(drift_agreement(ev));
    rec.rules.push(version_regression(ev));
    rec.rules.push(calibration_ece(s, ev));
    rec.rules.push(calibration_test(s, ev));
    rec.rules.push(invented(s, ev));
    let blocked = rec.rules[start..]
        .iter()
        .any(|r| r.outcome == RuleOutcome::Fail);

    let t = &s.thresholds;
    let enough = ev.n_reviewed >= t.min_reviewed;
    rec.rules.push(Rule {
        id: "evidence.min_reviewed",
        outcome: if enough {
            RuleOutcome::Pass
        } else {
            RuleOutcome::Fail
        },
        text: format!(
            "{} reviewed decisions {} min_reviewed {} ({})",
            ev.n_reviewed,
            if enough { "meet" } else { "are below" },
            t.min_reviewed,
            s.cite("min_reviewed")
        ),
    });
    let anytime = anytime_rule(s, ev);
    let crosses = anytime.outcome == RuleOutcome::Pass;
    let anytime_text = anytime.text.clone();
    rec.rules.push(anytime);
    let gate = gate_rule(s, ev, enough, crosses);
    let gate_passes = gate.outcome == RuleOutcome::Pass;
    let gate_text = gate.text.clone();
    rec.rules.push(gate);

    let evidence_kind = if !enough {
        Kind::Hold
    } else if crosses {
        Kind::Promote
    } else if gate_passes {
        Kind::PromoteGated
    } else {
        Kind::Hold
    };
    rec.recommendation = if blocked { Kind::Hold } else { evidence_kind };
    // Failing rules in evaluation order, binding first; then, for a promotion, the passing
    // evidence rule.
    rec.reasons = rec
        .rules
        .iter()
        .filter(|r| r.outcome == RuleOutcome::Fail)
        .map(|r| r.text.clone())
        .collect();
    match rec.recommendation {
        Kind::Promote => rec.reasons.push(anytime_text),
        Kind::PromoteGated => {
            rec.gate = ev.gate.clone();
            rec.reasons.push(gate_text);
        }
        _ => {}
    }
    if evidence_kind == Kind::Hold {
        rec.hold = Some(hold_estimate(s, ev, blocked));
    }
    rec
}

fn pass_fail(fail: bool) -> RuleOutcome {
    if fail {
        RuleOutcome::Fail
    } else {
        RuleOutcome::Pass
    }
}

/// A p-value for text: three decimals, or scientific below 0.001.
fn fmt_p(p: f64) -> String {
    if p < 0.001 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

fn manipulation(ev: &ClassEvidence) -> Rule {
    let n = ev.manipulation_windows;
    Rule {
        id: "manipulation",
        outcome: pass_fail(n > 0),
        text: if n > 0 {
            format!(
                "manipulation: {n} flagged window{} in the evidence window (volume surge, target concentration, shift to privileged or critical targets, high override share)",
                if n == 1 { "" } else { "s" }
            )
        } else {
            "no manipulation window flagged in the evidence window".to_string()
        },
    }
}

/// " (2025-12)" for the latest period, "" when the evidence does not name it.
fn latest_label(ev: &ClassEvidence) -> String {
    if ev.latest_period.is_empty() {
        String::new()
    } else {
        format!(" ({})", ev.latest_period)
    }
}

fn drift_psi(s: &EffectiveSettings, ev: &ClassEvidence) -> Rule {
    let cite = s.cite("max_psi");
    let max = s.thresholds.max_psi;
    let latest = ev
        .psi_latest
        .map(|p| format!("; latest period{} PSI {p:.3}", latest_label(ev)))
        .unwrap_or_default();
    match (ev.psi_flagged, ev.psi_latest) {
        (true, _) if !ev.psi_flagged_periods.is_empty() => {
            let periods: Vec<String> = ev
                .psi_flagged_periods
                .iter()
                .map(|f| format!("{:.3} in {}", f.psi, f.period))
                .collect();
            Rule {
                id: "drift.psi",
                outcome: RuleOutcome::Fail,
                text: format!(
                    "confidence drift flagged in the evidence window: PSI {} above max_psi {max} with a significant distribution test ({cite}){latest}",
                    periods.join(", ")
                ),
            }
        }
        (true, _) => Rule {
            id: "drift.psi",
            outcome: RuleOutcome::Fail,
            text: format!(
                "confidence drift flagged in the evidence window: PSI above max_psi {max} with a significant distribution test ({cite}){latest}"
            ),
        },
        (false, Some(p)) => Rule {
            id: "drift.psi",
            outcome: RuleOutcome::Pass,
            text: format!(
                "no confidence drift flagged in the evidence window (max_psi {max}, {cite}){latest}{}",
                // A PSI above the limit flags only with a significant distribution test (PSI is
                // noisy on small samples).
                if p > max {
                    ", above max_psi but without a significant distribution test"
                } else {
                    ""
                }
            ),
        },
        (false, None) => Rule {
            id: "drift.psi",
            outcome: RuleOutcome::NotApplicable,
            text: "no PSI for the latest period (no baseline)".to_string(),
        },
    }
}

fn drift_agreement(ev: &ClassEvidence) -> Rule {
    let drops: Vec<String> = ev
        .agreement_drops
        .iter()
        .map(|d| {
            format!(
                "{} agreement {:.4} against {:.4} in its baseline (adjusted p {})",
                d.period,
                d.agreement,
                d.baseline,
                fmt_p(d.p_adjusted)
            )
        })
        .collect();
    Rule {
        id: "drift.agreement",
        outcome: pass_fail(ev.agreement_drift_flagged),
        text: if ev.agreement_drift_flagged && !drops.is_empty() {
            format!(
                "agreement drift: significant drop against the baseline in the evidence window (FDR-controlled): {}",
                drops.join("; ")
            )
        } else if ev.agreement_drift_flagged {
            "agreement drift: significant drop against the baseline in the evidence window (FDR-controlled)".to_string()
        } else {
            "no significant agreement drop in the evidence window".to_string()
        },
    }
}

fn version_regression(ev: &ClassEvidence) -> Rule {
    match &ev.version_regression {
        None => Rule {
            id: "version_regression",
            outcome: RuleOutcome::NotApplicable,
            text: "no predecessor model version to compare with".to_string(),
        },
        Some(v) => {
            // The comparison spans each version's whole history, not the evidence window, and
            // leaves out the periods flagged for manipulation: say so, since the evidence
            // window's agreement of the same version can differ widely.
            let left_out = match v.excluded_periods.as_slice() {
                [] => String::new(),
                [p] => format!(", leaving out the period {p} flagged for manipulation"),
                ps => format!(
                    ", leaving out the periods {} flagged for manipulation",
                    ps.join(", ")
                ),
            };
            Rule {
                id: "version_regression",
                outcome: pass_fail(v.flagged),
                text: format!(
                    "{}model version {} agreement {:.4} over {} reviewed decisions against {:.4} over {} for {} (each version's whole history{left_out}; adjusted p {})",
                    if v.flagged {
                        "version regression: "
                    } else {
                        "no version regression: "
                    },
                    v.current_version,
                    v.current_agreement,
                    v.current_reviewed,
                    v.previous_agreement,
                    v.previous_reviewed,
                    v.previous_version,
                    fmt_p(v.p_adjusted)
                ),
            }
        }
    }
}

fn reversal_rate(s: &EffectiveSettings, ev: &ClassEvidence) -> Rule {
    let max = s.thresholds.max_reversal_rate;
    let cite = s.cite("max_reversal_rate");
    if ev.n_executed == 0 {
        return Rule {
            id: "reversal_rate",
            outcome: RuleOutcome::NotApplicable,
            text: "no executed actions in the evidence window".to_string(),
        };
    }
    let rate = ev.n_executed_reversed as f64 / ev.n_executed as f64;
    let fail = rate > max;
    Rule {
        id: "reversal_rate",
        outcome: pass_fail(fail),
        text: format!(
            "reversal rate {rate:.3} ({} of {} executed) {} max_reversal_rate {max} ({cite})",
            ev.n_executed_reversed,
            ev.n_executed,
            if fail { "exceeds" } else { "within" }
        ),
    }
}

fn calibration_ece(s: &EffectiveSettings, ev: &ClassEvidence) -> Rule {
    let max = s.thresholds.max_ece;
    let cite = s.cite("max_ece");
    match ev.ece {
        None => Rule {
            id: "calibration.ece",
            outcome: RuleOutcome::NotApplicable,
            text: "no ECE (no reviewed decisions)".to_string(),
        },
        Some(e) => Rule {
            id: "calibration.ece",
            outcome: pass_fail(e > max),
            text: format!(
                "ECE {e:.3} {} max_ece {max} ({cite})",
                if e > max { "exceeds" } else { "within" }
            ),
        },
    }
}

fn calibration_test(s: &EffectiveSettings, ev: &ClassEvidence) -> Rule {
    let alpha = s.thresholds.calibration_alpha;
    let cite = s.cite("calibration_alpha");
    match ev.calibration_p {
        None => Rule {
            id: "calibration.test",
            outcome: RuleOutcome::NotApplicable,
            text: "no calibration test (no reviewed decisions)".to_string(),
        },
        Some(p) if p < alpha => Rule {
            id: "calibration.test",
            outcome: RuleOutcome::Fail,
            text: format!(
                "miscalibrated: Spiegelhalter test p {} (FDR-adjusted) below calibration_alpha {alpha} ({cite})",
                fmt_p(p)
            ),
        },
        Some(p) => Rule {
            id: "calibration.test",
            outcome: RuleOutcome::Pass,
            text: format!(
                "Spiegelhalter test p {} (FDR-adjusted) not below calibration_alpha {alpha} ({cite})",
                fmt_p(p)
            ),
        },
    }
}

fn invented(s: &EffectiveSettings, ev: &ClassEvidence) -> Rule {
    let max = s.thresholds.max_invented_share;
    let cite = s.cite("max_invented_share");
    match ev.invented_share {
        None => Rule {
            id: "reasoning.invented",
            outcome: RuleOutcome::NotApplicable,
            text: "no cited ATT&CK technique IDs to check".to_string(),
        },
        Some(x) => Rule {
            id: "reasoning.invented",
            outcome: pass_fail(x > max),
            text: format!(
                "{:.1}% of decisions cite invented ATT&CK IDs, {} max_invented_share {max} ({cite})",
                100.0 * x,
                if x > max { "above" } else { "within" }
            ),
        },
    }
}

fn anytime_rule(s: &EffectiveSettings, ev: &ClassEvidence) -> Rule {
    let t = &s.thresholds;
    let target = t.target_agreement;
    let cite = s.cite("target_agreement");
    let bound = ev
        .anytime_lower
        .map(|b| format!("anytime-valid lower bound {b:.4}"));
    let e = ev
        .e_value
        .map(|e| format!(", e-value {e:.3}"))
        .unwrap_or_default();
    if ev.crosses_target {
        return Rule {
            id: "evidence.anytime",
            outcome: RuleOutcome::Pass,
            text: format!(
                "{} at confidence {} is above target {target} ({cite}){e}; agreement {} over {} reviewed",
                bound.unwrap_or_else(|| "anytime-valid evidence".to_string()),
                t.confidence_level,
                ev.agreement.map_or("n/a".to_string(), |a| format!("{a:.4}")),
                ev.n_reviewed
            ),
        };
    }
    let text = match ev.agreement {
        None => {
            format!("no reviewed decisions: cannot show agreement above target {target} ({cite})")
        }
        Some(a) => format!(
            "agreement {a:.4}{} has not crossed target {target} at confidence {} ({cite}){e}",
            bound.map(|b| format!(" ({b})")).unwrap_or_default(),
            t.confidence_level
        ),
    };
    Rule {
        id: "evidence.anytime",
        outcome: RuleOutcome::Fail,
        text,
    }
}

fn scope_words(max: Criticality, privileged: bool) -> String {
    let levels: Vec<&str> = Criticality::ALL
        .iter()
        .filter(|c| **c <= max)
        .map(|c| c.as_str())
        .collect();
    format!(
        "{} assets, {}",
        if max == Criticality::Critical {
            "all".to_string()
        } else {
            levels.join("/")
        },
        if privileged {
            "privileged included"
        } else {
            "non-privileged"
        }
    )
}

fn gate_rule(s: &EffectiveSettings, ev: &ClassEvidence, enough: bool, crosses: bool) -> Rule {
    let t = &s.thresholds;
    let na = |text: String| Rule {
        id: "gate",
        outcome: RuleOutcome::NotApplicable,
        text,
    };
    if !enough {
        return na("no gate considered below min_reviewed".to_string());
    }
    if crosses {
        return na("no gate needed: the whole class qualifies".to_string());
    }
    let Some(g) = &ev.gate else {
        return Rule {
            id: "gate",
            outcome: RuleOutcome::Fail,
            text: "no gate certified at the target for any scope".to_string(),
        };
    };
    let scope = format!(
        "{}, confidence ≥ {}",
        scope_words(g.max_criticality, g.privileged_allowed),
        g.min_confidence
    );
    let within = g.max_criticality <= t.gate_max_criticality
        && (t.gate_allow_privileged || !g.privileged_allowed);
    if !within {
        return Rule {
            id: "gate",
            outcome: RuleOutcome::Fail,
            text: format!(
                "certified gate ({scope}) exceeds the policy's gate scope ({}; {}, {})",
                scope_words(t.gate_max_criticality, t.gate_allow_privileged),
                s.cite("gate_max_criticality"),
                s.cite("gate_allow_privileged")
            ),
        };
    }
    if g.n_reviewed < t.min_reviewed {
        return Rule {
            id: "gate",
            outcome: RuleOutcome::Fail,
            text: format!(
                "certified gate ({scope}) has {} reviewed decisions in scope, below min_reviewed {} ({})",
                g.n_reviewed,
                t.min_reviewed,
                s.cite("min_reviewed")
            ),
        };
    }
    Rule {
        id: "gate",
        outcome: RuleOutcome::Pass,
        text: format!(
            "gate certified: {scope}; disagreement at most {:.4} at confidence {} over {} reviewed in scope (target {}, {}); covers {:.1}% of decisions",
            g.risk,
            t.confidence_level,
            g.n_reviewed,
            t.target_agreement,
            s.cite("target_agreement"),
            100.0 * g.coverage
        ),
    }
}

fn hold_estimate(s: &EffectiveSettings, ev: &ClassEvidence, blocked: bool) -> HoldEstimate {
    let t = &s.thresholds;
    let after = if blocked {
        "; the failing blockers must clear too"
    } else {
        ""
    };
    let Some(agreement) = ev.agreement else {
        return HoldEstimate {
            reviews_needed: None,
            periods_needed: None,
            text: format!(
                "no reviewed decisions yet: at least {} reviews (min_reviewed) before promotion can be assessed{after}",
                t.min_reviewed
            ),
        };
    };
    let Some(total) = ev.reviews_to_promotion else {
        return HoldEstimate {
            reviews_needed: None,
            periods_needed: None,
            text: format!(
                "not reachable at the current agreement of {agreement:.4} (target {}){after}",
                t.target_agreement
            ),
        };
    };
    // At least one more review: the evidence has not crossed yet, whatever the arithmetic says.
    let needed = total
        .max(t.min_reviewed)
        .saturating_sub(ev.n_reviewed)
        .max(1);
    let periods = (ev.reviews_per_period.is_finite() && ev.reviews_per_period > 0.0)
        .then(|| (needed as f64 / ev.reviews_per_period).ceil() as u64);
    let pace = match periods {
        Some(p) => format!(
            ", about {p} period{} at {:.0} reviews per period",
            if p == 1 { "" } else { "s" },
            ev.reviews_per_period
        ),
        None => ", but no reviews in recent periods".to_string(),
    };
    HoldEstimate {
        reviews_needed: Some(needed),
        periods_needed: periods,
        text: format!(
            "about {needed} more reviews at the current agreement of {agreement:.4} (target {}, min_reviewed {}){pace}{after}",
            t.target_agreement, t.min_reviewed
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;

    const POLICY: &str = r#"
[tiers.high]
target_agreement = 0.995
min_reviewed = 800

[classes.close_alert_benign]
tier = "low"
ceiling = "hotl"
reversible = true
owner = "SOC Manager"

[classes.isolate_host]
tier = "high"
ceiling = "hotl"
reversible = true
owner = "Head of Detection & Response"
approver = "CISO"

[classes.block_ip]
tier = "medium"
mode = "hotl"
ceiling = "hotl"
reversible = true
owner = "Network Security Lead"

[classes.notify_breach]
tier = "critical"
ceiling = "hitl"
reversible = false
owner = "CISO with General Counsel"
"#;

    fn settings(class: &str) -> EffectiveSettings {
        Policy::from_toml_str(POLICY, "p.toml")
            .unwrap()
            .effective(class)
            .unwrap()
    }

    /// Evidence that passes every rule but does not cross the target.
    fn clean(class: &str) -> ClassEvidence {
        ClassEvidence {
            action_class: class.to_string(),
            current_version: Some("v2".to_string()),
            evidence_periods: vec![
                "2024-01-01".into(),
                "2024-02-01".into(),
                "2024-03-01".into(),
            ],
            n_decisions: 1200,
            n_reviewed: 1000,
            n_approve: 985,
            agreement: Some(0.985),
            wilson_low: Some(0.9754),
            wilson_high: Some(0.9910),
            anytime_lower: Some(0.971),
            e_value: Some(2.5),
            crosses_target: false,
            reviews_to_promotion: Some(2400),
            reviews_per_period: 350.0,
            ece: Some(0.02),
            calibration_p: Some(0.4),
            psi_latest: Some(0.05),
            latest_period: "2024-03".into(),
            latest_period_start: "2024-03-01".into(),
            psi_flagged: false,
            psi_flagged_periods: Vec::new(),
            agreement_drift_flagged: false,
            agreement_drops: Vec::new(),
            version_regression: None,
            manipulation_windows: 0,
            invented_share: Some(0.0),
            n_executed: 0,
            n_executed_reversed: 0,
            gate: None,
        }
    }

    fn outcome(r: &Recommendation, id: &str) -> RuleOutcome {
        r.rules
            .iter()
            .find(|x| x.id == id)
            .unwrap_or_else(|| panic!("rule {id} not evaluated"))
            .outcome
    }

    #[test]
    fn unowned_is_held_and_never_promoted() {
        let mut ev = clean("mystery");
        ev.crosses_target = true;
        let r = recommend(None, &ev);
        assert_eq!(r.recommendation, Kind::Hold);
        assert_eq!(r.owner, None);
        assert_eq!(r.reasons, ["unowned: no policy entry, never promoted"]);
        let ids: Vec<&str> = r.rules.iter().map(|x| x.id).collect();
        assert_eq!(ids, ["unowned", "manipulation"]);
        assert_eq!(outcome(&r, "manipulation"), RuleOutcome::Pass);
        assert!(r.hold.is_none());
    }

    #[test]
    fn unowned_class_reports_a_suspected_manipulation() {
        let mut ev = clean("mystery");
        ev.manipulation_windows = 1;
        let r = recommend(None, &ev);
        assert_eq!(r.recommendation, Kind::Hold);
        assert_eq!(outcome(&r, "manipulation"), RuleOutcome::Fail);
        assert_eq!(r.reasons.len(), 2, "{:?}", r.reasons);
        assert_eq!(r.reasons[0], "unowned: no policy entry, never promoted");
        assert!(
            r.reasons[1].starts_with("manipulation: 1 flagged window in the evidence window"),
            "{:?}",
            r.reasons
        );
    }

    #[test]
    fn ceiling_hitl_is_never_whatever_the_numbers() {
        let s = settings("notify_breach");
        let mut ev = clean("notify_breach");
        ev.crosses_target = true;
        ev.agreement = Some(0.999);
        let r = recommend(Some(&s), &ev);
        assert_eq!(r.recommendation, Kind::Never);
        assert_eq!(outcome(&r, "ceiling"), RuleOutcome::Fail);
        assert_eq!(r.reasons.len(), 1);
        assert!(
            r.reasons[0].contains("whatever the evidence (agreement 0.9990 over 1000 reviewed)"),
            "{}",
            r.reasons[0]
        );
        assert_eq!(r.owner.as_deref(), Some("CISO with General Counsel"));
        assert_eq!(r.ceiling.as_deref(), Some("hitl"));
    }

    #[test]
    fn hotl_stays_while_evidence_supports_it() {
        let s = settings("block_ip");
        let mut ev = clean("block_ip");
        ev.n_executed = 1000;
        ev.n_executed_reversed = 5;
        let r = recommend(Some(&s), &ev);
        assert_eq!(r.recommendation, Kind::Hold);
        assert_eq!(r.current_mode, "hotl");
        assert!(
            r.reasons[0].starts_with("evidence still supports autonomy"),
            "{:?}",
            r.reasons
        );
        assert!(r.reasons[0]
            .contains("reversal rate 0.005 (5 of 1000 executed) within max_reversal_rate 0.02"));
        assert!(r.hold.is_none());
    }

    #[test]
    fn hotl_demotes_on_each_trigger() {
        let s = settings("block_ip");
        type Poke = fn(&mut ClassEvidence);
        let cases: [(&str, Poke); 5] = [
            ("manipulation", |e| e.manipulation_windows = 2),
            ("drift.psi", |e| {
                e.psi_flagged = true;
                e.psi_latest = Some(0.31)
            }),
            ("drift.agreement", |e| e.agreement_drift_flagged = true),
            ("version_regression", |e| {
                e.version_regression = Some(VersionRegression {
                    previous_version: "v1".into(),
                    current_version: "v2".into(),
                    previous_agreement: 0.99,
                    current_agreement: 0.95,
                    previous_reviewed: 2000,
                    current_reviewed: 600,
                    excluded_periods: Vec::new(),
                    excluded_period_starts: Vec::new(),
                    p_adjusted: 0.0004,
                    flagged: true,
                })
            }),
            ("reversal_rate", |e| {
                e.n_executed = 200;
                e.n_executed_reversed = 9
            }),
        ];
        for (id, poke) in cases {
            let mut ev = clean("block_ip");
            poke(&mut ev);
            let r = recommend(Some(&s), &ev);
            assert_eq!(r.recommendation, Kind::Demote, "{id}");
            assert_eq!(outcome(&r, id), RuleOutcome::Fail, "{id}");
            assert_eq!(r.reasons.len(), 1, "{id}: {:?}", r.reasons);
        }
        // Reversal rate 9/200 = 0.045 > 0.02, written with the numbers and the policy source.
        let mut ev = clean("block_ip");
        ev.n_executed = 200;
        ev.n_executed_reversed = 9;
        let r = recommend(Some(&s), &ev);
        assert_eq!(
            r.reasons[0],
            "reversal rate 0.045 (9 of 200 executed) exceeds max_reversal_rate 0.02 (policy classes.block_ip via built-in)"
        );
        // Not a trigger for hotl: calibration.
        let mut ev = clean("block_ip");
        ev.ece = Some(0.2);
        assert_eq!(recommend(Some(&s), &ev).recommendation, Kind::Hold);
    }

    #[test]
    fn drift_rules_name_the_flagged_periods_of_the_window() {
        let s = settings("block_ip");
        let mut ev = clean("block_ip");
        // Flagged in the window's first period; the latest period itself is calm.
        ev.psi_flagged = true;
        ev.psi_latest = Some(0.043);
        ev.psi_flagged_periods = vec![PsiFlag {
            period: "2024-01".into(),
            period_start: "2024-01-01".into(),
            psi: 0.589,
        }];
        ev.agreement_drift_flagged = true;
        ev.agreement_drops = vec![AgreementDrop {
            period: "2024-01".into(),
            period_start: "2024-01-01".into(),
            agreement: 0.61,
            baseline: 0.98,
            p_adjusted: 2e-9,
        }];
        let r = recommend(Some(&s), &ev);
        assert_eq!(r.recommendation, Kind::Demote);
        assert_eq!(
            r.reasons,
            [
                "confidence drift flagged in the evidence window: PSI 0.589 in 2024-01 above max_psi 0.25 with a significant distribution test (policy classes.block_ip via built-in); latest period (2024-03) PSI 0.043",
                "agreement drift: significant drop against the baseline in the evidence window (FDR-controlled): 2024-01 agreement 0.6100 against 0.9800 in its baseline (adjusted p 2.0e-9)",
            ]
        );
        // Nothing flagged in the window: the pass says what the rule looks at.
        let r = recommend(Some(&s), &clean("block_ip"));
        let psi = r.rules.iter().find(|x| x.id == "drift.psi").unwrap();
        assert_eq!(psi.outcome, RuleOutcome::Pass);
        assert_eq!(
            psi.text,
            "no confidence drift flagged in the evidence window (max_psi 0.25, policy classes.block_ip via built-in); latest period (2024-03) PSI 0.050"
        );
        // A latest PSI above the limit that did not flag says why.
        let mut ev = clean("block_ip");
        ev.psi_latest = Some(1.627);
        let r = recommend(Some(&s), &ev);
        let psi = r.rules.iter().find(|x| x.id == "drift.psi").unwrap();
        assert_eq!(psi.outcome, RuleOutcome::Pass);
        assert!(
            psi.text.ends_with(
                "latest period (2024-03) PSI 1.627, above max_psi but without a significant distribution test"
            ),
            "{}",
            psi.text
        );
    }

    #[test]
    fn version_rule_says_what_it_compares_and_leaves_out() {
        let s = settings("block_ip");
        let mut ev = clean("block_ip");
        ev.version_regression = Some(VersionRegression {
            previous_version: "v2".into(),
            current_version: "v3".into(),
            previous_agreement: 0.978,
            current_agreement: 0.9773,
            previous_reviewed: 3120,
            current_reviewed: 528,
            p_adjusted: 0.932,
            flagged: false,
            excluded_periods: vec!["2024-01".into()],
            excluded_period_starts: vec!["2024-01-01".into()],
        });
        let r = recommend(Some(&s), &ev);
        let rule = r
            .rules
            .iter()
            .find(|x| x.id == "version_regression")
            .unwrap();
        assert_eq!(
            rule.text,
            "no version regression: model version v3 agreement 0.9773 over 528 reviewed decisions against 0.9780 over 3120 for v2 (each version's whole history, leaving out the period 2024-01 flagged for manipulation; adjusted p 0.932)"
        );
        ev.version_regression.as_mut().unwrap().excluded_periods = Vec::new();
        let r = recommend(Some(&s), &ev);
        let rule = r
            .rules
            .iter()
            .find(|x| x.id == "version_regression")
            .unwrap();
        assert!(
            rule.text
                .ends_with("for v2 (each version's whole history; adjusted p 0.932)"),
            "{}",
            rule.text
        );
    }

    #[test]
    fn hotl_demotion_lists_every_trigger_in_order() {
        let s = settings("block_ip");
        let mut ev = clean("block_ip");
        ev.agreement_drift_flagged = true;
        ev.manipulation_windows = 1;
        let r = recommend(Some(&s), &ev);
        assert_eq!(r.recommendation, Kind::Demote);
        assert_eq!(r.reasons.len(), 2);
        assert!(r.reasons[0].starts_with("manipulation: 1 flagged window in"));
        assert!(r.reasons[1].starts_with("agreement drift"));
    }

    #[test]
    fn hitl_promotes_when_the_anytime_bound_crosses() {
        let s = settings("close_alert_benign");
        let mut ev = clean("close_alert_benign");
        ev.crosses_target = true;
        ev.anytime_lower = Some(0.9812);
        ev.agreement = Some(0.992);
        let r = recommend(Some(&s), &ev);
        assert_eq!(r.recommendation, Kind::Promote);
        assert_eq!(r.reasons.len(), 1);
        assert!(r.reasons[0].starts_with("anytime-valid lower bound 0.9812 at confidence 0.95 is above target 0.98 (policy classes.close_alert_benign via built-in)"), "{}", r.reasons[0]);
        assert!(r.hold.is_none());
        assert!(r.gate.is_none());
        assert_eq!(outcome(&r, "gate"), RuleOutcome::NotApplicable);
        let ids: Vec<&str> = r.rules.iter().map(|r| r.id).collect();
        assert_eq!(
            ids,
            [
                "unowned",
                "ceiling",
                "manipulation",
                "drift.psi",
                "drift.agreement",
                "version_regression",
                "calibration.ece",
                "calibration.test",
                "reasoning.invented",
                "evidence.min_reviewed",
                "evidence.anytime",
                "gate"
            ]
        );
    }

    #[test]
    fn hitl_blockers_hold_in_order() {
        let s = settings("close_alert_benign");
        type Poke = fn(&mut ClassEvidence);
        let cases: [(&str, Poke); 7] = [
            ("manipulation", |e| e.manipulation_windows = 1),
            ("drift.psi", |e| e.psi_flagged = true),
            ("drift.agreement", |e| e.agreement_drift_flagged = true),
            ("version_regression", |e| {
                e.version_regression = Some(VersionRegression {
                    previous_version: "v1".into(),
                    current_version: "v2".into(),
                    previous_agreement: 0.99,
                    current_agreement: 0.95,
                    previous_reviewed: 2000,
                    current_reviewed: 600,
                    excluded_periods: Vec::new(),
                    excluded_period_starts: Vec::new(),
                    p_adjusted: 0.01,
                    flagged: true,
                })
            }),
            ("calibration.ece", |e| e.ece = Some(0.081)),
            ("calibration.test", |e| e.calibration_p = Some(0.002)),
            ("reasoning.invented", |e| e.invented_share = Some(0.03)),
        ];
        for (id, poke) in cases {
            let mut ev = clean("close_alert_benign");
            ev.crosses_target = true;
            poke(&mut ev);
            let r = recommend(Some(&s), &ev);
            assert_eq!(r.recommendation, Kind::Hold, "{id}");
            assert_eq!(outcome(&r, id), RuleOutcome::Fail, "{id}");
            assert_eq!(r.reasons.len(), 1, "{id}: {:?}", r.reasons);
            assert!(
                r.hold.is_none(),
                "{id}: a blocked class with enough evidence has no estimate"
            );
        }
        let mut ev = clean("close_alert_benign");
        ev.ece = Some(0.081);
        ev.manipulation_windows = 3;
        let r = recommend(Some(&s), &ev);
        assert!(r.reasons[0].starts_with("manipulation: 3 flagged windows"));
        assert_eq!(
            r.reasons[1],
            "ECE 0.081 exceeds max_ece 0.05 (policy classes.close_alert_benign via built-in)"
        );
        // Not crossing either: the evidence rule is reported after the blockers, with an estimate.
        assert!(r.reasons[2].starts_with(
            "agreement 0.9850 (anytime-valid lower bound 0.9710) has not crossed target 0.98"
        ));
        assert!(r
            .hold
            .as_ref()
            .unwrap()
            .text
            .ends_with("the failing blockers must clear too"));
    }

    #[test]
    fn hitl_below_min_reviewed_holds_with_an_estimate() {
        let s = settings("isolate_host"); // tiers.high: target 0.995, min_reviewed 800
        let mut ev = clean("isolate_host");
        ev.n_reviewed = 300;
        ev.crosses_target = true; // early crossing does not beat the evidence floor
        ev.reviews_to_promotion = Some(650);
        ev.reviews_per_period = 120.0;
        let r = recommend(Some(&s), &ev);
        assert_eq!(r.recommendation, Kind::Hold);
        assert_eq!(r.approver.as_deref(), Some("CISO"));
        assert_eq!(
            r.reasons[0],
            "300 reviewed decisions are below min_reviewed 800 (policy classes.isolate_host via tiers.high)"
        );
        let h = r.hold.unwrap();
        // max(800, 650) − 300 = 500; ⌈500 / 120⌉ = 5.
        assert_eq!(h.reviews_needed, Some(500));
        assert_eq!(h.periods_needed, Some(5));
    }

    #[test]
    fn hitl_not_crossing_holds_with_an_estimate() {
        let s = settings("close_alert_benign");
        let ev = clean("close_alert_benign");
        let r = recommend(Some(&s), &ev);
        assert_eq!(r.recommendation, Kind::Hold);
        assert_eq!(outcome(&r, "evidence.anytime"), RuleOutcome::Fail);
        assert_eq!(outcome(&r, "gate"), RuleOutcome::Fail);
        let h = r.hold.unwrap();
        // max(400, 2400) − 1000 = 1400; ⌈1400 / 350⌉ = 4.
        assert_eq!((h.reviews_needed, h.periods_needed), (Some(1400), Some(4)));
        assert!(
            h.text.contains("about 4 periods at 350 reviews per period"),
            "{}",
            h.text
        );
    }

    #[test]
    fn unreachable_target_says_so() {
        let s = settings("close_alert_benign");
        let mut ev = clean("close_alert_benign");
        ev.agreement = Some(0.962);
        ev.reviews_to_promotion = None;
        let h = recommend(Some(&s), &ev).hold.unwrap();
        assert_eq!(h.reviews_needed, None);
        assert_eq!(h.periods_needed, None);
        assert_eq!(
            h.text,
            "not reachable at the current agreement of 0.9620 (target 0.98)"
        );
    }

    #[test]
    fn no_review_volume_gives_no_period_estimate() {
        let s = settings("close_alert_benign");
        let mut ev = clean("close_alert_benign");
        ev.reviews_per_period = 0.0;
        let h = recommend(Some(&s), &ev).hold.unwrap();
        assert_eq!((h.reviews_needed, h.periods_needed), (Some(1400), None));
    }

    fn gate(max: Criticality, privileged: bool, n: u64) -> Gate {
        Gate {
            max_criticality: max,
            privileged_allowed: privileged,
            min_confidence: 0.97,
            coverage: 0.62,
            n_reviewed: n,
            risk: 0.004,
        }
    }

    #[test]
    fn hitl_gate_within_scope_promotes_gated() {
        let s = settings("isolate_host");
        let mut ev = clean("isolate_host");
        ev.gate = Some(gate(Criticality::Medium, false, 900));
        let r = recommend(Some(&s), &ev);
        assert_eq!(r.recommendation, Kind::PromoteGated);
        assert_eq!(r.gate, ev.gate);
        assert!(r.hold.is_none());
        assert_eq!(r.reasons.len(), 2, "{:?}", r.reasons);
        assert!(
            r.reasons[0].starts_with("agreement 0.9850"),
            "binding first: {:?}",
            r.reasons
        );
        assert!(r.reasons[1].starts_with(
            "gate certified: low/medium assets, non-privileged, confidence ≥ 0.97; disagreement at most 0.0040"
        ));
        assert!(r.reasons[1].ends_with("covers 62.0% of decisions"));
    }

    #[test]
    fn hitl_gate_outside_scope_or_thin_holds() {
        let s = settings("isolate_host"); // gate scope ≤ high, non-privileged
        for g in [
            gate(Criticality::Critical, false, 900),
            gate(Criticality::Medium, true, 900),
            gate(Criticality::Medium, false, 500),
        ] {
            let mut ev = clean("isolate_host");
            ev.gate = Some(g.clone());
            let r = recommend(Some(&s), &ev);
            assert_eq!(r.recommendation, Kind::Hold, "{g:?}");
            assert_eq!(outcome(&r, "gate"), RuleOutcome::Fail, "{g:?}");
            assert!(r.hold.is_some());
            assert!(r.gate.is_none());
        }
    }

    #[test]
    fn no_reviews_at_all() {
        let s = settings("close_alert_benign");
        let mut ev = clean("close_alert_benign");
        ev.n_reviewed = 0;
        ev.n_approve = 0;
        ev.agreement = None;
        ev.anytime_lower = None;
        ev.e_value = None;
        ev.ece = None;
        ev.calibration_p = None;
        ev.reviews_to_promotion = None;
        let r = recommend(Some(&s), &ev);
        assert_eq!(r.recommendation, Kind::Hold);
        assert_eq!(outcome(&r, "calibration.ece"), RuleOutcome::NotApplicable);
        assert_eq!(outcome(&r, "calibration.test"), RuleOutcome::NotApplicable);
        assert_eq!(r.hold.unwrap().reviews_needed, None);
    }

    #[test]
    fn serializes_snake_case() {
        let s = settings("isolate_host");
        let mut ev = clean("isolate_host");
        ev.gate = Some(gate(Criticality::Medium, false, 900));
        let json = serde_json::to_value(recommend(Some(&s), &ev)).unwrap();
        assert_eq!(json["recommendation"], "promote_gated");
        assert_eq!(json["gate"]["max_criticality"], "medium");
        assert_eq!(json["rules"][2]["outcome"], "pass");
        let back: ClassEvidence = serde_json::from_value(json["evidence"].clone()).unwrap();
        assert_eq!(back, ev);
    }
}
