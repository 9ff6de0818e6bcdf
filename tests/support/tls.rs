//! TLS stores for tests, made as operators make them (`make-tls-stores`: openssl and
//! the JDK's keytool), and the zoo.cfg lines that use them between members.

use std::path::{Path, PathBuf};

use super::server::scratch_dir;

/// A fresh set of test stores (see `tests/support/make-tls-stores` for what is in it).
pub fn stores() -> PathBuf {
    let dir = scratch_dir("tls-stores");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/make-tls-stores");
    let made = std::process::Command::new(script).arg(&dir).status().expect("make-tls-stores");
    assert!(made.success(), "make-tls-stores failed (it needs openssl, keytool and faketime)");
    dir
}

/// The `ssl.quorum.*` lines for a member whose identity is `identity` (`server`, or
/// `elsewhere`, whose certificate names only elsewhere.test), in JKS stores.
pub fn quorum_stores(stores: &Path, identity: &str) -> String {
    format!(
        "ssl.quorum.keyStore.location={}\nssl.quorum.keyStore.password=testpass\n\
         ssl.quorum.trustStore.location={}\nssl.quorum.trustStore.password=testpass\n",
        stores.join(format!("{identity}.jks")).display(),
        stores.join("trust.jks").display()
    )
}
