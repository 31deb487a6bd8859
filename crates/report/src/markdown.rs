//! `report.md`: the content of `report.html` for wikis and tickets, with PNG chart links.
//!
//! Running text goes through [`crate::text::md`], table cells through [`crate::text::md_cell`]
//! (which also neutralises spreadsheet formulas: a cell starting with `=`, `+`, `-` or `@` gets a
//! leading `'`). Chart links are relative paths such as `charts/agreement_isolate_host.png`;
//! characters outside `[A-Za-z0-9._/-]` are percent-encoded so a path cannot break the link.

use crate::charts::{Chart, Charts};
use crate::model::{ClassSection, ReportModel};
use crate::table::{recommendation_label, Cell, Table};
use crate::text::{count, md, mode_words, rejects_notes, rows_read};

/// Renders `report.md`; `chart_paths` are the relative PNG paths of [`Charts::plan`] for the same
/// model (e.g. `Charts::file_stems(model).map(|s| format!("charts/{s}.png"))`).
pub fn render_markdown(model: &ReportModel, chart_paths: &Charts<String>) -> String {
    let plan = Charts::plan(model);
    let mut out = String::with_capacity(16 * 1024);
    out.push_str(&format!("# {}\n\n", md(&model.title)));
    out.push_str(&format!(
        "Period {}: {} decision{} to take across {} action class{}.\n\n",
        md(&model.period_label),
        count(model.decisions.len() as u64),
        if model.decisions.len() == 1 { "" } else { "s" },
        count(model.classes.len() as u64),
        if model.classes.len() == 1 { "" } else { "es" },
    ));

    out.push_str("## Decisions to take this period\n\n");
    if model.decisions.is_empty() {
        out.push_str("No decision is needed this period.\n\n");
    } else {
        let mut t = Table::new(&["Action class", "Owner", "Recommendation", "Why"]);
        for d in &model.decisions {
            t.row(vec![
                Cell::Code(d.action_class.clone()),
                Cell::Text(d.owner.clone().unwrap_or_else(|| "unowned".into())),
                Cell::Recommendation(d.recommendation.clone()),
                Cell::Text(d.headline.clone()),
            ]);
        }
        out.push_str(&t.to_markdown());
        out.push('\n');
    }

    out.push_str("## Overview\n\n");
    image(&mut out, &plan.matrix, &chart_paths.matrix);
    image(&mut out, &plan.manipulation, &chart_paths.manipulation);
    image(&mut out, &plan.autonomy, &chart_paths.autonomy);

    out.push_str("## Evidence per action class\n\n");
    if model.classes.is_empty() {
        out.push_str("No action class was evaluated.\n\n");
    }
    for ((class, planned), paths) in model
        .classes
        .iter()
        .zip(&plan.classes)
        .zip(&chart_paths.classes)
    {
        class_section(&mut out, class);
        image(&mut out, &planned.agreement, &paths.agreement);
        image(&mut out, &planned.reliability, &paths.reliability);
        image(&mut out, &planned.risk_coverage, &paths.risk_coverage);
        image(&mut out, &planned.confidence, &paths.confidence);
    }

    quality(&mut out, model);
    provenance(&mut out, model);
    out
}

/// Percent-encodes a relative path for a Markdown link target.
fn link_target(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn image(out: &mut String, chart: &Chart, path: &str) {
    out.push_str(&format!(
        "![{}]({})\n\n",
        md(&chart.describe()),
        link_target(path)
    ));
}

fn class_section(out: &mut String, c: &ClassSection) {
    out.push_str(&format!(
        "### {}: {}\n\n",
        md(&c.action_class),
        md(&recommendation_label(&c.recommendation).0)
    ));
    out.push_str(&format!(
        "**Owner:** {} · **Impact tier:** {} · **Now:** {}\n\n",
        md(c.owner.as_deref().unwrap_or("unowned")),
        md(c.tier.as_deref().unwrap_or("none")),
        md(&mode_words(&c.current_mode)),
    ));
    if let Some(gate) = &c.gate {
        out.push_str(&format!(
            "**Gate:** may run on its own only within: {}\n\n",
            md(gate)
        ));
    }
    for r in &c.reasons {
        out.push_str(&format!("- {}\n", md(r)));
    }
    if !c.reasons.is_empty() {
        out.push('\n');
    }
    if let Some(hold) = &c.hold {
        out.push_str(&format!("**Enough evidence expected:** {}\n\n", md(hold)));
    }
    if !c.key_numbers.is_empty() {
        let mut t = Table::new(&["Key number", "Value"]);
        for (k, v) in &c.key_numbers {
            t.row(vec![Cell::Text(k.clone()), Cell::Num(v.clone())]);
        }
        out.push_str(&t.to_markdown());
        out.push('\n');
    }
}

fn quality(out: &mut String, model: &ReportModel) {
    let q = &model.quality;
    out.push_str("## Data quality\n\n");
    let mut t = Table::new(&["Table", "Rows read", "Rows rejected"]);
    for (table, read, rejected) in rows_read(q) {
        t.row(vec![
            Cell::Text(table.into()),
            Cell::Num(read),
            Cell::Num(rejected),
        ]);
    }
    out.push_str(&t.to_markdown());
    out.push('\n');
    for (note, _) in rejects_notes(q) {
        out.push_str(note);
        out.push_str("\n\n");
    }
    if !q.rejects_by_reason.is_empty() {
        let mut t = Table::new(&["Table", "Reason", "Rows"]);
        for (table, reason, n) in &q.rejects_by_reason {
            t.row(vec![
                Cell::Text(table.clone()),
                Cell::Text(reason.clone()),
                Cell::Num(count(*n)),
            ]);
        }
        out.push_str(&t.to_markdown());
        out.push('\n');
    }
    out.push_str(&format!(
        "{} decision{} timed out (nobody answered in time) and {} {} never reviewed; neither counts towards agreement.\n\n",
        count(q.timeouts),
        if q.timeouts == 1 { "" } else { "s" },
        count(q.unreviewed),
        if q.unreviewed == 1 { "was" } else { "were" },
    ));
    if q.unowned_classes.is_empty() {
        out.push_str("Every action class seen in the data has an owner in the policy.\n\n");
    } else {
        out.push_str("Action classes seen in the data but missing from the policy (reported, never promoted):\n\n");
        for c in &q.unowned_classes {
            out.push_str(&format!("- {}\n", md(c)));
        }
        out.push('\n');
    }
}

fn provenance(out: &mut String, model: &ReportModel) {
    out.push_str("## Provenance\n\n");
    let mut t = Table::new(&["Item", "Value"]);
    for (k, v) in [
        ("Engine version", &model.engine_version),
        ("Run id", &model.run_id),
        ("Policy", &model.policy_path),
        ("Policy SHA-256", &model.policy_hash),
    ] {
        t.row(vec![Cell::Text(k.into()), Cell::Code(v.clone())]);
    }
    out.push_str(&t.to_markdown());
    out.push('\n');
    if !model.inputs.is_empty() {
        let mut t = Table::new(&["Table", "File", "SHA-256", "Rows"]);
        for f in &model.inputs {
            t.row(vec![
                Cell::Text(f.table.clone()),
                Cell::Code(f.path.clone()),
                Cell::Code(f.sha256.clone()),
                Cell::Num(count(f.rows)),
            ]);
        }
        out.push_str(&t.to_markdown());
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_targets_are_encoded() {
        assert_eq!(link_target("charts/a_b-1.png"), "charts/a_b-1.png");
        assert_eq!(link_target("charts/a b).png"), "charts/a%20b%29.png");
    }
}
