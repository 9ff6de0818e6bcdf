//! Wire ↔ domain: decoding requests, framing replies, path rules, four-letter words.
//!
//! Owns the meaning of the jute records on the client protocol, but no IO: the server
//! module feeds it bytes and writes out what it returns.

pub mod four_letter;
pub mod path;
pub mod reply;
pub mod request;
pub mod stat_text;
pub mod write_reply;

pub use path::validate_path;
pub use request::{Frame, Request, RequestError};
