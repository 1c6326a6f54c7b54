//! `device-check`: the SIREN-rs side of `scripts/device-check.sh` (see
//! [`siren_benchmarks::device_check`]).
//!
//! ```text
//! device-check --model DIR [--device auto] [--only parity,speed,grpo,align] [--out FILE]
//! ```

fn main() {
    if let Err(e) = siren_benchmarks::device_check::run_args(std::env::args_os()) {
        // `--help` and `--version` come back as clap errors that print themselves.
        if let Some(c) = e.downcast_ref::<clap::Error>() {
            c.exit();
        }
        eprintln!("device-check: error: {e:#}");
        std::process::exit(1);
    }
}
