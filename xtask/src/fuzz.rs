//! `cargo xtask fuzz [--seconds N] [--runs R] [target…]`: the cargo-fuzz targets of `fuzz/` (libFuzzer, nightly),
//! one after another, each for N seconds (default 60) or R executions, whichever comes first, from its corpus, which
//! is seeded from `fuzz/seeds/<target>/` first.
//! Every target by default (`cargo +nightly fuzz list`). One line per target: executions, seconds, and the crash
//! artifact if libFuzzer wrote one; libFuzzer's output goes to `fuzz/target/fuzz-logs/<target>.log`. Fails if any
//! target crashed. Not run in CI: it needs `cargo install cargo-fuzz` and a nightly toolchain.

use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// What one run of a target came to.
struct Outcome {
    executions: Option<u64>,
    seconds: f64,
    artifact: Option<String>,
    success: bool,
}

/// Runs the fuzz targets.
pub fn run(args: &[String]) -> Result<()> {
    let usage = "usage: cargo xtask fuzz [--seconds N] [--runs R] [target…]";
    let mut seconds: u64 = 60;
    let mut runs: Option<u64> = None;
    let mut targets = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                seconds = args
                    .next()
                    .context(usage)?
                    .parse()
                    .context("--seconds takes a number")?
            }
            "--runs" => {
                runs = Some(
                    args.next()
                        .context(usage)?
                        .parse()
                        .context("--runs takes a number")?,
                )
            }
            flag if flag.starts_with('-') => bail!(usage),
            target => targets.push(target.to_owned()),
        }
    }
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("workspace root")?
        .join("fuzz");
    if targets.is_empty() {
        targets = list(&fuzz)?;
    }
    let logs = fuzz.join("target/fuzz-logs");
    std::fs::create_dir_all(&logs)?;
    let mut crashed = Vec::new();
    for target in &targets {
        seed(&fuzz, target)?;
        let log = logs.join(format!("{target}.log"));
        let outcome = fuzz_one(&fuzz, target, seconds, runs, &log)?;
        let executions = outcome
            .executions
            .map_or_else(|| "?".to_owned(), |n| n.to_string());
        let verdict = match (&outcome.artifact, outcome.success) {
            (Some(artifact), _) => format!("CRASH {artifact}"),
            (None, false) => format!("FAILED (see {})", log.display()),
            (None, true) => "no crash".to_owned(),
        };
        println!(
            "fuzz {target:<16} {executions:>12} execs {:>7.1} s  {verdict}",
            outcome.seconds
        );
        if !outcome.success || outcome.artifact.is_some() {
            crashed.push(target.clone());
        }
    }
    if !crashed.is_empty() {
        bail!("fuzz targets crashed or failed: {}", crashed.join(", "));
    }
    Ok(())
}

/// The targets `cargo fuzz list` names.
fn list(fuzz: &Path) -> Result<Vec<String>> {
    let out = nightly(fuzz)
        .args(["fuzz", "list"])
        .output()
        .context("cannot run cargo +nightly fuzz list (cargo install cargo-fuzz --locked)")?;
    if !out.status.success() {
        bail!("cargo fuzz list: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

/// `cargo +nightly` in `fuzz/`, through rustup's proxy (not `$CARGO`, which is the stable toolchain's binary).
fn nightly(fuzz: &Path) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.arg("+nightly")
        .current_dir(fuzz)
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO");
    cmd
}

/// Copies `fuzz/seeds/<target>/` into `fuzz/corpus/<target>/`.
fn seed(fuzz: &Path, target: &str) -> Result<()> {
    let corpus = fuzz.join("corpus").join(target);
    std::fs::create_dir_all(&corpus)?;
    let seeds = fuzz.join("seeds").join(target);
    if !seeds.is_dir() {
        return Ok(());
    }
    for entry in std::fs::read_dir(&seeds)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            let dest: PathBuf = corpus.join(format!("seed-{}", entry.file_name().to_string_lossy()));
            std::fs::copy(entry.path(), &dest)
                .with_context(|| format!("cannot copy {} to {}", entry.path().display(), dest.display()))?;
        }
    }
    Ok(())
}

/// Targets that link the whole server: built with the `server` feature, and without AddressSanitizer (their code
/// is safe Rust but for C libraries that cargo-fuzz does not instrument anyway, and the server under ASan builds and
/// runs several times slower), in `fuzz/target/server`.
const SERVER_TARGETS: [&str; 1] = ["http_api"];

/// One `cargo fuzz run`, its output written to `log` and read for libFuzzer's final statistics and artifact.
fn fuzz_one(fuzz: &Path, target: &str, seconds: u64, runs: Option<u64>, log: &Path) -> Result<Outcome> {
    let mut file = std::fs::File::create(log)?;
    let started = Instant::now();
    let mut command = nightly(fuzz);
    command.args(["fuzz", "run", target]);
    if SERVER_TARGETS.contains(&target) {
        // Their own target directory: other flags would rebuild the other targets' dependencies each time.
        command.args([
            "--features",
            "server",
            "--sanitizer",
            "none",
            "--target-dir",
            "target/server",
        ]);
    }
    command
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg("-print_final_stats=1");
    if let Some(runs) = runs {
        command.arg(format!("-runs={runs}"));
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run cargo +nightly fuzz run (cargo install cargo-fuzz --locked)")?;
    // libFuzzer reports on stderr; stdout (the target's prints, rare) is drained by its own thread.
    let stdout = child.stdout.take().context("stdout")?;
    let echo = std::thread::spawn(move || -> Vec<String> {
        BufReader::new(stdout).lines().map_while(Result::ok).collect()
    });
    let mut outcome = Outcome {
        executions: None,
        seconds: 0.0,
        artifact: None,
        success: false,
    };
    let mut fuzzing_since = None;
    let mut done_seconds = None;
    for line in BufReader::new(child.stderr.take().context("stderr")?).lines() {
        let line = line?;
        writeln!(file, "{line}")?;
        if fuzzing_since.is_none() && line.starts_with("INFO: Running with entropic power schedule") {
            fuzzing_since = Some(Instant::now());
        }
        if let Some(n) = line.strip_prefix("stat::number_of_executed_units:") {
            outcome.executions = n.trim().parse().ok();
        }
        if let Some(rest) = line.strip_prefix("Done ") {
            // `Done 12345 runs in 120 second(s)`
            done_seconds = rest.split_whitespace().nth(3).and_then(|s| s.parse::<f64>().ok());
        }
        if let Some((_, path)) = line.split_once("Test unit written to ") {
            outcome.artifact = Some(path.trim().to_owned());
        }
    }
    for line in echo.join().unwrap_or_default() {
        writeln!(file, "{line}")?;
    }
    outcome.success = child.wait()?.success();
    outcome.seconds =
        done_seconds.unwrap_or_else(|| fuzzing_since.unwrap_or(started).elapsed().as_secs_f64());
    Ok(outcome)
}
