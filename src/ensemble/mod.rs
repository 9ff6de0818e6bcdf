//! What an ensemble member needs around the replication core: who the members are and
//! where they listen ([`Membership`]), the frames the pipeline exchanges with them
//! ([`frame`]), the connections that carry them ([`link`]) in ZooKeeper's own protocol
//! ([`zookeeper`]). The server's driver feeds the core and
//! carries out its actions (`server::pipeline`, fed by `server::driver`).

pub mod frame;
pub mod link;
pub mod zookeeper;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use crate::config::Config;
use crate::ensemble::link::stream::PeerSecurity;
use crate::ensemble::link::{LinkConfig, PeerAddresses};
use crate::tls::ServerTls;
use crate::zab::{ServerId, ZabConfig};

/// Core ticks per `tickTime`: the core counts time in tenths of a tick, so a member
/// notices a silent peer, re-sends a vote and finishes an election within a fraction of a
/// tick; the limits of zoo.cfg (`initLimit`, `syncLimit`, in ticks) are scaled to match.
pub const CORE_TICKS_PER_TICK: u32 = 10;

/// How long an election waits, once a quorum agrees, for a better vote (ZooKeeper's
/// `finalizeWait`).
const FINALIZE_WAIT_MS: u32 = 200;

/// Recent entries a leader keeps to bring a lagging follower up to date with a DIFF;
/// one further behind gets a snapshot.
const DIFF_WINDOW_ENTRIES: usize = 10_000;

/// Why a configuration describes no membership this server can take part in.
#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    /// An ensemble member without an id.
    #[error("an ensemble member needs dataDir/myid")]
    NoId,
    /// An id no `server.N` line names.
    #[error("myid {0} has no server.{0} line in the configuration")]
    UnknownId(ServerId),
    /// A member's host name does not resolve.
    #[error("resolving server.{member} ({host}): {source}")]
    Resolve {
        /// The member.
        member: ServerId,
        /// Its host.
        host: String,
        /// Why not.
        #[source]
        source: std::io::Error,
    },
    /// The members' TLS context cannot be built from the `ssl.quorum.*` stores.
    #[error("TLS between members: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// A member's host name resolves to nothing.
    #[error("server.{member} ({host}) has no address")]
    NoAddress {
        /// The member.
        member: ServerId,
        /// Its host.
        host: String,
    },
}

/// This member's place in the ensemble.
#[derive(Debug, Clone)]
pub struct Membership {
    /// The core's configuration: ids, voters, observers, limits in core ticks.
    pub zab: ZabConfig,
    /// Where the links are made.
    pub links: LinkConfig,
    /// How often the core ticks, in milliseconds.
    pub core_tick_ms: u64,
    /// A standalone server: an ensemble of one voter with no peers and no election
    /// port, which reports itself in ZooKeeper's standalone mode.
    pub standalone: bool,
}

