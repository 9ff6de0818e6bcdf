//! Session ids and passwords, derived exactly as ZooKeeper derives them.
//!
//! ZooKeeper's password is `new java.util.Random(sessionId ^ 0xB3415C00).nextBytes(16)`.
//! Deriving it (rather than storing a random one) means every server of an ensemble, and
//! a restarted server, can check a reconnecting client without sharing a secret; doing it
//! bit for bit like ZooKeeper keeps clients that cache passwords working across a switch.

use crate::txn::SessionId;

/// Length of a session password.
pub const PASSWORD_LEN: usize = 16;

const SUPER_SECRET: i64 = 0xB341_5C00;

/// `java.util.Random`, just enough of it for `nextBytes`.
struct JavaRandom {
    seed: i64,
}

impl JavaRandom {
    const MULTIPLIER: i64 = 0x5_DEEC_E66D;
    const MASK: i64 = (1 << 48) - 1;

    fn new(seed: i64) -> JavaRandom {
        JavaRandom { seed: (seed ^ Self::MULTIPLIER) & Self::MASK }
    }

    fn next_int(&mut self) -> i32 {
        self.seed = (self.seed.wrapping_mul(Self::MULTIPLIER).wrapping_add(0xB)) & Self::MASK;
        (self.seed >> 16) as i32
    }

    fn next_bytes(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(4) {
            let mut random = self.next_int();
            for byte in chunk {
                *byte = random as u8;
                random >>= 8;
            }
        }
    }
}

/// The password of a session.
pub fn session_password(session_id: SessionId) -> [u8; PASSWORD_LEN] {
    let mut password = [0u8; PASSWORD_LEN];
    JavaRandom::new(session_id.raw() ^ SUPER_SECRET).next_bytes(&mut password);
    password
}

/// The first session id a server hands out: its id in the top byte, the start time in
/// the middle, a counter in the low 16 bits (ZooKeeper's `initializeNextSessionId`).
pub fn initial_session_id(server_id: u64, now_ms: u64) -> SessionId {
    let time_part = ((now_ms << 24) >> 8) as i64;
    let id = time_part | ((server_id as i64) << 56);
    SessionId::new(if id == i64::MIN { id + 1 } else { id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_random_matches_the_jdk() {
        // new java.util.Random(42).nextInt() == -1170105035, then 234785527.
        let mut random = JavaRandom::new(42);
        assert_eq!(random.next_int(), -1_170_105_035);
        assert_eq!(random.next_int(), 234_785_527);
    }

    #[test]
    fn password_matches_zookeeper() {
        // Recorded from Apache ZooKeeper 3.8.0 with kazoo.
        let expected = [
            0xb5, 0x77, 0xab, 0x50, 0x9e, 0xc7, 0xff, 0x83, 0x1b, 0xbe, 0xe8, 0xb2, 0x17, 0x7c,
            0x6b, 0x88,
        ];
        assert_eq!(session_password(SessionId::new(0x0100_0008_4231_0000)), expected);
    }

    #[test]
    fn password_is_stable_per_session() {
        assert_eq!(
            session_password(SessionId::new(0x1000)),
            session_password(SessionId::new(0x1000))
        );
        assert_ne!(
            session_password(SessionId::new(0x1000)),
            session_password(SessionId::new(0x1001))
        );
    }

    #[test]
    fn session_ids_carry_the_server_id() {
        let id = initial_session_id(1, 1_700_000_000_000);
        assert_eq!(id.server_id(), 1);
        assert_eq!(id.raw() & 0xffff, 0, "the low bits count sessions");
    }
}
