//! The statistics set as an input: a run from a stored `stats/` directory, an incremental run
//! (stored closed periods + new raw months) and the SQL emitted for DuckDB all give the native
//! run's metrics, byte for byte.

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use polars::prelude::*;
use util::*;

struct Fixture {
    data: PathBuf,
    /// The native run on every month.
    run: PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = scratch("stats");
        let data = dir.join("data");
        generate(&data, 30000, 13, &[]);
        write_dirty_rows(&data);
        let run_dir = dir.join("run");
        let o = analyze(
            &data.join("decisions"),
            &data.join("verdicts"),
            &run_dir,
            &[],
        );
        assert_eq!(outcome(&o).0, 0, "analyze: {}", outcome(&o).2);
        Fixture { data, run: run_dir }
    })
}

/// Rows that break one rule each (and some that only need normalising), appended as a last
/// file to both tables, so that every path must quarantine exactly the same rows.
fn write_dirty_rows(data: &Path) {
    let mut x = Inputs::valid(24);
    for (i, id) in x.decision_id.iter_mut().enumerate() {
        *id = Some(format!("dirty-{i:03}"));
    }
    for (i, id) in x.v_decision_id.iter_mut().enumerate() {
        *id = Some(format!("dirty-{i:03}"));
    }
    x.confidence[1] = None;
    x.confidence[2] = Some(1.5);
    x.confidence[3] = Some(f64::NAN);
    x.asset_criticality[4] = Some("extreme".into());
    x.asset_criticality[5] = Some("  High ".into());
    x.decided_at[6] = Some(0);
    x.decision_id[7] = Some("dirty-008".into()); // a duplicate: the earlier row is kept
                                                 // A duplicate of a generated decision in an earlier file (a partitioned run must still
                                                 // see both rows together).
    x.decision_id[15] = Some("d000000100".into());
    x.confidence[9] = Some(-0.0);
    x.verdict[10] = Some("maybe".into());
    x.verdict[11] = Some(" APPROVE ".into());
    x.v_decision_id[12] = Some("no-such-decision".into());
    x.reviewed_at[13] = x.decided_at[13].map(|t| t - HOUR);
    x.analyst_id[14] = None;
    let mut d = x.decisions_df();
    let n = d.height();
    d.with_column(Column::new("executed".into(), vec![false; n]))
        .unwrap();
    write_parquet(&data.join("decisions/zz-dirty.parquet"), &mut d);
    write_parquet(
        &data.join("verdicts/zz-dirty.parquet"),
        &mut x.verdicts_df(),
    );
}

/// Files under `metrics/`, `stats/`, `charts/` and `recommendations.json`, relative.
fn compared_files(run: &Path) -> Vec<String> {
    let mut out = vec!["recommendations.json".to_string()];
    for sub in ["metrics", "stats", "charts"] {
        let mut names: Vec<String> = std::fs::read_dir(run.join(sub))
            .unwrap()
            .map(|e| format!("{sub}/{}", e.unwrap().file_name().to_string_lossy()))
            .collect();
        names.sort();
        out.extend(names);
    }
    out
}

fn assert_same_outputs(expected: &Path, got: &Path) {
    let files = compared_files(expected);
    assert!(files.len() > 30, "{files:?}");
    assert_eq!(files, compared_files(got));
    for rel in files {
        let a = std::fs::read(expected.join(&rel)).unwrap();
        let b = std::fs::read(got.join(&rel)).unwrap();
        assert!(
            a == b,
            "{rel} differs between {} and {}",
            expected.display(),
            got.display()
        );
    }
}

fn analyze_args(args: &[&str], out: &Path) -> std::process::Output {
    let ledger = out.with_extension("ledger.jsonl");
    let mut all = vec!["--quiet", "analyze"];
    all.extend_from_slice(args);
    all.extend_from_slice(&[
        "--out",
        out.to_str().unwrap(),
        "--ledger",
        ledger.to_str().unwrap(),
    ]);
    run(&all)
}

