//! Charts: each draws model numbers onto any plotters backend; none computes a statistic.
//!
//! A [`Chart`] names one picture and borrows its data from the model. [`Chart::draw`] draws it on
//! any plotters [`DrawingArea`]; [`Chart::to_svg`] and [`Chart::write_png`] call it with the SVG
//! backend (to a `String`) and the bitmap backend (PNG through the file-path encoder of plotters,
//! which is deterministic: no timestamps, no metadata). [`Charts`] holds one value per chart of a
//! report in a fixed order: the chart plan, the file stems, the SVG texts, the file paths.
//!
//! Drawing choices, the same in every chart:
//!
//! - Palette: Okabe & Ito (2008), "Color Universal Design", distinguishable with the common forms
//!   of colour blindness. Colour is never the only channel: matrix cells carry their value, lines
//!   are named in a legend row.
//! - Text: the Noto Sans font embedded by the `notosans` crate (registered once, so charts render on
//!   machines with no fonts). Plotters sizes are pixels in PNG; the SVG backend writes
//!   `size / 1.24`, so the smallest size used, 18, is 14.5 px in SVG.
//! - Legends sit in a row under the title, never over data. Category labels (periods, days) are
//!   thinned to every k-th label so that they never overlap; long names are cut with `…`.
//! - Hostile strings: text is cleaned ([`crate::text::label`]); the SVG backend escapes
//!   `& < > " '` itself (tested below).
//! - Empty or non-finite data draws a "No data" note instead of failing.
//!
//! What the renderer does with the numbers is limited to display: sorting points for a line,
//! choosing an axis range that shows them, thinning labels, and colouring a matrix cell by
//! comparing its agreement with its target (the class's own number, both from the model).

use std::fmt;
use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::files::safe_file_stem;
use crate::model::{
    AgreementPoint, AutonomyPoint, ClassSection, ManipulationDay, MatrixRow, ReportModel,
};
use crate::raster::PngBackend;
use crate::text::{count, label, pct};

/// Okabe–Ito blue.
pub const BLUE: RGBColor = RGBColor(0, 114, 178);
/// Okabe–Ito orange.
pub const ORANGE: RGBColor = RGBColor(230, 159, 0);
/// Okabe–Ito sky blue.
pub const SKY: RGBColor = RGBColor(86, 180, 233);
/// Okabe–Ito bluish green.
pub const GREEN: RGBColor = RGBColor(0, 158, 115);
/// Okabe–Ito vermillion.
pub const VERMILLION: RGBColor = RGBColor(213, 94, 0);
/// Okabe–Ito reddish purple.
pub const PURPLE: RGBColor = RGBColor(204, 121, 167);
/// Text and axes.
pub const INK: RGBColor = RGBColor(34, 34, 34);
/// Secondary text, empty cells.
pub const GREY: RGBColor = RGBColor(110, 110, 110);
/// Series colours in order (at most five series per chart).
pub const SERIES: [RGBColor; 5] = [BLUE, ORANGE, GREEN, PURPLE, SKY];

const FONT: &str = "sans-serif";
/// Smallest text size (pixels in PNG, 14.5 px in SVG).
const SMALL: u32 = 18;
const TITLE: u32 = 24;
/// Agreement within this distance below target is "amber" in the matrix (two percentage points).
const AMBER_BAND: f64 = 0.02;
/// Standard chart size.
const WIDE: (u32, u32) = (960, 440);

/// A chart could not be drawn (a backend or file error; never bad data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartError(pub String);

impl fmt::Display for ChartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "chart rendering failed: {}", self.0)
    }
}

impl std::error::Error for ChartError {}

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for ChartError {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        ChartError(e.to_string())
    }
}

impl From<ChartError> for std::io::Error {
    fn from(e: ChartError) -> Self {
        std::io::Error::other(e)
    }
}

/// An SVG document (the text of one chart), ready to inline in HTML or write to a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Svg(pub String);

/// Registers the embedded Noto Sans (regular and bold) as `sans-serif`, once per process.
pub fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid TrueType font shipped by `notosans`; failure would be a packaging
        // bug, and charts would then draw without text rather than fail.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, notosans::REGULAR_TTF);
        let _ = plotters::style::register_font(FONT, FontStyle::Bold, notosans::BOLD_TTF);
    });
}

