//! `report.html`: one self-contained page (inline CSS, inline SVG charts, no scripts, no fonts,
//! images or links outside the page), readable on screen and on paper.
//!
//! Order: title and one-line summary; the decisions to take this period; the overview charts
//! (readiness matrix, manipulation timeline, autonomy by tier); one evidence section per class;
//! data quality; provenance. Every model string goes through [`crate::text::html`]; anchors use
//! [`crate::files::safe_file_stem`], so no model string reaches an attribute unescaped.

use crate::charts::{Chart, Charts, Svg};
use crate::files::safe_file_stem;
use crate::model::{ClassSection, ReportModel};
use crate::table::{badge_html, Cell, Table};
use crate::text::{code_spans_html, count, html as esc, mode_words, rejects_notes, rows_read};

const CSS: &str = include_str!("assets/report.css");

/// Renders `report.html`; `charts` are the SVGs of [`Charts::plan`] for the same model.
pub fn render_html(model: &ReportModel, charts: &Charts<Svg>) -> String {
    let plan = Charts::plan(model);
    let mut out = String::with_capacity(64 * 1024);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str(&format!(
        "<title>{} — {}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n<main>\n",
        esc(&model.title),
        esc(&model.period_label)
    ));

    // Title and summary.
    out.push_str(&format!("<h1>{}</h1>\n", esc(&model.title)));
    out.push_str(&format!(
        "<p class=\"summary\">Period {}: {} decision{} to take across {} action class{}.</p>\n",
        esc(&model.period_label),
        count(model.decisions.len() as u64),
        if model.decisions.len() == 1 { "" } else { "s" },
        count(model.classes.len() as u64),
        if model.classes.len() == 1 { "" } else { "es" },
    ));

    // Decisions.
    out.push_str("<h2 id=\"decisions\">Decisions to take this period</h2>\n");
    if model.decisions.is_empty() {
        out.push_str("<p class=\"empty\">No decision is needed this period.</p>\n");
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
        out.push_str(&t.to_html());
    }

    // Overview charts.
    out.push_str("<h2 id=\"overview\">Overview</h2>\n");
    figure(&mut out, &plan.matrix, &charts.matrix);
    figure(&mut out, &plan.manipulation, &charts.manipulation);
    figure(&mut out, &plan.autonomy, &charts.autonomy);

    // Evidence per class.
    out.push_str("<h2 id=\"classes\">Evidence per action class</h2>\n");
    if model.classes.is_empty() {
        out.push_str("<p class=\"empty\">No action class was evaluated.</p>\n");
    }
    for ((class, planned), svgs) in model.classes.iter().zip(&plan.classes).zip(&charts.classes) {
        class_section(&mut out, class);
        for (chart, svg) in [
            (&planned.agreement, &svgs.agreement),
            (&planned.reliability, &svgs.reliability),
            (&planned.risk_coverage, &svgs.risk_coverage),
            (&planned.confidence, &svgs.confidence),
        ] {
            figure(&mut out, chart, svg);
        }
        out.push_str("</section>\n");
    }

    quality(&mut out, model);
    provenance(&mut out, model);
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

fn figure(out: &mut String, chart: &Chart, svg: &Svg) {
    let desc = esc(&chart.describe());
    // Label the SVG for screen readers; plotters' output starts with `<svg `.
    let labelled = svg.0.replacen(
        "<svg ",
        &format!("<svg role=\"img\" aria-label=\"{desc}\" "),
        1,
    );
    out.push_str(&format!(
        "<figure class=\"chart\">\n{labelled}<figcaption>{desc}</figcaption>\n</figure>\n"
    ));
}

fn class_section(out: &mut String, c: &ClassSection) {
    out.push_str(&format!(
        "<section class=\"class\" id=\"class-{}\">\n<h3><code>{}</code> {}</h3>\n",
        safe_file_stem(&c.action_class),
        esc(&c.action_class),
        badge_html(&c.recommendation)
    ));
    out.push_str(&format!(
        "<p class=\"meta\"><b>Owner:</b> {} · <b>Impact tier:</b> {} · <b>Now:</b> {}</p>\n",
        esc(c.owner.as_deref().unwrap_or("unowned")),
        esc(c.tier.as_deref().unwrap_or("none")),
        esc(&mode_words(&c.current_mode)),
    ));
    if let Some(gate) = &c.gate {
        out.push_str(&format!(
            "<p class=\"gate\"><b>Gate:</b> may run on its own only within: {}</p>\n",
            esc(gate)
        ));
    }
    if !c.reasons.is_empty() {
        out.push_str("<ul class=\"reasons\">\n");
        for r in &c.reasons {
            out.push_str(&format!("<li>{}</li>\n", esc(r)));
        }
        out.push_str("</ul>\n");
    }
    if let Some(hold) = &c.hold {
        out.push_str(&format!(
            "<p class=\"hold\"><b>Enough evidence expected:</b> {}</p>\n",
            esc(hold)
        ));
    }
    if !c.key_numbers.is_empty() {
        let mut t = Table::new(&["Key number", "Value"]);
        for (k, v) in &c.key_numbers {
            t.row(vec![Cell::Text(k.clone()), Cell::Num(v.clone())]);
        }
        out.push_str(&t.to_html());
    }
}

fn quality(out: &mut String, model: &ReportModel) {
    let q = &model.quality;
    out.push_str("<h2 id=\"quality\">Data quality</h2>\n");
    let mut t = Table::new(&["Table", "Rows read", "Rows rejected"]);
    for (table, read, rejected) in rows_read(q) {
        t.row(vec![
            Cell::Text(table.into()),
            Cell::Num(read),
            Cell::Num(rejected),
        ]);
    }
    out.push_str(&t.to_html());
    for (note, empty) in rejects_notes(q) {
        let class = if empty { " class=\"empty\"" } else { "" };
        out.push_str(&format!("<p{class}>{}</p>\n", code_spans_html(note)));
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
        out.push_str(&t.to_html());
    }
    out.push_str(&format!(
        "<p>{} decision{} timed out (nobody answered in time) and {} {} never reviewed; neither counts towards agreement.</p>\n",
        count(q.timeouts),
        if q.timeouts == 1 { "" } else { "s" },
        count(q.unreviewed),
        if q.unreviewed == 1 { "was" } else { "were" },
    ));
    if q.unowned_classes.is_empty() {
        out.push_str("<p>Every action class seen in the data has an owner in the policy.</p>\n");
    } else {
        out.push_str("<p>Action classes seen in the data but missing from the policy (reported, never promoted):</p>\n<ul>\n");
        for c in &q.unowned_classes {
            out.push_str(&format!("<li><code>{}</code></li>\n", esc(c)));
        }
        out.push_str("</ul>\n");
    }
}

fn provenance(out: &mut String, model: &ReportModel) {
    out.push_str("<h2 id=\"provenance\">Provenance</h2>\n<dl class=\"prov\">\n");
    for (k, v) in [
        ("Engine version", &model.engine_version),
        ("Run id", &model.run_id),
        ("Policy", &model.policy_path),
        ("Policy SHA-256", &model.policy_hash),
    ] {
        out.push_str(&format!("<dt>{k}</dt><dd><code>{}</code></dd>\n", esc(v)));
    }
    out.push_str("</dl>\n");
    if model.inputs.is_empty() {
        out.push_str("<p class=\"empty\">No input file recorded.</p>\n");
    } else {
        let mut t = Table::new(&["Table", "File", "SHA-256", "Rows"]);
        for f in &model.inputs {
            t.row(vec![
                Cell::Text(f.table.clone()),
                Cell::Code(f.path.clone()),
                Cell::Code(f.sha256.clone()),
                Cell::Num(count(f.rows)),
            ]);
        }
        out.push_str(&t.to_html());
    }
}
