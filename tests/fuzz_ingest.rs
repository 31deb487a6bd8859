//! Property-based fuzzing of input validation: generated schemas (columns dropped, renamed or
//! retyped) and generated values (nulls, NaN, infinities, out-of-range timestamps, odd strings)
//! go through the real ingest stage. It never panics; it either refuses the input with an error
//! naming the file, or accounts for every row (read = valid + rejected). 48 cases in the test
//! suite; `PROPTEST_CASES=2000 cargo test --release --test fuzz_ingest` runs longer.

mod util;

use polars::prelude::*;
use proptest::prelude::*;
use readiness::ingest::{ingest, ColumnMap, IngestOptions};
use util::*;

fn confidence() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![
        8 => (0.0f64..=1.0).prop_map(Some),
        1 => Just(None),
        1 => Just(Some(f64::NAN)),
        1 => Just(Some(f64::NEG_INFINITY)),
        1 => Just(Some(1.000_000_1)),
        1 => Just(Some(-0.0)),
        1 => any::<f64>().prop_map(Some),
    ]
}

fn text() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        6 => "[a-z_]{1,12}".prop_map(Some),
        1 => Just(None),
        1 => Just(Some(String::new())),
        1 => "\\PC{0,20}".prop_map(Some),
    ]
}

fn timestamp() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![
        8 => (T0..T0 + 400 * 24 * HOUR).prop_map(Some),
        1 => Just(None),
        1 => any::<i64>().prop_map(|x| Some(x / 4)),
    ]
}

