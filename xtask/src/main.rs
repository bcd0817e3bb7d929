//! `cargo xtask test`: every test of the workspace (every feature on), with a closing line that counts them.
//! `cargo xtask bench`: throughput and latency of the service over HTTP against same-run baselines
//! (`crates/bench`, run optimised).
//! `cargo xtask fuzz`: the cargo-fuzz targets of `fuzz/`, one after another, for a set time each.
//! Its tests include the tidy rules of `tidy.rs` on the repository's files and the server's map
//! (`server_layers.rs`).

mod fuzz;
#[cfg(test)]
mod server_layers;
#[cfg(test)]
mod tidy;

use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask test [cargo test args…] | cargo xtask bench [--seconds N] [--chat-only] | \
                 cargo xtask fuzz [--seconds N] [--runs R] [target…]"
            );
            std::process::exit(2);
        }
    }
}

/// Builds the examples (a test runs `bob_and_sue` against a real server), then runs `cargo test --workspace
/// --all-features` over the libraries, binaries and test suites, once, with one feature resolution (the optional
/// ONNX Runtime backend is tested too). Benchmarks are neither built nor run here: they measure, `cargo xtask bench`
/// and `cargo bench` run them optimised, and CI's `cargo build --all-targets` keeps them compiling. Echoes cargo's
/// output and ends with one line that counts the tests.
fn test(extra: &[String]) -> Result<()> {
    run_cargo(
        &["build", "--workspace", "--all-features", "--examples"],
        "the examples do not build",
    )?;
    let args = [
        "test",
        "--workspace",
        "--all-features",
        "--lib",
        "--bins",
        "--tests",
    ];
    let mut counts = Counts::default();
    let all_ok = cargo_test(&args, extra, &mut counts)?;
    let Counts {
        passed,
        failed,
        ignored,
        suites,
    } = counts;
    println!("tests: {passed} passed, {failed} failed, {ignored} ignored in {suites} suites");
    if !all_ok || failed > 0 {
        bail!("tests failed");
    }
    Ok(())
}

/// Runs `tessera-bench` (`crates/bench`) optimised, with `args`.
fn bench(args: &[String]) -> Result<()> {
    let mut run = vec!["run", "--quiet", "--release", "--package", "tessera-bench", "--"];
    run.extend(args.iter().map(String::as_str));
    run_cargo(&run, "the benchmark failed")
}

/// The cargo running this task (`$CARGO`), or the one on the path.
fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Runs `cargo args…` with its output shown; `failure` is the error if it fails.
fn run_cargo(args: &[&str], failure: &str) -> Result<()> {
    let status = cargo().args(args).status().context("cannot run cargo")?;
    if !status.success() {
        bail!("{failure}");
    }
    Ok(())
}

/// What the `test result:` lines of cargo test add up to.
#[derive(Default)]
struct Counts {
    passed: u64,
    failed: u64,
    ignored: u64,
    suites: u64,
}

/// One `cargo test` run, echoed and counted; whether it succeeded.
fn cargo_test(args: &[&str], extra: &[String], counts: &mut Counts) -> Result<bool> {
    let mut child = cargo()
        .args(args)
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run cargo test")?;
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = line?;
            println!("{line}");
            if let Some(rest) = line.strip_prefix("test result: ") {
                counts.suites += 1;
                let count = |label: &str| -> u64 {
                    rest.split(';')
                        .find_map(|part| part.trim().strip_suffix(label).map(str::trim))
                        .map(|n| n.trim_start_matches("ok.").trim_start_matches("FAILED.").trim())
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0)
                };
                counts.passed += count("passed");
                counts.failed += count("failed");
                counts.ignored += count("ignored");
            }
        }
    }
    Ok(child.wait()?.success())
}
