//! The report: `docs/benchmarks/README.md` (tables, commands, versions,
//! machine, verdict against issue 7's targets) and `throughput.svg`, a bar
//! chart drawn here without dependencies.

use std::fmt::Write as _;
use std::path::Path;

use super::{Results, Section, Settings, Tool, control_plane_scale, propagation, router_lookup};

mod chart;
mod machine;

pub(crate) use machine::Machine;
use machine::first_line;

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
         > ({model}, {mem}), a virtual machine: its host's other work can take CPU time from\n\
         > it, so figures vary between runs (load average {la0} at the start, just after\n\
         > the release build, {la1} at the end).\n\
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
         of CPU) is not measured here.\n\n\
         Most of the gap between `none` and the other rows is not the middlewares' own work:\n\
         a route without middlewares is forwarded directly from the raw request head, while a\n\
         route with any middleware takes the general path, which parses the request into an\n\
         `http::Request` with a `HeaderMap` first (see [profile.md](profile.md)).\n"
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
    write_router_lookup(&mut md, settings, &results.router_lookup);

    // 4. Propagation.
    let _ = writeln!(md, "## 4. Propagation (issue item 3)\n");
    let _ = writeln!(md, "### One watching proxy\n");
    match &results.propagation {
        Some(p) => write_propagation(&mut md, p),
        None => md.push_str("Not measured (see notes).\n\n"),
    }
    write_fan_out(&mut md, &results.fan_out);

    // 5. Control-plane scale.
    let _ = writeln!(md, "## 5. Control-plane scale (issue item 5)\n");
    match &results.control_plane {
        Some(c) => write_control_plane(&mut md, c),
        None => md.push_str("Not measured (see notes).\n\n"),
    }

    // Verdict.
    md.push_str("## Against the targets of issue 7\n\n");
    write_verdict(&mut md, results);

    // Missing.
    md.push_str(
        "## Not measured yet\n\n\
         - Propagation to 10 and 100 *real* proxies: simulated watchers stand in (section 4),\n  \
         so those figures end when the update arrives, not when a proxy serves it.\n\
         - A profile taken by this command; [profile.md](profile.md) holds one taken\n  \
         by hand (`perf record -e cpu-clock`, sampling; the VM has no hardware counters).\n\n",
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
         {} at the start and {} at the end.",
        before.cpus,
        before.cpu_model,
        first_line("uname", &["-sr"]),
        before.memory,
        before.date,
        before.load_average,
        after.load_average
    );

    std::fs::write(docs.join("README.md"), md)?;
    std::fs::write(docs.join("throughput.svg"), chart::svg(results, &proxies))?;
    Ok(())
}

