//! zkCli's quota commands (`setquota`, `listquota`, `delquota`): the same requests on the
//! same nodes under `/zookeeper/quota` as zkCli.sh makes, so a quota set by either is
//! read, enforced and removed by the other, and the same words on each outcome.

use jute::records::{
    CreateRequest, DeleteRequest, ExistsRequest, GetChildren2Request, GetChildren2Response,
    GetDataRequest, GetDataResponse, SetDataRequest,
};
use jute::{Code, OpCode};

use super::client::Session;
use super::commands::{call, call_unless, failed, open_acl, print, Outcome, Parsed, USAGE};
use crate::tree::quota::{limits_path, stats_path, StatsTrack, LIMITS_NODE, QUOTA_ROOT};

/// The four limits, by option: soft and hard node counts, soft and hard data bytes.
const LIMIT_OPTIONS: [(&str, &str); 4] =
    [("-n", "count"), ("-b", "bytes"), ("-N", "countHardLimit"), ("-B", "byteHardLimit")];

fn usage(command: &str) -> Outcome {
    let line = USAGE.iter().find(|(name, _)| *name == command).map_or("", |(_, line)| line);
    failed(format!("{command} {line}"))
}

/// The quota'd path: the command's first word after its options.
fn quota_path<'a>(parsed: &Parsed<'a>, command: &str) -> Result<&'a str, Outcome> {
    match parsed.words.first() {
        None => Err(usage(command)),
        Some(&"/") => Err(failed("Path must not end with / character")),
        Some(path) => Ok(path),
    }
}

/// `setquota -n|-b|-N|-B val path`: one limit per call, as zkCli's option group allows.
pub fn setquota(session: &mut Session, arguments: &[String]) -> Result<Outcome, Outcome> {
    let options: Vec<&str> = LIMIT_OPTIONS.iter().map(|(option, _)| *option).collect();
    let parsed = Parsed::new(arguments, &[], &options);
    let given: Vec<_> = LIMIT_OPTIONS.iter().filter(|(option, _)| parsed.has(option)).collect();
    let &[&(option, key)] = given.as_slice() else {
        return Err(match given.as_slice() {
            [] => failed(
                "org.apache.commons.cli.MissingOptionException: Missing required option: \
                 [-n num soft quota, -b bytes soft quota, -N num hard quota, -B bytes hard \
                 quota]",
            ),
            [first, second, ..] => failed(format!(
                "org.apache.commons.cli.AlreadySelectedException: The option '{}' was \
                 specified but an option from this group has already been selected: '{}'",
                &second.0[1..],
                &first.0[1..]
            )),
            [_] => usage("setquota"),
        });
    };
    let path = quota_path(&parsed, "setquota")?;
    if path.starts_with(QUOTA_ROOT) {
        return Err(failed(format!("cannot set a quota under the path: {QUOTA_ROOT}")));
    }
    let value: i64 = parsed
        .value(option)
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| failed("NumberFormatException happens when parsing the option value"))?;
    match option {
        "-n" | "-N" if value <= 0 => return Err(failed("the num quota must be greater than zero")),
        "-b" | "-B" if value < 0 => {
            return Err(failed("the bytes quota must be greater than or equal to zero"))
        }
        _ => {}
    }
    if !exists(session, path)? {
        return Err(failed(format!("{path} does not exist.")));
    }
    refuse_nested(session, path)?;
    let mut quota_node = QUOTA_ROOT.to_owned();
    for component in path.split('/').skip(1) {
        quota_node = format!("{quota_node}/{component}");
        create_if_missing(session, &quota_node, None)?;
    }
    let limits = limits_path(path);
    let track = match get_data(session, &limits)? {
        None => {
            let mut track = StatsTrack::default();
            LIMIT_OPTIONS.iter().for_each(|(_, each)| track.set(each, -1));
            track.set(key, value);
            create_if_missing(session, &limits, Some(track.to_bytes()))?;
            let usage = StatsTrack::parse(b"count=0,bytes=0").to_bytes();
            create_if_missing(session, &stats_path(path), Some(usage))?;
            track
        }
        Some(data) => {
            let mut track = StatsTrack::parse(&data);
            track.set(key, value);
            let body = SetDataRequest {
                path: limits.clone(),
                data: Some(track.to_bytes().into()),
                version: -1,
            };
            warn_below_usage(session, path, &track)?;
            call(session, OpCode::SetData, &body, &limits)?;
            return Ok(Outcome::Done);
        }
    };
    warn_below_usage(session, path, &track)?;
    Ok(Outcome::Done)
}

/// zkCli's warning when a new limit is already below what the subtree holds.
fn warn_below_usage(session: &mut Session, path: &str, limits: &StatsTrack) -> Result<(), Outcome> {
    let usage = StatsTrack::parse(&get_data(session, &stats_path(path))?.unwrap_or_default());
    let below = |soft: &str, hard: &str, used: i64| {
        [soft, hard].iter().any(|key| limits.get(key) > -1 && limits.get(key) < used)
    };
    if below("count", "countHardLimit", usage.get("count")) {
        print(format!(
            "[Warning]: the count quota you create is less than the existing count:{}",
            usage.get("count")
        ));
    }
    if below("bytes", "byteHardLimit", usage.get("bytes")) {
        print(format!(
            "[Warning]: the bytes quota you create is less than the existing bytes:{}",
            usage.get("bytes")
        ));
    }
    Ok(())
}

