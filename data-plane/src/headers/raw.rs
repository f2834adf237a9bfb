//! The header rules of this module's parent, applied to raw fields (names as
//! written, values as they came off the wire) for direct forwarding: each
//! field is classified once, when its head is parsed ([`FieldKind`]), and
//! the rules then look at kinds rather than compare names.

use bytes::{BufMut, BytesMut};
use http::HeaderName;
use smallvec::SmallVec;

use super::{HeaderFields, Known, default_port, explicit_port, te_accepts_trailers, visible_ascii};

/// What a header field is to the proxy's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldKind {
    /// Nothing the rules single out.
    Other,
    Host,
    ContentLength,
    TransferEncoding,
    Connection,
    Te,
    Trailer,
    Date,
    Upgrade,
    Expect,
    /// `Keep-Alive`, `Proxy-Authenticate`, `Proxy-Authorization`,
    /// `Proxy-Connection`.
    OtherHopByHop,
    XForwardedFor,
    XForwardedProto,
    XForwardedHost,
    XForwardedPort,
    XForwardedServer,
    XRealIp,
    /// `X-Forwarded-Uri`, `-Method`, `-Prefix`, `-Tls-Client-Cert` and
    /// `-Tls-Client-Cert-Info`.
    XForwardedOther,
    /// `Idempotency-Key`, `X-Idempotency-Key`.
    IdempotencyKey,
    /// Removed by the proxy (a length beside a transfer coding).
    Dropped,
}

impl FieldKind {
    /// The kind of a field named `name` (any case).
    pub(crate) fn of(name: &[u8]) -> Self {
        let is = |known: &[u8]| lowercase_eq(name, known);
        let x_forwarded = |rest: &[u8]| {
            name.len() == 12 + rest.len()
                && lowercase_eq(&name[..12], b"x-forwarded-")
                && lowercase_eq(&name[12..], rest)
        };
        match name.len() {
            2 if is(b"te") => Self::Te,
            4 if is(b"host") => Self::Host,
            4 if is(b"date") => Self::Date,
            6 if is(b"expect") => Self::Expect,
            7 if is(b"trailer") => Self::Trailer,
            7 if is(b"upgrade") => Self::Upgrade,
            9 if is(b"x-real-ip") => Self::XRealIp,
            10 if is(b"connection") => Self::Connection,
            10 if is(b"keep-alive") => Self::OtherHopByHop,
            14 if is(b"content-length") => Self::ContentLength,
            15 if x_forwarded(b"for") => Self::XForwardedFor,
            15 if x_forwarded(b"uri") => Self::XForwardedOther,
            15 if is(b"idempotency-key") => Self::IdempotencyKey,
            16 if x_forwarded(b"host") => Self::XForwardedHost,
            16 if x_forwarded(b"port") => Self::XForwardedPort,
            16 if is(b"proxy-connection") => Self::OtherHopByHop,
            17 if is(b"transfer-encoding") => Self::TransferEncoding,
            17 if x_forwarded(b"proto") => Self::XForwardedProto,
            17 if is(b"x-idempotency-key") => Self::IdempotencyKey,
            18 if x_forwarded(b"server") => Self::XForwardedServer,
            18 if x_forwarded(b"method") || x_forwarded(b"prefix") => Self::XForwardedOther,
            18 if is(b"proxy-authenticate") => Self::OtherHopByHop,
            19 if is(b"proxy-authorization") => Self::OtherHopByHop,
            27 if x_forwarded(b"tls-client-cert") => Self::XForwardedOther,
            32 if x_forwarded(b"tls-client-cert-info") => Self::XForwardedOther,
            _ => Self::Other,
        }
    }

    /// The kind of a field named `name` (lowercase already).
    pub(crate) fn of_name(name: &HeaderName) -> Self {
        Self::of(name.as_str().as_bytes())
    }

    /// Whether every field of this kind has the same name, so that a field
    /// found by name needs its kind compared only, not its name too.
    pub(crate) fn is_one_name(self) -> bool {
        !matches!(
            self,
            Self::Other
                | Self::OtherHopByHop
                | Self::XForwardedOther
                | Self::IdempotencyKey
                | Self::Dropped
        )
    }

