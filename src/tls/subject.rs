//! A certificate's subject as Java's `X500Principal.getName()` prints it (RFC 2253), which
//! is the identity ZooKeeper's x509 scheme gives a client and the text its ACLs match.

use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::prelude::{AttributeTypeAndValue, FromDer, X509Certificate};

/// The attribute types Java prints by keyword in RFC 2253 form; every other type is
/// printed as its dotted OID with the value's DER in hex.
const KEYWORDS: [(&str, &str); 9] = [
    ("2.5.4.3", "CN"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.9", "STREET"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
];

/// Characters Java escapes with a backslash in an RFC 2253 value.
const ESCAPED: &str = ",=+<>#;\"\\";

/// The RFC 2253 subject of a DER certificate, or `None` when it does not parse.
pub fn rfc2253_subject(certificate: &[u8]) -> Option<String> {
    let (_, certificate) = X509Certificate::from_der(certificate).ok()?;
    let rdns: Vec<String> = certificate
        .subject()
        .iter()
        .map(|rdn| rdn.iter().map(attribute).collect::<Vec<_>>().join("+"))
        .collect();
    Some(rdns.into_iter().rev().collect::<Vec<_>>().join(","))
}

fn attribute(attribute: &AttributeTypeAndValue<'_>) -> String {
    let oid = attribute.attr_type().to_id_string();
    let keyword = KEYWORDS.iter().find(|(known, _)| *known == oid).map(|(_, keyword)| *keyword);
    match (keyword, string_value(attribute)) {
        (Some(keyword), Some(value)) => format!("{keyword}={}", escape(&value)),
        _ => {
            let value = attribute.attr_value();
            let mut der = Vec::new();
            der.push(value.tag().0 as u8);
            push_length(&mut der, value.data.len());
            der.extend_from_slice(value.data);
            let hex: String = der.iter().map(|byte| format!("{byte:02x}")).collect();
            format!("{}=#{hex}", keyword.unwrap_or(&oid))
        }
    }
}

/// The value as text when it is one of the string types Java prints as text.
fn string_value(attribute: &AttributeTypeAndValue<'_>) -> Option<String> {
    let value = attribute.attr_value();
    let data = value.data;
    match value.tag() {
        Tag::PrintableString | Tag::Utf8String | Tag::Ia5String | Tag::T61String => {
            std::str::from_utf8(data).ok().map(str::to_owned)
        }
        Tag::BmpString => {
            let units: Vec<u16> =
                data.chunks_exact(2).map(|pair| u16::from_be_bytes([pair[0], pair[1]])).collect();
            String::from_utf16(&units).ok()
        }
        Tag::UniversalString => data
            .chunks_exact(4)
            .map(|quad| char::from_u32(u32::from_be_bytes([quad[0], quad[1], quad[2], quad[3]])))
            .collect(),
        _ => None,
    }
}

fn escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (index, c) in value.chars().enumerate() {
        let edge_space = c == ' ' && (index == 0 || index == last);
        if ESCAPED.contains(c) || edge_space {
            escaped.push('\\');
        }
        if c == '\0' {
            escaped.push_str("\\00");
        } else {
            escaped.push(c);
        }
    }
    escaped
}

fn push_length(der: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        der.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|byte| *byte == 0).collect();
        der.push(0x80 | bytes.len() as u8);
        der.extend(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_escapes_specials_and_edge_spaces() {
        assert_eq!(escape("zkrs tests"), "zkrs tests");
        assert_eq!(escape("a,b+c=d"), "a\\,b\\+c\\=d");
        assert_eq!(escape(" lead and trail "), "\\ lead and trail\\ ");
        assert_eq!(escape("#1 \"q\" <x>;\\"), "\\#1 \\\"q\\\" \\<x\\>\\;\\\\");
    }

    #[test]
    fn long_values_get_long_form_lengths() {
        let mut der = Vec::new();
        push_length(&mut der, 300);
        assert_eq!(der, vec![0x82, 0x01, 0x2c]);
    }

    #[test]
    fn garbage_is_no_subject() {
        assert_eq!(rfc2253_subject(b"not a certificate"), None);
    }
}
