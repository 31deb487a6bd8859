//! Helpers for the CLI tests: run the real binary, write small Parquet inputs.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use polars::prelude::*;

/// The project root (where `data/policy.toml` lives).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh, empty scratch directory `<name>-<pid>-<n>` under the target directory. The first
/// call in a test process removes the scratch directories of test processes that have ended, so
/// the directories do not pile up run after run (about 330 MB a run of the suite) and those of
/// the last test binary stay for inspection. (Test runs in separate pid namespaces that share a
/// target directory would remove each other's: give them target directories of their own.)
pub fn scratch(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    static SWEPT: std::sync::Once = std::sync::Once::new();
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    SWEPT.call_once(|| readiness::partition::remove_ended(&base, ""));
    let dir = base.join(format!(
        "{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `readiness ARGS` in the project root.
pub fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_readiness"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("the readiness binary runs")
}

/// Exit code, stdout and stderr as text.
pub fn outcome(o: &Output) -> (i32, String, String) {
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A panic exits with 101 and prints "panicked"; no input may cause that.
pub fn assert_no_panic(o: &Output) {
    let (code, _, err) = outcome(o);
    assert_ne!(code, 101, "panicked: {err}");
    assert!(!err.contains("panicked"), "panicked: {err}");
}

pub fn write_parquet(path: &Path, df: &mut DataFrame) {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).unwrap();
    }
    let f = std::fs::File::create(path).unwrap();
    ParquetWriter::new(f).finish(df).unwrap();
}

pub fn read_parquet(path: &Path) -> DataFrame {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ParquetReader::new(f).finish().unwrap()
}

/// 2025-01-01T00:00:00Z in microseconds.
pub const T0: i64 = 1_735_689_600_000_000;
pub const HOUR: i64 = 3_600_000_000;

/// A small valid input, as plain vectors so that cases can break one thing at a time.
#[derive(Clone)]
pub struct Inputs {
    pub decision_id: Vec<Option<String>>,
    pub decided_at: Vec<Option<i64>>,
    pub action_class: Vec<Option<String>>,
    pub confidence: Vec<Option<f64>>,
    pub model_version: Vec<Option<String>>,
    pub asset_criticality: Vec<Option<String>>,
    pub privileged: Vec<Option<bool>>,
    pub v_decision_id: Vec<Option<String>>,
    pub reviewed_at: Vec<Option<i64>>,
    pub analyst_id: Vec<Option<String>>,
    pub verdict: Vec<Option<String>>,
}

impl Inputs {
    /// `n` decisions over January and February 2025, two classes, each with one verdict ten
    /// minutes later.
    pub fn valid(n: usize) -> Inputs {
        let mut x = Inputs {
            decision_id: vec![],
            decided_at: vec![],
            action_class: vec![],
            confidence: vec![],
            model_version: vec![],
            asset_criticality: vec![],
            privileged: vec![],
            v_decision_id: vec![],
            reviewed_at: vec![],
            analyst_id: vec![],
            verdict: vec![],
        };
        for i in 0..n {
            let t = T0 + (i as i64) * (1416 * HOUR / n as i64);
            x.decision_id.push(Some(format!("d{i:06}")));
            x.decided_at.push(Some(t));
            x.action_class.push(Some(
                if i % 2 == 0 {
                    "enrich_alert"
                } else {
                    "isolate_host"
                }
                .into(),
            ));
            x.confidence
                .push(Some(0.5 + 0.49 * ((i * 37 % 100) as f64 / 100.0)));
            x.model_version.push(Some("v1".into()));
            x.asset_criticality
                .push(Some(["low", "medium", "high", "critical"][i % 4].into()));
            x.privileged.push(Some(i % 5 == 0));
            x.v_decision_id.push(Some(format!("d{i:06}")));
            x.reviewed_at.push(Some(t + HOUR / 6));
            x.analyst_id.push(Some(format!("a{}", i % 3)));
            x.verdict
                .push(Some(if i % 10 == 0 { "reject" } else { "approve" }.into()));
        }
        x
    }

    pub fn decisions_df(&self) -> DataFrame {
        DataFrame::new_infer_height(vec![
            Column::new("decision_id".into(), self.decision_id.clone()),
            Column::new("decided_at".into(), self.decided_at.clone())
                .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
                .unwrap(),
            Column::new("action_class".into(), self.action_class.clone()),
            Column::new("confidence".into(), self.confidence.clone()),
            Column::new("model_version".into(), self.model_version.clone()),
            Column::new("asset_criticality".into(), self.asset_criticality.clone()),
            Column::new("privileged".into(), self.privileged.clone()),
        ])
        .unwrap()
    }

    pub fn verdicts_df(&self) -> DataFrame {
        DataFrame::new_infer_height(vec![
            Column::new("decision_id".into(), self.v_decision_id.clone()),
            Column::new("reviewed_at".into(), self.reviewed_at.clone())
                .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
                .unwrap(),
            Column::new("analyst_id".into(), self.analyst_id.clone()),
            Column::new("verdict".into(), self.verdict.clone()),
        ])
        .unwrap()
    }

    /// Writes `decisions.parquet` and `verdicts.parquet` into `dir`.
    pub fn write(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let d = dir.join("decisions.parquet");
        let v = dir.join("verdicts.parquet");
        write_parquet(&d, &mut self.decisions_df());
        write_parquet(&v, &mut self.verdicts_df());
        (d, v)
    }
}

/// `readiness analyze` on explicit inputs into `out`, with the bundled policy and a ledger in
/// `out`'s parent.
pub fn analyze(decisions: &Path, verdicts: &Path, out: &Path, extra: &[&str]) -> Output {
    let ledger = out.with_extension("ledger.jsonl");
    let mut args = vec![
        "--quiet",
        "analyze",
        "--decisions",
        decisions.to_str().unwrap(),
        "--verdicts",
        verdicts.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--ledger",
        ledger.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

/// `readiness generate` into `out` (asserting success).
pub fn generate(out: &Path, decisions: u64, seed: u64, extra: &[&str]) {
    let (n, s) = (decisions.to_string(), seed.to_string());
    let mut args = vec![
        "--quiet",
        "generate",
        "--out",
        out.to_str().unwrap(),
        "--decisions",
        &n,
        "--seed",
        &s,
    ];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert_eq!(outcome(&o).0, 0, "generate: {}", outcome(&o).2);
}