fn months(table: &Path, range: std::ops::RangeInclusive<u32>) -> Vec<String> {
    range
        .map(|m| {
            table
                .join(format!("month=2025-{m:02}"))
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

#[test]
fn the_dirty_rows_are_quarantined() {
    let f = fixture();
    let rejects = read_parquet(&f.run.join("rejects.parquet"));
    let reasons = rejects.column("reason").unwrap().str().unwrap().clone();
    let mut found: Vec<&str> = reasons.iter().flatten().collect();
    found.sort();
    found.dedup();
    for want in [
        "null_confidence",
        "confidence_out_of_range",
        "unknown_asset_criticality",
        "timestamp_out_of_range",
        "duplicate_decision_id",
        "unknown_verdict",
        "unknown_decision",
        "review_before_decision",
        "null_analyst_id",
        "decision_rejected",
    ] {
        assert!(found.contains(&want), "no {want} in {found:?}");
    }
}

#[test]
fn a_partitioned_run_equals_the_one_pass_run() {
    let f = fixture();
    let out = scratch("partitioned").join("run");
    let ledger = out.with_extension("ledger.jsonl");
    let (dec, ver) = (f.data.join("decisions"), f.data.join("verdicts"));
    // A budget of 0.001 GiB splits the 30,000 decisions into 13 partitions (at least 10 are
    // asserted, so that the estimate per row may change).
    let o = Command::new(env!("CARGO_BIN_EXE_readiness"))
        .args(["analyze", "--decisions", dec.to_str().unwrap()])
        .args([
            "--verdicts",
            ver.to_str().unwrap(),
            "--memory-budget",
            "0.001",
        ])
        .args([
            "--out",
            out.to_str().unwrap(),
            "--ledger",
            ledger.to_str().unwrap(),
        ])
        .env("READINESS_TIMINGS", "1")
        .current_dir(root())
        .output()
        .unwrap();
    let (code, _, err) = outcome(&o);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("partitions by decision id"), "{err}");
    let partitions: usize = err
        .split("splitting the inputs into ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no partition count: {err}"));
    assert!(partitions >= 10, "{partitions} partitions");
    assert_same_outputs(&f.run, &out);
    // The rejected rows (in input order, with their files and rows) and the manifest too.
    for rel in ["rejects.parquet", "manifest.json"] {
        let a = std::fs::read(f.run.join(rel)).unwrap();
        let b = std::fs::read(out.join(rel)).unwrap();
        assert!(a == b, "{rel} differs");
    }
    let rejects = read_parquet(&out.join("rejects.parquet"));
    let ids = rejects
        .column("decision_id")
        .unwrap()
        .str()
        .unwrap()
        .clone();
    assert!(
        ids.iter().any(|i| i == Some("d000000100")),
        "cross-file duplicate kept"
    );
    // The spill directory is gone.
    let spill = spill_dir(&err);
    assert!(!Path::new(&spill).exists(), "{spill} left behind");
}

/// Copies directory `from` to `to`, recursively.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn a_file_that_breaks_while_read_is_named_and_nothing_is_written() {
    let f = fixture();
    let dir = scratch("partitioned-corrupt");
    let decisions = dir.join("decisions");
    copy_dir(&f.data.join("decisions"), &decisions);
    // Garbage over the first page header of one month's file (right after the magic bytes),
    // its footer intact: the file opens, and fails only when its rows are decoded while routed.
    let garble = |file: &Path| {
        let mut bytes = std::fs::read(file).unwrap();
        for b in &mut bytes[4..68] {
            *b = 0xA5;
        }
        std::fs::write(file, &bytes).unwrap();
    };
    garble(&decisions.join("month=2025-03").join("part-0.parquet"));
    let out = dir.join("run");
    let o = Command::new(env!("CARGO_BIN_EXE_readiness"))
        .args(["analyze", "--decisions", decisions.to_str().unwrap()])
        .args(["--verdicts", f.data.join("verdicts").to_str().unwrap()])
        .args(["--memory-budget", "0.002", "--out", out.to_str().unwrap()])
        .args(["--ledger", dir.join("ledger.jsonl").to_str().unwrap()])
        .env("READINESS_TIMINGS", "1")
        .current_dir(root())
        .output()
        .unwrap();
    // The run stops, names the file and writes nothing; its stderr is returned.
    let refused = |o: &std::process::Output| -> String {
        assert_no_panic(o);
        let (code, _, err) = outcome(o);
        assert_ne!(code, 0, "{err}");
        assert!(
            err.contains("month=2025-03"),
            "the file is not named: {err}"
        );
        assert!(!out.exists(), "a run directory was written");
        err
    };
    let spill = spill_dir(&refused(&o));
    assert!(!Path::new(&spill).exists(), "{spill} left behind");
    // Read in one pass, the same file is named too.
    refused(&analyze(&decisions, &f.data.join("verdicts"), &out, &[]));
    // A broken verdicts file (read on its own thread while the decisions are checked) is
    // named as well; with both tables broken, the decisions' file is named.
    let verdicts = dir.join("verdicts");
    copy_dir(&f.data.join("verdicts"), &verdicts);
    garble(&verdicts.join("month=2025-03").join("part-0.parquet"));
    let named = |table: &str| format!("{table}{}month=2025-03", std::path::MAIN_SEPARATOR);
    let err = refused(&analyze(&f.data.join("decisions"), &verdicts, &out, &[]));
    assert!(err.contains(&named("verdicts")), "{err}");
    let err = refused(&analyze(&decisions, &verdicts, &out, &[]));
    assert!(err.contains(&named("decisions")), "{err}");
}

