//! The planted effects are in the data: each check recomputes its statistic from the chunks
//! with a plain loop (final verdict = latest `reviewed_at`), independently of the generator.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;
use std::time::Instant;

use readiness_simulate::{
    decision_id, target_name, DecisionChunk, SimConfig, Simulator, VerdictChunk, APPROVE, REJECT,
    TIMEOUT,
};

const DAY_US: i64 = 86_400_000_000;

/// One decision with its final verdict, flattened for the checks.
struct Row {
    month: usize,
    day: i64,
    class: String,
    version: String,
    confidence: f64,
    privileged: bool,
    criticality: u8,
    target: String,
    techniques: Vec<String>,
    final_verdict: Option<u8>,
}

struct Sim {
    sim: Simulator,
    chunks: Vec<(DecisionChunk, VerdictChunk)>,
    rows: Vec<Row>,
}

fn sim() -> &'static Sim {
    static SIM: OnceLock<Sim> = OnceLock::new();
    SIM.get_or_init(|| {
        let sim = Simulator::new(SimConfig::default());
        let chunks: Vec<_> = (0..sim.months()).map(|m| sim.month(m)).collect();
        let dict = sim.dictionaries();
        let mut rows = Vec::new();
        for (m, (d, v)) in chunks.iter().enumerate() {
            // Final verdict: the row with the latest reviewed_at.
            let mut latest: BTreeMap<u64, (i64, u8)> = BTreeMap::new();
            for i in 0..v.len() {
                let e = latest
                    .entry(v.decision_index[i])
                    .or_insert((i64::MIN, TIMEOUT));
                if v.reviewed_at_us[i] > e.0 {
                    *e = (v.reviewed_at_us[i], v.verdict[i]);
                }
            }
            for i in 0..d.len() {
                let class = dict.classes[usize::from(d.class[i])].clone();
                rows.push(Row {
                    month: m,
                    day: d.decided_at_us[i].div_euclid(DAY_US),
                    target: target_name(&class, d.target[i]),
                    class,
                    version: dict.model_versions[usize::from(d.model_version[i])].clone(),
                    confidence: d.confidence[i],
                    privileged: d.privileged[i],
                    criticality: d.criticality[i],
                    techniques: d
                        .techniques(i)
                        .iter()
                        .map(|&t| dict.techniques[usize::from(t)].clone())
                        .collect(),
                    final_verdict: latest.get(&(d.first_index + i as u64)).map(|x| x.1),
                });
            }
        }
        Sim { sim, chunks, rows }
    })
}

/// (mean confidence, agreement, reviewed) over the rows matching `keep`.
fn stats(keep: impl Fn(&Row) -> bool) -> (f64, f64, usize) {
    let (mut n, mut conf, mut reviewed, mut approved) = (0usize, 0.0, 0usize, 0usize);
    for r in sim().rows.iter().filter(|r| keep(r)) {
        n += 1;
        conf += r.confidence;
        if let Some(v) = r.final_verdict.filter(|&v| v != TIMEOUT) {
            reviewed += 1;
            approved += usize::from(v == APPROVE);
        }
    }
    (conf / n as f64, approved as f64 / reviewed as f64, reviewed)
}

#[test]
fn sizes_are_as_configured() {
    let s = sim();
    let total = s.rows.len() as f64;
    assert!((total / 200_000.0 - 1.0).abs() < 0.01, "{total}");
    let mut next = 0;
    for (m, (d, _)) in s.chunks.iter().enumerate() {
        assert_eq!(d.first_index, next);
        assert_eq!(d.len() as u64, s.sim.month_len(m));
        assert_eq!(d.technique_offsets.len(), d.len() + 1);
        next += d.len() as u64;
    }
}

#[test]
fn reviews_follow_their_decision_in_the_same_month() {
    for (d, v) in &sim().chunks {
        for i in 0..v.len() {
            let idx = v.decision_index[i];
            assert!(idx >= d.first_index && idx < d.first_index + d.len() as u64);
            let decided = d.decided_at_us[(idx - d.first_index) as usize];
            assert!(v.reviewed_at_us[i] > decided);
        }
        assert!(d.decided_at_us.windows(2).all(|w| w[0] <= w[1]));
        assert!(d.confidence.iter().all(|c| (0.0..=1.0).contains(c)));
    }
}

