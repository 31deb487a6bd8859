//! Prints the planted truth of the default simulation as JSON.
//!
//! `cargo run -p readiness-simulate --example truth`

use readiness_simulate::{SimConfig, Simulator};

fn main() {
    let truth = Simulator::new(SimConfig::default()).truth();
    println!(
        "{}",
        serde_json::to_string_pretty(&truth).expect("the truth serializes")
    );
}
