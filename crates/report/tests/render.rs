//! Renderer tests: snapshots per format, hostile strings, empty models, determinism.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use readiness_report::board::board_chart;
use readiness_report::model::ReportModel;
use readiness_report::{
    render_all, render_all_on, render_board, render_board_html, render_board_markdown, render_html,
    render_markdown, Chart, Charts, Svg,
};

/// A fresh directory under the system temp dir (no tempfile crate needed).
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("readiness-report-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Placeholder SVGs so the HTML snapshot shows the page, not thousands of chart lines.
fn placeholder_svgs(model: &ReportModel) -> Charts<Svg> {
    Charts::file_stems(model).map(|s| {
        Svg(format!(
            "<svg width=\"10\" height=\"10\"><!-- {s} --></svg>\n"
        ))
    })
}

fn png_paths(model: &ReportModel) -> Charts<String> {
    Charts::file_stems(model).map(|s| format!("charts/{s}.png"))
}

#[test]
fn html_snapshot() {
    let m = common::small_model();
    insta::assert_snapshot!("report_html", render_html(&m, &placeholder_svgs(&m)));
}

#[test]
fn markdown_snapshot() {
    let m = common::small_model();
    insta::assert_snapshot!("report_md", render_markdown(&m, &png_paths(&m)));
}

#[test]
fn board_snapshots() {
    let b = common::board_model();
    let svg = Svg("<svg width=\"10\" height=\"10\"><!-- board --></svg>\n".into());
    insta::assert_snapshot!("board_html", render_board_html(&b, &svg));
    insta::assert_snapshot!(
        "board_md",
        render_board_markdown(&b, "charts/board_autonomy.png")
    );
}

/// A past quarter's pack says whose risks it shows; the latest quarter's says nothing more.
#[test]
fn a_past_quarters_board_says_its_risks_are_todays() {
    let svg = Svg("<svg width=\"10\" height=\"10\"></svg>\n".into());
    let mut b = common::board_model();
    let note = "As of 2026-02, the latest period in the data: these are today's risks, not those at the end of 2025-Q4.";
    for text in [
        render_board_html(&b, &svg),
        render_board_markdown(&b, "x.png"),
    ] {
        assert!(!text.contains("As of"), "{text}");
    }
    b.risks_as_of = Some("2026-02".into());
    let html = render_board_html(&b, &svg);
    assert!(
        html.contains(&format!(
            "<h2>Top risks</h2>\n<p class=\"small\">{}</p>",
            note.replace('\'', "&#39;")
        )),
        "{html}"
    );
    let md = render_board_markdown(&b, "x.png");
    assert!(
        md.contains("## Top risks\n\nAs of 2026-02, the latest period in the data"),
        "{md}"
    );
}

#[test]
fn svg_snapshot() {
    let m = common::small_model();
    let svg = Chart::Agreement(&m.classes[0]).to_svg().unwrap();
    insta::assert_snapshot!("agreement_svg", svg.0);
}

const EVIL: &[&str] = &[
    "<script>alert(1)</script>",
    "\"onmouseover=alert(1) x=\"",
    "'><img src=x onerror=alert(1)>",
    "&amp;&lt;script&gt;",
    "line\nbreak\r\n<script>",
    "=HYPERLINK(\"http://evil\")",
    "[link](javascript:alert(1)) ![img](http://evil/x.png) | pipe",
    "\u{202E}reversed",
];

/// No `<` in text that the model supplied survives unescaped: the only tags are our own.
fn assert_html_safe(out: &str, evil: &str) {
    assert!(!out.contains("<script"), "raw <script for {evil:?}");
    assert!(!out.contains("<img"), "raw <img for {evil:?}");
    assert!(
        !out.contains("\"onmouseover"),
        "attribute breakout for {evil:?}"
    );
    assert!(!out.contains("'><"), "attribute breakout for {evil:?}");
    assert!(
        !out.contains("&amp;&lt;script&gt;") || out.contains("&amp;amp;&amp;lt;script&amp;gt;")
    );
    assert!(!out.contains('\u{202E}'));
}

#[test]
fn hostile_strings_are_escaped_in_html_and_svg() {
    for evil in EVIL {
        let m = common::hostile_model(evil);
        let svgs = readiness_report::charts::render_svgs(&m).unwrap();
        for svg in svgs.iter() {
            assert_html_safe(&svg.0, evil);
        }
        assert_html_safe(&render_html(&m, &svgs), evil);
        let b = common::hostile_board(evil);
        let svg = board_chart(&b).to_svg().unwrap();
        assert_html_safe(&render_board_html(&b, &svg), evil);
    }
}

/// Every Markdown-active character from the model is escaped (angle brackets as entities, the
/// rest with a backslash): no raw tag, link, image
/// or extra table column; no line breaks inside a line.
fn assert_markdown_safe(out: &str, evil: &str) {
    for (i, c) in out.char_indices() {
        if matches!(c, '<' | '[' | '!' | '&') {
            // Our own Markdown uses `![` for chart images only.
            let own_image = c == '!' && out[i..].starts_with("![") && !out[..i].ends_with('\\');
            let own_bracket = c == '[' && out[..i].ends_with('!');
            // Angle brackets from the data become the entities `&lt;` and `&gt;`.
            let own_entity =
                c == '&' && (out[i..].starts_with("&lt;") || out[i..].starts_with("&gt;"));
            if !own_image && !own_bracket && !own_entity {
                assert!(
                    out[..i].ends_with('\\'),
                    "unescaped {c:?} at {i} for {evil:?}: {}",
                    &out[i.saturating_sub(40)..(i + 40).min(out.len())]
                );
            }
        }
    }
    assert!(!out.contains('\r'));
    assert!(!out.contains('\u{202E}'));
    // Table rows keep their column count: a pipe from the data is always escaped.
    for line in out.lines().filter(|l| l.starts_with("| ")) {
        let pipes = line
            .char_indices()
            .filter(|&(i, c)| c == '|' && !line[..i].ends_with('\\'))
            .count();
        // Our widest table has four columns, so five unescaped pipes.
        assert!(pipes <= 5, "extra column for {evil:?}: {line}");
    }
}

#[test]
fn hostile_strings_are_escaped_in_markdown() {
    for evil in EVIL {
        let m = common::hostile_model(evil);
        assert_markdown_safe(&render_markdown(&m, &png_paths(&m)), evil);
        let b = common::hostile_board(evil);
        assert_markdown_safe(
            &render_board_markdown(&b, "charts/board_autonomy.png"),
            evil,
        );
    }
}

#[test]
fn formula_cells_are_neutralised_in_markdown() {
    let m = common::hostile_model("=HYPERLINK(\"http://evil\")");
    let md = render_markdown(&m, &png_paths(&m));
    assert!(md.contains("| '=HYPERLINK"));
    assert!(!md.contains("| =HYPERLINK"));
}

#[test]
fn hostile_class_names_make_safe_file_names() {
    let m = common::hostile_model("../../etc/passwd");
    let dir = scratch("hostile-files");
    let written = render_all(&m, &dir).unwrap();
    for p in &written {
        assert!(p.starts_with(&dir), "{p:?} escaped the output directory");
        assert!(p.exists());
    }
    // Two classes with the same hostile name still get distinct files.
    let pngs: std::collections::BTreeSet<_> = written
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    assert_eq!(pngs.len(), 3 + 4 * m.classes.len());
    fs::remove_dir_all(&dir).unwrap();
}

/// Rejected counts are reported only where raw rows were read: from stored statistics alone
/// they are unknown, and an incremental run counts the raw inputs' only.
#[test]
fn rejected_counts_say_what_was_read() {
    use readiness_report::model::RowSource;
    let mut m = common::small_model();
    m.quality.rejects_by_reason.clear();
    let render = |m: &ReportModel| {
        (
            render_html(m, &placeholder_svgs(m)),
            render_markdown(m, &png_paths(m)),
        )
    };
    let (html, md) = render(&m);
    assert!(html.contains("No row was rejected.") && md.contains("No row was rejected."));

    m.quality.source = RowSource::Statistics;
    let (html, md) = render(&m);
    for out in [&html, &md] {
        assert!(!out.contains("No row was rejected"), "{out}");
        assert!(out.contains("not read (statistics)") && out.contains("unknown"));
        assert!(out.contains("is unknown here"));
        assert!(!out.contains("rejects.parquet"));
    }

    m.quality.source = RowSource::RawAndStatistics;
    let (html, md) = render(&m);
    for out in [&html, &md] {
        assert!(
            out.contains("No row of the raw inputs was rejected."),
            "{out}"
        );
        assert!(out.contains("their rejected rows are unknown here"));
        assert!(
            out.contains("decisions | 12,345 | 12") || out.contains("<td class=\"num\">12</td>")
        );
    }
}

#[test]
fn empty_model_renders() {
    let dir = scratch("empty");
    let m = ReportModel::default();
    let written = render_all(&m, &dir).unwrap();
    assert_eq!(written.len(), 2 * 3 + 2);
    let html = fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("No decision is needed this period."));
    let md = fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("No action class was evaluated."));
    render_board(&Default::default(), &dir).unwrap();
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn non_finite_numbers_do_not_panic() {
    let mut m = common::small_model();
    for c in &mut m.classes {
        c.target = f64::NAN;
        c.max_risk = f64::INFINITY;
        c.psi = Some(f64::NAN);
        c.gate_threshold = Some(f64::NAN);
        for a in &mut c.agreement {
            a.agreement = Some(f64::NAN);
            a.low = Some(f64::NEG_INFINITY);
        }
        for b in &mut c.reliability {
            b.observed = Some(f64::NAN);
            b.lower = f64::NAN;
        }
        for p in &mut c.risk_coverage {
            p.coverage = f64::NAN;
        }
        c.confidence_current = vec![f64::NAN; 100];
    }
    for r in &mut m.matrix {
        r.target = f64::NAN;
        r.cells.truncate(1);
        r.n.clear();
    }
    for d in &mut m.manipulation {
        d.baseline = f64::NAN;
    }
    for a in &mut m.autonomy {
        a.share = f64::NAN;
    }
    readiness_report::charts::render_svgs(&m).unwrap();
    let dir = scratch("nan");
    render_all(&m, &dir).unwrap();
    fs::remove_dir_all(&dir).unwrap();
}

