//! A small Consul HTTP API client: endpoints tried in turn, the ACL token
//! and basic authentication, TLS (rustls, with the `tls` options of
//! `providers/tls.rs`), and blocking queries.
//!
//! Blocking queries follow Consul's documented rules
//! (<https://developer.hashicorp.com/consul/api-docs/features/blocking>): the
//! next request waits on the `X-Consul-Index` of the last answer; an index
//! that goes backwards resets to 0 (a plain read starts the loop over), and
//! an index of 0 in an answer is treated as 1 so that a buggy server cannot
//! turn the loop into a busy one. After a failed request the query starts
//! over with a plain read too, so a recovered agent is noticed at once.

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::config::{ProviderTlsConfig, Secret};
use crate::providers::endpoint;
use crate::providers::tls::{ProviderTlsError, client_config};

/// How long a blocking query waits for a change when not configured
/// (Consul's own default).
pub(crate) const DEFAULT_WAIT: Duration = Duration::from_secs(300);

/// Why a Consul client cannot be created, or a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ConsulError {
    /// An endpoint is not `host:port`, `http://host:port` or `https://host:port`.
    #[error("invalid Consul endpoint `{endpoint}`: {reason}")]
    Endpoint {
        /// The endpoint as written.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No endpoint is configured.
    #[error("no Consul endpoint is configured")]
    NoEndpoint,
    /// The token or basic authentication cannot be sent in a header.
    #[error("the {0} contains characters that cannot be sent in an HTTP header")]
    Credentials(&'static str),
    /// The `tls` options cannot be used.
    #[error(transparent)]
    Tls(#[from] ProviderTlsError),
    /// The request could not be sent or answered.
    #[error("GET {url}: {reason}")]
    Request {
        /// What was asked.
        url: String,
        /// Why it failed, with its causes (`client error (Connect):
        /// connection refused`).
        reason: String,
    },
    /// The answer's body could not be read.
    #[error("GET {url}: reading the body: {source}")]
    Body {
        /// What was asked.
        url: String,
        /// Why it failed.
        #[source]
        source: hyper::Error,
    },
    /// No answer in time.
    #[error("GET {url}: no answer within {timeout:?}")]
    Timeout {
        /// What was asked.
        url: String,
        /// How long it waited.
        timeout: Duration,
    },
    /// Consul answered with an error status.
    #[error("GET {url}: Consul answered {status}: {body}")]
    Status {
        /// What was asked.
        url: String,
        /// The status.
        status: StatusCode,
        /// The start of the body: Consul's explanation.
        body: String,
    },
    /// The body is not what the endpoint documents.
    #[error("GET {url}: unexpected answer: {source}")]
    Json {
        /// What was asked.
        url: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

/// An answer from Consul.
#[derive(Debug)]
pub(crate) struct ConsulResponse {
    /// `X-Consul-Index`, 0 when absent.
    pub(crate) index: u64,
    /// 200 or 404 (other statuses are errors).
    pub(crate) status: StatusCode,
    pub(crate) body: Bytes,
    /// The URL asked, for messages.
    pub(crate) url: String,
}

impl ConsulResponse {
    /// The body as JSON of type `T`.
    pub(crate) fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ConsulError> {
        serde_json::from_slice(&self.body).map_err(|source| ConsulError::Json {
            url: self.url.clone(),
            source,
        })
    }
}

/// A client for one or more Consul agents of the same cluster.
#[derive(Debug, Clone)]
pub(crate) struct ConsulClient {
    /// `http://host:port` or `https://host:port`, without a trailing slash.
    endpoints: Vec<String>,
    /// The endpoint used next; moves on after a failure.
    current: usize,
    /// `X-Consul-Token` header value.
    token: Option<HeaderValue>,
    /// `Authorization` header value for basic authentication.
    authorization: Option<HeaderValue>,
    http: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl ConsulClient {
    /// A client for `endpoints` (`host:port`, `http://host:port` or
    /// `https://host:port`). With `tls` (written at option `tls_prefix`,
    /// for messages), `host:port` means `https`.
    pub(crate) fn new(
        endpoints: &[String],
        token: &Secret,
        basic_auth: Option<(&str, &Secret)>,
        tls_prefix: &str,
        tls: Option<&ProviderTlsConfig>,
    ) -> Result<Self, ConsulError> {
        if endpoints.is_empty() {
            return Err(ConsulError::NoEndpoint);
        }
        let endpoints = endpoints
            .iter()
            .map(|endpoint| parse_endpoint(endpoint, tls.is_some()))
            .collect::<Result<Vec<_>, _>>()?;
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(client_config(tls_prefix, tls)?)
            .https_or_http()
            .enable_http1()
            .build();
        let token = (!token.is_empty())
            .then(|| sensitive_header(token.expose(), "ACL token"))
            .transpose()?;
        let authorization = basic_auth
            .map(|(user, password)| {
                let credentials = base64::engine::general_purpose::STANDARD
                    .encode(format!("{user}:{}", password.expose()));
                sensitive_header(&format!("Basic {credentials}"), "basic authentication")
            })
            .transpose()?;
        Ok(Self {
            endpoints,
            current: 0,
            token,
            authorization,
            http: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    /// `GET path_and_query` on the current endpoint, within `timeout`. A
    /// failure moves to the next endpoint for the next request.
    pub(crate) async fn get(
        &mut self,
        path_and_query: &str,
        timeout: Duration,
    ) -> Result<ConsulResponse, ConsulError> {
        let url = format!("{}{path_and_query}", self.endpoints[self.current]);
        let result = self.fetch(&url, timeout).await;
        if result.is_err() {
            self.current = (self.current + 1) % self.endpoints.len();
        }
        result
    }

    async fn fetch(&self, url: &str, timeout: Duration) -> Result<ConsulResponse, ConsulError> {
        let mut request = Request::get(url);
        if let Some(token) = &self.token {
            request = request.header("X-Consul-Token", token.clone());
        }
        if let Some(authorization) = &self.authorization {
            request = request.header(http::header::AUTHORIZATION, authorization.clone());
        }
        let request = request
            .body(Empty::new())
            .map_err(|error| ConsulError::Endpoint {
                endpoint: url.to_owned(),
                reason: error.to_string(),
            })?;
        let exchange = async {
            let response =
                self.http
                    .request(request)
                    .await
                    .map_err(|error| ConsulError::Request {
                        url: url.to_owned(),
                        reason: with_causes(&error),
                    })?;
            let status = response.status();
            let index = response
                .headers()
                .get("X-Consul-Index")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse().ok())
                .unwrap_or(0);
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|source| ConsulError::Body {
                    url: url.to_owned(),
                    source,
                })?
                .to_bytes();
            Ok::<_, ConsulError>((status, index, body))
        };
        let (status, index, body) =
            tokio::time::timeout(timeout, exchange)
                .await
                .map_err(|_| ConsulError::Timeout {
                    url: url.to_owned(),
                    timeout,
                })??;
        if status != StatusCode::OK && status != StatusCode::NOT_FOUND {
            let text = String::from_utf8_lossy(&body);
            return Err(ConsulError::Status {
                url: url.to_owned(),
                status,
                body: text.chars().take(200).collect(),
            });
        }
        Ok(ConsulResponse {
            index,
            status,
            body,
            url: url.to_owned(),
        })
    }
}

/// An error and its causes, `: `-separated.
pub(crate) fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        let message = error.to_string();
        if !text.ends_with(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        cause = error.source();
    }
    text
}

/// A header value marked sensitive, so that it is never logged.
fn sensitive_header(value: &str, what: &'static str) -> Result<HeaderValue, ConsulError> {
    let mut header = HeaderValue::from_str(value).map_err(|_| ConsulError::Credentials(what))?;
    header.set_sensitive(true);
    Ok(header)
}

/// `endpoint` as `scheme://host:port` (see [`endpoint::normalize`]).
fn parse_endpoint(endpoint: &str, tls: bool) -> Result<String, ConsulError> {
    endpoint::normalize(endpoint, tls).map_err(|reason| ConsulError::Endpoint {
        endpoint: endpoint.to_owned(),
        reason,
    })
}

/// A blocking query on one endpoint path: each call returns the next
/// answer, waiting for a change since the previous one.
#[derive(Debug, Clone)]
pub(crate) struct BlockingQuery {
    /// Path and query without `index` and `wait` (`/v1/kv/traefik?recurse=true`).
    path: String,
    index: u64,
    wait: Duration,
}

impl BlockingQuery {
    /// A query that starts with a plain read.
    pub(crate) fn new(path: String, wait: Duration) -> Self {
        Self {
            path,
            index: 0,
            wait,
        }
    }

    /// The next answer: immediately the first time (and after a reset),
    /// then once the index moves past the last one or `wait` expires.
    pub(crate) async fn next(
        &mut self,
        client: &mut ConsulClient,
    ) -> Result<ConsulResponse, ConsulError> {
        let separator = if self.path.contains('?') { '&' } else { '?' };
        let url = if self.index == 0 {
            self.path.clone()
        } else {
            format!(
                "{}{separator}index={}&wait={}ms",
                self.path,
                self.index,
                self.wait.as_millis()
            )
        };
        // Consul adds up to wait/16 of jitter; allow for it and the network.
        let timeout = self.wait + self.wait / 16 + Duration::from_secs(10);
        let response = match client.get(&url, timeout).await {
            Ok(response) => response,
            Err(error) => {
                // The next answer may come from another agent, or after a
                // restore: start over with a plain read, which also shows at
                // once that Consul is back.
                self.index = 0;
                return Err(error);
            }
        };
        self.index = next_index(self.index, response.index);
        Ok(response)
    }
}

/// The index to wait on after an answer carrying `returned`, when the last
/// one waited on was `previous`: 0 (start over) if it went backwards, at
/// least 1 otherwise.
pub(crate) fn next_index(previous: u64, returned: u64) -> u64 {
    if returned < previous {
        0
    } else {
        returned.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_moves_forward_resets_when_it_goes_back_and_is_never_zero() {
        assert_eq!(next_index(0, 12), 12);
        assert_eq!(
            next_index(12, 12),
            12,
            "a wait that expired keeps the index"
        );
        assert_eq!(next_index(12, 15), 15);
        assert_eq!(
            next_index(15, 3),
            0,
            "backwards: start over with a plain read"
        );
        assert_eq!(next_index(0, 0), 1, "a zero index would never block");
        assert_eq!(next_index(15, 0), 0);
        assert_eq!(next_index(0, 3), 3);
    }

    #[test]
    fn endpoints_are_host_port_or_http_urls() {
        assert_eq!(
            parse_endpoint("127.0.0.1:8500", false).unwrap(),
            "http://127.0.0.1:8500"
        );
        assert_eq!(
            parse_endpoint("127.0.0.1:8501", true).unwrap(),
            "https://127.0.0.1:8501"
        );
        assert_eq!(
            parse_endpoint("http://consul:8500/", true).unwrap(),
            "http://consul:8500"
        );
        assert_eq!(
            parse_endpoint("https://consul:8501", false).unwrap(),
            "https://consul:8501"
        );
        let error = parse_endpoint("ftp://consul", false)
            .unwrap_err()
            .to_string();
        assert!(error.contains("ftp://consul"), "{error}");
    }

    #[test]
    fn tls_errors_name_the_option_and_the_file() {
        let tls = ProviderTlsConfig {
            ca: "/x/ca.pem".to_owned(),
            ..ProviderTlsConfig::default()
        };
        let error = ConsulClient::new(
            &["a:1".to_owned()],
            &Secret::default(),
            None,
            "tls",
            Some(&tls),
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with("tls.ca `/x/ca.pem`: No such file"),
            "{error}"
        );
        let client = ConsulClient::new(
            &["a:1".to_owned()],
            &Secret::default(),
            None,
            "tls",
            Some(&ProviderTlsConfig::default()),
        )
        .unwrap();
        assert_eq!(client.endpoints, ["https://a:1"]);
    }
}
