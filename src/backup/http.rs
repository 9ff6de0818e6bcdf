//! The little HTTP the backup tool speaks to a member's AdminServer: one GET per
//! connection, over hyper's HTTP/1 client.

use axum::http::header::{AUTHORIZATION, HOST};
use axum::http::{Request, Response, StatusCode};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A member's AdminServer, and the credentials the backup sends it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    host: String,
    port: u16,
    authorization: Option<String>,
}

impl Endpoint {
    /// `http://host:port` (or `host:port`), with an `Authorization` value such as
    /// `digest user:password` or `ip`.
    ///
    /// # Errors
    /// An address that is not `host:port`.
    pub fn parse(url: &str, authorization: Option<String>) -> Result<Endpoint, String> {
        let address = url.trim_start_matches("http://").trim_end_matches('/');
        let (host, port) = address
            .rsplit_once(':')
            .and_then(|(host, port)| Some((host, port.parse().ok()?)))
            .ok_or_else(|| format!("{url} is not http://host:port"))?;
        Ok(Endpoint { host: host.trim_matches(['[', ']']).to_owned(), port, authorization })
    }

    /// Sends `GET path` and returns the response as it starts to arrive.
    ///
    /// # Errors
    /// If the member cannot be reached or the exchange fails.
    pub async fn get(&self, path: &str) -> Result<Response<Incoming>, String> {
        let stream = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|err| format!("connecting to {}:{}: {err}", self.host, self.port))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|err| err.to_string())?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut request = Request::get(path).header(HOST, format!("{}:{}", self.host, self.port));
        if let Some(authorization) = &self.authorization {
            request = request.header(AUTHORIZATION, authorization);
        }
        let request = request.body(Empty::<Bytes>::new()).map_err(|err| err.to_string())?;
        sender.send_request(request).await.map_err(|err| err.to_string())
    }
}

/// The next piece of a response's body, `None` at its end.
///
/// # Errors
/// If the connection breaks.
pub async fn next_piece(body: &mut Incoming) -> Result<Option<Bytes>, String> {
    loop {
        match body.frame().await {
            None => return Ok(None),
            Some(Err(err)) => return Err(err.to_string()),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    return Ok(Some(data));
                }
            }
        }
    }
}

/// A failed answer as a message: its status and the AdminServer's `error`.
pub async fn refusal(response: Response<Incoming>) -> String {
    let status: StatusCode = response.status();
    let body = response.into_body().collect().await.map(|body| body.to_bytes());
    let text = body.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()).unwrap_or_default();
    let error = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|answer| answer.get("error").and_then(|e| e.as_str()).map(str::to_owned));
    format!("{status}: {}", error.unwrap_or(text))
}
