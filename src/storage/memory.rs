//! A log kept in memory: the txns since the last `retain_max`, lost on restart.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::storage::{StorageError, Wal};
use crate::txn::{Txn, Zxid};

/// An in-memory [`Wal`] keeping a bounded tail of encoded txns.
#[derive(Debug)]
pub struct MemoryWal {
    entries: VecDeque<(Zxid, Bytes)>,
    retain_max: usize,
    last_zxid: Zxid,
}

impl MemoryWal {
    /// A log that keeps at most `retain_max` txns.
    pub fn new(retain_max: usize) -> MemoryWal {
        MemoryWal {
            entries: VecDeque::new(),
            retain_max,
            last_zxid: 0,
        }
    }

    /// The retained txns after `zxid`, decoded.
    pub fn read_after(&self, zxid: Zxid) -> Vec<Txn> {
        self.entries
            .iter()
            .filter(|(entry_zxid, _)| *entry_zxid > zxid)
            .filter_map(|(_, bytes)| Txn::decode(bytes).ok())
            .collect()
    }
}

impl Wal for MemoryWal {
    fn append(&mut self, txns: &[&Txn]) -> Result<(), StorageError> {
        for txn in txns {
            if txn.zxid() <= self.last_zxid {
                return Err(StorageError::OutOfOrder {
                    zxid: txn.zxid(),
                    last: self.last_zxid,
                });
            }
            self.last_zxid = txn.zxid();
            self.entries.push_back((txn.zxid(), txn.encode()));
            if self.entries.len() > self.retain_max {
                self.entries.pop_front();
            }
        }
        Ok(())
    }

    fn last_zxid(&self) -> Zxid {
        self.last_zxid
    }
}

#[cfg(test)]
mod tests {
    use jute::records::{DeleteTxn, TxnHeader};
    use jute::OpCode;

    use super::*;
    use crate::txn::TxnBody;

    fn txn(zxid: Zxid) -> Txn {
        Txn {
            header: TxnHeader {
                client_id: 1,
                cxid: 1,
                zxid,
                time: 0,
                op_type: OpCode::Delete.as_i32(),
            },
            body: TxnBody::Delete(DeleteTxn { path: "/a".into() }),
        }
    }

    #[test]
    fn keeps_a_bounded_tail_in_order() {
        let mut wal = MemoryWal::new(2);
        wal.append(&[&txn(1), &txn(2), &txn(3)]).expect("in order");
        assert_eq!(wal.last_zxid(), 3);
        let zxids: Vec<_> = wal.read_after(0).iter().map(Txn::zxid).collect();
        assert_eq!(zxids, [2, 3]);
        assert!(matches!(
            wal.append(&[&txn(3)]),
            Err(StorageError::OutOfOrder { zxid: 3, last: 3 })
        ));
    }
}