/// The spill directory a partitioned run names in its progress output.
fn spill_dir(err: &str) -> String {
    err.lines()
        .find_map(|l| l.split("spill directory ").nth(1))
        .map(|s| s.trim_end_matches(')').to_string())
        .expect("the spill directory is named")
}

#[test]
fn a_run_from_stored_statistics_equals_the_native_run() {
    let f = fixture();
    let out = scratch("from-stats").join("run");
    let stats = f.run.join("stats");
    let o = analyze_args(&["--stats", stats.to_str().unwrap()], &out);
    assert_eq!(outcome(&o).0, 0, "{}", outcome(&o).2);
    assert_same_outputs(&f.run, &out);
    let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    assert!(manifest.contains("\"table\": \"stats\""), "{manifest}");
    // No raw row was read: the reports say the rejected count is unknown, not that none was
    // rejected (the native run rejected the dirty rows).
    for report in ["report.md", "report.html"] {
        let text = std::fs::read_to_string(out.join(report)).unwrap();
        assert!(!text.contains("No row was rejected"), "{report}");
        assert!(
            text.contains(
                "how many rows were rejected when those statistics were built is unknown here"
            ),
            "{report}"
        );
        assert!(text.contains("not read (statistics)"), "{report}");
    }
}

#[test]
fn an_incremental_run_equals_the_full_recompute() {
    let f = fixture();
    let dir = scratch("incremental");
    let (dec, ver) = (f.data.join("decisions"), f.data.join("verdicts"));
    // The first nine months (with the dirty rows, dated January and February), stored as
    // statistics by `aggregate`.
    let stored = dir.join("stats-to-september");
    let mut args: Vec<String> = vec!["--quiet".into(), "aggregate".into(), "--decisions".into()];
    args.extend(months(&dec, 1..=9));
    args.push(dec.join("zz-dirty.parquet").to_string_lossy().into_owned());
    args.push("--verdicts".into());
    args.extend(months(&ver, 1..=9));
    args.push(ver.join("zz-dirty.parquet").to_string_lossy().into_owned());
    args.extend(["--out".into(), stored.to_string_lossy().into_owned()]);
    let o = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(outcome(&o).0, 0, "{}", outcome(&o).2);

    // The later months from raw files; then September again, as if re-delivered complete:
    // its new statistics replace the stored ones instead of adding to them; then the later
    // months read in partitions (their value counts spilled, read back and merged).
    for (first_new, budget) in [(10, None), (9, None), (10, Some("0.0005"))] {
        let out = dir.join(format!(
            "run-from-{first_new}-{}",
            budget.unwrap_or("one-pass")
        ));
        let new_dec = months(&dec, first_new..=12);
        let new_ver = months(&ver, first_new..=12);
        let mut args: Vec<&str> = vec!["--stats", stored.to_str().unwrap(), "--decisions"];
        args.extend(new_dec.iter().map(String::as_str));
        args.push("--verdicts");
        args.extend(new_ver.iter().map(String::as_str));
        let o = match budget {
            None => analyze_args(&args, &out),
            Some(gib) => {
                let o = Command::new(env!("CARGO_BIN_EXE_readiness"))
                    .arg("analyze")
                    .args(&args)
                    .args(["--memory-budget", gib, "--out", out.to_str().unwrap()])
                    .arg("--ledger")
                    .arg(out.with_extension("ledger.jsonl"))
                    .env("READINESS_TIMINGS", "1")
                    .current_dir(root())
                    .output()
                    .unwrap();
                let err = outcome(&o).2;
                assert!(err.contains("partitions by decision id"), "{err}");
                o
            }
        };
        assert_eq!(outcome(&o).0, 0, "{}", outcome(&o).2);
        assert_same_outputs(&f.run, &out);
        // The stored months held the dirty rows: their rejects are unknown to this run, which
        // says so instead of claiming that no row was rejected.
        for report in ["report.md", "report.html"] {
            let text = std::fs::read_to_string(out.join(report)).unwrap();
            assert!(!text.contains("No row was rejected"), "{report}");
            assert!(
                text.contains("No row of the raw inputs was rejected")
                    && text.contains("their rejected rows are unknown here"),
                "{report}"
            );
        }
    }
}

