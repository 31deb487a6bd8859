//! The quarterly board report: one printed page (A4 or US Letter) in plain language.
//!
//! It answers four questions a board asks, in this order: how much of the AI's work runs on its
//! own and how that changed; how each kind of action is run, by impact tier; what went wrong
//! (reversed autonomous actions, suspected manipulation); what it saves, and the top risks.
//! Jargon is avoided; the two oversight modes are named in words, with the usual abbreviation
//! explained once. Lists are cut to [`MAX_ITEMS`] entries (with "and N more") so the page stays
//! one page; the lead orders them most important first.
//!
//! Every model string goes through [`crate::text::html`] or [`crate::text::md`].

use crate::charts::{Chart, Svg};
use crate::model::BoardModel;
use crate::table::{Cell, Table};
use crate::text::{count, html as esc, md, pct};

/// Most list entries shown (risks, manipulation signals) on the one page.
pub const MAX_ITEMS: usize = 5;

const CSS: &str = include_str!("assets/board.css");

/// The board's chart: autonomy share over time by tier.
pub fn board_chart(board: &BoardModel) -> Chart<'_> {
    Chart::Autonomy(&board.autonomy)
}

/// "31% of the AI's actions ran without prior approval in 2025-Q4, up from 24% in 2025-Q3."
/// The comparison is made on the whole percentages shown, so the words match the numbers.
pub fn headline(board: &BoardModel) -> String {
    let now = pct(board.autonomy_share, 0);
    let mut s = format!(
        "{now} of the AI's actions ran without prior approval in {}",
        board.quarter
    );
    if let Some(prev) = board.autonomy_share_previous.filter(|p| p.is_finite()) {
        let when = board
            .previous_quarter
            .as_deref()
            .map(|q| format!(" in {q}"))
            .unwrap_or_else(|| " the quarter before".to_string());
        let (a, b) = (
            (board.autonomy_share * 100.0).round(),
            (prev * 100.0).round(),
        );
        let was = pct(prev, 0);
        s.push_str(&if a > b {
            format!(", up from {was}{when}")
        } else if a < b {
            format!(", down from {was}{when}")
        } else {
            format!(", the same as{when}")
        });
    }
    s.push('.');
    s
}

fn reversed_sentence(board: &BoardModel) -> String {
    if board.autonomous_actions == 0 {
        "The AI took no action on its own this quarter, so none had to be reversed.".to_string()
    } else {
        format!(
            "Analysts reversed {} of the {} actions the AI took on its own this quarter.",
            count(board.reversed_actions),
            count(board.autonomous_actions)
        )
    }
}

fn hours_sentence(board: &BoardModel) -> String {
    let hours = if board.hours_saved.is_finite() {
        count(board.hours_saved.max(0.0).round() as u64)
    } else {
        "an unknown number of".to_string()
    };
    format!(
        "Actions that ran without waiting for approval saved an estimated {hours} hours of analyst review time this quarter."
    )
}

const MODES_NOTE: &str = "\"Needs approval first\": an analyst approves each action before it runs (called human-in-the-loop). \"Runs on its own\": the action runs at once and an analyst reviews it afterwards (human-on-the-loop).";
const MANIPULATION_NOTE: &str = "Suspected manipulation means a pattern suggesting someone fed the AI alerts designed to make it act against our own systems.";

fn capped(items: &[String]) -> (Vec<&String>, usize) {
    let shown: Vec<&String> = items.iter().take(MAX_ITEMS).collect();
    (shown, items.len().saturating_sub(MAX_ITEMS))
}

fn modes_table(board: &BoardModel) -> Table {
    let mut t = Table::new(&["Impact tier", "Needs approval first", "Runs on its own"]);
    for (tier, hitl, hotl) in &board.classes_by_mode {
        t.row(vec![
            Cell::Text(tier.clone()),
            Cell::Num(count(*hitl)),
            Cell::Num(count(*hotl)),
        ]);
    }
    t
}

