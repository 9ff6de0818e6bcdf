//! Starts the real `zkrs` binary on 127.0.0.1 with an ephemeral port, and stops it.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to start listening.
const START_WAIT: Duration = Duration::from_secs(30);

/// How long a server may take to exit once it should.
const EXIT_WAIT: Duration = Duration::from_secs(60);

/// A fresh directory under the system temp dir, unique per call. The first call also
/// removes what test processes that have exited left behind.
pub fn scratch_dir(name: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    static SWEPT: std::sync::Once = std::sync::Once::new();
    SWEPT.call_once(remove_exited_scratch_dirs);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("zkrs-test-{}-{name}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Removes the scratch directories of test processes no longer running. Directories are
/// kept for a look after a failure (and some, such as a ZooKeeper member's data, by
/// design), so without this every run would add to the disk's use for good.
fn remove_exited_scratch_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|name| name.strip_prefix("zkrs-test-")) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|pid| pid.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A `zkrs` process started with any arguments, its standard error appended to
/// `dir/server.log`; killed when dropped.
pub struct Launched {
    child: Child,
    /// Where its log goes.
    pub dir: PathBuf,
}

impl Launched {
    /// Starts `zkrs ARGS` in `dir` with `envs` added to the environment (logging at info
    /// unless `envs` says otherwise).
    pub fn spawn<S: AsRef<OsStr>>(dir: &Path, args: &[S], envs: &[(&str, &str)]) -> Launched {
        let mut command = Command::new(env!("CARGO_BIN_EXE_zkrs"));
        command
            .args(args)
            .current_dir(dir)
            .env("ZKRS_LOG", "info")
            .env_remove("RUST_LOG")
            .env_remove("MIMALLOC_PURGE_DELAY")
            .env_remove("MIMALLOC_ALLOW_THP")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, value) in envs {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("spawn zkrs");
        let stderr = child.stderr.take().expect("stderr");
        let log_path = dir.join("server.log");
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("log file");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(log, "{line}");
            }
        });
        Launched { child, dir: dir.to_owned() }
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Waits until a log line contains `needle` and returns that line; `None` if the
    /// process exits or the start-up time passes first.
    pub fn wait_for_line(&mut self, needle: &str) -> Option<String> {
        let deadline = Instant::now() + START_WAIT;
        loop {
            if let Some(line) = self.log().lines().find(|line| line.contains(needle)) {
                return Some(line.to_owned());
            }
            if Instant::now() > deadline || !self.is_running() {
                // The last lines may still be on their way from the reader thread.
                std::thread::sleep(Duration::from_millis(100));
                return self.log().lines().find(|line| line.contains(needle)).map(str::to_owned);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the process to exit, for at most a minute.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + EXIT_WAIT;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    // Let the reader thread write the last lines.
                    std::thread::sleep(Duration::from_millis(100));
                    return status;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = self.child.kill();
                    panic!("zkrs did not exit within {EXIT_WAIT:?}:\n{}", self.log());
                }
            }
        }
    }

    /// Sends the named signal (`TERM`, `HUP`, ...).
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").arg(format!("-{name}")).arg(pid).status();
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills it with SIGKILL and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Launched {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A serving server; killed when dropped, and its directory removed unless kept.
pub struct ServerProcess {
    process: Launched,
    /// Where it listens.
    pub address: SocketAddr,
    /// Its working directory (config, data, log).
    pub dir: PathBuf,
    keep_dir: bool,
}

impl ServerProcess {
    /// Starts a standalone server in a fresh directory; `extra` is appended to its zoo.cfg.
    pub fn start(extra: &str) -> ServerProcess {
        ServerProcess::start_in(scratch_dir("server"), extra, false)
    }

    /// Starts a server on the data in `dir` (a restart when it holds data already); the
    /// directory is kept after the server stops when `keep_dir`.
    pub fn start_in(dir: PathBuf, extra: &str, keep_dir: bool) -> ServerProcess {
        let config = format!(
            "tickTime=500\ndataDir={}\nadmin.enableServer=false\nclientPort=0\nclientPortAddress=127.0.0.1\nmaxClientCnxns=0\n\
             4lw.commands.whitelist=*\nextendedTypesEnabled=true\n{extra}\n",
            dir.join("data").display()
        );
        ServerProcess::start_with_config(dir, &config, keep_dir)
    }

    /// Starts a server in `dir` with `config` as its whole zoo.cfg.
    pub fn start_with_config(dir: PathBuf, config_text: &str, keep_dir: bool) -> ServerProcess {
        ServerProcess::start_with_environment(dir, config_text, keep_dir, &[])
    }

    /// [`ServerProcess::start_with_config`] with `envs` added to its environment.
    pub fn start_with_environment(
        dir: PathBuf,
        config_text: &str,
        keep_dir: bool,
        envs: &[(&str, &str)],
    ) -> ServerProcess {
        let config = dir.join("zoo.cfg");
        std::fs::write(&config, config_text).expect("write zoo.cfg");
        let args = [OsStr::new("server"), config.as_os_str()];
        let mut process = Launched::spawn(&dir, &args, envs);
        let previous_lines = process.log().lines().count();
        let deadline = Instant::now() + START_WAIT;
        let address = loop {
            let log = process.log();
            let serving = log
                .lines()
                .skip(previous_lines)
                .find_map(|line| line.split("serving clients address=").nth(1))
                .and_then(|rest| rest.trim().parse::<SocketAddr>().ok());
            if let Some(address) = serving {
                break address;
            }
            assert!(
                Instant::now() < deadline && process.is_running(),
                "the server did not start listening:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        ServerProcess { process, address, dir, keep_dir }
    }

    /// Kills the server with SIGKILL and waits for it; returns its directory.
    pub fn kill(mut self) -> PathBuf {
        self.process.kill();
        self.keep_dir = true;
        self.dir.clone()
    }

    /// Stops the server with SIGTERM, waits for it and checks that it shut down cleanly
    /// (exit status 0); returns its directory.
    pub fn terminate(mut self) -> PathBuf {
        self.process.signal("TERM");
        let status = self.process.wait_exit();
        assert!(status.success(), "SIGTERM ended the server with {status}:\n{}", self.log());
        self.keep_dir = true;
        self.dir.clone()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// Waits until a log line contains `needle` ([`Launched::wait_for_line`]): a line
    /// reaches the log file through the reader thread a moment after the server wrote it.
    pub fn wait_for_line(&mut self, needle: &str) -> Option<String> {
        self.process.wait_for_line(needle)
    }

    /// The process id the test started, which the server keeps for its whole life.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.process.kill();
        if !self.keep_dir && !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
