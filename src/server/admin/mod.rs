//! ZooKeeper's AdminServer over HTTP (`admin.enableServer`, on by default at
//! 0.0.0.0:8080): `GET <commandURL>` lists the commands as links, `GET
//! <commandURL>/<name>` runs one (by its name or an alias) and answers JSON as ZooKeeper
//! 3.9 prints it, so monitoring and backup scripts written for ZooKeeper run unchanged.
//! `snapshot` streams the state as a ZooKeeper snapshot file and `restore` (a POST of
//! such a file) replaces a standalone server's state with it; both need every
//! permission on `/` (an `Authorization: <scheme> <credentials>` header: `digest
//! user:password` or `ip`) and run at most as often as ZooKeeper's rate limits let them.
//!
//! Beyond ZooKeeper, `GET /ready` answers 200 only while the member serves clients,
//! with its role, for load balancers and Kubernetes probes.

pub mod commands;
mod idle;
pub mod json;
mod snapshot;
pub mod txns;
mod upload;

use std::future::Future;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use parking_lot::Mutex;
use serde_json::json;
use tokio::net::TcpListener;

use crate::config::admin::AdminSettings;
use crate::server::listener::Security;
use crate::server::{Mode, Shared};
use crate::session::auth::{authenticate, check_acl, x509_ids};
use crate::session::AuthIds;
use crate::storage::Storage;
use crate::tree::acl::perms;
use commands::{Answer, Command, Context};
use idle::{ClientAddress, IdleListener};

/// What the AdminServer's handlers share.
struct Admin {
    shared: Arc<Shared>,
    storage: Arc<dyn Storage>,
    settings: AdminSettings,
    trace_mask: AtomicI64,
    snapshots: RateLimiter,
    restores: RateLimiter,
}

/// The AdminServer on `listener`, speaking as `security` says, serving until the task
/// is dropped.
///
/// # Errors
/// If the listener's address cannot be read.
pub fn serve(
    shared: Arc<Shared>,
    storage: Arc<dyn Storage>,
    settings: AdminSettings,
    listener: TcpListener,
    security: Security,
) -> std::io::Result<impl Future<Output = ()>> {
    // ZooKeeper 3.9 builds the snapshot's limiter with the interval in microseconds,
    // so a snapshot may follow the last after a thousandth of the interval configured;
    // backup scripts that run as often as that allows keep working.
    let snapshot_interval_ms = settings.rate_limit_interval_ms / 1000;
    let idle = Duration::from_millis(settings.idle_timeout_ms);
    let url = settings.command_url.clone();
    let admin = Arc::new(Admin {
        snapshots: RateLimiter::new(snapshot_interval_ms, shared.clock.now_ms()),
        restores: RateLimiter::new(settings.rate_limit_interval_ms, shared.clock.now_ms()),
        shared,
        storage,
        settings,
        trace_mask: AtomicI64::new(commands::DEFAULT_TRACE_MASK),
    });
    let base = url.trim_end_matches('/');
    let mut app = Router::new()
        .route(&format!("{base}/"), get(links))
        .route(&format!("{base}/{{name}}"), get(run_get).post(run_post))
        .route("/ready", get(ready))
        .route("/backup/txns", get(backup_txns));
    if !base.is_empty() {
        app = app.route(base, get(links));
    }
    let app = app.with_state(admin).into_make_service_with_connect_info::<ClientAddress>();
    let listener = IdleListener::new(listener, idle, security)?;
    Ok(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!(cause = %err, "the AdminServer stopped");
        }
    })
}

/// ZooKeeper's `RateLimiter`: one call per interval, the first at once.
struct RateLimiter {
    interval_ms: u64,
    /// When the interval began, and whether its call was made.
    state: Mutex<(u64, bool)>,
}

impl RateLimiter {
    fn new(interval_ms: u64, now_ms: u64) -> RateLimiter {
        RateLimiter { interval_ms, state: Mutex::new((now_ms, false)) }
    }

    fn allow(&self, now_ms: u64) -> bool {
        let mut state = self.state.lock();
        if now_ms > state.0 + self.interval_ms {
            *state = (now_ms, false);
        }
        !std::mem::replace(&mut state.1, true)
    }
}

