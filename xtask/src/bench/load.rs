//! Load generators: `wrk` (HTTP/1.1) and `h2load` (h2c, prior knowledge),
//! each run bounded in time, with their output parsed into [`LoadResult`].

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::contenders::Target;

/// Concurrent connections (wrk and h2load alike).
pub(crate) const CONNECTIONS: u32 = 64;
/// Load-generator threads.
pub(crate) const THREADS: u32 = 2;

/// What one load run measured.
#[derive(Clone, Debug, Default)]
pub(crate) struct LoadResult {
    pub(crate) requests_per_second: f64,
    /// Median latency (wrk only: h2load prints no percentiles).
    pub(crate) p50_ms: Option<f64>,
    /// 99th percentile latency (wrk only).
    pub(crate) p99_ms: Option<f64>,
    /// Mean latency (h2load).
    pub(crate) mean_ms: Option<f64>,
    /// Non-2xx (4xx/5xx for h2load) responses plus socket or stream errors.
    pub(crate) errors: u64,
}

/// The wrk command line for a target.
pub(crate) fn wrk_args(target: &Target, seconds: u64) -> Vec<String> {
    let mut args = vec![
        format!("-c{CONNECTIONS}"),
        format!("-t{THREADS}"),
        format!("-d{seconds}s"),
        "--latency".into(),
    ];
    if target.host != "127.0.0.1" {
        args.push("-H".into());
        args.push(format!("Host: {}", target.host));
    }
    for header in &target.headers {
        args.push("-H".into());
        args.push(header.clone());
    }
    args.push(target.url(target.h1));
    args
}

/// The h2load command line for a target (h2c prior knowledge on `target.h2`).
pub(crate) fn h2load_args(target: &Target, seconds: u64) -> Option<Vec<String>> {
    let address = target.h2?;
    Some(vec![
        format!("-c{CONNECTIONS}"),
        format!("-t{THREADS}"),
        "-m1".into(),
        format!("-D{seconds}"),
        target.url(address),
    ])
}

pub(crate) fn wrk(target: &Target, seconds: u64) -> anyhow::Result<LoadResult> {
    let output = run_bounded("wrk", &wrk_args(target, seconds), seconds)?;
    parse_wrk(&output).with_context(|| format!("parsing wrk output for {}:\n{output}", target.name))
}

pub(crate) fn h2load(target: &Target, seconds: u64) -> anyhow::Result<Option<LoadResult>> {
    let Some(args) = h2load_args(target, seconds) else {
        return Ok(None);
    };
    let output = run_bounded("h2load", &args, seconds)?;
    parse_h2load(&output)
        .map(Some)
        .with_context(|| format!("parsing h2load output for {}:\n{output}", target.name))
}

/// Runs a load generator, killing it if it overruns its duration by 20 s.
fn run_bounded(program: &str, args: &[String], seconds: u64) -> anyhow::Result<String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {program}"))?;
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + Duration::from_secs(seconds + 20);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{program} overran its {seconds} s run by 20 s and was killed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    let stdout = reader.join().unwrap_or_default();
    if !status.success() {
        bail!(
            "{program} {} failed ({status}): {stderr}{stdout}",
            args.join(" ")
        );
    }
    Ok(stdout)
}

/// `590.00us`, `2.10ms`, `1.02s` -> milliseconds.
fn duration_ms(text: &str) -> Option<f64> {
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60_000.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * scale)
}

pub(crate) fn parse_wrk(output: &str) -> anyhow::Result<LoadResult> {
    let mut result = LoadResult::default();
    let mut seen_rps = false;
    for line in output.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", rps] => {
                result.requests_per_second = rps.parse()?;
                seen_rps = true;
            }
            ["50%", value] => result.p50_ms = duration_ms(value),
            ["99%", value] => result.p99_ms = duration_ms(value),
            ["Non-2xx", "or", "3xx", "responses:", n] => result.errors += n.parse::<u64>()?,
            ["Socket", "errors:", rest @ ..] => {
                // connect 0, read 0, write 0, timeout 0
                result.errors += rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    if !seen_rps {
        bail!("no `Requests/sec:` line");
    }
    Ok(result)
}

pub(crate) fn parse_h2load(output: &str) -> anyhow::Result<LoadResult> {
    let mut result = LoadResult::default();
    let mut seen_rps = false;
    for line in output.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("finished in ") {
            // finished in 3.00s, 21233.33 req/s, 1.23MB/s
            if let Some(rps) = rest
                .split(", ")
                .nth(1)
                .and_then(|s| s.strip_suffix(" req/s"))
            {
                result.requests_per_second = rps.parse()?;
                seen_rps = true;
            }
        } else if let Some(rest) = line.strip_prefix("requests:") {
            // N total, N started, N done, N succeeded, N failed, N errored, N timeout
            for part in rest.split(',') {
                let words: Vec<&str> = part.split_whitespace().collect();
                if let [n, "errored" | "timeout"] = words.as_slice() {
                    result.errors += n.parse::<u64>().unwrap_or(0);
                }
            }
        } else if let Some(rest) = line.strip_prefix("status codes:") {
            // N 2xx, N 3xx, N 4xx, N 5xx
            for part in rest.split(',') {
                let words: Vec<&str> = part.split_whitespace().collect();
                if let [n, "4xx" | "5xx"] = words.as_slice() {
                    result.errors += n.parse::<u64>().unwrap_or(0);
                }
            }
        } else if let Some(rest) = line.strip_prefix("time for request:") {
            // min max mean sd +/-sd
            result.mean_ms = rest.split_whitespace().nth(2).and_then(duration_ms);
        }
    }
    if !seen_rps {
        bail!("no `finished in ..., N req/s` line");
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk() {
        let output = "\
Running 3s test @ http://127.0.0.1:1/
  2 threads and 64 connections
  Latency Distribution
     50%  590.00us
     75%    1.00ms
     99%    2.10ms
  Non-2xx or 3xx responses: 3
  Socket errors: connect 0, read 2, write 0, timeout 1
Requests/sec:  51234.56
Transfer/sec:      7.43MB
";
        let result = parse_wrk(output).unwrap();
        assert!((result.requests_per_second - 51234.56).abs() < 1e-6);
        assert_eq!(result.p50_ms, Some(0.59));
        assert_eq!(result.p99_ms, Some(2.1));
        assert_eq!(result.errors, 6);
    }

    #[test]
    fn parses_h2load() {
        let output = "\
finished in 3.00s, 21233.33 req/s, 1.23MB/s
requests: 63700 total, 63764 started, 63700 done, 63698 succeeded, 2 failed, 1 errored, 0 timeout
status codes: 63698 2xx, 0 3xx, 1 4xx, 0 5xx
time for request:      123us     12.30ms      2.94ms      1.20ms    80.00%
";
        let result = parse_h2load(output).unwrap();
        assert!((result.requests_per_second - 21233.33).abs() < 1e-6);
        assert_eq!(result.mean_ms, Some(2.94));
        assert_eq!(result.errors, 2);
    }
}
