//! Tidy tests (after rust-analyzer's): rules about the repository's files that no compiler checks, run by
//! `cargo xtask test` like any other test. Each rule names the files that break it.
//!
//! - every Rust module starts with a `//!` doc;
//! - no `#[allow(…)]`: an exception is an `#[expect(…, reason = "…")]`, so it says why and is reported once it is
//!   no longer needed;
//! - a crate's `tests/` holds one integration-test binary (a `.rs` file, or a directory with `main.rs`);
//! - a path the code or the documentation cites (`crates/…`, `docs/…`, `tests/…`, `xtask/…`, `fuzz/…`, `.ci/…`)
//!   exists, a `docs/wire.md §N` citation names one of its sections, and nothing cites a file outside the
//!   repository.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

/// The repository's root (the parent of `xtask/`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the repository")
        .to_path_buf()
}

/// Directories that hold no source of the project: build output, caches, virtualenvs, fuzz corpora.
const SKIPPED_DIRS: [&str; 8] = [
    ".git",
    "target",
    "corpus",
    "artifacts",
    "__pycache__",
    ".venv",
    "node_modules",
    "tessera-data",
];

/// Every file of the project, relative to the root, sorted: the tree is walked once for all the rules.
pub(crate) static FILES: LazyLock<Vec<PathBuf>> = LazyLock::new(|| {
    let root = root();
    let mut found = Vec::new();
    let mut pending = vec![root.clone()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if path.is_dir() {
                if !SKIPPED_DIRS.contains(&name) {
                    pending.push(path);
                }
            } else {
                found.push(path.strip_prefix(&root).expect("under the root").to_path_buf());
            }
        }
    }
    found.sort();
    found
});

/// The project's files whose name ends with one of `extensions`.
fn files_with(extensions: &[&str]) -> Vec<&'static Path> {
    FILES
        .iter()
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| extensions.contains(&e))
        })
        .map(PathBuf::as_path)
        .collect()
}

/// The text of a project file.
pub(crate) fn read(path: &Path) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Fails with every offence listed, one per line.
pub(crate) fn assert_none(rule: &str, offences: &[String]) {
    assert!(offences.is_empty(), "{rule}:\n  {}", offences.join("\n  "));
}

#[test]
fn every_module_has_a_doc() {
    let offences: Vec<String> = files_with(&["rs"])
        .into_iter()
        .filter(|path| {
            let text = read(path);
            let first = text.lines().map(str::trim).find(|l| !l.is_empty());
            !first.is_some_and(|l| l.starts_with("//!"))
        })
        .map(|path| path.display().to_string())
        .collect();
    assert_none("modules without a `//!` doc on their first line", &offences);
}

#[test]
fn exceptions_to_lints_say_why() {
    let mut offences = Vec::new();
    for path in files_with(&["rs"]) {
        let text = read(path);
        let lines: Vec<&str> = text.lines().collect();
        for (n, line) in lines.iter().enumerate() {
            let attribute = line.trim_start();
            let allow = attribute.starts_with("#[allow(") || attribute.starts_with("#![allow(");
            let expect = attribute.starts_with("#[expect(") || attribute.starts_with("#![expect(");
            // The whole attribute, which rustfmt may spread over several lines, down to its `)]`.
            let end = lines[n..]
                .iter()
                .position(|l| l.contains(")]"))
                .map_or(lines.len(), |i| n + i + 1);
            let reasoned = lines[n..end].iter().any(|l| l.contains("reason"));
            if allow || (expect && !reasoned) {
                offences.push(format!("{}:{}: {}", path.display(), n + 1, attribute));
            }
        }
    }
    assert_none(
        "`#[allow]` or an `#[expect]` without a reason (write `#[expect(lint, reason = \"…\")]`)",
        &offences,
    );
}

