//! The router lookup micro-benchmark (issue 7, item 2): runs criterion's
//! `data-plane/benches/router_lookup.rs` and reads its estimates back.
//!
//! Criterion prints one estimate per benchmark as
//! `router_lookup/hit/10    time:   [49.557 ns 49.901 ns 50.236 ns]`
//! (lower bound, estimate, upper bound of the mean; the id on a line of its
//! own when it is long).

use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::wait_bounded;
use crate::workspace_root;

/// The cargo arguments that run the benchmark (criterion's follow `--`).
pub(crate) const CARGO_ARGS: [&str; 5] = [
    "bench",
    "-p",
    "sluice-data-plane",
    "--bench",
    "router_lookup",
];

/// Longest the benchmark may run (it is built beforehand).
const BOUND: Duration = Duration::from_secs(300);

/// One criterion estimate.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Estimate {
    /// `hit` or `miss`.
    pub(crate) case: String,
    pub(crate) routers: usize,
    /// Nanoseconds per lookup: lower bound, estimate, upper bound.
    pub(crate) ns: [f64; 3],
}

/// Criterion's timing flags: (warm-up s, measurement s).
pub(crate) fn timing(quick: bool) -> (&'static str, &'static str) {
    if quick { ("0.5", "1") } else { ("2", "5") }
}

/// Runs the benchmark (already built), stderr to `log`; its estimates.
pub(crate) fn run(quick: bool, log: &Path) -> anyhow::Result<Vec<Estimate>> {
    let (warm_up, measurement) = timing(quick);
    let mut child = crate::command("cargo")
        .args(CARGO_ARGS)
        .args([
            "--",
            "--warm-up-time",
            warm_up,
            "--measurement-time",
            measurement,
            "--noplot",
        ])
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log)?)
        .spawn()
        .context("starting cargo bench")?;
    let mut stdout = child.stdout.take().context("piped stdout")?;
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let started = Instant::now();
    let status = wait_bounded(
        &mut child,
        started,
        BOUND,
        Duration::from_millis(100),
        "the router lookup benchmark",
    )?;
    let output = reader.join().unwrap_or_default();
    if !status.success() {
        bail!(
            "cargo {} failed ({status}); see {}",
            CARGO_ARGS.join(" "),
            log.display()
        );
    }
    let estimates = parse(&output);
    if estimates.is_empty() {
        bail!("no criterion estimate in:\n{output}");
    }
    Ok(estimates)
}

/// `49.901` + `ns` (or `ps`, `µs`/`us`, `ms`, `s`) -> nanoseconds.
fn nanoseconds(value: &str, unit: &str) -> Option<f64> {
    let scale = match unit {
        "ps" => 0.001,
        "ns" => 1.0,
        "µs" | "us" => 1_000.0,
        "ms" => 1_000_000.0,
        "s" => 1_000_000_000.0,
        _ => return None,
    };
    value.parse::<f64>().ok().map(|v| v * scale)
}

pub(crate) fn parse(output: &str) -> Vec<Estimate> {
    let mut estimates = Vec::new();
    let mut id: Option<(String, usize)> = None;
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix("router_lookup/") {
            let name = rest.split_whitespace().next().unwrap_or_default();
            id = name
                .split_once('/')
                .and_then(|(case, size)| Some((case.to_owned(), size.parse().ok()?)));
        }
        let Some((_, times)) = line.split_once("time:") else {
            continue;
        };
        let words: Vec<&str> = times
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split_whitespace()
            .collect();
        let [lo, lo_unit, mid, mid_unit, hi, hi_unit] = words.as_slice() else {
            continue;
        };
        let (Some((case, routers)), Some(lo), Some(mid), Some(hi)) = (
            id.take(),
            nanoseconds(lo, lo_unit),
            nanoseconds(mid, mid_unit),
            nanoseconds(hi, hi_unit),
        ) else {
            continue;
        };
        estimates.push(Estimate {
            case,
            routers,
            ns: [lo, mid, hi],
        });
    }
    estimates
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_criterion_estimates() {
        let output = "\
router_lookup/hit/10    time:   [49.557 ns 49.901 ns 50.236 ns]
Found 2 outliers among 100 measurements (2.00%)
  2 (2.00%) high mild
router_lookup/hit/10000 time:   [59.976 ns 60.920 ns 1.0233 µs]
                        change: [-1.2% +0.3% +1.9%] (p = 0.71 > 0.05)
router_lookup/miss/10000
                        time:   [29.285 ns 29.473 ns 29.662 ns]
";
        let estimates = parse(output);
        assert_eq!(estimates.len(), 3);
        assert_eq!(estimates[0].case, "hit");
        assert_eq!(estimates[0].routers, 10);
        assert_eq!(estimates[0].ns[1], 49.901);
        assert!((estimates[1].ns[2] - 1023.3).abs() < 1e-9);
        assert_eq!(
            (estimates[2].case.as_str(), estimates[2].routers),
            ("miss", 10_000)
        );
    }
}