/// One chart and the model data it draws.
#[derive(Debug, Clone, Copy)]
pub enum Chart<'a> {
    /// Agreement per period with its interval band, the target line and n per period.
    Agreement(&'a ClassSection),
    /// Observed agreement against mean confidence per bin, the diagonal, and counts per bin.
    Reliability(&'a ClassSection),
    /// Disagreement rate against coverage per threshold, the max-risk line and the gate.
    RiskCoverage(&'a ClassSection),
    /// Confidence distribution, current period against baseline, PSI in the title.
    Confidence(&'a ClassSection),
    /// Classes × periods heat map of agreement against each class's target.
    Matrix {
        /// Column labels.
        periods: &'a [String],
        /// One row per class.
        rows: &'a [MatrixRow],
    },
    /// Daily volume of each class with a flagged day; flagged days highlighted.
    Manipulation(&'a [ManipulationDay]),
    /// Share of decisions executed without prior approval, per period, one line per tier.
    Autonomy(&'a [AutonomyPoint]),
}

impl Chart<'_> {
    /// Pixel size of the chart (the matrix and the manipulation panels grow with their data).
    pub fn size(&self) -> (u32, u32) {
        match self {
            Chart::Reliability(_) => (960, 560),
            Chart::Matrix { periods, rows } => {
                let w = MATRIX_LEFT + MATRIX_CELL_W * periods.len().max(6) as u32 + 30;
                let h = MATRIX_TOP + MATRIX_CELL_H * rows.len().max(1) as u32 + 20;
                (w.max(760), h)
            }
            Chart::Manipulation(days) => {
                let panels = flagged_classes(days).len().clamp(1, MAX_PANELS) as u32;
                (960, 96 + panels * PANEL_H)
            }
            _ => WIDE,
        }
    }

    /// A short description for `alt` text and captions (not escaped).
    pub fn describe(&self) -> String {
        match self {
            Chart::Agreement(c) => format!("Agreement over time for {}", c.action_class),
            Chart::Reliability(c) => format!("Reliability diagram for {}", c.action_class),
            Chart::RiskCoverage(c) => {
                format!("Risk and coverage by threshold for {}", c.action_class)
            }
            Chart::Confidence(c) => format!("Confidence distribution for {}", c.action_class),
            Chart::Matrix { .. } => "Readiness matrix: agreement by class and period".to_string(),
            Chart::Manipulation(_) => {
                "Manipulation timeline: daily volume of flagged classes".to_string()
            }
            Chart::Autonomy(_) => {
                "Share of decisions executed without prior approval, by tier".to_string()
            }
        }
    }

    /// Draws the chart on `root` (the whole backend area).
    pub fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), ChartError>
    where
        DB::ErrorType: 'static,
    {
        register_fonts();
        root.fill(&WHITE)?;
        match self {
            Chart::Agreement(c) => draw_agreement(root, c),
            Chart::Reliability(c) => draw_reliability(root, c),
            Chart::RiskCoverage(c) => draw_risk_coverage(root, c),
            Chart::Confidence(c) => draw_confidence(root, c),
            Chart::Matrix { periods, rows } => draw_matrix(root, periods, rows),
            Chart::Manipulation(days) => draw_manipulation(root, days),
            Chart::Autonomy(points) => draw_autonomy(root, points),
        }?;
        root.present()?;
        Ok(())
    }

    /// Renders the chart as an SVG document.
    pub fn to_svg(&self) -> Result<Svg, ChartError> {
        let mut out = String::new();
        {
            let root = SVGBackend::with_string(&mut out, self.size()).into_drawing_area();
            self.draw(&root)?;
        }
        Ok(Svg(out))
    }

    /// Renders the chart as a PNG file at `path` (plotters' encoder needs a path).
    pub fn write_png(&self, path: &Path) -> Result<(), ChartError> {
        let root = PngBackend(BitMapBackend::new(path, self.size())).into_drawing_area();
        self.draw(&root)
    }
}

/// The four charts of one class section, in display order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassCharts<T> {
    /// Agreement over time.
    pub agreement: T,
    /// Reliability diagram.
    pub reliability: T,
    /// Risk–coverage curve.
    pub risk_coverage: T,
    /// Confidence distribution.
    pub confidence: T,
}

/// One value per chart of a report, in a fixed order: the matrix, the manipulation timeline,
/// the autonomy chart, then the four charts of each class in model order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charts<T> {
    /// Readiness matrix.
    pub matrix: T,
    /// Manipulation timeline.
    pub manipulation: T,
    /// Autonomy share by tier.
    pub autonomy: T,
    /// Per class, aligned with [`ReportModel::classes`].
    pub classes: Vec<ClassCharts<T>>,
}

impl<T> Charts<T> {
    /// Every value in the fixed order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        [&self.matrix, &self.manipulation, &self.autonomy]
            .into_iter()
            .chain(self.classes.iter().flat_map(|c| {
                [
                    &c.agreement,
                    &c.reliability,
                    &c.risk_coverage,
                    &c.confidence,
                ]
            }))
    }

    /// Applies `f` to every value, keeping the structure.
    pub fn map<U>(&self, mut f: impl FnMut(&T) -> U) -> Charts<U> {
        Charts {
            matrix: f(&self.matrix),
            manipulation: f(&self.manipulation),
            autonomy: f(&self.autonomy),
            classes: self
                .classes
                .iter()
                .map(|c| ClassCharts {
                    agreement: f(&c.agreement),
                    reliability: f(&c.reliability),
                    risk_coverage: f(&c.risk_coverage),
                    confidence: f(&c.confidence),
                })
                .collect(),
        }
    }

    /// Applies a fallible `f` to every value, stopping at the first error.
    pub fn try_map<U, E>(&self, mut f: impl FnMut(&T) -> Result<U, E>) -> Result<Charts<U>, E> {
        let mut classes = Vec::with_capacity(self.classes.len());
        let matrix = f(&self.matrix)?;
        let manipulation = f(&self.manipulation)?;
        let autonomy = f(&self.autonomy)?;
        for c in &self.classes {
            classes.push(ClassCharts {
                agreement: f(&c.agreement)?,
                reliability: f(&c.reliability)?,
                risk_coverage: f(&c.risk_coverage)?,
                confidence: f(&c.confidence)?,
            });
        }
        Ok(Charts {
            matrix,
            manipulation,
            autonomy,
            classes,
        })
    }
}

impl<'a> Charts<Chart<'a>> {
    /// The charts of a report model.
    pub fn plan(model: &'a ReportModel) -> Self {
        Charts {
            matrix: Chart::Matrix {
                periods: &model.periods,
                rows: &model.matrix,
            },
            manipulation: Chart::Manipulation(&model.manipulation),
            autonomy: Chart::Autonomy(&model.autonomy),
            classes: model
                .classes
                .iter()
                .map(|c| ClassCharts {
                    agreement: Chart::Agreement(c),
                    reliability: Chart::Reliability(c),
                    risk_coverage: Chart::RiskCoverage(c),
                    confidence: Chart::Confidence(c),
                })
                .collect(),
        }
    }
}

impl Charts<String> {
    /// File stems (no extension) of every chart: `matrix`, `manipulation`, `autonomy`, then
    /// `agreement_<class>` etc. with the class through [`safe_file_stem`]; a class listed twice
    /// gets `-2`, `-3`... so no file is written twice.
    pub fn file_stems(model: &ReportModel) -> Self {
        let mut seen = std::collections::BTreeSet::new();
        let classes = model
            .classes
            .iter()
            .map(|c| {
                let base = safe_file_stem(&c.action_class);
                let mut stem = base.clone();
                let mut k = 1;
                while !seen.insert(stem.clone()) {
                    k += 1;
                    stem = format!("{base}-{k}");
                }
                ClassCharts {
                    agreement: format!("agreement_{stem}"),
                    reliability: format!("reliability_{stem}"),
                    risk_coverage: format!("risk_coverage_{stem}"),
                    confidence: format!("confidence_{stem}"),
                }
            })
            .collect();
        Charts {
            matrix: "matrix".to_string(),
            manipulation: "manipulation".to_string(),
            autonomy: "autonomy".to_string(),
            classes,
        }
    }
}

/// Renders every chart of `model` as SVG.
pub fn render_svgs(model: &ReportModel) -> Result<Charts<Svg>, ChartError> {
    Charts::plan(model).try_map(Chart::to_svg)
}

// ---------------------------------------------------------------------------------------------
// Shared drawing helpers

type Area<DB> = DrawingArea<DB, Shift>;

fn style(size: u32, color: &'static RGBColor) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font()).color(color)
}

