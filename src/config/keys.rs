//! Every zoo.cfg key ZooKeeper 3.9 documents, and what zkrs does with each, followed by
//! zkrs's own keys (named `zkrs.*`).
//!
//! This table is the one place that says how zkrs treats a key: [`super::Config`] reads
//! only keys marked [`Support::Honoured`], start-up reports the others through
//! [`classify`], and `zkrs config keys` prints the table the README's configuration
//! section is checked against. A key is one of:
//! - honoured: zkrs does what ZooKeeper does with it, with ZooKeeper's default;
//! - ignored: a tuning knob of ZooKeeper's own machinery (JVM, NIO threads, caches),
//!   harmless to leave out — said once at INFO;
//! - unsupported: zkrs does not do it yet. When the key only changes behaviour that
//!   clients notice, zkrs warns and runs; when it changes security, membership or
//!   durability, zkrs refuses to start, unless the value is ZooKeeper's default (asks for
//!   nothing): running weaker than configured is never an option.
//!
//! ZooKeeper maps a zoo.cfg key it does not parse itself to the system property
//! `zookeeper.<key>`; zkrs reads both spellings, `key` and `zookeeper.key`, as the same
//! key (keys whose property has no such prefix, like `jute.maxbuffer`, are read from
//! zoo.cfg too: zkrs has no JVM command line to take them from).

use super::values::Rule;

/// How zkrs treats a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// zkrs does what ZooKeeper does with it.
    Honoured,
    /// Harmless to leave out: it tunes machinery zkrs does not have.
    Ignored,
    /// Not done by zkrs yet; what leaving it out would change.
    Unsupported(Impact),
}

/// What an unsupported key would change if zkrs ran without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impact {
    /// Behaviour clients may notice; zkrs warns and runs.
    Behaviour,
    /// Who may connect or what they may do; zkrs refuses to start.
    Security,
    /// Who the members are or how they talk; zkrs refuses to start.
    Membership,
    /// What survives a crash; zkrs refuses to start.
    Durability,
}

impl Impact {
    /// Whether a key of this impact, set to other than its default, stops start-up.
    pub fn refuses(self) -> bool {
        self != Impact::Behaviour
    }

    fn name(self) -> &'static str {
        match self {
            Impact::Behaviour => "behaviour",
            Impact::Security => "security",
            Impact::Membership => "membership",
            Impact::Durability => "durability",
        }
    }
}

/// One zoo.cfg key, or a family of keys when the name ends in `.*`.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    /// The name as ZooKeeper's documentation spells it.
    pub name: &'static str,
    /// How ZooKeeper reads the value.
    pub rule: Rule,
    /// ZooKeeper's default as text; empty when unset by default.
    pub default: &'static str,
    /// What zkrs does with it.
    pub support: Support,
    /// One line for the operator: what the key does in zkrs.
    pub note: &'static str,
}

const fn key(name: &'static str, rule: Rule, default: &'static str, support: Support) -> Key {
    Key { name, rule, default, support, note: "" }
}

impl Key {
    const fn note(mut self, note: &'static str) -> Key {
        self.note = note;
        self
    }

    /// Whether `value` asks for nothing zkrs lacks: an unsupported key at ZooKeeper's
    /// default.
    pub fn is_inert(&self, value: &str) -> bool {
        let value = value.trim();
        match self.rule {
            Rule::Boolean | Rule::LenientBoolean => value.eq_ignore_ascii_case(self.default),
            _ => value == self.default,
        }
    }

    /// The table column saying what zkrs does.
    pub fn support_text(&self) -> String {
        match self.support {
            Support::Honoured => "honoured".to_owned(),
            Support::Ignored => "ignored (harmless)".to_owned(),
            Support::Unsupported(Impact::Behaviour) => "not supported: warns".to_owned(),
            Support::Unsupported(impact) => {
                format!("not supported ({}): refuses to start unless the default", impact.name())
            }
        }
    }
}

use Impact::{Behaviour, Durability, Membership, Security};
use Rule::{Boolean, DecodedInteger, Integer, LenientBoolean, NoUnlessYes, Text, YesUnlessNo};
use Support::{Honoured, Ignored, Unsupported};

