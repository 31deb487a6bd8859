//! readiness-metrics against reference implementations: statsmodels (intervals, z-test, BH),
//! numpy and scikit-learn (calibration), numpy and scipy (PSI, chi-square, Fisher's exact test).
//!
//! The fixtures in `tests/fixtures/*.json` are produced by `tests/fixtures/make_fixtures.py`;
//! none of the expected values comes from this crate. Values are compared to 1e-9 absolute,
//! p-values to 1e-6 relative.

use std::path::Path;

use readiness_metrics::calibration::{calibration, calibration_bins};
use readiness_metrics::drift::{agreement_change, fisher_exact, psi, AgreementTest};
use readiness_metrics::fdr::{bh_adjust, bh_reject};
use readiness_metrics::interval::{clopper_pearson, wilson, ConfidenceLevel};
use readiness_metrics::{Cell, Outcome};
use serde_json::Value;

const ABS: f64 = 1e-9;
const P_REL: f64 = 1e-6;

fn cases(file: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let v: Value = serde_json::from_str(&text).expect("fixture is valid JSON");
    v["cases"]
        .as_array()
        .expect("fixture has a cases array")
        .clone()
}

fn f(v: &Value) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("expected a number, got {v}"))
}

fn u(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("expected an integer, got {v}"))
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().expect("array").iter().map(f).collect()
}

fn assert_abs(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= ABS,
        "{what}: got {got:e}, want {want:e} (diff {:e})",
        (got - want).abs()
    );
}

fn assert_p(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= P_REL * want.abs(),
        "{what}: got {got:e}, want {want:e} (rel diff {:e})",
        ((got - want) / want).abs()
    );
}

#[test]
fn intervals_match_statsmodels() {
    let cases = cases("intervals.json");
    assert!(cases.len() >= 100);
    for c in &cases {
        let (k, n, alpha) = (u(&c["k"]), u(&c["n"]), f(&c["alpha"]));
        let level = ConfidenceLevel::new(1.0 - alpha).unwrap();
        let tag = format!("k={k} n={n} alpha={alpha}");
        let w = wilson(k, n, level).unwrap();
        let want = floats(&c["wilson"]);
        assert_abs(w.low, want[0], &format!("wilson low {tag}"));
        assert_abs(w.high, want[1], &format!("wilson high {tag}"));
        let cp = clopper_pearson(k, n, level).unwrap();
        let want = floats(&c["clopper_pearson"]);
        assert_abs(cp.low, want[0], &format!("clopper-pearson low {tag}"));
        assert_abs(cp.high, want[1], &format!("clopper-pearson high {tag}"));
        if k == 0 {
            assert_eq!(cp.low, 0.0, "{tag}");
        }
        if k == n {
            assert_eq!(cp.high, 1.0, "{tag}");
        }
    }
}

#[test]
fn calibration_matches_numpy_and_sklearn() {
    for c in &cases("calibration.json") {
        let name = c["name"].as_str().unwrap();
        let conf = floats(&c["confidence"]);
        let approve: Vec<u64> = c["approve"].as_array().unwrap().iter().map(u).collect();
        let mut cell = Cell::default();
        for (&x, &y) in conf.iter().zip(&approve) {
            let outcome = if y == 1 {
                Outcome::Approve
            } else {
                Outcome::Override
            };
            cell.add_decision(x, outcome, false);
        }
        // Unreviewed and timed-out decisions must not enter calibration.
        cell.add_decision(0.99, Outcome::Timeout, false);
        cell.add_decision(0.01, Outcome::Unreviewed, true);

        let cal = calibration(&cell).unwrap();
        assert_eq!(cal.n, u(&c["n"]), "{name}");
        assert_abs(cal.brier, f(&c["brier"]), &format!("{name} brier"));
        assert_abs(
            cal.brier,
            f(&c["brier_sklearn"]),
            &format!("{name} brier (sklearn)"),
        );
        assert_abs(cal.ece, f(&c["ece"]), &format!("{name} ece"));
        assert_abs(cal.mce, f(&c["mce"]), &format!("{name} mce"));
        assert_abs(
            cal.reliability,
            f(&c["reliability"]),
            &format!("{name} reliability"),
        );
        assert_abs(
            cal.resolution,
            f(&c["resolution"]),
            &format!("{name} resolution"),
        );
        assert_abs(
            cal.uncertainty,
            f(&c["uncertainty"]),
            &format!("{name} uncertainty"),
        );
        let z = cal.spiegelhalter_z.unwrap();
        assert_abs(
            z,
            f(&c["spiegelhalter_z"]),
            &format!("{name} spiegelhalter z"),
        );
        let p = cal.spiegelhalter_p.unwrap();
        assert_p(
            p,
            f(&c["spiegelhalter_p"]),
            &format!("{name} spiegelhalter p"),
        );

        let bins = calibration_bins(&cell).unwrap();
        for (i, (got, want)) in bins.iter().zip(c["bins"].as_array().unwrap()).enumerate() {
            assert_eq!(got.n, u(&want["n"]), "{name} bin {i} count");
            match (got.mean_confidence, want["mean_confidence"].as_f64()) {
                (Some(g), Some(w)) => assert_abs(g, w, &format!("{name} bin {i} confidence")),
                (None, None) => {}
                other => panic!("{name} bin {i}: {other:?}"),
            }
            match (got.observed_agreement, want["observed_agreement"].as_f64()) {
                (Some(g), Some(w)) => assert_abs(g, w, &format!("{name} bin {i} agreement")),
                (None, None) => {}
                other => panic!("{name} bin {i}: {other:?}"),
            }
        }
    }
}