/// zkCli refuses a quota inside another's subtree, or over a subtree that has one.
fn refuse_nested(session: &mut Session, path: &str) -> Result<(), Outcome> {
    let own = format!("{QUOTA_ROOT}{path}");
    let mut pending = vec![own.clone()];
    while let Some(node) = pending.pop() {
        let Some(children) = children_of(session, &node)? else {
            continue;
        };
        if node != own && children.iter().any(|child| child == LIMITS_NODE) {
            let below = node.strip_prefix(QUOTA_ROOT).unwrap_or(&node);
            return Err(failed(format!("{path} has a child {below} which has a quota")));
        }
        pending.extend(children.iter().map(|child| format!("{node}/{child}")));
    }
    let components: Vec<&str> = path.split('/').skip(1).collect();
    let mut ancestor = QUOTA_ROOT.to_owned();
    for component in components.iter().take(components.len().saturating_sub(1)) {
        ancestor = format!("{ancestor}/{component}");
        let Some(children) = children_of(session, &ancestor)? else {
            return Ok(());
        };
        if children.is_empty() {
            return Ok(());
        }
        if children.iter().any(|child| child == LIMITS_NODE) {
            let above = ancestor.strip_prefix(QUOTA_ROOT).unwrap_or(&ancestor);
            return Err(failed(format!("{path} has a parent {above} which has a quota")));
        }
    }
    Ok(())
}

/// `listquota path`: the limits and the usage, as zkCli prints them.
pub fn listquota(session: &mut Session, arguments: &[String]) -> Result<Outcome, Outcome> {
    let parsed = Parsed::new(arguments, &[], &[]);
    let path = quota_path(&parsed, "listquota")?;
    let limits = limits_path(path);
    eprintln!("absolute path is {limits}");
    let Some(data) = get_data(session, &limits)? else {
        return Err(failed(format!("quota for {path} does not exist.")));
    };
    let Some(usage) = get_data(session, &stats_path(path))? else {
        return Err(failed(format!("quota for {path} does not exist.")));
    };
    let text =
        |data: &[u8]| String::from_utf8_lossy(&StatsTrack::parse(data).to_bytes()).into_owned();
    print(format!("Output quota for {path} {}", text(&data)));
    print(format!("Output stat for {path} {}", text(&usage)));
    Ok(Outcome::Done)
}

/// `delquota [-n|-b|-N|-B] path`: those limits unset, or with no option the whole quota
/// gone, with the quota nodes left empty above it.
pub fn delquota(session: &mut Session, arguments: &[String]) -> Result<Outcome, Outcome> {
    let options: Vec<&str> = LIMIT_OPTIONS.iter().map(|(option, _)| *option).collect();
    let parsed = Parsed::new(arguments, &options, &[]);
    let path = quota_path(&parsed, "delquota")?;
    let limits = limits_path(path);
    let Some(data) = get_data(session, &limits)? else {
        print(format!("Quota does not exist for {path}"));
        return Ok(Outcome::Done);
    };
    let unset: Vec<&str> = LIMIT_OPTIONS
        .iter()
        .filter(|(option, _)| parsed.has(option))
        .map(|(_, key)| *key)
        .collect();
    if !unset.is_empty() {
        let mut track = StatsTrack::parse(&data);
        unset.iter().for_each(|key| track.set(key, -1));
        let body = SetDataRequest {
            path: limits.clone(),
            data: Some(track.to_bytes().into()),
            version: -1,
        };
        call(session, OpCode::SetData, &body, &limits)?;
        return Ok(Outcome::Done);
    }
    let mut node = format!("{QUOTA_ROOT}{path}");
    for child in children_of(session, &node)?.unwrap_or_default() {
        let child = format!("{node}/{child}");
        call(session, OpCode::Delete, &DeleteRequest { path: child.clone(), version: -1 }, &child)?;
    }
    while node != QUOTA_ROOT && children_of(session, &node)?.is_some_and(|left| left.is_empty()) {
        call(session, OpCode::Delete, &DeleteRequest { path: node.clone(), version: -1 }, &node)?;
        node.truncate(node.rfind('/').unwrap_or(0));
    }
    Ok(Outcome::Done)
}

fn exists(session: &mut Session, path: &str) -> Result<bool, Outcome> {
    let body = ExistsRequest { path: path.to_owned(), watch: false };
    Ok(call_unless(session, OpCode::Exists, &body, path, Code::NoNode)?.is_some())
}

/// A node's data, `None` if it does not exist.
fn get_data(session: &mut Session, path: &str) -> Result<Option<Vec<u8>>, Outcome> {
    let body = GetDataRequest { path: path.to_owned(), watch: false };
    let Some(reply) = call_unless(session, OpCode::GetData, &body, path, Code::NoNode)? else {
        return Ok(None);
    };
    let GetDataResponse { data, .. } = reply.decode().map_err(failed)?;
    Ok(Some(data.map(|data| data.to_vec()).unwrap_or_default()))
}

/// A node's children, `None` if it does not exist.
fn children_of(session: &mut Session, path: &str) -> Result<Option<Vec<String>>, Outcome> {
    let body = GetChildren2Request { path: path.to_owned(), watch: false };
    let Some(reply) = call_unless(session, OpCode::GetChildren2, &body, path, Code::NoNode)? else {
        return Ok(None);
    };
    let GetChildren2Response { children, .. } = reply.decode().map_err(failed)?;
    Ok(Some(children))
}

/// Creates a persistent node open to all, unless it exists already (as zkCli, a node
/// another client made meanwhile is fine).
fn create_if_missing(
    session: &mut Session,
    path: &str,
    data: Option<Vec<u8>>,
) -> Result<(), Outcome> {
    let body = CreateRequest {
        path: path.to_owned(),
        data: data.map(Into::into),
        acl: open_acl(),
        flags: 0,
    };
    call_unless(session, OpCode::Create, &body, path, Code::NodeExists).map(|_| ())
}