fn read_all(paths: &[PathBuf], root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    paths
        .iter()
        .map(|p| {
            (
                p.strip_prefix(root).unwrap().to_path_buf(),
                fs::read(p).unwrap(),
            )
        })
        .collect()
}

#[test]
fn rendering_is_deterministic() {
    let m = common::sample_model();
    let (a, b) = (scratch("det-a"), scratch("det-b"));
    let first = read_all(&render_all(&m, &a).unwrap(), &a);
    // Three threads write the same files, listed in the same order.
    let second = read_all(&render_all_on(&m, &b, 3).unwrap(), &b);
    assert_eq!(first.len(), second.len());
    for ((pa, ba), (pb, bb)) in first.iter().zip(&second) {
        assert_eq!(pa, pb);
        assert!(ba == bb, "{} differs between runs", pa.display());
    }
    // The PNG files are real PNGs.
    let png = first
        .iter()
        .find(|(p, _)| p.extension().is_some_and(|e| e == "png"))
        .unwrap();
    assert!(png.1.starts_with(b"\x89PNG\r\n\x1a\n"));
    fs::remove_dir_all(&a).unwrap();
    fs::remove_dir_all(&b).unwrap();
}

#[test]
fn html_is_self_contained() {
    let m = common::sample_model();
    let svgs = readiness_report::charts::render_svgs(&m).unwrap();
    let html = render_html(&m, &svgs);
    assert!(!html.contains("<script"));
    assert!(!html.contains("<link"));
    assert!(!html.contains("<img"));
    assert!(!html.contains("@import"));
    assert!(!html.contains("url("));
    // The only absolute URL allowed is the SVG namespace identifier, which is never fetched.
    assert_eq!(
        html.matches("http").count(),
        html.matches("http://www.w3.org/2000/svg").count()
    );
}