#[test]
fn each_crate_has_one_integration_test_binary() {
    let mut offences = Vec::new();
    let crates = std::fs::read_dir(root().join("crates")).expect("crates/");
    for krate in crates {
        let tests = krate.expect("a crate").path().join("tests");
        let Ok(entries) = std::fs::read_dir(&tests) else {
            continue;
        };
        let binaries: Vec<String> = entries
            .map(|e| e.expect("an entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "rs") || p.join("main.rs").is_file())
            .map(|p| p.file_name().unwrap_or_default().to_string_lossy().into_owned())
            .collect();
        if binaries.len() > 1 {
            let relative = tests.strip_prefix(root()).unwrap_or(&tests).display().to_string();
            offences.push(format!("{relative}: {}", binaries.join(", ")));
        }
    }
    assert_none(
        "more than one integration-test binary (add a module to the crate's one binary instead)",
        &offences,
    );
}

/// The roots of the repository's own paths, as the code and the documentation cite them.
const CITED_ROOTS: [&str; 6] = ["crates/", "docs/", "tests/", "xtask/", "fuzz/", ".ci/"];

/// The repository paths cited in `text`: backquoted words under one of [`CITED_ROOTS`], without placeholders or
/// globs, outside build output ([`SKIPPED_DIRS`]), and without a trailing `:line` or `§` section.
fn cited_paths(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|quoted| {
            let word = quoted.split_whitespace().next()?;
            let path = word.split(':').next()?.trim_end_matches(['/', ',', '.', ')']);
            let is_path = CITED_ROOTS.iter().any(|r| path.starts_with(r));
            let is_pattern = path.contains(['*', '<', '{', '…', '$']);
            // Build output and fuzz corpora are made by running things, not kept in the repository.
            let is_made = path.split('/').any(|part| SKIPPED_DIRS.contains(&part));
            (is_path && !is_pattern && !is_made).then(|| path.to_owned())
        })
        .collect()
}

/// How citations of files outside the repository begin (written in two parts, so that this file does not cite them).
const OUTSIDE: [&str; 2] = [concat!("WIRE", "-SPEC"), concat!("../", "shared/")];

/// The `N` of every `docs/wire.md §N` in `text` (a section number: digits and dots).
fn cited_wire_sections(text: &str) -> Vec<String> {
    text.match_indices("docs/wire.md §")
        .map(|(at, cite)| {
            text[at + cite.len()..]
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect::<String>()
                .trim_end_matches('.')
                .to_owned()
        })
        .filter(|section| !section.is_empty())
        .collect()
}

#[test]
fn cited_files_exist_in_the_repository() {
    let root = root();
    let wire = read(Path::new("docs/wire.md"));
    let sections: Vec<String> = wire
        .lines()
        .filter(|l| l.starts_with('#'))
        .filter_map(|heading| {
            let title = heading.trim_start_matches('#').trim().trim_start_matches('§');
            title
                .split_whitespace()
                .next()
                .map(|n| n.trim_end_matches('.').to_owned())
        })
        .collect();
    let mut offences = Vec::new();
    for path in files_with(&["rs", "md", "py", "toml", "txt", "js", "mjs"]) {
        let text = read(path);
        for cited in cited_paths(&text) {
            if !root.join(&cited).exists() {
                offences.push(format!("{}: `{cited}` is not in the repository", path.display()));
            }
        }
        for section in cited_wire_sections(&text) {
            if !sections.contains(&section) {
                offences.push(format!("{}: docs/wire.md has no §{section}", path.display()));
            }
        }
        if OUTSIDE.iter().any(|outside| text.contains(outside)) {
            offences.push(format!(
                "{}: cites a file outside the repository (bring the facts into docs/)",
                path.display()
            ));
        }
    }
    assert_none("references that lead nowhere", &offences);
}

#[test]
fn the_path_rule_reads_citations_as_written() {
    assert_eq!(
        cited_paths("see `crates/server/tests/api/chat.rs`, `docs/wire.md §2.3` and `crates/*/tests/`"),
        ["crates/server/tests/api/chat.rs", "docs/wire.md"]
    );
    assert_eq!(
        cited_paths("`crates/store/src/sqlite.rs:120` and `fuzz/seeds/<target>/`"),
        ["crates/store/src/sqlite.rs"]
    );
    assert_eq!(
        cited_wire_sections("as docs/wire.md §2.3. says, and docs/wire.md §4"),
        ["2.3", "4"]
    );
}
