//! Four-letter words: a connection whose first four bytes spell one gets a text answer
//! instead of a session (ZooKeeper checks them in place of the first frame's length).

/// The four-letter words zkrs answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FourLetterWord {
    /// `ruok`: "imok" if serving.
    Ruok,
    /// `srvr`: version, latency, counts, mode.
    Srvr,
    /// `stat`: `srvr` plus the connections.
    Stat,
    /// `mntr`: key/value metrics for monitoring.
    Mntr,
    /// `conf`: the configuration.
    Conf,
    /// `cons`: every connection in detail.
    Cons,
    /// `crst`: reset connection statistics.
    Crst,
    /// `srst`: reset server statistics.
    Srst,
    /// `envi`: the environment, including `zookeeper.version`.
    Envi,
    /// `wchs`: watch summary.
    Wchs,
    /// `wchc`: watches by connection.
    Wchc,
    /// `wchp`: watches by path.
    Wchp,
    /// `dump`: sessions and ephemeral nodes.
    Dump,
    /// `isro`: "rw" or "ro".
    Isro,
    /// `dirs`: sizes of the data and log directories.
    Dirs,
    /// `hash`: the tree's digests at every 128th zxid lately.
    Hash,
}

impl FourLetterWord {
    const ALL: [FourLetterWord; 16] = [
        FourLetterWord::Ruok,
        FourLetterWord::Srvr,
        FourLetterWord::Stat,
        FourLetterWord::Mntr,
        FourLetterWord::Conf,
        FourLetterWord::Cons,
        FourLetterWord::Crst,
        FourLetterWord::Srst,
        FourLetterWord::Envi,
        FourLetterWord::Wchs,
        FourLetterWord::Wchc,
        FourLetterWord::Wchp,
        FourLetterWord::Dump,
        FourLetterWord::Isro,
        FourLetterWord::Dirs,
        FourLetterWord::Hash,
    ];

    /// The word's four characters.
    pub fn name(self) -> &'static str {
        match self {
            FourLetterWord::Ruok => "ruok",
            FourLetterWord::Srvr => "srvr",
            FourLetterWord::Stat => "stat",
            FourLetterWord::Mntr => "mntr",
            FourLetterWord::Conf => "conf",
            FourLetterWord::Cons => "cons",
            FourLetterWord::Crst => "crst",
            FourLetterWord::Srst => "srst",
            FourLetterWord::Envi => "envi",
            FourLetterWord::Wchs => "wchs",
            FourLetterWord::Wchc => "wchc",
            FourLetterWord::Wchp => "wchp",
            FourLetterWord::Dump => "dump",
            FourLetterWord::Isro => "isro",
            FourLetterWord::Dirs => "dirs",
            FourLetterWord::Hash => "hash",
        }
    }

    /// The word these first four bytes spell, if any.
    pub fn parse(first: [u8; 4]) -> Option<FourLetterWord> {
        FourLetterWord::ALL.into_iter().find(|word| word.name().as_bytes() == first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_words_and_not_lengths() {
        assert_eq!(FourLetterWord::parse(*b"ruok"), Some(FourLetterWord::Ruok));
        assert_eq!(FourLetterWord::parse(*b"mntr"), Some(FourLetterWord::Mntr));
        assert_eq!(FourLetterWord::parse([0, 0, 0, 45]), None);
        assert_eq!(FourLetterWord::parse(*b"RUOK"), None);
    }
}
