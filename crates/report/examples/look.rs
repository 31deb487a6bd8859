//! Renders the sample model into a directory to look at: `cargo run -p readiness-report --example look -- /tmp/report-look`.

#[path = "../tests/common/mod.rs"]
mod common;

fn main() -> std::io::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/tmp/report-look".to_string());
    let dir = std::path::Path::new(&dir);
    for p in readiness_report::render_all(&common::sample_model(), dir)? {
        println!("{}", p.display());
    }
    for p in readiness_report::render_board(&common::board_model(), dir)? {
        println!("{}", p.display());
    }
    let empty = dir.join("empty");
    readiness_report::render_all(&Default::default(), &empty)?;
    Ok(())
}
