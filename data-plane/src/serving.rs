//! Serving threads: one single-threaded tokio runtime per core, each with
//! its own listening socket on every entry point (`SO_REUSEPORT`, so the
//! kernel spreads connections across them) and its own backend connection
//! pools. A request then runs start to finish on one thread: accepting,
//! routing, the backend exchange and the response, with no task handed
//! between threads and no thread woken for another's work. The control
//! link, the admin endpoint and health checks run on the main runtime.

use std::cell::Cell;
use std::io;
use std::thread::JoinHandle;

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

thread_local! {
    static POOL_SLOT: Cell<usize> = const { Cell::new(0) };
}

/// The backend connection pools a thread uses: `1 + i` on serving thread
/// `i`, 0 on every other thread (the control runtime's health checks, the
/// in-process tests), so a pooled connection is only driven by the runtime
/// it is registered with. Clients keep `serving threads + 1` pools.
pub(crate) fn pool_slot() -> usize {
    POOL_SLOT.with(Cell::get)
}

/// The serving threads of a proxy; stopping (or dropping) them ends every
/// connection still open on them.
#[derive(Debug)]
pub struct ServingThreads {
    handles: Vec<Handle>,
    threads: Vec<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl ServingThreads {
    /// Starts `count` serving threads (at least one).
    pub fn start(count: usize) -> io::Result<Self> {
        let mut serving = Self {
            handles: Vec::new(),
            threads: Vec::new(),
        };
        for index in 0..count.max(1) {
            let runtime = Builder::new_current_thread().enable_all().build()?;
            serving.handles.push(runtime.handle().clone());
            let (stop, stopped) = oneshot::channel::<()>();
            let thread = std::thread::Builder::new()
                .name(format!("sluice-serve-{index}"))
                .spawn(move || {
                    POOL_SLOT.with(|cell| cell.set(index + 1));
                    // Either a stop or the sender dropped: both mean stop.
                    let _ = runtime.block_on(stopped);
                })?;
            serving.threads.push((stop, thread));
        }
        Ok(serving)
    }

    /// One handle per serving thread, to spawn its listeners on.
    pub fn handles(&self) -> &[Handle] {
        &self.handles
    }

    /// Stops every serving thread and waits for them.
    pub fn stop(mut self) {
        self.stop_all();
    }

    fn stop_all(&mut self) {
        for (stop, thread) in self.threads.drain(..) {
            let _ = stop.send(());
            if thread.join().is_err() {
                tracing::error!("a serving thread panicked");
            }
        }
    }
}

impl Drop for ServingThreads {
    fn drop(&mut self) {
        self.stop_all();
    }
}
