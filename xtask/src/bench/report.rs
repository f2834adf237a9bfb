//! The report: `docs/benchmarks/README.md` (tables, commands, versions,
//! machine, verdict against issue 7's targets) and `throughput.svg`, a bar
//! chart drawn here without dependencies.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use super::{Results, Section, Settings, Tool, propagation};

/// The machine and its load at one moment.
pub(crate) struct Machine {
    pub(crate) cpus: usize,
    pub(crate) cpu_model: String,
    pub(crate) memory: String,
    pub(crate) date: String,
    pub(crate) load_average: String,
}

impl Machine {
    pub(crate) fn capture() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Self {
            cpus: std::thread::available_parallelism().map_or(0, usize::from),
            cpu_model: field(&cpuinfo, "model name").unwrap_or_else(|| "unknown".into()),
            memory: field(&meminfo, "MemTotal").map_or_else(
                || "unknown".into(),
                |kb| {
                    let kib: f64 = kb.trim_end_matches(" kB").parse().unwrap_or(0.0);
                    format!("{:.1} GiB", kib / 1024.0 / 1024.0)
                },
            ),
            date: first_line("date", &["-u", "+%Y-%m-%d %H:%M:%S UTC"]),
            load_average: std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

fn field(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

/// First line a command prints on stdout or stderr (nginx -v uses stderr).
fn first_line(program: &str, args: &[&str]) -> String {
    match Command::new(program).args(args).output() {
        Ok(output) => {
            let mut text = String::from_utf8_lossy(&output.stdout).to_string();
            text.push_str(&String::from_utf8_lossy(&output.stderr));
            text.lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim()
                .to_string()
        }
        Err(_) => format!("{program}: not installed"),
    }
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    })
}

/// Medians of one row.
#[derive(Clone, Copy, Default)]
struct Medians {
    rps: Option<f64>,
    p50: Option<f64>,
    p99: Option<f64>,
    mean: Option<f64>,
    cpu: Option<f64>,
    rss_mib: Option<f64>,
    hwm_mib: Option<f64>,
    errors: u64,
}

fn medians(results: &Results, section: Section, name: &str, tool: Tool) -> Medians {
    let Some(row) = results.row(section, name, tool) else {
        return Medians::default();
    };
    let of = |f: &dyn Fn(&super::Sample) -> Option<f64>| {
        median(row.samples.iter().filter_map(f).collect())
    };
    Medians {
        rps: of(&|s| Some(s.load.requests_per_second)),
        p50: of(&|s| s.load.p50_ms),
        p99: of(&|s| s.load.p99_ms),
        mean: of(&|s| s.load.mean_ms),
        cpu: of(&|s| s.cpu_seconds),
        rss_mib: of(&|s| s.rss_kib.map(|(rss, _)| rss as f64 / 1024.0)),
        hwm_mib: of(&|s| s.rss_kib.map(|(_, hwm)| hwm as f64 / 1024.0)),
        errors: row.samples.iter().map(|s| s.load.errors).sum(),
    }
}

fn num(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "–".into(), |v| format!("{v:.decimals$}"))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn names(results: &Results, section: Section) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for row in results.rows.iter().filter(|r| r.section == section) {
        if !names.contains(&row.name) {
            names.push(row.name.clone());
        }
    }
    names
}