#[test]
fn verdict_mix_matches_the_process() {
    let s = sim();
    let n = s.rows.len() as f64;
    let timeouts = s
        .rows
        .iter()
        .filter(|r| r.final_verdict == Some(TIMEOUT))
        .count() as f64;
    assert!(
        (timeouts / n - 0.02).abs() < 0.004,
        "timeout share {}",
        timeouts / n
    );
    let unreviewed = s.rows.iter().filter(|r| r.final_verdict.is_none()).count() as f64;
    assert!(
        (0.03..0.08).contains(&(unreviewed / n)),
        "{}",
        unreviewed / n
    );
    let rows: usize = s.chunks.iter().map(|(_, v)| v.len()).sum();
    let doubles = rows as f64 - (n - unreviewed);
    assert!((0.012..0.03).contains(&(doubles / n)), "{}", doubles / n);
    let analysts: BTreeSet<u16> = s
        .chunks
        .iter()
        .flat_map(|(_, v)| v.analyst.iter().copied())
        .collect();
    assert_eq!(analysts.len(), 15);
}

#[test]
fn promotable_classes_agree_above_099_in_v3() {
    for class in ["enrich_alert", "tag_alert", "add_to_watchlist"] {
        let (_, agreement, reviewed) = stats(|r| r.class == class && r.version == "v3");
        assert!(agreement >= 0.99, "{class}: {agreement}");
        assert!(reviewed >= 3_000, "{class}: {reviewed}");
    }
}

#[test]
fn segments_agree_less_on_privileged_and_critical_targets() {
    // Per class, so the class mix of each segment cannot confound; averaged over four classes
    // (outside the burst month) so that one small segment's noise cannot decide.
    let classes = [
        "close_alert_benign",
        "quarantine_email",
        "isolate_host",
        "reset_password",
    ];
    let mut gap = 0.0;
    for class in classes {
        let (_, base, _) = stats(|r| r.class == class && !r.privileged && r.criticality < 2);
        let (_, hard, _) =
            stats(|r| r.class == class && r.month != 9 && (r.privileged || r.criticality == 3));
        gap += (base - hard) / classes.len() as f64;
    }
    assert!(gap > 0.015, "mean agreement gap {gap}");
}

#[test]
fn close_alert_benign_is_overconfident() {
    let (conf, agreement, _) = stats(|r| r.class == "close_alert_benign");
    assert!(conf - agreement > 0.06, "{conf} - {agreement}");
    assert!((0.93..0.97).contains(&conf));
}

#[test]
fn block_ip_agreement_drops_under_v3_with_unchanged_confidence() {
    let (c_old, a_old, _) = stats(|r| r.class == "block_ip" && r.version != "v3");
    let (c_new, a_new, n_new) = stats(|r| r.class == "block_ip" && r.version == "v3");
    assert!(a_old - a_new >= 0.04, "{a_old} -> {a_new} ({n_new})");
    assert!((c_old - c_new).abs() < 0.01, "{c_old} -> {c_new}");
}

#[test]
fn quarantine_email_confidence_shifts_at_month_7_with_agreement_unchanged() {
    let (c_before, a_before, _) = stats(|r| r.class == "quarantine_email" && r.month < 6);
    let (c_after, a_after, _) = stats(|r| r.class == "quarantine_email" && r.month >= 6);
    assert!(c_before - c_after >= 0.07, "{c_before} -> {c_after}");
    assert!((a_before - a_after).abs() < 0.02, "{a_before} -> {a_after}");
}

#[test]
fn stable_classes_do_not_drift() {
    for class in ["enrich_alert", "reset_password", "kill_process"] {
        let (c1, a1, _) = stats(|r| r.class == class && r.month < 6);
        let (c2, a2, _) = stats(|r| r.class == class && r.month >= 6);
        assert!((c1 - c2).abs() < 0.005, "{class}: {c1} vs {c2}");
        assert!((a1 - a2).abs() < 0.015, "{class}: {a1} vs {a2}");
    }
}

#[test]
fn isolate_host_burst_is_visible_and_rejected() {
    let s = sim();
    let truth = s.sim.truth();
    let burst = truth.burst.expect("burst planted");
    let burst_days: BTreeSet<i64> = (0..5)
        .map(|d| burst.start_us.div_euclid(DAY_US) + d)
        .collect();
    let mut daily: BTreeMap<i64, usize> = BTreeMap::new();
    for r in s.rows.iter().filter(|r| r.class == "isolate_host") {
        *daily.entry(r.day).or_default() += 1;
    }
    let mut volumes: Vec<usize> = daily.values().copied().collect();
    volumes.sort_unstable();
    let median = volumes[volumes.len() / 2] as f64;
    for day in &burst_days {
        assert!(
            daily[day] as f64 >= 3.0 * median,
            "{} vs median {median}",
            daily[day]
        );
    }
    let (mut reviewed, mut rejected) = (0, 0);
    let mut targets = BTreeSet::new();
    for r in s
        .rows
        .iter()
        .filter(|r| r.class == "isolate_host" && burst_days.contains(&r.day))
    {
        if let Some(v) = r.final_verdict.filter(|&v| v != TIMEOUT) {
            reviewed += 1;
            rejected += usize::from(v == REJECT);
        }
        if r.confidence >= 0.95 {
            targets.insert(r.target.clone());
        }
    }
    assert!(
        rejected as f64 / reviewed as f64 > 0.5,
        "{rejected}/{reviewed}"
    );
    // The burst hosts appear only in the burst, and normal isolations are spread out.
    let names: BTreeSet<String> = burst.targets.iter().map(|t| t.name.clone()).collect();
    assert!((4..=6).contains(&names.len()));
    assert!(names.is_subset(&targets));
    for r in s.rows.iter().filter(|r| names.contains(&r.target)) {
        assert!(burst_days.contains(&r.day) && r.class == "isolate_host");
        assert!(r.confidence >= 0.95);
    }
    let other: BTreeSet<&str> = s
        .rows
        .iter()
        .filter(|r| r.class == "isolate_host" && !names.contains(&r.target))
        .map(|r| r.target.as_str())
        .collect();
    assert!(other.len() > 1_000, "{}", other.len());
}