fn bold(size: u32, color: &'static RGBColor) -> TextStyle<'static> {
    TextStyle::from((FONT, size, FontStyle::Bold).into_font()).color(color)
}

fn anchored(s: TextStyle<'static>, h: HPos, v: VPos) -> TextStyle<'static> {
    s.pos(Pos::new(h, v))
}

/// Width of `text` in pixels as the backend will draw it.
fn text_width<DB: DrawingBackend>(root: &Area<DB>, text: &str, s: &TextStyle) -> u32 {
    root.estimate_text_size(text, s)
        .map(|(w, _)| w)
        .unwrap_or(0)
}

/// `text` cleaned and cut with `…` until it fits in `max_px`.
fn fit<DB: DrawingBackend>(root: &Area<DB>, text: &str, s: &TextStyle, max_px: u32) -> String {
    let mut chars = 120;
    let mut out = label(text, chars);
    while chars > 1 && text_width(root, &out, s) > max_px {
        chars = (chars * 4 / 5)
            .min(out.chars().count().saturating_sub(1))
            .max(1);
        out = label(text, chars);
    }
    out
}

/// Draws the title row; returns the y where content may start.
fn header<DB: DrawingBackend>(root: &Area<DB>, title: &str) -> Result<i32, ChartError>
where
    DB::ErrorType: 'static,
{
    let (w, _) = root.dim_in_pixel();
    let s = bold(TITLE, &INK);
    let t = fit(root, title, &s, w.saturating_sub(40));
    root.draw(&Text::new(t, (20, 12), s))?;
    Ok(48)
}

/// Draws "No data" in the middle of the area below the title.
fn no_data<DB: DrawingBackend>(root: &Area<DB>, what: &str) -> Result<(), ChartError>
where
    DB::ErrorType: 'static,
{
    let (w, h) = root.dim_in_pixel();
    let s = anchored(style(20, &GREY), HPos::Center, VPos::Center);
    root.draw(&Text::new(
        what.to_string(),
        (w as i32 / 2, h as i32 / 2 + 20),
        s,
    ))?;
    Ok(())
}

/// A legend entry's mark.
#[derive(Clone, Copy)]
enum Mark {
    Line(RGBColor),
    Dashed(RGBColor),
    Band(RGBColor),
    Dot(RGBColor),
    Ring(RGBColor),
    Square(RGBColor),
    /// No mark: a note in the legend row.
    Text,
}

/// Draws legend entries left to right from (x, y), wrapping at the right edge; returns the y
/// below the legend.
fn legend<DB: DrawingBackend>(
    root: &Area<DB>,
    x0: i32,
    y0: i32,
    items: &[(String, Mark)],
) -> Result<i32, ChartError>
where
    DB::ErrorType: 'static,
{
    let (w, _) = root.dim_in_pixel();
    let s = anchored(style(SMALL, &INK), HPos::Left, VPos::Center);
    let (mut x, mut y) = (x0, y0 + 12);
    for (text, mark) in items {
        let t = fit(root, text, &s, w.saturating_sub(80));
        let tw = text_width(root, &t, &s) as i32;
        if x > x0 && x + 34 + tw > w as i32 - 10 {
            x = x0;
            y += 28;
        }
        match *mark {
            Mark::Line(c) => {
                root.draw(&PathElement::new(
                    vec![(x, y), (x + 26, y)],
                    c.stroke_width(3),
                ))?;
            }
            Mark::Dashed(c) => {
                for k in 0..3 {
                    let a = x + k * 10;
                    root.draw(&PathElement::new(
                        vec![(a, y), (a + 6, y)],
                        c.stroke_width(3),
                    ))?;
                }
            }
            Mark::Band(c) => {
                root.draw(&Rectangle::new(
                    [(x, y - 7), (x + 26, y + 7)],
                    c.mix(0.3).filled(),
                ))?;
            }
            Mark::Dot(c) => root.draw(&Circle::new((x + 13, y), 6, c.filled()))?,
            Mark::Ring(c) => root.draw(&Circle::new((x + 13, y), 6, c.stroke_width(2)))?,
            Mark::Text => {}
            Mark::Square(c) => {
                root.draw(&Rectangle::new(
                    [(x + 4, y - 9), (x + 22, y + 9)],
                    c.filled(),
                ))?;
                root.draw(&Rectangle::new(
                    [(x + 4, y - 9), (x + 22, y + 9)],
                    GREY.stroke_width(1),
                ))?;
            }
        }
        let indent = if matches!(mark, Mark::Text) { 0 } else { 34 };
        root.draw(&Text::new(t, (x + indent, y), s.clone()))?;
        x += indent + tw + 26;
    }
    Ok(y + 22)
}

/// Keeps only finite values.
fn finite(x: Option<f64>) -> Option<f64> {
    x.filter(|v| v.is_finite())
}

/// An axis range `[lo, hi]` covering `values`, padded, clamped to `[floor, ceil]`, never empty.
fn range(values: impl IntoIterator<Item = f64>, floor: f64, ceil: f64, pad_min: f64) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.into_iter().filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (floor, ceil);
    }
    let pad = ((hi - lo) * 0.08).max(pad_min);
    let lo = (lo - pad).max(floor);
    let hi = (hi + pad).min(ceil);
    if hi - lo < 1e-9 {
        (
            (lo - pad_min).max(floor),
            (hi + pad_min).min(ceil).max(lo + 1e-6),
        )
    } else {
        (lo, hi)
    }
}

/// Widens a range by 3% on each side so points on a bound (100%, 0%) are not drawn on the frame.
fn breathe((lo, hi): (f64, f64)) -> (f64, f64) {
    let pad = (hi - lo) * 0.03;
    (lo - pad, hi + pad)
}

/// Percent tick labels with as many decimals as the range needs.
fn pct_ticks(lo: f64, hi: f64) -> impl Fn(&f64) -> String {
    let decimals = if hi - lo < 0.05 { 1 } else { 0 };
    move |v: &f64| {
        if *v > 1.0 + 1e-9 || *v < -1e-9 {
            String::new()
        } else {
            pct(*v, decimals)
        }
    }
}

/// Every k-th category label so that labels of `max_w` pixels never touch.
fn label_step(n: usize, plot_w: i32, max_w: u32) -> usize {
    if n == 0 {
        return 1;
    }
    let spacing = (plot_w.max(1) as f64) / n as f64;
    ((max_w as f64 + 12.0) / spacing).ceil().max(1.0) as usize
}

/// A compact count for tight spaces: `1,234`, `12.3k`, `1.2M`.
fn short_count(n: u64) -> String {
    if n < 10_000 {
        count(n)
    } else if n < 1_000_000 {
        format!("{:.1}k", n as f64 / 1e3)
    } else {
        format!("{:.1}M", n as f64 / 1e6)
    }
}

