//! Bad input gets a clear error or a quarantine, never a panic. Each case breaks one thing in
//! an otherwise valid input and states the expected exit code and what the message or the
//! rejects file must name.

mod util;

use polars::prelude::*;
use util::*;

/// Expected outcome of one case.
enum Expect {
    /// The run stops: exit code and fragments the error message must contain.
    Error(i32, &'static [&'static str]),
    /// The run succeeds; rejects.parquet holds these (table, reason, count).
    Quarantine(&'static [(&'static str, &'static str, usize)]),
}

fn check(
    name: &str,
    dir: &std::path::Path,
    d: &std::path::Path,
    v: &std::path::Path,
    expect: Expect,
) {
    let out = dir.join("run");
    let o = analyze(d, v, &out, &[]);
    assert_no_panic(&o);
    let (code, _stdout, err) = outcome(&o);
    match expect {
        Expect::Error(want, fragments) => {
            assert_eq!(code, want, "{name}: exit code; stderr: {err}");
            for f in fragments {
                assert!(err.contains(f), "{name}: message lacks '{f}': {err}");
            }
            assert!(!out.join("manifest.json").exists(), "{name}: wrote a run");
        }
        Expect::Quarantine(reasons) => {
            assert_eq!(code, 0, "{name}: should run; stderr: {err}");
            let rejects = read_parquet(&out.join("rejects.parquet"));
            let table = rejects.column("table").unwrap().str().unwrap().clone();
            let reason = rejects.column("reason").unwrap().str().unwrap().clone();
            let file = rejects.column("file").unwrap().str().unwrap().clone();
            let mut total = 0;
            for (t, r, n) in reasons {
                let got = (0..rejects.height())
                    .filter(|&i| table.get(i) == Some(t) && reason.get(i) == Some(r))
                    .count();
                assert_eq!(got, *n, "{name}: {t}/{r} rejects");
                total += n;
            }
            assert_eq!(rejects.height(), total, "{name}: unexpected other rejects");
            for i in 0..rejects.height() {
                assert!(
                    file.get(i).unwrap().ends_with(".parquet"),
                    "{name}: file named"
                );
            }
            // Rows in = rows counted + rows rejected.
            let m: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap())
                    .unwrap();
            let rows = &m["rows"];
            assert_eq!(
                rows["decisions_read"].as_u64().unwrap(),
                rows["decisions_valid"].as_u64().unwrap()
                    + rows["decisions_rejected"].as_u64().unwrap(),
                "{name}: decision rows accounted"
            );
            let agreement = read_parquet(&out.join("metrics/agreement.parquet"));
            let n: u64 = agreement
                .column("n_decisions")
                .unwrap()
                .u64()
                .unwrap()
                .into_no_null_iter()
                .sum();
            assert_eq!(
                n,
                rows["decisions_valid"].as_u64().unwrap(),
                "{name}: every valid decision counted once"
            );
        }
    }
}

fn case(name: &str, modify: impl FnOnce(&mut Inputs), expect: Expect) {
    let dir = scratch(name);
    let mut x = Inputs::valid(400);
    modify(&mut x);
    let (d, v) = x.write(&dir);
    check(name, &dir, &d, &v, expect);
}

/// A case whose decisions DataFrame is changed after construction (types, columns).
fn frame_case(name: &str, modify: impl FnOnce(&mut DataFrame), expect: Expect) {
    let dir = scratch(name);
    let x = Inputs::valid(400);
    let (_, v) = x.write(&dir);
    let mut df = x.decisions_df();
    modify(&mut df);
    let d = dir.join("decisions.parquet");
    write_parquet(&d, &mut df);
    check(name, &dir, &d, &v, expect);
}

#[test]
fn not_parquet() {
    let dir = scratch("not_parquet");
    let (_, v) = Inputs::valid(10).write(&dir);
    let d = dir.join("decisions.parquet");
    std::fs::write(&d, "decision_id,confidence\nd1,0.5\n").unwrap();
    check(
        "not_parquet",
        &dir,
        &d,
        &v,
        Expect::Error(1, &["decisions.parquet", "not a readable Parquet file"]),
    );
}

