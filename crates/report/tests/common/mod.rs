//! Hand-built models for the renderer tests and the `look` example.
#![allow(dead_code)]

use readiness_report::model::*;

fn s(x: &str) -> String {
    x.to_string()
}

/// A deterministic wobble in [-1, 1] so fixtures look like data without a random generator.
fn wobble(i: usize, k: usize) -> f64 {
    (((i * 37 + k * 11) % 17) as f64 / 8.0) - 1.0
}

fn periods(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let m = 12 - n as i64 + 1 + i as i64; // ends at 2025-12
            let (y, m) = if m <= 0 { (2024, m + 12) } else { (2025, m) };
            format!("{y}-{m:02}")
        })
        .collect()
}

/// A class section with a plausible agreement history, reliability bins, risk–coverage curve
/// and confidence histograms.
pub fn class(
    name: &str,
    rec: &str,
    target: f64,
    level: f64,
    k: usize,
    n_periods: usize,
) -> ClassSection {
    let ps = periods(n_periods);
    let agreement = ps
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let n = 150 + ((i * 97 + k * 31) % 400) as u64;
            if i == 2 && k % 3 == 1 {
                return AgreementPoint {
                    period: p.clone(),
                    n_reviewed: 0,
                    agreement: None,
                    low: None,
                    high: None,
                };
            }
            let a = (level + 0.004 * wobble(i, k) + 0.001 * i as f64).min(1.0);
            let half = 1.6 / (n as f64).sqrt() * (a * (1.0 - a)).sqrt().max(0.01);
            AgreementPoint {
                period: p.clone(),
                n_reviewed: n,
                agreement: Some(a),
                low: Some((a - half).max(0.0)),
                high: Some((a + half).min(1.0)),
            }
        })
        .collect();
    let reliability = (0..10)
        .map(|b| {
            let lower = b as f64 / 10.0;
            let n = [0, 0, 1, 3, 6, 15, 40, 120, 900, 6400][b];
            let mc = lower + 0.06;
            ReliabilityBin {
                lower,
                upper: lower + 0.1,
                n,
                mean_confidence: (n > 0).then_some(mc),
                observed: (n > 0).then_some((mc - 0.05 + 0.02 * wobble(b, k)).clamp(0.0, 1.0)),
            }
        })
        .collect();
    let risk_coverage = (0..20)
        .map(|t| {
            let threshold = 0.80 + t as f64 * 0.01;
            let coverage = 0.95 - t as f64 * 0.045;
            let risk = 0.03 * (1.0 - t as f64 / 20.0).powi(2) + 0.001;
            RiskCoveragePoint {
                threshold,
                coverage,
                risk: Some(risk),
                certified: risk < 1.0 - target - 0.001,
            }
        })
        .collect();
    let hist = |shift: f64| -> Vec<f64> {
        let raw: Vec<f64> = (0..100)
            .map(|i| {
                let x = i as f64 / 100.0;
                if x < 0.6 {
                    0.0
                } else {
                    ((x - 0.6) * 10.0 + shift).powi(3).max(0.0)
                }
            })
            .collect();
        let total: f64 = raw.iter().sum();
        raw.into_iter().map(|v| v / total).collect()
    };
    ClassSection {
        action_class: s(name),
        owner: Some(s("Head of Detection & Response")),
        tier: Some(s("high")),
        current_mode: s("hitl"),
        recommendation: s(rec),
        gate: (rec == "promote_gated").then(|| s("low/medium assets, non-privileged, confidence ≥ 0.93")),
        reasons: vec![
            s("Agreement 99.3% (95% interval 98.9%–99.6%) is above the 99.0% target over 3 periods of the current model version."),
            s("Calibration error (ECE 0.012) is within the 0.05 limit."),
        ],
        hold: (rec == "hold").then(|| s("about 2 more months at the current review volume")),
        key_numbers: vec![
            (s("Reviewed decisions (3 periods)"), s("1,212")),
            (s("Agreement"), s("99.3%")),
            (s("Confidence drift (PSI)"), s("0.031")),
            (s("Change vs baseline"), s("-0.4 points")),
        ],
        target,
        agreement,
        reliability,
        risk_coverage,
        max_risk: 1.0 - target,
        gate_threshold: (rec == "promote_gated").then_some(0.93),
        no_gate: s(if rec == "promote" {
            "no gate needed: the whole class qualifies"
        } else {
            "no gate recommended"
        }),
        confidence_current: hist(0.3),
        confidence_baseline: hist(0.0),
        psi: Some(0.031),
    }
}