/// The widest stroke of the SVG polylines drawn in `color` (a plotters `#RRGGBB` stroke; the
/// legend's marks are narrower than or as wide as the lines).
fn stroke_width(svg: &str, color: &str) -> Option<u32> {
    svg.lines()
        .filter(|l| l.contains("<polyline") && l.contains(&format!("stroke=\"{color}\"")))
        .filter_map(|l| {
            let w = l.split("stroke-width=\"").nth(1)?;
            w[..w.find('"')?].parse().ok()
        })
        .max()
}

/// The sample model's first class with a gate.
fn gated_class() -> readiness_report::model::ClassSection {
    common::sample_model()
        .classes
        .into_iter()
        .find(|c| c.gate_threshold.is_some())
        .expect("a gated class")
}

#[test]
fn risk_coverage_legend_names_the_gate_or_why_there_is_none() {
    let gated = &gated_class();
    let svg = Chart::RiskCoverage(gated).to_svg().unwrap().0;
    assert!(svg.contains("gate: confidence ≥ 0.93"), "gated legend");
    let mut promoted = gated.clone();
    promoted.gate_threshold = None;
    promoted.no_gate = "no gate needed: the whole class qualifies".into();
    let svg = Chart::RiskCoverage(&promoted).to_svg().unwrap().0;
    assert!(svg.contains("no gate needed: the whole class qualifies"));
    assert!(!svg.contains("gate: confidence"));
}