/// The commands as ZooKeeper lists them: a link per primary name, sorted.
async fn links(State(admin): State<Arc<Admin>>) -> Response {
    let mut names: Vec<&str> = commands::COMMANDS.iter().map(Command::primary).collect();
    names.sort_unstable();
    let base = admin.settings.command_url.trim_end_matches('/');
    let body: String =
        names.iter().map(|name| format!("<a href=\"{base}/{name}\">{name}</a>\n<br/>\n")).collect();
    ([(CONTENT_TYPE, "text/html;charset=utf-8")], body).into_response()
}

async fn run_get(
    State(admin): State<Arc<Admin>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    ConnectInfo(client): ConnectInfo<ClientAddress>,
    headers: HeaderMap,
) -> Response {
    let arguments = parse_query(query.as_deref().unwrap_or(""));
    let command = match admin.admit(&name, false, &headers, &client) {
        Ok(command) => command,
        Err(refused) => return json_response(&refused, &[]),
    };
    if command.primary() == "snapshot" {
        return take_snapshot(&admin, &arguments).await;
    }
    let running = admin.clone();
    let answered = tokio::task::spawn_blocking(move || {
        let context = Context {
            shared: &running.shared,
            storage: &running.storage,
            trace_mask: &running.trace_mask,
        };
        commands::run(&context, command, &arguments)
    })
    .await;
    match answered {
        Ok(answer) => json_response(&answer, &[]),
        Err(err) => json_response(&Answer::failed(command.primary(), err.to_string(), 500), &[]),
    }
}

async fn run_post(
    State(admin): State<Arc<Admin>>,
    Path(name): Path<String>,
    ConnectInfo(client): ConnectInfo<ClientAddress>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(refused) = admin.admit(&name, true, &headers, &client) {
        return json_response(&refused, &[]);
    }
    json_response(&restore(&admin, body).await, &[])
}

impl Admin {
    /// The command called `name` if the caller may run it now (by POST if `post`), else
    /// the answer ZooKeeper gives: an unknown command or a server not serving answer 200 with an
    /// error; missing or wrong credentials 401; too few permissions 403.
    fn admit(
        &self,
        name: &str,
        post: bool,
        headers: &HeaderMap,
        client: &ClientAddress,
    ) -> Result<&'static Command, Box<Answer>> {
        let Some(command) = commands::find(name) else {
            return Err(Box::new(Answer::failed(name, format!("Unknown command: {name}"), 200)));
        };
        let primary = command.primary();
        if command.post != post {
            let wanted = if command.post { "POST" } else { "GET" };
            return Err(Box::new(Answer::failed(
                primary,
                format!("{primary} takes {wanted}"),
                405,
            )));
        }
        if command.needs_server && !self.shared.mode.lock().is_serving() {
            let error = "This ZooKeeper instance is not currently serving requests";
            return Err(Box::new(Answer::failed(primary, error, 200)));
        }
        if command.needs_auth {
            self.authorize(primary, headers, client)?;
        }
        Ok(command)
    }

    /// ZooKeeper's check of an `AuthRequest`: the identities the `Authorization` header
    /// names (`digest user:password`, `ip`, or `x509` for the client certificate of an
    /// HTTPS connection) must hold every permission on `/`.
    fn authorize(
        &self,
        primary: &str,
        headers: &HeaderMap,
        client: &ClientAddress,
    ) -> Result<(), Box<Answer>> {
        let Some(header) = headers.get(AUTHORIZATION) else {
            return Err(Box::new(Answer::failed(
                primary,
                "Auth info is missing for the command",
                401,
            )));
        };
        let not_authenticated = || Box::new(Answer::failed(primary, "Not authenticated", 401));
        let header = header.to_str().map_err(|_| not_authenticated())?;
        let parts: Vec<&str> = header.split(' ').collect();
        let (scheme, credentials) = match parts.as_slice() {
            [scheme] => (*scheme, ""),
            [scheme, credentials] => (*scheme, *credentials),
            _ => return Err(not_authenticated()),
        };
        let config = &self.shared.config;
        let ids = match (scheme, &client.x509_subject) {
            ("x509", Some(subject)) => x509_ids(subject.clone(), config.x509_super_user.as_deref()),
            ("x509", None) => return Err(not_authenticated()),
            _ => authenticate(
                scheme,
                credentials.as_bytes(),
                client.peer.ip(),
                config.digest.as_ref(),
            )
            .map_err(|_| not_authenticated())?,
        };
        let auth = AuthIds::from_ids(ids).skipping_acl(config.skip_acl);
        let tree = self.shared.database.tree();
        let acl = tree.with_node("/", |node, _| tree.acl(node.acl()).to_vec()).unwrap_or_default();
        // Each permission on its own, as ZooKeeper checks them: different entries may grant
        // different ones.
        let permitted = (0..i32::BITS)
            .map(|bit| 1 << bit)
            .filter(|bit| perms::ALL & bit != 0)
            .all(|bit| check_acl(&acl, bit, &auth).is_ok());
        if permitted {
            Ok(())
        } else {
            Err(Box::new(Answer::failed(primary, "Not authorized", 403)))
        }
    }
}

