//! End-to-end tests of the `readiness` binary on data from its own generator: the output
//! contract, the planted effects, determinism, and an independent reference implementation.

mod util;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use polars::prelude::*;
use serde_json::Value;
use sha2::Digest;
use util::*;

/// One generated dataset (60,000 decisions over 12 months, seed 11) and one analysis of it,
/// shared by the tests of this binary.
struct Fixture {
    data: PathBuf,
    run: PathBuf,
    truth: Value,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = scratch("e2e");
        let data = dir.join("data");
        generate(&data, 60000, 11, &[]);
        let run_dir = dir.join("run");
        let o = analyze(
            &data.join("decisions"),
            &data.join("verdicts"),
            &run_dir,
            &[],
        );
        assert_eq!(outcome(&o).0, 0, "analyze: {}", outcome(&o).2);
        let truth =
            serde_json::from_str(&std::fs::read_to_string(data.join("truth.json")).unwrap())
                .unwrap();
        Fixture {
            data,
            run: run_dir,
            truth,
        }
    })
}

/// Runs a Python reference script from `tests/reference/` and returns its standard output;
/// fails the test with its output when it exits non-zero.
fn python(script: &str, args: &[&Path]) -> String {
    let o = Command::new("python3")
        .arg(root().join("tests/reference").join(script))
        .args(args)
        .output()
        .expect("python3 runs (install requirements-dev.txt)");
    let (code, out, err) = outcome(&o);
    assert_eq!(code, 0, "{script} failed:\n{out}\n{err}");
    out
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn recommendation<'a>(recs: &'a Value, class: &str) -> &'a Value {
    recs.as_array()
        .unwrap()
        .iter()
        .find(|r| r["action_class"] == class)
        .unwrap_or_else(|| panic!("no recommendation for {class}"))
}

