//! A counter in one znode, incremented by reading it and writing the next value with
//! setData on the version read. Afterwards the value must lie between the increments
//! acknowledged and those plus the ones whose outcome is unknown: none lost, none twice.

use bytes::Bytes;
use jute::records::{GetDataRequest, GetDataResponse, SetDataRequest};
use jute::{Code, OpCode};
use parking_lot::Mutex;

use crate::pinned::{call, decimal, Pinned};
use crate::support::client::Client;

/// The increments the counter's clients were told about.
#[derive(Debug, Default)]
pub struct Tally {
    pub acknowledged: u64,
    pub unknown: u64,
}

/// Creates `/counter` at 0.
pub async fn set_up(client: &mut Client) {
    client.create("/counter", b"0", 0).await.expect("create /counter");
}

/// Increments the counter until the campaign ends.
pub async fn incrementer(pinned: Pinned, tally: &Mutex<Tally>) {
    let mut client = None;
    while !pinned.stopped() {
        let Some(connected) = client.as_mut() else {
            client = pinned.connect().await;
            continue;
        };
        let read = GetDataRequest { path: "/counter".into(), watch: false };
        let Some(reply) = call(connected, OpCode::GetData, &read).await else {
            client = None;
            continue;
        };
        if reply.header.err != 0 {
            client = None;
            continue;
        }
        let response: GetDataResponse = reply.decode();
        let Some(current) = decimal(response.data.as_ref()) else {
            client = None;
            continue;
        };
        let write = SetDataRequest {
            path: "/counter".into(),
            data: Some(Bytes::from((current + 1).to_string())),
            version: response.stat.version,
        };
        match call(connected, OpCode::SetData, &write).await {
            None => {
                tally.lock().unknown += 1;
                client = None;
            }
            Some(reply) if reply.header.err == 0 => tally.lock().acknowledged += 1,
            // BadVersion: another increment came first.
            Some(reply) if reply.header.err == Code::BadVersion.as_i32() => {}
            Some(_) => client = None,
        }
    }
}

/// Whether `final_value` is what the tally allows; the reason when not.
pub fn check(tally: &Tally, final_value: u64) -> Result<(), String> {
    let most = tally.acknowledged + tally.unknown;
    if (tally.acknowledged..=most).contains(&final_value) {
        Ok(())
    } else {
        Err(format!(
            "the counter is {final_value}, but {} increments were acknowledged and {} unknown",
            tally.acknowledged, tally.unknown
        ))
    }
}

/// The counter's value read through `client` after a sync.
pub async fn final_value(client: &mut Client) -> u64 {
    let sync = jute::records::SyncRequest { path: "/counter".into() };
    assert_eq!(client.call(OpCode::Sync, &sync).await.header.err, 0, "sync");
    let (data, _) = client.get_data("/counter", false).await.expect("read /counter");
    decimal(data.as_ref()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_or_doubled_increment_is_caught() {
        let tally = Tally { acknowledged: 10, unknown: 2 };
        assert!(check(&tally, 10).is_ok());
        assert!(check(&tally, 12).is_ok());
        assert!(check(&tally, 9).is_err(), "an acknowledged increment lost");
        assert!(check(&tally, 13).is_err(), "an increment applied twice");
    }
}
