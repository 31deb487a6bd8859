//! Terminal output of the commands: the `analyze` summary, the `drift` table and `explain`'s
//! evidence chain. Text only; the numbers come from the pipeline or from a run directory.

use std::fmt::Write as _;
use std::path::Path;

use readiness_report::text::clean;
use serde_json::Value;

use crate::pipeline::{load_policy, AnalyzeSummary, DriftWatch, RunError};

/// The lines `analyze` prints when it is done.
pub fn analyze_summary(s: &AnalyzeSummary) -> String {
    let recs: Vec<String> = s
        .recommendations
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    format!(
        "run {} over {} decisions ({} rows rejected): {}\nwrote {} (open report.html); ledger: {} new records",
        s.run_id,
        s.decisions_valid,
        s.rows_rejected,
        recs.join(", "),
        s.out.display(),
        s.ledger_added
    )
}

fn opt(x: Option<f64>, digits: usize) -> String {
    x.map(|v| format!("{v:.digits$}"))
        .unwrap_or_else(|| "-".into())
}

fn opt_pct(x: Option<f64>) -> String {
    x.map(|v| format!("{:.2}%", 100.0 * v))
        .unwrap_or_else(|| "-".into())
}

/// The drift watch as a table for platform owners.
pub fn drift_text(w: &DriftWatch) -> String {
    let mut out = String::new();
    let width = w
        .classes
        .iter()
        .map(|c| c.action_class.chars().count())
        .max()
        .unwrap_or(5)
        .clamp(5, 40);
    let _ = writeln!(out, "drift watch, period {}", w.period_label);
    let _ = writeln!(
        out,
        "{:<width$}  {:>8}  {:>6}  {:>9}  {:>9}  {:>9}  {:>8}  {:<8}  flag",
        "class", "n", "psi", "chi2 p*", "agree", "baseline", "p*", "version"
    );
    for c in &w.classes {
        let mut name = clean(&c.action_class);
        if name.chars().count() > width {
            name = name.chars().take(width - 1).collect::<String>() + "…";
        }
        let _ = writeln!(
            out,
            "{:<width$}  {:>8}  {:>6}  {:>9}  {:>9}  {:>9}  {:>8}  {:<8}  {}",
            name,
            c.n_current,
            opt(c.psi, 3),
            c.chi2_p_adjusted
                .map(|p| format!("{p:.1e}"))
                .unwrap_or_else(|| "-".into()),
            opt_pct(c.agreement_current),
            opt_pct(c.agreement_baseline),
            c.agreement_p_adjusted
                .map(|p| format!("{p:.1e}"))
                .unwrap_or_else(|| "-".into()),
            clean(c.model_version.as_deref().unwrap_or("-")),
            if c.flagged { "FLAGGED" } else { "" }
        );
    }
    let _ = writeln!(
        out,
        "p* = Benjamini-Hochberg adjusted p-value across all classes and periods"
    );
    if !w.unchecked.is_empty() {
        let names: Vec<String> = w.unchecked.iter().map(|c| clean(c)).collect();
        let _ = writeln!(
            out,
            "not checked (decisions in this period, but no baseline and no earlier model version to compare with): {}",
            names.join(", ")
        );
    }
    if w.flagged.is_empty() {
        let _ = writeln!(out, "nothing flagged");
    } else {
        let _ = writeln!(out, "{} signal(s) flagged:", w.flagged.len());
        for f in &w.flagged {
            let _ = writeln!(
                out,
                "  {} {}: {}",
                clean(&f.action_class),
                f.signal,
                clean(&f.detail)
            );
        }
    }
    out
}

/// The drift watch as JSON.
pub fn drift_json(w: &DriftWatch) -> Result<String, RunError> {
    serde_json::to_string_pretty(w).map_err(|e| RunError::Other(e.to_string()))
}

fn read_json(path: &Path) -> Result<Value, RunError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        RunError::Other(format!(
            "cannot read {}: {e}; run `readiness analyze` first or give --run DIR",
            path.display()
        ))
    })?;
    serde_json::from_str(&text)
        .map_err(|e| RunError::Other(format!("{} is not valid JSON: {e}", path.display())))
}