pub(crate) fn write(
    docs: &Path,
    settings: &Settings,
    results: &Results,
    before: &Machine,
    after: &Machine,
) -> anyhow::Result<()> {
    let mut md = String::new();
    let mode = if settings.quick {
        "`cargo xtask bench --quick`"
    } else {
        "`cargo xtask bench`"
    };
    let _ = writeln!(
        md,
        "# Benchmarks\n\n\
         Sluice against nginx, HAProxy and Caddy, measured side by side in one run (issue 7).\n\
         Regenerate with `cargo xtask bench` (3 rounds of 10 s) or `cargo xtask bench --quick`\n\
         (1 round of 3 s); this file and `throughput.svg` are written by the xtask.\n\n\
         > **Read this first.** These figures come from {mode} on a {cpus}-core machine\n\
         > ({model}, {mem}) that was **shared and busy**: other engineers' builds and tests\n\
         > ran at the same time (load average {la0} at the start, {la1} at the end).\n\
         > The load generator, the backend and the proxy share the same {cpus} cores too.\n\
         > Absolute figures are only good for this machine at that moment; only the\n\
         > comparisons *within this run* (contenders interleaved round by round) mean\n\
         > anything, and with {rounds} round(s) even those are noisy (see the noise floor below).\n",
        cpus = before.cpus,
        model = before.cpu_model,
        mem = before.memory,
        la0 = before.load_average,
        la1 = after.load_average,
        rounds = settings.rounds,
    );

    // Three setups that differ only in ports and host rules: their spread is the noise floor.
    let equivalent = [
        medians(results, Section::Proxies, "Sluice", Tool::Wrk).rps,
        medians(results, Section::Middlewares, "none", Tool::Wrk).rps,
        medians(results, Section::RouteScale, "10", Tool::Wrk).rps,
    ];
    let equivalent: Vec<f64> = equivalent.into_iter().flatten().collect();
    if equivalent.len() == 3 {
        let (low, high) = equivalent
            .iter()
            .fold((f64::MAX, 0.0_f64), |(l, h), v| (l.min(*v), h.max(*v)));
        let _ = writeln!(
            md,
            "Noise floor of this run: three equivalent Sluice setups (one router, no middleware:\n\
             section 1, section 2's `none`, section 3's 10 routers) measured {} req/s — a\n\
             spread of {:.0} %. Differences smaller than that are not findings.\n",
            equivalent
                .iter()
                .map(|v| format!("{v:.0}"))
                .collect::<Vec<_>>()
                .join(" / "),
            (high / low - 1.0) * 100.0
        );
    }

    // 1. Proxies.
    let proxies = names(results, Section::Proxies);
    let nginx = medians(results, Section::Proxies, "nginx", Tool::Wrk);
    let _ = writeln!(
        md,
        "## 1. Proxy throughput and latency\n\n\
         The same backend (nginx, `return 200 \"ok\"`, all cores) reached directly and through\n\
         each proxy (all cores, keep-alive to the backend). Medians over {rounds} round(s) of\n\
         {secs} s. CPU is the proxy's utime + stime during the run (all its processes);\n\
         RSS / peak are VmRSS / VmHWM after the run. h2load prints no percentiles, so its\n\
         column is the mean latency.\n\n\
         | path | wrk req/s | vs nginx | p50 ms | p99 ms | h2c req/s | h2c mean ms | proxy CPU s (wrk run) | wrk req per proxy CPU-s | RSS MiB | peak RSS MiB | errors |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        rounds = settings.rounds,
        secs = settings.seconds,
    );
    for name in &proxies {
        let w = medians(results, Section::Proxies, name, Tool::Wrk);
        let h = medians(results, Section::Proxies, name, Tool::H2load);
        let efficiency = ratio(w.rps.map(|r| r * settings.seconds as f64), w.cpu);
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            num(w.rps, 0),
            num(ratio(w.rps, nginx.rps), 2),
            num(w.p50, 2),
            num(w.p99, 2),
            num(h.rps, 0),
            num(h.mean, 2),
            num(w.cpu, 2),
            num(efficiency, 0),
            num(w.rss_mib, 1),
            num(w.hwm_mib, 1),
            w.errors + h.errors,
        );
    }
    let _ = writeln!(
        md,
        "\nh2c: nginx and HAProxy serve it on a second, h2-only port (`listen ... http2`,\n\
         `bind ... proto h2`), Caddy and Sluice on the same port as HTTP/1.1 (`protocols h1 h2c`;\n\
         Sluice detects the preface). Every contender offers h2c.\n\n\
         ![requests per second](throughput.svg)\n"
    );

    // 2. Middlewares.
    let none = medians(results, Section::Middlewares, "none", Tool::Wrk);
    let none_big = medians(
        results,
        Section::Middlewares,
        "none, 4 KiB body, gzip accepted",
        Tool::Wrk,
    );
    let _ = writeln!(
        md,
        "## 2. Middleware cost (issue item 4)\n\n\
         One Sluice proxy, one router per middleware (chosen by `Host`), wrk as above.\n\
         Relative to `none` (the compress row: relative to `none` on the same 4 KiB body).\n\n\
         | middleware | req/s | relative | p50 ms | p99 ms | proxy CPU s | errors |\n\
         |---|---:|---:|---:|---:|---:|---:|"
    );
    for name in names(results, Section::Middlewares) {
        let m = medians(results, Section::Middlewares, &name, Tool::Wrk);
        let base = if name.contains("4 KiB") {
            none_big.rps
        } else {
            none.rps
        };
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {} | {} | {} | {} |",
            num(m.rps, 0),
            num(ratio(m.rps, base), 2),
            num(m.p50, 2),
            num(m.p99, 2),
            num(m.cpu, 2),
            m.errors
        );
    }
    let _ = writeln!(
        md,
        "\nbasicAuth caches successful checks (see [middlewares](../middlewares.md)), so with one\n\
         user and one password the bcrypt cost is paid once, not per request: these rows\n\
         measure the cached path. The uncached cost (a bcrypt-10 verification is milliseconds\n\
         of CPU) is not measured here.\n"
    );

    // 3. Route scale.
    let ten = medians(results, Section::RouteScale, "10", Tool::Wrk);
    let _ = writeln!(
        md,
        "## 3. Route scale (issue item 2)\n\n\
         One stack per size; router *i* has `Host(`r*i*.bench`) && PathPrefix(`/r*i*`)`, and the\n\
         load hits the last-defined router.\n\n\
         | routers | req/s | vs 10 | p50 ms | p99 ms | proxy RSS MiB |\n\
         |---:|---:|---:|---:|---:|---:|"
    );
    for name in names(results, Section::RouteScale) {
        let m = medians(results, Section::RouteScale, &name, Tool::Wrk);
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {} | {} | {} |",
            num(m.rps, 0),
            num(ratio(m.rps, ten.rps), 2),
            num(m.p50, 2),
            num(m.p99, 2),
            num(m.rss_mib, 1)
        );
    }
    md.push('\n');

    // 4. Propagation.
    let _ = writeln!(md, "## 4. Propagation (issue item 3, one watching proxy)\n");
    match &results.propagation {
        Some(p) => write_propagation(&mut md, p),
        None => md.push_str("Not measured (see notes).\n\n"),
    }

    // Verdict.
    md.push_str("## Against the targets of issue 7\n\n");
    write_verdict(&mut md, results);

    // Missing.
    md.push_str(
        "## Not measured yet\n\n\
         - Router lookup micro-benchmark with criterion (item 2).\n\
         - Propagation with 10 and 100 watching proxies, and over 1,000 route changes (item 3):\n  \
         one proxy only, and fewer changes.\n\
         - Control-plane scale (item 5): compile time and RSS at 10,000 routers, delta size,\n  \
         RSS with 100 watchers.\n\
         - Profiles: `perf stat -e instructions` reports `<not supported>` on this VM (no\n  \
         hardware counters) and no callgrind run was made, so where Sluice loses it is **not\n  \
         profiled** yet.\n\n",
    );

    if !results.notes.is_empty() {
        md.push_str("## Notes from this run\n\n");
        for note in &results.notes {
            let _ = writeln!(md, "- {note}");
        }
        md.push('\n');
    }

    // How.
    md.push_str("## How it was run\n\n```sh\n");
    let _ = writeln!(md, "{}", mode.trim_matches('`'));
    for command in &results.commands {
        let _ = writeln!(md, "{command}");
    }
    md.push_str(
        "```\n\n\
         The load commands above are the exact ones (ports are picked free per run; Host and\n\
         other headers vary per target). Configurations, pid and log files are generated into\n\
         `target/bench-tmp/`: nginx (`worker_processes auto`, upstream `keepalive 128`,\n\
         `proxy_http_version 1.1`, access log off), HAProxy (`-db`, threads = cores by default,\n\
         `http-reuse always`), Caddy (`reverse_proxy`, admin and auto-HTTPS off), Sluice\n\
         (release build, control plane + one proxy, file provider, log level warn).\n\n",
    );
    md.push_str("| tool | version |\n|---|---|\n");
    for (tool, program, args) in [
        ("nginx", "nginx", &["-v"][..]),
        ("HAProxy", "haproxy", &["-v"][..]),
        ("Caddy", "caddy", &["version"][..]),
        ("wrk", "wrk", &["-v"][..]),
        ("h2load", "h2load", &["--version"][..]),
        ("rustc", "rustc", &["-V"][..]),
    ] {
        let _ = writeln!(md, "| {tool} | `{}` |", first_line(program, args));
    }
    let _ = writeln!(
        md,
        "\nMachine: {} CPUs (`nproc`), {}, {}, {} memory. Run started {}, load average\n\
         {} at the start and {} at the end (shared with other builds).",
        before.cpus,
        before.cpu_model,
        first_line("uname", &["-sr"]),
        before.memory,
        before.date,
        before.load_average,
        after.load_average
    );

    std::fs::write(docs.join("README.md"), md)?;
    std::fs::write(docs.join("throughput.svg"), svg(results, &proxies))?;
    Ok(())
}

