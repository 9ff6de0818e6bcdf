//! Starts the real `zkrs` binary on 127.0.0.1 with an ephemeral port, and stops it.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a server may take to start listening.
const START_WAIT: Duration = Duration::from_secs(30);

/// A running server; killed when dropped, and its directory removed unless kept.
pub struct ServerProcess {
    child: Child,
    /// Where it listens.
    pub address: SocketAddr,
    /// Its working directory (config, data, log).
    pub dir: PathBuf,
    keep_dir: bool,
}

/// A fresh directory under the system temp dir, unique per call.
pub fn scratch_dir(name: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("zkrs-test-{}-{name}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
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
            "tickTime=500\ndataDir={}\nclientPort=0\nclientPortAddress=127.0.0.1\nmaxClientCnxns=0\n\
             4lw.commands.whitelist=*\nextendedTypesEnabled=true\n{extra}\n",
            dir.join("data").display()
        );
        ServerProcess::start_with_config(dir, &config, keep_dir)
    }

    /// Starts a server in `dir` with `config` as its whole zoo.cfg.
    pub fn start_with_config(dir: PathBuf, config_text: &str, keep_dir: bool) -> ServerProcess {
        let config = dir.join("zoo.cfg");
        std::fs::write(&config, config_text).expect("write zoo.cfg");
        let mut child = Command::new(env!("CARGO_BIN_EXE_zkrs"))
            .arg("server")
            .arg(&config)
            .env("ZKRS_LOG", "info")
            .env_remove("MIMALLOC_PURGE_DECOMMITS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn zkrs");
        let stderr = child.stderr.take().expect("stderr");
        let (found, address) = mpsc::channel();
        let log_path = dir.join("server.log");
        let previous_log = std::fs::read_to_string(&log_path).unwrap_or_default();
        std::thread::spawn(move || {
            let mut log = std::fs::File::create(log_path).expect("log file");
            let _ = log.write_all(previous_log.as_bytes());
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let serving = line.split("serving clients address=").nth(1);
                if let Some(rest) = serving {
                    if let Ok(address) = rest.trim().parse::<SocketAddr>() {
                        let _ = found.send(address);
                    }
                }
                let _ = writeln!(log, "{line}");
            }
        });
        let address = address.recv_timeout(START_WAIT).expect("the server did not start listening");
        ServerProcess { child, address, dir, keep_dir }
    }

    /// Kills the server with SIGKILL and waits for it; returns its directory.
    pub fn kill(mut self) -> PathBuf {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.keep_dir = true;
        self.dir.clone()
    }

    /// Stops the server with SIGTERM, waits for it and checks that it shut down cleanly
    /// (exit status 0); returns its directory.
    pub fn terminate(mut self) -> PathBuf {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => panic!("the server did not stop within 60 s of SIGTERM:\n{}", self.log()),
            }
        };
        assert!(status.success(), "SIGTERM ended the server with {status}:\n{}", self.log());
        self.keep_dir = true;
        self.dir.clone()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// The process id the test started, which the server keeps for its whole life.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.keep_dir && !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