/// `snapshot`: the state as a ZooKeeper snapshot file, with its zxid and size as the
/// `last_zxid` and `snapshot_size` headers; with `streaming=false`, only the headers.
async fn take_snapshot(admin: &Arc<Admin>, arguments: &[(String, String)]) -> Response {
    let mut answer = Answer::new("snapshot");
    if !admin.settings.snapshot_enabled {
        answer.status = 503;
        return json_response(&answer, &[]);
    }
    if !admin.snapshots.allow(admin.shared.clock.now_ms()) {
        answer.status = 429;
        return json_response(&answer, &[]);
    }
    let streaming = arguments
        .iter()
        .find(|(name, _)| name == "streaming")
        .is_none_or(|(_, value)| value.eq_ignore_ascii_case("true"));
    let taking = admin.clone();
    let taken = tokio::task::spawn_blocking(move || {
        let shared = &taking.shared;
        snapshot::take(taking.storage.as_ref(), shared.config.extended_types_enabled, || {
            shared.database.last_applied_zxid()
        })
    })
    .await
    .map_err(|err| err.to_string())
    .and_then(|taken| taken);
    let taken = match taken {
        Ok(taken) => taken,
        Err(err) => {
            tracing::warn!(cause = %err, "the AdminServer's snapshot failed");
            return json_response(&Answer::failed("snapshot", err, 500), &[]);
        }
    };
    let headers = [
        ("last_zxid", format!("0x{:x}", taken.zxid.raw())),
        ("snapshot_size", taken.size.to_string()),
    ];
    tracing::info!(zxid = %taken.zxid, bytes = taken.size, streaming, "AdminServer snapshot");
    if !streaming {
        return json_response(&answer, &headers);
    }
    let pieces = match taken.stream() {
        Ok(pieces) => pieces,
        Err(err) => return json_response(&Answer::failed("snapshot", err.to_string(), 500), &[]),
    };
    let mut response = octet_stream(pieces);
    add_headers(&mut response, &headers);
    response
}

/// A response whose body is the pieces as they come, until the channel closes.
fn octet_stream(mut pieces: tokio::sync::mpsc::Receiver<bytes::Bytes>) -> Response {
    let stream = futures_util::stream::poll_fn(move |cx| {
        pieces.poll_recv(cx).map(|piece| piece.map(Ok::<_, std::io::Error>))
    });
    let mut response = Response::new(Body::from_stream(stream));
    let octets = HeaderValue::from_static("application/octet-stream");
    response.headers_mut().insert(CONTENT_TYPE, octets);
    response
}

/// `restore`: the uploaded ZooKeeper snapshot file replaces the state of a standalone
/// server; the answer's `last_zxid` is the zxid the state was installed at.
async fn restore(admin: &Arc<Admin>, body: Body) -> Answer {
    let mut answer = Answer::new("restore");
    if !admin.settings.restore_enabled {
        answer.status = 503;
        return answer;
    }
    if !admin.shared.config.is_standalone() {
        let error = "restore replaces a standalone server's state; an ensemble member \
                     restored alone would part from its ensemble";
        return Answer::failed("restore", error, 500);
    }
    if !admin.restores.allow(admin.shared.clock.now_ms()) {
        answer.status = 429;
        return answer;
    }
    match upload::restore(&admin.shared, body).await {
        Ok(zxid) => {
            answer.put("last_zxid", zxid.raw());
            answer
        }
        Err(err) => {
            tracing::warn!(cause = %err, "the AdminServer's restore failed");
            Answer::failed("restore", err, 500)
        }
    }
}