fn write_propagation(md: &mut String, p: &propagation::Propagation) {
    let _ = writeln!(
        md,
        "{routes} routes loaded; control plane debounce `quietPeriod` {q}, `maxDelay` {m} (the\n\
         defaults, 100 ms / 1 s, would dominate the figure). The file provider adds its own\n\
         fixed 50 ms quiet period (`control-plane/src/providers/file/mod.rs`, not configurable),\n\
         so about 50 ms of each sample is that wait. A new route is written to a new file\n\
         (write aside, then rename into the watched directory) and the proxy is polled with\n\
         raw HTTP/1.1 requests on loopback until it answers 200, bounded at 10 s.\n\n\
         | samples | p50 ms | p99 ms | max ms | not served within 10 s |\n\
         |---:|---:|---:|---:|---:|\n\
         | {n} | {p50} | {p99} | {max} | {timeouts} |\n\n\
         Churn: {changes} changes of one router (each waited for until served) over {secs:.1} s,\n\
         while a client sent one request every 5 ms to a stable route:\n\n\
         | requests | non-2xx | connection errors | changes not served within 10 s |\n\
         |---:|---:|---:|---:|\n\
         | {req} | {non2xx} | {io} | {unprop} |\n",
        routes = propagation::ROUTES,
        q = propagation::DEBOUNCE.0,
        m = propagation::DEBOUNCE.1,
        n = p.samples_ms.len(),
        p50 = num(percentile(&p.samples_ms, 0.5), 1),
        p99 = num(percentile(&p.samples_ms, 0.99), 1),
        max = num(percentile(&p.samples_ms, 1.0), 1),
        timeouts = p.timeouts,
        changes = p.churn_changes,
        secs = p.churn_seconds,
        req = p.churn_requests,
        non2xx = p.churn_non_2xx,
        io = p.churn_io_errors,
        unprop = p.churn_unpropagated,
    );
}

