//! zoo.cfg read as ZooKeeper reads it (issue 13): the real binary on each of the files
//! that used to start it weaker than configured, or not at all, and on the start-up and
//! logging behaviour operators rely on.

mod support;

use support::zookeeper::free_port;

use std::io::{Read, Write};

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;
use tokio::io::AsyncReadExt as _;

use support::client::Client;
use support::ensemble::Ensemble;
use support::server::{scratch_dir, Launched, ServerProcess};

/// Starts `zkrs server` on `text` written to `dir/zoo.cfg`.
fn launch(dir: &Path, text: &str, envs: &[(&str, &str)]) -> Launched {
    std::fs::write(dir.join("zoo.cfg"), text).expect("zoo.cfg");
    Launched::spawn(dir, &["server", "zoo.cfg"], envs)
}

fn four_letter(address: SocketAddr, word: &str) -> String {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    stream.write_all(word.as_bytes()).expect("send");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

#[test]
fn a_tls_file_whose_key_store_cannot_be_read_refuses_to_start_with_exit_2() {
    let dir = scratch_dir("tls-only");
    let secure_port = free_port();
    let mut server = launch(
        &dir,
        &format!(
            "tickTime=2000\ndataDir={}\nadmin.enableServer=false\nsecureClientPort={secure_port}\n\
             serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n\
             ssl.keyStore.location=/etc/zookeeper/keystore.jks\nssl.keyStore.password=pw\n",
            dir.join("data").display()
        ),
        &[],
    );
    let status = server.wait_exit();
    let log = server.log();
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(log.contains("cannot read /etc/zookeeper/keystore.jks"), "{log}");
    assert!(!log.contains("serving clients"), "{log}");
}

#[test]
fn a_sasl_provider_without_a_jaas_file_refuses_to_start_with_exit_2() {
    let dir = scratch_dir("sasl");
    let mut server = launch(
        &dir,
        &format!(
            "tickTime=2000\ndataDir={}\nadmin.enableServer=false\nclientPort={}\n\
             authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n",
            dir.join("data").display(),
            free_port()
        ),
        &[],
    );
    let status = server.wait_exit();
    let log = server.log();
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(log.contains("needs java.security.auth.login.config"), "{log}");
    assert!(!log.contains("serving clients"), "{log}");
}

#[test]
fn an_https_admin_server_without_a_key_store_refuses_to_start_rather_than_serve_plain_http() {
    let dir = scratch_dir("admin-https");
    let mut server = launch(
        &dir,
        &format!(
            "tickTime=2000\ndataDir={}\nclientPort={}\nadmin.serverPort={}\n\
             admin.forceHttps=true\n",
            dir.join("data").display(),
            free_port(),
            free_port()
        ),
        &[],
    );
    let status = server.wait_exit();
    let log = server.log();
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(log.contains("needs ssl.quorum.keyStore.location"), "{log}");
    assert!(!log.contains("serving clients"), "{log}");
}

#[test]
fn a_standalone_server_whose_admin_port_is_taken_stops_as_zookeeper_does() {
    let dir = scratch_dir("admin-taken");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("address").port();
    let mut server = launch(
        &dir,
        &format!(
            "tickTime=2000\ndataDir={}\nclientPort={}\nadmin.serverAddress=127.0.0.1\n\
             admin.serverPort={port}\n",
            dir.join("data").display(),
            free_port()
        ),
        &[],
    );
    let status = server.wait_exit();
    let log = server.log();
    assert_ne!(status.code(), Some(0), "{log}");
    assert!(log.contains("AdminServer"), "{log}");
    assert!(!log.contains("serving clients"), "{log}");
}

#[test]
fn issue_13_misspelt_client_port_starts_without_a_listener() {
    let dir = scratch_dir("misspelt");
    let port = free_port();
    let mut server = launch(
        &dir,
        &format!(
            "dataDir={}\nadmin.enableServer=false\nclientport={port}\n",
            dir.join("data").display()
        ),
        &[],
    );
    let warning = server.wait_for_line("did you mean clientPort?").expect("the misspelling named");
    assert!(warning.contains("WARN"), "{warning}");
    server.wait_for_line("no client listener").expect("no listener said");
    assert!(server.wait_for_line("state recovered").is_some(), "{}", server.log());
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "something serves on {port}");
    server.signal("TERM");
    assert!(server.wait_exit().success(), "{}", server.log());
}

