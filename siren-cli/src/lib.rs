//! The `siren` command line. Third parties build their own binary with their plugins linked:
//!
//! ```ignore
//! use my_plugin as _;
//! fn main() { siren_cli::main() }
//! ```
#![warn(missing_docs)]

mod commands;
pub mod serve;

pub use commands::generate::{Options as GenerateOptions, run as generate};

use std::path::PathBuf;

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
    Plugins {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Probe every compiled-in compute device and say which work here.
    Devices,
    /// Measure the engine on one device against transformers' reference outputs for a model
    /// folder that `scripts/device-check.sh` prepares: parity, answer-only latency, CoT
    /// tokens/s, one GRPO step, one hidden-align step (one JSON object).
    DeviceCheck {
        /// The prepared folder: config.json, model.safetensors, inputs.safetensors, plan.json.
        #[arg(long)]
        model: PathBuf,
        /// Compute device: tch-cpu, tch-cuda:N, flex, wgpu, auto.
        #[arg(long, default_value = "auto")]
        device: String,
        /// Phases, comma-separated: parity, speed, grpo, align.
        #[arg(long, value_delimiter = ',', default_value = "parity,speed,grpo,align")]
        only: Vec<String>,
        /// Write the JSON to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Generate text from a decoder (GGUF file or HF folder); greedy unless --temperature > 0.
    Generate {
        /// A `.gguf` file or a HF model folder (config.json, tokenizer.json, *.safetensors).
        #[arg(long)]
        model: PathBuf,
        /// Backbone kind for HF folders (default: the config's `model_type`).
        #[arg(long)]
        backbone: Option<String>,
        /// Compute device: auto, flex, wgpu, tch-cpu, tch-cuda:N.
        #[arg(long, default_value = "auto")]
        device: String,
        /// The prompt.
        #[arg(long)]
        prompt: String,
        /// Wrap the prompt in the model's chat template as a user message.
        #[arg(long)]
        chat: bool,
        /// System message (with --chat).
        #[arg(long)]
        system: Option<String>,
        /// Maximum new tokens.
        #[arg(long, default_value_t = 64)]
        max_new_tokens: usize,
        /// Sampling temperature (0 = greedy).
        #[arg(long, default_value_t = 0.0)]
        temperature: f32,
        /// Sample from the k most likely tokens only (0 = all).
        #[arg(long, default_value_t = 0)]
        top_k: usize,
        /// Nucleus sampling mass (1 = off).
        #[arg(long, default_value_t = 1.0)]
        top_p: f32,
        /// Sampler seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Stop when the output contains this string (repeatable).
        #[arg(long = "stop")]
        stop: Vec<String>,
        /// A PEFT LoRA adapter folder to apply (adapter_config.json + adapter_model.safetensors).
        #[arg(long)]
        adapter: Option<PathBuf>,
        /// Float type of the weights and activations: f32, bf16 or f16 (where the device
        /// computes in it).
        #[arg(long, default_value = "f32")]
        dtype: String,
    },
    /// Build interest sketches: encode items, cluster into topics, name them, sketch every user
    /// (writes runs/<name>/topics.json, sketches.jsonl, prompts.sample.txt, metrics.json).
    Sketch {
        /// The run config (TOML).
        config: PathBuf,
        /// Override a config key: `--set clusterer.kind=hnsw` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Stage 1: train the [model] with the trainer named in [trainer] (ao-sft, grpo) on
    /// training prompts; checkpoints, metrics.jsonl and training.svg go to
    /// runs/<name>/stage1/, the trained adapter to runs/<name>/stage1/policy/.
    Train {
        /// The run config (TOML).
        config: PathBuf,
        /// Override a config key: `--set training.lr=1e-5` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Continue from the newest checkpoint of this run.
        #[arg(long)]
        resume: bool,
    },
    /// Run the pipeline: the stages of [pipeline] (default: baselines, sketch, train,
    /// internalize, eval, as configured), reusing every finished stage whose settings did not
    /// change, then write runs/<name>/report.md with the metrics table and charts.
    Run {
        /// The run config (TOML).
        config: PathBuf,
        /// Override a config key: `--set internalizer.kind=ce` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Run the pipeline once per point of a grid and write one table and chart
    /// (runs/<name>-sweep-<keys>/report.md).
    Sweep {
        /// The run config (TOML).
        config: PathBuf,
        /// A swept key and its values: `--grid alignment.kind=cosine,mae,mse` (repeatable;
        /// several make a cartesian product). Default: the config's [sweep] grid.
        #[arg(long = "grid", value_name = "KEY=V1,V2")]
        grid: Vec<String>,
        /// Override a config key for every point (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Paired bootstrap comparison of evaluated rows by user: B − A of MAE and RMSE with a
    /// 95% interval, for each pair A B given. A row is FILE.jsonl:DECODER, a file `siren eval`
    /// wrote (runs/<name>/eval/<method>-ao.jsonl or <method>-cot.jsonl) and argmax, expected,
    /// median or sampled.
    Paired {
        /// Rows in pairs: A B [C D ...].
        #[arg(required = true, value_name = "FILE.jsonl:DECODER")]
        rows: Vec<String>,
        /// Bootstrap resamples.
        #[arg(long, default_value_t = 2000)]
        resamples: usize,
        /// Seed of the resampling.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Run the pipeline once per backbone and write one side-by-side table and chart
    /// (runs/<name>-compare/report.md).
    Compare {
        /// The run config (TOML).
        config: PathBuf,
        /// Backbones, comma-separated: PATH (HF folder or GGUF file) or PATH@KIND.
        #[arg(long, value_delimiter = ',', required = true)]
        backbones: Vec<String>,
        /// Override a config key for every backbone (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Predict ratings for (user, item) pairs with the run's trained weights, one forward pass
    /// each (answer-only); input JSONL `{"user": ID, "item": ID}`, output JSONL with the rating
    /// and its distribution (default runs/<name>/predictions.jsonl).
    Predict {
        /// The run config (TOML).
        config: PathBuf,
        /// JSONL file of pairs.
        #[arg(long)]
        input: PathBuf,
        /// Where to write the predictions.
        #[arg(long)]
        output: Option<PathBuf>,
        /// Use the weights of stage 1 or 2 (default: the newest the run has).
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=2))]
        stage: Option<u8>,
        /// The model's calibration (`[model] calibration`) on the distributions: `model`
        /// (default, when the model has one) or `none` (sets `[eval] calibration`).
        #[arg(long, value_enum)]
        calibration: Option<CalibrationArg>,
        /// Override a config key (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Serve the model over HTTP: POST /v1/predict, POST /v1/rank, GET /healthz, GET /readyz,
    /// GET /metrics
    /// (dynamic batching, per-user prefix cache, bounded queue; settings in [serve]).
    Serve {
        /// The run config (TOML).
        config: PathBuf,
        /// Listen here (default [serve] addr, 127.0.0.1:8080; port 0 picks a free one).
        #[arg(long)]
        addr: Option<String>,
        /// Use the weights of stage 1 or 2 (default: the newest the run has).
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=2))]
        stage: Option<u8>,
        /// Serve this PEFT adapter folder over the base model.
        #[arg(long)]
        adapter: Option<PathBuf>,
        /// The model's calibration (`[model] calibration`) on the distributions: `model`
        /// (default, when the model has one) or `none` (sets `[eval] calibration`).
        #[arg(long, value_enum)]
        calibration: Option<CalibrationArg>,
        /// Override a config key: `--set serve.max_batch=16` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Rank candidates with the run's weights: `--input users.jsonl` (one `{"user" | "history",
    /// "candidates", "k"}` per line; without candidates the retriever proposes them) to JSONL,
    /// or `--evaluate`: the candidate-reranking evaluation (Recall@K, nDCG@K next to the
    /// retriever's and a random order; writes runs/<name>/rank.md).
    Rank {
        /// The run config (TOML).
        config: PathBuf,
        /// JSONL file of ranking requests.
        #[arg(
            long,
            conflicts_with = "evaluate",
            required_unless_present = "evaluate"
        )]
        input: Option<PathBuf>,
        /// Where to write the rankings (default runs/<name>/rankings.jsonl).
        #[arg(long)]
        output: Option<PathBuf>,
        /// Run the reranking evaluation on [eval] split ([rank] settings).
        #[arg(long)]
        evaluate: bool,
        /// Use the weights of stage 1 or 2 (default: the newest the run has).
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=2))]
        stage: Option<u8>,
        /// The model's calibration (`[model] calibration`) on the distributions: `model`
        /// (default, when the model has one) or `none` (sets `[eval] calibration`).
        #[arg(long, value_enum)]
        calibration: Option<CalibrationArg>,
        /// Override a config key: `--set rank.sample=300` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Stage 2: harvest the stage-1 model's CoT on training prompts (kept where the answer
    /// equals the label, with the teacher's hidden states at <answer>), then train fresh
    /// adapters with the internalizer in [internalizer] (default hidden-align) so that
    /// answer-only decoding matches; everything goes to runs/<name>/stage2/, the adapters to
    /// runs/<name>/stage2/<internalizer>-<hash>/policy/.
    Internalize {
        /// The run config (TOML).
        config: PathBuf,
        /// Override a config key: `--set alignment.kind=mse` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Continue the training from the newest checkpoint (a harvest always resumes).
        #[arg(long)]
        resume: bool,
    },
    /// Evaluate the decoder with reasoning (CoT, greedy) and answer-only decoding next to the
    /// baselines, on [eval] split (or a sample of [eval] sample rows); rows go to metrics.json.
    Eval {
        /// The run config (TOML).
        config: PathBuf,
        /// Override a config key: `--set eval.sample=200` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// The model's calibration (`[model] calibration`) on the distributions: `model`
        /// (default, when the model has one) or `none` (sets `[eval] calibration`).
        #[arg(long, value_enum)]
        calibration: Option<CalibrationArg>,
        /// Evaluate the base model even when the run has trained weights.
        #[arg(long)]
        base: bool,
        /// Evaluate with this PEFT adapter folder.
        #[arg(long)]
        adapter: Option<PathBuf>,
        /// Evaluate the weights of stage 1 or 2 of the run (default: the newest it has).
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=2))]
        stage: Option<u8>,
        /// Skip the reasoning (CoT) rows.
        #[arg(long)]
        no_cot: bool,
        /// Skip the answer-only rows.
        #[arg(long)]
        no_ao: bool,
    },
    /// Fit the configured rating baselines and evaluate them (writes runs/<name>/metrics.json).
    Baselines {
        /// The run config (TOML).
        config: PathBuf,
        /// Override a config key: `--set baselines.3.params.factors=64` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
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

fn init_logging(verbose: u8) {
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
    match cli.command {
        Command::Plugins { json } => commands::plugins::run(json),
        Command::Devices => commands::devices::run(),
        Command::DeviceCheck {
            model,
            device,
            only,
            out,
        } => commands::device_check::run(&commands::device_check::Options {
            model,
            device,
            only,
            out,
        }),
        Command::Generate {
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
        } => commands::generate::run(&commands::generate::Options {
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
        Command::Sketch { config, set } => commands::sketch::run(&config, &set).map(|_| ()),
        Command::Train {
            config,
            set,
            resume,
        } => commands::train::run(&config, &set, resume).map(|_| ()),
        Command::Internalize {
            config,
            set,
            resume,
        } => commands::internalize::run(&config, &set, resume).map(|_| ()),
        Command::Predict {
            config,
            input,
            output,
            stage,
            calibration,
            set,
        } => {
            let set = with_calibration(set, calibration);
            commands::predict::run(&config, &set, &input, output, stage).map(|_| ())
        }
        Command::Serve {
            config,
            addr,
            stage,
            adapter,
            calibration,
            set,
        } => serve::run(&serve::Options {
            config,
            overrides: with_calibration(set, calibration),
            weights: serve::weights(stage, adapter.as_deref()),
            addr,
        }),
        Command::Rank {
            config,
            input,
            output,
            evaluate,
            stage,
            calibration,
            set,
        } => commands::rank::run(
            &config,
            &with_calibration(set, calibration),
            input.as_deref(),
            output,
            evaluate,
            serve::weights(stage, None),
        ),
        Command::Run { config, set } => commands::run::run(&config, &set).map(|_| ()),
        Command::Sweep { config, grid, set } => {
            commands::sweep::sweep(&config, &set, &grid).map(|_| ())
        }
        Command::Paired {
            rows,
            resamples,
            seed,
        } => commands::paired::run(&rows, resamples, seed).map(|_| ()),
        Command::Compare {
            config,
            backbones,
            set,
        } => commands::sweep::compare(&config, &set, &backbones).map(|_| ()),
        Command::Eval {
            config,
            set,
            calibration,
            base,
            adapter,
            stage,
            no_cot,
            no_ao,
        } => commands::eval::run(
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
        Command::Baselines { config, set } => commands::baselines::run(&config, &set).map(|_| ()),
    }
}
