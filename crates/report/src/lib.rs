//! Renderers for readiness: charts (SVG and PNG), `report.html`, `report.md` and the one-page
//! quarterly board report.
//!
//! The input is a fully computed [`model::ReportModel`] (or [`model::BoardModel`]); rendering
//! never computes a statistic. It formats numbers, sorts for display and scales axes, nothing else.
//! Outputs are deterministic: the same model gives byte-identical files (no clock, no random ids,
//! stable order, a PNG encoder that writes no timestamps).
//!
//! One module per format, as in hyperfine's `export/`:
//!
//! | module | output |
//! |---|---|
//! | [`charts`] | the seven charts, drawn on any plotters backend, to SVG text or PNG files |
//! | [`html`] | `report.html`, self-contained |
//! | [`markdown`] | `report.md` with PNG chart links |
//! | [`board`] | `board.html` / `board.md`, one printed page |
//! | [`table`] | the table model shared by HTML and Markdown |
//! | [`text`] | escaping (HTML, Markdown, chart labels) and number formatting |
//! | [`files`] | safe file names from class names |
//! | [`raster`] | the PNG backend (text placement fix) |
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! let model: readiness_report::model::ReportModel = Default::default();
//! let written = readiness_report::render_all(&model, std::path::Path::new("run/"))?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod board;
pub mod charts;
pub mod files;
pub mod html;
pub mod markdown;
pub mod model;
pub mod raster;
pub mod table;
pub mod text;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use board::{render_board_html, render_board_markdown};
pub use charts::{Chart, ChartError, Charts, ClassCharts, Svg};
pub use files::safe_file_stem;
pub use html::render_html;
pub use markdown::render_markdown;
pub use model::{BoardModel, ReportModel};

/// Folder of chart files inside the output directory.
pub const CHARTS_DIR: &str = "charts";

/// Writes `charts/<stem>.svg` and `charts/<stem>.png` for every chart (in [`Charts`] order, SVG
/// then PNG), then `report.html` and `report.md`, into `out_dir` (created if missing); returns the
/// written paths in that order.
pub fn render_all(model: &ReportModel, out_dir: &Path) -> io::Result<Vec<PathBuf>> {
    render_all_on(model, out_dir, 1)
}

/// [`render_all`] with the charts' files written on up to `threads` threads (the bytes do not
/// depend on it).
pub fn render_all_on(
    model: &ReportModel,
    out_dir: &Path,
    threads: usize,
) -> io::Result<Vec<PathBuf>> {
    let charts_dir = out_dir.join(CHARTS_DIR);
    fs::create_dir_all(&charts_dir)?;
    let plan = Charts::plan(model);
    let stems = Charts::file_stems(model);
    let svgs = plan.try_map(Chart::to_svg)?;
    let jobs: Vec<_> = plan.iter().zip(stems.iter()).zip(svgs.iter()).collect();
    // Worker `w` takes jobs w, w + threads, …; the results are put back in job order.
    let threads = threads.clamp(1, jobs.len().max(1));
    let done: Vec<Vec<io::Result<PathBuf>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|w| {
                let (jobs, charts_dir) = (&jobs, &charts_dir);
                scope.spawn(move || {
                    jobs.iter()
                        .skip(w)
                        .step_by(threads)
                        .map(|((chart, stem), svg)| write_chart(chart, svg, charts_dir, stem))
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let mut done: Vec<_> = done.into_iter().map(Vec::into_iter).collect();
    let mut written = Vec::new();
    for (k, ((_, stem), _)) in jobs.iter().enumerate() {
        let svg = done[k % threads]
            .next()
            .unwrap_or_else(|| Err(io::Error::other("a chart was not written")))?;
        written.push(svg);
        written.push(charts_dir.join(format!("{stem}.png")));
    }
    let html_path = out_dir.join("report.html");
    fs::write(&html_path, render_html(model, &svgs))?;
    written.push(html_path);
    let md_path = out_dir.join("report.md");
    let png_paths = stems.map(|s| format!("{CHARTS_DIR}/{s}.png"));
    fs::write(&md_path, render_markdown(model, &png_paths))?;
    written.push(md_path);
    Ok(written)
}

/// Writes `board.html`, `board.md` and the board chart (`charts/board_autonomy.svg`, `.png`)
/// into `out_dir`; returns the written paths (chart SVG, chart PNG, HTML, Markdown).
pub fn render_board(board: &BoardModel, out_dir: &Path) -> io::Result<Vec<PathBuf>> {
    let charts_dir = out_dir.join(CHARTS_DIR);
    fs::create_dir_all(&charts_dir)?;
    let chart = board::board_chart(board);
    let stem = "board_autonomy";
    let svg = chart.to_svg()?;
    let svg_path = write_chart(&chart, &svg, &charts_dir, stem)?;
    let html_path = out_dir.join("board.html");
    fs::write(&html_path, render_board_html(board, &svg))?;
    let md_path = out_dir.join("board.md");
    fs::write(
        &md_path,
        render_board_markdown(board, &format!("{CHARTS_DIR}/{stem}.png")),
    )?;
    Ok(vec![
        svg_path,
        charts_dir.join(format!("{stem}.png")),
        html_path,
        md_path,
    ])
}

/// Writes `<stem>.svg` and `<stem>.png`; returns the SVG path.
fn write_chart(chart: &Chart, svg: &Svg, dir: &Path, stem: &str) -> io::Result<PathBuf> {
    let svg_path = dir.join(format!("{stem}.svg"));
    fs::write(&svg_path, &svg.0)?;
    chart.write_png(&dir.join(format!("{stem}.png")))?;
    Ok(svg_path)
}
