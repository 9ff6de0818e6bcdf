//! Keeps the deterministic core deterministic and the code tidy (TigerBeetle's tidy.zig):
//! the pure modules must not touch tokio, threads, clocks, global randomness, files or
//! sockets; no module may `unwrap()` outside tests; no line may exceed 100 columns.

use std::path::{Path, PathBuf};

/// Modules that must stay free of IO, threads, clocks and global randomness.
const PURE: &[&str] =
    &["src/tree", "src/session", "src/prepare", "src/txn.rs", "src/zab", "jute/src"];

/// What the pure modules may not mention.
const FORBIDDEN_IN_PURE: &[&str] = &[
    "tokio",
    "std::thread",
    "Instant::now",
    "SystemTime",
    "thread_rng",
    "std::fs",
    "std::net::Tcp",
];

const LINE_COLUMNS_MAX: usize = 100;

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_file() {
        if path.extension().is_some_and(|extension| extension == "rs") {
            out.push(path.to_owned());
        }
        return;
    }
    for entry in std::fs::read_dir(path).expect("readable source tree") {
        rust_files(&entry.expect("entry").path(), out);
    }
}

/// Lines of `text` outside `#[cfg(test)]` modules and test files.
fn production_lines(path: &Path, text: &str) -> Vec<(usize, String)> {
    let name = path.to_string_lossy();
    if name.ends_with("_test.rs") || name.contains("/generate.rs") {
        return Vec::new();
    }
    let mut lines = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            break;
        }
        lines.push((number + 1, line.to_owned()));
    }
    lines
}

#[test]
fn pure_modules_do_no_io() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut offences = Vec::new();
    for module in PURE {
        let mut files = Vec::new();
        rust_files(&root.join(module), &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).expect("readable");
            for (number, line) in production_lines(&file, &text) {
                let code = line.split("//").next().unwrap_or("");
                for word in FORBIDDEN_IN_PURE {
                    if code.contains(word) {
                        offences.push(format!("{}:{number}: {word}", file.display()));
                    }
                }
            }
        }
    }
    assert!(offences.is_empty(), "pure modules must not do IO:\n{}", offences.join("\n"));
}

#[test]
fn no_unwrap_outside_tests_and_no_long_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("jute/src"), &mut files);
    let mut offences = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable");
        for (number, line) in production_lines(&file, &text) {
            if line.contains(".unwrap()") {
                offences.push(format!("{}:{number}: unwrap()", file.display()));
            }
            if line.chars().count() > LINE_COLUMNS_MAX {
                offences.push(format!(
                    "{}:{number}: longer than {LINE_COLUMNS_MAX} columns",
                    file.display()
                ));
            }
        }
    }
    assert!(offences.is_empty(), "tidy:\n{}", offences.join("\n"));
}