/// Runs the emitted DuckDB script `sql` (which writes `stats`) from `dir`, then `analyze
/// --stats` on what it wrote; returns that run's directory.
fn run_on_duckdb(dir: &Path, sql: &str, stats: &Path) -> PathBuf {
    let script = dir.join("aggregate.sql");
    std::fs::write(&script, sql).unwrap();
    let py = Command::new("python3")
        .arg(root().join("tests/reference/run_sql_duckdb.py"))
        .arg(&script)
        .output()
        .expect("python3 runs (install requirements-dev.txt)");
    let (code, out, err) = outcome(&py);
    assert_eq!(code, 0, "DuckDB failed:\n{out}\n{err}");
    let run_dir = dir.join("run");
    let o = analyze_args(&["--stats", stats.to_str().unwrap()], &run_dir);
    assert_eq!(outcome(&o).0, 0, "{}", outcome(&o).2);
    run_dir
}

#[test]
fn the_sql_emitted_for_duckdb_gives_the_native_statistics() {
    let f = fixture();
    let dir = scratch("duckdb");
    let stats = dir.join("stats");
    let o = run(&[
        "aggregate",
        "--emit-sql",
        "duckdb",
        "--decisions",
        f.data.join("decisions").to_str().unwrap(),
        "--verdicts",
        f.data.join("verdicts").to_str().unwrap(),
        "--out",
        stats.to_str().unwrap(),
    ]);
    let (code, sql, err) = outcome(&o);
    assert_eq!(code, 0, "{err}");
    assert!(err.is_empty(), "inputs read here give no note: {err}");
    let run_dir = run_on_duckdb(&dir, &sql, &stats);
    assert_same_outputs(&f.run, &run_dir);
    // DuckDB's own files hold the same rows as the native ones, not only after decoding.
    let n = |p: &Path| {
        read_parquet(p)
            .column("n")
            .unwrap()
            .cast(&DataType::UInt64)
            .unwrap()
            .u64()
            .unwrap()
            .sum()
            .unwrap()
    };
    assert_eq!(
        n(&stats.join("suffstats.parquet")),
        n(&f.run.join("stats/suffstats.parquet"))
    );
}

/// The Parquet files under `src`, each changed by `edit` (given its path), written under `dst`
/// with the same relative paths.
fn rewritten(src: &Path, dst: &Path, edit: &dyn Fn(&Path, DataFrame) -> DataFrame) {
    for e in std::fs::read_dir(src).unwrap() {
        let path = e.unwrap().path();
        let to = dst.join(path.file_name().unwrap());
        if path.is_dir() {
            rewritten(&path, &to, edit);
            continue;
        }
        write_parquet(&to, &mut edit(&path, read_parquet(&path)));
    }
}

