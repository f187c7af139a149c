//! HTTP calls to the control endpoint.

use crate::report::error_chain;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::CALL_TIMEOUT;

/// Why a ctl command failed.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// The command line was wrong.
    #[error("{0}")]
    Usage(String),
    /// The endpoint could not be reached.
    #[error("cannot reach the control endpoint at {url}: {reason}")]
    Unreachable {
        /// Where.
        url: String,
        /// Why.
        reason: String,
    },
    /// Some targets of a fleet command did not answer, or refused.
    #[error("{failed} of {of} targets have not {what}: {targets}")]
    Fleet {
        /// How many failed.
        failed: usize,
        /// Of how many.
        of: usize,
        /// What they did not do.
        what: &'static str,
        /// Each failed target with why.
        targets: String,
    },
    /// The server refused; its words.
    #[error("{status}: {message}")]
    Server {
        /// The HTTP status.
        status: StatusCode,
        /// The server's error text, with the field it named.
        message: String,
    },
}

/// A client of one control endpoint.
#[derive(Debug, Clone)]
pub struct Client {
    http: HttpClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
    base: String,
    token: Option<String>,
}

impl Client {
    /// A client of the endpoint at `url` (e.g. `http://127.0.0.1:8474`, or `https://` verified
    /// against `ca` or the built-in roots).
    pub fn new(url: &str, token: Option<String>, ca: Option<&str>) -> Result<Self, CtlError> {
        let base = url.trim_end_matches('/').to_string();
        let uri: Uri = base
            .parse()
            .map_err(|e| CtlError::Usage(format!("--url {url:?}: {e}")))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err(CtlError::Usage(format!(
                "--url {url:?}: use http:// or https://"
            )));
        }
        let tls = crate::tls::client_config(ca, false)
            .map_err(|e| CtlError::Usage(format!("--ca: {e}")))?;
        let connector = crate::tls::http_connector(tls);
        Ok(Client {
            http: HttpClient::builder(TokioExecutor::new()).build(connector),
            base,
            token,
        })
    }

    /// A client of the endpoint at `url` with this one's token and TLS settings: a drill's
    /// targets share the fleet's token.
    pub fn with_base(&self, url: &str) -> Result<Self, CtlError> {
        let base = url.trim_end_matches('/').to_string();
        let uri: Uri = base
            .parse()
            .map_err(|e| CtlError::Usage(format!("{url:?}: {e}")))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err(CtlError::Usage(format!("{url:?}: use http:// or https://")));
        }
        Ok(Client {
            http: self.http.clone(),
            base,
            token: self.token.clone(),
        })
    }

    /// The endpoint's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Request<Full<Bytes>>, CtlError> {
        let method =
            Method::from_bytes(method.as_bytes()).map_err(|e| CtlError::Usage(e.to_string()))?;
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            builder = builder.header(AUTHORIZATION, format!("Bearer {}", token.trim()));
        }
        let bytes = match body {
            Some(v) => {
                builder = builder.header(CONTENT_TYPE, "application/json");
                Bytes::from(serde_json::to_vec(&v).unwrap_or_default())
            }
            None => Bytes::new(),
        };
        builder
            .body(Full::new(bytes))
            .map_err(|e| CtlError::Usage(format!("bad request: {e}")))
    }

    fn unreachable(&self, reason: impl ToString) -> CtlError {
        CtlError::Unreachable {
            url: self.base.clone(),
            reason: reason.to_string(),
        }
    }

    /// A GET answering JSON.
    pub async fn get(&self, path: &str) -> Result<Value, CtlError> {
        self.send("GET", path, None).await
    }

    /// A call answering JSON, or `null` for an empty answer.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CtlError> {
        let request = self.request(method, path, body)?;
        let call = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| self.unreachable(error_chain(&e)))?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| self.unreachable(e))?
                .to_bytes();
            Ok::<_, CtlError>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(CALL_TIMEOUT, call)
            .await
            .map_err(|_| self.unreachable(format!("no answer within {CALL_TIMEOUT:?}")))??;
        let value: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        if status.is_success() {
            return Ok(value);
        }
        let message = match (
            value.get("error").and_then(Value::as_str),
            value.get("field").and_then(Value::as_str),
        ) {
            (Some(error), Some(field)) => format!("{error} (field: {field})"),
            (Some(error), None) => error.to_string(),
            _ => value.to_string(),
        };
        Err(CtlError::Server { status, message })
    }

    /// Follows a server-sent-event stream, handing each event's data to `on_event`, until
    /// the server closes it.
    pub async fn follow(
        &self,
        path: &str,
        mut on_event: impl FnMut(Value),
    ) -> Result<(), CtlError> {
        let request = self.request("GET", path, None)?;
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| self.unreachable(error_chain(&e)))?;
        if !response.status().is_success() {
            return Err(CtlError::Server {
                status: response.status(),
                message: "the event stream was refused".into(),
            });
        }
        let mut body = response.into_body();
        let mut pending = String::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| self.unreachable(e))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            pending.push_str(&String::from_utf8_lossy(&data));
            while let Some(end) = pending.find("\n\n") {
                let block: String = pending.drain(..end + 2).collect();
                for line in block.lines() {
                    if let Some(json) = line.strip_prefix("data: ")
                        && let Ok(value) = serde_json::from_str(json)
                    {
                        on_event(value);
                    }
                }
            }
        }
        Ok(())
    }
}
