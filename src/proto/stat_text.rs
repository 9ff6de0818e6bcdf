//! A znode's `Stat` as zkCli.sh prints it (`stat`, `get -s`, `ls -s`), which the shell
//! prints and the snapshot dump indents.

use jute::records::Stat;

use crate::server::four_letter::java_date;

/// The eleven lines, times as Java's `Date.toString()` in UTC, without a final newline.
pub fn stat_lines(stat: &Stat) -> String {
    format!(
        "cZxid = 0x{:x}\nctime = {}\nmZxid = 0x{:x}\nmtime = {}\npZxid = 0x{:x}\ncversion = {}\n\
         dataVersion = {}\naclVersion = {}\nephemeralOwner = 0x{:x}\ndataLength = {}\n\
         numChildren = {}",
        stat.czxid,
        java_date(u64::try_from(stat.ctime).unwrap_or(0)),
        stat.mzxid,
        java_date(u64::try_from(stat.mtime).unwrap_or(0)),
        stat.pzxid,
        stat.cversion,
        stat.version,
        stat.aversion,
        stat.ephemeral_owner,
        stat.data_length,
        stat.num_children
    )
}
