//! Where the log goes and what it keeps, from the environment (`zkrs server --help`
//! lists the variables): the filter from `ZKRS_LOG`, else `RUST_LOG`, else `info`; lines
//! to standard error and, with `ZKRS_LOG_DIR`, to a daily-rotated `zkrs.log` there;
//! text or, with `ZKRS_LOG_FORMAT=json`, one JSON object per line.
//!
//! A setting that cannot be used is reported on the log it leaves in place, never
//! taken silently: a misspelt level would otherwise filter everything out.
//!
//! The audit log (`crate::audit`, `audit.enable=true` in zoo.cfg) is logged at INFO
//! whatever the filter says, unless the filter names its target, and with `ZKRS_LOG_DIR`
//! goes to `zookeeper_audit.<date>.log` there too, one line per event as ZooKeeper's
//! audit appender writes them: the time, the level, `audit.Slf4jAuditLogger:`, the line.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use tracing::{Event, Subscriber};
use tracing_appender::rolling::{RollingFileAppender, RollingWriter};
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime as _, SystemTime};
use tracing_subscriber::fmt::writer::{EitherWriter, MakeWriter};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// Rotated log files kept when `ZKRS_LOG_MAX_FILES` is unset.
const LOG_FILES_MAX_DEFAULT: usize = 7;

/// The levels a bare word in a filter may name.
const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// The log's settings, read from the environment.
#[derive(Debug)]
struct Settings {
    filter: EnvFilter,
    json: bool,
    directory: Option<PathBuf>,
    files_max: usize,
    /// Settings that could not be used, to be logged once logging runs.
    problems: Vec<String>,
}

/// Checks a filter the way an operator means it: `EnvFilter` takes any bare word as a
/// target name, so `ZKRS_LOG=inf` would show nothing at all; a bare word must be a
/// level or one of zkrs's own targets.
fn parse_filter(spec: &str) -> Result<EnvFilter, String> {
    for directive in spec.split(',').map(str::trim).filter(|directive| !directive.is_empty()) {
        let bare = !directive.contains(['=', '[']);
        let is_level = LEVELS.iter().any(|level| directive.eq_ignore_ascii_case(level));
        let is_target = directive.starts_with("zkrs") || directive.starts_with("jute");
        if bare && !is_level && !is_target {
            return Err(format!(
                "{directive:?} is neither a level ({}) nor target=level",
                LEVELS.join(", ")
            ));
        }
    }
    EnvFilter::builder().parse(spec).map_err(|err| err.to_string())
}

fn settings_from_env() -> Settings {
    let mut problems = Vec::new();
    let variable = ["ZKRS_LOG", "RUST_LOG"].into_iter().find_map(|name| {
        std::env::var(name).ok().filter(|spec| !spec.trim().is_empty()).map(|spec| (name, spec))
    });
    let filter = match &variable {
        None => EnvFilter::new("info"),
        Some((name, spec)) => parse_filter(spec).unwrap_or_else(|reason| {
            problems
                .push(format!("{name}={spec:?} is not a log filter: {reason}; logging at info"));
            EnvFilter::new("info")
        }),
    };
    let json = match std::env::var("ZKRS_LOG_FORMAT").ok().as_deref() {
        None | Some("text") => false,
        Some("json") => true,
        Some(other) => {
            problems
                .push(format!("ZKRS_LOG_FORMAT={other:?} is neither text nor json; using text"));
            false
        }
    };
    let files_max = match std::env::var("ZKRS_LOG_MAX_FILES") {
        Err(_) => LOG_FILES_MAX_DEFAULT,
        Ok(text) => text.parse().ok().filter(|files| *files > 0).unwrap_or_else(|| {
            problems.push(format!(
                "ZKRS_LOG_MAX_FILES={text:?} is not a positive number; keeping \
                 {LOG_FILES_MAX_DEFAULT}"
            ));
            LOG_FILES_MAX_DEFAULT
        }),
    };
    let spec = variable.as_ref().map(|(_, spec)| spec.as_str()).unwrap_or_default();
    let audit = format!("{}=info", crate::audit::TARGET).parse();
    let filter = match audit {
        Ok(directive) if !spec.contains(crate::audit::TARGET) => filter.add_directive(directive),
        _ => filter,
    };
    let directory =
        std::env::var_os("ZKRS_LOG_DIR").filter(|dir| !dir.is_empty()).map(PathBuf::from);
    Settings { filter, json, directory, files_max, problems }
}