#[test]
fn psi_matches_numpy_and_scipy() {
    for c in &cases("psi.json") {
        let name = c["name"].as_str().unwrap();
        let mut periods: Vec<Vec<f64>> = c["periods"]
            .as_array()
            .unwrap()
            .iter()
            .map(floats)
            .collect();
        for p in &mut periods {
            p.sort_by(f64::total_cmp);
        }
        let runs: Vec<&[f64]> = periods.iter().map(Vec::as_slice).collect();
        let mut current = floats(&c["current"]);
        current.sort_by(f64::total_cmp);

        let r = psi(&runs, &current).unwrap();
        let edges = floats(&c["edges"]);
        assert_eq!(r.edges.len(), edges.len(), "{name} edges {:?}", r.edges);
        for (g, w) in r.edges.iter().zip(&edges) {
            // numpy's interpolation is reproduced operation for operation.
            assert_eq!(g, w, "{name} edge");
        }
        let want: Vec<u64> = c["ref_counts"].as_array().unwrap().iter().map(u).collect();
        assert_eq!(r.ref_counts, want, "{name} reference counts");
        let want: Vec<u64> = c["cur_counts"].as_array().unwrap().iter().map(u).collect();
        assert_eq!(r.cur_counts, want, "{name} current counts");
        assert_abs(r.psi, f(&c["psi"]), &format!("{name} psi"));
        match c["chi2"].as_f64() {
            Some(x2) => {
                assert_abs(r.chi2.unwrap(), x2, &format!("{name} chi2"));
                assert_eq!(r.chi2_df, Some(u(&c["chi2_df"])), "{name} df");
                assert_p(
                    r.chi2_p.unwrap(),
                    f(&c["chi2_p"]),
                    &format!("{name} chi2 p"),
                );
            }
            None => assert_eq!(r.chi2, None, "{name}"),
        }
    }
}

#[test]
fn agreement_change_matches_statsmodels() {
    for c in &cases("ztest.json") {
        let (k1, n1, k2, n2) = (
            u(&c["k_cur"]),
            u(&c["n_cur"]),
            u(&c["k_base"]),
            u(&c["n_base"]),
        );
        let tag = format!("{k1}/{n1} vs {k2}/{n2}");
        let a = agreement_change(k1, n1, k2, n2).unwrap();
        assert_abs(a.diff, k1 as f64 / n1 as f64 - k2 as f64 / n2 as f64, &tag);
        assert_abs(a.cohens_h, f(&c["cohens_h"]), &format!("{tag} h"));
        match c["z"].as_f64() {
            Some(z) => {
                assert_abs(a.z.unwrap(), z, &format!("{tag} z"));
                // Small tables use Fisher's exact test instead (checked in fisher_matches_scipy).
                if a.test == AgreementTest::ZTest {
                    assert_p(a.p_value.unwrap(), f(&c["p_value"]), &format!("{tag} p"));
                }
            }
            None => assert_eq!(a.z, None, "{tag}"),
        }
    }
}

/// Fisher's exact test against scipy.stats.fisher_exact (fixtures/make_fisher_fixtures.py), and
/// the switch to it exactly when an expected count is below 5.
#[test]
fn fisher_matches_scipy() {
    for c in &cases("fisher.json") {
        let (k1, n1, k2, n2) = (
            u(&c["k_cur"]),
            u(&c["n_cur"]),
            u(&c["k_base"]),
            u(&c["n_base"]),
        );
        let tag = format!("{k1}/{n1} vs {k2}/{n2}");
        let want = f(&c["p_value"]);
        assert_p(fisher_exact(k1, n1, k2, n2).unwrap(), want, &tag);
        let (n, k) = ((n1 + n2) as f64, (k1 + k2) as f64);
        let min_expected = [n1 as f64, n2 as f64]
            .iter()
            .flat_map(|r| [r * k / n, r * (n - k) / n])
            .fold(f64::INFINITY, f64::min);
        let a = agreement_change(k1, n1, k2, n2).unwrap();
        if min_expected < 5.0 {
            assert_eq!(a.test, AgreementTest::FisherExact, "{tag}");
            assert_p(a.p_value.unwrap(), want, &tag);
        } else {
            assert_eq!(a.test, AgreementTest::ZTest, "{tag}");
        }
    }
}

#[test]
fn bh_matches_statsmodels() {
    for c in &cases("fdr.json") {
        let p: Vec<f64> = c["p"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap_or(f64::NAN))
            .collect();
        let adjusted = bh_adjust(&p);
        for (i, (g, w)) in adjusted
            .iter()
            .zip(c["adjusted"].as_array().unwrap())
            .enumerate()
        {
            match w.as_f64() {
                Some(w) => assert_abs(*g, w, &format!("adjusted p[{i}] of {p:?}")),
                None => assert!(g.is_nan(), "p[{i}] should stay NaN"),
            }
        }
        for (q, key) in [(0.05, "reject_05"), (0.1, "reject_10")] {
            let want: Vec<bool> = c[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_bool().unwrap())
                .collect();
            assert_eq!(bh_reject(&p, q), want, "q = {q}, p = {p:?}");
        }
    }
}
