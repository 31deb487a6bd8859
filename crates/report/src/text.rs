//! Text handling shared by every renderer: neutralising hostile strings and formatting numbers.
//!
//! Every string in the model may come from user data (class names, owners, file paths, reasons),
//! so each output format has one escaping function and every model string goes through it:
//!
//! - [`html`]: `& < > " '` become entities, so text cannot open a tag or leave an attribute.
//! - [`md`], [`md_cell`]: Markdown-active characters are backslash-escaped (CommonMark allows a
//!   backslash before any ASCII punctuation) so text cannot start a link, an image, emphasis, raw
//!   HTML or a table column; a leading list or heading marker is escaped too. [`md_cell`]
//!   additionally neutralises spreadsheet formulas (see there).
//! - [`label`]: chart text is cleaned and truncated with an ellipsis; the SVG backend of plotters
//!   escapes `& < > " '` itself (checked in `charts` tests), the PNG backend draws pixels.
//!
//! All three first [`clean`] the string: control characters (newlines, tabs, escapes) become
//! spaces and invisible bidirectional/zero-width format characters are dropped, so a name cannot
//! break a table row or visually reorder surrounding text.

/// Control characters become spaces; zero-width and bidirectional-override characters are dropped.
pub fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| {
            !matches!(c,
                '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
        })
        .map(|c| {
            if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// HTML-escapes `s` for element content and quoted attribute values.
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in clean(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Markdown-escapes `s` for running text, list items and headings (one line).
pub fn md(s: &str) -> String {
    let cleaned = clean(s);
    let trimmed = cleaned.trim();
    let mut out = String::with_capacity(trimmed.len() + 8);
    for c in trimmed.chars() {
        // Angle brackets become entities, not backslash escapes: every Markdown renderer shows
        // `&lt;` as text, while some pass a backslash-escaped tag through as HTML.
        match c {
            '<' => {
                out.push_str("&lt;");
                continue;
            }
            '>' => {
                out.push_str("&gt;");
                continue;
            }
            _ => {}
        }
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '|' | '!' | '~' | '&' | '{' | '}'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    // A leading "-", "+", "=" or "1. " / "1) " would start a list or a setext heading.
    if out.starts_with(['-', '+', '=']) {
        out.insert(0, '\\');
    } else {
        let digits = out.chars().take_while(char::is_ascii_digit).count();
        let rest = &out[digits..];
        // Only "1. " or "1)" at the end starts a list; "0.4" and "99.3%" do not.
        let marker =
            rest.starts_with(['.', ')']) && (rest.len() == 1 || rest[1..].starts_with(' '));
        if digits > 0 && marker {
            out.insert(digits, '\\');
        }
    }
    out
}

/// Markdown-escapes `s` for a table cell; a cell whose text starts with `=`, `+`, `-` or `@` gets a
/// leading `'`.
///
/// The `'` is spreadsheet formula neutralisation (the OWASP "CSV injection" advice): tables from
/// wikis and tickets get pasted into spreadsheets, where a cell starting with one of those
/// characters is evaluated as a formula. A consequence is that a pre-formatted negative number
/// such as `-0.4` shows as `'-0.4`; upstream formatting may use the minus sign `−` (U+2212) to
/// avoid it.
pub fn md_cell(s: &str) -> String {
    let cleaned = clean(s);
    let trimmed = cleaned.trim();
    let formula = trimmed.starts_with(['=', '+', '-', '@']);
    let escaped = md(trimmed);
    if formula {
        // `md` may have put a backslash before the first character; drop it after the quote.
        let rest = escaped.strip_prefix('\\').unwrap_or(&escaped);
        format!("'{rest}")
    } else {
        escaped
    }
}

/// Chart text: cleaned and cut to at most `max_chars` characters, ending with `…` when cut.
pub fn label(s: &str, max_chars: usize) -> String {
    let cleaned = clean(s);
    let trimmed = cleaned.trim();
    if trimmed.chars().count() <= max_chars {
        return trimmed.to_string();
    }
    let mut out: String = trimmed.chars().take(max_chars.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A fraction as a percentage with `decimals` decimals: `pct(0.9912, 1)` is `"99.1%"`.
pub fn pct(x: f64, decimals: usize) -> String {
    if x.is_finite() {
        format!("{:.*}%", decimals, x * 100.0)
    } else {
        "n/a".to_string()
    }
}

/// An integer with thousands separators: `1234567` is `"1,234,567"`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The data-quality table's rows: table, rows read and rows rejected, pre-formatted. A run from
/// stored statistics alone read no raw row: its counts are unknown, not zero.
pub fn rows_read(q: &crate::model::DataQuality) -> [(&'static str, String, String); 2] {
    let cells = |read: u64, rejected: u64| match q.source {
        crate::model::RowSource::Statistics => {
            ("not read (statistics)".to_string(), "unknown".to_string())
        }
        _ => (count(read), count(rejected)),
    };
    let (d_read, d_rejected) = cells(q.decisions_read, q.decisions_rejected);
    let (v_read, v_rejected) = cells(q.verdicts_read, q.verdicts_rejected);
    [
        ("decisions", d_read, d_rejected),
        ("verdicts", v_read, v_rejected),
    ]
}

/// The data-quality section's sentences about rejected rows, in order, for both renderers:
/// `(text, empty)`, where `empty` marks the "no row was rejected" line and code spans are
/// written between backticks ([`code_spans_html`] turns them into HTML).
pub fn rejects_notes(q: &crate::model::DataQuality) -> Vec<(&'static str, bool)> {
    use crate::model::RowSource;
    if q.source == RowSource::Statistics {
        return vec![(
            "This run read stored statistics (`--stats`), not the raw inputs: how many rows were rejected when those statistics were built is unknown here. `readiness validate` on the raw files gives the counts by reason.",
            false,
        )];
    }
    let mut notes = vec![(
        "Rejected rows are excluded from every number in this report and written to `rejects.parquet` with their reason.",
        false,
    )];
    if q.rejects_by_reason.is_empty() {
        notes.push(match q.source {
            RowSource::Raw => ("No row was rejected.", true),
            _ => ("No row of the raw inputs was rejected.", true),
        });
    }
    if q.source == RowSource::RawAndStatistics {
        notes.push((
            "The periods taken from stored statistics (`--stats`) were validated when those statistics were built: their rejected rows are unknown here and not counted above.",
            false,
        ));
    }
    notes
}

/// HTML of a fixed sentence whose code spans are written between backticks.
pub fn code_spans_html(s: &str) -> String {
    html(s)
        .split('`')
        .enumerate()
        .map(|(i, part)| match i % 2 {
            1 => format!("<code>{part}</code>"),
            _ => part.to_string(),
        })
        .collect()
}

/// Words for a mode: `hitl` and `hotl` are explained; other values are shown as given.
pub fn mode_words(mode: &str) -> String {
    match mode {
        "hitl" => "an analyst approves each action first (HITL)".to_string(),
        "hotl" => "runs on its own, an analyst reviews afterwards (HOTL)".to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_the_five() {
        assert_eq!(
            html(r#"<a href="x" onclick='y'>&amp;</a>"#),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;"
        );
        assert_eq!(html("a\nb\u{202E}c"), "a bc");
    }

    #[test]
    fn markdown_escapes_active_characters() {
        assert_eq!(md("[x](http://e)"), "\\[x\\](http://e)");
        assert_eq!(md("a|b *c* _d_ <b>"), "a\\|b \\*c\\* \\_d\\_ &lt;b&gt;");
        assert_eq!(md("- item"), "\\- item");
        assert_eq!(md("# title"), "\\# title");
        assert_eq!(md("2024. year"), "2024\\. year");
        assert_eq!(md("line\nbreak"), "line break");
    }

    #[test]
    fn markdown_cells_neutralise_formulas() {
        assert_eq!(md_cell("=cmd|' /C calc'!A0"), "'=cmd\\|' /C calc'\\!A0");
        assert_eq!(md_cell("+1"), "'+1");
        assert_eq!(md_cell("-0.4"), "'-0.4");
        assert_eq!(md_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(md_cell("  =x"), "'=x");
        assert_eq!(md_cell("0.4"), "0.4");
    }

    #[test]
    fn labels_are_truncated() {
        assert_eq!(label("isolate_host", 20), "isolate_host");
        assert_eq!(label("abcdefghij", 5), "abcd…");
        assert_eq!(label("a\nb", 5), "a b");
    }

    #[test]
    fn numbers_format() {
        assert_eq!(pct(0.9912, 1), "99.1%");
        assert_eq!(pct(0.31, 0), "31%");
        assert_eq!(pct(f64::NAN, 0), "n/a");
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1234567), "1,234,567");
    }
}
