//! The planted effects, machine-readable: what a correct engine should find, with the
//! expected magnitudes computed from the model's parameters (not from generated data).

use serde::Serialize;

use crate::calendar::{add_months, date_string, days_from_civil, DAY_US};
use crate::generate::Simulator;
use crate::model::*;
use crate::target_name;

/// Everything the simulator planted, for tests, notebooks and the engine's acceptance checks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Truth {
    /// The seed of the run.
    pub seed: u64,
    /// Total decisions over all months, burst included.
    pub decisions: u64,
    /// Month by month: label, first global index, size, versions running.
    pub months: Vec<MonthTruth>,
    /// Model versions with the months they serve and their canaries.
    pub model_versions: Vec<VersionTruth>,
    /// Every class with its tier, mode, volume and expected confidence and agreement.
    pub classes: Vec<ClassTruth>,
    /// Classes whose confidence and agreement distributions never change with month or
    /// version: a drift detector must flag none of them.
    pub drift_free_classes: Vec<String>,
    /// Effect on agreement of asset criticality and privilege (all classes).
    pub segment_effect: SegmentTruth,
    /// Effect 1: over-confident class.
    pub overconfidence: OverconfidenceTruth,
    /// Effect 2: agreement drop with a model version, confidence unchanged (absent when the
    /// run is too short to reach `v3`).
    pub version_agreement_drop: Option<VersionDropTruth>,
    /// Effect 3: confidence shift, agreement unchanged (absent when the run has 6 months or
    /// fewer and so never reaches the shift month).
    pub confidence_shift: Option<ConfidenceShiftTruth>,
    /// Effect 4: manipulation burst (absent when `burst` is off).
    pub burst: Option<BurstTruth>,
    /// Effect 5: fabricated technique citations (absent when `fabricated_reasoning` is off).
    pub fabricated_reasoning: Option<FabricationTruth>,
    /// The analyst who approves in seconds.
    pub rubber_stamp: RubberStampTruth,
    /// Review process parameters.
    pub review: ReviewTruth,
}

/// One simulated month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonthTruth {
    /// `YYYY-MM`.
    pub month: String,
    /// Global index of its first decision.
    pub first_index: u64,
    /// Number of decisions.
    pub decisions: u64,
    /// Main model version.
    pub model_version: String,
    /// Version of the canary in its last days, when a switch follows.
    pub canary_version: Option<String>,
}

/// One model version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionTruth {
    /// `v1`, `v2`, `v3`.
    pub version: String,
    /// Months (`YYYY-MM`) in which it is the main version.
    pub months: Vec<String>,
    /// First day (`YYYY-MM-DD`) of its canary in the preceding month, if any.
    pub canary_from: Option<String>,
    /// Share of decisions on the canary during the canary days.
    pub canary_share: f64,
}

/// One action class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassTruth {
    /// Class name.
    pub class: String,
    /// Impact tier: `low`, `medium`, `high`, `critical`.
    pub tier: String,
    /// `hotl` (executed, reviewed after) or `hitl`.
    pub mode: String,
    /// Target kind: `host`, `user`, `srv`, `ip`.
    pub target_kind: String,
    /// Share of ordinary decisions.
    pub volume_share: f64,
    /// Expected number of decisions over the run (burst included).
    pub expected_decisions: f64,
    /// Share of decisions on privileged targets.
    pub privileged_share: f64,
    /// Share of decisions on low, medium, high, critical assets.
    pub criticality_shares: [f64; 4],
    /// Share of decisions without any verdict row.
    pub unreviewed_share: f64,
    /// Expected mean reported confidence (before any planted shift).
    pub mean_confidence: f64,
    /// Expected agreement of ordinary analysts (before any planted drop; the rubber stamper
    /// lifts the observed value by `rubber_stamp.review_share · 0.95 · (1 − agreement)`).
    pub agreement: f64,
    /// Expected agreement in the data, rubber stamper included:
    /// `agreement + review_share · stamp_share · (1 − agreement)`.
    pub observed_agreement: f64,
    /// Approve probability equals the reported confidence (before any planted change).
    pub calibrated: bool,
    /// Effects planted on this class (`overconfidence`, `version_agreement_drop`,
    /// `confidence_shift`, `burst`).
    pub planted: Vec<String>,
}

