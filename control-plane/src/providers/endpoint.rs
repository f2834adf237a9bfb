//! The `endpoints` of the HTTP-based providers (Consul, etcd): `host:port`
//! or an `http`/`https` URL, normalised to `scheme://host:port`.

/// `host:port` (`https` when `tls` is configured, `http` otherwise),
/// `http://host:port` or `https://host:port` as `scheme://host:port`; the
/// error says what is wrong with `endpoint`.
pub(crate) fn normalize(endpoint: &str, tls: bool) -> Result<String, String> {
    let with_scheme = if endpoint.contains("://") {
        endpoint.to_owned()
    } else if tls {
        format!("https://{endpoint}")
    } else {
        format!("http://{endpoint}")
    };
    let uri: http::Uri = with_scheme
        .parse()
        .map_err(|error: http::uri::InvalidUri| error.to_string())?;
    let expected = || "expected `host:port`, `http://host:port` or `https://host:port`".to_owned();
    let scheme = match uri.scheme_str() {
        Some(scheme @ ("http" | "https")) => scheme,
        _ => return Err(expected()),
    };
    let authority = uri.authority().ok_or_else(expected)?;
    Ok(format!("{scheme}://{authority}"))
}