/// Every key, in the order of ZooKeeper's administrator's guide.
pub const KEYS: &[Key] = &[
    // Minimum configuration.
    key("clientPort", Integer, "", Honoured)
        .note("Unset: no client listener, as in ZooKeeper (misspelt keys are reported)."),
    key("secureClientPort", Integer, "", Honoured).note("A port that speaks only TLS."),
    key("secureClientPortAddress", Text, "", Honoured),
    key("observerMasterPort", Integer, "", Ignored)
        .note("Observers sync from the leader instead of a follower."),
    key("dataDir", Text, "", Honoured).note("Required. Created when missing."),
    key("tickTime", Integer, "3000", Honoured),
    // Advanced configuration.
    key("dataLogDir", Text, "", Honoured).note(
        "Holds the txn log (`zkrs-log/`) and RocksDB's write-ahead log; created when missing. \
         A store refuses to start with another `dataLogDir` than the one it was written with.",
    ),
    key("globalOutstandingLimit", DecodedInteger, "1000", Honoured).note(
        "Past it, connections with requests outstanding are not read from; each connection \
         also stops reading past 1000 requests of its own.",
    ),
    key("preAllocSize", DecodedInteger, "65536", Ignored).note(
        "Log segments are filled to 16 MiB before use, ahead of time on a thread of their own.",
    ),
    key("snapCount", DecodedInteger, "100000", Honoured),
    key("snapSizeLimitInKb", DecodedInteger, "4194304", Ignored)
        .note("Snapshots are taken by count only."),
    key("txnLogSizeLimitInKb", DecodedInteger, "-1", Ignored),
    key("maxCnxns", DecodedInteger, "0", Honoured)
        .note("Client connections in all (0 = no limit)."),
    key("maxClientCnxns", Integer, "60", Honoured)
        .note("Client connections per IP address (0 = no limit)."),
    key("clientPortAddress", Text, "", Honoured).note("An address or a host name."),
    key("minSessionTimeout", Integer, "-1", Honoured).note("-1: 2 ticks."),
    key("maxSessionTimeout", Integer, "-1", Honoured).note("-1: 20 ticks."),
    key("fsync.warningthresholdms", DecodedInteger, "1000", Honoured)
        .note("A log sync slower than this is logged at WARN."),
    key("maxResponseCacheSize", DecodedInteger, "400", Ignored),
    key("maxGetChildrenResponseCacheSize", DecodedInteger, "400", Ignored),
    key("autopurge.snapRetainCount", Integer, "3", Honoured).note("At least 3."),
    key("autopurge.purgeInterval", Integer, "0", Honoured)
        .note("0 purges after every snapshot (ZooKeeper: never purges)."),
    key("syncEnabled", Boolean, "true", Ignored).note("Observers always log to disk."),
    key("extendedTypesEnabled", LenientBoolean, "false", Honoured).note("TTL nodes."),
    key("emulate353TTLNodes", LenientBoolean, "false", Unsupported(Behaviour)),
    key("watchManagerName", Text, "", Ignored),
    key("watcherCleanThreadsNum", DecodedInteger, "2", Ignored),
    key("watcherCleanThreshold", DecodedInteger, "1000", Ignored),
    key("watcherCleanIntervalInSeconds", DecodedInteger, "600", Ignored),
    key("maxInProcessingDeadWatchers", DecodedInteger, "-1", Ignored),
    key("bitHashCacheSize", DecodedInteger, "10", Ignored),
    key("fastleader.minNotificationInterval", DecodedInteger, "200", Ignored)
        .note("Elections are timed in tenths of a tick."),
    key("fastleader.maxNotificationInterval", DecodedInteger, "60000", Ignored),
    key("connectionMaxTokens", DecodedInteger, "0", Ignored).note(
        "ZooKeeper reads the throttle from zookeeper.connection_throttle_tokens, never from \
         this name; neither does zkrs.",
    ),
    key("connectionTokenFillTime", DecodedInteger, "1", Ignored)
        .note("As connectionMaxTokens: see zookeeper.connection_throttle_fill_time."),
    key("connectionTokenFillCount", DecodedInteger, "1", Ignored)
        .note("As connectionMaxTokens: see zookeeper.connection_throttle_fill_count."),
    key("connectionFreezeTime", DecodedInteger, "-1", Ignored)
        .note("As connectionMaxTokens: see zookeeper.connection_throttle_freeze_time."),
    key("connectionDropIncrease", Text, "0.02", Ignored)
        .note("As connectionMaxTokens: see zookeeper.connection_throttle_drop_increase."),
    key("connectionDropDecrease", Text, "0.002", Ignored)
        .note("As connectionMaxTokens: see zookeeper.connection_throttle_drop_decrease."),
    key("connectionDecreaseRatio", Text, "0", Ignored)
        .note("As connectionMaxTokens: see zookeeper.connection_throttle_decrease_ratio."),
    key("zookeeper.connection_throttle_tokens", DecodedInteger, "0", Honoured)
        .note("Handshakes' token bucket; 0 = no throttle. Refused ones count connection_rejected."),
    key("zookeeper.connection_throttle_fill_time", DecodedInteger, "1", Honoured)
        .note("Milliseconds per refill."),
    key("zookeeper.connection_throttle_fill_count", DecodedInteger, "1", Honoured)
        .note("Tokens per refill."),
    key("zookeeper.connection_throttle_freeze_time", DecodedInteger, "-1", Honoured)
        .note("BLUE random drops: ms between changes of the drop chance; -1 = off."),
    key("zookeeper.connection_throttle_drop_increase", Text, "0.02", Honoured),
    key("zookeeper.connection_throttle_drop_decrease", Text, "0.002", Honoured),
    key("zookeeper.connection_throttle_decrease_ratio", Text, "0", Honoured),
    key("zookeeper.connection_throttle_weight_enabled", LenientBoolean, "false", Honoured),
    key("zookeeper.connection_throttle_global_session_weight", DecodedInteger, "3", Honoured),
    key("zookeeper.connection_throttle_local_session_weight", DecodedInteger, "1", Honoured),
    key("zookeeper.connection_throttle_renew_session_weight", DecodedInteger, "2", Honoured),
    key("zookeeper.netty.server.outstandingHandshake.limit", DecodedInteger, "-1", Honoured)
        .note("TLS handshakes in progress past which a new connection is closed; -1 = none."),
    key("clientPortListenBacklog", Integer, "-1", Honoured).note("-1: zkrs's default of 1024."),
    key("serverCnxnFactory", Text, "", Ignored).note("zkrs has one connection layer."),
    key("flushDelay", DecodedInteger, "0", Ignored).note("zkrs commits in groups without a timer."),
    key("maxWriteQueuePollTime", DecodedInteger, "0", Ignored),
    key("maxBatchSize", DecodedInteger, "1000", Ignored),
    key("enforceQuota", LenientBoolean, "false", Honoured)
        .note("Refuse writes past a quota's hard limit (QUOTAEXCEEDED)."),
    key("requestThrottleLimit", DecodedInteger, "0", Ignored).note(
        "ZooKeeper reads zookeeper.request_throttle_max_requests, never this name; neither \
         does zkrs.",
    ),
    key("requestThrottleStallTime", DecodedInteger, "100", Ignored)
        .note("As requestThrottleLimit: see zookeeper.request_throttle_stall_time."),
    key("requestThrottleDropStale", LenientBoolean, "true", Ignored)
        .note("As requestThrottleLimit: see zookeeper.request_throttle_drop_stale."),
    key("requestStaleLatencyCheck", LenientBoolean, "false", Ignored)
        .note("As requestThrottleLimit: see zookeeper.request_stale_latency_check."),
    key("requestStaleConnectionCheck", LenientBoolean, "true", Ignored)
        .note("As requestThrottleLimit: see zookeeper.request_stale_connection_check."),
    key("zookeeper.request_throttle_max_requests", DecodedInteger, "0", Honoured)
        .note("Writes in process past which requests wait their turn (pings never do)."),
    key("zookeeper.request_throttle_stall_time", DecodedInteger, "100", Ignored)
        .note("A waiting request goes on as soon as a write completes, not at the next look."),
    key("zookeeper.request_throttle_drop_stale", LenientBoolean, "true", Unsupported(Behaviour))
        .note("zkrs drops the requests of a closed connection either way."),
    key("zookeeper.request_stale_latency_check", LenientBoolean, "false", Honoured)
        .note("A waiting request older than its session timeout is dropped with its connection."),
    key("zookeeper.request_stale_connection_check", LenientBoolean, "true", Unsupported(Behaviour))
        .note("zkrs drops the requests of a closed connection either way."),
    key("zookeeper.throttled_op_wait_time", DecodedInteger, "0", Honoured)
        .note("A request that waited longer, in ms, is answered THROTTLEDOP (-127)."),
    key("zookeeper.request_throttler.shutdownTimeout", DecodedInteger, "10000", Ignored),
    key("advancedFlowControlEnabled", LenientBoolean, "false", Ignored)
        .note("Each connection stops reading past 1000 queued requests."),
    key("enableEagerACLCheck", LenientBoolean, "false", Ignored)
        .note("ACLs are checked where the write is prepared."),
    key("maxConcurrentSnapSyncs", DecodedInteger, "10", Ignored),
    key("maxConcurrentDiffSyncs", DecodedInteger, "100", Ignored),
    key("digest.enabled", LenientBoolean, "true", Honoured)
        .note("ZooKeeper's tree digest (hash, digest_mismatches_count); false: none is kept."),
    key("snapshot.compression.method", Text, "", Ignored)
        .note("zkrs snapshots are compressed by the store."),
    key("snapshot.trust.empty", LenientBoolean, "false", Ignored),
    key("audit.enable", LenientBoolean, "false", Honoured).note(
        "ZooKeeper's audit lines, target zkrs::audit; with ZKRS_LOG_DIR also \
         zookeeper_audit.<date>.log.",
    ),
    key(
        "audit.impl.class",
        Text,
        "org.apache.zookeeper.audit.Slf4jAuditLogger",
        Unsupported(Security),
    )
    .note("A Java AuditLogger class: zkrs writes ZooKeeper's own audit lines."),
    key("largeRequestMaxBytes", DecodedInteger, "104857600", Honoured),
    key("largeRequestThreshold", DecodedInteger, "-1", Honoured).note(
        "A frame past it is a large request; one past the large-request budget closes its \
         connection.",
    ),
    // Cluster options.
    key("electionAlg", Integer, "3", Honoured).note("Only 3, as in ZooKeeper."),
    key("maxTimeToWaitForEpoch", DecodedInteger, "2000", Ignored),
    key("initLimit", Integer, "", Honoured).note("Required for an ensemble."),
    key("connectToLearnerMasterLimit", Integer, "0", Ignored).note("initLimit applies."),
    key("leaderServes", YesUnlessNo, "yes", Honoured)
        .note("no: the leader turns clients away and its four-letter words answer as not serving."),
    key("server.*", Text, "", Honoured)
        .note("host:port:port[:participant|observer][;[clientHost:]clientPort], one address."),
    key("syncLimit", Integer, "", Honoured).note("Required for an ensemble."),
    key("group.*", Text, "", Honoured)
        .note("Hierarchical quorums: a majority of groups, each by a majority of its weight."),
    key("weight.*", Integer, "1", Honoured)
        .note("A member's weight in its group; one of weight 0 is never elected."),
    key("cnxTimeout", DecodedInteger, "5000", Ignored),
    key("quorumCnxnTimeoutMs", DecodedInteger, "-1", Ignored),
    key("standaloneEnabled", Boolean, "true", Honoured),
    key("reconfigEnabled", Boolean, "false", Unsupported(Behaviour))
        .note("No dynamic reconfiguration yet: reconfig gets Unimplemented when true."),
    key("4lw.commands.whitelist", Text, "srvr", Honoured)
        .note("srvr is always on, isro too in read-only mode."),
    key("tcpKeepAlive", LenientBoolean, "false", Ignored),
    key("clientTcpKeepAlive", LenientBoolean, "false", Ignored),
    key("electionPortBindRetry", DecodedInteger, "3", Ignored),
    key("observer.reconnectDelayMs", DecodedInteger, "0", Ignored),
    key("observer.election.DelayMs", DecodedInteger, "200", Ignored),
    key("dynamicConfigFile", Text, "", Honoured)
        .note("Holds the server.N lines; its name's hex suffix is the version."),
    key("version", Text, "0", Honoured).note("The membership's version, in hex."),
    key("localSessionsEnabled", Boolean, "false", Honoured)
        .note("Sessions opened without a txn on the member that holds them."),
    key("localSessionsUpgradingEnabled", Boolean, "false", Honoured),
    key("oraclePath", Text, "", Unsupported(Membership))
        .note("The quorum oracle of two-member ensembles."),
    key("peerType", Text, "participant", Honoured)
        .note("The server.N line of this member decides, as in ZooKeeper."),
    // Encryption, authentication, authorization.
    key("DigestAuthenticationProvider.enabled", LenientBoolean, "true", Honoured)
        .note("Off: addauth digest fails and digest ACLs are invalid, as in ZooKeeper."),
    key("DigestAuthenticationProvider.superDigest", Text, "", Honoured),
    key("DigestAuthenticationProvider.digestAlg", Text, "SHA1", Honoured)
        .note("SHA-1, SHA-2 (224 to 512, 512/224, 512/256), SHA3 (224 to 512) or MD5."),
    key("IPAuthenticationProvider.usexforwardedfor", LenientBoolean, "false", Ignored)
        .note("Applies to the AdminServer only."),
    key("X509AuthenticationProvider.superUser", Text, "", Honoured)
        .note("A client certificate subject (RFC 2253) that is the super user."),
    key("zookeeper.superUser", Text, "", Honoured).note("The SASL user that is the super user."),
    key("java.security.auth.login.config", Text, "", Honoured).note(
        "The JAAS file: its Server section's DigestLoginModule users (a JVM flag in ZooKeeper).",
    ),
    key("ssl.authProvider", Text, "x509", Unsupported(Security))
        .note("Only the built-in x509 scheme."),
    key("zookeeper.ensembleAuthName", Text, "", Unsupported(Security)),
    key("sessionRequireClientSASLAuth", LenientBoolean, "false", Honoured)
        .note("As enforce.auth.schemes=sasl; needs the SASL authentication provider."),
    key("requireClientAuthScheme", Text, "", Unsupported(Security)).note(
        "ZooKeeper 3.8 never reads it, so it requires nothing there; to require SASL, set \
         enforce.auth.enabled=true and enforce.auth.schemes=sasl",
    ),
    key("enforce.auth.enabled", LenientBoolean, "false", Honoured).note(
        "A client not authenticated by one of enforce.auth.schemes gets \
         SESSIONCLOSEDREQUIRESASLAUTH (-124) to its first other request, and is disconnected.",
    ),
    key("enforce.auth.schemes", Text, "", Honoured)
        .note("Comma-separated; each needs a provider (ip and digest always have one)."),
    key("sslQuorum", Boolean, "false", Honoured)
        .note("Members dial each other over TLS and take only TLS (but see portUnification)."),
    key("ssl.keyStore.location", Text, "", Honoured)
        .note("PEM, PKCS12 or JKS; required for TLS on a client port."),
    key("ssl.keyStore.password", Text, "", Honoured),
    key("ssl.keyStore.passwordPath", Text, "", Honoured),
    key("ssl.keyStore.type", Text, "", Honoured).note("PEM, PKCS12 or JKS; else by extension."),
    key("ssl.trustStore.location", Text, "", Honoured)
        .note("Unset: the system's CA roots, as the JVM's default trust store."),
    key("ssl.trustStore.password", Text, "", Honoured),
    key("ssl.trustStore.passwordPath", Text, "", Honoured),
    key("ssl.trustStore.type", Text, "", Honoured),
    key("ssl.protocol", Text, "", Honoured)
        .note("Unset: TLSv1.3 and TLSv1.2 (ZooKeeper in FIPS mode: TLSv1.2 only)."),
    key("ssl.enabledProtocols", Text, "", Honoured).note("TLSv1.2 and TLSv1.3 are served."),
    key("ssl.ciphersuites", Text, "", Honoured).note("IANA names, as Java spells them."),
    key("ssl.clientAuth", Text, "need", Honoured).note("none, want or need."),
    key("ssl.hostnameVerification", LenientBoolean, "true", Honoured)
        .note("As in ZooKeeper, client certificates are not checked against host names."),
    key("ssl.clientHostnameVerification", LenientBoolean, "false", Honoured),
    key("ssl.handshakeDetectionTimeoutMillis", DecodedInteger, "5000", Honoured),
    key("ssl.crl", LenientBoolean, "false", Unsupported(Security))
        .note("Certificate revocation lists are not checked yet."),
    key("ssl.ocsp", LenientBoolean, "false", Unsupported(Security)),
    key("ssl.context.supplier.class", Text, "", Unsupported(Security))
        .note("A Java class; zkrs builds its TLS context from the stores."),
    key("ssl.sslProvider", Text, "JDK", Ignored).note("zkrs's TLS is rustls."),
    key("ssl.allowReverseDnsLookup", LenientBoolean, "false", Ignored),
    key("ssl.quorum.keyStore.location", Text, "", Honoured)
        .note("As ssl.keyStore.location, between members; required for quorum TLS."),
    key("ssl.quorum.keyStore.password", Text, "", Honoured),
    key("ssl.quorum.keyStore.passwordPath", Text, "", Honoured),
    key("ssl.quorum.keyStore.type", Text, "", Honoured),
    key("ssl.quorum.trustStore.location", Text, "", Honoured),
    key("ssl.quorum.trustStore.password", Text, "", Honoured),
    key("ssl.quorum.trustStore.passwordPath", Text, "", Honoured),
    key("ssl.quorum.trustStore.type", Text, "", Honoured),
    key("ssl.quorum.protocol", Text, "", Honoured),
    key("ssl.quorum.enabledProtocols", Text, "", Honoured),
    key("ssl.quorum.ciphersuites", Text, "", Honoured),
    key("ssl.quorum.clientAuth", Text, "need", Honoured),
    key("ssl.quorum.hostnameVerification", LenientBoolean, "true", Honoured).note(
        "A member's certificate must name its IP address, or the host its server.N line \
         names.",
    ),
    key("ssl.quorum.clientHostnameVerification", LenientBoolean, "true", Honoured)
        .note("Checks the dialling member's certificate too (with hostnameVerification)."),
    key("ssl.quorum.handshakeDetectionTimeoutMillis", DecodedInteger, "5000", Honoured),
    key("ssl.quorum.allowReverseDnsLookup", LenientBoolean, "false", Unsupported(Behaviour))
        .note("A dialling member's certificate must name its IP address."),
    key("ssl.quorum.crl", LenientBoolean, "false", Unsupported(Security)),
    key("ssl.quorum.ocsp", LenientBoolean, "false", Unsupported(Security)),
    key("ssl.quorum.context.supplier.class", Text, "", Unsupported(Security)),
    key("ssl.quorum.sslProvider", Text, "JDK", Ignored),
    key("ssl.quorum.*", Text, "", Unsupported(Security)),
    key("ssl.*", Text, "", Unsupported(Security)),
    key("sslQuorumReloadCertFiles", Boolean, "false", Honoured)
        .note("The quorum stores are read again when their files change."),
    key("client.certReload", LenientBoolean, "false", Honoured)
        .note("The stores are read again when their files change."),
    key("client.portUnification", LenientBoolean, "false", Honoured)
        .note("The plain client port also takes TLS clients."),
    key("portUnification", Boolean, "false", Honoured)
        .note("The quorum and election ports take plain and TLS members alike."),
    key("authProvider.*", Text, "", Honoured)
        .note("ZooKeeper's digest, IP, x509 and SASL providers; any other refuses to start."),
    key("quorum.auth.enableSasl", Boolean, "false", Honoured)
        .note("DIGEST-MD5 between members, from the JAAS file's Quorum sections."),
    key("quorum.auth.learnerRequireSasl", Boolean, "false", Honoured)
        .note("This member authenticates to the members it connects to."),
    key("quorum.auth.serverRequireSasl", Boolean, "false", Honoured)
        .note("This member refuses members that do not authenticate."),
    key("quorum.auth.learner.saslLoginContext", Text, "QuorumLearner", Honoured),
    key("quorum.auth.server.saslLoginContext", Text, "QuorumServer", Honoured),
    key("quorum.auth.kerberos.servicePrincipal", Text, "zkquorum/localhost", Ignored),
    key("quorum.cnxn.threads.size", Integer, "20", Ignored),
    key("multiAddress.enabled", LenientBoolean, "false", Ignored)
        .note("A server.N line with several addresses refuses to start."),
    key("multiAddress.reachabilityCheckTimeoutMs", Integer, "1000", Ignored),
    key("multiAddress.reachabilityCheckEnabled", LenientBoolean, "true", Ignored),
    key("fips-mode", LenientBoolean, "true", Ignored)
        .note("zkrs's TLS is rustls, which has no FIPS mode; see ssl.protocol."),
    // Experimental, unsafe and tuning options.
    key("readonlymode.enabled", LenientBoolean, "false", Honoured),
    key("zookeeper.follower.skipLearnerRequestToNextProcessor", LenientBoolean, "false", Ignored),
    key("forceSync", YesUnlessNo, "yes", Honoured)
        .note("Only the exact value no turns the log sync off, as in ZooKeeper."),
    key("jute.maxbuffer", DecodedInteger, "1048575", Honoured)
        .note("The largest frame a client may send."),
    key("jute.maxbuffer.extrasize", DecodedInteger, "1048575", Honoured)
        .note("Added to jute.maxbuffer for packets between members (at least 1024)."),
    key("skipACL", NoUnlessYes, "no", Honoured)
        .note("yes: no ACL is checked, for any client, as in ZooKeeper."),
    key("quorumListenOnAllIPs", Boolean, "false", Honoured),
    key("zookeeper.datadir.autocreate", LenientBoolean, "true", Honoured)
        .note("false: a missing dataDir or dataLogDir refuses to start."),
    key("zookeeper.db.autocreate", LenientBoolean, "true", Unsupported(Durability)),
    key("zookeeper.nio.numSelectorThreads", DecodedInteger, "", Ignored),
    key("zookeeper.nio.numWorkerThreads", DecodedInteger, "", Ignored),
    key("zookeeper.nio.shutdownTimeout", DecodedInteger, "5000", Ignored),
    key("zookeeper.commitProcessor.numWorkerThreads", DecodedInteger, "", Ignored),
    key("zookeeper.commitProcessor.maxReadBatchSize", DecodedInteger, "-1", Ignored),
    key("zookeeper.commitProcessor.maxCommitBatchSize", DecodedInteger, "1", Ignored),
    key("znode.container.checkIntervalMs", DecodedInteger, "60000", Honoured),
    key("znode.container.maxPerMinute", DecodedInteger, "10000", Ignored),
    key("znode.container.maxNeverUsedIntervalMs", DecodedInteger, "0", Ignored)
        .note("Never-used containers are kept, as with ZooKeeper's default."),
    key("zookeeper.messageTracker.BufferSize", DecodedInteger, "10", Ignored),
    key("zookeeper.messageTracker.Enabled", LenientBoolean, "false", Ignored),
    key("jvm.pause.info-threshold.ms", DecodedInteger, "1000", Ignored).note("No JVM."),
    key("jvm.pause.warn-threshold.ms", DecodedInteger, "10000", Ignored),
    key("jvm.pause.sleep.time.ms", DecodedInteger, "500", Ignored),
    key("jvm.pause.monitor", Boolean, "false", Ignored),
    // AdminServer and metrics.
    key("admin.enableServer", LenientBoolean, "true", Honoured)
        .note("The AdminServer: ZooKeeper 3.9's commands as JSON under admin.commandURL."),
    key("admin.serverAddress", Text, "0.0.0.0", Honoured),
    key("admin.serverPort", DecodedInteger, "8080", Honoured),
    key("admin.idleTimeout", DecodedInteger, "30000", Honoured),
    key("admin.commandURL", Text, "/commands", Honoured),
    key("admin.rateLimiterIntervalInMS", DecodedInteger, "300000", Honoured),
    key("admin.snapshot.enabled", LenientBoolean, "true", Honoured),
    key("admin.restore.enabled", LenientBoolean, "true", Honoured),
    key("admin.needClientAuth", LenientBoolean, "false", Honoured).note(
        "Over HTTPS, clients must present a certificate the ssl.quorum trust store verifies.",
    ),
    key("admin.forceHttps", LenientBoolean, "false", Honoured)
        .note("HTTPS only, with the ssl.quorum key and trust stores, as ZooKeeper's."),
    key("admin.portUnification", LenientBoolean, "false", Honoured)
        .note("HTTP and HTTPS on the one port."),
    key(
        "metricsProvider.className",
        Text,
        "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider",
        Honoured,
    )
    .note("PrometheusMetricsProvider serves /metrics; mntr has the metrics either way."),
    key("metricsProvider.httpHost", Text, "0.0.0.0", Honoured),
    key("metricsProvider.httpPort", Integer, "7000", Honoured),
    key("metricsProvider.httpsPort", Integer, "-1", Unsupported(Security))
        .note("HTTPS on /metrics (ZooKeeper 3.10): zkrs serves it over plain HTTP only."),
    key("metricsProvider.exportJvmInfo", LenientBoolean, "true", Honoured).note(
        "true: /metrics adds the process_* metrics (CPU, memory, files, start time); no jvm_*.",
    ),
    key("metricsProvider.*", Text, "", Ignored).note("Settings of the metrics provider."),
    // zkrs's own keys, which ZooKeeper does not have.
    key("zkrs.linearizableReads", Boolean, "false", Honoured)
        .note("zkrs only: a member answers a read once it has every write committed before it."),
];

