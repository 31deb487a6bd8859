//! Hostile input and integrity: strings from the data never become markup or paths, unusual
//! but valid shapes run, and a killed run loses nothing.

mod util;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use polars::prelude::*;
use util::*;

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        }
        out.push(p);
    }
}

const HOSTILE: [&str; 8] = [
    "<script>alert('x')</script>",
    "<img src=x onerror=alert(1)>",
    "../../escape",
    "=cmd|' /C calc'!A0",
    "line\nbreak\ttab\u{7}bell",
    "**bold** [link](http://x) | pipe `code`",
    "/etc/passwd",
    "CON",
];

#[test]
fn strings_from_the_data_are_escaped_and_never_paths() {
    let dir = scratch("hostile-strings");
    let mut x = Inputs::valid(1600);
    for i in 0..x.action_class.len() {
        x.action_class[i] = Some(HOSTILE[i % HOSTILE.len()].to_string());
        x.model_version[i] = Some(HOSTILE[(i + 3) % HOSTILE.len()].to_string());
        x.analyst_id[i] = Some(HOSTILE[(i + 5) % HOSTILE.len()].to_string());
    }
    let (d, v) = x.write(&dir);
    let before: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let out = dir.join("run");
    let o = analyze(&d, &v, &out, &[]);
    assert_no_panic(&o);
    let (code, _, err) = outcome(&o);
    assert_eq!(code, 0, "{err}");

    // Nothing written outside the run directory (besides its ledger).
    let mut after: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    after.retain(|p| !before.contains(p));
    after.sort();
    assert_eq!(after, vec![out.clone(), out.with_extension("ledger.jsonl")]);
    let mut files = Vec::new();
    walk(&out, &mut files);
    for f in &files {
        let rel = f.strip_prefix(&out).unwrap().to_string_lossy().into_owned();
        assert!(!rel.contains(".."), "{rel}");
        assert!(
            !rel.contains('<') && !rel.contains('\n') && !rel.contains('|'),
            "{rel:?}"
        );
    }

    for name in ["report.html", "report.md"] {
        let text = std::fs::read_to_string(out.join(name)).unwrap();
        assert!(!text.contains("<script"), "{name} carries a script");
        assert!(
            !text.contains("<img src=x"),
            "{name} carries an injected tag"
        );
        assert!(
            !text.contains("\u{7}"),
            "{name} carries a control character"
        );
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        !md.contains("[link](http://x)"),
        "Markdown link not neutralised"
    );
    // SVG charts are markup too.
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "svg"))
    {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(
            !text.contains("<script") && !text.contains("<img"),
            "{}",
            f.display()
        );
    }
    // explain and drift print the names without control characters.
    let o = run(&["explain", HOSTILE[4], "--run", out.to_str().unwrap()]);
    let (code, text, err) = outcome(&o);
    assert_eq!(code, 0, "{err}");
    assert!(!text.contains('\u{7}'));
}

#[test]
fn unusual_but_valid_shapes_run() {
    // A single row; one class only; an empty verdicts file; an extra column; float32 confidence
    // and categorical strings.
    let dir = scratch("shapes");
    let cases: Vec<(&str, Inputs)> = vec![
        ("single_row", Inputs::valid(1)),
        ("one_class", {
            let mut x = Inputs::valid(300);
            x.action_class
                .iter_mut()
                .for_each(|c| *c = Some("tag_alert".into()));
            x
        }),
        ("no_verdicts", {
            let mut x = Inputs::valid(300);
            x.v_decision_id.clear();
            x.reviewed_at.clear();
            x.analyst_id.clear();
            x.verdict.clear();
            x
        }),
    ];
    for (name, x) in cases {
        let sub = dir.join(name);
        std::fs::create_dir_all(&sub).unwrap();
        let (d, v) = x.write(&sub);
        let o = analyze(&d, &v, &sub.join("run"), &[]);
        assert_no_panic(&o);
        assert_eq!(outcome(&o).0, 0, "{name}: {}", outcome(&o).2);
    }
    let x = Inputs::valid(300);
    let (_, v) = x.write(&dir);
    let mut df = x.decisions_df();
    let c = df
        .column("confidence")
        .unwrap()
        .cast(&DataType::Float32)
        .unwrap();
    df.with_column(c).unwrap();
    let c = df
        .column("action_class")
        .unwrap()
        .cast(&DataType::from_categories(Categories::global()))
        .unwrap();
    df.with_column(c).unwrap();
    df.with_column(Column::new("extra".into(), vec![1i64; 300]))
        .unwrap();
    let d = dir.join("typed.parquet");
    write_parquet(&d, &mut df);
    let o = analyze(&d, &v, &dir.join("run-typed"), &[]);
    assert_no_panic(&o);
    assert_eq!(outcome(&o).0, 0, "{}", outcome(&o).2);
}

