//! Records the commit zkrs is built from, for `zkrs --version` and the start-up banner.

fn main() {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .map(|commit| commit.trim().to_owned())
        .filter(|commit| !commit.is_empty());
    let dirty = std::process::Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok()
        .is_some_and(|output| output.status.success() && !output.stdout.is_empty());
    let commit = match commit {
        Some(commit) if dirty => format!("{commit}-modified"),
        Some(commit) => commit,
        None => std::env::var("ZKRS_COMMIT").unwrap_or_else(|_| "unknown".to_owned()),
    };
    println!("cargo:rustc-env=ZKRS_COMMIT={commit}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/index");
    println!("cargo:rerun-if-changed=.git/refs");
    println!("cargo:rerun-if-env-changed=ZKRS_COMMIT");
}