// ---------------------------------------------------------------------------------------------
// (1) Agreement over time

fn draw_agreement<DB: DrawingBackend>(root: &Area<DB>, c: &ClassSection) -> Result<(), ChartError>
where
    DB::ErrorType: 'static,
{
    let top = header(root, &format!("Agreement over time: {}", c.action_class))?;
    let pts: &[AgreementPoint] = &c.agreement;
    if pts.is_empty() {
        return no_data(root, "No reviewed decisions yet");
    }
    let top = legend(
        root,
        20,
        top,
        &[
            ("agreement".to_string(), Mark::Dot(BLUE)),
            ("interval".to_string(), Mark::Band(SKY)),
            (
                format!("target {}", pct(c.target, 1)),
                Mark::Dashed(VERMILLION),
            ),
            ("n: reviewed decisions".to_string(), Mark::Text),
        ],
    )?;
    let values = pts
        .iter()
        .flat_map(|p| [finite(p.agreement), finite(p.low), finite(p.high)])
        .flatten()
        .chain(Some(c.target).filter(|t| t.is_finite()));
    let (y_lo, y_hi) = breathe(range(values, 0.0, 1.0, 0.005));
    let n = pts.len();
    let body = root.margin(top, 0, 10, 30);
    let mut chart = ChartBuilder::on(&body)
        .x_label_area_size(62)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), y_lo..y_hi)?;
    let ticks = pct_ticks(y_lo, y_hi);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .x_label_formatter(&|_| String::new())
        .y_label_formatter(&ticks)
        .y_labels(6)
        .label_style(style(SMALL, &INK))
        .light_line_style(RGBColor(242, 242, 242))
        .max_light_lines(1)
        .draw()?;

    // Interval band over runs of consecutive periods with both bounds, whiskers for every point.
    let bounds: Vec<Option<(f64, f64)>> = pts
        .iter()
        .map(|p| finite(p.low).zip(finite(p.high)))
        .collect();
    for run in runs(&bounds) {
        let mut poly: Vec<(f64, f64)> = run.iter().map(|&(i, (_, h))| (i as f64, h)).collect();
        poly.extend(run.iter().rev().map(|&(i, (l, _))| (i as f64, l)));
        if run.len() > 1 {
            chart.draw_series(std::iter::once(Polygon::new(poly, SKY.mix(0.3).filled())))?;
        }
    }
    chart.draw_series(bounds.iter().enumerate().filter_map(|(i, b)| {
        b.map(|(l, h)| PathElement::new(vec![(i as f64, l), (i as f64, h)], SKY.stroke_width(2)))
    }))?;
    chart.draw_series(DashedLineSeries::new(
        vec![(-0.5, c.target), (n as f64 - 0.5, c.target)],
        10,
        6,
        VERMILLION.stroke_width(2),
    ))?;
    let values: Vec<Option<f64>> = pts.iter().map(|p| finite(p.agreement)).collect();
    for run in runs(&values) {
        chart.draw_series(LineSeries::new(
            run.iter().map(|&(i, v)| (i as f64, v)),
            BLUE.stroke_width(2),
        ))?;
    }
    chart.draw_series(
        values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| Circle::new((i as f64, v), 5, BLUE.filled()))),
    )?;

    // Period and n under each tick, thinned so labels never overlap.
    let s = anchored(style(SMALL, &INK), HPos::Center, VPos::Top);
    let sn = anchored(style(SMALL, &GREY), HPos::Center, VPos::Top);
    let labels: Vec<String> = pts.iter().map(|p| label(&p.period, 12)).collect();
    let ns: Vec<String> = pts
        .iter()
        .map(|p| format!("n={}", short_count(p.n_reviewed)))
        .collect();
    let widest = labels
        .iter()
        .chain(&ns)
        .map(|t| text_width(root, t, &s))
        .max()
        .unwrap_or(0);
    let (x0, y0) = chart.backend_coord(&(-0.5, y_lo));
    let (x1, _) = chart.backend_coord(&(n as f64 - 0.5, y_lo));
    let step = label_step(n, x1 - x0, widest);
    for i in (0..n).rev().step_by(step) {
        let (px, _) = chart.backend_coord(&(i as f64, y_lo));
        root.draw(&Text::new(labels[i].clone(), (px, y0 + 8), s.clone()))?;
        root.draw(&Text::new(ns[i].clone(), (px, y0 + 32), sn.clone()))?;
    }
    Ok(())
}

/// Maximal runs of consecutive `Some` values, with their indices.
fn runs<T: Copy>(values: &[Option<T>]) -> Vec<Vec<(usize, T)>> {
    let mut out: Vec<Vec<(usize, T)>> = Vec::new();
    let mut current = Vec::new();
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) => current.push((i, *v)),
            None if !current.is_empty() => out.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// (2) Reliability diagram