fn format_layer<W>(writer: W, json: bool, ansi: bool) -> Box<dyn Layer<Registry> + Send + Sync>
where
    W: for<'writer> tracing_subscriber::fmt::MakeWriter<'writer> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer().with_writer(writer);
    if json {
        layer.json().boxed()
    } else {
        layer.with_ansi(ansi).boxed()
    }
}

/// `zookeeper_audit.<date>.log` in the log directory, made at the first audit event: a
/// server without `audit.enable` leaves no empty audit file behind.
struct AuditFile {
    directory: PathBuf,
    files_max: usize,
    appender: OnceLock<Option<RollingFileAppender>>,
}

impl<'writer> MakeWriter<'writer> for AuditFile {
    type Writer = EitherWriter<RollingWriter<'writer>, std::io::Sink>;

    fn make_writer(&'writer self) -> Self::Writer {
        let appender = self.appender.get_or_init(|| {
            daily_file(&self.directory, "zookeeper_audit", self.files_max)
                .inspect_err(|err| {
                    // Logging from inside the logger would come back here.
                    eprintln!("cannot write the audit log to {}: {err}", self.directory.display());
                })
                .ok()
        });
        match appender {
            Some(appender) => EitherWriter::A(appender.make_writer()),
            None => EitherWriter::B(std::io::sink()),
        }
    }
}

/// `<prefix>.<date>.log` in `directory`, a new one each day, the newest `files_max` kept.
fn daily_file(
    directory: &Path,
    prefix: &str,
    files_max: usize,
) -> Result<RollingFileAppender, String> {
    tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix(prefix)
        .filename_suffix("log")
        .max_log_files(files_max)
        .build(directory)
        .map_err(|err| err.to_string())
}

/// The audit events alone, each on a line as ZooKeeper's audit appender writes them.
fn audit_layer<W>(writer: W) -> Box<dyn Layer<Registry> + Send + Sync>
where
    W: for<'writer> tracing_subscriber::fmt::MakeWriter<'writer> + Send + Sync + 'static,
{
    let only_audit = filter_fn(|metadata| metadata.target() == crate::audit::TARGET);
    tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false)
        .event_format(AuditFormat)
        .with_filter(only_audit)
        .boxed()
}

/// `%d %p %c{2}: %m%n`, ZooKeeper's audit appender's pattern, with the time in RFC 3339.
struct AuditFormat;

impl<S, N> FormatEvent<S, N> for AuditFormat
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
    N: for<'writer> FormatFields<'writer> + 'static,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        SystemTime.format_time(&mut writer)?;
        write!(writer, " {} audit.Slf4jAuditLogger: ", event.metadata().level())?;
        context.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Starts logging as the environment says, then logs what of it could not be used.
pub fn init() {
    let mut settings = settings_from_env();
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut layers = vec![format_layer(std::io::stderr, settings.json, ansi)];
    if let Some(directory) = &settings.directory {
        let appender = std::fs::create_dir_all(directory)
            .map_err(|err| err.to_string())
            .and_then(|()| daily_file(directory, "zkrs", settings.files_max));
        match appender {
            Ok(appender) => {
                layers.push(format_layer(appender, settings.json, false));
                let audit = AuditFile {
                    directory: directory.clone(),
                    files_max: settings.files_max,
                    appender: OnceLock::new(),
                };
                layers.push(audit_layer(audit));
            }
            Err(err) => settings.problems.push(format!(
                "cannot write the log to ZKRS_LOG_DIR={}: {err}; logging to standard error only",
                directory.display()
            )),
        }
    }
    tracing_subscriber::registry().with(layers).with(settings.filter).init();
    for problem in &settings.problems {
        tracing::warn!("{problem}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_directives_are_filters() {
        for spec in ["info", "DEBUG", "warn,zkrs::server=debug", "zkrs=trace", "off", "error,jute"]
        {
            assert!(parse_filter(spec).is_ok(), "{spec}");
        }
    }

    #[test]
    fn misspelt_levels_are_reported_not_taken_as_targets() {
        for spec in ["inf", "verbose", "zkrs=loud", "warn,chatty"] {
            assert!(parse_filter(spec).is_err(), "{spec} was accepted");
        }
    }
}