/// Nearest-rank percentile.
fn percentile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn write_verdict(md: &mut String, results: &Results) {
    let get = |name: &str| medians(results, Section::Proxies, name, Tool::Wrk);
    let sluice = get("Sluice");
    md.push_str("| target | measured (this run) | verdict |\n|---|---|---|\n");
    let mut line = |target: &str, measured: String, met: Option<bool>| {
        let verdict = match met {
            Some(true) => "**met**",
            Some(false) => "**not met**",
            None => "not measured",
        };
        let _ = writeln!(md, "| {target} | {measured} | {verdict} |");
    };
    for (name, factor) in [("nginx", 1.1), ("HAProxy", 1.1), ("Caddy", 3.0)] {
        let r = ratio(sluice.rps, get(name).rps);
        line(
            &format!("wrk throughput ≥ {factor}× {name}"),
            format!("{}×", num(r, 2)),
            r.map(|r| r >= factor),
        );
    }
    let nginx = get("nginx");
    line(
        "p99 no worse than nginx",
        format!(
            "Sluice {} ms, nginx {} ms",
            num(sluice.p99, 2),
            num(nginx.p99, 2)
        ),
        sluice.p99.zip(nginx.p99).map(|(s, n)| s <= n),
    );
    let scale = |n: &str| medians(results, Section::RouteScale, n, Tool::Wrk).rps;
    let r = ratio(scale("10000"), scale("10"));
    line(
        "10,000 routers within 5 % of 10",
        format!("{}× (req/s)", num(r, 3)),
        r.map(|r| r >= 0.95),
    );
    if let Some(p) = &results.propagation {
        let p99 = percentile(&p.samples_ms, 0.99);
        line(
            "propagation p99 < 10 ms at 3,000 routes",
            format!("{} ms, 1 watcher (target: 100)", num(p99, 1)),
            p99.map(|v| v < 10.0 && p.timeouts == 0),
        );
        let errors = p.churn_non_2xx + p.churn_io_errors;
        line(
            "0 errors under churn",
            format!("{errors} over {} changes (target: 1,000)", p.churn_changes),
            Some(errors == 0),
        );
    }
    md.push('\n');
}