#[test]
fn validate_offers_only_the_options_it_takes() {
    let help = |command: &str| outcome(&run(&[command, "--help"])).1;
    assert!(help("analyze").contains("--stats <DIR>"));
    let validate = help("validate");
    assert!(validate.contains("--decisions"), "{validate}");
    assert!(!validate.contains("--stats <DIR>"), "{validate}");
    let (code, _, err) = outcome(&run(&["validate", "--stats", "stats"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--stats does not apply"), "{err}");
}

/// The suite's scratch directories do not pile up: those of ended test processes are removed,
/// those of live ones and other names kept.
#[test]
fn scratch_directories_of_ended_test_processes_are_removed() {
    if !Path::new("/proc/self").exists() {
        return; // Without /proc nothing is removed.
    }
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    // Above Linux's largest pid (2^22), so no process has it.
    let ended = base.join("sweep-4294967294-0");
    let live = base.join(format!("sweep-{}-4294967294", std::process::id()));
    let other = base.join("sweep-not-a-pid-0");
    for dir in [&ended, &live, &other] {
        std::fs::create_dir_all(dir.join("inner")).unwrap();
        std::fs::write(dir.join("inner/file"), "x").unwrap();
    }
    readiness::partition::remove_ended(&base, "");
    assert!(!ended.exists(), "{} is left", ended.display());
    assert!(live.join("inner/file").exists() && other.join("inner/file").exists());
    for dir in [&live, &other] {
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn run_directory_has_the_contract_files_and_columns() {
    let f = fixture();
    for rel in [
        "metrics/agreement.parquet",
        "metrics/calibration.parquet",
        "metrics/calibration_bins.parquet",
        "metrics/drift.parquet",
        "metrics/gates.parquet",
        "recommendations.json",
        "manifest.json",
        "report.html",
        "report.md",
        "rejects.parquet",
    ] {
        assert!(f.run.join(rel).is_file(), "missing {rel}");
    }
    let agreement = read_parquet(&f.run.join("metrics/agreement.parquet"));
    let names: Vec<&str> = agreement
        .get_column_names()
        .iter()
        .map(|s| s.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "action_class",
            "period_start",
            "n_decisions",
            "n_reviewed",
            "n_approve",
            "n_override",
            "n_reject",
            "n_timeout",
            "n_unreviewed",
            "agreement",
            "wilson_low",
            "wilson_high",
            "exact_low",
            "exact_high"
        ]
    );
    assert_eq!(
        agreement.column("period_start").unwrap().dtype(),
        &DataType::Date
    );
    // 14 classes × 12 months.
    assert_eq!(agreement.height(), 14 * 12);
    let cal = read_parquet(&f.run.join("metrics/calibration.parquet"));
    for c in ["action_class", "n", "brier", "ece", "mce"] {
        assert!(cal.column(c).is_ok(), "calibration lacks {c}");
    }
    let drift = read_parquet(&f.run.join("metrics/drift.parquet"));
    for c in [
        "action_class",
        "period_start",
        "psi",
        "chi2_p",
        "agreement_change",
    ] {
        assert!(drift.column(c).is_ok(), "drift lacks {c}");
    }
    let recs = json(&f.run.join("recommendations.json"));
    for r in recs.as_array().unwrap() {
        for k in [
            "action_class",
            "owner",
            "tier",
            "current_mode",
            "recommendation",
            "reasons",
        ] {
            assert!(r.get(k).is_some(), "recommendation lacks {k}");
        }
        assert!(!r["reasons"].as_array().unwrap().is_empty());
    }
    let m = json(&f.run.join("manifest.json"));
    assert_eq!(m["inputs"].as_array().unwrap().len(), 24);
    // Each input's fingerprint (hashed on a thread of its own while the files are read) is
    // its bytes' SHA-256, digested here in one call, and its size.
    for i in m["inputs"].as_array().unwrap() {
        let path = root().join(i["path"].as_str().unwrap());
        let bytes = std::fs::read(&path).unwrap();
        let digest: String = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(i["sha256"].as_str().unwrap(), digest, "{}", path.display());
        assert_eq!(i["bytes"].as_u64().unwrap(), bytes.len() as u64);
    }
    assert_eq!(m["policy"]["sha256"].as_str().unwrap().len(), 64);
    let html = std::fs::read_to_string(f.run.join("report.html")).unwrap();
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "report.html must not load anything from the network"
    );
    assert!(
        !html.contains("<script"),
        "report.html must not carry scripts"
    );
}

#[test]
fn agreement_counts_add_up_to_the_input() {
    let f = fixture();
    let a = read_parquet(&f.run.join("metrics/agreement.parquet"));
    let sum = |c: &str| -> u64 {
        a.column(c)
            .unwrap()
            .u64()
            .unwrap()
            .into_no_null_iter()
            .sum()
    };
    let m = json(&f.run.join("manifest.json"));
    assert_eq!(
        sum("n_decisions"),
        m["rows"]["decisions_valid"].as_u64().unwrap()
    );
    assert_eq!(
        sum("n_decisions"),
        sum("n_reviewed") + sum("n_timeout") + sum("n_unreviewed")
    );
    assert_eq!(
        sum("n_reviewed"),
        sum("n_approve") + sum("n_override") + sum("n_reject")
    );
    assert_eq!(f.truth["decisions"].as_u64().unwrap(), sum("n_decisions"));
}

/// The planted effects of the generator are found (truth.json says where they are).
#[test]
fn planted_effects_are_found() {
    let f = fixture();
    let recs = json(&f.run.join("recommendations.json"));

    // Never-autonomous categories: `never` whatever the numbers.
    for class in [
        "isolate_production_server",
        "revoke_privileged_access",
        "notify_breach",
        "escalate_law_enforcement",
    ] {
        assert_eq!(
            recommendation(&recs, class)["recommendation"],
            "never",
            "{class}"
        );
    }

    // Effect 1: the over-confident class has a large ECE, fails calibration and is held.
    let over = f.truth["overconfidence"]["class"].as_str().unwrap();
    let cal = read_parquet(&f.run.join("metrics/calibration.parquet"));
    let classes = cal.column("action_class").unwrap().str().unwrap().clone();
    let ece = cal.column("ece").unwrap().f64().unwrap().clone();
    let ece_of = |c: &str| {
        (0..cal.height())
            .find(|&i| classes.get(i) == Some(c))
            .and_then(|i| ece.get(i))
            .unwrap()
    };
    assert!(ece_of(over) > 0.05, "{over} ECE {}", ece_of(over));
    for calibrated in ["enrich_alert", "tag_alert", "add_to_watchlist"] {
        assert!(
            ece_of(calibrated) < 0.02,
            "{calibrated} ECE {}",
            ece_of(calibrated)
        );
    }
    let r = recommendation(&recs, over);
    assert_eq!(r["recommendation"], "hold");
    let reasons = r["reasons"].to_string().to_lowercase();
    assert!(
        reasons.contains("calibration") || reasons.contains("ece"),
        "{reasons}"
    );

    // Effect 2: the version change with an agreement drop is flagged, its PSI stays small.
    let drop = &f.truth["version_agreement_drop"];
    let class = drop["class"].as_str().unwrap();
    let versions = read_parquet(&f.run.join("metrics/versions.parquet"));
    let flagged = versions
        .clone()
        .lazy()
        .filter(
            col("action_class")
                .eq(lit(class))
                .and(col("model_version").eq(lit(drop["to_version"].as_str().unwrap()))),
        )
        .collect()
        .unwrap();
    assert_eq!(flagged.height(), 1);
    assert!(flagged
        .column("flagged")
        .unwrap()
        .bool()
        .unwrap()
        .get(0)
        .unwrap());
    let drift = read_parquet(&f.run.join("metrics/drift.parquet"));
    let psi_max = |class: &str, from: &str| -> f64 {
        let from = readiness_metrics::period::parse_date(from).unwrap();
        drift
            .clone()
            .lazy()
            .filter(
                col("action_class")
                    .eq(lit(class))
                    .and(col("period_start").cast(DataType::Int32).gt_eq(lit(from))),
            )
            .select([col("psi").max()])
            .collect()
            .unwrap()
            .column("psi")
            .unwrap()
            .f64()
            .unwrap()
            .get(0)
            .unwrap()
    };
    assert!(psi_max(class, "2025-04-01") < 0.1, "{class} PSI");
    assert_ne!(recommendation(&recs, class)["recommendation"], "promote");

    // Effect 3: the confidence shift has a large PSI from its month on, and no agreement flag.
    let shift = &f.truth["confidence_shift"];
    let class = shift["class"].as_str().unwrap();
    let from = format!("{}-01", shift["from_month"].as_str().unwrap());
    assert!(psi_max(class, &from) > 0.25, "{class} PSI");
    let agreement_flags = drift
        .clone()
        .lazy()
        .filter(col("action_class").eq(lit(class)))
        .select([col("agreement_flag").cast(DataType::UInt32).sum()])
        .collect()
        .unwrap();
    assert_eq!(
        agreement_flags
            .column("agreement_flag")
            .unwrap()
            .u32()
            .unwrap()
            .get(0),
        Some(0),
        "{class}: agreement unchanged by the shift"
    );

    // Drift-free classes: no PSI flag and no agreement flag in any period.
    let drift_free: Vec<&str> = f.truth["drift_free_classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let false_flags = drift
        .clone()
        .lazy()
        .filter(
            col("action_class")
                .is_in(
                    lit(Series::new("c".into(), &drift_free)).implode(false),
                    false,
                )
                .and(col("psi_flag").or(col("agreement_flag"))),
        )
        .collect()
        .unwrap();
    assert_eq!(
        false_flags.height(),
        0,
        "drift-free classes flagged: {false_flags}"
    );
    // The shifted class is flagged from its month on.
    let shifted = drift
        .clone()
        .lazy()
        .filter(
            col("action_class").eq(lit(class)).and(col("psi_flag")).and(
                col("period_start")
                    .cast(DataType::Int32)
                    .gt_eq(lit(readiness_metrics::period::parse_date(&from).unwrap())),
            ),
        )
        .collect()
        .unwrap();
    assert!(shifted.height() >= 3, "{class} PSI flags: {shifted}");

    // Calibrated, high-agreement low-impact classes are promoted (or gated, or kept hotl).
    let r = recommendation(&recs, "add_to_watchlist");
    assert!(
        ["promote", "promote_gated"].contains(&r["recommendation"].as_str().unwrap()),
        "add_to_watchlist: {r}"
    );
    // Its risk–coverage chart says what the recommendation says about a gate.
    let chart = std::fs::read_to_string(f.run.join("charts/risk_coverage_add_to_watchlist.svg"))
        .expect("risk-coverage chart");
    let expected = match r["recommendation"].as_str() {
        Some("promote") => "no gate needed: the whole class qualifies",
        _ => "gate: confidence ",
    };
    assert!(chart.contains(expected), "legend lacks {expected:?}");
    assert!(!chart.contains("no gate recommended"));
    // A class already running without approval: no gate rule looks at it, and its chart says so.
    let autonomous: Vec<&serde_json::Value> = recs
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["current_mode"] == "hotl")
        .collect();
    assert!(!autonomous.is_empty(), "the policy has hotl classes");
    for r in autonomous {
        let class = r["action_class"].as_str().unwrap();
        let chart =
            std::fs::read_to_string(f.run.join(format!("charts/risk_coverage_{class}.svg")))
                .expect("risk-coverage chart");
        assert!(
            chart.contains("no gate considered: the class already runs without prior approval"),
            "{class}"
        );
    }
}

#[test]
fn drift_exit_code_says_whether_anything_is_flagged() {
    let f = fixture();
    let d = f.data.join("decisions");
    let v = f.data.join("verdicts");
    let o = run(&[
        "--quiet",
        "drift",
        "--decisions",
        d.to_str().unwrap(),
        "--verdicts",
        v.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let (code, out, err) = outcome(&o);
    let watch: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    let flagged = watch["flagged"].as_array().unwrap();
    assert_eq!(code, if flagged.is_empty() { 0 } else { 3 });
    // The last month is under v3: block_ip's regression is flagged.
    assert!(
        flagged
            .iter()
            .any(|x| x["action_class"] == "block_ip" && x["signal"] == "version_regression"),
        "{watch}"
    );

    // A single stable class: nothing flagged, exit 0.
    let dir = scratch("drift-clean");
    let (d, v) = Inputs::valid(2000).write(&dir);
    let o = run(&[
        "--quiet",
        "drift",
        "--decisions",
        d.to_str().unwrap(),
        "--verdicts",
        v.to_str().unwrap(),
    ]);
    let (code, out, err) = outcome(&o);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("nothing flagged"));
    assert!(out.starts_with("drift watch, period 2025-02\n"), "{out}");
}

/// The drift rules judge every period of the evidence window: each period of the window that
/// `drift.parquet` flags is named in the rule's words with its PSI (or agreement), and a rule
/// fails exactly when the window holds such a period, whatever the latest period shows.
#[test]
fn drift_rules_name_the_flagged_periods_of_the_evidence_window() {
    let f = fixture();
    let recs = json(&f.run.join("recommendations.json"));
    let drift = read_parquet(&f.run.join("metrics/drift.parquet"));
    let col_str = |c: &str| drift.column(c).unwrap().str().unwrap().clone();
    let classes = col_str("action_class");
    let starts = drift
        .column("period_start")
        .unwrap()
        .cast(&DataType::Int32)
        .unwrap();
    let starts = starts.i32().unwrap().clone();
    let psi = drift.column("psi").unwrap().f64().unwrap().clone();
    let psi_flag = drift.column("psi_flag").unwrap().bool().unwrap().clone();
    let agreement = drift
        .column("agreement_current")
        .unwrap()
        .f64()
        .unwrap()
        .clone();
    let agreement_flag = drift
        .column("agreement_flag")
        .unwrap()
        .bool()
        .unwrap()
        .clone();
    let mut flagged_outside_latest = 0;
    for r in recs.as_array().unwrap() {
        if !r["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == "drift.psi")
        {
            continue; // unowned or never: no drift rule
        }
        let class = r["action_class"].as_str().unwrap();
        let window: Vec<i32> = r["evidence"]["evidence_periods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| readiness_metrics::period::parse_date(p.as_str().unwrap()).unwrap())
            .collect();
        let rule = |id: &str| {
            r["rules"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["id"] == id)
                .unwrap_or_else(|| panic!("{class}: no rule {id}"))
                .clone()
        };
        let (psi_rule, agreement_rule) = (rule("drift.psi"), rule("drift.agreement"));
        let (mut psi_periods, mut drop_periods) = (0, 0);
        for i in 0..drift.height() {
            if classes.get(i) != Some(class) || !window.contains(&starts.get(i).unwrap()) {
                continue;
            }
            let (y, m, _) = readiness_metrics::period::civil_from_days(starts.get(i).unwrap());
            let label = format!("{y:04}-{m:02}");
            if psi_flag.get(i) == Some(true) {
                psi_periods += 1;
                let words = format!("{:.3} in {label}", psi.get(i).unwrap());
                let text = psi_rule["text"].as_str().unwrap();
                assert!(text.contains(&words), "{class}: {text} lacks {words}");
                if starts.get(i) != window.last().copied() {
                    flagged_outside_latest += 1;
                }
            }
            if agreement_flag.get(i) == Some(true) {
                drop_periods += 1;
                let words = format!("{label} agreement {:.4}", agreement.get(i).unwrap());
                let text = agreement_rule["text"].as_str().unwrap();
                assert!(text.contains(&words), "{class}: {text} lacks {words}");
            }
        }
        let fails = |rule: &Value| rule["outcome"] == "fail";
        assert_eq!(fails(&psi_rule), psi_periods > 0, "{class}: {psi_rule}");
        assert_eq!(
            fails(&agreement_rule),
            drop_periods > 0,
            "{class}: {agreement_rule}"
        );
    }
    // The fixture has a drift flagged before its latest period (the burst month).
    assert!(flagged_outside_latest > 0);
}

/// Inputs::valid(2000) (January and February 2025) and `extra` more `enrich_alert`
/// decisions from `at` on, an hour apart, each approved ten minutes later.
fn with_late_rows(dir: &Path, at: i64, extra: usize) -> (PathBuf, PathBuf) {
    let mut x = Inputs::valid(2000);
    for i in 0..extra {
        let t = at + i as i64 * HOUR;
        x.decision_id.push(Some(format!("late{i}")));
        x.decided_at.push(Some(t));
        x.action_class.push(Some("enrich_alert".into()));
        x.confidence.push(Some(0.9));
        x.model_version.push(Some("v1".into()));
        x.asset_criticality.push(Some("low".into()));
        x.privileged.push(Some(false));
        x.v_decision_id.push(Some(format!("late{i}")));
        x.reviewed_at.push(Some(t + HOUR / 6));
        x.analyst_id.push(Some("a0".into()));
        x.verdict.push(Some("approve".into()));
    }
    x.write(dir)
}

/// A stray row far after the rest decides the evaluated period: `analyze` and `drift` warn,
/// and the drift watch, which has nothing to compare that period with, exits 5, not 0.
#[test]
fn a_stray_or_thin_latest_period_is_warned_about() {
    const JUNE_2025: i64 = T0 + 151 * 24 * HOUR;
    const MARCH_2025: i64 = T0 + 59 * 24 * HOUR;
    let dir = scratch("stray-period");
    let (d, v) = with_late_rows(&dir.join("stray"), JUNE_2025, 1);
    let o = analyze(&d, &v, &dir.join("run"), &[]);
    let (code, _, err) = outcome(&o);
    assert_eq!(code, 0, "{err}");
    let warning = "readiness: warning: the evaluated period 2025-06 (the latest with a decision) \
                   holds 1 decision and follows 3 periods without any after 2025-02";
    assert!(err.starts_with(warning), "{err}");
    let manifest = json(&dir.join("run/manifest.json"));
    let warnings = manifest["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{manifest}");
    let recorded = warnings[0].as_str().unwrap();
    assert!(
        recorded.starts_with(warning.trim_start_matches("readiness: warning: ")),
        "{recorded}"
    );

    let drift = |d: &Path, v: &Path| {
        let o = run(&[
            "--quiet",
            "drift",
            "--decisions",
            d.to_str().unwrap(),
            "--verdicts",
            v.to_str().unwrap(),
            "--format",
            "json",
        ]);
        assert_no_panic(&o);
        let (code, out, err) = outcome(&o);
        let watch: Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
        (code, watch, err)
    };
    // validate says so too, in its report.
    let o = run(&[
        "validate",
        "--decisions",
        d.to_str().unwrap(),
        "--verdicts",
        v.to_str().unwrap(),
    ]);
    let (code, out, _) = outcome(&o);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "\nwarning: {}",
            warning.trim_start_matches("readiness: warning: ")
        )) && out.ends_with("ok: the inputs can be analysed\n"),
        "{out}"
    );
    let (code, watch, err) = drift(&d, &v);
    assert_eq!(code, 5, "{watch}");
    assert_eq!(
        watch["unchecked"],
        serde_json::json!(["enrich_alert"]),
        "{watch}"
    );
    assert_eq!(watch["flagged"], serde_json::json!([]), "{watch}");
    assert!(err.starts_with(warning), "{err}");
    assert_eq!(watch["warnings"].as_array().unwrap().len(), 1, "{watch}");

    // Five decisions in March, right after February's thousand: a period that has only begun.
    let (d, v) = with_late_rows(&dir.join("thin"), MARCH_2025, 5);
    let (_, watch, err) = drift(&d, &v);
    assert!(
        err.starts_with(
            "readiness: warning: the evaluated period 2025-03 (the latest with a decision) \
             holds 5 decisions, 0.5% of the median earlier period"
        ),
        "{err}"
    );
    assert_eq!(watch["warnings"].as_array().unwrap().len(), 1, "{watch}");

    // Nothing looks wrong: no warning anywhere.
    let (d, v) = Inputs::valid(2000).write(&dir);
    let o = analyze(&d, &v, &dir.join("plain"), &[]);
    assert_eq!(outcome(&o), (0, String::new(), String::new()));
    assert!(json(&dir.join("plain/manifest.json"))
        .get("warnings")
        .is_none());
}

/// A policy class spelled almost like an unowned class of the data, and a fixed baseline
/// without data, are warned about; the run goes on.
#[test]
fn a_misspelled_policy_class_and_an_empty_baseline_are_warned_about() {
    let dir = scratch("policy-warnings");
    let (d, v) = Inputs::valid(2000).write(&dir);
    let bundled = std::fs::read_to_string(root().join("data/policy.toml")).unwrap();
    let policy = dir.join("policy.toml");
    let text = bundled
        .replace("[classes.isolate_host]", "[classes.isolate_hosts]")
        .replace(
            "# baseline_start = \"2024-01-01\"",
            "baseline_start = \"2024-01-01\"",
        )
        .replace(
            "# baseline_end = \"2024-03-31\"",
            "baseline_end = \"2024-03-31\"",
        );
    std::fs::write(&policy, text).unwrap();
    let o = analyze(
        &d,
        &v,
        &dir.join("run"),
        &["--policy", policy.to_str().unwrap()],
    );
    let (code, _, err) = outcome(&o);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines[0].starts_with(
            "readiness: warning: the policy's fixed baseline (2024-01-01 to 2024-03-31"
        ) && lines[0].contains("holds no period with a decision"),
        "{err}"
    );
    assert!(
        lines[1].starts_with(
            "readiness: warning: policy class 'isolate_hosts' matches no decision, and the \
             data's 'isolate_host' is without a policy entry"
        ),
        "{err}"
    );
    let manifest = json(&dir.join("run/manifest.json"));
    assert_eq!(
        manifest["warnings"].as_array().unwrap().len(),
        2,
        "{manifest}"
    );

    // A class name from the data with a terminal control character is printed cleaned.
    let mut x = Inputs::valid(2000);
    for c in x.action_class.iter_mut() {
        if c.as_deref() == Some("isolate_host") {
            *c = Some("isolate_hos\u{1b}t".into());
        }
    }
    let (d, v) = x.write(&dir.join("control"));
    let o = analyze(&d, &v, &dir.join("control-run"), &[]);
    let (code, _, err) = outcome(&o);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("the data's 'isolate_hos t' is without a policy entry")
            && !err.contains('\u{1b}'),
        "{err:?}"
    );
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn two_runs_are_byte_identical_whatever_the_thread_count() {
    let f = fixture();
    let dir = scratch("determinism");
    let again = dir.join("again");
    let o = analyze(
        &f.data.join("decisions"),
        &f.data.join("verdicts"),
        &again,
        &[],
    );
    assert_eq!(outcome(&o).0, 0);
    let one_thread = dir.join("one");
    let ledger = dir.join("one.ledger.jsonl");
    let o = run(&[
        "--quiet",
        "--threads",
        "1",
        "analyze",
        "--decisions",
        f.data.join("decisions").to_str().unwrap(),
        "--verdicts",
        f.data.join("verdicts").to_str().unwrap(),
        "--out",
        one_thread.to_str().unwrap(),
        "--ledger",
        ledger.to_str().unwrap(),
    ]);
    assert_eq!(outcome(&o).0, 0);
    let a = files(&f.run);
    for other in [&again, &one_thread] {
        let b = files(other);
        assert_eq!(
            a.keys().collect::<Vec<_>>(),
            b.keys().collect::<Vec<_>>(),
            "same files"
        );
        for (k, v) in &a {
            assert!(v == &b[k], "{k} differs between runs");
        }
    }
}

#[test]
fn ledger_appends_once_per_run() {
    let dir = scratch("ledger");
    let (d, v) = Inputs::valid(300).write(&dir);
    let out = dir.join("run");
    for _ in 0..2 {
        let o = analyze(&d, &v, &out, &[]);
        assert_eq!(outcome(&o).0, 0, "{}", outcome(&o).2);
    }
    let ledger = std::fs::read_to_string(out.with_extension("ledger.jsonl")).unwrap();
    let lines: Vec<Value> = ledger
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "two classes, one run: {ledger}");
    assert!(lines.iter().all(|l| l["run_id"] == lines[0]["run_id"]));
}

#[test]
fn explain_prints_the_evidence_chain() {
    let f = fixture();
    let o = run(&["explain", "isolate_host", "--run", f.run.to_str().unwrap()]);
    let (code, out, err) = outcome(&o);
    assert_eq!(code, 0, "{err}");
    for needle in [
        "isolate_host",
        "sha256",
        "policy",
        "rules",
        "evidence.anytime",
        "target_agreement",
    ] {
        assert!(out.contains(needle), "explain lacks {needle}: {out}");
    }
    // The evidence window is named by its periods, in the report too.
    assert!(
        out.contains("evidence window: 2025-10 to 2025-12 (month periods"),
        "{out}"
    );
    let md = std::fs::read_to_string(f.run.join("report.md")).unwrap();
    assert!(md.contains("| Evidence window | 2025-10 to 2025-12 |"));
    assert!(
        !md.contains("2025-12-01"),
        "a period printed as its first day"
    );
    let o = run(&["explain", "no_such_class", "--run", f.run.to_str().unwrap()]);
    let (code, _, err) = outcome(&o);
    assert_eq!(code, 1);
    assert!(
        err.contains("no_such_class") && err.contains("isolate_host"),
        "{err}"
    );
}

#[test]
fn policy_check_prints_effective_settings() {
    let o = run(&["policy", "check", "data/policy.toml"]);
    let (code, out, err) = outcome(&o);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("isolate_host") && out.contains("notify_breach"),
        "{out}"
    );
}

