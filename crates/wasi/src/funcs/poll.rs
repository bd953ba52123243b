//! `poll_oneoff`: wait for clocks and descriptors.

use crate::WasiCtx;
use crate::abi::{GuestMemory, rights};
use crate::ctx::InputStream;
use crate::errno::{Errno, WasiResult};
use crate::table::{Kind, MAX_DESCRIPTORS};
use rustix::event::{PollFd, PollFlags};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

const EVENT_CLOCK: u8 = 0;
const EVENT_FD_READ: u8 = 1;
const EVENT_FD_WRITE: u8 = 2;
const SUBCLOCK_ABSTIME: u16 = 1;
const EVENT_HANGUP: u16 = 1;

/// Most subscriptions one call takes: a read and a write subscription on
/// every descriptor a guest may hold, and as many clocks again. More is
/// `EINVAL` (as `poll` answers for more descriptors than a process may
/// open), so that a guest's count cannot size the host's allocations.
const MAX_SUBSCRIPTIONS: u32 = 4 * MAX_DESCRIPTORS as u32;

/// One subscription, parsed.
enum Sub {
    Clock { userdata: u64, deadline: Instant },
    Fd { userdata: u64, ty: u8, fd: u32 },
}

/// One event to report.
struct Event {
    userdata: u64,
    error: u16,
    ty: u8,
    nbytes: u64,
    flags: u16,
}

/// Whether a descriptor is ready, or must be asked of the OS.
enum Readiness<'a> {
    Ready(u64),
    Os(BorrowedFd<'a>),
    Error(Errno),
}

/// What a `poll_oneoff` that found nothing ready would wait for: the
/// earliest clock deadline and the host descriptors to watch (duplicated,
/// so that the wait can go on elsewhere while the table may change).
pub(crate) struct PollWait {
    /// When the first clock subscription fires, if there is one.
    pub deadline: Option<Instant>,
    /// Host descriptors and the readiness each waits for.
    pub fds: Vec<(std::os::fd::OwnedFd, PollFlags)>,
}

impl WasiCtx {
    pub(crate) fn poll_oneoff(
        &mut self,
        mem: &mut GuestMemory<'_>,
        subs: u32,
        events: u32,
        count: u32,
        nevents: u32,
    ) -> WasiResult<()> {
        self.poll_oneoff_step(mem, subs, events, count, nevents, Instant::now(), true)
            .map(|_| ())
    }