#[test]
fn renamed_and_wrongly_typed_columns_are_named() {
    let dir = scratch("renamed");
    let x = Inputs::valid(100);
    let (_, v) = x.write(&dir);
    let mut df = x.decisions_df();
    df.rename("confidence", "Confidence".into()).unwrap();
    let d = dir.join("renamed.parquet");
    write_parquet(&d, &mut df);
    let o = analyze(&d, &v, &dir.join("run"), &[]);
    assert_no_panic(&o);
    let (code, _, err) = outcome(&o);
    assert_eq!(code, 1);
    assert!(
        err.contains("'confidence'") && err.contains("Confidence"),
        "{err}"
    );

    // Epoch integers instead of timestamps.
    let mut df = x.decisions_df();
    let c = df
        .column("decided_at")
        .unwrap()
        .cast(&DataType::Int64)
        .unwrap();
    df.with_column(c).unwrap();
    let d = dir.join("ints.parquet");
    write_parquet(&d, &mut df);
    let o = analyze(&d, &v, &dir.join("run"), &[]);
    assert_no_panic(&o);
    let (code, _, err) = outcome(&o);
    assert_eq!(code, 1);
    assert!(
        err.contains("ints.parquet") && err.contains("'decided_at'") && err.contains("i64"),
        "{err}"
    );
}

#[test]
fn duplicate_ids_across_files_keep_the_first_file() {
    let dir = scratch("dup-files");
    let x = Inputs::valid(200);
    let (_, v) = x.write(&dir);
    let a = dir.join("in/a.parquet");
    let b = dir.join("in/b.parquet");
    write_parquet(&a, &mut x.decisions_df());
    let mut y = x.clone();
    for c in y.confidence.iter_mut() {
        *c = Some(0.01);
    }
    write_parquet(&b, &mut y.decisions_df());
    let out = dir.join("run");
    let o = analyze(&dir.join("in"), &v, &out, &[]);
    assert_no_panic(&o);
    assert_eq!(
        outcome(&o).0,
        4,
        "half the rows are duplicates: too many rejected"
    );
    // analyze prints no reasons: it says where they are counted.
    assert!(
        outcome(&o)
            .2
            .ends_with("readiness: `readiness validate` counts the rejected rows by reason\n"),
        "{}",
        outcome(&o).2
    );
    let rejects = read_parquet(&out.with_file_name("run.rejects.parquet"));
    let file = rejects.column("file").unwrap().str().unwrap().clone();
    assert_eq!(rejects.height(), 200);
    assert!((0..200).all(|i| file.get(i).unwrap().ends_with("b.parquet")));
}

