//! `cargo xtask test`: every test of the workspace, with a closing line that counts them.
//! `cargo xtask bench`: throughput and latency of the service over HTTP against same-run baselines.

mod bench;
mod bench_identity;

/// The load generator shares the machine with the server: keep its allocations cheap.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask test [cargo test args…] | cargo xtask bench [--seconds N]");
            std::process::exit(2);
        }
    }
}

/// Runs `cargo test --workspace`, echoing its output, and ends with one line that counts the tests.
fn test(extra: &[String]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut child = Command::new(cargo)
        .args(["test", "--workspace", "--all-targets"])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run cargo test")?;
    let (mut passed, mut failed, mut ignored, mut suites) = (0u64, 0u64, 0u64, 0u64);
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = line?;
            println!("{line}");
            if let Some(rest) = line.strip_prefix("test result: ") {
                suites += 1;
                let count = |label: &str| -> u64 {
                    rest.split(';')
                        .find_map(|part| part.trim().strip_suffix(label).map(str::trim))
                        .map(|n| n.trim_start_matches("ok.").trim_start_matches("FAILED.").trim())
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0)
                };
                passed += count("passed");
                failed += count("failed");
                ignored += count("ignored");
            }
        }
    }
    let status = child.wait()?;
    println!("tests: {passed} passed, {failed} failed, {ignored} ignored in {suites} suites");
    if !status.success() || failed > 0 {
        bail!("tests failed");
    }
    Ok(())
}
