//! The `zkrs` binary: parse arguments, set up logging, run the command.

#![deny(unsafe_code)]

use std::os::unix::process::CommandExt;

use clap::Parser;

/// mimalloc: per-thread heaps without glibc's arena locks, which profiling showed as the
/// largest cost on the write path.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The mimalloc option a server runs with, which mimalloc reads from the environment
/// only as the process loads, before `main`.
///
/// `PURGE_DECOMMITS=0`: memory mimalloc holds unused for a second goes back with
/// MADV_FREE, which the kernel reclaims only under memory pressure, rather than
/// MADV_DONTNEED, which unmaps it at once. After a mass delete (a recipe's cleanup, a
/// benchmark's teardown) the next writes would otherwise fault every page back in, split
/// transparent huge pages and zero them again: profiling a create load after a delete
/// showed 15,000 page faults a second and 15% of the server's samples in page zeroing;
/// with MADV_FREE the faults fell 5 to 20 times and creates rose 6-10%.
const SERVER_ALLOCATOR_OPTION: (&str, &str) = ("MIMALLOC_PURGE_DECOMMITS", "0");

fn main() -> std::process::ExitCode {
    let cli = zkrs::cli::Cli::parse();
    let reexec_error = cli.runs_server().then(reexec_with_allocator_option).flatten();
    zkrs::logging::init();
    if let Some(err) = reexec_error {
        tracing::warn!("running with mimalloc's default options: re-executing failed: {err}");
    }
    match zkrs::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) if err.is::<zkrs::cli::ShellFailed>() => std::process::ExitCode::from(1),
        Err(err) => {
            let status = zkrs::cli::exit_status(&err);
            if status == 2 {
                tracing::error!("Invalid config, exiting abnormally: {err:#}");
            } else {
                tracing::error!("{err:#}");
            }
            std::process::ExitCode::from(status)
        }
    }
}

/// Replaces this process (same pid, arguments and descriptors) with this binary started
/// again with [`SERVER_ALLOCATOR_OPTION`] set, which is the only way to set it without
/// unsafe code. Returns at once when the variable is already set (the second start, or a
/// user's own choice, which is kept); otherwise returns only if exec failed, with the
/// error, and the server then runs on mimalloc's defaults.
fn reexec_with_allocator_option() -> Option<std::io::Error> {
    let (name, value) = SERVER_ALLOCATOR_OPTION;
    if std::env::var_os(name).is_some() {
        return None;
    }
    let mut arguments = std::env::args_os();
    let program_name = arguments.next()?;
    let executable = match std::env::current_exe() {
        Ok(executable) => executable,
        Err(err) => return Some(err),
    };
    let mut command = std::process::Command::new(executable);
    command.arg0(program_name).args(arguments).env(name, value);
    Some(command.exec())
}