#[test]
fn validate_reports_counts() {
    let dir = scratch("validate");
    let validate = |d: &Path, v: &Path| {
        outcome(&run(&[
            "validate",
            "--decisions",
            d.to_str().unwrap(),
            "--verdicts",
            v.to_str().unwrap(),
        ]))
    };
    let mut x = Inputs::valid(200);
    x.verdict[3] = Some("maybe".into());
    let (d, v) = x.write(&dir);
    let (code, out, err) = validate(&d, &v);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("unknown_verdict: 1"), "{out}");
    assert!(out.contains("200 read, 200 valid"), "{out}");

    // Over the limit: the counts are above, the message does not send the user to validate.
    for v in x.verdict.iter_mut().take(20) {
        *v = Some("maybe".into());
    }
    let (d, v) = x.write(&dir);
    let (code, out, err) = validate(&d, &v);
    assert_eq!(code, 4, "{err}");
    assert!(out.contains("unknown_verdict: 20"), "{out}");
    assert!(
        out.contains("error: verdicts: 20 of 200 rows rejected")
            && out.ends_with("fix the input or raise the limit\n")
            && !out.contains("`readiness validate`"),
        "{out}"
    );
    // One table without the other: the message offers what validate takes.
    let o = run(&["validate", "--decisions", d.to_str().unwrap()]);
    let (code, _, err) = outcome(&o);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("give both --decisions and --verdicts, or neither"),
        "{err}"
    );
}