#[test]
fn truncated_parquet() {
    let dir = scratch("truncated");
    let (d, v) = Inputs::valid(400).write(&dir);
    let bytes = std::fs::read(&d).unwrap();
    std::fs::write(&d, &bytes[..bytes.len() / 2]).unwrap();
    check(
        "truncated",
        &dir,
        &d,
        &v,
        Expect::Error(1, &["decisions.parquet", "truncated"]),
    );
}

#[test]
fn missing_path_and_empty_directory() {
    let dir = scratch("missing");
    let (_, v) = Inputs::valid(10).write(&dir);
    check(
        "missing path",
        &dir,
        &dir.join("nope.parquet"),
        &v,
        Expect::Error(1, &["nope.parquet", "no such file"]),
    );
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    check(
        "empty dir",
        &dir,
        &empty,
        &v,
        Expect::Error(1, &["no Parquet files found", "decisions"]),
    );
}

#[test]
fn zero_rows() {
    case(
        "zero_rows",
        |x| *x = Inputs::valid(0),
        Expect::Error(
            1,
            &[
                "nothing to analyse",
                "decisions input (",
                "decisions.parquet) has no rows",
            ],
        ),
    );
}

#[test]
fn missing_required_column() {
    frame_case(
        "missing_column",
        |df| {
            df.drop_in_place("confidence").unwrap();
        },
        Expect::Error(
            1,
            &["decisions.parquet", "'confidence'", "missing", "float64"],
        ),
    );
}

#[test]
fn mistyped_columns() {
    frame_case(
        "confidence_as_string",
        |df| {
            let c = df
                .column("confidence")
                .unwrap()
                .cast(&DataType::String)
                .unwrap();
            df.with_column(c).unwrap();
        },
        Expect::Error(
            1,
            &[
                "decisions.parquet",
                "'confidence'",
                "expected float64",
                "str",
            ],
        ),
    );
    frame_case(
        "decided_at_as_string",
        |df| {
            let c = df
                .column("decided_at")
                .unwrap()
                .cast(&DataType::String)
                .unwrap();
            df.with_column(c).unwrap();
        },
        Expect::Error(1, &["'decided_at'", "expected timestamp"]),
    );
    frame_case(
        "privileged_as_int",
        |df| {
            let c = df
                .column("privileged")
                .unwrap()
                .cast(&DataType::Int32)
                .unwrap();
            df.with_column(c).unwrap();
        },
        Expect::Error(1, &["'privileged'", "expected bool"]),
    );
}

/// Columns of uncommon Parquet types (written by `tests/reference/odd_types.py`): those the
/// reader converts are read (and ignored outside the contract), a decimal confidence is read as
/// the doubles it stands for, and a type the reader has no conversion for stops the run with
/// the file and the column named, whether the engine uses the column or not.
#[test]
fn uncommon_column_types() {
    let dir = scratch("odd-types");
    let (d, v) = Inputs::valid(400).write(&dir);
    let o = std::process::Command::new("python3")
        .arg(root().join("tests/reference/odd_types.py"))
        .args([&d, &dir.join("cases")])
        .output()
        .expect("python3 runs (install requirements-dev.txt)");
    assert_eq!(outcome(&o).0, 0, "{}", outcome(&o).2);
    let case = |name: &str| dir.join("cases").join(name).join("decisions.parquet");
    let plain = dir.join("plain");
    assert_eq!(outcome(&analyze(&d, &v, &plain, &[])).0, 0);
    let same = |a: &std::path::Path, b: &std::path::Path| {
        for file in [
            "recommendations.json",
            "metrics/agreement.parquet",
            "metrics/calibration.parquet",
        ] {
            assert_eq!(
                std::fs::read(a.join(file)).unwrap(),
                std::fs::read(b.join(file)).unwrap(),
                "{file} differs between {} and {}",
                a.display(),
                b.display()
            );
        }
    };
    for name in [
        "extra_decimal",
        "extra_decimal256",
        "extra_fixed_list",
        "extra_map",
        "extra_struct",
    ] {
        let out = dir.join(name);
        let o = analyze(&case(name), &v, &out, &[]);
        assert_no_panic(&o);
        assert_eq!(outcome(&o).0, 0, "{name}: {}", outcome(&o).2);
        same(&plain, &out);
    }
    for (name, found) in [
        ("extra_float16", "Float16"),
        ("extra_uuid", "uuid"),
        ("extra_unknown_zone", "Mars/Olympus"),
    ] {
        let o = analyze(&case(name), &v, &dir.join(name), &[]);
        assert_no_panic(&o);
        let (code, _, err) = outcome(&o);
        assert_eq!(code, 1, "{name}: {err}");
        assert!(
            err.contains(case(name).to_str().unwrap())
                && err.contains(&format!("column '{name}'"))
                && err.contains(found)
                && err.contains("does not use this column: drop it or cast it"),
            "{name}: {err}"
        );
        assert!(!dir.join(name).exists(), "{name}: nothing is written");
    }
    let o = analyze(&case("id_uuid"), &v, &dir.join("id_uuid"), &[]);
    assert_no_panic(&o);
    let (code, _, err) = outcome(&o);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("column 'decision_id'") && err.contains("reads it as string: cast it"),
        "{err}"
    );
    for (name, column, advice) in [
        ("confidence_decimal_wide", "confidence", "expected float64"),
        (
            "decided_at_half_hour_offset",
            "decided_at",
            "named time zones (e.g. Asia/Kolkata) and whole-hour offsets only",
        ),
    ] {
        let o = analyze(&case(name), &v, &dir.join(name), &[]);
        assert_no_panic(&o);
        let (code, _, err) = outcome(&o);
        assert_eq!(code, 1, "{name}: {err}");
        assert!(
            err.contains(&format!("column '{column}'")) && err.contains(advice),
            "{name}: {err}"
        );
    }
    let (decimal, float) = (dir.join("confidence_decimal"), dir.join("confidence_float"));
    for (name, out) in [
        ("confidence_decimal", &decimal),
        ("confidence_float", &float),
    ] {
        let o = analyze(&case(name), &v, out, &[]);
        assert_eq!(outcome(&o).0, 0, "{name}: {}", outcome(&o).2);
    }
    same(&float, &decimal);
}

