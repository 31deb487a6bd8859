//! Prints what a simulation contains: per class and model version, decisions, mean confidence
//! and agreement (final verdict = latest review), then the generation time.
//!
//! `cargo run --release -p readiness-simulate --example summary -- [decisions] [seed]`

use std::collections::BTreeMap;
use std::time::Instant;

use readiness_simulate::{SimConfig, Simulator, APPROVE, TIMEOUT};

fn main() {
    let mut args = std::env::args().skip(1);
    let decisions = args
        .next()
        .map_or(200_000, |a| a.parse().expect("decisions: an integer"));
    let seed = args
        .next()
        .map_or(7, |a| a.parse().expect("seed: an integer"));
    let sim = Simulator::new(SimConfig {
        seed,
        decisions,
        ..SimConfig::default()
    });
    let dict = sim.dictionaries().clone();
    // (class, version) -> (decisions, sum confidence, reviewed, approved)
    let mut cells: BTreeMap<(String, String), (u64, f64, u64, u64)> = BTreeMap::new();
    let start = Instant::now();
    let (mut n_decisions, mut n_verdicts) = (0usize, 0usize);
    for m in 0..sim.months() {
        let (d, v) = sim.month(m);
        n_decisions += d.len();
        n_verdicts += v.len();
        let mut last = vec![(i64::MIN, u8::MAX); d.len()];
        for i in 0..v.len() {
            let row = (v.decision_index[i] - d.first_index) as usize;
            if v.reviewed_at_us[i] > last[row].0 {
                last[row] = (v.reviewed_at_us[i], v.verdict[i]);
            }
        }
        for (i, &(_, verdict)) in last.iter().enumerate() {
            let key = (
                dict.classes[usize::from(d.class[i])].clone(),
                dict.model_versions[usize::from(d.model_version[i])].clone(),
            );
            let cell = cells.entry(key).or_default();
            cell.0 += 1;
            cell.1 += d.confidence[i];
            if verdict != u8::MAX && verdict != TIMEOUT {
                cell.2 += 1;
                cell.3 += u64::from(verdict == APPROVE);
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{:<27} {:>3} {:>9} {:>7} {:>9} {:>7}",
        "class", "ver", "decisions", "conf", "reviewed", "agree"
    );
    for ((class, version), (n, conf, reviewed, approved)) in &cells {
        println!(
            "{class:<27} {version:>3} {n:>9} {:>7.4} {reviewed:>9} {:>7.4}",
            conf / *n as f64,
            *approved as f64 / *reviewed as f64
        );
    }
    println!("{n_decisions} decisions, {n_verdicts} verdict rows, generated and summarised in {secs:.2} s");
}