#[test]
fn issue_13_java_properties_syntax_and_zookeeper_defaults() {
    let dir = scratch_dir("properties");
    let port = free_port();
    let text = format!(
        "# key value lines, a colon, and a continued line, as Java properties allow\n\
         dataDir {}\nadmin.enableServer false\nclientPort: {port}\nclientPortAddress localhost\n\
         4lw.commands.whitelist=conf,\\\n    ruok\n",
        dir.join("data").display()
    );
    let mut server = launch(&dir, &text, &[]);
    server.wait_for_line("serving clients").expect("serves");
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    assert_eq!(four_letter(address, "ruok"), "imok");
    let conf = four_letter(address, "conf");
    for line in ["tickTime=3000\n", "minSessionTimeout=6000\n", "maxSessionTimeout=60000\n"] {
        assert!(conf.contains(line), "ZooKeeper's default {line:?} missing:\n{conf}");
    }
    assert!(four_letter(address, "stat").contains("not in the whitelist"));
    let banner = server.wait_for_line("zkrs starting").expect("banner");
    assert!(banner.contains(env!("CARGO_PKG_VERSION")) && banner.contains("commit"), "{banner}");
    server.wait_for_line("effective configuration").expect("effective configuration");
    server.wait_for_line("data directories").expect("data directories");
    assert!(!server.log().contains("processing four-letter word"), "4lw polling floods the log");
}

#[test]
fn issue_13_data_log_dir_is_created_and_an_empty_version_2_is_no_zookeeper_data() {
    let dir = scratch_dir("dirs");
    let data = dir.join("data");
    std::fs::create_dir_all(data.join("version-2")).expect("version-2, as zkCleanup.sh leaves it");
    let log_dir = dir.join("not/yet/there");
    let port = free_port();
    let mut server = launch(
        &dir,
        &format!(
            "dataDir={}\nadmin.enableServer=false\ndataLogDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n",
            data.display(),
            log_dir.display()
        ),
        &[],
    );
    server.wait_for_line("serving clients").unwrap_or_else(|| panic!("{}", server.log()));
    assert!(log_dir.is_dir());
    server.signal("TERM");
    assert!(server.wait_exit().success());
}

#[test]
fn issue_13_a_missing_data_dir_with_autocreate_off_exits_3() {
    let dir = scratch_dir("no-autocreate");
    let mut server = launch(
        &dir,
        &format!(
            "dataDir={}\nadmin.enableServer=false\nclientPort={}\nzookeeper.datadir.autocreate=false\n",
            dir.join("missing").display(),
            free_port()
        ),
        &[],
    );
    assert_eq!(server.wait_exit().code(), Some(3), "{}", server.log());
    assert!(server.log().contains("autocreate"), "{}", server.log());
    assert!(!dir.join("missing").exists());
}

#[test]
fn issue_13_a_bad_value_exits_2_and_names_the_key() {
    let dir = scratch_dir("bad-value");
    let mut server =
        launch(&dir, "dataDir=/tmp/never\nadmin.enableServer=false\ntickTime=2s\n", &[]);
    assert_eq!(server.wait_exit().code(), Some(2));
    assert!(server.log().contains("tickTime"), "{}", server.log());
}

#[test]
fn issue_13_sighup_is_logged_and_stops_the_server_cleanly() {
    let dir = scratch_dir("sighup");
    let mut server = launch(
        &dir,
        &format!(
            "dataDir={}\nadmin.enableServer=false\nclientPort={}\n",
            dir.join("data").display(),
            free_port()
        ),
        &[],
    );
    server.wait_for_line("serving clients").expect("serves");
    server.signal("HUP");
    assert!(server.wait_exit().success(), "{}", server.log());
    let line = server.wait_for_line("stop signal received").expect("logged");
    assert!(line.contains("SIGHUP"), "{line}");
}

#[test]
fn issue_13_a_bad_log_level_is_reported_and_logging_stays_on() {
    let dir = scratch_dir("bad-level");
    let mut server = launch(
        &dir,
        &format!(
            "dataDir={}\nadmin.enableServer=false\nclientPort={}\n",
            dir.join("data").display(),
            free_port()
        ),
        &[("ZKRS_LOG", "inf")],
    );
    let warning = server.wait_for_line("is not a log filter").expect("reported");
    assert!(warning.contains("ZKRS_LOG"), "{warning}");
    server.wait_for_line("serving clients").expect("still logging at info");
}

