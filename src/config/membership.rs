//! The ensemble's membership: `server.N` lines, parsed as ZooKeeper's `QuorumServer`
//! parses them, the `group.N` and `weight.N` lines of hierarchical quorums, and the text
//! ZooKeeper shows for them in `/zookeeper/config` and the `conf` four-letter word
//! (`QuorumMaj.toString`, `QuorumHierarchical.toString`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::ConfigError;
use crate::zab::Groups;

/// One `server.N=host:quorumPort:electionPort[:role][;[clientHost:]clientPort]` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    /// Host of the quorum and election ports, as written (a name or an address).
    pub host: String,
    /// Port followers use to talk to the leader.
    pub quorum_port: u16,
    /// Port of leader election.
    pub election_port: u16,
    /// Whether this member votes (`participant`) or only follows (`observer`).
    pub observer: bool,
    /// The client address given after `;`: host (`0.0.0.0` when only a port is given)
    /// and port.
    pub client: Option<(String, u16)>,
}

/// The members by id and the version of that list (hex in ZooKeeper's files).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Membership {
    /// The `server.N` lines by id.
    pub servers: BTreeMap<u64, ServerSpec>,
    /// The `group.N` lines: each group's members. With these or `weights`, quorums are
    /// hierarchical, as in ZooKeeper; with neither, majorities.
    pub groups: BTreeMap<u64, Vec<u64>>,
    /// The `weight.N` lines: a member's weight in its group (1 when not given).
    pub weights: BTreeMap<u64, u64>,
    /// The `version` of the membership: the hex suffix of the dynamic file's name, or the
    /// `version` key of a static file; 0 when neither is given.
    pub version: u64,
}

impl Membership {
    /// Members that vote.
    pub fn participants(&self) -> usize {
        self.servers.values().filter(|server| !server.observer).count()
    }

    /// Whether quorums are hierarchical: ZooKeeper's test is any `group` or `weight` line.
    pub fn is_hierarchical(&self) -> bool {
        !self.groups.is_empty() || !self.weights.is_empty()
    }

    /// The groups and weights the replication core counts quorums by, for hierarchical
    /// quorums.
    pub fn quorum_groups(&self) -> Option<Groups> {
        if !self.is_hierarchical() {
            return None;
        }
        let mut groups = Groups::default();
        for (group, members) in &self.groups {
            for member in members {
                groups.group_of.insert(*member, *group);
                groups.weight_of.insert(*member, self.weights.get(member).copied().unwrap_or(1));
            }
        }
        Some(groups)
    }

    /// ZooKeeper's checks of hierarchical quorums (`QuorumHierarchical.parse`), and two
    /// it leaves to a crash or to chance: every participant is in a group, no member is in
    /// two, and only participants are in groups.
    ///
    /// # Errors
    /// The first rule broken.
    pub fn check_groups(&self) -> Result<(), String> {
        if !self.is_hierarchical() {
            return Ok(());
        }
        let mut group_of = BTreeMap::new();
        for (group, members) in &self.groups {
            for member in members {
                if let Some(other) = group_of.insert(*member, *group) {
                    return Err(format!(
                        "server {member} is in multiple groups ({other} and {group})"
                    ));
                }
                match self.servers.get(member) {
                    None => {
                        return Err(format!(
                            "group.{group} lists {member}, which has no server.{member} line"
                        ))
                    }
                    Some(server) if server.observer => {
                        return Err(format!(
                            "group.{group} lists {member}, an observer: only participants vote"
                        ))
                    }
                    Some(_) => {}
                }
            }
        }
        let ungrouped = self
            .servers
            .iter()
            .find(|(id, server)| !server.observer && !group_of.contains_key(*id));
        match ungrouped {
            Some((id, _)) => Err(format!("Server {id} is not in a group")),
            None => Ok(()),
        }
    }

