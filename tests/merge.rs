//! Mergeable sufficient statistics: aggregating two halves of the input separately and merging
//! gives the statistics of the whole (counts exactly, confidence sums to rounding).

mod util;

use readiness::aggregate::aggregate;
use readiness::ingest::{ingest, ColumnMap, IngestOptions};
use readiness_metrics::{Granularity, SuffStats};
use util::*;

fn stats(decisions: Vec<String>, verdicts: &str) -> SuffStats {
    let ing = ingest(&IngestOptions {
        decisions: &decisions,
        verdicts: &[verdicts.to_string()],
        columns: &ColumnMap::default(),
    })
    .unwrap();
    aggregate(&ing, Granularity::Month).unwrap().stats
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn halves_merge_to_the_whole() {
    let dir = scratch("merge");
    let data = dir.join("data");
    generate(&data, 30000, 3, &[]);
    let month = |m: u32| {
        data.join("decisions")
            .join(format!("month=2025-{m:02}"))
            .to_string_lossy()
            .into_owned()
    };
    let verdicts = data.join("verdicts").to_string_lossy().into_owned();
    let whole = stats((1..=12).map(month).collect(), &verdicts);
    let mut merged = stats((1..=6).map(month).collect(), &verdicts);
    merged.merge(&stats((7..=12).map(month).collect(), &verdicts));

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