/// The ZooKeeper digest, IP, x509 and SASL authentication providers, which zkrs has
/// built in.
const BUILT_IN_AUTH_PROVIDERS: [&str; 4] = [
    "org.apache.zookeeper.server.auth.DigestAuthenticationProvider",
    "org.apache.zookeeper.server.auth.IPAuthenticationProvider",
    "org.apache.zookeeper.server.auth.X509AuthenticationProvider",
    "org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
];

/// The table entry for a zoo.cfg key: an exact name first, then the longest family, each
/// tried as written and with the `zookeeper.` prefix added or removed.
pub fn lookup(name: &str) -> Option<&'static Key> {
    let other = match name.strip_prefix("zookeeper.") {
        Some(bare) => bare.to_owned(),
        None => format!("zookeeper.{name}"),
    };
    let spellings = [name, other.as_str()];
    let exact = KEYS.iter().find(|key| spellings.contains(&key.name));
    exact.or_else(|| {
        KEYS.iter()
            .filter_map(|key| Some((key, key.name.strip_suffix('*')?)))
            .filter(|(_, prefix)| spellings.iter().any(|spelling| spelling.starts_with(prefix)))
            .max_by_key(|(_, prefix)| prefix.len())
            .map(|(key, _)| key)
    })
}

/// What start-up must say or do about one key of a zoo.cfg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// zkrs reads it.
    Honoured,
    /// Said once at INFO.
    Ignored(String),
    /// Said at WARN; the server runs.
    Warn(String),
    /// The server must not start.
    Refuse(String),
}