#[test]
fn v2_fabricates_technique_ids_and_v1_v3_do_not() {
    let current: BTreeSet<&str> = include_str!("../../../data/attack/enterprise_techniques.tsv")
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.get(3) == Some(&"false")).then_some(f[0])
        })
        .collect();
    let known: BTreeSet<&str> = include_str!("../../../data/attack/enterprise_techniques.tsv")
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .collect();
    let truth = sim().sim.truth();
    let fab = truth.fabricated_reasoning.expect("fabrication planted");
    for version in ["v1", "v2", "v3"] {
        let (mut n, mut invented, mut revoked) = (0usize, 0usize, 0usize);
        for r in sim().rows.iter().filter(|r| r.version == version) {
            n += 1;
            invented += usize::from(r.techniques.iter().any(|t| !known.contains(t.as_str())));
            revoked += usize::from(
                r.techniques
                    .iter()
                    .any(|t| known.contains(t.as_str()) && !current.contains(t.as_str())),
            );
            assert!(r.techniques.len() <= 3);
        }
        let (inv, rev) = (invented as f64 / n as f64, revoked as f64 / n as f64);
        if version == "v2" {
            assert!((inv - fab.invented_share).abs() < 0.02, "v2 invented {inv}");
            assert!((rev - fab.revoked_share).abs() < 0.02, "v2 revoked {rev}");
        } else {
            assert_eq!(invented, 0, "{version}");
            assert_eq!(revoked, 0, "{version}");
        }
    }
}

#[test]
fn rubber_stamper_approves_in_seconds() {
    let s = sim();
    let stamper = s
        .sim
        .dictionaries()
        .analysts
        .iter()
        .position(|a| *a == s.sim.truth().rubber_stamp.analyst)
        .unwrap() as u16;
    let (mut fast, mut total) = (0usize, 0usize);
    for (d, v) in &s.chunks {
        for i in 0..v.len() {
            if v.analyst[i] == stamper && v.verdict[i] != TIMEOUT {
                total += 1;
                let decided = d.decided_at_us[(v.decision_index[i] - d.first_index) as usize];
                fast += usize::from(
                    v.verdict[i] == APPROVE && v.reviewed_at_us[i] - decided <= 10_000_000,
                );
            }
        }
    }
    assert!(fast as f64 / total as f64 > 0.9, "{fast}/{total}");
}

#[test]
fn same_seed_same_months_in_any_order_and_other_seed_differs() {
    let cfg = SimConfig {
        decisions: 30_000,
        ..SimConfig::default()
    };
    let a = Simulator::new(cfg.clone());
    let b = Simulator::new(cfg.clone());
    for m in (0..a.months()).rev() {
        assert_eq!(a.month(m), b.month(m));
    }
    let c = Simulator::new(SimConfig { seed: 8, ..cfg });
    assert_ne!(a.month(3).0, c.month(3).0);
    assert_eq!(a.dictionaries(), c.dictionaries());
    assert_eq!(decision_id(42), "d000000042");
    assert_eq!(target_name("isolate_host", 42), "host-00042");
    assert_eq!(target_name("disable_account", 42), "user-00042");
    assert_eq!(target_name("isolate_production_server", 42), "srv-00042");
}

/// Throughput check, run by hand: `cargo test --release -- --ignored --nocapture`.
#[test]
#[ignore]
fn generate_ten_million() {
    let sim = Simulator::new(SimConfig {
        decisions: 10_000_000,
        ..SimConfig::default()
    });
    let start = Instant::now();
    let (mut decisions, mut verdicts) = (0usize, 0usize);
    for m in 0..sim.months() {
        let (d, v) = sim.month(m);
        decisions += d.len();
        verdicts += v.len();
    }
    let secs = start.elapsed().as_secs_f64();
    println!("generated {decisions} decisions and {verdicts} verdicts in {secs:.2} s");
    assert!(decisions >= 10_000_000);
}