#[derive(Debug, Clone)]
enum SchemaChange {
    None,
    Drop(&'static str),
    ToString(&'static str),
    ToInt(&'static str),
}

fn schema_change() -> impl Strategy<Value = SchemaChange> {
    let cols = [
        "decision_id",
        "decided_at",
        "action_class",
        "confidence",
        "model_version",
        "asset_criticality",
        "privileged",
    ];
    prop_oneof![
        6 => Just(SchemaChange::None),
        1 => proptest::sample::select(cols.to_vec()).prop_map(SchemaChange::Drop),
        1 => proptest::sample::select(cols.to_vec()).prop_map(SchemaChange::ToString),
        1 => proptest::sample::select(cols.to_vec()).prop_map(SchemaChange::ToInt),
    ]
}

/// Cases per property: `PROPTEST_CASES` when set, else the suite's default.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(48)))]

    #[test]
    fn ingest_never_panics_and_accounts_for_every_row(
        n in 0usize..60,
        conf in proptest::collection::vec(confidence(), 60),
        classes in proptest::collection::vec(text(), 60),
        verdicts in proptest::collection::vec(text(), 60),
        times in proptest::collection::vec(timestamp(), 60),
        ids in proptest::collection::vec(0u8..40, 60),
        change in schema_change(),
    ) {
        let dir = scratch("fuzz");
        let mut x = Inputs::valid(n);
        for i in 0..n {
            x.confidence[i] = conf[i];
            x.action_class[i] = classes[i].clone();
            x.verdict[i] = verdicts[i].clone().map(|v| if v.len() % 3 == 0 { "approve".into() } else { v });
            x.decided_at[i] = times[i];
            x.decision_id[i] = Some(format!("d{}", ids[i]));
        }
        let (_, v) = x.write(&dir);
        let mut df = x.decisions_df();
        let apply = |df: &mut DataFrame, name: &str, dt: DataType| {
            if let Ok(c) = df.column(name).and_then(|c| c.cast(&dt)) {
                let _ = df.with_column(c);
            }
        };
        match change {
            SchemaChange::None => {}
            SchemaChange::Drop(c) => { let _ = df.drop_in_place(c); }
            SchemaChange::ToString(c) => apply(&mut df, c, DataType::String),
            SchemaChange::ToInt(c) => apply(&mut df, c, DataType::Int64),
        }
        let d = dir.join("decisions.parquet");
        write_parquet(&d, &mut df);
        let result = std::panic::catch_unwind(|| {
            ingest(&IngestOptions {
                decisions: &[d.to_string_lossy().into_owned()],
                verdicts: &[v.to_string_lossy().into_owned()],
                columns: &ColumnMap::default(),
            })
        });
        prop_assert!(result.is_ok(), "ingest panicked");
        match result.unwrap() {
            Ok(ing) => {
                let c = &ing.counts;
                prop_assert_eq!(c.decisions_read, n as u64);
                prop_assert_eq!(c.decisions_read, c.decisions_valid + c.decisions_rejected);
                prop_assert_eq!(c.verdicts_read, c.verdicts_valid + c.verdicts_rejected);
                prop_assert_eq!(ing.decisions.height() as u64, c.decisions_valid);
                prop_assert_eq!(ing.rejects.height() as u64, c.decisions_rejected + c.verdicts_rejected);
                let _ = ing.check(0.05);
            }
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(msg.contains("decisions.parquet") || msg.contains("verdicts.parquet"), "{}", msg);
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A category column supplied by folder names only (`model_version=v1/`, `model_version=v2/`,
/// no such column in the files) is read like one from the files: every row valid, each with its
/// folder's value.
#[test]
fn a_category_column_can_come_from_hive_folders() {
    let dir = scratch("hive-category");
    let x = Inputs::valid(40);
    let mut all = x.decisions_df();
    all.drop_in_place("model_version").unwrap();
    for (k, version) in ["v1", "v2"].iter().enumerate() {
        let folder = dir
            .join("decisions")
            .join(format!("model_version={version}"));
        std::fs::create_dir_all(&folder).unwrap();
        write_parquet(
            &folder.join("part.parquet"),
            &mut all.slice(k as i64 * 20, 20),
        );
    }
    let v = dir.join("verdicts.parquet");
    write_parquet(&v, &mut x.verdicts_df());
    let ing = ingest(&IngestOptions {
        decisions: &[dir.join("decisions").to_string_lossy().into_owned()],
        verdicts: &[v.to_string_lossy().into_owned()],
        columns: &ColumnMap::default(),
    })
    .unwrap();
    assert_eq!(ing.counts.decisions_valid, 40);
    let versions = ing.decisions.column("model_version").unwrap();
    assert!(matches!(versions.dtype(), DataType::Categorical(..)));
    let versions: Vec<String> = versions
        .cast(&DataType::String)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|v| v.unwrap().to_string())
        .collect();
    let want: Vec<&str> = (0..40).map(|i| if i < 20 { "v1" } else { "v2" }).collect();
    assert_eq!(versions, want);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every decision rejected: the valid decisions are an empty table (the join then reads an
/// empty slice of decision times), every verdict is quarantined with its decision, and the
/// run's check names the empty input.
#[test]
fn every_decision_rejected_leaves_an_empty_table_and_no_panic() {
    let dir = scratch("all-rejected");
    let mut x = Inputs::valid(20);
    for c in &mut x.confidence {
        *c = Some(1.5);
    }
    let (d, v) = x.write(&dir);
    let ing = ingest(&IngestOptions {
        decisions: &[d.to_string_lossy().into_owned()],
        verdicts: &[v.to_string_lossy().into_owned()],
        columns: &ColumnMap::default(),
    })
    .unwrap();
    assert_eq!(ing.decisions.height(), 0);
    assert_eq!(ing.counts.decisions_rejected, 20);
    assert_eq!(ing.counts.verdicts_rejected, 20);
    let reasons = ing.rejects.column("reason").unwrap().str().unwrap().clone();
    let decision_rejected = reasons
        .iter()
        .filter(|r| *r == Some("decision_rejected"))
        .count();
    assert_eq!(decision_rejected, 20);
    let err = ing.check(1.0).unwrap_err().to_string();
    assert!(err.contains("all 20 decision rows were rejected"), "{err}");
}
