//! `readiness`: parse the command line, run the pipeline, turn errors into exit codes.

use std::process::ExitCode;

use clap::Parser;
use readiness::cli::{AnalyzeArgs, Cli, Command, Format, PolicyCommand};
use readiness::pipeline::{self, exit, RunError};
use readiness::{board, commands, generate};

/// mimalloc keeps freed pages for reuse: the large column buffers of a run are not handed back
/// to the kernel and zeroed again on every allocation (BENCHMARKS.md: "Profile at 10^7
/// decisions, fourth session" and "10^8 decisions, fifth session").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Before the first large allocation: every fault from here on is a 4 KiB page.
    readiness::small_pages();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::USAGE as u8 } else { 0 });
        }
    };
    if let Some(n) = cli.threads {
        // Read by polars' thread pool on first use and by `threads::workers`; outputs do not
        // depend on it.
        std::env::set_var("POLARS_MAX_THREADS", n.max(1).to_string());
    }
    match run(cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("readiness: error: {e}");
            if e.exit_code() == exit::TOO_MANY_REJECTED {
                // The commands that stop here print no reasons; `validate` prints them.
                eprintln!("readiness: `readiness validate` counts the rejected rows by reason");
            }
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
            let cfg = args.to_config(quiet)?;
            generate::ensure_sample(&cfg.input, quiet)?;
            let s = pipeline::run_analyze(&cfg)?;
            if !quiet {
                println!("{}", commands::analyze_summary(&s));
            }
            Ok(exit::OK)
        }
        Command::Validate(args) => {
            if !args.stats.is_empty() {
                return Err(RunError::Usage(
                    "validate checks raw inputs; --stats does not apply".into(),
                ));
            }
            let cfg = args.to_config()?;
            generate::ensure_sample(&cfg, quiet)?;
            let (text, code) = pipeline::run_validate(&cfg)?;
            print!("{text}");
            Ok(code)
        }
        Command::Aggregate(args) => {
            let input = args.input.to_config()?;
            match args.emit_sql {
                Some(engine) => {
                    let emitted = pipeline::emit_sql(&input, engine.into(), &args.out)?;
                    if !quiet {
                        for note in &emitted.unseen {
                            eprintln!("readiness: note: {note}");
                        }
                    }
                    print!("{}", emitted.sql);
                }
                None => {
                    generate::ensure_sample(&input, quiet)?;
                    let (out, n) = pipeline::run_aggregate(&input, &args.out, quiet)?;
                    if !quiet {
                        println!("wrote the statistics of {n} decisions to {}", out.display());
                    }
                }
            }
            Ok(exit::OK)
        }
        Command::Drift(args) => {
            let cfg = args.input.to_config()?;
            generate::ensure_sample(&cfg, quiet)?;
            let watch = pipeline::drift_watch(&cfg, quiet)?;
            pipeline::warn(&watch.warnings);
            match args.format {
                Format::Json => println!("{}", commands::drift_json(&watch)?),
                Format::Text => print!("{}", commands::drift_text(&watch)),
            }
            Ok(if !watch.flagged.is_empty() {
                exit::FLAGGED
            } else if !watch.unchecked.is_empty() {
                exit::UNCHECKED
            } else {
                exit::OK
            })
        }
        Command::Board(args) => {
            let input = args.input.to_config()?;
            generate::ensure_sample(&input, quiet)?;
            let (out, quarter) = board::run_board(&board::BoardConfig {
                input,
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