    /// The membership as ZooKeeper writes it in `/zookeeper/config`: one `server.N=` line
    /// per member with its role, the client address only when the member's line gave
    /// one; for hierarchical quorums each `group.N` line and each participant's weight
    /// (and any other weight given); then `version=<hex>` with no newline after it.
    pub fn to_zookeeper_text(&self) -> String {
        let mut out = String::new();
        for (id, server) in &self.servers {
            let role = if server.observer { "observer" } else { "participant" };
            let host = bracketed(&server.host);
            let _ = write!(
                out,
                "server.{id}={host}:{}:{}:{role}",
                server.quorum_port, server.election_port
            );
            if let Some((client_host, client_port)) = &server.client {
                let _ = write!(out, ";{}:{client_port}", bracketed(client_host));
            }
            out.push('\n');
        }
        if self.is_hierarchical() {
            for (group, members) in &self.groups {
                let mut members = members.clone();
                members.sort_unstable();
                let listed: Vec<String> = members.iter().map(u64::to_string).collect();
                let _ = writeln!(out, "group.{group}={}", listed.join(":"));
            }
            let mut weights = self.weights.clone();
            for (id, server) in &self.servers {
                if !server.observer {
                    weights.entry(*id).or_insert(1);
                }
            }
            for (id, weight) in weights {
                let _ = writeln!(out, "weight.{id}={weight}");
            }
        }
        let _ = write!(out, "version={:x}", self.version);
        out
    }
}

/// Parses the value of `group.N`: member ids separated by colons.
///
/// # Errors
/// An id that is not a number.
pub fn parse_group(key: &str, value: &str) -> Result<Vec<u64>, ConfigError> {
    value
        .split(':')
        .map(|id| {
            super::values::parse_long(id).and_then(|id| u64::try_from(id).ok()).ok_or_else(|| {
                ConfigError::invalid(key, value, format!("{id:?} is not a server id"))
            })
        })
        .collect()
}

/// Parses the value of `weight.N`.
///
/// # Errors
/// A value that is not a number, or is negative (ZooKeeper takes those, to no purpose).
pub fn parse_weight(key: &str, value: &str) -> Result<u64, ConfigError> {
    super::values::parse_long(value)
        .and_then(|weight| u64::try_from(weight).ok())
        .ok_or_else(|| ConfigError::invalid(key, value, "a weight is a number, 0 or more".into()))
}