/// The fixture's inputs changed by `decisions` and `verdicts` under `dir`; runs them natively
/// and through the SQL emitted for DuckDB, asserts both give the same outputs, and returns
/// the native run's directory and the SQL.
fn duckdb_equals_native(
    dir: &Path,
    decisions: &dyn Fn(&Path, DataFrame) -> DataFrame,
    verdicts: &dyn Fn(&Path, DataFrame) -> DataFrame,
) -> (PathBuf, String) {
    let (native, run_dir, sql) = native_and_duckdb(dir, decisions, verdicts);
    assert_same_outputs(&native, &run_dir);
    (native, sql)
}

/// [`duckdb_equals_native`]'s runs, compared by the caller: the native run's directory, the
/// run from DuckDB's statistics, the SQL.
fn native_and_duckdb(
    dir: &Path,
    decisions: &dyn Fn(&Path, DataFrame) -> DataFrame,
    verdicts: &dyn Fn(&Path, DataFrame) -> DataFrame,
) -> (PathBuf, PathBuf, String) {
    let f = fixture();
    let data = dir.join("data");
    rewritten(
        &f.data.join("decisions"),
        &data.join("decisions"),
        decisions,
    );
    rewritten(&f.data.join("verdicts"), &data.join("verdicts"), verdicts);
    let (d, v) = (data.join("decisions"), data.join("verdicts"));
    let inputs = [
        "--decisions",
        d.to_str().unwrap(),
        "--verdicts",
        v.to_str().unwrap(),
    ];
    let native = dir.join("native");
    let o = analyze_args(&inputs, &native);
    assert_eq!(outcome(&o).0, 0, "{}", outcome(&o).2);

    let stats = dir.join("stats");
    let mut args = vec![
        "aggregate",
        "--emit-sql",
        "duckdb",
        "--out",
        stats.to_str().unwrap(),
    ];
    args.extend_from_slice(&inputs);
    let (code, sql, err) = outcome(&run(&args));
    assert_eq!(code, 0, "{err}");
    let run_dir = run_on_duckdb(dir, &sql, &stats);
    (native, run_dir, sql)
}

/// `column` of `df` as zoned nanoseconds.
fn zoned_nanoseconds(mut df: DataFrame, column: &str) -> DataFrame {
    let zoned = DataType::Datetime(TimeUnit::Nanoseconds, Some(TimeZone::UTC));
    let c = df.column(column).unwrap().cast(&zoned).unwrap();
    df.with_column(c).unwrap();
    df
}

#[test]
fn the_sql_emitted_for_duckdb_reads_zoned_nanosecond_timestamps() {
    // DuckDB has no `epoch_us` for zoned nanoseconds (`TIMESTAMPTZ_NS`): the emitted SQL
    // reads the unit of the files it can see and takes `epoch_ns` for them.
    let (native, sql) = duckdb_equals_native(
        &scratch("duckdb-ns"),
        &|_, df| zoned_nanoseconds(df, "decided_at"),
        &|_, df| zoned_nanoseconds(df, "reviewed_at"),
    );
    assert!(sql.contains("epoch_ns(\"decided_at\")"), "{sql}");
    assert!(sql.contains("epoch_ns(\"reviewed_at\")"), "{sql}");
    // The instants are the fixture's: the metrics are its native run's.
    assert_eq!(
        std::fs::read(native.join("recommendations.json")).unwrap(),
        std::fs::read(fixture().run.join("recommendations.json")).unwrap()
    );
}