impl Membership {
    /// The membership `config` describes: its `server.N` lines and `myid`.
    ///
    /// # Errors
    /// If `myid` is missing or not among the servers, or an address does not resolve.
    pub fn from_config(config: &Config) -> Result<Membership, MembershipError> {
        let id = config.my_id.ok_or(MembershipError::NoId)?;
        if !config.membership.servers.contains_key(&id) {
            return Err(MembershipError::UnknownId(id));
        }
        let mut members = BTreeMap::new();
        let (mut voters, mut observers) = (BTreeSet::new(), BTreeSet::new());
        for (&member, spec) in &config.membership.servers {
            let resolve = |port: u16| -> Result<SocketAddr, MembershipError> {
                let host = || spec.host.clone();
                (spec.host.as_str(), port)
                    .to_socket_addrs()
                    .map_err(|source| MembershipError::Resolve { member, host: host(), source })?
                    .next()
                    .ok_or_else(|| MembershipError::NoAddress { member, host: host() })
            };
            let addresses = PeerAddresses {
                quorum: resolve(spec.quorum_port)?,
                election: resolve(spec.election_port)?,
                host: spec.host.clone(),
            };
            members.insert(member, addresses);
            if spec.observer {
                observers.insert(member);
            } else {
                voters.insert(member);
            }
        }
        let core_tick_ms = core_tick_ms(config);
        let finalize_ticks =
            u32::try_from(u64::from(FINALIZE_WAIT_MS).div_ceil(core_tick_ms)).unwrap_or(1).max(1);
        let zab = ZabConfig {
            id,
            voters,
            observers,
            groups: config.membership.quorum_groups(),
            init_limit_ticks: config.init_limit.max(1) * CORE_TICKS_PER_TICK,
            sync_limit_ticks: config.sync_limit.max(1) * CORE_TICKS_PER_TICK,
            finalize_ticks,
            window_entries: DIFF_WINDOW_ENTRIES,
        };
        let links = LinkConfig {
            my_id: id,
            members,
            membership_text: config.membership.to_zookeeper_text(),
            config_version: config.membership.version,
            packet_data_max: config.jute_max_buffer + config.jute_max_buffer_extra,
            sasl: config.quorum_sasl.clone().map(Arc::new),
            security: match &config.quorum_tls {
                None => PeerSecurity::Plain,
                Some(quorum_tls) => {
                    let tls = ServerTls::for_members(quorum_tls.settings.clone())?;
                    PeerSecurity::Tls(Arc::new(tls), quorum_tls.clone())
                }
            },
        };
        Ok(Membership { zab, links, core_tick_ms, standalone: false })
    }

    /// A standalone server as the ensemble of one it is, with the id `id`: it elects
    /// itself at its first tick and commits what it logs. It keeps no entries for
    /// followers, having none.
    pub fn standalone(config: &Config, id: ServerId) -> Membership {
        let zab = ZabConfig {
            id,
            voters: BTreeSet::from([id]),
            observers: BTreeSet::new(),
            groups: None,
            init_limit_ticks: CORE_TICKS_PER_TICK,
            sync_limit_ticks: CORE_TICKS_PER_TICK,
            finalize_ticks: 0,
            window_entries: 0,
        };
        let core_tick_ms = core_tick_ms(config);
        let links = LinkConfig {
            my_id: id,
            members: BTreeMap::new(),
            membership_text: String::new(),
            config_version: 0,
            packet_data_max: config.jute_max_buffer + config.jute_max_buffer_extra,
            security: PeerSecurity::Plain,
            sasl: None,
        };
        Membership { zab, links, core_tick_ms, standalone: true }
    }

    /// This member's id.
    pub fn id(&self) -> ServerId {
        self.zab.id
    }
}

/// The core's tick: a tenth of `tickTime`.
fn core_tick_ms(config: &Config) -> u64 {
    u64::from((config.tick_time_ms / CORE_TICKS_PER_TICK).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_scaled_to_core_ticks_and_observers_do_not_vote() {
        let mut config = Config::parse(
            "tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir=/tmp/x\n\
             server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\n\
             server.3=127.0.0.1:2890:3890:observer\n",
        )
        .expect("parses");
        config.my_id = Some(2);
        let membership = Membership::from_config(&config).expect("valid");
        assert_eq!(membership.id(), 2);
        assert_eq!(membership.core_tick_ms, 50);
        assert_eq!(membership.zab.init_limit_ticks, 100);
        assert_eq!(membership.zab.sync_limit_ticks, 50);
        assert_eq!(membership.zab.finalize_ticks, 4);
        assert_eq!(membership.zab.voters, BTreeSet::from([1, 2]));
        assert_eq!(membership.zab.observers, BTreeSet::from([3]));
        let third = &membership.links.members[&3];
        assert_eq!(third.election, "127.0.0.1:3890".parse().expect("address"));
        assert_eq!(third.quorum, "127.0.0.1:2890".parse().expect("address"));
    }

    #[test]
    fn a_member_without_its_own_server_line_is_refused() {
        let mut config =
            Config::parse("dataDir=/tmp/x\nserver.1=127.0.0.1:2888:3888\n").expect("parses");
        config.my_id = Some(4);
        assert!(Membership::from_config(&config).is_err());
    }
}