/// A host as ZooKeeper prints it: an IPv6 address in brackets.
fn bracketed(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// `ConfigUtils.getHostAndPort`: `[v6]:a:b` or `host:a:b` split on colons.
fn host_and_ports(text: &str) -> Result<Vec<&str>, String> {
    let Some(rest) = text.strip_prefix('[') else {
        return Ok(text.split(':').collect());
    };
    let close =
        rest.find(']').ok_or_else(|| format!("{text} starts with '[' but has no matching ']:'"))?;
    let (host, after) = rest.split_at(close);
    let after = &after[1..];
    if after == ":" {
        return Err(format!("{text} doesn't have a port after colon"));
    }
    let mut parts = vec![host];
    if let Some(ports) = after.strip_prefix(':') {
        parts.extend(ports.split(':'));
    }
    Ok(parts)
}

fn port(key: &str, value: &str, text: &str) -> Result<u16, ConfigError> {
    super::values::parse_long(text)
        .and_then(|port| u16::try_from(port).ok())
        .ok_or_else(|| ConfigError::invalid(key, value, format!("{text:?} is not a port")))
}

/// Parses the value of `server.N` as ZooKeeper does.
///
/// # Errors
/// The line's form is wrong, a port is not a number, the quorum and election ports are
/// the same, or the line lists several addresses (`|`, multiAddress), which zkrs does not
/// support.
pub fn parse_server(key: &str, value: &str) -> Result<ServerSpec, ConfigError> {
    const FORM: &str = "expected host:quorumPort:electionPort[:participant|observer]\
                        [;[clientHost:]clientPort]";
    let sections: Vec<&str> = value.split(';').collect();
    if sections.len() > 2 {
        return Err(ConfigError::invalid(key, value, FORM.to_owned()));
    }
    if sections[0].contains('|') {
        return Err(ConfigError::invalid(
            key,
            value,
            "several addresses for one server (multiAddress) are not supported".to_owned(),
        ));
    }
    let parts =
        host_and_ports(sections[0]).map_err(|reason| ConfigError::invalid(key, value, reason))?;
    let (host, quorum, election, role) = match parts.as_slice() {
        [host, quorum, election] => (host, quorum, election, None),
        [host, quorum, election, role] => (host, quorum, election, Some(*role)),
        _ => return Err(ConfigError::invalid(key, value, FORM.to_owned())),
    };
    let observer = match role.map(str::to_ascii_lowercase).as_deref() {
        None | Some("participant") => false,
        Some("observer") => true,
        Some(_) => {
            return Err(ConfigError::invalid(
                key,
                value,
                "the role must be participant or observer".to_owned(),
            ))
        }
    };
    let (quorum_port, election_port) = (port(key, value, quorum)?, port(key, value, election)?);
    if quorum_port == election_port {
        return Err(ConfigError::invalid(
            key,
            value,
            "the quorum and election ports must differ".to_owned(),
        ));
    }
    let client = match sections.get(1) {
        None => None,
        Some(client) => {
            let parts = host_and_ports(client)
                .map_err(|reason| ConfigError::invalid(key, value, reason))?;
            match parts.as_slice() {
                [client_port] => Some(("0.0.0.0".to_owned(), port(key, value, client_port)?)),
                [client_host, client_port] => {
                    Some(((*client_host).to_owned(), port(key, value, client_port)?))
                }
                _ => return Err(ConfigError::invalid(key, value, FORM.to_owned())),
            }
        }
    };
    Ok(ServerSpec { host: (*host).to_owned(), quorum_port, election_port, observer, client })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(value: &str) -> ServerSpec {
        parse_server("server.1", value).expect("valid")
    }

    #[test]
    fn parses_every_form_zookeeper_accepts() {
        let plain = spec("zk1.example:2888:3888");
        assert_eq!(
            (plain.host.as_str(), plain.quorum_port, plain.election_port),
            ("zk1.example", 2888, 3888)
        );
        assert!(!plain.observer);
        assert_eq!(plain.client, None);
        assert!(spec("127.0.0.1:2888:3888:OBSERVER").observer);
        assert_eq!(spec("h:1:2;2181").client, Some(("0.0.0.0".to_owned(), 2181)));
        assert_eq!(
            spec("h:1:2:participant;10.0.0.1:2181").client,
            Some(("10.0.0.1".to_owned(), 2181))
        );
        let v6 = spec("[::1]:2888:3888;[::1]:2181");
        assert_eq!(v6.host, "::1");
        assert_eq!(v6.client, Some(("::1".to_owned(), 2181)));
    }

    #[test]
    fn rejects_what_zookeeper_rejects() {
        for bad in ["h:1", "h:1:1", "h:1:2:leader", "h:x:2", "h:1:2;a:b:c", "h:1:2;1;2", "[::1:1:2"]
        {
            assert!(parse_server("server.1", bad).is_err(), "{bad} was accepted");
        }
        let multi = parse_server("server.1", "a:1:2|b:1:2").expect_err("multiAddress");
        assert!(multi.to_string().contains("multiAddress"));
    }

    #[test]
    fn membership_text_is_zookeepers() {
        let mut membership = Membership { version: 0x100000000, ..Membership::default() };
        membership.servers.insert(1, spec("127.0.0.1:32511:32512:participant;127.0.0.1:32510"));
        membership.servers.insert(2, spec("127.0.0.1:32521:32522;32520"));
        membership.servers.insert(3, spec("localhost:32531:32532:observer"));
        assert_eq!(
            membership.to_zookeeper_text(),
            "server.1=127.0.0.1:32511:32512:participant;127.0.0.1:32510\n\
             server.2=127.0.0.1:32521:32522:participant;0.0.0.0:32520\n\
             server.3=localhost:32531:32532:observer\n\
             version=100000000"
        );
        assert_eq!(membership.participants(), 2);
    }
}