/// Kills `analyze` at many points: the previous run stays intact and complete, no partial
/// directory looks complete, and the ledger always parses.
#[test]
fn a_killed_run_leaves_the_previous_run_and_the_ledger_intact() {
    let dir = scratch("kill");
    let data = dir.join("data");
    generate(&data, 200000, 5, &[]);
    let out = dir.join("run");
    let ledger = dir.join("ledger.jsonl");
    // A long history makes the ledger rewrite take a while.
    let filler: String = (0..100_000)
        .map(|i| format!("{{\"run_id\":\"old{i}\",\"action_class\":\"x\"}}\n"))
        .collect();
    std::fs::write(&ledger, &filler).unwrap();
    let args = |out: &Path| {
        vec![
            "--quiet".to_string(),
            "analyze".into(),
            "--decisions".into(),
            data.join("decisions").to_string_lossy().into_owned(),
            "--verdicts".into(),
            data.join("verdicts").to_string_lossy().into_owned(),
            "--out".into(),
            out.to_string_lossy().into_owned(),
            "--ledger".into(),
            ledger.to_string_lossy().into_owned(),
        ]
    };
    let o = Command::new(env!("CARGO_BIN_EXE_readiness"))
        .args(args(&out))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let manifest = std::fs::read(out.join("manifest.json")).unwrap();
    let report = std::fs::read(out.join("report.html")).unwrap();
    // Make the next run's outputs differ (another ledger, same inputs is fine: the run
    // directory is rewritten whole).
    for delay_ms in [5u64, 20, 50, 100, 200, 350, 500, 700, 900, 1200, 1600, 2000] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_readiness"))
            .args(args(&out))
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(
            std::fs::read(out.join("manifest.json")).unwrap(),
            manifest,
            "after {delay_ms} ms"
        );
        assert_eq!(
            std::fs::read(out.join("report.html")).unwrap(),
            report,
            "after {delay_ms} ms"
        );
        let text = std::fs::read_to_string(&ledger).unwrap();
        assert!(text.ends_with('\n'));
        for line in text.lines() {
            serde_json::from_str::<serde_json::Value>(line)
                .unwrap_or_else(|e| panic!("after {delay_ms} ms, ledger line {line:?}: {e}"));
        }
        assert!(
            text.starts_with(&filler),
            "history lost after {delay_ms} ms"
        );
        // Leftovers, if any, are hidden partial directories that never look complete.
        for e in std::fs::read_dir(&dir).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            if name.contains("partial") {
                assert!(name.starts_with('.'), "{name}");
            }
        }
    }
    // The next complete run cleans the leftovers of killed ones.
    let o = Command::new(env!("CARGO_BIN_EXE_readiness"))
        .args(args(&out))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial") || n.contains(".old-") || n.contains(".tmp-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn overlong_strings_are_quarantined() {
    let dir = scratch("long");
    let mut x = Inputs::valid(400);
    x.action_class[7] = Some("a".repeat(100_000));
    x.analyst_id[9] = Some("b".repeat(2_000));
    let (d, v) = x.write(&dir);
    let out = dir.join("run");
    let o = analyze(&d, &v, &out, &[]);
    assert_no_panic(&o);
    assert_eq!(outcome(&o).0, 0, "{}", outcome(&o).2);
    let rejects = read_parquet(&out.join("rejects.parquet"));
    let reason = rejects.column("reason").unwrap().str().unwrap().clone();
    let table = rejects.column("table").unwrap().str().unwrap().clone();
    let got: Vec<(String, String)> = (0..rejects.height())
        .map(|i| (table.get(i).unwrap().into(), reason.get(i).unwrap().into()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("decisions".into(), "string_too_long".into()),
            ("verdicts".into(), "decision_rejected".into()),
            ("verdicts".into(), "string_too_long".into()),
        ]
    );
}

/// 10,000 distinct classes: the run completes, every class is in the outputs, and the report
/// stays bounded (40 classes with their own charts).
#[test]
fn thousands_of_classes_stay_bounded() {
    let dir = scratch("many");
    let mut x = Inputs::valid(20_000);
    for (i, c) in x.action_class.iter_mut().enumerate() {
        *c = Some(format!("class_{:05}", i % 10_000));
    }
    let (d, v) = x.write(&dir);
    let out = dir.join("run");
    let o = analyze(&d, &v, &out, &[]);
    assert_no_panic(&o);
    assert_eq!(outcome(&o).0, 0, "{}", outcome(&o).2);
    let recs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("recommendations.json")).unwrap())
            .unwrap();
    assert_eq!(recs.as_array().unwrap().len(), 10_000);
    let charts = std::fs::read_dir(out.join("charts")).unwrap().count();
    assert!(charts <= 40 * 8 + 6, "{charts} chart files");
    let html = std::fs::metadata(out.join("report.html")).unwrap().len();
    assert!(html < 20 << 20, "report.html is {html} bytes");
}

