//! `readiness generate`: writes the simulator's history as Parquet in the input contract, one
//! hive partition per month (`decisions/month=2025-01/part-0.parquet`), plus `truth.json` with
//! the planted effects. Months are generated and written one at a time, so memory stays bounded
//! whatever the size.

use std::fs::{self, File};
use std::io;
use std::path::Path;

use polars::prelude::*;
use readiness_simulate::{decision_id, target_name, SimConfig, Simulator, CRITICALITY, VERDICTS};

use crate::cli::{SAMPLE_DECISIONS, SAMPLE_VERDICTS};
use crate::pipeline::InputConfig;
use crate::pipeline::{Progress, RunError};

/// Where the bundled sample lives and how it is made: `readiness generate` with its defaults.
pub const SAMPLE_DIR: &str = "data/sample";

/// Makes the bundled sample on first use: when the inputs are the sample's default paths and the
/// sample is not there yet, generate it (seed 7, 100,000 decisions, 2025). Other inputs are left
/// alone.
pub fn ensure_sample(input: &InputConfig, quiet: bool) -> Result<(), RunError> {
    let is_sample = input.decisions == [SAMPLE_DECISIONS] && input.verdicts == [SAMPLE_VERDICTS];
    let dir = Path::new(SAMPLE_DIR);
    if !is_sample || (dir.join("decisions").is_dir() && dir.join("verdicts").is_dir()) {
        return Ok(());
    }
    if !quiet {
        eprintln!("readiness: generating the bundled sample into {SAMPLE_DIR} (first run only)");
    }
    run(&sample_config(), dir, quiet)?;
    Ok(())
}

/// `readiness generate` with progress.
pub fn run(cfg: &SimConfig, out: &Path, quiet: bool) -> Result<Generated, RunError> {
    let progress = Progress::new(quiet);
    Ok(generate(cfg, out, |m, n| {
        progress.stage(format!("generating month {} of {n}", m + 1))
    })?)
}

/// The bundled sample's configuration: the simulator's defaults (seed 7, 2025, every planted
/// effect) at 100,000 decisions.
pub fn sample_config() -> SimConfig {
    SimConfig {
        decisions: 100_000,
        ..SimConfig::default()
    }
}

/// Counts written.
#[derive(Debug, Default)]
pub struct Generated {
    pub decisions: u64,
    pub verdicts: u64,
    pub files: usize,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{}: {e}", path.display()))
}

fn write(path: &Path, df: &mut DataFrame) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
    }
    let file = File::create(path).map_err(|e| io_err(path, e))?;
    ParquetWriter::new(file)
        .finish(df)
        .map_err(|e| io_err(path, e))?;
    Ok(())
}

/// Generates the history into `out` (replacing `decisions/`, `verdicts/` and `truth.json`).
pub fn generate(
    cfg: &SimConfig,
    out: &Path,
    mut progress: impl FnMut(usize, usize),
) -> io::Result<Generated> {
    if !(1..=12).contains(&cfg.start_month) || cfg.months == 0 {
        return Err(io::Error::other(
            "--start must be YYYY-MM and --months at least 1",
        ));
    }
    let sim = Simulator::new(cfg.clone());
    let generated_before = out.join("truth.json").is_file();
    for sub in ["decisions", "verdicts"] {
        let d = out.join(sub);
        if d.exists() && !generated_before {
            return Err(io_err(
                &d,
                "exists but was not written by `readiness generate` (no truth.json next to it); refusing to replace it: choose another --out",
            ));
        }
        if d.exists() {
            fs::remove_dir_all(&d).map_err(|e| io_err(&d, e))?;
        }
    }
    let dict = sim.dictionaries();
    let mut done = Generated::default();
    let pe = |e: PolarsError| io::Error::other(e.to_string());
    for m in 0..sim.months() {
        progress(m, sim.months());
        let (d, v) = sim.month(m);
        let (y, mo) = sim.month_date(m);
        let part = format!("month={y:04}-{mo:02}");
        let n = d.len();
        let ids: Vec<String> = (0..n as u64)
            .map(|i| decision_id(d.first_index + i))
            .collect();
        let classes: Vec<&str> = d
            .class
            .iter()
            .map(|&c| dict.classes[c as usize].as_str())
            .collect();
        let targets: Vec<String> = d
            .target
            .iter()
            .zip(&classes)
            .map(|(&t, c)| target_name(c, t))
            .collect();
        let mut techniques =
            ListStringChunkedBuilder::new("technique_ids".into(), n, d.technique_ids.len());
        for i in 0..n {
            techniques.append_values_iter(
                d.techniques(i)
                    .iter()
                    .map(|&t| dict.techniques[t as usize].as_str()),
            );
        }
        let mut decisions = DataFrame::new_infer_height(vec![
            Column::new("decision_id".into(), ids),
            Column::new("decided_at".into(), d.decided_at_us.clone())
                .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
                .map_err(pe)?,
            Column::new("action_class".into(), classes),
            Column::new("confidence".into(), d.confidence.clone()),
            Column::new(
                "model_version".into(),
                d.model_version
                    .iter()
                    .map(|&v| dict.model_versions[v as usize].as_str())
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "asset_criticality".into(),
                d.criticality
                    .iter()
                    .map(|&c| CRITICALITY[c as usize])
                    .collect::<Vec<_>>(),
            ),
            Column::new("privileged".into(), d.privileged.clone()),
            Column::new("target_entity".into(), targets),
            techniques.finish().into_column(),
            Column::new("executed".into(), d.executed.clone()),
        ])
        .map_err(pe)?;
        write(
            &out.join("decisions").join(&part).join("part-0.parquet"),
            &mut decisions,
        )?;
        let mut verdicts = DataFrame::new_infer_height(vec![
            Column::new(
                "decision_id".into(),
                v.decision_index
                    .iter()
                    .map(|&i| decision_id(i))
                    .collect::<Vec<_>>(),
            ),
            Column::new("reviewed_at".into(), v.reviewed_at_us.clone())
                .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
                .map_err(pe)?,
            Column::new(
                "analyst_id".into(),
                v.analyst
                    .iter()
                    .map(|&a| dict.analysts[a as usize].as_str())
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "verdict".into(),
                v.verdict
                    .iter()
                    .map(|&x| VERDICTS[x as usize])
                    .collect::<Vec<_>>(),
            ),
        ])
        .map_err(pe)?;
        write(
            &out.join("verdicts").join(&part).join("part-0.parquet"),
            &mut verdicts,
        )?;
        done.decisions += n as u64;
        done.verdicts += v.len() as u64;
        done.files += 2;
    }
    let mut truth =
        serde_json::to_vec_pretty(&sim.truth()).map_err(|e| io::Error::other(e.to_string()))?;
    truth.push(b'\n');
    fs::write(out.join("truth.json"), truth).map_err(|e| io_err(out, e))?;
    Ok(done)
}