/// Segment effect on disagreement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentTruth {
    /// `1 − E[c]` is multiplied by these for low, medium, high, critical assets.
    pub criticality_disagreement_multiplier: [f64; 4],
    /// … and by this for privileged targets.
    pub privileged_disagreement_multiplier: f64,
}

/// Effect 1.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OverconfidenceTruth {
    /// `close_alert_benign`.
    pub class: String,
    /// All months, all versions.
    pub months: Vec<String>,
    /// Expected mean confidence.
    pub mean_confidence: f64,
    /// Central 90% of confidence on non-privileged low/medium assets.
    pub confidence_range: [f64; 2],
    /// Expected agreement of ordinary analysts.
    pub agreement: f64,
    /// Approve probability is `confidence − gap`.
    pub gap: f64,
}

/// Effect 2.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionDropTruth {
    /// `block_ip`.
    pub class: String,
    /// Version before the change (`v2`) and after it (`v3`).
    pub from_version: String,
    /// The version whose agreement drops.
    pub to_version: String,
    /// Months where `to_version` is the main version.
    pub months: Vec<String>,
    /// Expected agreement before and after (ordinary analysts).
    pub agreement_before: f64,
    /// Expected agreement under `to_version`.
    pub agreement_after: f64,
    /// Approve probability under `to_version` is `confidence − drop`.
    pub drop: f64,
    /// Mean confidence, identical under every version.
    pub mean_confidence: f64,
}

/// Effect 3.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfidenceShiftTruth {
    /// `quarantine_email`.
    pub class: String,
    /// First shifted month `YYYY-MM`.
    pub from_month: String,
    /// Reported confidence is `latent · scale` from then on.
    pub scale: f64,
    /// Expected mean confidence before and after.
    pub mean_confidence_before: f64,
    /// Expected mean confidence from `from_month`.
    pub mean_confidence_after: f64,
    /// Expected agreement (ordinary analysts), unchanged by the shift.
    pub agreement: f64,
}

/// A burst target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetTruth {
    /// `host-…`.
    pub name: String,
    /// `low` … `critical`.
    pub criticality: String,
    /// Privileged asset.
    pub privileged: bool,
    /// Share of the burst decisions on this host.
    pub share: f64,
}

/// Effect 4.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BurstTruth {
    /// `isolate_host`.
    pub class: String,
    /// Month `YYYY-MM`.
    pub month: String,
    /// The burst days `YYYY-MM-DD` (UTC), consecutive.
    pub dates: Vec<String>,
    /// Start of the first burst day and end of the last (exclusive), µs since the epoch.
    pub start_us: i64,
    /// End (exclusive) of the last burst day, µs since the epoch.
    pub end_us: i64,
    /// Burst decisions added per burst day (on top of normal traffic).
    pub decisions_per_day: u32,
    /// Burst decisions in total.
    pub decisions: u64,
    /// Expected normal daily `isolate_host` volume in that month.
    pub normal_daily_decisions: f64,
    /// Minimum confidence of burst decisions.
    pub min_confidence: f64,
    /// The targeted hosts, which appear in no other decision.
    pub targets: Vec<TargetTruth>,
    /// Final-verdict probabilities of ordinary analysts: approve, override, reject.
    pub verdict_shares: [f64; 3],
}

/// Effect 5.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FabricationTruth {
    /// `v2`.
    pub model_version: String,
    /// Months where it is the main version (its canary runs in the month before).
    pub months: Vec<String>,
    /// Share of its decisions citing exactly one invented ID.
    pub invented_share: f64,
    /// Share of its decisions citing exactly one revoked or deprecated ID.
    pub revoked_share: f64,
    /// The invented IDs (none is in the bundled ATT&CK list).
    pub invented_ids: Vec<String>,
    /// The revoked or deprecated IDs it may cite (all such rows of the bundled list).
    pub revoked_ids: Vec<String>,
    /// Versions citing only current IDs.
    pub clean_versions: Vec<String>,
}