#[test]
fn risk_coverage_legend_names_only_the_marks_drawn() {
    use readiness_report::charts::BLUE;
    let gated = &gated_class();
    let blue = format!("#{:02X}{:02X}{:02X}", BLUE.0, BLUE.1, BLUE.2);
    let circles = |svg: &str, color: &str| {
        svg.lines()
            .filter(|l| l.contains("<circle") && l.contains(&format!("stroke=\"{color}\"")))
            .count()
    };
    let svg = Chart::RiskCoverage(gated).to_svg().unwrap().0;
    assert!(
        circles(&svg, &blue) >= 2,
        "the gate's ring, on the chart and in the legend"
    );
    // No threshold certified, no gate: neither a green dot nor a blue ring in the legend, and
    // the reason as a note.
    let mut none = gated.clone();
    none.gate_threshold = None;
    none.no_gate = "no gate: no threshold keeps the risk under the limit".into();
    for p in &mut none.risk_coverage {
        p.certified = false;
    }
    let svg = Chart::RiskCoverage(&none).to_svg().unwrap().0;
    assert!(svg.contains("not certified"));
    assert!(!svg.contains("certified threshold"));
    assert!(svg.contains("no gate: no threshold keeps the risk under the limit"));
    assert_eq!(
        circles(&svg, &blue),
        0,
        "no blue ring where no gate is drawn"
    );
    // Every threshold certified: no "not certified" entry.
    let mut all = gated.clone();
    for p in &mut all.risk_coverage {
        p.certified = true;
    }
    let svg = Chart::RiskCoverage(&all).to_svg().unwrap().0;
    assert!(svg.contains("certified threshold"));
    assert!(!svg.contains("not certified"));
    // A gate whose threshold is not among the points drawn is named, without a ring.
    let mut off = gated.clone();
    off.gate_threshold = Some(0.123);
    let svg = Chart::RiskCoverage(&off).to_svg().unwrap().0;
    assert!(svg.contains("gate: confidence ≥ 0.12 (not among the thresholds drawn)"));
    assert_eq!(circles(&svg, &blue), 0);
}

#[test]
fn coinciding_autonomy_tiers_stay_visible_as_bands() {
    use readiness_report::charts::SERIES;
    use readiness_report::model::AutonomyPoint;
    let point = |period: &str, tier: &str, share: f64| AutonomyPoint {
        period: period.into(),
        tier: tier.into(),
        share,
    };
    let mut points = Vec::new();
    for p in ["2025-01", "2025-02", "2025-03"] {
        points.push(point(p, "low", 0.7));
        // High and critical impact both stay at 0%: critical is drawn last, over high.
        points.push(point(p, "high", 0.0));
        points.push(point(p, "critical", 0.0));
    }
    let svg = Chart::Autonomy(&points).to_svg().unwrap().0;
    let hex = |c: plotters::style::RGBColor| format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2);
    let (low, high, critical) = (
        stroke_width(&svg, &hex(SERIES[0])),
        stroke_width(&svg, &hex(SERIES[1])),
        stroke_width(&svg, &hex(SERIES[2])),
    );
    assert!(low.is_some() && high.is_some() && critical.is_some());
    assert!(
        high > critical,
        "high {high:?} must be wider than critical {critical:?}, which is drawn over it"
    );
    assert_eq!(
        low, critical,
        "a tier no other tier covers keeps the base width"
    );
    assert!(svg.contains("overlapping lines drawn as bands"));

    // Lines that meet at one period only are banded only around that point: the segments
    // between periods where they are apart keep the base width.
    let crossing: Vec<AutonomyPoint> = points
        .iter()
        .map(|p| {
            let mut p = p.clone();
            if p.tier == "high" && p.period != "2025-02" {
                p.share = 0.3;
            }
            p
        })
        .collect();
    let svg = Chart::Autonomy(&crossing).to_svg().unwrap().0;
    assert_eq!(
        stroke_width(&svg, &hex(SERIES[1])),
        stroke_width(&svg, &hex(SERIES[2]))
    );
    assert!(svg.contains("overlapping lines drawn as bands"));

    // Apart, no band and no note.
    for p in points.iter_mut().filter(|p| p.tier == "high") {
        p.share = 0.3;
    }
    let svg = Chart::Autonomy(&points).to_svg().unwrap().0;
    assert_eq!(
        stroke_width(&svg, &hex(SERIES[1])),
        stroke_width(&svg, &hex(SERIES[2]))
    );
    assert!(!svg.contains("overlapping lines"));
}
