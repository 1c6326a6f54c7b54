//! The `siren` command line. Third parties build their own binary with their plugins linked:
//!
//! ```ignore
//! use my_plugin as _;
//! fn main() { siren_cli::main() }
//! ```
#![warn(missing_docs)]

mod commands;
pub mod dist;
pub mod serve;

pub use commands::generate::{Options as GenerateOptions, run as generate};

use clap::{Parser, Subcommand};
// Every built-in plugin, linked into every binary built on this crate.
use siren_plugins as _;

/// SIREN-rs: LLM rating prediction with long-term interest sketches and internalized reasoning.
#[derive(Debug, Parser)]
#[command(name = "siren", version, about, long_about = None)]
pub struct Cli {
    /// More log output (-v debug, -vv trace). `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List every slot, plugin name and one-line summary.
    Plugins(commands::plugins::Args),
    /// Probe every compiled-in compute device and say which work here.
    Devices,
    /// Generate text from a decoder (GGUF file or HF folder); greedy unless --temperature > 0.
    Generate(commands::generate::Args),
    /// Build interest sketches: encode items, cluster into topics, name them, sketch every user
    /// (writes runs/<name>/topics.json, sketches.jsonl, prompts.sample.txt, metrics.json).
    Sketch(commands::sketch::Args),
    /// Stage 1: train the [model] with the trainer named in [trainer] (ao-sft, grpo) on
    /// training prompts; checkpoints, metrics.jsonl and training.svg go to
    /// runs/<name>/stage1/, the trained adapter to runs/<name>/stage1/policy/.
    Train(commands::train::Args),
    /// Run the pipeline: the stages of [pipeline] (default: baselines, sketch, train,
    /// internalize, eval, as configured), reusing every finished stage whose settings did not
    /// change, then write runs/<name>/report.md with the metrics table and charts.
    Run(commands::run::Args),
    /// Run the pipeline once per point of a grid and write one table and chart
    /// (runs/<name>-sweep-<keys>/report.md).
    Sweep(commands::sweep::Args),
    /// Paired bootstrap comparison of evaluated rows by user: B − A of MAE and RMSE with a
    /// 95% interval, for each pair A B given. A row is FILE.jsonl:DECODER, a file `siren eval`
    /// wrote (runs/<name>/eval/<method>-ao.jsonl or <method>-cot.jsonl) and argmax, expected,
    /// median or sampled.
    Paired(commands::paired::Args),
    /// Run the pipeline once per backbone and write one side-by-side table and chart
    /// (runs/<name>-compare/report.md).
    Compare(commands::sweep::CompareArgs),
    /// Predict ratings for (user, item) pairs with the run's trained weights, one forward pass
    /// each (answer-only); input JSONL `{"user": ID, "item": ID}`, output JSONL with the rating
    /// and its distribution (default runs/<name>/predictions.jsonl).
    Predict(commands::predict::Args),
    /// Serve the model over HTTP: POST /v1/predict, POST /v1/rank, GET /healthz, GET /readyz,
    /// GET /metrics
    /// (dynamic batching, per-user prefix cache, bounded queue; settings in [serve]).
    Serve(serve::Args),
    /// Rank candidates with the run's weights: `--input users.jsonl` (one `{"user" | "history",
    /// "candidates", "k"}` per line; without candidates the retriever proposes them) to JSONL,
    /// or `--evaluate`: the candidate-reranking evaluation (Recall@K, nDCG@K next to the
    /// retriever's and a random order; writes runs/<name>/rank.md).
    Rank(commands::rank::Args),
    /// Stage 2: harvest the stage-1 model's CoT on training prompts (kept where the answer
    /// equals the label, with the teacher's hidden states at <answer>), then train fresh
    /// adapters with the internalizer in [internalizer] (default hidden-align) so that
    /// answer-only decoding matches; everything goes to runs/<name>/stage2/, the adapters to
    /// runs/<name>/stage2/<internalizer>-<hash>/policy/.
    Internalize(commands::internalize::Args),
    /// Evaluate the decoder with reasoning (CoT, greedy) and answer-only decoding next to the
    /// baselines, on [eval] split (or a sample of [eval] sample rows); rows go to metrics.json.
    Eval(commands::eval::Args),
    /// Fit the configured rating baselines and evaluate them (writes runs/<name>/metrics.json).
    Baselines(commands::baselines::Args),
}

/// `--calibration`: whether the model's calibration is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CalibrationArg {
    /// The raw distributions.
    None,
    /// The model's calibration, when it has one.
    Model,
}

/// `set` with `--calibration` as the `[eval] calibration` override it stands for.
fn with_calibration(mut set: Vec<String>, c: Option<CalibrationArg>) -> Vec<String> {
    if let Some(c) = c {
        let v = match c {
            CalibrationArg::None => "none",
            CalibrationArg::Model => "model",
        };
        set.push(format!("eval.calibration=\"{v}\""));
    }
    set
}