#[test]
fn sql_for_inputs_this_machine_cannot_read_is_emitted_with_a_note_on_each() {
    let dir = scratch("unseen-sql");
    // Decisions named where this machine has nothing; verdicts that are not Parquet.
    let decisions = dir.join("lake/decisions");
    let verdicts = dir.join("lake/verdicts");
    std::fs::create_dir_all(&verdicts).unwrap();
    std::fs::write(verdicts.join("part-0.parquet"), "not Parquet").unwrap();
    let emit = |quiet: bool| {
        let mut args = if quiet { vec!["--quiet"] } else { vec![] };
        args.extend([
            "aggregate",
            "--emit-sql",
            "duckdb",
            "--decisions",
            decisions.to_str().unwrap(),
            "--verdicts",
            verdicts.to_str().unwrap(),
            "--out",
            "/tmp/stats",
        ]);
        let o = run(&args);
        assert_no_panic(&o);
        outcome(&o)
    };
    let (code, sql, err) = emit(false);
    assert_eq!(code, 0, "{err}");
    assert!(
        sql.contains(decisions.to_str().unwrap()) && sql.contains(verdicts.to_str().unwrap()),
        "the SQL names the inputs as given:\n{sql}"
    );
    let notes: Vec<&str> = err.lines().collect();
    assert_eq!(notes.len(), 2, "{err}");
    assert!(
        notes[0].starts_with("readiness: note: --decisions: ")
            && notes[0].contains(decisions.to_str().unwrap())
            && notes[0].contains("no such file or directory")
            && notes[0].contains("microseconds")
            && notes[0].contains("every optional column"),
        "{err}"
    );
    assert!(
        notes[1].starts_with("readiness: note: --verdicts: ")
            && notes[1].contains("part-0.parquet")
            && notes[1].contains("microseconds")
            && !notes[1].contains("optional column"),
        "{err}"
    );
    let (code, quiet_sql, err) = emit(true);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(quiet_sql, sql);
}

const OPTIONAL: [&str; 3] = ["target_entity", "technique_ids", "executed"];

#[test]
fn the_sql_emitted_for_duckdb_reads_files_without_the_optional_columns() {
    // Without target_entity, technique_ids and executed the native path reads no target, no
    // cited IDs and not executed; the SQL names no column DuckDB would not find.
    let (_, sql) = duckdb_equals_native(
        &scratch("duckdb-optional"),
        &|_, df| df.drop_many(OPTIONAL),
        &|_, df| df,
    );
    assert!(
        sql.contains("CAST(NULL AS VARCHAR) AS target_entity"),
        "{sql}"
    );
    // Where only the first file lacks them, the others' values are read: the metrics and
    // recommendations are the native ones. The statistics differ in one key only, by design
    // (README): DuckDB gives the first file's rows a null `executed`, the native path false.
    let first = |p: &Path| p.to_str().unwrap().contains("month=2025-01");
    let (native, run_dir, sql) = native_and_duckdb(
        &scratch("duckdb-optional-first"),
        &|p, df| if first(p) { df.drop_many(OPTIONAL) } else { df },
        &|_, df| df,
    );
    assert!(sql.contains("CAST(\"target_entity\" AS VARCHAR)"), "{sql}");
    for rel in compared_files(&native) {
        if !rel.starts_with("stats/") {
            let same = std::fs::read(native.join(&rel)).unwrap()
                == std::fs::read(run_dir.join(&rel)).unwrap();
            assert!(same, "{rel} differs");
        }
    }
}

#[test]
fn an_optional_column_named_by_hive_folders_is_read_by_the_emitted_sql() {
    let dir = scratch("sql-hive");
    let x = Inputs::valid(20);
    let mut d = x.decisions_df().drop_many(["executed"]);
    write_parquet(&dir.join("decisions/executed=true/part-0.parquet"), &mut d);
    let mut v = x.verdicts_df();
    write_parquet(&dir.join("verdicts/part-0.parquet"), &mut v);
    let sql = outcome(&run(&[
        "aggregate",
        "--emit-sql",
        "duckdb",
        "--decisions",
        dir.join("decisions").to_str().unwrap(),
        "--verdicts",
        dir.join("verdicts").to_str().unwrap(),
        "--out",
        dir.join("stats").to_str().unwrap(),
    ]))
    .1;
    assert!(
        sql.contains("CAST(\"executed\" AS BOOLEAN) AS executed"),
        "{sql}"
    );
    assert!(!sql.contains("CAST(false AS BOOLEAN)"), "{sql}");
}

