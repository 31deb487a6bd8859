//! Evidence and gate functions against reference values computed independently in Python
//! (scipy / mpmath) by `tests/fixtures/make_evidence_fixtures.py`.

use readiness_metrics::evidence::{ln_e_value, BetaPrior};
use readiness_metrics::gates::{gate_scopes, GateConfig};
use readiness_metrics::period::Period;
use readiness_metrics::special::binom_cdf;
use readiness_metrics::suffstats::{Cell, CellKey, Criticality, FineBin};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn u(v: &Value) -> u64 {
    v.as_u64().expect("integer")
}

fn f(v: &Value) -> f64 {
    v.as_f64().expect("number")
}

#[test]
fn ln_e_values_match_numerical_integration() {
    let cases = fixture("evidence_e_values.json");
    let cases = cases.as_array().unwrap();
    assert!(cases.len() > 400);
    let mut worst = 0.0_f64;
    for c in cases {
        let (k, n, p0) = (u(&c["k"]), u(&c["n"]), f(&c["p0"]));
        let prior = BetaPrior::new(f(&c["a"]), f(&c["b"])).unwrap();
        let want = f(&c["ln_e"]);
        let got = ln_e_value(k, n, p0, prior).unwrap();
        // Relative to 1e-8, absolute near zero (ln E crosses 0 where the evidence turns).
        let err = (got - want).abs() / want.abs().max(1.0);
        worst = worst.max(err);
        assert!(
            err <= 1e-8,
            "k={k} n={n} p0={p0} prior={prior:?}: {got} vs {want}"
        );
    }
    eprintln!(
        "ln E: worst relative error {worst:.2e} over {} cases",
        cases.len()
    );
}

#[test]
fn binomial_cdf_matches_scipy() {
    let cases = fixture("evidence_binom_cdf.json");
    for c in cases.as_array().unwrap() {
        let (d, n, eps) = (u(&c["d"]), u(&c["n"]), f(&c["eps"]));
        let want = f(&c["cdf"]);
        let got = binom_cdf(d, n, eps);
        assert!(
            (got - want).abs() <= 1e-9 * want,
            "d={d} n={n} eps={eps}: {got} vs {want}"
        );
    }
}

#[test]
fn gate_example_matches_python() {
    let ex = fixture("evidence_gate_example.json");
    let keys_cells: Vec<(CellKey, Cell)> = ex["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let key = CellKey {
                action_class: "isolate_host".into(),
                period: Period { start: 19_800 },
                model_version: "v1".into(),
                criticality: Criticality::parse(c["criticality"].as_str().unwrap()).unwrap(),
                privileged: c["privileged"].as_bool().unwrap(),
            };
            let mut cell = Cell::default();
            for (j, b) in c["fine"].as_array().unwrap().iter().enumerate() {
                cell.fine[j] = FineBin {
                    n: u(&b[0]),
                    reviewed: u(&b[1]),
                    approve: u(&b[2]),
                };
            }
            (key, cell)
        })
        .collect();
    let cells: Vec<(&CellKey, &Cell)> = keys_cells.iter().map(|(k, c)| (k, c)).collect();

    for cfg in ex["configs"].as_array().unwrap() {
        let config = GateConfig::new(f(&cfg["target"]), f(&cfg["level"]), u(&cfg["min_reviewed"]))
            .unwrap()
            .with_bonferroni_scopes(cfg["bonferroni_scopes"].as_bool().unwrap());
        let got = gate_scopes(&cells, &config).unwrap();
        assert_eq!(got.n_decisions_total, u(&ex["total_decisions"]));
        let want_scopes = cfg["scopes"].as_array().unwrap();
        assert_eq!(got.scopes.len(), want_scopes.len());
        for (g, w) in got.scopes.iter().zip(want_scopes) {
            let label = format!(
                "{config:?} {:?}/{}",
                g.max_criticality, g.privileged_allowed
            );
            assert_eq!(
                g.max_criticality.as_str(),
                w["max_criticality"].as_str().unwrap()
            );
            assert_eq!(
                g.privileged_allowed,
                w["privileged_allowed"].as_bool().unwrap()
            );
            let gate = &w["gate"];
            if gate.is_null() {
                assert_eq!(g.threshold, None, "{label}");
                continue;
            }
            let bin = u(&gate["bin"]);
            assert_eq!(g.threshold, Some(bin as f64 / 100.0), "{label}");
            assert_eq!(g.n_decisions, u(&gate["n_decisions"]), "{label}");
            assert_eq!(g.n_reviewed, u(&gate["n_reviewed"]), "{label}");
            assert_eq!(g.n_disagree, u(&gate["n_disagree"]), "{label}");
            let (p, wp) = (g.p_value.unwrap(), f(&gate["p_value"]));
            assert!((p - wp).abs() <= 1e-9 * wp, "{label}: {p} vs {wp}");
        }
        let best = got.best();
        match &cfg["best"] {
            Value::Null => assert!(best.is_none()),
            w => {
                let b = best.expect("a certified scope");
                assert_eq!(
                    b.max_criticality.as_str(),
                    w["max_criticality"].as_str().unwrap()
                );
                assert_eq!(
                    b.privileged_allowed,
                    w["privileged_allowed"].as_bool().unwrap()
                );
                assert_eq!(b.threshold, Some(u(&w["bin"]) as f64 / 100.0));
            }
        }
    }
}
