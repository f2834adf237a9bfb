//! A certificate file rewritten five times while two clients send HTTPS
//! requests over new and reused connections: no request fails, and the
//! last handshakes present the last certificate. Some rotations expose the
//! new key with the old certificate for a while (a non-atomic rewrite of
//! the pair): that state must not fail requests either.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use integration_tests::{ControlPlaneOptions, EchoBackend, Proxy, eventually};
use rustls::pki_types::CertificateDer;

use super::DEADLINE;
use super::client::{ClientOptions, TlsConnection, connect, get_once, leaf, local};
use super::openssl_certificate;

const HOST: &str = "load.test";
/// Rotations of the certificate during the load.
const ROTATIONS: usize = 5;
/// Requests per client at least (and at most, the loop's bound).
const MIN_REQUESTS: usize = 150;
const MAX_REQUESTS: usize = 20_000;
/// Every this many requests a client opens a new connection.
const NEW_CONNECTION_EVERY: usize = 3;

/// What one client saw.
#[derive(Debug)]
struct Outcome {
    requests: usize,
    failures: Vec<String>,
    /// The certificate of the client's last handshake.
    last_served: Option<CertificateDer<'static>>,
}

/// Sends requests until `stop` (at least [`MIN_REQUESTS`], at most
/// [`MAX_REQUESTS`]), then one more on a new connection.
async fn client(port: u16, stop: Arc<AtomicBool>, sent: Arc<AtomicUsize>) -> Outcome {
    let address = local(port);
    let options = ClientOptions::default();
    let mut outcome = Outcome {
        requests: 0,
        failures: Vec::new(),
        last_served: None,
    };
    let mut connection: Option<TlsConnection> = None;
    for index in 0..=MAX_REQUESTS {
        let last = index == MAX_REQUESTS || (index >= MIN_REQUESTS && stop.load(Ordering::SeqCst));
        if last || index % NEW_CONNECTION_EVERY == 0 {
            connection = None;
        }
        if connection.is_none() {
            match connect(address, HOST, &options).await {
                Ok(opened) => {
                    outcome.last_served = Some(opened.served.clone());
                    connection = Some(opened);
                }
                Err(error) => {
                    outcome.requests += 1;
                    outcome.failures.push(error);
                    continue;
                }
            }
        }
        let open = connection.as_mut().expect("a connection");
        outcome.requests += 1;
        sent.fetch_add(1, Ordering::SeqCst);
        match open.get(HOST, &format!("/{index}"), &[]).await {
            Ok(response) if response.status == 200 => {}
            Ok(response) => {
                outcome
                    .failures
                    .push(format!("answered {}: {}", response.status, response.body));
                connection = None;
            }
            Err(error) => {
                outcome.failures.push(error);
                connection = None;
            }
        }
        if last {
            break;
        }
    }
    outcome
}

/// Replaces `target` with `source` atomically (written aside, renamed over).
fn replace(source: &Path, target: &Path) {
    let aside = target.with_extension("tmp");
    std::fs::copy(source, &aside).unwrap();
    std::fs::rename(&aside, target).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_file_rewritten_under_load_fails_no_request() {
    // The certificate served, and the five that replace it, made up front.
    let live = tempfile::tempdir().unwrap();
    openssl_certificate(live.path(), HOST);
    let staged: Vec<tempfile::TempDir> = (0..ROTATIONS)
        .map(|_| {
            let dir = tempfile::tempdir().unwrap();
            openssl_certificate(dir.path(), HOST);
            dir
        })
        .collect();
    let cert_file = live.path().join(format!("{HOST}.pem"));
    let key_file = live.path().join(format!("{HOST}.key"));

    let backend = EchoBackend::start("app").await;
    let dynamic = format!(
        "http:\n  routers:\n    app:\n      rule: Host(`{HOST}`)\n      entryPoints: [websecure]\n      \
         service: app\n      tls: {{}}\n  services:\n    app:\n      loadBalancer:\n        servers:\n          \
         - url: \"{}\"\ntls:\n  certificates:\n    - certFile: \"{}\"\n      keyFile: \"{}\"\n",
        backend.url(),
        cert_file.display(),
        key_file.display(),
    );
    let control_plane = ControlPlaneOptions::new()
        .entry_point("websecure")
        .dynamic_file("load.yml", &dynamic)
        .start()
        .await;
    let port = control_plane.entry_point_port("websecure");
    let proxy = Proxy::start(
        &control_plane.grpc_url(),
        "tls-load",
        &[("websecure", port)],
    );
    proxy.wait_ready().await;
    let first = leaf(&cert_file);
    let options = ClientOptions::default();
    eventually("the first certificate", DEADLINE, || async {
        let (served, response) = get_once(local(port), HOST, "/", &options).await?;
        if served == first && response.status == 200 {
            Ok(())
        } else {
            Err(format!("answered {}", response.status))
        }
    })
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..2)
        .map(|_| tokio::spawn(client(port, Arc::clone(&stop), Arc::clone(&sent))))
        .collect();
    eventually("the load to start", DEADLINE, || async {
        match sent.load(Ordering::SeqCst) {
            0..20 => Err("fewer than 20 requests sent".to_owned()),
            _ => Ok(()),
        }
    })
    .await;

    // Each rotation rewrites the key, then the certificate, and waits for a
    // new handshake to present it. Every other rotation leaves the new key
    // beside the old certificate until the control plane has reported the
    // mismatch (and kept serving the last good pair), as a tool writing one
    // file after the other can.
    let mut last = first;
    for (rotation, dir) in staged.iter().enumerate() {
        replace(&dir.path().join(format!("{HOST}.key")), &key_file);
        if rotation % 2 == 1 {
            eventually(
                "the control plane to report the half-written pair",
                DEADLINE,
                || async {
                    let errors = control_plane.api("/api/errors").await.to_string();
                    if errors.contains("the key does not match the certificate") {
                        Ok(())
                    } else {
                        Err(format!("errors: {errors}"))
                    }
                },
            )
            .await;
        }
        replace(&dir.path().join(format!("{HOST}.pem")), &cert_file);
        let expected = leaf(&cert_file);
        assert_ne!(expected, last);
        eventually(
            &format!("rotation {} to be served", rotation + 1),
            DEADLINE,
            || async {
                let (served, _) = get_once(local(port), HOST, "/", &options).await?;
                if served == expected {
                    Ok(())
                } else {
                    Err("another certificate is presented".to_owned())
                }
            },
        )
        .await;
        last = expected;
    }
    stop.store(true, Ordering::SeqCst);

    let mut total = 0;
    for handle in clients {
        let outcome = handle.await.unwrap();
        total += outcome.requests;
        assert!(
            outcome.failures.is_empty(),
            "{} of {} requests failed: {:?}",
            outcome.failures.len(),
            outcome.requests,
            &outcome.failures[..outcome.failures.len().min(5)]
        );
        assert!(
            outcome.last_served.as_ref() == Some(&last),
            "a client's last handshake did not present the last certificate"
        );
    }
    assert!(total >= 2 * MIN_REQUESTS, "{total} requests");
}