/// Parses the command line, runs the command, and exits with status 1 and a clear message on
/// error.
pub fn main() {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    if let Err(e) = run(cli) {
        let mut shown = e.to_string();
        eprintln!("error: {shown}");
        // Print causes that the messages above do not already spell out.
        for cause in e.chain().skip(1) {
            let text = cause.to_string();
            if !shown.contains(&text) {
                eprintln!("  caused by: {text}");
                shown.push_str(&text);
            }
        }
        std::process::exit(1);
    }
}

/// Logs to stderr at `info` (`debug` with 1, `trace` with 2 or more).
pub fn init_logging(verbose: u8) {
    // cubecl logs each failed GPU probe of `device = "auto"` as a warning; the device
    // module already reports why a device was passed over (`siren devices`, -v).
    let default = match verbose {
        0 => "info,cubecl_common=error",
        1 => "debug,cubecl_common=error",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

/// Parses `args` (the first is the program name) and runs the command, without exiting.
pub fn run_args<I, T>(args: I) -> anyhow::Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    run(Cli::try_parse_from(args)?)
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    siren_core::registry::check_all()?;
    // Under torchrun, the commands that split their work across ranks join the job first.
    if matches!(
        cli.command,
        Command::Train(_)
            | Command::Internalize(_)
            | Command::Run(_)
            | Command::Eval(_)
            | Command::Predict(_)
            | Command::Rank(_)
    ) {
        dist::join()?;
    } else {
        // The others would repeat all their work on every rank and write the same files.
        dist::refuse_ranks()?;
    }
    match cli.command {
        Command::Plugins(commands::plugins::Args { json }) => commands::plugins::run(json),
        Command::Devices => commands::devices::run(),
        Command::Generate(commands::generate::Args {
            model,
            backbone,
            device,
            prompt,
            chat,
            system,
            max_new_tokens,
            temperature,
            top_k,
            top_p,
            seed,
            stop,
            adapter,
            dtype,
        }) => commands::generate::run(&commands::generate::Options {
            model: &model,
            backbone: backbone.as_deref(),
            device: &device,
            prompt: &prompt,
            system: system.as_deref(),
            chat,
            max_new_tokens,
            temperature,
            top_k,
            top_p,
            seed,
            stop: &stop,
            adapter: adapter.as_deref(),
            dtype: &dtype,
        })
        .map(|_| ()),
        Command::Sketch(commands::sketch::Args { config, set }) => {
            commands::sketch::run(&config, &set).map(|_| ())
        }
        Command::Train(commands::train::Args {
            config,
            set,
            resume,
        }) => commands::train::run(&config, &set, resume).map(|_| ()),
        Command::Internalize(commands::internalize::Args {
            config,
            set,
            resume,
        }) => commands::internalize::run(&config, &set, resume).map(|_| ()),
        Command::Predict(commands::predict::Args {
            config,
            input,
            output,
            stage,
            calibration,
            set,
        }) => {
            let set = with_calibration(set, calibration);
            commands::predict::run(&config, &set, &input, output, stage).map(|_| ())
        }
        Command::Serve(serve::Args {
            config,
            addr,
            stage,
            adapter,
            calibration,
            set,
        }) => serve::run(&serve::Options {
            config,
            overrides: with_calibration(set, calibration),
            weights: serve::weights(stage, adapter.as_deref()),
            addr,
        }),
        Command::Rank(commands::rank::Args {
            config,
            input,
            output,
            evaluate,
            stage,
            calibration,
            set,
        }) => commands::rank::run(
            &config,
            &with_calibration(set, calibration),
            input.as_deref(),
            output,
            evaluate,
            serve::weights(stage, None),
        ),
        Command::Run(commands::run::Args { config, set }) => {
            commands::run::run(&config, &set).map(|_| ())
        }
        Command::Sweep(commands::sweep::Args { config, grid, set }) => {
            commands::sweep::sweep(&config, &set, &grid).map(|_| ())
        }
        Command::Paired(commands::paired::Args {
            rows,
            resamples,
            seed,
        }) => commands::paired::run(&rows, resamples, seed).map(|_| ()),
        Command::Compare(commands::sweep::CompareArgs {
            config,
            backbones,
            set,
        }) => commands::sweep::compare(&config, &set, &backbones).map(|_| ()),
        Command::Eval(commands::eval::Args {
            config,
            set,
            calibration,
            base,
            adapter,
            stage,
            no_cot,
            no_ao,
        }) => commands::eval::run(
            &config,
            &with_calibration(set, calibration),
            base,
            adapter,
            stage,
            siren_core::stages::eval::Modes {
                cot: !no_cot,
                ao: !no_ao,
            },
        )
        .map(|_| ()),
        Command::Baselines(commands::baselines::Args { config, set }) => {
            commands::baselines::run(&config, &set).map(|_| ())
        }
    }
}