    /// `poll_oneoff` without waiting: reports the events ready now, or,
    /// when there are none, writes nothing and says what to wait for
    /// before asking again (the async linker awaits that off the thread).
    /// `started` is when the guest called: relative clock timeouts count
    /// from it however many times the call looks.
    #[allow(
        clippy::too_many_arguments,
        reason = "the WASI signature, and when it was called"
    )]
    pub(crate) fn poll_oneoff_now(
        &mut self,
        mem: &mut GuestMemory<'_>,
        subs: u32,
        events: u32,
        count: u32,
        nevents: u32,
        started: Instant,
    ) -> WasiResult<Option<PollWait>> {
        self.poll_oneoff_step(mem, subs, events, count, nevents, started, false)
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "the WASI signature, and how to wait"
    )]
    fn poll_oneoff_step(
        &mut self,
        mem: &mut GuestMemory<'_>,
        subs: u32,
        events: u32,
        count: u32,
        nevents: u32,
        started: Instant,
        blocking: bool,
    ) -> WasiResult<Option<PollWait>> {
        if count == 0 || count > MAX_SUBSCRIPTIONS {
            return Err(Errno::Inval);
        }
        // Both arrays must lie in memory before anything is read or waited.
        mem.slice(subs, count.checked_mul(48).ok_or(Errno::Fault)?)?;
        mem.slice(events, count.checked_mul(32).ok_or(Errno::Fault)?)?;
        let now = started;
        let mut parsed = Vec::with_capacity(count as usize);
        let mut out: Vec<Event> = Vec::new();
        for i in 0..count {
            let at = subs
                .checked_add(i.checked_mul(48).ok_or(Errno::Fault)?)
                .ok_or(Errno::Fault)?;
            mem.slice(at, 48)?;
            let userdata = mem.u64(at)?;
            match mem.u8(at + 8)? {
                EVENT_CLOCK => {
                    let id = mem.u32(at + 16)?;
                    let timeout = mem.u64(at + 24)?;
                    let flags = mem.u16(at + 40)?;
                    match clock_delay(id, timeout, flags) {
                        Ok(d) => parsed.push(Sub::Clock {
                            userdata,
                            deadline: now + d,
                        }),
                        Err(e) => out.push(Event::error(userdata, EVENT_CLOCK, e)),
                    }
                }
                ty @ (EVENT_FD_READ | EVENT_FD_WRITE) => parsed.push(Sub::Fd {
                    userdata,
                    ty,
                    fd: mem.u32(at + 16)?,
                }),
                _ => return Err(Errno::Inval),
            }
        }

        let mut wait = blocking;
        loop {
            // Descriptors that are ready without asking, and those to poll.
            let mut os: Vec<(usize, BorrowedFd<'_>, u8)> = Vec::new();
            for (i, s) in parsed.iter().enumerate() {
                if let Sub::Fd { userdata, ty, fd } = s {
                    match self.readiness(*fd, *ty) {
                        Readiness::Ready(n) => out.push(Event::ready(*userdata, *ty, n, 0)),
                        Readiness::Error(e) => out.push(Event::error(*userdata, *ty, e)),
                        Readiness::Os(bfd) => os.push((i, bfd, *ty)),
                    }
                }
            }
            let deadline = parsed
                .iter()
                .filter_map(|s| match s {
                    Sub::Clock { deadline, .. } => Some(*deadline),
                    _ => None,
                })
                .min();
            if !blocking && out.is_empty() && (deadline.is_some() || !os.is_empty()) {
                // Look without waiting; if nothing is ready, say what to
                // wait for.
                if let Some(plan) = self.poll_now(&parsed, &os, deadline, &mut out)? {
                    return Ok(Some(plan));
                }
                break;
            }
            let timeout = if !out.is_empty() || !wait {
                Some(Duration::ZERO)
            } else {
                deadline.map(|d| d.saturating_duration_since(Instant::now()))
            };
            if !os.is_empty() {
                poll_os(&parsed, &os, timeout, &mut out)?;
            } else if let Some(t) = timeout {
                std::thread::sleep(t);
            } else if out.is_empty() {
                // Nothing can ever become ready.
                return Err(Errno::Inval);
            }
            let now = Instant::now();
            clocks_due(&parsed, now, &mut out);
            if !out.is_empty() || !wait {
                break;
            }
            // Woken without an event (a signal): look once more, no wait.
            wait = deadline.is_none_or(|d| d > now);
        }

        out.truncate(count as usize);
        for (i, e) in out.iter().enumerate() {
            let mut b = [0u8; 32];
            b[0..8].copy_from_slice(&e.userdata.to_le_bytes());
            b[8..10].copy_from_slice(&e.error.to_le_bytes());
            b[10] = e.ty;
            b[16..24].copy_from_slice(&e.nbytes.to_le_bytes());
            b[24..26].copy_from_slice(&e.flags.to_le_bytes());
            mem.write(events.checked_add(32 * i as u32).ok_or(Errno::Fault)?, &b)?;
        }
        mem.set_u32(nevents, out.len() as u32)?;
        Ok(None)
    }

    /// One look, without waiting, at the descriptors the OS must be asked
    /// about and at the clocks: adds what is ready to `out`, or returns
    /// what to wait for when nothing is.
    fn poll_now(
        &self,
        parsed: &[Sub],
        os: &[(usize, BorrowedFd<'_>, u8)],
        deadline: Option<Instant>,
        out: &mut Vec<Event>,
    ) -> WasiResult<Option<PollWait>> {
        if !os.is_empty() {
            poll_os(parsed, os, Some(Duration::ZERO), out)?;
        }
        clocks_due(parsed, Instant::now(), out);
        if !out.is_empty() {
            return Ok(None);
        }
        let fds = os
            .iter()
            .map(|(_, fd, ty)| Ok((fd.try_clone_to_owned()?, poll_flags(*ty))))
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Some(PollWait { deadline, fds }))
    }

    /// For a read that may block (a blocking socket, listener or the
    /// host's stdin): a duplicate of the host descriptor to wait on until
    /// it is readable. `None` when the read cannot block for long (files,
    /// pipes given by the embedder, non-blocking descriptors) or the
    /// descriptor is not one to read (the read itself then fails).
    pub(crate) fn read_may_block(&self, fd: u32) -> Option<std::os::fd::OwnedFd> {
        let d = self.table.get(fd).ok()?;
        if d.flags & crate::abi::fdflags::NONBLOCK != 0 {
            return None;
        }
        let fd = match &d.kind {
            Kind::Input(InputStream::Inherit) => host_stdin().as_fd(),
            Kind::Stream(s) => s.as_fd(),
            Kind::Listener(l) => l.as_fd(),
            _ => return None,
        };
        fd.try_clone_to_owned().ok()
    }

    fn readiness(&self, fd: u32, ty: u8) -> Readiness<'_> {
        let d = match self.table.get(fd) {
            Ok(d) => d,
            Err(e) => return Readiness::Error(e),
        };
        let needed = rights::POLL_FD_READWRITE
            | if ty == EVENT_FD_READ {
                rights::FD_READ
            } else {
                rights::FD_WRITE
            };
        if d.rights_base & needed != needed {
            return Readiness::Error(Errno::Notcapable);
        }
        match &d.kind {
            Kind::Input(InputStream::Inherit) => Readiness::Os(host_stdin().as_fd()),
            Kind::Stream(s) => Readiness::Os(s.as_fd()),
            Kind::Listener(l) => Readiness::Os(l.as_fd()),
            Kind::File(f) if ty == EVENT_FD_READ => {
                // Regular files are always ready; report what is left.
                use std::io::Seek;
                let left = f
                    .metadata()
                    .ok()
                    .zip((&*f).stream_position().ok())
                    .map_or(0, |(m, pos)| m.len().saturating_sub(pos));
                Readiness::Ready(left)
            }
            Kind::Dir(_) => Readiness::Error(Errno::Isdir),
            _ => Readiness::Ready(0),
        }
    }
}