/// Each command replaces only its own kind of output: a board pack or a statistics directory
/// written over a month's run would delete that run's evidence.
#[test]
fn an_output_of_another_command_is_never_replaced() {
    let dir = scratch("other-kind");
    let (d, v) = Inputs::valid(200).write(&dir);
    let (run_dir, stats) = (dir.join("run"), dir.join("stats"));
    assert_eq!(outcome(&analyze(&d, &v, &run_dir, &[])).0, 0);
    let inputs = [
        "--decisions",
        d.to_str().unwrap(),
        "--verdicts",
        v.to_str().unwrap(),
    ];
    let ledger = dir.join("ledger.jsonl");
    let command = |name: &str, out: &std::path::Path| {
        let mut args = vec!["--quiet", name];
        args.extend(inputs);
        args.extend(["--out", out.to_str().unwrap()]);
        if name == "analyze" {
            args.extend(["--ledger", ledger.to_str().unwrap()]);
        }
        let o = run(&args);
        assert_no_panic(&o);
        outcome(&o)
    };
    assert_eq!(command("aggregate", &stats).0, 0);
    let listing = |p: &std::path::Path| {
        let mut names: Vec<_> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let (run_files, stats_files) = (listing(&run_dir), listing(&stats));
    for (name, out, holds) in [
        ("board", &run_dir, "holds a run of `readiness analyze`"),
        ("aggregate", &run_dir, "holds a run of `readiness analyze`"),
        (
            "analyze",
            &stats,
            "holds a statistics directory of `readiness aggregate`",
        ),
        (
            "board",
            &stats,
            "holds a statistics directory of `readiness aggregate`",
        ),
    ] {
        let (code, _, err) = command(name, out);
        assert_eq!(code, 1, "{name} --out {}: {err}", out.display());
        assert!(
            err.contains(out.to_str().unwrap())
                && err.contains(holds)
                && err.contains(&format!("`readiness {name}` would replace it")),
            "{err}"
        );
    }
    assert_eq!(listing(&run_dir), run_files);
    assert_eq!(listing(&stats), stats_files);
    // Its own kind is replaced as before.
    assert_eq!(command("analyze", &run_dir).0, 0);
    assert_eq!(command("aggregate", &stats).0, 0);
}

/// A `--ledger` that cannot take the run's records stops the run before the previous run is
/// replaced; a ledger with lines that are not records is kept as it is, with a warning.
#[test]
fn a_bad_ledger_is_found_before_the_run() {
    let dir = scratch("bad-ledger");
    let (d, v) = Inputs::valid(200).write(&dir);
    let out = dir.join("run");
    assert_eq!(outcome(&analyze(&d, &v, &out, &[])).0, 0);
    let manifest = std::fs::read(out.join("manifest.json")).unwrap();
    let (mut x, ledger_dir) = (Inputs::valid(300), dir.join("ledger-dir"));
    x.confidence[0] = Some(0.51);
    let (d2, v2) = x.write(&dir.join("other"));
    std::fs::create_dir_all(&ledger_dir).unwrap();
    let with_ledger = |ledger: &std::path::Path| {
        run(&[
            "--quiet",
            "analyze",
            "--decisions",
            d2.to_str().unwrap(),
            "--verdicts",
            v2.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--ledger",
            ledger.to_str().unwrap(),
        ])
    };
    let o = with_ledger(&ledger_dir);
    assert_no_panic(&o);
    let (code, _, err) = outcome(&o);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(ledger_dir.to_str().unwrap()) && err.contains("is a directory"),
        "{err}"
    );
    assert_eq!(std::fs::read(out.join("manifest.json")).unwrap(), manifest);

    let ledger = dir.join("kept.jsonl");
    std::fs::write(&ledger, "{\"run_id\": \"x\"}\nnot json\n\n[1]\n").unwrap();
    let (code, _, err) = outcome(&with_ledger(&ledger));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("kept.jsonl: 2 lines are not a JSON record (the first at line 2)"),
        "{err}"
    );
    let text = std::fs::read_to_string(&ledger).unwrap();
    assert!(
        text.starts_with("{\"run_id\": \"x\"}\nnot json\n\n[1]\n"),
        "{text}"
    );
}