/// Renders the board page as self-contained HTML; `chart` is [`board_chart`] as SVG.
pub fn render_board_html(board: &BoardModel, chart: &Svg) -> String {
    let mut out = String::with_capacity(32 * 1024);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str(&format!(
        "<title>AI agent autonomy: {}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n<main>\n",
        esc(&board.quarter)
    ));
    out.push_str(&format!(
        "<h1>AI agent autonomy: {} board report</h1>\n<p class=\"headline\">{}</p>\n",
        esc(&board.quarter),
        esc(&headline(board))
    ));
    out.push_str(
        "<p class=\"sub\">The rest waited for an analyst to approve them before they ran.</p>\n",
    );
    let desc = esc(&board_chart(board).describe());
    out.push_str(&format!(
        "<figure>{}</figure>\n",
        chart.0.replacen(
            "<svg ",
            &format!("<svg role=\"img\" aria-label=\"{desc}\" "),
            1
        )
    ));
    out.push_str("<div class=\"cols\">\n<section>\n<h2>How each kind of action is run</h2>\n");
    if board.classes_by_mode.is_empty() {
        out.push_str("<p>No kind of action was evaluated this quarter.</p>\n");
    } else {
        out.push_str("<p class=\"small\">Number of kinds of action, by how much harm a wrong action could do.</p>\n");
        out.push_str(&modes_table(board).to_html());
        out.push_str(&format!("<p class=\"small\">{}</p>\n", esc(MODES_NOTE)));
    }
    out.push_str("</section>\n<section>\n<h2>What went wrong</h2>\n");
    out.push_str(&format!("<p>{}</p>\n", esc(&reversed_sentence(board))));
    if board.manipulation_signals.is_empty() {
        out.push_str("<p>No suspected manipulation was detected.</p>\n");
    } else {
        out.push_str("<p>Suspected manipulation:</p>\n<ul>\n");
        let (shown, more) = capped(&board.manipulation_signals);
        for s in shown {
            out.push_str(&format!("<li>{}</li>\n", esc(s)));
        }
        if more > 0 {
            out.push_str(&format!("<li>and {more} more</li>\n"));
        }
        out.push_str("</ul>\n");
    }
    out.push_str(&format!(
        "<p class=\"small\">{}</p>\n",
        esc(MANIPULATION_NOTE)
    ));
    out.push_str("</section>\n</div>\n");
    out.push_str(&format!(
        "<h2>What it saves</h2>\n<p>{}</p>\n",
        esc(&hours_sentence(board))
    ));
    out.push_str("<h2>Top risks</h2>\n");
    if let Some(note) = risks_as_of(board) {
        out.push_str(&format!("<p class=\"small\">{}</p>\n", esc(&note)));
    }
    if board.top_risks.is_empty() {
        out.push_str("<p>No significant risk was identified this quarter.</p>\n");
    } else {
        out.push_str("<ol>\n");
        let (shown, more) = capped(&board.top_risks);
        for r in shown {
            out.push_str(&format!("<li>{}</li>\n", esc(r)));
        }
        if more > 0 {
            out.push_str(&format!(
                "<li>and {more} more in the monthly reports</li>\n"
            ));
        }
        out.push_str("</ol>\n");
    }
    out.push_str(&format!(
        "<footer>Produced by readiness {}, run {}. Every figure comes from the monthly readiness runs.</footer>\n",
        esc(&board.engine_version),
        esc(&board.run_id)
    ));
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

/// Renders the board page as Markdown; `chart_path` is the relative PNG path of the chart.
pub fn render_board_markdown(board: &BoardModel, chart_path: &str) -> String {
    let mut out = String::with_capacity(8 * 1024);
    out.push_str(&format!(
        "# AI agent autonomy: {} board report\n\n**{}** The rest waited for an analyst to approve them before they ran.\n\n",
        md(&board.quarter),
        md(&headline(board))
    ));
    let target: String = chart_path
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    out.push_str(&format!(
        "![{}]({target})\n\n",
        md(&board_chart(board).describe())
    ));
    out.push_str("## How each kind of action is run\n\n");
    if board.classes_by_mode.is_empty() {
        out.push_str("No kind of action was evaluated this quarter.\n\n");
    } else {
        out.push_str("Number of kinds of action, by how much harm a wrong action could do.\n\n");
        out.push_str(&modes_table(board).to_markdown());
        out.push_str(&format!("\n{}\n\n", md(MODES_NOTE)));
    }
    out.push_str(&format!(
        "## What went wrong\n\n{}\n\n",
        md(&reversed_sentence(board))
    ));
    if board.manipulation_signals.is_empty() {
        out.push_str("No suspected manipulation was detected.\n\n");
    } else {
        out.push_str("Suspected manipulation:\n\n");
        let (shown, more) = capped(&board.manipulation_signals);
        for s in shown {
            out.push_str(&format!("- {}\n", md(s)));
        }
        if more > 0 {
            out.push_str(&format!("- and {more} more\n"));
        }
        out.push('\n');
    }
    out.push_str(&format!("{}\n\n", md(MANIPULATION_NOTE)));
    out.push_str(&format!(
        "## What it saves\n\n{}\n\n",
        md(&hours_sentence(board))
    ));
    out.push_str("## Top risks\n\n");
    if let Some(note) = risks_as_of(board) {
        out.push_str(&format!("{}\n\n", md(&note)));
    }
    if board.top_risks.is_empty() {
        out.push_str("No significant risk was identified this quarter.\n\n");
    } else {
        let (shown, more) = capped(&board.top_risks);
        for (i, r) in shown.iter().enumerate() {
            out.push_str(&format!("{}. {}\n", i + 1, md(r)));
        }
        if more > 0 {
            out.push_str(&format!(
                "{}. and {more} more in the monthly reports\n",
                MAX_ITEMS + 1
            ));
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "Produced by readiness {}, run {}. Every figure comes from the monthly readiness runs.\n",
        md(&board.engine_version),
        md(&board.run_id)
    ));
    out
}

/// Whose risks the section shows, when not the quarter's.
fn risks_as_of(board: &BoardModel) -> Option<String> {
    board.risks_as_of.as_ref().map(|p| {
        format!(
            "As of {p}, the latest period in the data: these are today's risks, not those at the end of {}.",
            board.quarter
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board(now: f64, prev: Option<f64>) -> BoardModel {
        BoardModel {
            quarter: "2025-Q4".into(),
            previous_quarter: prev.map(|_| "2025-Q3".into()),
            autonomy_share: now,
            autonomy_share_previous: prev,
            ..Default::default()
        }
    }

    #[test]
    fn headline_says_up_down_same() {
        assert_eq!(
            headline(&board(0.31, Some(0.24))),
            "31% of the AI's actions ran without prior approval in 2025-Q4, up from 24% in 2025-Q3."
        );
        assert!(headline(&board(0.2, Some(0.24))).contains("down from 24%"));
        // 31.2% and 30.8% both show as 31%: the words follow the shown numbers.
        assert!(headline(&board(0.312, Some(0.308))).ends_with("the same as in 2025-Q3."));
        assert_eq!(
            headline(&board(0.31, None)),
            "31% of the AI's actions ran without prior approval in 2025-Q4."
        );
    }
}