/// How start-up treats `name=value`.
pub fn classify(name: &str, value: &str) -> Verdict {
    let Some(key) = lookup(name) else {
        return Verdict::Warn(match nearest(name) {
            Some(known) => format!("unknown key {name}; did you mean {known}?"),
            None => format!("unknown key {name}; ZooKeeper would only set a system property"),
        });
    };
    let note = if key.note.is_empty() { String::new() } else { format!(" ({})", key.note) };
    match key.support {
        Support::Honoured if key.name == "authProvider.*" => {
            if BUILT_IN_AUTH_PROVIDERS.contains(&value.trim()) {
                Verdict::Honoured
            } else {
                Verdict::Refuse(format!(
                    "{name}={value} (security: only ZooKeeper's digest, IP, x509 and SASL \
                     providers are built in)"
                ))
            }
        }
        Support::Honoured => Verdict::Honoured,
        Support::Ignored => Verdict::Ignored(format!("{name} is ignored{note}")),
        Support::Unsupported(_) if key.is_inert(value) => {
            Verdict::Ignored(format!("{name}={value} asks for nothing zkrs lacks{note}"))
        }
        Support::Unsupported(impact) if impact.refuses() => {
            let why = if key.note.is_empty() { "not supported yet" } else { key.note };
            Verdict::Refuse(format!("{name} ({}: {})", impact.name(), why.trim_end_matches('.')))
        }
        Support::Unsupported(_) => Verdict::Warn(format!("{name} is not supported{note}")),
    }
}