#[test]
fn confidence_out_of_range() {
    case(
        "confidence_bad",
        |x| {
            x.confidence[3] = Some(f64::NAN);
            x.confidence[4] = Some(1.000_000_1);
            x.confidence[5] = Some(-0.2);
            x.confidence[6] = Some(f64::INFINITY);
            x.confidence[7] = Some(-0.0); // valid: equal to 0
        },
        // The verdicts of the 4 rejected decisions are rejected as well, with their own reason.
        Expect::Quarantine(&[
            ("decisions", "confidence_out_of_range", 4),
            ("verdicts", "decision_rejected", 4),
        ]),
    );
}

#[test]
fn nulls_in_required_columns() {
    case(
        "nulls",
        |x| {
            x.decision_id[10] = None;
            x.action_class[11] = None;
            x.confidence[12] = None;
            x.privileged[13] = None;
            x.decided_at[14] = None;
            x.model_version[15] = None;
            x.asset_criticality[16] = None;
            x.verdict[20] = None;
            x.analyst_id[21] = None;
            x.reviewed_at[22] = None;
            x.v_decision_id[23] = None;
        },
        Expect::Quarantine(&[
            ("decisions", "null_decision_id", 1),
            ("decisions", "null_decided_at", 1),
            ("decisions", "null_action_class", 1),
            ("decisions", "null_confidence", 1),
            ("decisions", "null_model_version", 1),
            ("decisions", "null_asset_criticality", 1),
            ("decisions", "null_privileged", 1),
            ("verdicts", "null_verdict", 1),
            ("verdicts", "null_analyst_id", 1),
            ("verdicts", "null_reviewed_at", 1),
            ("verdicts", "null_decision_id", 1),
            // d000010's verdict: its decision row had no id, so the verdict matches nothing.
            ("verdicts", "unknown_decision", 1),
            ("verdicts", "decision_rejected", 6),
        ]),
    );
}

