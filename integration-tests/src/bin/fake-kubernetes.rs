//! The fake Kubernetes API server as a process, for benchmarks:
//!
//! ```text
//! fake-kubernetes --port 7443 --apps 5000
//! ```
//!
//! serves `--apps` generated applications (an Ingress, a Service and its
//! EndpointSlice each, see `FakeKubernetes::apply_applications`) on
//! 127.0.0.1:`--port`, prints `listening http://127.0.0.1:PORT apps=N
//! objects=M`, then reads commands on stdin, one a line:
//!
//! - `churn <index>`: replaces a Pod of application `index`; prints
//!   `churned <namespace>/<name> resourceVersion=<rv>`.
//!
//! It exits when stdin closes, so it never outlives the driver.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use integration_tests::{FakeKubernetes, application_name};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut port = 0;
    let mut apps = 0;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--port" => port = value.parse().context("--port")?,
            "--apps" => apps = value.parse().context("--apps")?,
            other => bail!("unknown flag `{other}` (expected --port, --apps)"),
        }
    }
    let kubernetes = FakeKubernetes::start_on(port).await;
    kubernetes.apply_applications(apps);
    println!(
        "listening {} apps={apps} objects={}",
        kubernetes.url(),
        apps * 3 + 1
    );

    let mut churns: BTreeMap<usize, usize> = BTreeMap::new();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        match line.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["churn", index] => {
                let index: usize = index.parse().context("churn <index>")?;
                let generation = churns.entry(index).or_insert(0);
                *generation += 1;
                kubernetes.churn_application_pod(index, *generation);
                let (namespace, name) = application_name(index);
                println!(
                    "churned {namespace}/{name} resourceVersion={}",
                    kubernetes.resource_version()
                );
            }
            [] => {}
            _ => eprintln!("fake-kubernetes: unknown command `{line}`"),
        }
    }
    Ok(())
}