    /// A hop-by-hop field (RFC 9110 §7.6.1, plus `Proxy-Connection`).
    pub(crate) fn is_hop_by_hop(self) -> bool {
        matches!(
            self,
            Self::Connection
                | Self::Te
                | Self::TransferEncoding
                | Self::Upgrade
                | Self::OtherHopByHop
        )
    }

    /// One of the `X-Forwarded-*` fields only a trusted peer may set.
    pub(crate) fn is_client_forwarded(self) -> bool {
        matches!(
            self,
            Self::XForwardedFor
                | Self::XForwardedProto
                | Self::XForwardedHost
                | Self::XForwardedPort
                | Self::XForwardedServer
                | Self::XRealIp
                | Self::XForwardedOther
        )
    }

    /// A bit for sets of kinds.
    pub(crate) fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// Whether a field name equals `lower`, written in lowercase letters,
/// digits and `-`, in any case: setting bit 5 folds exactly the uppercase
/// letters onto those (the other bytes it changes cannot be in a name).
fn lowercase_eq(name: &[u8], lower: &[u8]) -> bool {
    name.len() == lower.len() && name.iter().zip(lower).all(|(&a, &b)| a | 0x20 == b)
}

/// One field of a raw head.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawField<'f> {
    pub(crate) name: &'f [u8],
    pub(crate) value: &'f [u8],
    /// The field as written, name to value (without the line's end): what
    /// is forwarded, in one copy.
    pub(crate) line: &'f [u8],
    pub(crate) kind: FieldKind,
}

/// The fields a raw head carries, as the rules read them.
pub(crate) trait RawFields<'f>: Iterator<Item = RawField<'f>> + Clone {}

impl<'f, I: Iterator<Item = RawField<'f>> + Clone> RawFields<'f> for I {}

/// What stripping does to a message's raw fields: the rules of
/// `strip_request` and `strip_response` for direct forwarding, which never
/// upgrades.
#[derive(Debug, Default)]
pub(crate) struct RawHopByHop<'f> {
    /// Fields `Connection` names (never `Host`).
    named: SmallVec<[&'f [u8]; 4]>,
    /// `TE` accepts trailers: `TE: trailers` goes on.
    te_trailers: bool,
}

impl<'f> RawHopByHop<'f> {
    /// Reads `Connection` and `TE` off `fields`.
    pub(crate) fn scan(fields: impl RawFields<'f>) -> Self {
        let mut found = Self::default();
        for field in fields {
            if !matches!(field.kind, FieldKind::Connection | FieldKind::Te) {
                continue;
            }
            let Some(value) = visible_ascii(field.value) else {
                continue;
            };
            if field.kind == FieldKind::Connection {
                let tokens = value.split(',').map(str::trim).filter(|t| {
                    !t.is_empty()
                        && !t.eq_ignore_ascii_case("upgrade")
                        && !t.eq_ignore_ascii_case("host")
                });
                found.named.extend(tokens.map(str::as_bytes));
            } else {
                found.te_trailers |= te_accepts_trailers(value);
            }
        }
        found
    }

    /// Whether stripping removes `field`.
    pub(crate) fn removes(&self, field: &RawField<'_>) -> bool {
        field.kind.is_hop_by_hop()
            || field.kind == FieldKind::Dropped
            || self
                .named
                .iter()
                .any(|n| n.eq_ignore_ascii_case(field.name))
    }

    /// Writes `TE: trailers` when stripping keeps it.
    fn write_te(&self, out: &mut BytesMut) {
        if self.te_trailers {
            out.put_slice(b"te: trailers\r\n");
        }
    }
}

/// Writes a field of the proxy's own: `prefix` is its name and `": "`.
fn put_field(out: &mut BytesMut, prefix: &[u8], value: &[u8]) {
    out.put_slice(prefix);
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

/// Writes a field as it came (always ended with CRLF).
fn put_line(out: &mut BytesMut, field: &RawField<'_>) {
    out.put_slice(field.line);
    out.put_slice(b"\r\n");
}

/// Where a request comes from and goes to, for [`write_forwarded_request`].
#[derive(Debug)]
pub(crate) struct RawForwarding<'a> {
    /// The entry point trusts the peer's `X-Forwarded-*`.
    pub(crate) trusted: bool,
    /// The TCP peer's IP.
    pub(crate) client_ip: &'a [u8],
    /// The client connection is TLS.
    pub(crate) tls: bool,
    /// The Host the client asked for.
    pub(crate) original_host: Option<&'a [u8]>,
    /// The Host sent to the server.
    pub(crate) host: &'a [u8],
    /// This proxy's name.
    pub(crate) server: &'a [u8],
}