#[test]
fn issue_13_rust_log_is_honoured_with_a_json_log_file_and_a_pid_file() {
    let dir = scratch_dir("log-file");
    let log_dir = dir.join("logs");
    let pid_file = dir.join("zkrs.pid");
    let port = free_port();
    let mut server = launch(
        &dir,
        &format!(
            "dataDir={}\nadmin.enableServer=false\nclientPort={port}\n",
            dir.join("data").display()
        ),
        &[
            ("RUST_LOG", "debug"),
            ("ZKRS_LOG", ""),
            ("ZKRS_LOG_DIR", log_dir.to_str().expect("utf-8")),
            ("ZKRS_LOG_FORMAT", "json"),
            ("ZKRS_PID_FILE", pid_file.to_str().expect("utf-8")),
        ],
    );
    server.wait_for_line("serving clients").expect("serves");
    let pid = std::fs::read_to_string(&pid_file).expect("pid file");
    assert_eq!(pid.trim(), server.pid().to_string());
    four_letter(SocketAddr::from(([127, 0, 0, 1], port)), "srvr");
    server.wait_for_line("processing four-letter word").expect("a debug line");
    assert!(
        server.log().contains("\"level\":\"DEBUG\""),
        "RUST_LOG=debug in JSON:\n{}",
        server.log()
    );
    let files: Vec<_> =
        std::fs::read_dir(&log_dir).expect("log dir").filter_map(Result::ok).collect();
    assert_eq!(files.len(), 1, "one log file");
    let name = files[0].file_name().into_string().expect("utf-8");
    assert!(name.starts_with("zkrs.") && name.ends_with(".log"), "{name}");
    let text = std::fs::read_to_string(files[0].path()).expect("log file");
    assert!(text.lines().all(|line| line.starts_with('{') && line.ends_with('}')), "{text}");
    assert!(text.contains("serving clients"), "{text}");
    server.signal("TERM");
    assert!(server.wait_exit().success());
    assert!(!pid_file.exists(), "the pid file outlived the server");
}