/// Counts and intervals checked against an independent implementation: pyarrow for the final
/// verdicts and counts, statsmodels' `proportion_confint` for the bounds
/// (`tests/reference/agreement_reference.py`).
#[test]
fn agreement_matches_an_independent_implementation() {
    let f = fixture();
    let out = python(
        "agreement_reference.py",
        &[
            &f.data.join("decisions"),
            &f.data.join("verdicts"),
            &f.run.join("metrics/agreement.parquet"),
        ],
    );
    assert!(out.contains("rows checked: 168"), "{out}");
}

/// The notebooks in `notebooks/` execute cleanly against a run (nbclient, Python polars).
#[test]
fn notebooks_execute_against_a_run() {
    let f = fixture();
    let out = python("run_notebooks.py", &[&f.run]);
    assert!(out.contains("notebooks executed: 1"), "{out}");
}

/// Invented and stale ATT&CK citations: counts match an independent recomputation from the raw
/// files and the bundled list; the planted version carries them, the others do not.
#[test]
fn reasoning_matches_an_independent_implementation_and_the_plant() {
    let f = fixture();
    python(
        "reasoning_reference.py",
        &[
            &f.data.join("decisions"),
            &f.run.join("metrics/reasoning.parquet"),
            &root().join("data/attack"),
        ],
    );

    let fab = &f.truth["fabricated_reasoning"];
    let bad_version = fab["model_version"].as_str().unwrap();
    let r = read_parquet(&f.run.join("metrics/reasoning.parquet"));
    let versions = r.column("model_version").unwrap().str().unwrap().clone();
    let n = r.column("n_decisions").unwrap().u64().unwrap().clone();
    let unknown = r.column("n_unknown").unwrap().u64().unwrap().clone();
    let stale = r.column("n_stale").unwrap().u64().unwrap().clone();
    let (mut bad_n, mut bad_u, mut bad_s) = (0, 0, 0);
    for i in 0..r.height() {
        if versions.get(i) == Some(bad_version) {
            bad_n += n.get(i).unwrap();
            bad_u += unknown.get(i).unwrap();
            bad_s += stale.get(i).unwrap();
        } else {
            assert_eq!(unknown.get(i), Some(0), "clean version cites invented IDs");
            assert_eq!(stale.get(i), Some(0), "clean version cites stale IDs");
        }
    }
    let inv = bad_u as f64 / bad_n as f64;
    let st = bad_s as f64 / bad_n as f64;
    let want_inv = fab["invented_share"].as_f64().unwrap();
    let want_st = fab["revoked_share"].as_f64().unwrap();
    assert!(
        (inv - want_inv).abs() < 0.01,
        "invented share {inv} vs planted {want_inv}"
    );
    assert!(
        (st - want_st).abs() < 0.01,
        "stale share {st} vs planted {want_st}"
    );
}

