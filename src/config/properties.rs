//! A zoo.cfg file as ZooKeeper reads it: `java.util.Properties.load` (`key=value`,
//! `key: value` and `key value` lines, `#`/`!` comments, `\` line continuations and
//! `\uXXXX` escapes, ISO-8859-1 text, the last of repeated keys winning), each key and
//! value trimmed, and typed values read by the rule ZooKeeper applies to each key.

use std::collections::BTreeMap;

use super::keys;
use super::values::{decode_long, parse_boolean, parse_long, Rule};
use super::{ConfigError, Notice};

/// The keys of one file and their values.
#[derive(Debug, Clone, Default)]
pub struct Properties {
    entries: BTreeMap<String, String>,
}

impl Properties {
    /// Parses the text of a properties file.
    ///
    /// # Errors
    /// [`ConfigError::Syntax`] for what `Properties.load` rejects (a bad `\u` escape).
    pub fn parse(file: &str, bytes: &[u8]) -> Result<Properties, ConfigError> {
        let mut entries = BTreeMap::new();
        java_properties::PropertiesIter::new(bytes)
            .read_into(|key, value| {
                entries.insert(key.trim().to_owned(), value.trim().to_owned());
            })
            .map_err(|err| ConfigError::Syntax {
                file: file.to_owned(),
                line: err.line_number(),
                message: err.to_string(),
            })?;
        Ok(Properties { entries })
    }

    /// Every key and value, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(key, value)| (key.as_str(), value.as_str()))
    }

    /// Whether the file sets `key` as written.
    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// The value of a key from the table, under either spelling (`key` wins over
    /// `zookeeper.key`, since ZooKeeper itself reads only the first from a file).
    pub fn get(&self, name: &str) -> Option<(&str, &str)> {
        let (plain, prefixed) = match name.strip_prefix("zookeeper.") {
            Some(bare) => (bare.to_owned(), name.to_owned()),
            None => (name.to_owned(), format!("zookeeper.{name}")),
        };
        let found =
            self.entries.get_key_value(&plain).or_else(|| self.entries.get_key_value(&prefixed));
        found.map(|(key, value)| (key.as_str(), value.as_str()))
    }
}

/// Reads typed values out of [`Properties`] by each key's rule, noting what start-up must
/// report about values ZooKeeper would quietly reinterpret.
pub struct Reader<'a> {
    properties: &'a Properties,
    /// What start-up reports.
    pub notices: Vec<Notice>,
}

impl<'a> Reader<'a> {
    /// A reader of `properties`.
    pub fn new(properties: &'a Properties) -> Reader<'a> {
        Reader { properties, notices: Vec::new() }
    }

    fn rule(name: &str) -> Rule {
        let key = keys::lookup(name);
        // The unit tests read every key the server reads, so a missing entry fails them.
        assert!(!cfg!(test) || key.is_some(), "zkrs reads {name}, which the key table lacks");
        key.map_or(Rule::Text, |key| key.rule)
    }

    /// A text value, if set.
    pub fn text(&self, name: &str) -> Option<&'a str> {
        Reader::rule(name);
        self.properties.get(name).map(|(_, value)| value)
    }

