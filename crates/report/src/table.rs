//! One table model, two renderings: HTML and Markdown tables share their rows and escaping.
//!
//! Renderers build a [`Table`] of typed [`Cell`]s; the format decides how a cell looks (a badge
//! is a coloured `<span>` in HTML and bold text in Markdown) and every cell is escaped by the
//! format's one escaping function ([`crate::text::html`], [`crate::text::md_cell`]).

use crate::text::{html, md_cell};

/// One table cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// Plain text.
    Text(String),
    /// A number or other right-aligned value, pre-formatted.
    Num(String),
    /// An identifier (class name, hash, path), shown in a monospace font in HTML.
    Code(String),
    /// A recommendation (`promote`, `hold`...), shown as a badge.
    Recommendation(String),
}

/// A table: a header row and data rows of cells.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    /// Column headings.
    pub header: Vec<String>,
    /// Data rows; short rows are padded with empty cells.
    pub rows: Vec<Vec<Cell>>,
}

/// The words shown for a recommendation, and the CSS class of its badge. Unknown values are
/// shown as given (escaped by the caller) with a neutral badge.
pub fn recommendation_label(rec: &str) -> (String, &'static str) {
    match rec {
        "promote" => ("Promote".into(), "rec-promote"),
        "promote_gated" => ("Promote within a gate".into(), "rec-gated"),
        "hold" => ("Hold".into(), "rec-hold"),
        "demote" => ("Demote".into(), "rec-demote"),
        "never" => ("Never autonomous".into(), "rec-never"),
        other => (other.to_string(), "rec-other"),
    }
}

/// An HTML badge for a recommendation.
pub fn badge_html(rec: &str) -> String {
    let (text, class) = recommendation_label(rec);
    format!("<span class=\"badge {class}\">{}</span>", html(&text))
}

impl Table {
    /// A table with these column headings and no rows.
    pub fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row.
    pub fn row(&mut self, cells: Vec<Cell>) -> &mut Self {
        self.rows.push(cells);
        self
    }

    fn width(&self) -> usize {
        self.rows
            .iter()
            .map(Vec::len)
            .chain([self.header.len()])
            .max()
            .unwrap_or(0)
    }

    /// The table as an HTML `<table>`, every cell escaped.
    pub fn to_html(&self) -> String {
        let mut out = String::from("<table>\n<thead><tr>");
        for h in &self.header {
            out.push_str(&format!("<th>{}</th>", html(h)));
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for row in &self.rows {
            out.push_str("<tr>");
            for i in 0..self.width() {
                match row.get(i) {
                    Some(Cell::Text(t)) => out.push_str(&format!("<td>{}</td>", html(t))),
                    Some(Cell::Num(t)) => {
                        out.push_str(&format!("<td class=\"num\">{}</td>", html(t)))
                    }
                    Some(Cell::Code(t)) => {
                        out.push_str(&format!("<td><code>{}</code></td>", html(t)))
                    }
                    Some(Cell::Recommendation(r)) => {
                        out.push_str(&format!("<td>{}</td>", badge_html(r)))
                    }
                    None => out.push_str("<td></td>"),
                }
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table>\n");
        out
    }

    /// The table as a GitHub-flavoured Markdown table, every cell escaped (see
    /// [`crate::text::md_cell`] for the formula neutralisation).
    pub fn to_markdown(&self) -> String {
        let width = self.width();
        let mut out = String::new();
        let line = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
        let mut header: Vec<String> = self.header.iter().map(|h| md_cell(h)).collect();
        header.resize(width, String::new());
        out.push_str(&line(header));
        let rule: Vec<String> = (0..width)
            .map(|i| {
                let numeric = self
                    .rows
                    .iter()
                    .any(|r| matches!(r.get(i), Some(Cell::Num(_))));
                if numeric { "---:" } else { "---" }.to_string()
            })
            .collect();
        out.push_str(&line(rule));
        for row in &self.rows {
            let cells = (0..width)
                .map(|i| match row.get(i) {
                    Some(Cell::Text(t) | Cell::Num(t) | Cell::Code(t)) => md_cell(t),
                    Some(Cell::Recommendation(r)) => {
                        let label = md_cell(&recommendation_label(r).0);
                        if label.is_empty() {
                            label
                        } else {
                            format!("**{label}**")
                        }
                    }
                    None => String::new(),
                })
                .collect();
            out.push_str(&line(cells));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_both_formats() {
        let mut t = Table::new(&["class", "n"]);
        t.row(vec![Cell::Code("a|b".into()), Cell::Num("12".into())]);
        t.row(vec![Cell::Recommendation("promote_gated".into())]);
        assert_eq!(
            t.to_markdown(),
            "| class | n |\n| --- | ---: |\n| a\\|b | 12 |\n| **Promote within a gate** |  |\n"
        );
        let h = t.to_html();
        assert!(h.contains("<td><code>a|b</code></td><td class=\"num\">12</td>"));
        assert!(h.contains("<span class=\"badge rec-gated\">Promote within a gate</span>"));
    }

    #[test]
    fn unknown_recommendations_are_escaped_with_a_neutral_badge() {
        assert_eq!(
            badge_html("<x>"),
            "<span class=\"badge rec-other\">&lt;x&gt;</span>"
        );
    }
}
