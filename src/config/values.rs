//! How ZooKeeper turns a zoo.cfg value into a number or a flag, rule by rule.
//!
//! ZooKeeper reads a key in one of two ways, and they disagree on bad values:
//! `QuorumPeerConfig` parses its own keys strictly (`Integer.parseInt`, `true`/`false`
//! only) and refuses to start on anything else, while every other key becomes a Java
//! system property that its reader parses leniently (`Integer.getInteger`, which takes
//! hex and octal and falls back to the default on garbage; `Boolean.getBoolean`, where
//! anything but `true` is false; `forceSync`, where anything but `no` syncs). Each key in
//! [`super::keys`] names the rule ZooKeeper applies to it, and zkrs applies the same one,
//! so a file means the same to both.

/// The rule ZooKeeper applies to a key's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Free text (paths, host names, class names, lists).
    Text,
    /// `Integer.parseInt` / `Long.parseLong`: decimal, optional sign; anything else is a
    /// configuration error.
    Integer,
    /// `Integer.getInteger` / `Long.getLong`: `Integer.decode` syntax (decimal, `0x`/`#`
    /// hex, leading-`0` octal); anything else silently means the default.
    DecodedInteger,
    /// `QuorumPeerConfig.parseBoolean`: `true` or `false` in any case; anything else is a
    /// configuration error.
    Boolean,
    /// `Boolean.getBoolean`: `true` in any case is true, anything else false.
    LenientBoolean,
    /// `!value.equals("no")`: only the exact text `no` turns the setting off
    /// (`forceSync`).
    YesUnlessNo,
    /// `value.equals("yes")`: only the exact text `yes` turns the setting on (`skipACL`).
    NoUnlessYes,
}

impl Rule {
    /// What the rule expects, for error messages and the key table.
    pub fn expects(self) -> &'static str {
        match self {
            Rule::Text => "text",
            Rule::Integer => "an integer",
            Rule::DecodedInteger => "an integer (decimal, 0x hex or 0 octal)",
            Rule::Boolean => "true or false",
            Rule::LenientBoolean => "true (anything else is false)",
            Rule::YesUnlessNo => "no (anything else is yes)",
            Rule::NoUnlessYes => "yes (anything else is no)",
        }
    }
}

/// `Long.parseLong(text)`: an optional sign and decimal digits, nothing else.
pub fn parse_long(text: &str) -> Option<i64> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `Long.decode(text)`: an optional sign, then `0x`, `0X` or `#` for hex, a leading `0`
/// for octal, or decimal.
pub fn decode_long(text: &str) -> Option<i64> {
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, digits) =
        if let Some(hex) = unsigned.strip_prefix("0x").or_else(|| unsigned.strip_prefix("0X")) {
            (16, hex)
        } else if let Some(hex) = unsigned.strip_prefix('#') {
            (16, hex)
        } else if unsigned.len() > 1 && unsigned.starts_with('0') {
            (8, &unsigned[1..])
        } else {
            (10, unsigned)
        };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let magnitude = i128::from_str_radix(digits, radix).ok()?;
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

/// `QuorumPeerConfig.parseBoolean`: `true`/`false` in any case.
pub fn parse_boolean(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_long_is_strict_decimal() {
        assert_eq!(parse_long("2000"), Some(2000));
        assert_eq!(parse_long("+7"), Some(7));
        assert_eq!(parse_long("-1"), Some(-1));
        assert_eq!(parse_long("0x10"), None);
        assert_eq!(parse_long("1 000"), None);
        assert_eq!(parse_long(""), None);
        assert_eq!(parse_long("+"), None);
    }

    #[test]
    fn decode_long_takes_hex_octal_and_decimal() {
        assert_eq!(decode_long("0xfffff"), Some(0xfffff));
        assert_eq!(decode_long("#ff"), Some(255));
        assert_eq!(decode_long("010"), Some(8));
        assert_eq!(decode_long("0"), Some(0));
        assert_eq!(decode_long("-0x10"), Some(-16));
        assert_eq!(decode_long("100000"), Some(100_000));
        assert_eq!(decode_long("09"), None);
        assert_eq!(decode_long("0x"), None);
        assert_eq!(decode_long("0x-1"), None);
        assert_eq!(decode_long("abc"), None);
    }

    #[test]
    fn booleans_follow_quorum_peer_config() {
        assert_eq!(parse_boolean("TRUE"), Some(true));
        assert_eq!(parse_boolean("False"), Some(false));
        assert_eq!(parse_boolean("yes"), None);
    }
}
