//! Securing the link to the proxies, which carries private keys and password
//! hashes: TLS on the gRPC listener (`controlPlane.tls`, mutual when
//! `clientCAFile` is set: a proxy without a certificate from that CA fails
//! the handshake) and a bearer token (`controlPlane.token`) checked in
//! constant time on every `SnapshotService` call. Reflection and health stay
//! open so probes and `grpcurl list` work with TLS credentials alone.

use subtle::ConstantTimeEq;
use tonic::service::Interceptor;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};
use tonic::{Request, Status};

use crate::config::ControlPlaneConfig;
use crate::grpc::GrpcError;

/// How the gRPC listener authenticates proxies.
#[derive(Debug, Clone, Default)]
pub(crate) struct LinkSecurity {
    /// TLS settings; `None` serves plaintext.
    pub(crate) tls: Option<ServerTlsConfig>,
    /// Checks the bearer token of `SnapshotService` calls.
    pub(crate) token: TokenCheck,
}

impl LinkSecurity {
    /// Reads the files `controlPlane.tls` names.
    pub(crate) fn from_config(config: &ControlPlaneConfig) -> Result<Self, GrpcError> {
        let tls = match &config.tls {
            None => None,
            Some(tls) => {
                if tls.cert_file.is_empty() || tls.key_file.is_empty() {
                    return Err(GrpcError::TlsConfig("certFile and keyFile are required"));
                }
                let read = |key: &'static str, path: &str| {
                    std::fs::read(path).map_err(|source| GrpcError::TlsFile {
                        key,
                        path: path.to_owned(),
                        source,
                    })
                };
                let identity = Identity::from_pem(
                    read("controlPlane.tls.certFile", &tls.cert_file)?,
                    read("controlPlane.tls.keyFile", &tls.key_file)?,
                );
                let mut server = ServerTlsConfig::new().identity(identity);
                if !tls.client_ca_file.is_empty() {
                    let ca = read("controlPlane.tls.clientCAFile", &tls.client_ca_file)?;
                    server = server.client_ca_root(Certificate::from_pem(ca));
                }
                Some(server)
            }
        };
        Ok(Self {
            tls,
            token: TokenCheck {
                expected: config
                    .token
                    .as_ref()
                    .filter(|token| !token.is_empty())
                    .map(|token| format!("Bearer {token}").into_bytes()),
            },
        })
    }

    /// True when proxies must authenticate (client certificates or a token).
    pub(crate) fn authenticates(&self, config: &ControlPlaneConfig) -> bool {
        self.token.expected.is_some()
            || config
                .tls
                .as_ref()
                .is_some_and(|tls| !tls.client_ca_file.is_empty())
    }
}

/// Requires `authorization: Bearer <token>` when a token is configured.
#[derive(Clone, Default)]
pub(crate) struct TokenCheck {
    /// `Bearer <token>`, as bytes.
    expected: Option<Vec<u8>>,
}

impl std::fmt::Debug for TokenCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCheck")
            .field("required", &self.expected.is_some())
            .finish()
    }
}

impl Interceptor for TokenCheck {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(expected) = &self.expected else {
            return Ok(request);
        };
        let presented = request
            .metadata()
            .get("authorization")
            .map(|value| value.as_bytes())
            .unwrap_or_default();
        if bool::from(presented.ct_eq(expected)) {
            return Ok(request);
        }
        let peer = request
            .remote_addr()
            .map(|address| address.to_string())
            .unwrap_or_default();
        let reason = if presented.is_empty() {
            "no bearer token"
        } else {
            "wrong bearer token"
        };
        tracing::warn!(%peer, reason, "refused a SnapshotService call");
        Err(Status::unauthenticated(format!(
            "{reason}: this control plane requires `authorization: Bearer <token>`"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(token: Option<&str>, header: Option<&str>) -> Result<(), tonic::Code> {
        let config = ControlPlaneConfig {
            token: token.map(str::to_owned),
            ..Default::default()
        };
        let mut security = LinkSecurity::from_config(&config).unwrap();
        let mut request = Request::new(());
        if let Some(header) = header {
            request
                .metadata_mut()
                .insert("authorization", header.parse().unwrap());
        }
        security
            .token
            .call(request)
            .map(drop)
            .map_err(|status| status.code())
    }

    #[test]
    fn tokens_are_checked_when_configured() {
        assert_eq!(check(None, None), Ok(()));
        assert_eq!(check(Some("s3cret"), Some("Bearer s3cret")), Ok(()));
        assert_eq!(
            check(Some("s3cret"), Some("Bearer wrong")),
            Err(tonic::Code::Unauthenticated)
        );
        assert_eq!(
            check(Some("s3cret"), None),
            Err(tonic::Code::Unauthenticated)
        );
    }

    #[test]
    fn tls_files_are_named_in_errors() {
        let config = ControlPlaneConfig {
            tls: Some(crate::config::ControlPlaneTlsConfig {
                cert_file: "/nonexistent/cert.pem".into(),
                key_file: "/nonexistent/key.pem".into(),
                client_ca_file: String::new(),
            }),
            ..Default::default()
        };
        let error = LinkSecurity::from_config(&config).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("controlPlane.tls.certFile `/nonexistent/cert.pem`"),
            "{error}"
        );
    }
}
