//! `siren devices`: probe every compiled-in device.

use siren_core::registry;
use siren_core::traits::ComputeDevice;

pub fn run() -> anyhow::Result<()> {
    println!("compiled in: {}", siren_backends::compiled_in().join(", "));
    for name in siren_backends::all_names()? {
        let plugin = registry::build::<dyn ComputeDevice>(&name, &Default::default())?;
        let t = std::time::Instant::now();
        match plugin.open() {
            Ok(_) => println!(
                "  {name:<10} ok   ({}, {:.2}s)",
                plugin.label(),
                t.elapsed().as_secs_f64()
            ),
            Err(e) => println!("  {name:<10} no   ({e})"),
        }
    }
    for (name, why) in siren_backends::not_compiled_in() {
        println!("  {name:<10} no   (not in this build: {why})");
    }
    Ok(())
}
