//! The machine a run happened on, and the first line of a tool's version.

use std::process::Command;

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
pub(super) fn first_line(program: &str, args: &[&str]) -> String {
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