/// `--out` never replaces a directory this program did not write, and `generate` never replaces
/// input folders it did not make.
#[test]
fn foreign_directories_are_never_replaced() {
    let dir = scratch("foreign");
    let (d, v) = Inputs::valid(200).write(&dir);
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("thesis.txt"), "years of work").unwrap();
    let o = analyze(&d, &v, &work, &[]);
    assert_no_panic(&o);
    let (code, _, err) = outcome(&o);
    assert_eq!(code, 1);
    assert!(err.contains("not a readiness output directory"), "{err}");
    assert_eq!(
        std::fs::read_to_string(work.join("thesis.txt")).unwrap(),
        "years of work"
    );

    let lake = dir.join("lake");
    std::fs::create_dir_all(lake.join("decisions")).unwrap();
    std::fs::write(lake.join("decisions/keep.parquet"), "data").unwrap();
    let o = run(&[
        "--quiet",
        "generate",
        "--out",
        lake.to_str().unwrap(),
        "--decisions",
        "100",
    ]);
    assert_no_panic(&o);
    assert_eq!(outcome(&o).0, 1, "{}", outcome(&o).2);
    assert!(lake.join("decisions/keep.parquet").is_file());
}

#[test]
fn a_bad_memory_budget_is_named_with_what_is_expected() {
    let dir = scratch("budget");
    let (d, v) = Inputs::valid(50).write(&dir);
    for bad in ["0", "-1", "-0.5", "nan", "inf", "abc"] {
        let o = analyze(&d, &v, &dir.join("run"), &["--memory-budget", bad]);
        assert_no_panic(&o);
        let (code, _, err) = outcome(&o);
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(err.contains("--memory-budget"), "{bad}: {err}");
        assert!(err.to_lowercase().contains(bad), "{bad}: {err}");
    }
}

#[test]
fn all_rows_rejected_keeps_the_reasons() {
    let dir = scratch("all-rejected");
    let mut x = Inputs::valid(50);
    x.confidence.iter_mut().for_each(|c| *c = Some(7.0));
    let (d, v) = x.write(&dir);
    let out = dir.join("run");
    let o = analyze(&d, &v, &out, &[]);
    assert_no_panic(&o);
    let (code, _, err) = outcome(&o);
    assert_eq!(code, 4, "{err}");
    let kept = dir.join("run.rejects.parquet");
    assert!(err.contains("run.rejects.parquet"), "{err}");
    assert_eq!(read_parquet(&kept).height(), 100);
    // A later successful run into the same directory removes the stale rejects beside it.
    let (d, v) = Inputs::valid(50).write(&dir.join("fixed"));
    assert_eq!(outcome(&analyze(&d, &v, &out, &[])).0, 0);
    assert!(!kept.exists());
    assert!(out.join("rejects.parquet").is_file());
}

#[test]
fn unusable_values_are_usage_errors() {
    for args in [
        vec!["board", "--quarter", "2025Q5"],
        vec![
            "generate",
            "--out",
            "/tmp/never-written",
            "--decisions",
            "0",
        ],
        vec![
            "generate",
            "--out",
            "/tmp/never-written",
            "--start",
            "1990-01",
        ],
        vec![
            "generate",
            "--out",
            "/tmp/never-written",
            "--decisions",
            "30000000000",
        ],
    ] {
        let o = run(&args);
        assert_no_panic(&o);
        assert_eq!(outcome(&o).0, 2, "{args:?}: {}", outcome(&o).2);
    }
}
