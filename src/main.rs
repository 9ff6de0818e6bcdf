//! The `zkrs` binary: parse arguments, set up logging, run the command.

#![deny(unsafe_code)]

use std::os::unix::process::CommandExt;

use clap::Parser;

/// mimalloc: per-thread heaps without glibc's arena locks, which profiling showed as the
/// largest cost on the write path.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The mimalloc options a server runs with, which mimalloc reads from the environment
/// only as the process loads, before `main`.
///
/// `PURGE_DELAY=1000`: memory mimalloc holds unused for a second goes back to the
/// system (MADV_DONTNEED), not after 10 ms, its default (mimalloc 3 waits a second too).
/// Memory a burst of frees gives up (a recipe's cleanup, a benchmark's teardown) is then
/// taken again by the writes that follow, without the page faults and zeroing an early
/// return costs; memory that stays unused leaves the RSS. This replaces purging with
/// MADV_FREE, which kept the create rate after a mass delete as well but left the freed
/// pages in the RSS until the kernel ran short of memory: 12 MiB of a server loaded with
/// a million znodes. Alternating 8 s creates after a delete, three pairs: 76-90k creates
/// a second either way.
///
/// `ALLOW_THP=0`: no transparent huge pages for the process. mimalloc asks for them on
/// its arenas, and a 2 MiB page is resident whole as soon as one byte of it is touched:
/// an idle server held 10 MiB of them. Without them, on this machine, an idle server's
/// RSS fell from 33 to 24 MiB and 10,000 idle sessions cost 4.1 KB each instead of
/// 5.0 KB, with get, set and connect throughput unchanged within the noise of paired runs.
const SERVER_ALLOCATOR_OPTIONS: [(&str, &str); 2] =
    [("MIMALLOC_PURGE_DELAY", "1000"), ("MIMALLOC_ALLOW_THP", "0")];

fn main() -> std::process::ExitCode {
    let cli = zkrs::cli::Cli::parse();
    let reexec_error = cli.runs_server().then(reexec_with_allocator_options).flatten();
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
/// again with [`SERVER_ALLOCATOR_OPTIONS`] set, which is the only way to set them without
/// unsafe code. Returns at once when every variable is already set (the second start, or
/// a user's own choice, which is kept); otherwise returns only if exec failed, with the
/// error, and the server then runs on mimalloc's defaults.
fn reexec_with_allocator_options() -> Option<std::io::Error> {
    let unset: Vec<_> = SERVER_ALLOCATOR_OPTIONS
        .into_iter()
        .filter(|(name, _)| std::env::var_os(name).is_none())
        .collect();
    if unset.is_empty() {
        return None;
    }
    let mut arguments = std::env::args_os();
    let program_name = arguments.next()?;
    let executable = match std::env::current_exe() {
        Ok(executable) => executable,
        Err(err) => return Some(err),
    };
    let mut command = std::process::Command::new(executable);
    command.arg0(program_name).args(arguments).envs(unset);
    Some(command.exec())
}