/// The known key nearest to a misspelt one, if any is close enough to be the intent:
/// the same ignoring case, or a few edits away.
pub fn nearest(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    KEYS.iter()
        .filter(|key| !key.name.ends_with('*'))
        .map(|key| (key.name, strsim::levenshtein(&lower, &key.name.to_ascii_lowercase())))
        .filter(|(known, distance)| *distance <= (known.len() / 4).clamp(1, 3))
        .min_by_key(|(_, distance)| *distance)
        .map(|(known, _)| known)
}

/// The table as Markdown, for the README's configuration section.
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| key | ZooKeeper's rule | ZooKeeper's default | zkrs | note |\n|---|---|---|---|---|\n",
    );
    for key in KEYS {
        let default = if key.default.is_empty() { "-" } else { key.default };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            key.name,
            key.rule.expects(),
            default,
            key.support_text(),
            key.note.replace('|', "\\|")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_lists_the_key_table() {
        let readme = include_str!("../../README.md");
        let begin = "<!-- zoo.cfg keys: begin (scripts/readme-keys) -->\n";
        let start = readme.find(begin).expect("the README's key table markers") + begin.len();
        let length = readme[start..].find("<!-- zoo.cfg keys: end -->").expect("end marker");
        assert!(
            readme[start..start + length] == markdown_table(),
            "the README's zoo.cfg table differs from src/config/keys.rs: run scripts/readme-keys"
        );
    }

    #[test]
    fn every_key_is_listed_once() {
        let mut names: Vec<&str> = KEYS.iter().map(|key| key.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "a key is listed twice");
    }

    #[test]
    fn both_spellings_of_a_property_find_the_key() {
        assert_eq!(lookup("snapCount").map(|key| key.name), Some("snapCount"));
        assert_eq!(lookup("zookeeper.snapCount").map(|key| key.name), Some("snapCount"));
        assert_eq!(lookup("superUser").map(|key| key.name), Some("zookeeper.superUser"));
        assert_eq!(lookup("server.12").map(|key| key.name), Some("server.*"));
        assert_eq!(lookup("ssl.quorum.unheardOf").map(|key| key.name), Some("ssl.quorum.*"));
        assert_eq!(lookup("zookeeper.ssl.clientAuth").map(|key| key.name), Some("ssl.clientAuth"));
        assert_eq!(lookup("sslQuorum").map(|key| key.name), Some("sslQuorum"));
        assert_eq!(
            lookup("metricsProvider.className").map(|key| key.name),
            Some("metricsProvider.className")
        );
        assert!(lookup("clientport").is_none());
    }

    #[test]
    fn security_keys_refuse_unless_they_ask_for_the_default() {
        assert!(matches!(classify("ssl.quorum.crl", "true"), Verdict::Refuse(_)));
        assert!(matches!(classify("ssl.crl", "true"), Verdict::Refuse(_)));
        assert!(matches!(classify("ssl.authProvider", "x509"), Verdict::Ignored(_)));
        assert!(matches!(classify("ssl.authProvider", "custom"), Verdict::Refuse(_)));
        assert!(matches!(classify("ssl.quorum.unheardOf", "x"), Verdict::Refuse(_)));
        assert!(matches!(classify("quorum.auth.enableSasl", "TRUE"), Verdict::Honoured));
        assert!(matches!(classify("zookeeper.db.autocreate", "false"), Verdict::Refuse(_)));
        assert!(matches!(classify("oraclePath", "/etc/zookeeper/oracle"), Verdict::Refuse(_)));
    }

    #[test]
    fn auth_providers_other_than_the_built_in_ones_refuse() {
        let custom = "com.example.TokenAuthenticationProvider";
        assert!(matches!(classify("authProvider.1", custom), Verdict::Refuse(_)));
        let digest = "org.apache.zookeeper.server.auth.DigestAuthenticationProvider";
        assert_eq!(classify("authProvider.1", digest), Verdict::Honoured);
    }

    #[test]
    fn misspelt_keys_name_the_nearest_known_key() {
        assert_eq!(nearest("clientport"), Some("clientPort"));
        assert_eq!(nearest("tickTim"), Some("tickTime"));
        assert_eq!(nearest("dataLogdir"), Some("dataLogDir"));
        assert_eq!(nearest("completelyDifferent"), None);
        match classify("clientport", "2181") {
            Verdict::Warn(message) => assert!(message.contains("did you mean clientPort?")),
            other => panic!("expected a warning, got {other:?}"),
        }
    }

    #[test]
    fn behaviour_keys_warn_and_tuning_keys_are_ignored() {
        assert_eq!(classify("admin.enableServer", "false"), Verdict::Honoured);
        assert_eq!(classify("admin.forceHttps", "true"), Verdict::Honoured);
        assert!(matches!(classify("metricsProvider.httpsPort", "7443"), Verdict::Refuse(_)));
        assert_eq!(classify("metricsProvider.exportJvmInfo", "false"), Verdict::Honoured);
        assert!(matches!(classify("request_throttle_drop_stale", "false"), Verdict::Warn(_)));
        assert!(matches!(classify("requestThrottleLimit", "100"), Verdict::Ignored(_)));
        assert!(matches!(classify("preAllocSize", "1"), Verdict::Ignored(_)));
        assert_eq!(classify("tickTime", "2000"), Verdict::Honoured);
    }
}
