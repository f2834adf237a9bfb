//! `passTLSClientCert`: passes the client certificates of a TLS connection
//! to the backend, as Traefik does: `X-Forwarded-Tls-Client-Cert` holds each
//! certificate's PEM body (without armour and line breaks), comma-separated
//! and URL-escaped; `X-Forwarded-Tls-Client-Cert-Info` holds the selected
//! fields (`Subject="..";Issuer="..";SerialNumber="..";NB="..";NA="..";SAN=".."`),
//! one entry per certificate, URL-escaped and comma-separated. Values the
//! client sent itself under those names are always removed.

use base64::Engine as _;
use http::{HeaderName, HeaderValue, Request, Response};
use sluice_proto::v1;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::{
    OID_DOMAIN_COMPONENT, OID_X509_COMMON_NAME, OID_X509_COUNTRY_NAME, OID_X509_LOCALITY_NAME,
    OID_X509_ORGANIZATION_NAME, OID_X509_ORGANIZATIONAL_UNIT, OID_X509_SERIALNUMBER,
    OID_X509_STATE_OR_PROVINCE_NAME,
};
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};

use super::uri::query_escape;
use super::{Next, RequestContext};
use crate::body::ProxyBody;

const CERT: HeaderName = HeaderName::from_static("x-forwarded-tls-client-cert");
const CERT_INFO: HeaderName = HeaderName::from_static("x-forwarded-tls-client-cert-info");

/// A built `passTLSClientCert` middleware.
#[derive(Debug)]
pub(crate) struct PassTlsClientCert {
    pem: bool,
    info: Option<v1::PassTlsClientCertInfo>,
}

impl PassTlsClientCert {
    /// From the snapshot.
    pub(crate) fn new(config: &v1::PassTlsClientCert) -> Self {
        Self {
            pem: config.pem,
            info: config.info,
        }
    }

    /// Sets the headers from the connection's client certificates, then calls `next`.
    pub(crate) async fn call(
        &self,
        mut req: Request<ProxyBody>,
        ctx: &mut RequestContext<'_>,
        next: Next<'_>,
    ) -> Response<ProxyBody> {
        req.headers_mut().remove(CERT);
        req.headers_mut().remove(CERT_INFO);
        let chain = ctx
            .conn
            .tls
            .as_ref()
            .map(|tls| &tls.peer_certificates[..])
            .unwrap_or_default();
        if !chain.is_empty() {
            if self.pem {
                let value = chain
                    .iter()
                    .map(|der| query_escape(&base64::engine::general_purpose::STANDARD.encode(der)))
                    .collect::<Vec<_>>()
                    .join(",");
                if let Ok(value) = HeaderValue::from_str(&value) {
                    req.headers_mut().insert(CERT, value);
                }
            }
            if let Some(info) = &self.info {
                let value = chain
                    .iter()
                    .filter_map(|der| X509Certificate::from_der(der).ok())
                    .map(|(_, certificate)| query_escape(&cert_info(&certificate, info)))
                    .collect::<Vec<_>>()
                    .join(",");
                if let Ok(value) = HeaderValue::from_str(&value) {
                    req.headers_mut().insert(CERT_INFO, value);
                }
            }
        }
        next.run(req, ctx).await
    }
}

fn cert_info(certificate: &X509Certificate<'_>, info: &v1::PassTlsClientCertInfo) -> String {
    let mut parts = Vec::new();
    if let Some(fields) = &info.subject {
        let subject = dn(certificate.subject(), fields);
        if !subject.is_empty() {
            parts.push(format!("Subject=\"{subject}\""));
        }
    }
    if let Some(fields) = &info.issuer {
        let issuer = dn(certificate.issuer(), fields);
        if !issuer.is_empty() {
            parts.push(format!("Issuer=\"{issuer}\""));
        }
    }
    if info.serial_number {
        parts.push(format!("SerialNumber=\"{}\"", certificate.serial));
    }
    let validity = certificate.validity();
    if info.not_before {
        parts.push(format!("NB=\"{}\"", validity.not_before.timestamp()));
    }
    if info.not_after {
        parts.push(format!("NA=\"{}\"", validity.not_after.timestamp()));
    }
    if info.sans {
        let mut sans = Vec::new();
        if let Ok(Some(extension)) = certificate.subject_alternative_name() {
            for name in &extension.value.general_names {
                match name {
                    GeneralName::DNSName(dns) => sans.push((*dns).to_owned()),
                    GeneralName::RFC822Name(email) => sans.push((*email).to_owned()),
                    GeneralName::URI(uri) => sans.push((*uri).to_owned()),
                    GeneralName::IPAddress(bytes) => {
                        if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                            sans.push(std::net::IpAddr::from(v4).to_string());
                        } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                            sans.push(std::net::IpAddr::from(v6).to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        if !sans.is_empty() {
            parts.push(format!("SAN=\"{}\"", sans.join(",")));
        }
    }
    parts.join(";")
}

/// The selected attributes of a distinguished name, in Traefik's order.
fn dn(name: &X509Name<'_>, fields: &v1::PassTlsClientCertDn) -> String {
    let selected = [
        (fields.domain_component, "DC", &OID_DOMAIN_COMPONENT),
        (fields.country, "C", &OID_X509_COUNTRY_NAME),
        (fields.province, "ST", &OID_X509_STATE_OR_PROVINCE_NAME),
        (fields.locality, "L", &OID_X509_LOCALITY_NAME),
        (fields.organization, "O", &OID_X509_ORGANIZATION_NAME),
        (
            fields.organizational_unit,
            "OU",
            &OID_X509_ORGANIZATIONAL_UNIT,
        ),
        (fields.common_name, "CN", &OID_X509_COMMON_NAME),
        (fields.serial_number, "SN", &OID_X509_SERIALNUMBER),
    ];
    let mut parts = Vec::new();
    for (wanted, label, oid) in selected {
        if !wanted {
            continue;
        }
        for attribute in name.iter_by_oid(oid) {
            if let Ok(value) = attribute.as_str() {
                parts.push(format!("{label}={value}"));
            }
        }
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::test_pki::TestCa;
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    #[test]
    fn info_lists_the_selected_fields() {
        let ca = TestCa::new("Test CA");
        let issued = ca.client("alice");
        let der = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).unwrap();
        let (_, certificate) = X509Certificate::from_der(&der).unwrap();
        let all = v1::PassTlsClientCertDn {
            common_name: true,
            organization: true,
            ..Default::default()
        };
        let info = v1::PassTlsClientCertInfo {
            subject: Some(all),
            issuer: Some(all),
            not_after: true,
            ..Default::default()
        };
        let text = cert_info(&certificate, &info);
        let not_after = certificate.validity().not_after.timestamp();
        assert_eq!(
            text,
            format!("Subject=\"CN=alice\";Issuer=\"CN=Test CA\";NA=\"{not_after}\"")
        );
        assert_eq!(
            query_escape("Subject=\"CN=a b\""),
            "Subject%3D%22CN%3Da+b%22"
        );
    }
}
