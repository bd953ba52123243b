//! Arguments, environment, clocks, randomness, process control.

use crate::WasiCtx;
use crate::abi::GuestMemory;
use crate::errno::{Errno, WasiResult};
use rustix::time::{ClockId, clock_getres, clock_gettime};

/// `proc_exit`: the guest asked to exit with this status. Returned as the
/// error of the call that was running, so that the embedder (and `keel
/// run`) can tell an exit from a trap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("exited with status {0}")]
pub struct I32Exit(pub i32);

const CLOCK_REALTIME: u32 = 0;
const CLOCK_MONOTONIC: u32 = 1;
const CLOCK_PROCESS_CPUTIME: u32 = 2;
const CLOCK_THREAD_CPUTIME: u32 = 3;

fn clock(id: u32) -> WasiResult<ClockId> {
    Ok(match id {
        CLOCK_REALTIME => ClockId::Realtime,
        CLOCK_MONOTONIC => ClockId::Monotonic,
        CLOCK_PROCESS_CPUTIME => ClockId::ProcessCPUTime,
        CLOCK_THREAD_CPUTIME => ClockId::ThreadCPUTime,
        _ => return Err(Errno::Inval),
    })
}

fn timespec_nanos(t: rustix::time::Timespec) -> u64 {
    (t.tv_sec.max(0) as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(t.tv_nsec.max(0) as u64)
}

/// Writes a list of NUL-terminated strings (arguments or environment).
fn write_strings(
    list: &[Vec<u8>],
    mem: &mut GuestMemory<'_>,
    ptrs: u32,
    buf: u32,
) -> WasiResult<()> {
    let mut offset = 0u32;
    for (i, s) in list.iter().enumerate() {
        let at = buf.checked_add(offset).ok_or(Errno::Fault)?;
        mem.set_u32(ptrs.checked_add(4 * i as u32).ok_or(Errno::Fault)?, at)?;
        mem.write(at, s)?;
        offset = offset.checked_add(s.len() as u32).ok_or(Errno::Fault)?;
    }
    Ok(())
}

fn write_sizes(
    list: &[Vec<u8>],
    mem: &mut GuestMemory<'_>,
    count: u32,
    size: u32,
) -> WasiResult<()> {
    mem.set_u32(count, list.len() as u32)?;
    let total: usize = list.iter().map(Vec::len).sum();
    mem.set_u32(size, u32::try_from(total).map_err(|_| Errno::Overflow)?)
}

impl WasiCtx {
    pub(crate) fn args_get(
        &mut self,
        mem: &mut GuestMemory<'_>,
        argv: u32,
        buf: u32,
    ) -> WasiResult<()> {
        write_strings(&self.args, mem, argv, buf)
    }

    pub(crate) fn args_sizes_get(
        &mut self,
        mem: &mut GuestMemory<'_>,
        count: u32,
        size: u32,
    ) -> WasiResult<()> {
        write_sizes(&self.args, mem, count, size)
    }

    pub(crate) fn environ_get(
        &mut self,
        mem: &mut GuestMemory<'_>,
        environ: u32,
        buf: u32,
    ) -> WasiResult<()> {
        write_strings(&self.env, mem, environ, buf)
    }

    pub(crate) fn environ_sizes_get(
        &mut self,
        mem: &mut GuestMemory<'_>,
        count: u32,
        size: u32,
    ) -> WasiResult<()> {
        write_sizes(&self.env, mem, count, size)
    }

    pub(crate) fn clock_res_get(
        &mut self,
        mem: &mut GuestMemory<'_>,
        id: u32,
        res: u32,
    ) -> WasiResult<()> {
        let r = timespec_nanos(clock_getres(clock(id)?)).max(1);
        mem.set_u64(res, r)
    }

    pub(crate) fn clock_time_get(
        &mut self,
        mem: &mut GuestMemory<'_>,
        id: u32,
        _precision: u64,
        time: u32,
    ) -> WasiResult<()> {
        let t = timespec_nanos(clock_gettime(clock(id)?));
        mem.set_u64(time, t)
    }

    pub(crate) fn random_get(
        &mut self,
        mem: &mut GuestMemory<'_>,
        buf: u32,
        len: u32,
    ) -> WasiResult<()> {
        let out = mem.slice_mut(buf, len)?;
        let mut filled = 0;
        while filled < out.len() {
            let done =
                rustix::rand::getrandom(&mut out[filled..], rustix::rand::GetRandomFlags::empty())
                    .map_err(|e| Errno::from(std::io::Error::from(e)))?;
            filled += done;
        }
        Ok(())
    }

    pub(crate) fn sched_yield(&mut self, _mem: &mut GuestMemory<'_>) -> WasiResult<()> {
        std::thread::yield_now();
        Ok(())
    }

    /// `proc_raise`. A guest has no process of its own: a signal whose
    /// default action is to ignore it (SIGCHLD, SIGURG, SIGWINCH) is
    /// ignored; any other signal ends the guest as its default action would
    /// end a process. Values that are not WASI signals are `EINVAL`.
    pub(crate) fn proc_raise(
        &mut self,
        _mem: &mut GuestMemory<'_>,
        sig: u32,
    ) -> Result<(), RaiseOutcome> {
        const SIGCHLD: u32 = 8;
        const SIGURG: u32 = 23;
        const SIGWINCH: u32 = 28;
        const LAST_SIGNAL: u32 = 30;
        match sig {
            0 => Ok(()),
            SIGCHLD | SIGURG | SIGWINCH => Ok(()),
            s if s <= LAST_SIGNAL => Err(RaiseOutcome::Terminate(s)),
            _ => Err(RaiseOutcome::Errno(Errno::Inval)),
        }
    }
}

/// What `proc_raise` does instead of returning success.
pub(crate) enum RaiseOutcome {
    /// End the guest, as if killed by this signal.
    Terminate(u32),
    /// Fail with this error.
    Errno(Errno),
}
