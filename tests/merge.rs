//! Mergeable sufficient statistics: aggregating two halves of the input separately and merging
//! gives the statistics of the whole (counts exactly, confidence sums to rounding), and the
//! summed statistics set equals the whole's table for table.

mod util;

use std::collections::BTreeSet;

use readiness::aggregate::{stats_from_table, StatsSet};
use readiness::ingest::{ingest, ColumnMap, IngestOptions};
use readiness::pipeline::attack_catalog;
use readiness_metrics::{Granularity, SuffStats};
use util::*;

fn set(decisions: Vec<String>, verdicts: &str) -> StatsSet {
    let ing = ingest(&IngestOptions {
        decisions: &decisions,
        verdicts: &[verdicts.to_string()],
        columns: &ColumnMap::default(),
    })
    .unwrap();
    let unwatched: BTreeSet<String> = ["enrich_alert".to_string()].into();
    StatsSet::build(ing, Granularity::Month, attack_catalog(), &unwatched, true).unwrap()
}

/// Generated inputs: the decisions folder of month m (2025), and all verdicts.
fn month_inputs(data: &std::path::Path) -> (impl Fn(u32) -> String + '_, String) {
    let month = move |m: u32| {
        data.join("decisions")
            .join(format!("month=2025-{m:02}"))
            .to_string_lossy()
            .into_owned()
    };
    (month, data.join("verdicts").to_string_lossy().into_owned())
}

fn stats(decisions: Vec<String>, verdicts: &str) -> SuffStats {
    stats_from_table(&set(decisions, verdicts).cells).unwrap()
}

#[test]
fn summed_statistics_sets_equal_the_whole() {
    let dir = scratch("merge-set");
    let data = dir.join("data");
    generate(&data, 20000, 5, &[]);
    let (month, verdicts) = month_inputs(&data);
    let whole = set((1..=12).map(&month).collect(), &verdicts);
    let parts = vec![
        set((1..=4).map(&month).collect(), &verdicts),
        set((5..=12).map(&month).collect(), &verdicts),
    ];
    let summed = StatsSet::sum(parts).unwrap();
    for (name, a, b) in [
        ("cells", &whole.cells, &summed.cells),
        ("confidence", &whole.confidence, &summed.confidence),
        ("daily", &whole.daily, &summed.daily),
        ("reasoning", &whole.reasoning, &summed.reasoning),
        ("cited", &whole.cited, &summed.cited),
        ("reviews", &whole.reviews, &summed.reviews),
    ] {
        assert!(a.height() > 0, "{name} is empty");
        assert!(a.equals_missing(b), "{name} differs:\n{a}\n{b}");
    }
    // The unwatched class has no daily rows; a watched one has.
    let classes = whole
        .daily
        .column("action_class")
        .unwrap()
        .str()
        .unwrap()
        .clone();
    assert!(!classes.iter().any(|c| c == Some("enrich_alert")));
    assert!(classes.iter().any(|c| c == Some("isolate_host")));
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn halves_merge_to_the_whole() {
    let dir = scratch("merge");
    let data = dir.join("data");
    generate(&data, 30000, 3, &[]);
    let (month, verdicts) = month_inputs(&data);
    let whole = stats((1..=12).map(&month).collect(), &verdicts);
    let mut merged = stats((1..=6).map(&month).collect(), &verdicts);
    merged.merge(&stats((7..=12).map(&month).collect(), &verdicts));

    assert_eq!(
        whole.cells.keys().collect::<Vec<_>>(),
        merged.cells.keys().collect::<Vec<_>>()
    );
    let mut n = 0;
    for (k, a) in &whole.cells {
        let b = &merged.cells[k];
        assert_eq!(
            (
                a.n_approve,
                a.n_override,
                a.n_reject,
                a.n_timeout,
                a.n_unreviewed
            ),
            (
                b.n_approve,
                b.n_override,
                b.n_reject,
                b.n_timeout,
                b.n_unreviewed
            ),
            "{k:?}"
        );
        assert_eq!(
            (a.n_executed, a.n_executed_reversed),
            (b.n_executed, b.n_executed_reversed)
        );
        assert_eq!(a.fine, b.fine, "{k:?}");
        for (x, y) in a.cal.iter().zip(b.cal.iter()) {
            assert_eq!((x.n, x.approve), (y.n, y.approve));
            assert!(close(x.sum_conf, y.sum_conf));
        }
        for (x, y) in [
            (a.sum_conf_all, b.sum_conf_all),
            (a.sum_conf, b.sum_conf),
            (a.sum_conf2, b.sum_conf2),
            (a.sum_conf4, b.sum_conf4),
            (a.sum_conf_approve, b.sum_conf_approve),
        ] {
            assert!(close(x, y), "{k:?}: {x} vs {y}");
        }
        n += a.n_decisions();
    }
    assert!(n >= 30_000, "{n} decisions");
}