impl Event {
    fn ready(userdata: u64, ty: u8, nbytes: u64, flags: u16) -> Event {
        Event {
            userdata,
            error: 0,
            ty,
            nbytes,
            flags,
        }
    }

    fn error(userdata: u64, ty: u8, e: Errno) -> Event {
        Event {
            userdata,
            error: e as u16,
            ty,
            nbytes: 0,
            flags: 0,
        }
    }
}

/// Adds an event for each clock subscription due at `now`.
fn clocks_due(parsed: &[Sub], now: Instant, out: &mut Vec<Event>) {
    for s in parsed {
        if let Sub::Clock { userdata, deadline } = s
            && *deadline <= now
        {
            out.push(Event::ready(*userdata, EVENT_CLOCK, 0, 0));
        }
    }
}

/// What `poll` waits for on a descriptor subscribed with event type `ty`.
fn poll_flags(ty: u8) -> PollFlags {
    if ty == EVENT_FD_READ {
        PollFlags::IN
    } else {
        PollFlags::OUT
    }
}

/// Asks the OS about the descriptors `os` (subscriptions of `parsed`),
/// waiting at most `timeout` (forever if `None`), and adds an event for
/// each that is ready.
fn poll_os(
    parsed: &[Sub],
    os: &[(usize, BorrowedFd<'_>, u8)],
    timeout: Option<Duration>,
    out: &mut Vec<Event>,
) -> WasiResult<()> {
    let mut fds: Vec<PollFd<'_>> = os
        .iter()
        .map(|(_, fd, ty)| PollFd::new(fd, poll_flags(*ty)))
        .collect();
    let ts = timeout.map(|t| rustix::time::Timespec {
        tv_sec: t.as_secs() as i64,
        tv_nsec: i64::from(t.subsec_nanos()),
    });
    match rustix::event::poll(&mut fds, ts.as_ref()) {
        Ok(_) | Err(rustix::io::Errno::INTR) => {}
        Err(e) => return Err(std::io::Error::from(e).into()),
    }
    for ((i, _, ty), pfd) in os.iter().zip(&fds) {
        let r = pfd.revents();
        if let (false, Sub::Fd { userdata, .. }) = (r.is_empty(), &parsed[*i]) {
            let hangup = if r.contains(PollFlags::HUP) {
                EVENT_HANGUP
            } else {
                0
            };
            out.push(Event::ready(*userdata, *ty, 0, hangup));
        }
    }
    Ok(())
}

/// The host's stdin handle, kept for the life of the process so that its
/// descriptor can be borrowed for polling.
fn host_stdin() -> &'static std::io::Stdin {
    static STDIN: std::sync::OnceLock<std::io::Stdin> = std::sync::OnceLock::new();
    STDIN.get_or_init(std::io::stdin)
}

/// How long a clock subscription waits from now.
fn clock_delay(id: u32, timeout: u64, flags: u16) -> WasiResult<Duration> {
    use rustix::time::{ClockId, clock_gettime};
    let clock = match id {
        0 => ClockId::Realtime,
        1 => ClockId::Monotonic,
        2 => ClockId::ProcessCPUTime,
        3 => ClockId::ThreadCPUTime,
        _ => return Err(Errno::Inval),
    };
    if flags & SUBCLOCK_ABSTIME == 0 {
        return Ok(Duration::from_nanos(timeout));
    }
    let now = clock_gettime(clock);
    let now = (now.tv_sec.max(0) as u64) * 1_000_000_000 + now.tv_nsec.max(0) as u64;
    Ok(Duration::from_nanos(timeout.saturating_sub(now)))
}