/// What [`write_forwarded_request`] saw of the fields it forwarded.
#[derive(Debug)]
pub(crate) struct Forwarded {
    /// An `Idempotency-Key` went through (the request may be replayed).
    pub(crate) idempotency_key: bool,
}

/// Writes a bodiless request's raw fields for the server as the general
/// path leaves them (dispatch's `remove_untrusted_forwarded`, then
/// `strip_request`, `set_forwarded` and the `Host` rule of `forward`): the
/// same fields, in another order.
pub(crate) fn write_forwarded_request<'f>(
    fields: impl RawFields<'f>,
    to: &RawForwarding<'_>,
    out: &mut BytesMut,
) -> Forwarded {
    let hop_by_hop = RawHopByHop::scan(fields.clone());
    let mut prior_for: SmallVec<[&[u8]; 2]> = SmallVec::new();
    let mut present = 0u32;
    let mut proto: Option<&[u8]> = None;
    for field in fields {
        if hop_by_hop.removes(&field) || (!to.trusted && field.kind.is_client_forwarded()) {
            continue;
        }
        match field.kind {
            FieldKind::Host | FieldKind::XForwardedServer => continue,
            FieldKind::XForwardedFor => {
                prior_for.push(field.value);
                continue;
            }
            FieldKind::XForwardedProto => {
                proto.get_or_insert(field.value);
            }
            _ => {}
        }
        present |= field.kind.bit();
        put_line(out, &field);
    }
    let has = |kind: FieldKind| present & kind.bit() != 0;
    put_field(out, b"host: ", to.host);
    hop_by_hop.write_te(out);
    out.put_slice(b"x-forwarded-for: ");
    for prior in &prior_for {
        out.put_slice(prior);
        out.put_slice(b", ");
    }
    out.put_slice(to.client_ip);
    out.put_slice(b"\r\n");
    let own_proto: &[u8] = if to.tls { b"https" } else { b"http" };
    if !has(FieldKind::XForwardedProto) {
        put_field(out, b"x-forwarded-proto: ", own_proto);
    }
    if !has(FieldKind::XForwardedHost)
        && let Some(host) = to.original_host
    {
        put_field(out, b"x-forwarded-host: ", host);
    }
    if !has(FieldKind::XForwardedPort) {
        let port = to
            .original_host
            .and_then(explicit_port)
            .unwrap_or_else(|| default_port(proto.unwrap_or(own_proto)).as_bytes());
        put_field(out, b"x-forwarded-port: ", port);
    }
    put_field(out, b"x-forwarded-server: ", to.server);
    if !has(FieldKind::XRealIp) {
        put_field(out, b"x-real-ip: ", to.client_ip);
    }
    Forwarded {
        idempotency_key: has(FieldKind::IdempotencyKey),
    }
}

/// A response's raw fields as `strip_response` leaves them (not a `101`):
/// what direct forwarding reads and writes back to the client.
#[derive(Debug)]
pub(crate) struct StrippedResponse<'f, I> {
    fields: I,
    hop_by_hop: RawHopByHop<'f>,
}

impl<'f, I: RawFields<'f>> StrippedResponse<'f, I> {
    /// The fields of a response, stripped.
    pub(crate) fn new(fields: I) -> Self {
        Self {
            hop_by_hop: RawHopByHop::scan(fields.clone()),
            fields,
        }
    }

    fn kept(&self) -> impl Iterator<Item = RawField<'f>> {
        self.fields
            .clone()
            .filter(|field| !self.hop_by_hop.removes(field))
    }

    /// Writes the kept fields; without `Content-Length` when `drop_length`.
    pub(crate) fn write(&self, drop_length: bool, out: &mut BytesMut) {
        for field in self.kept() {
            if !(drop_length && field.kind == FieldKind::ContentLength) {
                put_line(out, &field);
            }
        }
        self.hop_by_hop.write_te(out);
    }
}