fn write_propagation(md: &mut String, p: &propagation::Propagation) {
    let _ = writeln!(
        md,
        "{routes} routes loaded; control plane debounce `quietPeriod` {q}, `maxDelay` {m} (the\n\
         defaults, 100 ms / 1 s, apply only to changes that follow others closely: a lone\n\
         change compiles at once). A new route is written to a new file (write aside, then\n\
         rename into the watched directory, which the file provider reads at once; its 50 ms\n\
         quiet period is for writes still in progress) and the proxy is polled with\n\
         raw HTTP/1.1 requests on loopback until it answers 200, bounded at 10 s. The next\n\
         sample's change comes {pace} ms after that, longer than the quiet period, so each\n\
         sample is a lone change rather than part of a burst.\n\n\
         | samples | p50 ms | p99 ms | max ms | not served within 10 s |\n\
         |---:|---:|---:|---:|---:|\n\
         | {n} | {p50} | {p99} | {max} | {timeouts} |\n\n\
         Churn: {changes} changes of one router (each waited for until served) over {secs:.1} s,\n\
         while a client sent one request every 5 ms to a stable route:\n\n\
         | requests | non-2xx | connection errors | changes not served within 10 s |\n\
         |---:|---:|---:|---:|\n\
         | {req} | {non2xx} | {io} | {unprop} |\n",
        routes = thousands(propagation::ROUTES),
        q = propagation::DEBOUNCE.0,
        m = propagation::DEBOUNCE.1,
        pace = propagation::PACE.as_millis(),
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

/// The criterion estimate (ns) of `case` at `routers`.
fn lookup_ns(estimates: &[router_lookup::Estimate], case: &str, routers: usize) -> Option<f64> {
    estimates
        .iter()
        .find(|e| e.case == case && e.routers == routers)
        .map(|e| e.ns[1])
}

fn write_router_lookup(
    md: &mut String,
    settings: &Settings,
    estimates: &[router_lookup::Estimate],
) {
    let (warm_up, measurement) = router_lookup::timing(settings.quick);
    let _ = writeln!(
        md,
        "### Router lookup, criterion micro-benchmark\n\n\
         `cargo {} -- --warm-up-time {warm_up} --measurement-time {measurement} --noplot`\n\
         (`data-plane/benches/router_lookup.rs`), run first, before any other process of this\n\
         benchmark starts. One lookup is the routing step of one request: host canonicalised,\n\
         path normalised, then the index of one entry point holding the routers above, compiled\n\
         and indexed as the proxy does it (`sluice_data_plane::RouterIndex`). *hit*: a request\n\
         for the last-defined router; *miss*: a host no router names (the 404 path). Criterion's\n\
         mean, its 95 % confidence interval in brackets.\n",
        router_lookup::CARGO_ARGS.join(" ")
    );
    if estimates.is_empty() {
        md.push_str("Not measured (see notes).\n\n");
        return;
    }
    md.push_str(
        "| routers | hit ns | hit vs 10 | miss ns | miss vs 10 |\n|---:|---:|---:|---:|---:|\n",
    );
    let mut sizes: Vec<usize> = estimates.iter().map(|e| e.routers).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let cell = |case: &str, routers: usize| match estimates
        .iter()
        .find(|e| e.case == case && e.routers == routers)
    {
        Some(e) => format!("{:.1} [{:.1}–{:.1}]", e.ns[1], e.ns[0], e.ns[2]),
        None => "–".into(),
    };
    for routers in sizes {
        let _ = writeln!(
            md,
            "| {routers} | {} | {} | {} | {} |",
            cell("hit", routers),
            num(
                ratio(
                    lookup_ns(estimates, "hit", routers),
                    lookup_ns(estimates, "hit", 10)
                ),
                2
            ),
            cell("miss", routers),
            num(
                ratio(
                    lookup_ns(estimates, "miss", routers),
                    lookup_ns(estimates, "miss", 10)
                ),
                2
            ),
        );
    }
    md.push('\n');
}

fn write_fan_out(md: &mut String, fan_out: &[propagation::FanOut]) {
    let _ = writeln!(
        md,
        "### 1, 10 and 100 simulated watchers\n\n\
         A control plane alone (no proxy) with the same {routes} routes and debounce, and\n\
         `snapshot-watch --streams N` (integration-tests): one process holding N `Watch` streams\n\
         (nodes `fan-out-N-<i>`), each ACKing every update as it arrives and stamping the wall\n\
         clock on arrival. A new route is written to a new file as above, the clock read just\n\
         before, samples paced as above; a sample is the time until the **last** of the N\n\
         streams has received the version carrying that route. These watchers apply nothing, so the figure is the control\n\
         plane's part of propagation (file provider, debounce, compile, fan-out); a real proxy\n\
         adds building its runtime (compare the 1-proxy table). Memory: the control plane's\n\
         VmRSS / VmHWM after the samples, with the N streams connected.\n",
        routes = thousands(propagation::ROUTES),
    );
    if fan_out.is_empty() {
        md.push_str("Not measured (see notes).\n\n");
        return;
    }
    md.push_str(
        "| watchers | samples | p50 ms | p99 ms | max ms | not received within 10 s | control plane RSS MiB | peak RSS MiB |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for f in fan_out {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {:.1} | {:.1} |",
            f.watchers,
            f.samples_ms.len(),
            num(percentile(&f.samples_ms, 0.5), 1),
            num(percentile(&f.samples_ms, 0.99), 1),
            num(percentile(&f.samples_ms, 1.0), 1),
            f.timeouts,
            f.control_plane_kib.0 as f64 / 1024.0,
            f.control_plane_kib.1 as f64 / 1024.0,
        );
    }
    md.push('\n');
}

fn write_control_plane(md: &mut String, c: &control_plane_scale::ControlPlaneScale) {
    let mib = |kib: u64| kib as f64 / 1024.0;
    let validate_small = median(c.validate_small_ms.clone());
    let validate = median(c.validate_ms.clone());
    let per_watcher_kib = c.many_watchers_kib.0.saturating_sub(c.one_watcher_kib.0) as f64
        / control_plane_scale::WATCHERS as f64;
    let _ = writeln!(
        md,
        "{routers} routers (router *i*: `Host(`r*i*.bench`) && PathPrefix(`/r*i*`)`, one service) on the\n\
         file provider; a control plane alone, watched by `snapshot-watch` (one stream, then\n\
         {watchers} more in one process). Compile time is the wall time of a whole\n\
         `sluice-control-plane validate --configFile` run (start, read and parse the YAML,\n\
         compile, exit), median of {runs}, against the same at {small} routers. Sizes are the\n\
         encoded protobuf length of the `SnapshotUpdate` the watcher received\n\
         (`prost::Message::encoded_len`). Memory is VmRSS / VmHWM from `/proc/<pid>/status`.\n\n\
         | measure | value |\n|---|---:|\n\
         | `validate`, {small} routers | {vs} ms |\n\
         | `validate`, {routers} routers | {vl} ms ({vr}× the {small}-router run) |\n\
         | start to a watcher holding all {routers} routers | {load:.0} ms |\n\
         | full state sent to that watcher | {full:.1} KiB |\n\
         | control plane RSS / peak, 1 watcher | {r1:.1} / {h1:.1} MiB |\n\
         | control plane RSS / peak, 1 + {watchers} watchers | {r2:.1} / {h2:.1} MiB |\n\
         | RSS per additional watcher | {per:.0} KiB |\n\
         | one router's rule changed: update size | {delta} bytes ({share:.4} % of the full state) |\n\
         | that update carried | upserts `{upserts}`, {removals} removals |\n\
         | file written to the watcher receiving it | {delta_ms:.0} ms |\n",
        routers = thousands(control_plane_scale::ROUTERS),
        small = control_plane_scale::SMALL,
        watchers = control_plane_scale::WATCHERS,
        runs = c.validate_ms.len(),
        vs = num(validate_small, 1),
        vl = num(validate, 1),
        vr = num(ratio(validate, validate_small), 1),
        load = c.load_ms,
        full = c.full_state_bytes as f64 / 1024.0,
        r1 = mib(c.one_watcher_kib.0),
        h1 = mib(c.one_watcher_kib.1),
        r2 = mib(c.many_watchers_kib.0),
        h2 = mib(c.many_watchers_kib.1),
        per = per_watcher_kib,
        delta = c.delta_bytes,
        share = 100.0 * c.delta_bytes as f64 / c.full_state_bytes.max(1) as f64,
        upserts = c.delta_upserts,
        removals = c.delta_removals,
        delta_ms = c.delta_ms,
    );
    md.push_str(
        "The change rewrites the whole 10,000-router file (one rule differs, written aside and\n\
         renamed into place), so its time includes re-reading and parsing that file and\n\
         compiling all 10,000 routers.\n\n",
    );
}

/// `10000` -> `10,000`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
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
    let lookup = |routers| lookup_ns(&results.router_lookup, "hit", routers);
    let r = ratio(lookup(10_000), lookup(10));
    line(
        "router lookup (criterion) at 10,000 routers within 5 % of 10",
        format!(
            "{} ns vs {} ns: {}×",
            num(lookup(10_000), 1),
            num(lookup(10), 1),
            num(r, 3)
        ),
        r.map(|r| r <= 1.05),
    );
    let hundred = results
        .fan_out
        .iter()
        .find(|f| f.watchers == 100)
        .map(|f| (percentile(&f.samples_ms, 0.99), f.timeouts));
    let one_proxy = results
        .propagation
        .as_ref()
        .and_then(|p| percentile(&p.samples_ms, 0.99));
    line(
        "propagation p99 < 10 ms at 3,000 routes with 100 watchers",
        format!(
            "{} ms with 100 simulated watchers (update received); {} ms with 1 proxy (route served)",
            num(hundred.and_then(|(p99, _)| p99), 1),
            num(one_proxy, 1)
        ),
        hundred.and_then(|(p99, timeouts)| p99.map(|v| v < 10.0 && timeouts == 0)),
    );
    if let Some(p) = &results.propagation {
        let errors = p.churn_non_2xx + p.churn_io_errors;
        let enough = p.churn_changes >= 1_000;
        line(
            "0 errors under churn (1,000 route changes)",
            format!(
                "{errors} over {} changes{}",
                p.churn_changes,
                if enough {
                    ""
                } else {
                    " (too few changes to judge)"
                }
            ),
            if errors > 0 {
                Some(false)
            } else {
                enough.then_some(true)
            },
        );
    }
    if let Some(c) = &results.control_plane {
        line(
            "(design) a one-router change at 10,000 routers ships that router only",
            format!(
                "{} bytes: upserts {}, {} removals",
                c.delta_bytes, c.delta_upserts, c.delta_removals
            ),
            Some(c.delta_upserts == "routers:1" && c.delta_removals == 0),
        );
    }
    md.push('\n');
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_are_separated() {
        assert_eq!(super::thousands(10), "10");
        assert_eq!(super::thousands(3_000), "3,000");
        assert_eq!(super::thousands(1_234_567), "1,234,567");
    }
}
