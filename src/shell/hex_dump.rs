//! zkCli 3.9's `get -x`: the data as Netty's `ByteBufUtil.prettyHexDump` draws it, a
//! framed table of 16 bytes a row, their offset, hex digits and printable characters.

use std::fmt::Write;

const TOP: &str = "         +-------------------------------------------------+\n         \
                   |  0  1  2  3  4  5  6  7  8  9  a  b  c  d  e  f |\n\
                   +--------+-------------------------------------------------+----------------+";
const BOTTOM: &str =
    "+--------+-------------------------------------------------+----------------+";

/// The table for `data`; empty data draws nothing, as Netty's.
pub fn hex_dump(data: &[u8]) -> String {
    if data.is_empty() {
        return String::new();
    }
    let mut dump = String::from(TOP);
    for (row, bytes) in data.chunks(16).enumerate() {
        let _ = write!(dump, "\n|{:08x}|", row * 16);
        for byte in bytes {
            let _ = write!(dump, " {byte:02x}");
        }
        dump.push_str(&"   ".repeat(16 - bytes.len()));
        dump.push_str(" |");
        for byte in bytes {
            dump.push(if (0x20..0x7f).contains(byte) { char::from(*byte) } else { '.' });
        }
        dump.push_str(&" ".repeat(16 - bytes.len()));
        dump.push('|');
    }
    dump.push('\n');
    dump.push_str(BOTTOM);
    dump
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_draw_as_nettys_pretty_hex_dump() {
        let dump = hex_dump(b"0123456789abcdef\x00\xffZ");
        let expected = [
            "         +-------------------------------------------------+",
            "         |  0  1  2  3  4  5  6  7  8  9  a  b  c  d  e  f |",
            "+--------+-------------------------------------------------+----------------+",
            "|00000000| 30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66 |0123456789abcdef|",
            "|00000010| 00 ff 5a                                        |..Z             |",
            "+--------+-------------------------------------------------+----------------+",
        ];
        assert_eq!(dump, expected.join("\n"));
        assert_eq!(hex_dump(b""), "");
    }
}
