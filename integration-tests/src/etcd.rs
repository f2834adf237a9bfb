//! A real etcd server (Debian's `etcd-server`) on free loopback ports, with
//! its data in a temporary directory; `etcdctl` writes keys as a user would.
//! [`Etcd::start_tls`] serves clients over TLS and requires a client
//! certificate signed by the [`TestPki`] CA (`--client-cert-auth`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;

use crate::{ChildProcess, TestPki, eventually, free_port, get, run_command};

/// The files of a TLS etcd: its own certificate, and what clients use.
#[derive(Debug, Clone)]
struct TlsFiles {
    ca: PathBuf,
    server: (PathBuf, PathBuf),
    client: (PathBuf, PathBuf),
}

/// A running single-member etcd cluster; killed when dropped.
#[derive(Debug)]
pub struct Etcd {
    process: Option<ChildProcess>,
    client_port: u16,
    peer_port: u16,
    dir: TempDir,
    tls: Option<TlsFiles>,
}

impl Etcd {
    /// Starts etcd and waits until it answers `/health`.
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// Starts etcd serving clients over TLS with `pki`'s server certificate,
    /// accepting only clients with a certificate signed by its CA.
    pub async fn start_tls(pki: &TestPki) -> Self {
        Self::start_with(Some(TlsFiles {
            ca: pki.ca(),
            server: pki.server(),
            client: pki.client(),
        }))
        .await
    }

    async fn start_with(tls: Option<TlsFiles>) -> Self {
        let mut etcd = Self {
            process: None,
            client_port: free_port(),
            peer_port: free_port(),
            dir: tempfile::tempdir().expect("temporary directory"),
            tls,
        };
        etcd.spawn().await;
        etcd
    }

    async fn spawn(&mut self) {
        let client_url = self.url();
        let peer_url = format!("http://127.0.0.1:{}", self.peer_port);
        let mut args = vec![
            "--name".to_owned(),
            "sluice-test".to_owned(),
            "--data-dir".to_owned(),
            self.data_dir().display().to_string(),
            "--listen-client-urls".to_owned(),
            client_url.clone(),
            "--advertise-client-urls".to_owned(),
            client_url.clone(),
            "--listen-peer-urls".to_owned(),
            peer_url.clone(),
            "--initial-advertise-peer-urls".to_owned(),
            peer_url.clone(),
            "--initial-cluster".to_owned(),
            format!("sluice-test={peer_url}"),
        ];
        if let Some(tls) = &self.tls {
            for (flag, path) in [
                ("--cert-file", &tls.server.0),
                ("--key-file", &tls.server.1),
                ("--trusted-ca-file", &tls.ca),
            ] {
                args.push(flag.to_owned());
                args.push(path.display().to_string());
            }
            args.push("--client-cert-auth".to_owned());
        }
        // Debian's `etcd-server`; `cargo xtask ci` installs it.
        self.process = Some(ChildProcess::spawn("etcd", Path::new("etcd"), &args));
        if self.tls.is_some() {
            eventually("etcd to be healthy", Duration::from_secs(30), || async {
                let output = self.etcdctl_output(&["endpoint", "health"]);
                if output.status.success() {
                    Ok(())
                } else {
                    Err(String::from_utf8_lossy(&output.stderr).into_owned())
                }
            })
            .await;
            return;
        }
        let health = format!("{client_url}/health");
        eventually("etcd to be healthy", Duration::from_secs(30), || async {
            let response = get(&health).await?;
            if response.status == 200 && response.body.contains("true") {
                Ok(())
            } else {
                Err(format!(
                    "/health answered {}: {}",
                    response.status, response.body
                ))
            }
        })
        .await;
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `http://127.0.0.1:PORT` (`https` with TLS) of the client listener.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    /// `127.0.0.1:PORT`, as `endpoints` take it.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// `etcdctl put key value`.
    pub fn put(&self, key: &str, value: &str) {
        self.etcdctl(&["put", key, value]);
    }

    /// `etcdctl del --prefix prefix`.
    pub fn delete_prefix(&self, prefix: &str) {
        self.etcdctl(&["del", "--prefix", prefix]);
    }

    fn etcdctl(&self, args: &[&str]) {
        let output = self.etcdctl_output(args);
        assert!(
            output.status.success(),
            "etcdctl {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Runs `etcdctl` against this etcd, with the client certificate under TLS.
    fn etcdctl_output(&self, args: &[&str]) -> std::process::Output {
        let mut all = vec![format!("--endpoints={}", self.url())];
        if let Some(tls) = &self.tls {
            all.push(format!("--cacert={}", tls.ca.display()));
            all.push(format!("--cert={}", tls.client.0.display()));
            all.push(format!("--key={}", tls.client.1.display()));
        }
        all.extend(args.iter().map(|arg| (*arg).to_owned()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        // Debian's `etcd-client`; `cargo xtask ci` installs it.
        run_command("etcdctl", &all)
    }

    /// Kills etcd with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.signal("KILL");
            process.wait_exit(Duration::from_secs(10));
        }
    }

    /// Starts etcd again on the same ports and data.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }
}
