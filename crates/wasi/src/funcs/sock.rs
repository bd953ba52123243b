//! `sock_*`: sockets the host preopened (`keel run --tcplisten`) and the
//! connections accepted from them. Preview 1 cannot create sockets.

use crate::WasiCtx;
use crate::abi::{GuestMemory, fdflags, rights};
use crate::errno::{Errno, WasiResult};
use crate::table::{Descriptor, Kind};
use std::io::{Read, Write};
use std::net::Shutdown;

const RECV_PEEK: u32 = 1;
const RECV_WAITALL: u32 = 2;
const SHUT_RD: u32 = 1;
const SHUT_WR: u32 = 2;

impl WasiCtx {
    pub(crate) fn sock_accept(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: u32,
        flags: u32,
        out: u32,
    ) -> WasiResult<()> {
        let d = self.table.get(fd)?;
        let Kind::Listener(l) = &d.kind else {
            return Err(Errno::Notsock);
        };
        d.require(rights::SOCK_ACCEPT)?;
        if flags & !u32::from(fdflags::NONBLOCK) != 0 {
            return Err(Errno::Inval);
        }
        let (stream, _) = l.accept()?;
        let nonblocking = flags & u32::from(fdflags::NONBLOCK) != 0;
        stream.set_nonblocking(nonblocking)?;
        let mut desc = Descriptor::new(Kind::Stream(stream), rights::SOCKET, 0);
        if nonblocking {
            desc.flags = fdflags::NONBLOCK;
        }
        let new_fd = self.table.try_push(desc)?;
        mem.set_u32(out, new_fd)
    }

    #[allow(clippy::too_many_arguments, reason = "the WASI signature")]
    pub(crate) fn sock_recv(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: u32,
        iovs: u32,
        count: u32,
        flags: u32,
        out_len: u32,
        out_flags: u32,
    ) -> WasiResult<()> {
        let d = self.table.get_mut(fd)?;
        let Kind::Stream(s) = &mut d.kind else {
            return Err(Errno::Notsock);
        };
        if d.rights_base & rights::FD_READ == 0 {
            return Err(Errno::Notcapable);
        }
        if flags & !(RECV_PEEK | RECV_WAITALL) != 0 {
            return Err(Errno::Inval);
        }
        let iovs = mem.iovecs(iovs, count)?;
        let mut total = 0usize;
        for (ptr, len) in iovs {
            let buf = mem.slice_mut(ptr, len)?;
            let mut filled = 0;
            while filled < buf.len() {
                let n = if flags & RECV_PEEK != 0 {
                    s.peek(&mut buf[filled..])?
                } else {
                    s.read(&mut buf[filled..])?
                };
                filled += n;
                if n == 0 || flags & RECV_WAITALL == 0 || flags & RECV_PEEK != 0 {
                    break;
                }
            }
            total += filled;
            if filled < len as usize {
                break;
            }
        }
        mem.set_u32(out_len, total as u32)?;
        mem.set_u16(out_flags, 0)
    }

    pub(crate) fn sock_send(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: u32,
        iovs: u32,
        count: u32,
        _flags: u32,
        out_len: u32,
    ) -> WasiResult<()> {
        let d = self.table.get_mut(fd)?;
        let Kind::Stream(s) = &mut d.kind else {
            return Err(Errno::Notsock);
        };
        if d.rights_base & rights::FD_WRITE == 0 {
            return Err(Errno::Notcapable);
        }
        let iovs = mem.iovecs(iovs, count)?;
        let n = super::write_iovecs(mem, &iovs, |chunk| Ok(s.write(chunk)?))?;
        mem.set_u32(out_len, n as u32)
    }

    pub(crate) fn sock_shutdown(
        &mut self,
        _mem: &mut GuestMemory<'_>,
        fd: u32,
        how: u32,
    ) -> WasiResult<()> {
        let d = self.table.get(fd)?;
        let Kind::Stream(s) = &d.kind else {
            return Err(Errno::Notsock);
        };
        d.require(rights::SOCK_SHUTDOWN)?;
        let how = match how {
            SHUT_RD => Shutdown::Read,
            SHUT_WR => Shutdown::Write,
            x if x == SHUT_RD | SHUT_WR => Shutdown::Both,
            _ => return Err(Errno::Inval),
        };
        Ok(s.shutdown(how)?)
    }
}
