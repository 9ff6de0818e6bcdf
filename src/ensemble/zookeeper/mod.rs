//! Apache ZooKeeper's own peer protocol, byte for byte, so that zkrs members and
//! ZooKeeper members can form one ensemble: the election port's initial message and
//! notifications ([`election`]), the quorum port's packets between a learner and its
//! leader ([`packet`]), and what the replication core's messages are as those packets
//! on a learner's side ([`learner`]).
//!
//! Every format here was read from ZooKeeper's sources (`QuorumCnxManager`,
//! `FastLeaderElection`, `Leader`, `Learner`, `LearnerHandler`) and checked against a
//! running ZooKeeper 3.8 (`tests/zookeeper_wire.rs`, and the captured bytes in the unit
//! tests).

pub mod election;
pub mod learner;
pub mod packet;

#[cfg(test)]
#[path = "wire_test.rs"]
mod tests;
