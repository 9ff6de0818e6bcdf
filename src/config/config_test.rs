use std::collections::BTreeMap;

use super::*;
use crate::config::tls::{ClientAuth, Protocol};
use crate::tls::stores::StoreType;

fn parse(text: &str) -> Config {
    Config::parse(text).unwrap_or_else(|err| panic!("{err}\n{text}"))
}

fn refused(text: &str) -> Vec<String> {
    match Config::parse(text) {
        Err(ConfigError::Refused(messages)) => messages,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn embedded_default_is_standalone_on_2181() {
    let config = Config::embedded_default();
    assert_eq!(config.static_client_address, Some("0.0.0.0:2181".parse().expect("address")));
    assert_eq!(config.data_dir, PathBuf::from("./zkrs-data"));
    assert!(config.is_standalone());
    assert_eq!(config.session_timeout_ms_min, 4000);
    assert_eq!(config.session_timeout_ms_max, 40000);
    assert!(config.notices.is_empty(), "{:?}", config.notices);
}

#[test]
fn defaults_are_zookeepers() {
    let config = parse("dataDir=/d\nclientPort=2181\n");
    assert_eq!(config.tick_time_ms, 3000);
    assert_eq!((config.session_timeout_ms_min, config.session_timeout_ms_max), (6000, 60000));
    assert_eq!(config.max_client_cnxns, 60);
    assert_eq!(config.max_cnxns, 0);
    assert_eq!(config.jute_max_buffer, 0xfffff);
    assert_eq!(config.jute_max_buffer_extra, 0xfffff, "as much again, as ZooKeeper's default");
    assert_eq!(config.snap_count, 100_000);
    assert!(config.force_sync);
    assert!(!config.extended_types_enabled);
    assert_eq!(config.four_letter_words, BTreeSet::from(["srvr".to_owned()]));
}

#[test]
fn parses_the_compat_harness_config() {
    let text = "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/tmp/x/data\n\
                clientPort=32310\nmaxClientCnxns=0\n4lw.commands.whitelist=*\n\
                extendedTypesEnabled=true\nadmin.enableServer=false\n\
                DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=\n\
                server.1=127.0.0.1:32111:32112\nserver.2=127.0.0.1:32121:32122\n\
                server.3=127.0.0.1:32131:32132:observer;127.0.0.1:32310\n";
    let config = parse(text);
    assert_eq!(config.max_client_cnxns, 0);
    assert!(config.extended_types_enabled);
    assert!(config.four_letter_words.contains("mntr"));
    let digest = config.digest.as_ref().expect("the digest provider is on");
    assert_eq!(digest.super_digest.as_deref(), Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU="));
    assert_eq!(config.membership.servers.len(), 3);
    assert!(config.membership.servers[&3].observer);
    assert!(!config.is_standalone());
    let warnings: Vec<&str> =
        config.notices.iter().filter(|notice| notice.warn).map(|n| n.message.as_str()).collect();
    assert_eq!(warnings, ["No server failure will be tolerated. You need at least 3 servers."]);
    let member = config.with_my_id(Some(3)).expect("member 3");
    let address = member.client_address().expect("resolves");
    assert_eq!(address, Some("127.0.0.1:32310".parse().expect("address")));
}

const TLS_ONLY: &str = "tickTime=2000\ndataDir=/d\nsecureClientPort=2281\n\
    serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n\
    ssl.keyStore.location=/etc/zk/keystore.jks\nssl.keyStore.password=secret\n\
    ssl.trustStore.location=/etc/zk/truststore.p12\n\
    authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider\n";

#[test]
fn a_tls_only_file_serves_tls_with_zookeepers_defaults_and_no_plain_port() {
    let config = parse(TLS_ONLY);
    assert_eq!(config.static_client_address, None);
    let tls = config.client_tls.expect("TLS settings");
    assert_eq!(tls.secure_address, Some("0.0.0.0:2281".parse().expect("address")));
    assert!(!tls.port_unification);
    assert_eq!(tls.settings.key_store.kind, StoreType::Jks);
    assert_eq!(tls.settings.key_store.password, "secret");
    let trust = tls.settings.trust_store.expect("a trust store");
    assert_eq!((trust.kind, trust.password.as_str()), (StoreType::Pkcs12, ""));
    assert_eq!(tls.settings.client_auth, ClientAuth::Need);
    assert_eq!(tls.settings.protocols, [Protocol::Tls13, Protocol::Tls12]);
    assert_eq!(tls.settings.cipher_suites, None);
    assert_eq!(tls.settings.handshake_detection_timeout_ms, 5000);
}

#[test]
fn tls_settings_are_read_as_zookeeper_reads_them() {
    let config = parse(&format!(
        "{TLS_ONLY}zookeeper.ssl.clientAuth=Want\nssl.protocol=TLSv1.2\n\
         ssl.ciphersuites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256\n\
         client.certReload=true\nssl.keyStore.type=pkcs12\n"
    ));
    let tls = config.client_tls.expect("TLS settings");
    assert_eq!(tls.settings.client_auth, ClientAuth::Want);
    assert_eq!(tls.settings.protocols, [Protocol::Tls12]);
    assert_eq!(tls.settings.key_store.kind, StoreType::Pkcs12);
    assert!(tls.settings.cert_reload);
    let suites = tls.settings.cipher_suites.expect("suites");
    assert_eq!(suites, ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"]);

    let config = parse(&format!("{TLS_ONLY}ssl.enabledProtocols=TLSv1.1,TLSv1.2,TLSv1.3\n"));
    let tls = config.client_tls.expect("TLS settings");
    assert_eq!(tls.settings.protocols, [Protocol::Tls13, Protocol::Tls12]);
    assert!(config.notices.iter().any(|notice| notice.warn && notice.message.contains("TLSv1.1")));
}

#[test]
fn tls_that_cannot_be_served_refuses_to_start() {
    for (extra, why) in [
        ("ssl.enabledProtocols=TLSv1.1\n", "no protocol"),
        ("ssl.protocol=SSLv2\n", "not a TLS protocol"),
        ("ssl.clientAuth=maybe\n", "none, want or need"),
        ("ssl.keyStore.type=BCFKS\n", "BouncyCastle"),
    ] {
        let err = Config::parse(&format!("{TLS_ONLY}{extra}")).expect_err(extra).to_string();
        assert!(err.contains(why), "{extra}: {err}");
    }
    let messages = refused(&format!("{TLS_ONLY}ssl.crl=true\nssl.quorum.ocsp=true\n")).join("\n");
    for key in ["ssl.crl", "ssl.quorum.ocsp"] {
        assert!(messages.contains(key), "{key} is not named in:\n{messages}");
    }
    let without_key_store = "dataDir=/d\nclientPort=2181\nclient.portUnification=true\n";
    let err = Config::parse(without_key_store).expect_err("no key store").to_string();
    assert!(err.contains("ssl.keyStore.location"), "{err}");
    let quorum_without_key_store = "dataDir=/d\nclientPort=2181\nsslQuorum=true\n";
    let err = Config::parse(quorum_without_key_store).expect_err("no key store").to_string();
    assert!(err.contains("ssl.quorum.keyStore.location"), "{err}");
}

#[test]
fn quorum_tls_reads_the_ssl_quorum_family_with_zookeepers_defaults() {
    let config = parse(
        "dataDir=/d\nportUnification=true\nssl.quorum.keyStore.location=/m.p12\n\
         zookeeper.ssl.quorum.trustStore.location=/t.jks\nssl.quorum.clientAuth=want\n\
         ssl.quorum.enabledProtocols=TLSv1.2\nsslQuorumReloadCertFiles=true\n",
    );
    let tls = config.quorum_tls.expect("quorum TLS settings");
    assert!(!tls.dial_tls && tls.port_unification);
    assert!(tls.hostname_verification && tls.client_hostname_verification);
    assert_eq!(tls.settings.key_store.kind, StoreType::Pkcs12);
    assert_eq!(tls.settings.trust_store.map(|store| store.kind), Some(StoreType::Jks));
    assert_eq!(tls.settings.client_auth, ClientAuth::Want);
    assert_eq!(tls.settings.protocols, [Protocol::Tls12]);
    assert!(tls.settings.cert_reload);
    assert!(config.client_tls.is_none(), "the client ports are not touched");
    let unchecked = parse(
        "dataDir=/d\nsslQuorum=true\nssl.quorum.keyStore.location=/m.jks\n\
         ssl.quorum.hostnameVerification=false\n",
    );
    let tls = unchecked.quorum_tls.expect("quorum TLS settings");
    assert!(tls.dial_tls && !tls.hostname_verification && !tls.client_hostname_verification);
    assert!(parse("dataDir=/d\n").quorum_tls.is_none());
}

#[test]
fn issue_13_misspelt_client_port_means_no_listener_and_names_the_key() {
    let config = parse("dataDir=/d\nclientport=2181\n");
    assert_eq!(config.static_client_address, None);
    assert_eq!(config.client_address().expect("no lookup"), None);
    assert!(config
        .notices
        .iter()
        .any(|notice| notice.warn && notice.message.contains("did you mean clientPort?")));
}

#[test]
fn issue_13_key_value_lines_and_continuations_are_read() {
    let config = parse(
        "tickTime 2000\ndataDir /var/lib/zk\nclientPort: 2181\n\
                        4lw.commands.whitelist=ruok,\\\n    conf\n",
    );
    assert_eq!(config.tick_time_ms, 2000);
    assert_eq!(config.data_dir, PathBuf::from("/var/lib/zk"));
    assert!(config.four_letter_words.contains("conf"));
    assert!(config.four_letter_words.contains("ruok"));
}

#[test]
fn issue_13_host_names_are_accepted_for_client_port_address() {
    let config = parse("dataDir=/d\nclientPort=2181\nclientPortAddress=localhost\n");
    let address = config.static_client_address.expect("an address");
    assert!(address.ip().is_loopback(), "{address}");
    assert_eq!(address.port(), 2181);
}

#[test]
fn client_port_address_without_client_port_is_an_error() {
    assert!(matches!(
        Config::parse("dataDir=/d\nclientPortAddress=127.0.0.1\n"),
        Err(ConfigError::Inconsistent(_))
    ));
}

#[test]
fn rejects_bad_values_with_the_key_named() {
    let err = Config::parse("dataDir=/d\nclientPort=nope\n").expect_err("invalid");
    assert!(err.to_string().contains("clientPort"));
    assert!(matches!(Config::parse("tickTime=5\n"), Err(ConfigError::Missing("dataDir"))));
    let err = Config::parse("dataDir=/d\nlocalSessionsEnabled=yes\n").expect_err("strict");
    assert!(err.to_string().contains("localSessionsEnabled"));
    assert!(Config::parse("dataDir=/d\nelectionAlg=1\n").is_err());
}

#[test]
fn force_sync_is_off_only_for_no() {
    assert!(!parse("dataDir=/d\nforceSync=no\n").force_sync);
    let lenient = parse("dataDir=/d\nforceSync=false\n");
    assert!(lenient.force_sync, "ZooKeeper syncs unless the value is exactly no");
    assert!(lenient
        .notices
        .iter()
        .any(|notice| notice.warn && notice.message.contains("forceSync")));
}

#[test]
fn skip_acl_is_on_only_for_yes_and_leader_serves_off_only_for_no() {
    let skipping = parse("dataDir=/d\nskipACL=yes\n");
    assert!(skipping.skip_acl);
    assert!(skipping
        .notices
        .iter()
        .any(|notice| notice.warn && notice.message.contains("skipACL")));
    assert!(!parse("dataDir=/d\n").skip_acl);
    let lenient = parse("dataDir=/d\nskipACL=true\n");
    assert!(!lenient.skip_acl, "ZooKeeper skips ACLs only when the value is exactly yes");
    assert!(lenient.notices.iter().any(|notice| notice.warn && notice.message.contains("skipACL")));
    assert!(!parse("dataDir=/d\nleaderServes=no\n").leader_serves);
    assert!(parse("dataDir=/d\nleaderServes=false\n").leader_serves);
    assert!(parse("dataDir=/d\n").leader_serves);
}

#[test]
fn an_ensemble_needs_init_and_sync_limits_and_a_myid() {
    let servers = "server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\n";
    let missing = Config::parse(&format!("dataDir=/d\nsyncLimit=5\n{servers}"));
    assert!(matches!(missing, Err(ConfigError::Missing("initLimit"))));
    let config = parse(&format!("dataDir=/d\ninitLimit=10\nsyncLimit=5\n{servers}"));
    assert!(config.clone().with_my_id(None).is_err(), "myid file is missing");
    assert!(config.clone().with_my_id(Some(7)).is_err(), "not a member");
    assert!(config.with_my_id(Some(2)).is_ok());
}

#[test]
fn one_participant_runs_standalone_unless_standalone_is_disabled() {
    let one = parse("dataDir=/d\nserver.1=127.0.0.1:2888:3888\n");
    assert!(one.is_standalone());
    let forced = parse(
        "dataDir=/d\ninitLimit=5\nsyncLimit=2\nstandaloneEnabled=false\nserver.1=127.0.0.1:2888:3888\n",
    );
    assert!(!forced.is_standalone());
    assert!(Config::parse(
        "dataDir=/d\nserver.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889:observer\n"
    )
    .is_err());
}

#[test]
fn member_client_address_must_agree_with_the_static_one() {
    let text = "dataDir=/d\ninitLimit=5\nsyncLimit=2\nclientPort=2181\n\
                server.1=127.0.0.1:2888:3888;2182\nserver.2=127.0.0.1:2889:3889;2181\n";
    assert!(parse(text).with_my_id(Some(1)).is_err());
    assert!(parse(text).with_my_id(Some(2)).is_ok());
}

#[test]
fn session_timeouts_are_clamped() {
    let config = parse("dataDir=/d\ntickTime=100\n");
    assert_eq!(config.negotiate_session_timeout_ms(1), 200);
    assert_eq!(config.negotiate_session_timeout_ms(100_000), 2000);
    assert_eq!(config.negotiate_session_timeout_ms(700), 700);
}

#[test]
fn read_only_mode_enables_isro() {
    let config = parse("dataDir=/d\nreadonlymode.enabled=true\n");
    assert!(config.four_letter_words.contains("isro"));
}

#[test]
fn dynamic_file_version_is_the_hex_suffix() {
    assert_eq!(dynamic_file_version(Path::new("/c/zoo.cfg.dynamic.100000000")), Some(0x100000000));
    assert_eq!(dynamic_file_version(Path::new("/c/zoo.cfg.dynamic")), None);
}

#[test]
fn issue_13_dynamic_config_file_forms_an_ensemble() {
    let dir = std::env::temp_dir().join(format!("zkrs-config-test-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("data")).expect("mkdir");
    std::fs::write(dir.join("data/myid"), "2\n").expect("myid");
    let dynamic = dir.join("zoo.cfg.dynamic.100000000");
    std::fs::write(
        &dynamic,
        "server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\n\
         server.2=127.0.0.1:2889:3889:participant;2182\nserver.3=127.0.0.1:2890:3890;2183\n",
    )
    .expect("dynamic");
    let static_file = dir.join("zoo.cfg");
    std::fs::write(
        &static_file,
        format!(
            "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\ndynamicConfigFile={}\n",
            dir.join("data").display(),
            dynamic.display()
        ),
    )
    .expect("zoo.cfg");
    let config = Config::load(&static_file).expect("loads");
    assert!(!config.is_standalone());
    assert_eq!(config.my_id, Some(2));
    assert_eq!(config.membership.version, 0x100000000);
    assert_eq!(
        config.client_address().expect("resolves"),
        Some("0.0.0.0:2182".parse().expect("a"))
    );
    assert!(config.membership.to_zookeeper_text().ends_with("version=100000000"));

    std::fs::write(&dynamic, "server.1=127.0.0.1:2888:3888\nversion=1\n").expect("dynamic");
    assert!(Config::load(&static_file).is_err(), "a version inside the dynamic file");
    std::fs::write(&dynamic, "server.1=127.0.0.1:2888:3888\n").expect("dynamic");
    let mut with_servers = std::fs::read_to_string(&static_file).expect("read");
    with_servers.push_str("server.4=127.0.0.1:2891:3891\n");
    std::fs::write(&static_file, with_servers).expect("zoo.cfg");
    let err = Config::load(&static_file).expect_err("server lines in both files");
    assert!(err.to_string().contains("must be in a separate dynamic config file"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn packets_between_members_may_carry_the_extra_size_zookeeper_allows() {
    let extra =
        |text: &str| parse(&format!("dataDir=/d\nclientPort=2181\n{text}")).jute_max_buffer_extra;
    assert_eq!(extra("jute.maxbuffer=5000\n"), 5000, "the default follows jute.maxbuffer");
    assert_eq!(extra("jute.maxbuffer.extrasize=4096\n"), 4096);
    assert_eq!(extra("jute.maxbuffer.extrasize=10\n"), 1024, "never below 1024");
}

#[test]
fn linearizable_reads_are_off_unless_asked_for() {
    assert!(!parse("dataDir=/d\n").linearizable_reads);
    assert!(parse("dataDir=/d\nzkrs.linearizableReads=true\n").linearizable_reads);
    let err = Config::parse("dataDir=/d\nzkrs.linearizableReads=yes\n").expect_err("strict");
    assert!(err.to_string().contains("zkrs.linearizableReads"));
}

#[test]
fn sasl_users_come_from_the_jaas_files_server_section() {
    let dir = std::env::temp_dir().join(format!("zkrs-jaas-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let digest = dir.join("digest.conf");
    std::fs::write(
        &digest,
        "Server { org.apache.zookeeper.server.auth.DigestLoginModule required \
         user_bob=\"bobsecret\"; };",
    )
    .expect("write");
    let kerberos = dir.join("kerberos.conf");
    std::fs::write(
        &kerberos,
        "Server { com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true; };",
    )
    .expect("write");
    let provider = "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider";
    let config = parse(&format!(
        "dataDir=/d\n{provider}\njava.security.auth.login.config={}\nzookeeper.superUser=bob\n",
        digest.display()
    ));
    let sasl = config.sasl.expect("SASL users");
    assert_eq!(sasl.passwords.get("bob").map(String::as_str), Some("bobsecret"));
    assert_eq!(sasl.super_user.as_deref(), Some("bob"));
    let err = Config::parse(&format!(
        "dataDir=/d\njava.security.auth.login.config={}\n",
        kerberos.display()
    ))
    .expect_err("GSSAPI only")
    .to_string();
    assert!(err.contains("GSSAPI"), "{err}");
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn quorum_sasl_reads_the_jaas_quorum_sections_and_refuses_what_zookeeper_refuses() {
    let dir = std::env::temp_dir().join(format!("zkrs-quorum-jaas-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let jaas = dir.join("jaas.conf");
    std::fs::write(
        &jaas,
        "QuorumServer {\n org.apache.zookeeper.server.auth.DigestLoginModule required\n \
         user_a=\"secret-a\" user_b=\"secret-b\";\n};\nQuorumLearner {\n \
         org.apache.zookeeper.server.auth.DigestLoginModule required\n username=\"a\" \
         password=\"secret-a\";\n};\n",
    )
    .expect("jaas");
    let base = format!("dataDir=/d\njava.security.auth.login.config={}\n", jaas.display());
    let config = parse(&format!(
        "{base}quorum.auth.enableSasl=true\nquorum.auth.learnerRequireSasl=true\n\
         quorum.auth.serverRequireSasl=true\n"
    ));
    let sasl = config.quorum_sasl.expect("quorum SASL");
    assert!(sasl.learner_required && sasl.server_required);
    assert_eq!(sasl.learner, ("a".to_owned(), "secret-a".to_owned()));
    assert_eq!(sasl.users.get("b").map(String::as_str), Some("secret-b"));
    assert!(config.sasl.is_none(), "no Server section: no client SASL");
    assert!(parse(&base).quorum_sasl.is_none());
    for (extra, why) in [
        ("quorum.auth.serverRequireSasl=true\n", "enableSasl is disabled"),
        ("quorum.auth.learnerRequireSasl=true\n", "enableSasl is disabled"),
        (
            "quorum.auth.enableSasl=true\nquorum.auth.serverRequireSasl=true\n",
            "learnerRequireSasl is disabled",
        ),
        (
            "quorum.auth.enableSasl=true\nquorum.auth.server.saslLoginContext=Missing\n",
            "Missing section has no",
        ),
    ] {
        let err = Config::parse(&format!("{base}{extra}")).expect_err(extra).to_string();
        assert!(err.contains(why), "{extra}: {err}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn group_and_weight_lines_make_quorums_hierarchical_as_in_zookeeper() {
    let members = "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/d\n\
                   server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\n\
                   server.3=127.0.0.1:2890:3890\nserver.4=127.0.0.1:2891:3891:observer\n";
    assert_eq!(parse(members).membership.quorum_groups(), None, "majorities without groups");
    let config = parse(&format!("{members}group.1=2:1\ngroup.2=3\nweight.2=0\n"));
    let groups = config.membership.quorum_groups().expect("hierarchical");
    assert_eq!(groups.group_of, BTreeMap::from([(1, 1), (2, 1), (3, 2)]));
    assert_eq!(groups.weight_of, BTreeMap::from([(1, 1), (2, 0), (3, 1)]));
    // As ZooKeeper 3.8 prints the same lines in /zookeeper/config (checked beside it).
    assert!(
        config.membership.to_zookeeper_text().ends_with(
            "server.4=127.0.0.1:2891:3891:observer\ngroup.1=1:2\ngroup.2=3\n\
             weight.1=1\nweight.2=0\nweight.3=1\nversion=0"
        ),
        "{}",
        config.membership.to_zookeeper_text()
    );
    for (lines, why) in [
        ("group.1=1:2\n", "Server 3 is not in a group"),
        ("group.1=1:2\ngroup.2=2:3\n", "server 2 is in multiple groups"),
        ("group.1=1:2\ngroup.2=3:4\n", "an observer"),
        ("group.1=1:2\ngroup.2=3:9\n", "no server.9 line"),
        ("group.1=1:2:3\nweight.1=-1\n", "weight.1"),
        ("group.1=1:x:3\n", "group.1"),
        ("weight.1=2\n", "is not in a group"),
    ] {
        let err = Config::parse(&format!("{members}{lines}")).expect_err(lines);
        assert!(err.to_string().contains(why), "{lines}: {err}");
    }
}