/// `GET /backup/txns?after=<zxid>` (zkrs only, for `zkrs backup`): the committed txns
/// after the zxid, then each as it commits ([`txns`]); needs what `snapshot` needs.
async fn backup_txns(
    State(admin): State<Arc<Admin>>,
    RawQuery(query): RawQuery,
    ConnectInfo(client): ConnectInfo<ClientAddress>,
    headers: HeaderMap,
) -> Response {
    const NAME: &str = "backup_txns";
    if let Err(refused) = admin.authorize(NAME, &headers, &client) {
        return json_response(&refused, &[]);
    }
    if !admin.shared.mode.lock().is_serving() {
        let error = "This ZooKeeper instance is not currently serving requests";
        return json_response(&Answer::failed(NAME, error, 503), &[]);
    }
    let arguments = parse_query(query.as_deref().unwrap_or(""));
    let after = arguments
        .iter()
        .find(|(name, _)| name == "after")
        .map(|(_, value)| crate::txn::Zxid::parse(value));
    let Some(Ok(after)) = after else {
        return json_response(&Answer::failed(NAME, "after=<zxid> is required", 400), &[]);
    };
    let started = txns::start(admin.shared.clone(), admin.storage.clone(), after).await;
    let pieces = match started {
        Ok(pieces) => pieces,
        Err(refused) => {
            let status = match refused {
                txns::Refused::Gone(_) => 410,
                txns::Refused::Ahead { .. } => 409,
                txns::Refused::Storage(_) => 500,
            };
            return json_response(&Answer::failed(NAME, refused.to_string(), status), &[]);
        }
    };
    tracing::info!(peer = %client.peer, %after, "streaming txns to a backup");
    octet_stream(pieces)
}

/// `GET /ready`: 200 while the member serves clients (standalone, leading, following or
/// observing), 503 while it looks for a leader, serves read-only or leads under
/// `leaderServes=no`; the role either way.
async fn ready(State(admin): State<Arc<Admin>>) -> Response {
    let mode = *admin.shared.mode.lock();
    let ready = admin.shared.serves_clients() && mode != Mode::ReadOnly;
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json::pretty(&json!({ "ready": ready, "role": mode.name() }));
    (status, [(CONTENT_TYPE, "application/json")], body).into_response()
}

fn json_response(answer: &Answer, headers: &[(&'static str, String)]) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json::pretty(&answer.to_json());
    let mut response = (status, [(CONTENT_TYPE, "application/json")], body).into_response();
    add_headers(&mut response, headers);
    response
}

fn add_headers(response: &mut Response, headers: &[(&'static str, String)]) {
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            response.headers_mut().insert(*name, value);
        }
    }
}

/// A query string's parameters, decoded as a servlet decodes them.
fn parse_query(query: &str) -> Vec<(String, String)> {
    let decode = |text: &str| {
        let spaced = text.replace('+', " ");
        percent_encoding::percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
    };
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) => (decode(name), decode(value)),
            None => (decode(pair), String::new()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_limiter_allows_one_call_per_interval() {
        let limiter = RateLimiter::new(100, 1000);
        assert!(limiter.allow(1000));
        assert!(!limiter.allow(1050));
        assert!(!limiter.allow(1100));
        assert!(limiter.allow(1101));
        assert!(!limiter.allow(1102));
    }

    #[test]
    fn queries_decode_like_a_servlet() {
        assert_eq!(
            parse_query("traceMask=12&streaming=false&x=a%20b+c&flag"),
            vec![
                ("traceMask".to_owned(), "12".to_owned()),
                ("streaming".to_owned(), "false".to_owned()),
                ("x".to_owned(), "a b c".to_owned()),
                ("flag".to_owned(), String::new()),
            ]
        );
    }
}
