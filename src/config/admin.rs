//! The AdminServer's settings, from the `zookeeper.admin.*` system properties ZooKeeper's
//! `JettyAdminServer` and admin commands read (in zoo.cfg as `admin.*`, which ZooKeeper
//! prefixes itself), with its defaults: on, at 0.0.0.0:8080, commands under `/commands`.

use std::net::SocketAddr;

use super::properties::Reader;
use super::tls::{read_admin_tls, AdminTls};
use super::{ConfigError, Notice};

/// How the AdminServer serves, when `admin.enableServer` leaves it on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSettings {
    /// Where it listens (`admin.serverAddress`, `admin.serverPort`).
    pub address: SocketAddr,
    /// A connection idle this long is closed (`admin.idleTimeout`, ms).
    pub idle_timeout_ms: u64,
    /// The path the commands hang under (`admin.commandURL`).
    pub command_url: String,
    /// `snapshot` and `restore` may each run once per this many ms
    /// (`admin.rateLimiterIntervalInMS`).
    pub rate_limit_interval_ms: u64,
    /// Whether `snapshot` runs (`admin.snapshot.enabled`).
    pub snapshot_enabled: bool,
    /// Whether `restore` runs (`admin.restore.enabled`).
    pub restore_enabled: bool,
    /// HTTPS (`admin.forceHttps`, `admin.portUnification`); `None`: plain HTTP.
    pub tls: Option<AdminTls>,
}

/// The settings, or `None` with `admin.enableServer=false`.
///
/// # Errors
/// An address that does not resolve, a value that is not a number, or HTTPS without the
/// `ssl.quorum` key store.
pub fn read_admin(
    read: &mut Reader<'_>,
    notices: &mut Vec<Notice>,
) -> Result<Option<AdminSettings>, ConfigError> {
    if !read.flag("admin.enableServer", true)? {
        return Ok(None);
    }
    let port: u16 = read.number("admin.serverPort", 8080)?;
    let address = super::http_address(read, "admin.serverAddress", port)?;
    let command_url = read.text("admin.commandURL").unwrap_or("/commands").trim();
    let command_url = format!("/{}", command_url.trim_matches('/'));
    Ok(Some(AdminSettings {
        address,
        idle_timeout_ms: read.number("admin.idleTimeout", 30_000)?,
        command_url,
        rate_limit_interval_ms: read.number("admin.rateLimiterIntervalInMS", 300_000)?,
        snapshot_enabled: read.flag("admin.snapshot.enabled", true)?,
        restore_enabled: read.flag("admin.restore.enabled", true)?,
        tls: read_admin_tls(read, notices)?,
    }))
}