fn draw_reliability<DB: DrawingBackend>(root: &Area<DB>, c: &ClassSection) -> Result<(), ChartError>
where
    DB::ErrorType: 'static,
{
    let top = header(root, &format!("Reliability: {}", c.action_class))?;
    let bins: Vec<_> = c
        .reliability
        .iter()
        .filter(|b| b.lower.is_finite() && b.upper.is_finite())
        .collect();
    if bins.iter().all(|b| b.n == 0) {
        return no_data(root, "No reviewed decisions yet");
    }
    let top = legend(
        root,
        20,
        top,
        &[
            (
                "observed agreement per confidence bin".to_string(),
                Mark::Dot(BLUE),
            ),
            ("perfect calibration".to_string(), Mark::Dashed(GREY)),
            ("reviewed decisions per bin".to_string(), Mark::Square(SKY)),
        ],
    )?;
    let body = root.margin(top, 0, 10, 30);
    let (_, h) = body.dim_in_pixel();
    let (upper, lower) = body.split_vertically(h.saturating_sub(150));
    let mut chart = ChartBuilder::on(&upper)
        .x_label_area_size(30)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..1f64, 0f64..1.02f64)?;
    let ticks = pct_ticks(0.0, 1.0);
    chart
        .configure_mesh()
        .x_labels(11)
        .y_labels(6)
        .x_label_formatter(&ticks)
        .y_label_formatter(&ticks)
        .label_style(style(SMALL, &INK))
        .light_line_style(RGBColor(242, 242, 242))
        .max_light_lines(1)
        .draw()?;
    chart.draw_series(DashedLineSeries::new(
        vec![(0.0, 0.0), (1.0, 1.0)],
        8,
        6,
        GREY.stroke_width(2),
    ))?;
    let points: Vec<(f64, f64)> = bins
        .iter()
        .filter_map(|b| finite(b.mean_confidence).zip(finite(b.observed)))
        .collect();
    chart.draw_series(LineSeries::new(
        points.iter().copied(),
        BLUE.stroke_width(2),
    ))?;
    chart.draw_series(points.iter().map(|&p| Circle::new(p, 6, BLUE.filled())))?;

    // Count strip, same x scale, bars over each bin's edges with the count above.
    let max_n = bins.iter().map(|b| b.n).max().unwrap_or(1).max(1) as f64;
    let mut strip = ChartBuilder::on(&lower)
        .margin_top(10)
        .x_label_area_size(56)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..1f64, 0f64..max_n * 1.35)?;
    strip
        .configure_mesh()
        .disable_mesh()
        .y_labels(0)
        .y_label_formatter(&|_| String::new())
        .x_labels(11)
        .x_label_formatter(&ticks)
        .x_desc("confidence")
        .label_style(style(SMALL, &INK))
        .axis_desc_style(style(SMALL, &INK))
        .draw()?;
    strip.draw_series(bins.iter().map(|b| {
        Rectangle::new(
            [(b.lower, 0.0), (b.upper, b.n as f64)],
            SKY.mix(0.8).filled(),
        )
    }))?;
    let s = anchored(style(SMALL, &INK), HPos::Center, VPos::Bottom);
    for b in &bins {
        let t = short_count(b.n);
        let (xa, _) = strip.backend_coord(&(b.lower, 0.0));
        let (xb, _) = strip.backend_coord(&(b.upper, 0.0));
        if text_width(root, &t, &s) as i32 <= (xb - xa) + 4 {
            let (px, py) = strip.backend_coord(&((b.lower + b.upper) / 2.0, b.n as f64));
            root.draw(&Text::new(t, (px, py - 3), s.clone()))?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// (3) Risk–coverage

fn draw_risk_coverage<DB: DrawingBackend>(
    root: &Area<DB>,
    c: &ClassSection,
) -> Result<(), ChartError>
where
    DB::ErrorType: 'static,
{
    let top = header(
        root,
        &format!(
            "Risk and coverage by confidence threshold: {}",
            c.action_class
        ),
    )?;
    let mut pts: Vec<(f64, f64, f64, bool)> = c
        .risk_coverage
        .iter()
        .filter_map(|p| {
            let risk = finite(p.risk)?;
            (p.coverage.is_finite() && p.threshold.is_finite()).then_some((
                p.coverage,
                risk,
                p.threshold,
                p.certified,
            ))
        })
        .collect();
    if pts.is_empty() {
        return no_data(root, "No thresholds evaluated");
    }
    // Sorted by coverage for display only, so the line runs left to right.
    pts.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.2.total_cmp(&a.2)));
    let gate = c
        .gate_threshold
        .and_then(|g| pts.iter().copied().find(|p| (p.2 - g).abs() < 1e-9));
    // The legend names only the marks drawn: a kind of point that no threshold has is left out.
    let mut items = Vec::new();
    if pts.iter().any(|p| p.3) {
        items.push(("certified threshold".to_string(), Mark::Dot(GREEN)));
    }
    if pts.iter().any(|p| !p.3) {
        items.push(("not certified".to_string(), Mark::Ring(GREY)));
    }
    items.push((
        format!("max risk {}", pct(c.max_risk, 1)),
        Mark::Dashed(VERMILLION),
    ));
    match gate {
        Some((cov, risk, thr, _)) => items.push((
            format!(
                "gate: confidence ≥ {thr:.2}, {} run unattended, risk {}",
                pct(cov, 0),
                pct(risk, 1)
            ),
            Mark::Ring(BLUE),
        )),
        // No gate is drawn: its threshold or its reason is a note, without a mark.
        None => items.push((
            match c.gate_threshold {
                Some(g) => format!("gate: confidence ≥ {g:.2} (not among the thresholds drawn)"),
                None if c.no_gate.is_empty() => "no gate recommended".to_string(),
                None => c.no_gate.clone(),
            },
            Mark::Text,
        )),
    }
    let top = legend(root, 20, top, &items)?;
    let (_, y_hi) = range(
        pts.iter()
            .map(|p| p.1)
            .chain(Some(c.max_risk * 1.5).filter(|v| v.is_finite())),
        0.0,
        1.0,
        0.002,
    );
    let body = root.margin(top, 0, 10, 30);
    let mut chart = ChartBuilder::on(&body)
        .x_label_area_size(62)
        .y_label_area_size(90)
        .build_cartesian_2d(0f64..1f64, 0f64..y_hi)?;
    let xt = pct_ticks(0.0, 1.0);
    let yt = pct_ticks(0.0, y_hi);
    chart
        .configure_mesh()
        .x_labels(11)
        .y_labels(6)
        .x_label_formatter(&xt)
        .y_label_formatter(&yt)
        .x_desc("coverage: share of decisions that would run without a human")
        .y_desc("disagreement rate")
        .label_style(style(SMALL, &INK))
        .axis_desc_style(style(SMALL, &INK))
        .light_line_style(RGBColor(242, 242, 242))
        .max_light_lines(1)
        .draw()?;
    if c.max_risk.is_finite() {
        chart.draw_series(DashedLineSeries::new(
            vec![(0.0, c.max_risk), (1.0, c.max_risk)],
            10,
            6,
            VERMILLION.stroke_width(2),
        ))?;
    }
    if let Some((cov, _, _, _)) = gate {
        chart.draw_series(DashedLineSeries::new(
            vec![(cov, 0.0), (cov, y_hi)],
            6,
            6,
            BLUE.stroke_width(1),
        ))?;
    }
    chart.draw_series(LineSeries::new(
        pts.iter().map(|p| (p.0, p.1.min(y_hi))),
        INK.stroke_width(1),
    ))?;
    chart.draw_series(pts.iter().map(|p| {
        let style = if p.3 {
            GREEN.filled()
        } else {
            GREY.stroke_width(2)
        };
        Circle::new((p.0, p.1.min(y_hi)), 5, style)
    }))?;
    if let Some((cov, risk, _, _)) = gate {
        chart.draw_series(std::iter::once(Circle::new(
            (cov, risk.min(y_hi)),
            11,
            BLUE.stroke_width(3),
        )))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// (4) Confidence distribution

fn draw_confidence<DB: DrawingBackend>(root: &Area<DB>, c: &ClassSection) -> Result<(), ChartError>
where
    DB::ErrorType: 'static,
{
    let psi = match finite(c.psi) {
        Some(p) => format!(" (PSI {p:.3})"),
        None => String::new(),
    };
    let top = header(
        root,
        &format!("Confidence distribution: {}{psi}", c.action_class),
    )?;
    let clean = |v: &[f64]| -> Vec<f64> {
        v.iter()
            .map(|x| if x.is_finite() { *x } else { 0.0 })
            .collect()
    };
    let (cur, base) = (clean(&c.confidence_current), clean(&c.confidence_baseline));
    let bins = cur.len().max(base.len());
    if bins == 0 || cur.iter().chain(&base).all(|v| *v <= 0.0) {
        return no_data(root, "No confidence distribution");
    }
    let top = legend(
        root,
        20,
        top,
        &[
            ("this period".to_string(), Mark::Line(BLUE)),
            ("baseline".to_string(), Mark::Line(ORANGE)),
        ],
    )?;
    let width = 1.0 / bins as f64;
    // Show from the first non-empty bin (rounded down to 0.05) to 1: confidence piles up near 1.
    let first = cur
        .iter()
        .chain(&base)
        .enumerate()
        .filter(|(_, v)| **v > 0.0)
        .map(|(i, _)| i % bins.max(1))
        .min()
        .unwrap_or(0);
    // The small epsilon keeps 0.60 / 0.05 = 11.999… from rounding down a whole step.
    let x_lo = ((first as f64 * width) / 0.05 + 1e-9).floor() * 0.05;
    let (_, y_hi) = range(cur.iter().chain(&base).copied(), 0.0, 1.0, 0.005);
    let body = root.margin(top, 0, 10, 30);
    let mut chart = ChartBuilder::on(&body)
        .x_label_area_size(62)
        .y_label_area_size(80)
        .build_cartesian_2d(x_lo..1f64, 0f64..y_hi)?;
    let xt = |v: &f64| format!("{v:.2}");
    let yt = pct_ticks(0.0, y_hi);
    chart
        .configure_mesh()
        .x_labels(11)
        .y_labels(6)
        .x_label_formatter(&xt)
        .y_label_formatter(&yt)
        .x_desc("confidence")
        .y_desc("share of decisions")
        .label_style(style(SMALL, &INK))
        .axis_desc_style(style(SMALL, &INK))
        .light_line_style(RGBColor(242, 242, 242))
        .max_light_lines(1)
        .draw()?;
    let steps = |v: &[f64]| -> Vec<(f64, f64)> {
        let mut out = Vec::with_capacity(v.len() * 2);
        for (i, s) in v.iter().enumerate() {
            out.push((i as f64 * width, *s));
            out.push(((i + 1) as f64 * width, *s));
        }
        out
    };
    if !base.is_empty() {
        chart.draw_series(LineSeries::new(steps(&base), ORANGE.stroke_width(3)))?;
    }
    if !cur.is_empty() {
        chart.draw_series(LineSeries::new(steps(&cur), BLUE.stroke_width(2)))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// (5) Readiness matrix

const MATRIX_LEFT: u32 = 300;
const MATRIX_TOP: u32 = 150;
const MATRIX_CELL_W: u32 = 68;
const MATRIX_CELL_H: u32 = 48;
const MATRIX_LIGHT_GREEN: RGBColor = RGBColor(150, 214, 196);
const MATRIX_LIGHT_ORANGE: RGBColor = RGBColor(245, 212, 140);
const MATRIX_EMPTY: RGBColor = RGBColor(238, 238, 238);

fn draw_matrix<DB: DrawingBackend>(
    root: &Area<DB>,
    periods: &[String],
    rows: &[MatrixRow],
) -> Result<(), ChartError>
where
    DB::ErrorType: 'static,
{
    header(root, "Readiness matrix: agreement by class and period")?;
    if periods.is_empty() || rows.is_empty() {
        return no_data(root, "No classes or periods to show");
    }
    legend(
        root,
        20,
        48,
        &[
            (
                "at or above target".to_string(),
                Mark::Square(MATRIX_LIGHT_GREEN),
            ),
            (
                "less than 2 points below".to_string(),
                Mark::Square(MATRIX_LIGHT_ORANGE),
            ),
            (
                "2 points or more below".to_string(),
                Mark::Square(VERMILLION),
            ),
            ("nothing reviewed".to_string(), Mark::Square(MATRIX_EMPTY)),
        ],
    )?;
    let (left, top) = (MATRIX_LEFT as i32, MATRIX_TOP as i32);
    let (cw, ch) = (MATRIX_CELL_W as i32, MATRIX_CELL_H as i32);
    let name_w = MATRIX_LEFT - 110;
    let head = anchored(style(SMALL, &INK), HPos::Center, VPos::Bottom);
    let note = anchored(style(SMALL, &GREY), HPos::Left, VPos::Bottom);
    root.draw(&Text::new(
        "agreement % / reviewed decisions (n)",
        (20, top - 36),
        note,
    ))?;
    root.draw(&Text::new(
        "class",
        (20, top - 8),
        anchored(bold(SMALL, &INK), HPos::Left, VPos::Bottom),
    ))?;
    root.draw(&Text::new("target", (left - 50, top - 8), head.clone()))?;
    let period_w = periods
        .iter()
        .map(|p| text_width(root, &label(p, 10), &head))
        .max()
        .unwrap_or(0);
    let step = label_step(periods.len(), cw * periods.len() as i32, period_w);
    for (j, p) in periods.iter().enumerate().rev().step_by(step) {
        let x = left + j as i32 * cw + cw / 2;
        let t = fit(root, p, &head, (cw * step as i32 - 6).max(10) as u32);
        root.draw(&Text::new(t, (x, top - 8), head.clone()))?;
    }
    let name_style = anchored(style(SMALL, &INK), HPos::Left, VPos::Center);
    let value = anchored(style(SMALL, &INK), HPos::Center, VPos::Center);
    let value_on_dark = anchored(bold(SMALL, &WHITE), HPos::Center, VPos::Center);
    let small = anchored(style(SMALL, &GREY), HPos::Center, VPos::Center);
    let small_on_dark = anchored(style(SMALL, &WHITE), HPos::Center, VPos::Center);
    for (i, row) in rows.iter().enumerate() {
        let y = top + i as i32 * ch;
        if i % 2 == 1 {
            root.draw(&Rectangle::new(
                [(10, y), (left - 2, y + ch)],
                RGBColor(247, 247, 247).filled(),
            ))?;
        }
        let name = fit(root, &row.action_class, &name_style, name_w);
        root.draw(&Text::new(name, (20, y + ch / 2), name_style.clone()))?;
        let target = if row.target.is_finite() {
            pct(row.target, 1)
        } else {
            "n/a".into()
        };
        root.draw(&Text::new(target, (left - 50, y + ch / 2), value.clone()))?;
        for j in 0..periods.len() {
            let x = left + j as i32 * cw;
            let cell = row
                .cells
                .get(j)
                .copied()
                .flatten()
                .filter(|v| v.is_finite());
            let n = row.n.get(j).copied().unwrap_or(0);
            let (fill, dark) = match cell {
                None => (MATRIX_EMPTY, false),
                Some(a) if a >= row.target => (MATRIX_LIGHT_GREEN, false),
                Some(a) if a > row.target - AMBER_BAND => (MATRIX_LIGHT_ORANGE, false),
                Some(_) => (VERMILLION, true),
            };
            root.draw(&Rectangle::new(
                [(x + 1, y + 1), (x + cw - 1, y + ch - 1)],
                fill.filled(),
            ))?;
            let (vs, ns) = if dark {
                (&value_on_dark, &small_on_dark)
            } else {
                (&value, &small)
            };
            match cell {
                Some(a) => {
                    root.draw(&Text::new(
                        format!("{:.1}", a * 100.0),
                        (x + cw / 2, y + 14),
                        vs.clone(),
                    ))?;
                    root.draw(&Text::new(short_count(n), (x + cw / 2, y + 34), ns.clone()))?;
                }
                None => {
                    let t = if n == 0 {
                        "–".to_string()
                    } else {
                        short_count(n)
                    };
                    root.draw(&Text::new(t, (x + cw / 2, y + ch / 2), ns.clone()))?;
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// (6) Manipulation timeline

const PANEL_H: u32 = 250;
const MAX_PANELS: usize = 6;

/// Classes with at least one flagged day, in order of first appearance.
fn flagged_classes(days: &[ManipulationDay]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for d in days.iter().filter(|d| d.flagged) {
        if !out.contains(&d.action_class.as_str()) {
            out.push(&d.action_class);
        }
    }
    out
}

fn draw_manipulation<DB: DrawingBackend>(
    root: &Area<DB>,
    days: &[ManipulationDay],
) -> Result<(), ChartError>
where
    DB::ErrorType: 'static,
{
    let top = header(
        root,
        "Manipulation timeline: daily volume of flagged classes",
    )?;
    let classes = flagged_classes(days);
    if classes.is_empty() {
        return no_data(root, "No manipulation signal flagged");
    }
    let mut items = vec![
        ("daily volume".to_string(), Mark::Square(SKY)),
        ("flagged day".to_string(), Mark::Square(VERMILLION)),
        ("trailing baseline".to_string(), Mark::Dashed(INK)),
    ];
    if classes.len() > MAX_PANELS {
        items.push((
            format!(
                "{} more flagged classes not shown",
                classes.len() - MAX_PANELS
            ),
            Mark::Square(WHITE),
        ));
    }
    let top = legend(root, 20, top, &items)?;
    let (w, h) = root.dim_in_pixel();
    let body = root.margin(top, 0, 0, 0);
    let panels = body.split_evenly((classes.len().min(MAX_PANELS), 1));
    let _ = (w, h);
    for (panel, class) in panels.iter().zip(&classes) {
        let series: Vec<&ManipulationDay> =
            days.iter().filter(|d| d.action_class == *class).collect();
        let n = series.len();
        let y_hi = series
            .iter()
            .map(|d| {
                (d.volume as f64).max(if d.baseline.is_finite() {
                    d.baseline
                } else {
                    0.0
                })
            })
            .fold(1.0f64, f64::max)
            * 1.1;
        let s = bold(SMALL, &INK);
        let name = fit(root, class, &s, w.saturating_sub(60));
        let mut chart = ChartBuilder::on(panel)
            .margin_right(50)
            .margin_left(10)
            .caption(name, s)
            .x_label_area_size(34)
            .y_label_area_size(80)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..y_hi)?;
        let yt = |v: &f64| short_count(v.round().max(0.0) as u64);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .x_label_formatter(&|_| String::new())
            .y_labels(4)
            .y_label_formatter(&yt)
            .y_desc("decisions per day")
            .axis_desc_style(style(SMALL, &INK))
            .label_style(style(SMALL, &INK))
            .light_line_style(RGBColor(242, 242, 242))
            .max_light_lines(1)
            .draw()?;
        chart.draw_series(series.iter().enumerate().map(|(i, d)| {
            let color = if d.flagged { VERMILLION } else { SKY };
            Rectangle::new(
                [(i as f64 - 0.4, 0.0), (i as f64 + 0.4, d.volume as f64)],
                color.filled(),
            )
        }))?;
        let base: Vec<Option<f64>> = series.iter().map(|d| finite(Some(d.baseline))).collect();
        for run in runs(&base) {
            chart.draw_series(DashedLineSeries::new(
                run.iter().map(|&(i, v)| (i as f64, v)).collect::<Vec<_>>(),
                6,
                4,
                INK.stroke_width(2),
            ))?;
        }
        let ls = anchored(style(SMALL, &INK), HPos::Center, VPos::Top);
        let labels: Vec<String> = series.iter().map(|d| label(&d.day, 10)).collect();
        let widest = labels
            .iter()
            .map(|t| text_width(root, t, &ls))
            .max()
            .unwrap_or(0);
        let (x0, y0) = chart.backend_coord(&(-0.5, 0.0));
        let (x1, _) = chart.backend_coord(&(n as f64 - 0.5, 0.0));
        let step = label_step(n, x1 - x0, widest);
        for i in (0..n).rev().step_by(step) {
            let (px, _) = chart.backend_coord(&(i as f64, 0.0));
            root.draw(&Text::new(labels[i].clone(), (px, y0 + 6), ls.clone()))?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// (7) Autonomy share by tier

/// Display order of tiers: the usual impact ladder first, then others alphabetically.
fn tier_rank(tier: &str) -> (usize, &str) {
    let known = ["low", "medium", "high", "critical"];
    (
        known
            .iter()
            .position(|k| k.eq_ignore_ascii_case(tier))
            .unwrap_or(known.len()),
        tier,
    )
}

/// Draws the autonomy chart (also used by the board report).
fn draw_autonomy<DB: DrawingBackend>(
    root: &Area<DB>,
    points: &[AutonomyPoint],
) -> Result<(), ChartError>
where
    DB::ErrorType: 'static,
{
    let top = header(root, "Share of decisions executed without prior approval")?;
    let pts: Vec<&AutonomyPoint> = points.iter().filter(|p| p.share.is_finite()).collect();
    if pts.is_empty() {
        return no_data(root, "No decisions yet");
    }
    let mut periods: Vec<&str> = pts.iter().map(|p| p.period.as_str()).collect();
    periods.sort_unstable();
    periods.dedup();
    let mut tiers: Vec<&str> = pts.iter().map(|p| p.tier.as_str()).collect();
    tiers.sort_by(|a, b| tier_rank(a).cmp(&tier_rank(b)));
    tiers.dedup();
    let hidden = tiers.len().saturating_sub(SERIES.len());
    tiers.truncate(SERIES.len());
    let series: Vec<Vec<Option<f64>>> = tiers
        .iter()
        .map(|tier| {
            periods
                .iter()
                .map(|p| {
                    pts.iter()
                        .find(|q| q.tier == *tier && q.period == *p)
                        .map(|q| q.share)
                })
                .collect()
        })
        .collect();
    let (y_lo, y_hi) = breathe(range(
        pts.iter().map(|p| p.share).chain([0.0]),
        0.0,
        1.0,
        0.02,
    ));
    // Where a tier coincides (within 1% of the axis) with tiers drawn after it, its points and
    // the segments between two such points are drawn wider, once per such tier, so that it
    // shows as a band around them instead of vanishing under them.
    let near = |a: Option<f64>, b: Option<f64>| matches!((a, b), (Some(x), Some(y)) if (x - y).abs() <= (y_hi - y_lo) * 0.01);
    let under: Vec<Vec<u32>> = (0..series.len())
        .map(|t| {
            (0..periods.len())
                .map(|i| {
                    series[t + 1..]
                        .iter()
                        .filter(|later| near(series[t][i], later[i]))
                        .count() as u32
                })
                .collect()
        })
        .collect();
    let mut items: Vec<(String, Mark)> = tiers
        .iter()
        .zip(SERIES)
        .map(|(t, c)| (format!("{} impact", label(t, 24)), Mark::Line(c)))
        .collect();
    if hidden > 0 {
        items.push((
            format!("{hidden} more tiers not shown"),
            Mark::Square(WHITE),
        ));
    }
    if under.iter().flatten().any(|&u| u > 0) {
        items.push((
            "overlapping lines drawn as bands".to_string(),
            Mark::Square(WHITE),
        ));
    }
    let top = legend(root, 20, top, &items)?;
    let n = periods.len();
    let body = root.margin(top, 0, 10, 30);
    let mut chart = ChartBuilder::on(&body)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), y_lo..y_hi)?;
    let yt = pct_ticks(0.0, y_hi);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .x_label_formatter(&|_| String::new())
        .y_labels(6)
        .y_label_formatter(&yt)
        .label_style(style(SMALL, &INK))
        .light_line_style(RGBColor(242, 242, 242))
        .max_light_lines(1)
        .draw()?;
    for ((values, color), under) in series.iter().zip(SERIES).zip(&under) {
        for run in runs(values) {
            // Consecutive segments of one width are drawn as one line.
            let width = |k: usize| 3 + 5 * under[run[k].0].min(under[run[k + 1].0]);
            let mut from = 0;
            for k in 0..run.len().saturating_sub(1) {
                if k + 2 == run.len() || width(k + 1) != width(k) {
                    chart.draw_series(LineSeries::new(
                        run[from..=k + 1].iter().map(|&(i, v)| (i as f64, v)),
                        color.stroke_width(width(k)),
                    ))?;
                    from = k + 1;
                }
            }
        }
        chart.draw_series(values.iter().enumerate().filter_map(|(i, v)| {
            let radius = 5 + 4 * under[i] as i32;
            v.map(|v| Circle::new((i as f64, v), radius, color.filled()))
        }))?;
    }
    let ls = anchored(style(SMALL, &INK), HPos::Center, VPos::Top);
    let labels: Vec<String> = periods.iter().map(|p| label(p, 12)).collect();
    let widest = labels
        .iter()
        .map(|t| text_width(root, t, &ls))
        .max()
        .unwrap_or(0);
    let (x0, y0) = chart.backend_coord(&(-0.5, y_lo));
    let (x1, _) = chart.backend_coord(&(n as f64 - 0.5, y_lo));
    let step = label_step(n, x1 - x0, widest);
    for i in (0..n).rev().step_by(step) {
        let (px, _) = chart.backend_coord(&(i as f64, y_lo));
        root.draw(&Text::new(labels[i].clone(), (px, y0 + 8), ls.clone()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_backend_escapes_text() {
        let c = ClassSection {
            action_class: "<script>alert(1)</script> & \"x\"".into(),
            target: 0.98,
            agreement: vec![AgreementPoint {
                period: "<b>".into(),
                n_reviewed: 3,
                agreement: Some(0.9),
                low: Some(0.8),
                high: Some(0.95),
            }],
            ..Default::default()
        };
        let svg = Chart::Agreement(&c).to_svg().unwrap().0;
        assert!(!svg.contains("<script"), "{svg}");
        assert!(!svg.contains("<b>"));
        assert!(svg.contains("&lt;script&gt;"));
    }

    #[test]
    fn runs_split_on_gaps() {
        let v = [Some(1), None, Some(2), Some(3), None];
        assert_eq!(runs(&v), vec![vec![(0, 1)], vec![(2, 2), (3, 3)]]);
    }

    #[test]
    fn ranges_are_never_empty() {
        assert_eq!(range([], 0.0, 1.0, 0.01), (0.0, 1.0));
        let (lo, hi) = range([1.0, 1.0], 0.0, 1.0, 0.01);
        assert!(lo < hi && hi <= 1.0);
        let (lo, hi) = range([f64::NAN, 0.5], 0.0, 1.0, 0.01);
        assert!(lo < 0.5 && hi > 0.5);
    }

    #[test]
    fn label_step_thins_crowded_labels() {
        assert_eq!(label_step(12, 1200, 60), 1);
        assert_eq!(label_step(90, 800, 90), 12);
    }

    #[test]
    fn short_counts() {
        assert_eq!(short_count(9999), "9,999");
        assert_eq!(short_count(12_345), "12.3k");
        assert_eq!(short_count(2_500_000), "2.5M");
    }
}
