//! `readiness`: parse the command line, run the pipeline, turn errors into exit codes.

use std::process::ExitCode;

use clap::Parser;
use readiness::cli::{AnalyzeArgs, Cli, Command, Format, PolicyCommand};
use readiness::pipeline::{self, exit, RunError};
use readiness::{board, commands, generate};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::USAGE as u8 } else { 0 });
        }
    };
    if let Some(n) = cli.threads {
        // Read by polars' thread pool on first use; outputs do not depend on it.
        std::env::set_var("POLARS_MAX_THREADS", n.max(1).to_string());
    }
    match run(cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("readiness: error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

fn run(cli: Cli) -> Result<i32, RunError> {
    let quiet = cli.quiet;
    match cli
        .command
        .unwrap_or(Command::Analyze(AnalyzeArgs::sample()))
    {
        Command::Analyze(args) => {
            generate::ensure_sample(&args.input, quiet)?;
            let s = pipeline::run_analyze(&args.to_config(quiet))?;
            if !quiet {
                println!("{}", commands::analyze_summary(&s));
            }
            Ok(exit::OK)
        }
        Command::Validate(args) => {
            generate::ensure_sample(&args, quiet)?;
            let (text, code) = pipeline::run_validate(&args.to_config())?;
            print!("{text}");
            Ok(code)
        }
        Command::Drift(args) => {
            generate::ensure_sample(&args.input, quiet)?;
            let watch = pipeline::drift_watch(&args.input.to_config(), quiet)?;
            match args.format {
                Format::Json => println!("{}", commands::drift_json(&watch)?),
                Format::Text => print!("{}", commands::drift_text(&watch)),
            }
            Ok(if watch.flagged.is_empty() {
                exit::OK
            } else {
                exit::FLAGGED
            })
        }
        Command::Board(args) => {
            generate::ensure_sample(&args.input, quiet)?;
            let (out, quarter) = board::run_board(&board::BoardConfig {
                input: args.input.to_config(),
                quarter: args.quarter.clone(),
                out: args.out.clone(),
                quiet,
            })?;
            if !quiet {
                println!("wrote the {quarter} board report to {}", out.display());
            }
            Ok(exit::OK)
        }
        Command::Explain(args) => {
            print!("{}", commands::explain(&args.run, &args.class)?);
            Ok(exit::OK)
        }
        Command::Policy(PolicyCommand::Check { file }) => {
            let p = pipeline::load_policy(&file)?;
            print!("{}", p.policy.describe());
            println!("sha256 {}", p.sha256);
            Ok(exit::OK)
        }
        Command::Generate(args) => {
            let done = generate::run(&args.to_config()?, &args.out, quiet)?;
            if !quiet {
                println!(
                    "wrote {} decisions and {} verdict rows in {} files under {}",
                    done.decisions,
                    done.verdicts,
                    done.files,
                    args.out.display()
                );
            }
            Ok(exit::OK)
        }
    }
}
