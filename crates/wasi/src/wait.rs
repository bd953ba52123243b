//! Waiting without blocking the executor, for the async linker
//! ([`add_to_linker_async`](crate::add_to_linker_async)): clocks on tokio's
//! timer, descriptors on tokio's blocking pool. Outside a tokio runtime
//! (a synchronous call polls host futures once), the wait blocks the
//! thread as the synchronous functions do.

use crate::funcs::PollWait;
use rustix::event::{PollFd, PollFlags};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Longest single `poll` on the blocking pool: a wait whose call was
/// cancelled gives its thread back within this.
const SLICE: Duration = Duration::from_millis(100);

/// Until `fd` is readable (or hung up).
pub(crate) async fn readable(fd: OwnedFd) {
    until(PollWait {
        deadline: None,
        fds: vec![(fd, PollFlags::IN)],
    })
    .await
}

/// Until one of the plan's descriptors is ready or its deadline passes.
pub(crate) async fn until(plan: PollWait) {
    let in_runtime = tokio::runtime::Handle::try_current().is_ok();
    if plan.fds.is_empty() {
        if let Some(deadline) = plan.deadline {
            if in_runtime {
                tokio::time::sleep_until(deadline.into()).await;
            } else {
                std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
            }
        }
        return;
    }
    let cancelled = Arc::new(AtomicBool::new(false));
    // Dropping this future (the guest's call was cancelled) stops the
    // blocking wait at its next slice.
    let _stop = StopOnDrop(cancelled.clone());
    let wait = move || poll_until(&plan, &cancelled);
    if in_runtime {
        // A failed join means the runtime is shutting down: nothing to do
        // but let the guest look again.
        let _ = tokio::task::spawn_blocking(wait).await;
    } else {
        wait();
    }
}

struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Polls the plan's descriptors in slices until one is ready, the
/// deadline passes, or the wait is cancelled.
fn poll_until(plan: &PollWait, cancelled: &AtomicBool) {
    loop {
        let left = plan
            .deadline
            .map(|d| d.saturating_duration_since(Instant::now()));
        if left == Some(Duration::ZERO) || cancelled.load(Ordering::Relaxed) {
            return;
        }
        let slice = left.map_or(SLICE, |l| l.min(SLICE));
        let timeout = rustix::time::Timespec {
            tv_sec: slice.as_secs() as i64,
            tv_nsec: i64::from(slice.subsec_nanos()),
        };
        let mut fds: Vec<PollFd<'_>> = plan
            .fds
            .iter()
            .map(|(fd, flags)| PollFd::new(fd, *flags))
            .collect();
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(0) | Err(rustix::io::Errno::INTR) => {}
            // Ready, or an error the guest's next look reports.
            Ok(_) | Err(_) => return,
        }
    }
}