#[test]
fn duplicates_unknown_and_early_reviews() {
    case(
        "row_rules",
        |x| {
            // A second row for d000001 with different content: the first is kept.
            x.decision_id.push(Some("d000001".into()));
            x.decided_at.push(x.decided_at[1]);
            x.action_class.push(Some("isolate_host".into()));
            x.confidence.push(Some(0.1));
            x.model_version.push(Some("v2".into()));
            x.asset_criticality.push(Some("low".into()));
            x.privileged.push(Some(false));
            // A verdict for a decision that does not exist.
            x.v_decision_id.push(Some("ghost".into()));
            x.reviewed_at.push(Some(T0));
            x.analyst_id.push(Some("a1".into()));
            x.verdict.push(Some("approve".into()));
            // A review before its decision.
            x.reviewed_at[30] = Some(x.decided_at[30].unwrap() - HOUR);
            // Unknown and differently cased verdicts.
            x.verdict[31] = Some("approved".into());
            x.verdict[32] = Some(" APPROVE ".into()); // normalised, valid
            x.asset_criticality[33] = Some("extreme".into());
            x.asset_criticality[34] = Some("High".into()); // normalised, valid
        },
        Expect::Quarantine(&[
            ("decisions", "duplicate_decision_id", 1),
            ("decisions", "unknown_asset_criticality", 1),
            ("verdicts", "unknown_decision", 1),
            ("verdicts", "review_before_decision", 1),
            ("verdicts", "unknown_verdict", 1),
            ("verdicts", "decision_rejected", 1),
        ]),
    );
}

#[test]
fn timestamps_out_of_range() {
    case(
        "timestamps",
        |x| {
            x.decided_at[40] = Some(-HOUR); // 1969
            x.decided_at[41] = Some(T0 * 3); // year 2134
            x.reviewed_at[42] = Some(i64::MAX / 2);
        },
        Expect::Quarantine(&[
            ("decisions", "timestamp_out_of_range", 2),
            ("verdicts", "timestamp_out_of_range", 1),
            ("verdicts", "decision_rejected", 2),
        ]),
    );
}

#[test]
fn too_many_rejected_rows_fail_the_run() {
    case(
        "too_many",
        |x| {
            for c in x.confidence.iter_mut().take(100) {
                *c = Some(2.0);
            }
        },
        Expect::Error(4, &["rejected", "max_rejected_share"]),
    );
}

#[test]
fn timestamp_units_and_zones_are_accepted() {
    let dir = scratch("units");
    let x = Inputs::valid(200);
    let (_, v) = x.write(&dir);
    for (name, dt) in [
        (
            "ns_utc",
            DataType::Datetime(TimeUnit::Nanoseconds, Some(TimeZone::UTC)),
        ),
        ("ms_naive", DataType::Datetime(TimeUnit::Milliseconds, None)),
    ] {
        let mut df = x.decisions_df();
        let c = df.column("decided_at").unwrap().cast(&dt).unwrap();
        df.with_column(c).unwrap();
        let d = dir.join(format!("{name}.parquet"));
        write_parquet(&d, &mut df);
        let out = dir.join(format!("run-{name}"));
        let o = analyze(&d, &v, &out, &[]);
        assert_no_panic(&o);
        let (code, _, err) = outcome(&o);
        assert_eq!(code, 0, "{name}: {err}");
        let rejects = read_parquet(&out.join("rejects.parquet"));
        assert_eq!(rejects.height(), 0, "{name}: {rejects}");
    }
}

#[test]
fn malformed_policy_is_named() {
    let dir = scratch("policy");
    let (d, v) = Inputs::valid(50).write(&dir);
    let p = dir.join("policy.toml");
    std::fs::write(&p, "[defaults]\ntarget_agreement = 1.3\n").unwrap();
    let out = dir.join("run");
    let o = run(&[
        "--quiet",
        "analyze",
        "--decisions",
        d.to_str().unwrap(),
        "--verdicts",
        v.to_str().unwrap(),
        "--policy",
        p.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_no_panic(&o);
    let (code, _, err) = outcome(&o);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("target_agreement") && err.contains("line 2"),
        "{err}"
    );
}

#[test]
fn a_failed_run_leaves_the_previous_run_intact() {
    let dir = scratch("previous");
    let x = Inputs::valid(200);
    let (d, v) = x.write(&dir);
    let out = dir.join("run");
    let o = analyze(&d, &v, &out, &[]);
    assert_eq!(outcome(&o).0, 0, "{}", outcome(&o).2);
    let before = std::fs::read(out.join("manifest.json")).unwrap();
    let bad = dir.join("bad.parquet");
    std::fs::write(&bad, b"PAR1 this is not parquet").unwrap();
    let o = analyze(&bad, &v, &out, &[]);
    assert_eq!(outcome(&o).0, 1);
    assert_eq!(std::fs::read(out.join("manifest.json")).unwrap(), before);
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "partial directories left behind");
}
