//! Connection and framing records: the handshake, request and reply headers, auth.

use bytes::Bytes;

use crate::record;

record! {
    /// The first frame a client sends. The optional trailing `readOnly` byte is not part
    /// of the record; `zkrs::proto` reads it when present.
    ConnectRequest {
        protocol_version: i32,
        last_zxid_seen: i64,
        time_out: i32,
        session_id: i64,
        passwd: Bytes,
    }
}

record! {
    /// The server's answer to a [`ConnectRequest`]; a `time_out` of 0 tells the client
    /// its session has expired. A `readOnly` byte follows for clients that sent one.
    ConnectResponse {
        protocol_version: i32,
        time_out: i32,
        session_id: i64,
        passwd: Bytes,
    }
}

record! {
    /// Precedes every request after the handshake.
    RequestHeader {
        xid: i32,
        op_type: i32,
    }
}

record! {
    /// Precedes every reply and notification; `zxid` is the server's last applied zxid.
    ReplyHeader {
        xid: i32,
        zxid: i64,
        err: i32,
    }
}

record! {
    /// Credentials for a scheme (`addauth digest user:password`).
    AuthPacket {
        auth_type: i32,
        scheme: String,
        auth: Bytes,
    }
}

record! {
    /// One SASL token from the client.
    GetSaslRequest {
        token: Option<Bytes>,
    }
}

record! {
    /// One SASL token from the server.
    SetSaslResponse {
        token: Option<Bytes>,
    }
}
