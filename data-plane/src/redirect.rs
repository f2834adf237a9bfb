//! Entry point redirection (Traefik's
//! `entryPoints.<name>.http.redirections.entryPoint`): every request on the
//! entry point is redirected to another scheme and port.

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use sluice_proto::v1::EntryPointRedirection;

use crate::body::ProxyBody;
use crate::router::canonical_host;

/// A compiled entry point redirection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Redirect {
    scheme: String,
    /// `None` when the port is the scheme's default (or unknown).
    port: Option<u16>,
    permanent: bool,
}

impl Redirect {
    /// From the snapshot (scheme defaults to `https`).
    pub(crate) fn new(config: &EntryPointRedirection) -> Self {
        let scheme = match config.scheme.as_str() {
            "" => "https".to_owned(),
            scheme => scheme.to_ascii_lowercase(),
        };
        let default_port = match scheme.as_str() {
            "https" => 443,
            _ => 80,
        };
        let port = u16::try_from(config.port)
            .ok()
            .filter(|&p| p != 0 && p != default_port);
        Self {
            scheme,
            port,
            permanent: config.permanent,
        }
    }

    /// The redirect answering `req`.
    pub(crate) fn respond<B>(&self, req: &Request<B>) -> Response<ProxyBody> {
        let authority = req
            .uri()
            .authority()
            .map(|a| a.as_str())
            .or_else(|| {
                req.headers()
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
            })
            .unwrap_or("");
        let host = canonical_host(authority);
        let mut location = format!("{}://", self.scheme);
        if host.contains(':') {
            location.push('[');
            location.push_str(&host);
            location.push(']');
        } else {
            location.push_str(&host);
        }
        if let Some(port) = self.port {
            location.push(':');
            location.push_str(&port.to_string());
        }
        location.push_str(req.uri().path_and_query().map_or("/", |pq| pq.as_str()));
        let get = req.method() == Method::GET;
        let status = match (self.permanent, get) {
            (true, true) => StatusCode::MOVED_PERMANENTLY,
            (true, false) => StatusCode::PERMANENT_REDIRECT,
            (false, true) => StatusCode::FOUND,
            (false, false) => StatusCode::TEMPORARY_REDIRECT,
        };
        let mut response = Response::new(ProxyBody::empty());
        *response.status_mut() = status;
        if let Ok(location) = HeaderValue::from_str(&location) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_to_https() {
        let redirect = Redirect::new(&EntryPointRedirection {
            to: "websecure".into(),
            scheme: String::new(),
            permanent: true,
            port: 8443,
        });
        let req = Request::builder()
            .uri("/a?b=c")
            .header("host", "App.test:8080")
            .body(())
            .unwrap();
        let response = redirect.respond(&req);
        assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
        assert_eq!(
            response.headers()["location"],
            "https://app.test:8443/a?b=c"
        );
        let post = Request::post("/").header("host", "a").body(()).unwrap();
        let redirect = Redirect::new(&EntryPointRedirection {
            port: 443,
            ..Default::default()
        });
        let response = redirect.respond(&post);
        assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
        assert_eq!(response.headers()["location"], "https://a/");
    }
}
