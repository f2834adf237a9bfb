//! Child processes that end with the test, and free loopback ports.

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A spawned process whose output is captured; killed (by its PID) when dropped.
#[derive(Debug)]
pub struct ChildProcess {
    name: String,
    child: Option<Child>,
    output: Arc<Mutex<String>>,
}

impl ChildProcess {
    /// Spawns `program` with `args`, capturing stdout and stderr.
    pub fn spawn(name: &str, program: &Path, args: &[String]) -> Self {
        Self::spawn_with_env(name, program, args, &[])
    }

    /// Like [`ChildProcess::spawn`], with extra environment variables (e.g.
    /// `SLUICE_CONTROLPLANE_APIADDRESS`) on top of the inherited environment.
    pub fn spawn_with_env(
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(&str, &str)],
    ) -> Self {
        let mut child = Command::new(program)
            .args(args)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("starting {}: {error}", program.display()));
        let output = Arc::new(Mutex::new(String::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let output = Arc::clone(&output);
            std::thread::spawn(move || {
                let mut reader = std::io::BufReader::new(stream);
                let mut line = String::new();
                while std::io::BufRead::read_line(&mut reader, &mut line).unwrap_or(0) > 0 {
                    output.lock().unwrap().push_str(&line);
                    line.clear();
                }
            });
        }
        Self {
            name: name.to_owned(),
            child: Some(child),
            output,
        }
    }

    /// Everything the process printed so far.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("process is running").id()
    }

    /// Sends a signal (`TERM`, `KILL`, ...) with `kill`.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.pid().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{signal} {} failed", self.pid());
    }

    /// Kills the process now and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits for the process to exit by itself, up to `timeout`.
    pub fn wait_exit(&mut self, timeout: std::time::Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        let child = self.child.as_mut()?;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }

    /// The name given at spawn time, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("----- output of {} -----\n{}", self.name, self.output());
        }
    }
}

/// Ports handed to child processes come from below Linux's ephemeral range
/// (32768–60999), so the many client connections of a test run, which take
/// ephemeral source ports, cannot grab one between this check and the
/// child's bind; a process-wide cursor keeps two tests from drawing the same.
const CHILD_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A TCP port on 127.0.0.1 that was free a moment ago, for a child process to bind.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static CURSOR: AtomicU16 = AtomicU16::new(0);
    let span = CHILD_PORTS.end - CHILD_PORTS.start;
    // Different test processes start at different places in the range.
    let offset = (std::process::id() % u32::from(span)) as u16;
    for _ in 0..span {
        let step = CURSOR.fetch_add(1, Ordering::Relaxed) % span;
        let port = CHILD_PORTS.start + (offset + step) % span;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 127.0.0.1:{CHILD_PORTS:?}");
}

/// Runs a command to completion (e.g. `grpcurl`, `htpasswd`) and returns its output.
pub fn run_command(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| {
            panic!("running `{program}` (is it installed? `cargo xtask ci` installs it): {error}")
        })
}

/// Everything a finished command printed: its standard output, then its
/// standard error.
pub fn printed(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs `program` to completion with extra environment variables, killing it
/// and panicking if it is still running after `timeout` (so a command that
/// should exit but hangs fails the test instead of blocking it). Returns the
/// exit status and everything it printed.
pub fn run_to_completion(
    program: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    timeout: Duration,
) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("starting {}: {error}", program.display()));
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .map(|stream| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut stream) = stream {
                let _ = stream.read_to_end(&mut bytes);
            }
            bytes
        })
    })
    .collect();
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the process") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} {args:?} still running after {timeout:?}",
                program.display()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut outputs = readers
        .into_iter()
        .map(|reader| reader.join().expect("output reader thread"));
    Output {
        status,
        stdout: outputs.next().unwrap_or_default(),
        stderr: outputs.next().unwrap_or_default(),
    }
}