#[test]
fn bad_statistics_are_refused_with_the_file_and_what_is_wrong() {
    let f = fixture();
    let dir = scratch("bad-stats");
    let copy = |name: &str| {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        for e in std::fs::read_dir(f.run.join("stats")).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), d.join(e.file_name())).unwrap();
        }
        d
    };
    let out = dir.join("run");
    let stats_run = |d: &Path, extra: &[&str]| {
        let mut args = vec!["--stats", d.to_str().unwrap()];
        args.extend_from_slice(extra);
        let o = analyze_args(&args, &out);
        assert_no_panic(&o);
        outcome(&o)
    };

    let (code, _, err) = stats_run(&dir.join("no-such-dir"), &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("no-such-dir") && err.contains("does not exist"),
        "{err}"
    );
    let (code, _, err) = stats_run(&f.run.join("stats/meta.parquet"), &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("meta.parquet") && err.contains("not a directory"),
        "{err}"
    );
    // The same set twice, whether the same directory spelled another way or a copy, would
    // count its decisions twice.
    let stats = f.run.join("stats");
    let respelled = f.run.join("stats/../stats");
    let (code, _, err) = stats_run(&stats, &["--stats", respelled.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(respelled.to_str().unwrap()) && err.contains("given twice"),
        "{err}"
    );
    let twin = copy("twin");
    let (code, _, err) = stats_run(&stats, &["--stats", twin.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(twin.to_str().unwrap())
            && err.contains(stats.to_str().unwrap())
            && err.contains("same statistics"),
        "{err}"
    );

    let missing = copy("missing");
    std::fs::remove_file(missing.join("reviews.parquet")).unwrap();
    let (code, _, err) = stats_run(&missing, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("reviews.parquet") && err.contains("missing"),
        "{err}"
    );

    let (code, _, err) = stats_run(&f.run.join("stats"), &["--period", "week"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("per month") && err.contains("per week"),
        "{err}"
    );

    let wrong = copy("wrong-type");
    let mut cells = read_parquet(&wrong.join("suffstats.parquet"));
    let n = cells.height();
    cells
        .with_column(Column::new("n".into(), vec!["many"; n]))
        .unwrap();
    write_parquet(&wrong.join("suffstats.parquet"), &mut cells);
    let (code, _, err) = stats_run(&wrong, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("suffstats.parquet") && err.contains("'n'"),
        "{err}"
    );

    let negative = copy("negative");
    let mut conf = read_parquet(&negative.join("confidence.parquet"));
    let n = conf.height();
    let mut counts = vec![1i64; n];
    counts[3] = -2;
    conf.with_column(Column::new("n".into(), counts)).unwrap();
    write_parquet(&negative.join("confidence.parquet"), &mut conf);
    let (code, _, err) = stats_run(&negative, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("row 3") && err.contains("negative"), "{err}");

    let o = run(&["--quiet", "analyze", "--decisions", "x.parquet"]);
    assert_eq!(outcome(&o).0, 2, "{}", outcome(&o).2);

    // A value outside its domain, and tables that describe different inputs.
    let verdict = copy("bad-verdict");
    let mut reviews = read_parquet(&verdict.join("reviews.parquet"));
    let mut v: Vec<String> = reviews
        .column("verdict")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|x| x.unwrap().to_string())
        .collect();
    v[5] = "Approve".into();
    reviews
        .with_column(Column::new("verdict".into(), v))
        .unwrap();
    write_parquet(&verdict.join("reviews.parquet"), &mut reviews);
    let (code, _, err) = stats_run(&verdict, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("row 5") && err.contains("'verdict'"), "{err}");

    let partial = copy("partial");
    let conf = read_parquet(&partial.join("confidence.parquet"));
    let mut half = conf.head(Some(conf.height() / 2));
    write_parquet(&partial.join("confidence.parquet"), &mut half);
    let (code, _, err) = stats_run(&partial, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("different inputs"), "{err}");

    // `--out` never replaces a directory that merely holds a file named like a marker.
    let foreign = dir.join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::copy(
        f.run.join("stats/meta.parquet"),
        foreign.join("meta.parquet"),
    )
    .unwrap();
    std::fs::write(foreign.join("notes.txt"), "mine").unwrap();
    let o = run(&[
        "--quiet",
        "aggregate",
        "--stats",
        f.run.join("stats").to_str().unwrap(),
        "--out",
        foreign.to_str().unwrap(),
    ]);
    assert_eq!(outcome(&o).0, 1, "{}", outcome(&o).2);
    assert!(foreign.join("notes.txt").is_file());
}

#[test]
fn a_partly_resupplied_period_is_refused_not_dropped() {
    // Weekly periods: the week of Monday 2025-09-29 straddles the September/October boundary
    // of the monthly files, so October's raw files touch a stored week without holding its
    // September days.
    let f = fixture();
    let dir = scratch("partial-week");
    let (dec, ver) = (f.data.join("decisions"), f.data.join("verdicts"));
    let stored = dir.join("stats");
    let mut args: Vec<String> = vec!["--quiet".into(), "aggregate".into(), "--period".into()];
    args.push("week".into());
    args.push("--decisions".into());
    args.extend(months(&dec, 1..=9));
    args.push("--verdicts".into());
    args.extend(months(&ver, 1..=9));
    args.extend(["--out".into(), stored.to_string_lossy().into_owned()]);
    let o = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(outcome(&o).0, 0, "{}", outcome(&o).2);
    let new_dec = months(&dec, 10..=12);
    let new_ver = months(&ver, 10..=12);
    let mut args: Vec<&str> = vec![
        "--period",
        "week",
        "--stats",
        stored.to_str().unwrap(),
        "--decisions",
    ];
    args.extend(new_dec.iter().map(String::as_str));
    args.push("--verdicts");
    args.extend(new_ver.iter().map(String::as_str));
    let o = analyze_args(&args, &dir.join("run"));
    let (code, _, err) = outcome(&o);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("week starting 2025-09-29") && err.contains("2025-09-29"),
        "{err}"
    );
}