/// Horizontal bars: wrk and h2load req/s per proxy path.
fn svg(results: &Results, proxies: &[String]) -> String {
    let rows: Vec<(String, f64, f64)> = proxies
        .iter()
        .map(|name| {
            let w = medians(results, Section::Proxies, name, Tool::Wrk);
            let h = medians(results, Section::Proxies, name, Tool::H2load);
            (name.clone(), w.rps.unwrap_or(0.0), h.rps.unwrap_or(0.0))
        })
        .collect();
    let max = rows
        .iter()
        .flat_map(|(_, w, h)| [*w, *h])
        .fold(1.0_f64, f64::max);
    let (label_w, bar_w, row_h, top) = (150.0, 460.0, 44.0, 50.0);
    let height = top + row_h * rows.len() as f64 + 30.0;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"720\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"20\" font-size=\"14\" font-weight=\"bold\">Requests/s, median \
         (higher is better; one shared, busy machine)</text>\n\
         <rect x=\"{label_w}\" y=\"30\" width=\"10\" height=\"10\" fill=\"#4e79a7\"/>\
         <text x=\"{}\" y=\"39\">wrk HTTP/1.1</text>\n\
         <rect x=\"{}\" y=\"30\" width=\"10\" height=\"10\" fill=\"#f28e2b\"/>\
         <text x=\"{}\" y=\"39\">h2load h2c</text>\n",
        label_w + 14.0,
        label_w + 110.0,
        label_w + 124.0
    );
    for (i, (name, wrk, h2)) in rows.iter().enumerate() {
        let y = top + row_h * i as f64;
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            label_w - 8.0,
            y + 20.0,
            escape(name)
        );
        for (j, (value, color)) in [(*wrk, "#4e79a7"), (*h2, "#f28e2b")].iter().enumerate() {
            let by = y + 4.0 + 18.0 * j as f64;
            let w = bar_w * value / max;
            let _ = writeln!(
                out,
                "<rect x=\"{label_w}\" y=\"{by}\" width=\"{w:.1}\" height=\"16\" fill=\"{color}\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\">{value:.0}</text>",
                label_w + w + 4.0,
                by + 12.0
            );
        }
    }
    out.push_str("</svg>\n");
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