#[tokio::test]
async fn issue_13_a_frame_over_jute_maxbuffer_is_logged_at_warn() {
    let server = ServerProcess::start("jute.maxbuffer=4096");
    let mut client = Client::connect(server.address).await;
    client.send_raw(&8192i32.to_be_bytes()).await;
    assert!(client.closed_by_server().await, "the connection stays open");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let line = loop {
        if let Some(line) = server.log().lines().find(|line| line.contains("Len error")) {
            break line.to_owned();
        }
        assert!(std::time::Instant::now() < deadline, "not logged:\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("8192") && line.contains("jute.maxbuffer=4096"), "{line}");
}

#[test]
fn issue_13_version_and_help_say_what_operators_need() {
    let dir = scratch_dir("version");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_zkrs"))
        .arg("--version")
        .output()
        .expect("run");
    let version = String::from_utf8_lossy(&output.stdout);
    assert!(version.contains(env!("CARGO_PKG_VERSION")) && version.contains("commit"), "{version}");
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_zkrs"))
        .args(["server", "--help"])
        .output()
        .expect("run");
    let help = String::from_utf8_lossy(&help.stdout);
    for variable in
        ["ZKRS_LOG", "RUST_LOG", "ZKRS_LOG_DIR", "ZKRS_LOG_FORMAT", "ZKRS_PID_FILE", "SIGHUP"]
    {
        assert!(help.contains(variable), "{variable} missing from:\n{help}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_13_dynamic_config_file_forms_an_ensemble_not_three_standalones() {
    let ensemble = Ensemble::start_dynamic(3, "");
    let leader = ensemble.wait_until_settled();
    let follower = (leader + 1) % 3;
    let mut writer = Client::connect(ensemble.addresses[follower]).await;
    writer.create("/through-a-follower", b"x", 0).await.expect("create");
    let mut reader = Client::connect(ensemble.addresses[leader]).await;
    let (data, _) = reader.get_data("/through-a-follower", false).await.expect("replicated");
    assert_eq!(data.as_deref(), Some(&b"x"[..]));
    let (config, _) = reader.get_data("/zookeeper/config", false).await.expect("config");
    let config = String::from_utf8(config.expect("data").to_vec()).expect("text");
    assert_eq!(config.lines().count(), 4, "{config}");
    assert!(config.starts_with("server.1=127.0.0.1:"), "{config}");
    assert!(config.contains(":participant;127.0.0.1:"), "{config}");
    assert!(config.ends_with("\nversion=100000000"), "{config}");
    writer.close().await;
    reader.close().await;
}

#[test]
fn issue_13_dump_tools_take_the_zoo_cfg_and_refuse_a_forgotten_data_log_dir() {
    let dir = scratch_dir("dump");
    let config = format!(
        "tickTime=500\ndataDir={}\nadmin.enableServer=false\ndataLogDir={}\nclientPort=0\nclientPortAddress=127.0.0.1\n",
        dir.join("data").display(),
        dir.join("txnlog").display()
    );
    let server = ServerProcess::start_with_config(dir.clone(), &config, true);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let mut client = Client::connect(server.address).await;
        for i in 0..5 {
            client.create(&format!("/n{i}"), b"x", 0).await.expect("create");
        }
        client.close().await;
    });
    server.terminate();
    let zkrs = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_zkrs"))
            .args(args)
            .current_dir(&dir)
            .env("ZKRS_LOG", "warn")
            .output()
            .expect("run")
    };
    let with_config = zkrs(&["log", "dump", "--config", "zoo.cfg"]);
    let listing = String::from_utf8_lossy(&with_config.stdout);
    assert!(with_config.status.success(), "{listing}");
    assert_eq!(listing.lines().filter(|line| line.contains("Create /n")).count(), 5, "{listing}");
    let data_dir = dir.join("data");
    let forgotten = zkrs(&["log", "dump", data_dir.to_str().expect("utf-8")]);
    assert!(!forgotten.status.success(), "a dump without dataLogDir passed");
    assert!(String::from_utf8_lossy(&forgotten.stderr).contains("dataLogDir"));
    let first = listing.lines().find(|line| line.contains("Create /n0 ")).expect("/n0");
    let words: Vec<&str> = first.split_whitespace().collect();
    let zxid = words.windows(2).find(|pair| pair[0] == "zxid").map(|pair| pair[1]).expect("zxid");
    let one = zkrs(&["log", "dump", "--config", "zoo.cfg", "--from", zxid, "--to", zxid]);
    let one = String::from_utf8_lossy(&one.stdout);
    assert_eq!(one.lines().filter(|line| line.contains("Create /n")).count(), 1, "{one}");
    let list = zkrs(&["snapshot", "list", "--config", "zoo.cfg"]);
    assert!(list.status.success(), "{}", String::from_utf8_lossy(&list.stderr));
    let missing = zkrs(&["snapshot", "dump", "--config", "zoo.cfg", "--zxid", "0x7fffffff"]);
    assert!(!missing.status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn issue_13_readiness_is_reported_to_systemd() {
    let dir = scratch_dir("notify");
    let socket_path = dir.join("notify.sock");
    let port = free_port();
    let systemd = std::os::unix::net::UnixDatagram::bind(&socket_path).expect("bind");
    systemd.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut server = launch(
        &dir,
        &format!(
            "dataDir={}\nadmin.enableServer=false\nclientPort={port}\n",
            dir.join("data").display()
        ),
        &[("NOTIFY_SOCKET", socket_path.to_str().expect("utf-8"))],
    );
    let mut message = [0u8; 256];
    let length = systemd.recv(&mut message).expect("a notification");
    assert_eq!(&message[..length], b"READY=1\n", "{}", server.log());
    let connected = std::net::TcpStream::connect(("127.0.0.1", port));
    assert!(connected.is_ok(), "ready but not accepting: {connected:?}\n{}", server.log());
    // The log reaches the file through a reader thread, so the line may trail the notification.
    assert!(
        server.wait_for_line("serving clients").is_some(),
        "ready, not serving:\n{}",
        server.log()
    );
    server.signal("TERM");
    let length = systemd.recv(&mut message).expect("a notification");
    assert_eq!(&message[..length], b"STOPPING=1\n");
    assert!(server.wait_exit().success());
}

#[tokio::test]
async fn issue_13_max_cnxns_and_fsync_warning_threshold_are_honoured() {
    let server = ServerProcess::start("maxCnxns=1\nfsync.warningthresholdms=0");
    let mut first = Client::connect(server.address).await;
    first.create("/synced", b"x", 0).await.expect("create");
    let mut second = tokio::net::TcpStream::connect(server.address).await.expect("connect");
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(10), second.read(&mut byte)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "a second connection was kept: {read:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !(server.log().contains("maxCnxns") && server.log().contains("fsync.warningthresholdms"))
    {
        assert!(std::time::Instant::now() < deadline, "not logged:\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.close().await;
}