/// `compute_beside` hands its second task the set the metrics come from, once, in a one-pass
/// and in a partitioned run (written beside the metrics in the first, after them in the
/// second); an error of that task is the run's, and a panic in it reaches the caller.
#[test]
fn the_task_beside_the_metrics_sees_the_set_once_and_its_error_is_the_runs() {
    use readiness::aggregate::stats_from_table;
    use readiness::pipeline::{compute_beside, InputConfig, Passes, Progress, RunError};
    let f = fixture();
    let input = |budget: Option<u64>| InputConfig {
        decisions: vec![f.data.join("decisions").display().to_string()],
        verdicts: vec![f.data.join("verdicts").display().to_string()],
        policy: root().join("data/policy.toml"),
        period: None,
        stats: Vec::new(),
        memory_budget: budget,
    };
    let passes = Passes { oversight: true };
    // 1 MB: the fixture's 30,000 decisions in about 13 partitions, the large tables spilled.
    for (budget, spilled) in [(None, false), (Some(1 << 20), true)] {
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let (c, (decisions, seen_spilled)) = compute_beside(
            &input(budget),
            Progress::new(true),
            passes,
            |_| Ok(()),
            |set| {
                calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let stats =
                    stats_from_table(&set.cells).map_err(|e| RunError::Other(e.to_string()))?;
                Ok((stats.total(|_| true).n_decisions(), set.spilled.is_some()))
            },
        )
        .unwrap();
        assert_eq!(calls.into_inner(), 1);
        assert_eq!(seen_spilled, spilled, "budget {budget:?}");
        // The set the task saw holds every valid decision the run counted (30,000 generated,
        // less the dirty rows rejected).
        assert!(decisions > 29_000, "{decisions}");
        assert_eq!(decisions, c.counts.decisions_valid, "budget {budget:?}");
        let failed = compute_beside(
            &input(budget),
            Progress::new(true),
            passes,
            |_| Ok(()),
            |_| Err::<(), _>(RunError::Other("the set could not be written".into())),
        );
        match failed {
            Err(e) => assert!(e.to_string().contains("could not be written"), "{e}"),
            Ok(_) => panic!("the task's error was lost (budget {budget:?})"),
        }
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            compute_beside(
                &input(budget),
                Progress::new(true),
                passes,
                |_| Ok(()),
                |_| -> Result<(), RunError> { panic!("the task stopped") },
            )
        }));
        let payload = panicked.err().expect("the task's panic was lost");
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned());
        assert_eq!(message.as_deref(), Some("the task stopped"));
    }
}