/// `readiness explain CLASS`: the evidence chain of one class from a run directory.
pub fn explain(run: &Path, class: &str) -> Result<String, RunError> {
    let manifest = read_json(&run.join("manifest.json"))?;
    let recs = read_json(&run.join("recommendations.json"))?;
    let list = recs.as_array().cloned().unwrap_or_default();
    let Some(rec) = list
        .iter()
        .find(|r| r.get("action_class").and_then(Value::as_str) == Some(class))
    else {
        let known: Vec<&str> = list
            .iter()
            .filter_map(|r| r.get("action_class").and_then(Value::as_str))
            .collect();
        return Err(RunError::Other(format!(
            "class '{}' is not in {}; classes in this run: {}",
            clean(class),
            run.display(),
            known.join(", ")
        )));
    };
    let s = |v: &Value, k: &str| -> String {
        match v.get(k) {
            Some(Value::String(x)) => clean(x),
            Some(Value::Null) | None => "-".into(),
            Some(x) => x.to_string(),
        }
    };
    let mut out = String::new();
    let _ = writeln!(out, "{}: {}", clean(class), s(rec, "recommendation"));
    let _ = writeln!(
        out,
        "owner {}, tier {}, mode {}, ceiling {}",
        s(rec, "owner"),
        s(rec, "tier"),
        s(rec, "current_mode"),
        s(rec, "ceiling")
    );
    let _ = writeln!(
        out,
        "\nrun {} (engine {})",
        s(&manifest, "run_id"),
        s(&manifest, "engine_version")
    );
    let _ = writeln!(out, "inputs:");
    for f in manifest
        .get("inputs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let _ = writeln!(
            out,
            "  {} {} rows {} sha256 {}",
            s(f, "table"),
            s(f, "path"),
            s(f, "rows"),
            s(f, "sha256")
        );
    }
    let policy = manifest.get("policy").cloned().unwrap_or(Value::Null);
    let policy_path = s(&policy, "path");
    let policy_sha = s(&policy, "sha256");
    let _ = writeln!(out, "policy {policy_path} sha256 {policy_sha}");
    match load_policy(Path::new(&policy_path)) {
        Ok(p) if p.sha256 == policy_sha => match p.policy.effective(class) {
            Some(eff) => {
                let _ = writeln!(out, "effective settings (value, source):");
                let t = serde_json::to_value(&eff.thresholds).unwrap_or(Value::Null);
                if let Some(map) = t.as_object() {
                    for (k, v) in map {
                        let _ = writeln!(out, "  {k} = {v}  ({})", eff.source_of(k));
                    }
                }
            }
            None => {
                let _ = writeln!(out, "the policy does not name this class (unowned)");
            }
        },
        Ok(_) => {
            let _ = writeln!(
                out,
                "(the policy file has changed since this run; its effective settings are not shown)"
            );
        }
        Err(_) => {
            let _ = writeln!(out, "(the policy file is no longer readable)");
        }
    }
    // The evidence window as periods (the JSON holds their first days).
    let granularity = manifest
        .get("parameters")
        .and_then(|p| p.get("period"))
        .and_then(Value::as_str)
        .and_then(readiness_metrics::Granularity::parse);
    let window: Vec<&str> = rec
        .get("evidence")
        .and_then(|e| e.get("evidence_periods"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if let (Some(g), Some(first), Some(last)) = (granularity, window.first(), window.last()) {
        let _ = writeln!(
            out,
            "\nevidence window: {} ({} periods; evidence_periods below lists their first days)",
            clean(&crate::present::date_range(g, first, last)),
            g.as_str()
        );
    }
    let _ = writeln!(out, "\nevidence:");
    if let Some(ev) = rec.get("evidence").and_then(Value::as_object) {
        for (k, v) in ev {
            if k == "action_class" {
                continue;
            }
            let shown = match v {
                Value::String(x) => clean(x),
                other => other.to_string(),
            };
            let _ = writeln!(out, "  {k}: {shown}");
        }
    }
    let _ = writeln!(out, "\nrules, in evaluation order:");
    for r in rec
        .get("rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let _ = writeln!(
            out,
            "  [{}] {}: {}",
            s(r, "outcome"),
            s(r, "id"),
            s(r, "text")
        );
    }
    let _ = writeln!(out, "\nreasons (binding constraint first):");
    for r in rec
        .get("reasons")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let _ = writeln!(out, "  - {}", r.as_str().map(clean).unwrap_or_default());
    }
    if let Some(h) = rec.get("hold").filter(|h| !h.is_null()) {
        let _ = writeln!(out, "\nhold: {}", s(h, "text"));
    }
    Ok(out)
}