/// The planted burst's days, and only they, are flagged; on the same data without the burst,
/// nothing is.
#[test]
fn manipulation_burst_is_flagged_exactly() {
    let f = fixture();
    let burst = &f.truth["burst"];
    let class = burst["class"].as_str().unwrap();
    let want: Vec<String> = burst["dates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect();
    let m = read_parquet(&f.run.join("metrics/manipulation.parquet"));
    let classes = m.column("action_class").unwrap().str().unwrap().clone();
    let days = m.column("day").unwrap().cast(&DataType::Int32).unwrap();
    let days = days.i32().unwrap().clone();
    let got: Vec<String> = (0..m.height())
        .map(|i| {
            assert_eq!(classes.get(i), Some(class), "another class flagged");
            let (y, mo, d) = readiness_metrics::period::civil_from_days(days.get(i).unwrap());
            format!("{y:04}-{mo:02}-{d:02}")
        })
        .collect();
    assert_eq!(got, want);
    let recs = json(&f.run.join("recommendations.json"));
    assert_ne!(recommendation(&recs, class)["recommendation"], "promote");

    // The burst month is left out of the model-version comparison, and the version rule says
    // so with the reviewed decisions it compares (those of versions.parquet).
    let month = &want[0][..7];
    let r = recommendation(&recs, class);
    let v = &r["evidence"]["version_regression"];
    assert_eq!(v["excluded_periods"], serde_json::json!([month]), "{v}");
    let versions = read_parquet(&f.run.join("metrics/versions.parquet"))
        .lazy()
        .filter(
            col("action_class")
                .eq(lit(class))
                .and(col("model_version").eq(lit(v["current_version"].as_str().unwrap()))),
        )
        .collect()
        .unwrap();
    let n_current = versions.column("n_current").unwrap().u64().unwrap().get(0);
    assert_eq!(v["current_reviewed"].as_u64(), n_current);
    let text = r["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == "version_regression")
        .unwrap()["text"]
        .as_str()
        .unwrap();
    for words in [
        format!("over {} reviewed decisions", n_current.unwrap()),
        format!("leaving out the period {month} flagged for manipulation"),
    ] {
        assert!(text.contains(&words), "{text} lacks {words}");
    }

    // Same seed, no burst: nothing flagged.
    let dir = scratch("no-burst");
    let data = dir.join("data");
    generate(&data, 60000, 11, &["--no-burst"]);
    let out = dir.join("run");
    let o = analyze(&data.join("decisions"), &data.join("verdicts"), &out, &[]);
    assert_eq!(outcome(&o).0, 0, "{}", outcome(&o).2);
    let m = read_parquet(&out.join("metrics/manipulation.parquet"));
    assert_eq!(m.height(), 0, "flagged without a burst: {m}");
}

/// A class the policy does not name is still watched: its suspected manipulation is in its
/// reasons, its section of the report and the decisions to take, as for an owned class.
#[test]
fn unowned_class_with_a_manipulation_window_is_reported() {
    let f = fixture();
    let class = f.truth["burst"]["class"].as_str().unwrap();
    let dir = scratch("unowned-burst");
    let policy = std::fs::read_to_string(root().join("data/policy.toml"))
        .unwrap()
        .replace(
            &format!("[classes.{class}]"),
            &format!("[classes.{class}_renamed]"),
        );
    let policy_path = dir.join("policy.toml");
    std::fs::write(&policy_path, policy).unwrap();
    let out = dir.join("run");
    let o = analyze(
        &f.data.join("decisions"),
        &f.data.join("verdicts"),
        &out,
        &["--policy", policy_path.to_str().unwrap()],
    );
    assert_eq!(outcome(&o).0, 0, "{}", outcome(&o).2);
    let recs = json(&out.join("recommendations.json"));
    let r = recommendation(&recs, class);
    assert!(r["owner"].is_null(), "{r}");
    assert_eq!(r["evidence"]["manipulation_windows"], 1);
    let reasons: Vec<&str> = r["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert_eq!(reasons[0], "unowned: no policy entry, never promoted");
    assert!(
        reasons
            .iter()
            .any(|x| x.starts_with("manipulation: 1 flagged window")),
        "{reasons:?}"
    );
    // The decisions table has a row for it (Markdown escapes the underscores).
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    let escaped = class.replace('_', "\\_");
    let decisions = md
        .split("## Decisions to take this period")
        .nth(1)
        .unwrap()
        .split("## Overview")
        .next()
        .unwrap();
    let row = decisions
        .lines()
        .find(|l| l.contains(&format!("`{class}`")) || l.contains(&escaped))
        .unwrap_or_else(|| panic!("no decision row for {class}: {decisions}"));
    assert!(
        row.contains("unowned") && row.contains("Investigate a suspected manipulation"),
        "{row}"
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let section = html
        .split(&format!("id=\"class-{class}\""))
        .nth(1)
        .unwrap_or_else(|| panic!("no section for {class}"));
    let section = section.split("</section>").next().unwrap();
    assert!(
        section.contains("manipulation: 1 flagged window"),
        "{section}"
    );
}

/// Oversight load: the planted rubber-stamping analyst stands out, nobody else does; review
/// counts add up to the verdict rows.
#[test]
fn oversight_finds_the_rubber_stamp() {
    let f = fixture();
    let who = f.truth["rubber_stamp"]["analyst"].as_str().unwrap();
    let a = read_parquet(&f.run.join("metrics/oversight_analysts.parquet"));
    let per = a
        .lazy()
        .group_by([col("analyst_id")])
        .agg([col("n_approvals").sum(), col("n_fast_approvals").sum()])
        .collect()
        .unwrap();
    let ids = per.column("analyst_id").unwrap().str().unwrap().clone();
    let app = per.column("n_approvals").unwrap().u64().unwrap().clone();
    let fast = per
        .column("n_fast_approvals")
        .unwrap()
        .u64()
        .unwrap()
        .clone();
    for i in 0..per.height() {
        let share = fast.get(i).unwrap() as f64 / app.get(i).unwrap() as f64;
        if ids.get(i) == Some(who) {
            assert!(share > 0.8, "{who}: fast share {share}");
        } else {
            assert!(share < 0.05, "{:?}: fast share {share}", ids.get(i));
        }
    }
    let o = read_parquet(&f.run.join("metrics/oversight.parquet"));
    for c in [
        "median_delay_s",
        "p90_delay_s",
        "timeout_rate",
        "reviews_per_analyst",
        "review_hours",
    ] {
        assert!(o.column(c).is_ok(), "oversight lacks {c}");
    }
}

#[test]
fn board_report_for_a_quarter() {
    let f = fixture();
    let out = scratch("board").join("board");
    let board_of = |quarter: &str, out: &Path| {
        outcome(&run(&[
            "--quiet",
            "board",
            "--decisions",
            f.data.join("decisions").to_str().unwrap(),
            "--verdicts",
            f.data.join("verdicts").to_str().unwrap(),
            "--quarter",
            quarter,
            "--out",
            out.to_str().unwrap(),
        ]))
    };
    let (code, _, err) = board_of("2025Q4", &out);
    assert_eq!(code, 0, "{err}");
    let md = std::fs::read_to_string(out.join("board.md")).unwrap();
    assert!(md.contains("2025-Q4") && md.contains("2025-Q3"), "{md}");
    // The burst is in October: a suspected manipulation is reported in plain words.
    assert!(md.contains("Suspected manipulation"), "{md}");
    assert!(md.contains("isolate\\_host"), "{md}");
    let html = std::fs::read_to_string(out.join("board.html")).unwrap();
    assert!(!html.contains("<script"));
    // A demoted class's top risk names the demotion triggers that fired, and only those
    // (target agreement is no demotion trigger).
    let board = json(&out.join("board.json"));
    let risks: Vec<&str> = board["top_risks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    let recs = json(&f.run.join("recommendations.json"));
    let mut demoted = 0;
    for r in recs.as_array().unwrap() {
        if r["recommendation"] != "demote" {
            continue;
        }
        demoted += 1;
        let class = r["action_class"].as_str().unwrap();
        let risk = risks
            .iter()
            .find(|x| x.starts_with(&format!("{class} runs on its own")))
            .unwrap_or_else(|| panic!("no top risk for {class}: {risks:?}"));
        assert!(!risk.contains("required"), "{risk}");
        let failed = |id: &str| {
            r["rules"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["id"] == id && x["outcome"] == "fail")
        };
        for (id, words) in [
            ("manipulation", "a suspected attempt to steer it"),
            ("drift.psi", "how sure it is of its decisions changed"),
            (
                "drift.agreement",
                "analysts agreed with it markedly less often",
            ),
            (
                "version_regression",
                "analysts agree less often with its new AI model version",
            ),
            ("reversal_rate", "later reversed"),
        ] {
            assert_eq!(risk.contains(words), failed(id), "{id}: {risk}");
        }
    }
    assert!(demoted > 0, "the fixture demotes block_ip");
    // The latest quarter's pack: its risks are the quarter's own.
    assert_eq!(board["risks_as_of"], Value::Null, "{board}");
    // An earlier quarter's pack says its risks are those of the latest month in the data.
    let earlier = scratch("board-q3").join("board");
    let (code, _, err) = board_of("2025Q3", &earlier);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&earlier.join("board.json"))["risks_as_of"], "2025-12");
    let md = std::fs::read_to_string(earlier.join("board.md")).unwrap();
    assert!(
        md.contains("As of 2025-12, the latest period in the data: these are today's risks, not those at the end of 2025-Q3."),
        "{md}"
    );
    // A quarter without data is an error naming the data's range.
    let (code, _, err) = board_of("2019Q1", &out);
    assert_eq!(code, 1);
    // Periods are named as periods: the data ends with December, not on its first day.
    assert!(
        err.contains("2019-Q1") && err.contains("the data covers 2025-01 to 2025-12)"),
        "{err}"
    );
}

/// ECE, MCE, Brier, PSI and the chi-square p-values checked against numpy, scikit-learn and
/// scipy on the raw inputs (`tests/reference/calibration_drift_reference.py`).
#[test]
fn calibration_and_psi_match_an_independent_implementation() {
    let f = fixture();
    let out = python(
        "calibration_drift_reference.py",
        &[&f.data.join("decisions"), &f.data.join("verdicts"), &f.run],
    );
    assert!(out.contains("calibration rows checked: 14"), "{out}");
}

/// The drift watch reports a manipulation window of the evaluated period (the burst month is
/// the last month of this history) and exits 3.
#[test]
fn drift_watch_reports_manipulation_in_the_latest_period() {
    let dir = scratch("drift-burst");
    let data = dir.join("data");
    generate(&data, 50000, 4, &["--months", "10"]);
    let o = run(&[
        "--quiet",
        "drift",
        "--decisions",
        data.join("decisions").to_str().unwrap(),
        "--verdicts",
        data.join("verdicts").to_str().unwrap(),
        "--format",
        "json",
    ]);
    let (code, out, err) = outcome(&o);
    assert_eq!(code, 3, "{out}{err}");
    let watch: Value = serde_json::from_str(&out).unwrap();
    let found = watch["flagged"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["signal"] == "manipulation" && f["action_class"] == "isolate_host");
    assert!(found, "{watch}");
}