/// The rubber-stamping analyst.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RubberStampTruth {
    /// Analyst ID.
    pub analyst: String,
    /// Share of all reviews assigned to them.
    pub review_share: f64,
    /// Share of their reviews that are approvals within `seconds`.
    pub stamp_share: f64,
    /// Delay range of a stamp, seconds.
    pub seconds: [f64; 2],
}

/// Review process.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewTruth {
    /// Share of decisions whose final verdict is a timeout.
    pub timeout_share: f64,
    /// Share of reviewed decisions with two verdict rows.
    pub double_verdict_share: f64,
    /// SLA minutes (hitl, hotl): timeouts are recorded at the SLA.
    pub sla_minutes: [f64; 2],
    /// Median review delay in minutes (hitl, hotl).
    pub median_delay_minutes: [f64; 2],
    /// Number of analysts.
    pub analysts: usize,
}

fn month_label(y: i32, m: u32) -> String {
    format!("{y:04}-{m:02}")
}

impl Simulator {
    /// The planted effects and the model's parameters, as expected values.
    pub fn truth(&self) -> Truth {
        let cfg = &self.cfg;
        let label = |m: usize| {
            let (y, mo) = add_months(cfg.start_year, cfg.start_month, m as u32);
            month_label(y, mo)
        };
        let n = self.months();
        let all_months: Vec<String> = (0..n).map(label).collect();
        let version_name = |v: u8| MODEL_VERSIONS[usize::from(v)].to_string();
        let months_of = |v: u8| -> Vec<String> {
            (0..n)
                .filter(|&m| self.plans[m].version == v)
                .map(label)
                .collect()
        };

        let months = self
            .plans
            .iter()
            .enumerate()
            .map(|(m, p)| MonthTruth {
                month: label(m),
                first_index: p.first_index,
                decisions: p.len(),
                model_version: version_name(p.version),
                canary_version: p.canary.map(version_name),
            })
            .collect();

        let model_versions = (0..MODEL_VERSIONS.len() as u8)
            .map(|v| VersionTruth {
                version: version_name(v),
                months: months_of(v),
                canary_from: self.plans.iter().find(|p| p.canary == Some(v)).map(|p| {
                    date_string(p.first_day + i64::from(p.days.saturating_sub(CANARY_DAYS)))
                }),
                canary_share: CANARY_SHARE,
            })
            .collect();

        let regular_total: u64 = self.plans.iter().map(|p| p.regular).sum();
        let burst_plan = self
            .plans
            .iter()
            .enumerate()
            .find(|(_, p)| p.burst_per_day > 0);
        let burst_total = burst_plan.map_or(0, |(_, p)| p.len() - p.regular);
        let fabricated_months = months_of(FABRICATING_VERSION);

        let total_weight: f64 = ANALYST_WEIGHTS.iter().sum();
        let stamp_share = ANALYST_WEIGHTS[RUBBER_STAMPER] / total_weight;
        let classes = CLASSES
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let t = &self.tables[i];
                let mean = t.mean_confidence();
                let (agreement, calibrated) = match i {
                    CLOSE_ALERT_BENIGN => (mean - OVERCONFIDENCE_GAP, false),
                    _ => (mean, i != QUARANTINE_EMAIL || n <= SHIFT_MONTH),
                };
                let mut planted = Vec::new();
                if i == CLOSE_ALERT_BENIGN {
                    planted.push("overconfidence".to_string());
                }
                if i == BLOCK_IP && self.plans.iter().any(|p| p.version == 2) {
                    planted.push("version_agreement_drop".to_string());
                }
                if i == QUARANTINE_EMAIL && n > SHIFT_MONTH {
                    planted.push("confidence_shift".to_string());
                }
                if i == ISOLATE_HOST && burst_total > 0 {
                    planted.push("burst".to_string());
                }
                let mut crit = [0.0; 4];
                for (c, share) in crit.iter_mut().enumerate() {
                    *share = t.segment_p[c * 2] + t.segment_p[c * 2 + 1];
                }
                let burst_extra = if i == ISOLATE_HOST { burst_total } else { 0 };
                ClassTruth {
                    class: spec.name.to_string(),
                    tier: spec.tier.name().to_string(),
                    mode: if spec.hotl { "hotl" } else { "hitl" }.to_string(),
                    target_kind: spec.kind.prefix().to_string(),
                    volume_share: self.class_share[i],
                    expected_decisions: self.class_share[i] * regular_total as f64
                        + burst_extra as f64,
                    privileged_share: t.privileged_share(),
                    criticality_shares: crit,
                    unreviewed_share: spec.unreviewed,
                    mean_confidence: mean,
                    agreement,
                    observed_agreement: agreement
                        + stamp_share * RUBBER_STAMP_SHARE * (1.0 - agreement),
                    calibrated,
                    planted,
                }
            })
            .collect::<Vec<ClassTruth>>();
        let drift_free_classes = classes
            .iter()
            .filter(|c| c.planted.iter().all(|p| p == "overconfidence"))
            .map(|c| c.class.clone())
            .collect();

        let close = &self.tables[CLOSE_ALERT_BENIGN];
        let close_spec = &CLASSES[CLOSE_ALERT_BENIGN];
        // Central 90% of Beta(μκ, (1−μ)κ) by the normal approximation (κ = 400: very close).
        let sd = (close_spec.conf_mean * (1.0 - close_spec.conf_mean)
            / (close_spec.conf_kappa + 1.0))
            .sqrt();
        let overconfidence = OverconfidenceTruth {
            class: close_spec.name.to_string(),
            months: all_months.clone(),
            mean_confidence: close.mean_confidence(),
            confidence_range: [
                close_spec.conf_mean - 1.645 * sd,
                (close_spec.conf_mean + 1.645 * sd).min(1.0),
            ],
            agreement: close.mean_confidence() - OVERCONFIDENCE_GAP,
            gap: OVERCONFIDENCE_GAP,
        };

        let block = self.tables[BLOCK_IP].mean_confidence();
        let has_v3 = self.plans.iter().any(|p| p.version == 2);
        let version_agreement_drop = has_v3.then(|| VersionDropTruth {
            class: CLASSES[BLOCK_IP].name.to_string(),
            from_version: version_name(1),
            to_version: version_name(2),
            months: months_of(2),
            agreement_before: block,
            agreement_after: block - V3_BLOCK_IP_DROP,
            drop: V3_BLOCK_IP_DROP,
            mean_confidence: block,
        });

        let quarantine = self.tables[QUARANTINE_EMAIL].mean_confidence();
        let confidence_shift = (n > SHIFT_MONTH).then(|| ConfidenceShiftTruth {
            class: CLASSES[QUARANTINE_EMAIL].name.to_string(),
            from_month: label(SHIFT_MONTH),
            scale: SHIFT_SCALE,
            mean_confidence_before: quarantine,
            mean_confidence_after: quarantine * SHIFT_SCALE,
            agreement: quarantine,
        });

        let burst = burst_plan.map(|(m, p)| {
            let first = days_from_civil(p.year, p.month, BURST_FIRST_DAY);
            let targets = self
                .burst_targets()
                .iter()
                .zip(&BURST_HOSTS)
                .map(|(&t, &(crit, privileged, share))| TargetTruth {
                    name: target_name(CLASSES[ISOLATE_HOST].name, t),
                    criticality: crate::CRITICALITY[usize::from(crit)].to_string(),
                    privileged,
                    share,
                })
                .collect();
            BurstTruth {
                class: CLASSES[ISOLATE_HOST].name.to_string(),
                month: label(m),
                dates: (0..i64::from(BURST_DAYS))
                    .map(|d| date_string(first + d))
                    .collect(),
                start_us: first * DAY_US,
                end_us: (first + i64::from(BURST_DAYS)) * DAY_US,
                decisions_per_day: p.burst_per_day,
                decisions: burst_total,
                normal_daily_decisions: p.regular as f64 / f64::from(p.days)
                    * self.class_share[ISOLATE_HOST],
                min_confidence: BURST_MIN_CONFIDENCE,
                targets,
                verdict_shares: BURST_VERDICTS,
            }
        });

        let fabricated_reasoning = cfg.fabricated_reasoning.then(|| FabricationTruth {
            model_version: version_name(FABRICATING_VERSION),
            months: fabricated_months,
            invented_share: if self.techniques.invented.is_empty() {
                0.0
            } else {
                INVENTED_SHARE
            },
            revoked_share: if self.techniques.revoked.is_empty() {
                0.0
            } else {
                REVOKED_SHARE
            },
            invented_ids: self.techniques.invented.clone(),
            revoked_ids: self.techniques.revoked.clone(),
            clean_versions: (0..MODEL_VERSIONS.len() as u8)
                .filter(|&v| v != FABRICATING_VERSION)
                .map(version_name)
                .collect(),
        });

        Truth {
            seed: cfg.seed,
            decisions: self.total_decisions(),
            months,
            model_versions,
            classes,
            drift_free_classes,
            segment_effect: SegmentTruth {
                criticality_disagreement_multiplier: CRIT_DISAGREEMENT,
                privileged_disagreement_multiplier: PRIV_DISAGREEMENT,
            },
            overconfidence,
            version_agreement_drop,
            confidence_shift,
            burst,
            fabricated_reasoning,
            rubber_stamp: RubberStampTruth {
                analyst: self.dict.analysts[RUBBER_STAMPER].clone(),
                review_share: stamp_share,
                stamp_share: RUBBER_STAMP_SHARE,
                seconds: [RUBBER_STAMP_SECONDS.0, RUBBER_STAMP_SECONDS.1],
            },
            review: ReviewTruth {
                timeout_share: TIMEOUT_SHARE,
                double_verdict_share: DOUBLE_SHARE,
                sla_minutes: [SLA_MINUTES.0, SLA_MINUTES.1],
                median_delay_minutes: [DELAY_HITL.0, DELAY_HOTL.0],
                analysts: ANALYST_WEIGHTS.len(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimConfig;

    #[test]
    fn truth_serializes_and_names_the_effects() {
        let sim = Simulator::new(SimConfig::default());
        let truth = sim.truth();
        let json = serde_json::to_value(&truth).unwrap();
        assert_eq!(json["burst"]["dates"][0], "2025-10-13");
        assert_eq!(json["burst"]["dates"][4], "2025-10-17");
        assert_eq!(json["confidence_shift"]["from_month"], "2025-07");
        assert_eq!(json["version_agreement_drop"]["months"][0], "2025-09");
        assert_eq!(json["fabricated_reasoning"]["model_version"], "v2");
        assert_eq!(json["model_versions"][1]["canary_from"], "2025-04-24");
        assert_eq!(truth.decisions, sim.total_decisions());
        assert_eq!(truth.classes.len(), 14);
        assert!(!truth.drift_free_classes.contains(&"block_ip".to_string()));
        assert!(truth
            .drift_free_classes
            .contains(&"enrich_alert".to_string()));
        assert!(truth
            .drift_free_classes
            .contains(&"close_alert_benign".to_string()));
        let shares: f64 = truth.classes.iter().map(|c| c.volume_share).sum();
        assert!((shares - 1.0).abs() < 1e-12);
        // The promotable classes are expected above 0.99 agreement.
        for c in &truth.classes[..3] {
            assert!(c.agreement > 0.99, "{} {}", c.class, c.agreement);
        }
        let close = &truth.overconfidence;
        assert!((close.agreement - 0.86).abs() < 0.01, "{}", close.agreement);
    }

    #[test]
    fn optional_effects_can_be_switched_off() {
        let truth = Simulator::new(SimConfig {
            burst: false,
            fabricated_reasoning: false,
            ..SimConfig::default()
        })
        .truth();
        assert!(truth.burst.is_none());
        assert!(truth.fabricated_reasoning.is_none());
        assert!(truth
            .drift_free_classes
            .contains(&"isolate_host".to_string()));
    }
}
