//! Apache ZooKeeper's own peer protocol, byte for byte, so that zkrs members and
//! ZooKeeper members can form one ensemble: the election port's initial message and
//! notifications ([`election`]), and the quorum port's packets between a learner and
//! its leader ([`packet`]).
//!
//! Every format here was read from ZooKeeper's sources (`QuorumCnxManager`,
//! `FastLeaderElection`, `Leader`, `Learner`, `LearnerHandler`) and checked against a
//! running ZooKeeper 3.8 (`tests/zookeeper_wire.rs`, and the captured bytes in the unit
//! tests).

pub mod election;
pub mod packet;

#[cfg(test)]
#[path = "wire_test.rs"]
mod tests;
