//! Certificates for TLS scenarios, made with the real `openssl` command in a
//! temporary directory: a CA, a server certificate for `127.0.0.1` and a
//! client certificate, all signed by the CA (ECDSA P-256, valid one day).

use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::run_command;

/// A CA and the certificates it signed; the files go when dropped.
#[derive(Debug)]
pub struct TestPki {
    dir: TempDir,
}

impl TestPki {
    /// Generates `ca.pem`, `server.pem`/`server-key.pem` (SAN IP
    /// 127.0.0.1, server and client auth) and `client.pem`/`client-key.pem`
    /// (client auth).
    pub fn generate() -> Self {
        let pki = Self {
            dir: tempfile::tempdir().expect("temporary directory"),
        };
        pki.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "ca-key.pem",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=Sluice test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        pki.sign(
            "server",
            "/CN=127.0.0.1",
            "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\n\
             extendedKeyUsage=serverAuth,clientAuth\n",
        );
        pki.sign(
            "client",
            "/CN=sluice",
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        );
        pki
    }

    /// A key and a certificate `<name>.pem` signed by the CA with `extensions`.
    fn sign(&self, name: &str, subject: &str, extensions: &str) {
        let key = format!("{name}-key.pem");
        let request = format!("{name}.csr");
        let certificate = format!("{name}.pem");
        let extensions_file = format!("{name}.ext");
        std::fs::write(self.dir.path().join(&extensions_file), extensions)
            .expect("writing the extensions file");
        self.openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &request,
            "-subj",
            subject,
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &request,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-out",
            &certificate,
            "-days",
            "1",
            "-extfile",
            &extensions_file,
        ]);
    }

    fn openssl(&self, args: &[&str]) {
        let mut all = vec!["-C".to_owned(), self.dir.path().display().to_string()];
        all.push("openssl".to_owned());
        all.extend(args.iter().map(|arg| (*arg).to_owned()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        // `env -C DIR openssl ...`: the files land in the temporary directory.
        let output = run_command("env", &all);
        assert!(
            output.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// The CA certificate.
    pub fn ca(&self) -> PathBuf {
        self.path("ca.pem")
    }

    /// The server certificate and its key.
    pub fn server(&self) -> (PathBuf, PathBuf) {
        (self.path("server.pem"), self.path("server-key.pem"))
    }

    /// The client certificate and its key.
    pub fn client(&self) -> (PathBuf, PathBuf) {
        (self.path("client.pem"), self.path("client-key.pem"))
    }

    /// Another server certificate `<name>.pem`/`<name>-key.pem` signed by
    /// the CA, for `sans` as openssl writes them (`DNS:backend.internal,
    /// IP:127.0.0.1`); its subject CN is the first name.
    pub fn issue_server(&self, name: &str, sans: &str) -> (PathBuf, PathBuf) {
        let first = sans
            .split(',')
            .next()
            .and_then(|san| san.split_once(':'))
            .map_or(name, |(_, value)| value.trim());
        self.sign(
            name,
            &format!("/CN={first}"),
            &format!(
                "basicConstraints=CA:FALSE\nsubjectAltName={sans}\n\
                 extendedKeyUsage=serverAuth\n"
            ),
        );
        (
            self.path(&format!("{name}.pem")),
            self.path(&format!("{name}-key.pem")),
        )
    }

    /// Another client certificate `<name>.pem`/`<name>-key.pem` signed by
    /// the CA, with subject `CN=<common_name>`.
    pub fn issue_client(&self, name: &str, common_name: &str) -> (PathBuf, PathBuf) {
        self.sign(
            name,
            &format!("/CN={common_name}"),
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        );
        (
            self.path(&format!("{name}.pem")),
            self.path(&format!("{name}-key.pem")),
        )
    }

    /// The `tls` section of a provider with the CA and the client
    /// certificate, as YAML lines indented by `indent` spaces.
    pub fn provider_tls_yaml(&self, indent: usize) -> String {
        let (cert, key) = self.client();
        let pad = " ".repeat(indent);
        format!(
            "{pad}tls:\n{pad}  ca: \"{}\"\n{pad}  cert: \"{}\"\n{pad}  key: \"{}\"\n",
            show(&self.ca()),
            show(&cert),
            show(&key)
        )
    }
}

fn show(path: &Path) -> String {
    path.display().to_string()
}