/// A small model for snapshots: 2 classes, 3 periods.
pub fn small_model() -> ReportModel {
    let ps = periods(3);
    let classes = vec![
        class("isolate_host", "promote_gated", 0.99, 0.992, 0, 3),
        class("close_alert_benign", "hold", 0.98, 0.975, 1, 3),
    ];
    ReportModel {
        title: s("Autonomy readiness review"),
        period_label: s("2025-12"),
        engine_version: s("0.1.0"),
        run_id: s("run-5f2c9a"),
        policy_path: s("policy.toml"),
        policy_hash: s("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
        inputs: vec![
            InputFile {
                table: s("decisions"),
                path: s("data/decisions.parquet"),
                sha256: s("aa11"),
                rows: 12_345,
            },
            InputFile {
                table: s("verdicts"),
                path: s("data/verdicts.parquet"),
                sha256: s("bb22"),
                rows: 11_002,
            },
        ],
        quality: DataQuality {
            decisions_read: 12_345,
            decisions_rejected: 12,
            verdicts_read: 11_002,
            verdicts_rejected: 3,
            rejects_by_reason: vec![
                (s("decisions"), s("confidence outside [0, 1]"), 12),
                (s("verdicts"), s("verdict for unknown decision"), 3),
            ],
            timeouts: 41,
            unreviewed: 977,
            unowned_classes: vec![s("quarantine_email")],
            source: Default::default(),
        },
        decisions: vec![
            DecisionItem {
                action_class: s("isolate_host"),
                owner: Some(s("Head of Detection & Response")),
                recommendation: s("promote_gated"),
                headline: s(
                    "Let isolate_host run on its own for low/medium assets above 0.93 confidence.",
                ),
            },
            DecisionItem {
                action_class: s("quarantine_email"),
                owner: None,
                recommendation: s("never"),
                headline: s("Assign an owner in the policy before this class can be evaluated."),
            },
        ],
        matrix: classes
            .iter()
            .map(|c| MatrixRow {
                action_class: c.action_class.clone(),
                target: c.target,
                cells: c.agreement.iter().map(|a| a.agreement).collect(),
                n: c.agreement.iter().map(|a| a.n_reviewed).collect(),
            })
            .collect(),
        periods: ps.clone(),
        classes,
        manipulation: (0..10)
            .map(|d| ManipulationDay {
                action_class: s("isolate_host"),
                day: format!("2025-12-{:02}", d + 1),
                volume: if (6..8).contains(&d) {
                    90
                } else {
                    20 + d as u64
                },
                baseline: 22.0,
                flagged: (6..8).contains(&d),
            })
            .collect(),
        autonomy: ["low", "high"]
            .iter()
            .flat_map(|t| {
                ps.iter().enumerate().map(move |(i, p)| AutonomyPoint {
                    period: p.clone(),
                    tier: s(t),
                    share: if *t == "low" {
                        0.4 + 0.05 * i as f64
                    } else {
                        0.02 * i as f64
                    },
                })
            })
            .collect(),
    }
}

/// A larger model to look at: 16 classes × 13 periods, 3 detailed classes, 2 flagged classes.
pub fn sample_model() -> ReportModel {
    let mut m = small_model();
    let ps = periods(13);
    let names = [
        "enrich_alert",
        "tag_alert",
        "close_alert_benign",
        "close_alert_duplicate",
        "isolate_host",
        "disable_user_account_in_privileged_directory_group",
        "reset_password",
        "block_ip",
        "block_domain",
        "quarantine_email",
        "kill_process",
        "revoke_oauth_token",
        "open_ticket",
        "escalate_to_tier2",
        "notify_breach",
        "snapshot_vm",
    ];
    m.periods = ps.clone();
    m.matrix = names
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let target = if k % 4 == 0 { 0.995 } else { 0.98 };
            let level = [0.999, 0.985, 0.96, 0.992][k % 4];
            MatrixRow {
                action_class: s(name),
                target,
                cells: (0..ps.len())
                    .map(|i| {
                        if (k + i) % 11 == 0 {
                            None
                        } else {
                            Some((level + 0.01 * wobble(i, k)).min(1.0))
                        }
                    })
                    .collect(),
                n: (0..ps.len())
                    .map(|i| {
                        if (k + i) % 11 == 0 {
                            0
                        } else {
                            (40 + (i * 97 + k * 131) % 24_000) as u64
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    m.classes = vec![
        class("isolate_host", "promote_gated", 0.99, 0.992, 0, 13),
        class("close_alert_benign", "hold", 0.98, 0.975, 1, 13),
        class(
            "disable_user_account_in_privileged_directory_group",
            "demote",
            0.995,
            0.97,
            2,
            13,
        ),
    ];
    m.manipulation = [
        "isolate_host",
        "disable_user_account_in_privileged_directory_group",
        "block_ip",
    ]
    .iter()
    .enumerate()
    .flat_map(|(k, c)| {
        (0..61).map(move |d| {
            let flagged = k < 2 && (40 + k * 5..44 + k * 5).contains(&d);
            let base = 30.0 + 5.0 * k as f64 + d as f64 * 0.1;
            ManipulationDay {
                action_class: s(c),
                day: if d < 30 {
                    format!("2025-11-{:02}", d + 1)
                } else {
                    format!("2025-12-{:02}", d - 29)
                },
                volume: if flagged {
                    (base * 3.5) as u64
                } else {
                    (base + 8.0 * wobble(d, k)) as u64
                },
                baseline: base,
                flagged,
            }
        })
    })
    .collect();
    m.autonomy = ["low", "medium", "high", "critical"]
        .iter()
        .enumerate()
        .flat_map(|(t, tier)| {
            let ps = ps.clone();
            (0..ps.len()).map(move |i| AutonomyPoint {
                period: ps[i].clone(),
                tier: s(tier),
                share: [0.55, 0.3, 0.08, 0.0][t] + [0.02, 0.015, 0.01, 0.0][t] * i as f64,
            })
        })
        .collect();
    m
}

/// The board model for snapshots and looking.
pub fn board_model() -> BoardModel {
    let m = sample_model();
    BoardModel {
        quarter: s("2025-Q4"),
        previous_quarter: Some(s("2025-Q3")),
        autonomy_share: 0.31,
        autonomy_share_previous: Some(0.24),
        classes_by_mode: vec![(s("low"), 2, 6), (s("medium"), 4, 2), (s("high"), 5, 1), (s("critical"), 3, 0)],
        reversed_actions: 14,
        autonomous_actions: 48_210,
        manipulation_signals: vec![s(
            "On 10–13 December, host isolation requests quadrupled and targeted three finance servers; the AI was not allowed to act on them alone.",
        )],
        hours_saved: 1243.6,
        top_risks: vec![
            s("Closing benign alerts is just below the agreement target; it stays under analyst approval."),
            s("A new model version ships in January; its behaviour will be checked before any promotion."),
            s("Two kinds of action have no named owner in the policy."),
        ],
        risks_as_of: None,
        autonomy: m.autonomy,
        engine_version: s("0.1.0"),
        run_id: s("run-5f2c9a"),
    }
}

/// Puts `evil` into every string field of a report model.
pub fn hostile_model(evil: &str) -> ReportModel {
    let e = || evil.to_string();
    let mut m = small_model();
    m.title = e();
    m.period_label = e();
    m.engine_version = e();
    m.run_id = e();
    m.policy_path = e();
    m.policy_hash = e();
    for f in &mut m.inputs {
        f.table = e();
        f.path = e();
        f.sha256 = e();
    }
    m.quality.rejects_by_reason = vec![(e(), e(), 1)];
    m.quality.unowned_classes = vec![e()];
    for d in &mut m.decisions {
        d.action_class = e();
        d.owner = Some(e());
        d.recommendation = e();
        d.headline = e();
    }
    for c in &mut m.classes {
        c.action_class = e();
        c.owner = Some(e());
        c.tier = Some(e());
        c.current_mode = e();
        c.recommendation = e();
        c.gate = Some(e());
        c.reasons = vec![e()];
        c.hold = Some(e());
        c.key_numbers = vec![(e(), e())];
        for a in &mut c.agreement {
            a.period = e();
        }
    }
    m.periods = m.periods.iter().map(|_| e()).collect();
    for r in &mut m.matrix {
        r.action_class = e();
    }
    for d in &mut m.manipulation {
        d.action_class = e();
        d.day = e();
    }
    for a in &mut m.autonomy {
        a.period = e();
        a.tier = e();
    }
    m
}

/// Puts `evil` into every string field of a board model.
pub fn hostile_board(evil: &str) -> BoardModel {
    let e = || evil.to_string();
    let mut b = board_model();
    b.quarter = e();
    b.previous_quarter = Some(e());
    b.classes_by_mode = vec![(e(), 1, 2)];
    b.manipulation_signals = vec![e()];
    b.top_risks = vec![e()];
    for a in &mut b.autonomy {
        a.period = e();
        a.tier = e();
    }
    b.engine_version = e();
    b.run_id = e();
    b
}
