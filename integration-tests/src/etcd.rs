//! A real etcd server (Debian's `etcd-server`) on free loopback ports, with
//! its data in a temporary directory; `etcdctl` writes keys as a user would.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;

use crate::{ChildProcess, eventually, free_port, get, run_command};

/// A running single-member etcd cluster; killed when dropped.
#[derive(Debug)]
pub struct Etcd {
    process: Option<ChildProcess>,
    client_port: u16,
    peer_port: u16,
    dir: TempDir,
}

impl Etcd {
    /// Starts etcd and waits until it answers `/health`.
    pub async fn start() -> Self {
        let mut etcd = Self {
            process: None,
            client_port: free_port(),
            peer_port: free_port(),
            dir: tempfile::tempdir().expect("temporary directory"),
        };
        etcd.spawn().await;
        etcd
    }

    async fn spawn(&mut self) {
        let client_url = self.url();
        let peer_url = format!("http://127.0.0.1:{}", self.peer_port);
        let args = [
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
        // Debian's `etcd-server`; `cargo xtask ci` installs it.
        self.process = Some(ChildProcess::spawn("etcd", Path::new("etcd"), &args));
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

    /// `http://127.0.0.1:PORT` of the client listener.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
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
        let endpoints = format!("--endpoints={}", self.url());
        let mut all = vec![endpoints.as_str()];
        all.extend_from_slice(args);
        // Debian's `etcd-client`; `cargo xtask ci` installs it.
        let output = run_command("etcdctl", &all);
        assert!(
            output.status.success(),
            "etcdctl {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
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
