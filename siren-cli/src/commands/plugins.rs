//! `siren plugins`: every slot, name and summary.

use siren_core::registry;

/// The arguments of `siren plugins`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(json: bool) -> anyhow::Result<()> {
    let slots = registry::all_slots()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&slots)?);
        return Ok(());
    }
    let w = slots
        .iter()
        .flat_map(|s| s.plugins.iter().map(|p| p.name.len()))
        .max()
        .unwrap_or(4)
        .max(4);
    for s in &slots {
        println!("{} — {}", s.slot, s.summary);
        if s.plugins.is_empty() {
            println!("  (none linked)");
        }
        for p in &s.plugins {
            println!("  {:<w$}  {}", p.name, p.summary);
        }
        println!();
    }
    Ok(())
}