    /// A number by the key's rule, or `default` when unset (or, for a leniently read key,
    /// when ZooKeeper would fall back to its default).
    ///
    /// # Errors
    /// A strictly read key that is not a number, or a number out of range for `T`.
    pub fn number<T>(&mut self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: TryFrom<i64> + std::fmt::Display + Copy,
    {
        let Some((key, value)) = self.properties.get(name) else {
            return Ok(default);
        };
        let parsed = match Reader::rule(name) {
            Rule::DecodedInteger => match decode_long(value) {
                Some(number) => number,
                None => {
                    self.notices.push(Notice::warn(format!(
                        "{key}={value} is not a number; ZooKeeper uses its default {default} \
                         then, and so does zkrs"
                    )));
                    return Ok(default);
                }
            },
            _ => parse_long(value)
                .ok_or_else(|| ConfigError::invalid(key, value, "not an integer".to_owned()))?,
        };
        T::try_from(parsed).map_err(|_| ConfigError::invalid(key, value, "out of range".to_owned()))
    }

    /// A flag by the key's rule, or `default` when unset.
    ///
    /// # Errors
    /// A strictly read flag that is neither `true` nor `false`.
    pub fn flag(&mut self, name: &str, default: bool) -> Result<bool, ConfigError> {
        let Some((key, value)) = self.properties.get(name) else {
            return Ok(default);
        };
        match Reader::rule(name) {
            Rule::Boolean => parse_boolean(value).ok_or_else(|| {
                ConfigError::invalid(key, value, "expected true or false".to_owned())
            }),
            Rule::YesUnlessNo => {
                let on = value != "no";
                if on && value != "yes" {
                    self.notices.push(Notice::warn(format!(
                        "{key}={value} is not \"no\", so it means yes, as in ZooKeeper"
                    )));
                }
                Ok(on)
            }
            Rule::NoUnlessYes => {
                let on = value == "yes";
                if !on && value != "no" {
                    self.notices.push(Notice::warn(format!(
                        "{key}={value} is not \"yes\", so it means no, as in ZooKeeper"
                    )));
                }
                Ok(on)
            }
            _ => {
                let on = value.eq_ignore_ascii_case("true");
                if !on && !value.eq_ignore_ascii_case("false") {
                    self.notices.push(Notice::warn(format!(
                        "{key}={value} is not \"true\", so it means false, as in ZooKeeper"
                    )));
                }
                Ok(on)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn properties(text: &str) -> Properties {
        Properties::parse("zoo.cfg", text.as_bytes()).expect("parses")
    }

    #[test]
    fn reads_every_line_form_java_properties_reads() {
        let file = properties(
            "tickTime 2000\ndataDir: /var/zk\n  clientPort = 2181  \n! comment\n# comment\n\
             4lw.commands.whitelist=srvr,\\\n    ruok,\\\n    conf\nkey\\ with\\ space=\\u0041\n\
             clientPort=2182\n",
        );
        assert_eq!(file.get("tickTime"), Some(("tickTime", "2000")));
        assert_eq!(file.get("dataDir"), Some(("dataDir", "/var/zk")));
        assert_eq!(file.get("clientPort"), Some(("clientPort", "2182")), "the last one wins");
        assert_eq!(file.get("4lw.commands.whitelist").map(|(_, v)| v), Some("srvr,ruok,conf"));
        assert_eq!(file.get("key with space").map(|(_, v)| v), Some("A"));
    }

    #[test]
    fn either_spelling_of_a_property_is_read_and_the_plain_one_wins() {
        let file = properties("zookeeper.snapCount=5\n");
        assert_eq!(file.get("snapCount"), Some(("zookeeper.snapCount", "5")));
        let both = properties("zookeeper.snapCount=5\nsnapCount=7\n");
        assert_eq!(both.get("snapCount"), Some(("snapCount", "7")));
        let documented_with_prefix = properties("datadir.autocreate=false\n");
        assert_eq!(
            documented_with_prefix.get("zookeeper.datadir.autocreate").map(|(_, v)| v),
            Some("false")
        );
    }

    #[test]
    fn lenient_values_fall_back_as_zookeeper_does_and_say_so() {
        let file = properties(
            "snapCount=lots\njute.maxbuffer=0x100000\nforceSync=false\nreadonlymode.enabled=yes\n",
        );
        let mut reader = Reader::new(&file);
        assert_eq!(reader.number("snapCount", 100_000u64).expect("lenient"), 100_000);
        assert_eq!(reader.number("jute.maxbuffer", 0usize).expect("hex"), 0x100000);
        assert!(reader.flag("forceSync", true).expect("lenient"), "only \"no\" turns it off");
        assert!(!reader.flag("readonlymode.enabled", false).expect("lenient"));
        assert_eq!(reader.notices.len(), 3, "{:?}", reader.notices);
    }

    #[test]
    fn strict_values_are_errors() {
        let file = properties("tickTime=2s\nstandaloneEnabled=yes\n");
        let mut reader = Reader::new(&file);
        assert!(reader.number("tickTime", 3000u32).is_err());
        assert!(reader.flag("standaloneEnabled", true).is_err());
    }
}