impl<'f, I: RawFields<'f> + std::fmt::Debug> HeaderFields for StrippedResponse<'f, I> {
    fn find_known(&self, known: &Known, test: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        self.kept()
            .any(|field| field.kind == known.kind && test(field.value))
            || (known.kind == FieldKind::Te && self.hop_by_hop.te_trailers && test(b"trailers"))
    }

    fn find_value(&self, name: &HeaderName, test: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        let kind = FieldKind::of_name(name);
        let name = name.as_str().as_bytes();
        self.kept().any(|field| {
            (field.kind == kind && (kind.is_one_name() || field.name.eq_ignore_ascii_case(name)))
                && test(field.value)
        }) || (kind == FieldKind::Te && self.hop_by_hop.te_trailers && test(b"trailers"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_singled_out_name_is_classified_in_any_case() {
        for (name, kind) in [
            ("te", FieldKind::Te),
            ("HOST", FieldKind::Host),
            ("Date", FieldKind::Date),
            ("expect", FieldKind::Expect),
            ("Trailer", FieldKind::Trailer),
            ("upgrade", FieldKind::Upgrade),
            ("X-Real-IP", FieldKind::XRealIp),
            ("Connection", FieldKind::Connection),
            ("keep-alive", FieldKind::OtherHopByHop),
            ("content-length", FieldKind::ContentLength),
            ("X-Forwarded-For", FieldKind::XForwardedFor),
            ("x-forwarded-uri", FieldKind::XForwardedOther),
            ("Idempotency-Key", FieldKind::IdempotencyKey),
            ("x-forwarded-host", FieldKind::XForwardedHost),
            ("x-forwarded-port", FieldKind::XForwardedPort),
            ("Proxy-Connection", FieldKind::OtherHopByHop),
            ("Transfer-Encoding", FieldKind::TransferEncoding),
            ("x-forwarded-proto", FieldKind::XForwardedProto),
            ("X-Idempotency-Key", FieldKind::IdempotencyKey),
            ("x-forwarded-server", FieldKind::XForwardedServer),
            ("x-forwarded-method", FieldKind::XForwardedOther),
            ("x-forwarded-prefix", FieldKind::XForwardedOther),
            ("proxy-authenticate", FieldKind::OtherHopByHop),
            ("Proxy-Authorization", FieldKind::OtherHopByHop),
            ("x-forwarded-tls-client-cert", FieldKind::XForwardedOther),
            (
                "x-forwarded-tls-client-cert-info",
                FieldKind::XForwardedOther,
            ),
            ("x-forwarded-fox", FieldKind::Other),
            ("user-agent", FieldKind::Other),
        ] {
            assert_eq!(FieldKind::of(name.as_bytes()), kind, "{name}");
        }
    }

    #[test]
    fn names_in_http_types_have_the_kind_of_their_bytes() {
        for name in [
            "host",
            "content-length",
            "te",
            "trailer",
            "date",
            "expect",
            "x-real-ip",
            "accept",
            "x-custom",
        ] {
            let name = HeaderName::from_static(name);
            assert_eq!(
                FieldKind::of_name(&name),
                FieldKind::of(name.as_str().as_bytes()),
                "{name}"
            );
        }
    }

    #[test]
    fn lowercase_names_match_in_any_case_and_nothing_else() {
        assert!(lowercase_eq(b"X-Forwarded-For", b"x-forwarded-for"));
        assert!(lowercase_eq(b"content-length", b"content-length"));
        assert!(!lowercase_eq(b"content-lengt", b"content-length"));
        // Every byte a name may hold (httparse takes tokens only: visible,
        // none below `!`) matches a lowercase letter, digit or `-` only when
        // it is one, or an uppercase letter.
        for byte in 0u8..=255 {
            for lower in b"abcdefghijklmnopqrstuvwxyz0123456789-" {
                let same = byte == *lower || byte == lower.to_ascii_uppercase();
                assert_eq!(
                    lowercase_eq(&[byte], &[*lower]) && byte > b' ',
                    same && byte > b' ',
                    "{byte} {lower}"
                );
            }
        }
    }

    #[test]
    fn kinds_agree_with_the_header_map_rules() {
        for name in super::super::HOP_BY_HOP {
            assert!(
                FieldKind::of(name.as_str().as_bytes()).is_hop_by_hop(),
                "{name}"
            );
        }
        for name in super::super::CLIENT_FORWARDED {
            assert!(
                FieldKind::of(name.as_str().as_bytes()).is_client_forwarded(),
                "{name}"
            );
        }
        // Every kind fits the bit sets.
        assert!((FieldKind::Dropped as u32) < 32);
    }
}
