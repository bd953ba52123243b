//! `fd_*`: operations on open descriptors.

use super::{Filestat, filestat_of_cap, filestat_of_std, time_specs, write_iovecs};
use crate::WasiCtx;
use crate::abi::{GuestMemory, fdflags, filetype, rights};
use crate::ctx::InputStream;
use crate::errno::{Errno, WasiResult};
use crate::table::Kind;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

impl WasiCtx {
    pub(crate) fn fd_advise(
        &mut self,
        _mem: &mut GuestMemory<'_>,
        fd: u32,
        offset: u64,
        len: u64,
        advice: u32,
    ) -> WasiResult<()> {
        let d = self.table.get(fd)?;
        d.require(rights::FD_ADVISE)?;
        let Kind::File(file) = &d.kind else {
            return Err(Errno::Badf);
        };
        use rustix::fs::Advice;
        let advice = match advice {
            0 => Advice::Normal,
            1 => Advice::Sequential,
            2 => Advice::Random,
            3 => Advice::WillNeed,
            4 => Advice::DontNeed,
            5 => Advice::NoReuse,
            _ => return Err(Errno::Inval),
        };
        let len = std::num::NonZeroU64::new(len);
        rustix::fs::fadvise(file, offset, len, advice)
            .map_err(|e| Errno::from(std::io::Error::from(e)))
    }

    pub(crate) fn fd_allocate(
        &mut self,
        _mem: &mut GuestMemory<'_>,
        fd: u32,
        offset: u64,
        len: u64,
    ) -> WasiResult<()> {
        let d = self.table.get(fd)?;
        d.require(rights::FD_ALLOCATE)?;
        let Kind::File(file) = &d.kind else {
            return Err(Errno::Badf);
        };
        let end = offset.checked_add(len).ok_or(Errno::Fbig)?;
        if file.metadata()?.len() < end {
            file.set_len(end)?;
        }
        Ok(())
    }

    pub(crate) fn fd_close(&mut self, _mem: &mut GuestMemory<'_>, fd: u32) -> WasiResult<()> {
        self.table.remove(fd).map(drop)
    }

    pub(crate) fn fd_datasync(&mut self, _mem: &mut GuestMemory<'_>, fd: u32) -> WasiResult<()> {
        let d = self.table.get(fd)?;
        d.require(rights::FD_DATASYNC)?;
        match &d.kind {
            Kind::File(f) => Ok(f.sync_data()?),
            Kind::Dir(dir) => Ok(rustix::fs::fdatasync(&dir.dir).map_err(std::io::Error::from)?),
            _ => Err(Errno::Inval),
        }
    }

    pub(crate) fn fd_sync(&mut self, _mem: &mut GuestMemory<'_>, fd: u32) -> WasiResult<()> {
        let d = self.table.get(fd)?;
        d.require(rights::FD_SYNC)?;
        match &d.kind {
            Kind::File(f) => Ok(f.sync_all()?),
            Kind::Dir(dir) => Ok(rustix::fs::fsync(&dir.dir).map_err(std::io::Error::from)?),
            _ => Err(Errno::Inval),
        }
    }

    pub(crate) fn fd_fdstat_get(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: u32,
        out: u32,
    ) -> WasiResult<()> {
        let d = self.table.get(fd)?;
        let mut b = [0u8; 24];
        b[0] = d.filetype(fd);
        b[2..4].copy_from_slice(&d.flags.to_le_bytes());
        b[8..16].copy_from_slice(&d.rights_base.to_le_bytes());
        b[16..24].copy_from_slice(&d.rights_inheriting.to_le_bytes());
        mem.write(out, &b)
    }

    pub(crate) fn fd_fdstat_set_flags(
        &mut self,
        _mem: &mut GuestMemory<'_>,
        fd: u32,
        flags: u32,
    ) -> WasiResult<()> {
        let d = self.table.get_mut(fd)?;
        d.require(rights::FD_FDSTAT_SET_FLAGS)?;
        let flags = u16::try_from(flags).map_err(|_| Errno::Inval)?;
        let sync = fdflags::DSYNC | fdflags::RSYNC | fdflags::SYNC;
        if flags & !(fdflags::APPEND | fdflags::NONBLOCK | sync) != 0 {
            return Err(Errno::Inval);
        }
        if (flags ^ d.flags) & sync != 0 {
            // Linux cannot switch synchronized I/O on or off after opening.
            return Err(Errno::Notsup);
        }
        let nonblocking = flags & fdflags::NONBLOCK != 0;
        match &d.kind {
            Kind::Stream(s) => s.set_nonblocking(nonblocking)?,
            Kind::Listener(l) => l.set_nonblocking(nonblocking)?,
            _ => {}
        }
        d.flags = flags;
        Ok(())
    }

    pub(crate) fn fd_fdstat_set_rights(
        &mut self,
        _mem: &mut GuestMemory<'_>,
        fd: u32,
        base: u64,
        inheriting: u64,
    ) -> WasiResult<()> {
        let d = self.table.get_mut(fd)?;
        // Rights can only be dropped, never gained.
        if base & !d.rights_base != 0 || inheriting & !d.rights_inheriting != 0 {
            return Err(Errno::Notcapable);
        }
        d.rights_base = base;
        d.rights_inheriting = inheriting;
        Ok(())
    }

    pub(crate) fn fd_filestat_get(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: u32,
        out: u32,
    ) -> WasiResult<()> {
        let d = self.table.get(fd)?;
        d.require(rights::FD_FILESTAT_GET)?;
        let stat = match &d.kind {
            Kind::File(f) => filestat_of_std(&f.metadata()?),
            Kind::Dir(dir) => filestat_of_cap(&dir.dir.dir_metadata()?),
            _ => Filestat {
                dev: 0,
                ino: 0,
                filetype: d.filetype(fd),
                nlink: 1,
                size: 0,
                atim: 0,
                mtim: 0,
                ctim: 0,
            },
        };
        stat.write(mem, out)
    }

    pub(crate) fn fd_filestat_set_size(
        &mut self,
        _mem: &mut GuestMemory<'_>,
        fd: u32,
        size: u64,
    ) -> WasiResult<()> {
        let d = self.table.get(fd)?;
        d.require(rights::FD_FILESTAT_SET_SIZE)?;
        match &d.kind {
            Kind::File(f) => Ok(f.set_len(size)?),
            Kind::Dir(_) => Err(Errno::Isdir),
            _ => Err(Errno::Inval),
        }
    }

    pub(crate) fn fd_filestat_set_times(
        &mut self,
        _mem: &mut GuestMemory<'_>,
        fd: u32,
        atim: u64,
        mtim: u64,
        flags: u32,
    ) -> WasiResult<()> {
        let d = self.table.get(fd)?;
        d.require(rights::FD_FILESTAT_SET_TIMES)?;
        let (a, m) = time_specs(atim, mtim, flags as u16)?;
        use fs_set_times::SetTimes;
        match &d.kind {
            Kind::File(f) => Ok(SetTimes::set_times(f, a, m)?),
            Kind::Dir(dir) => Ok(SetTimes::set_times(&dir.dir, a, m)?),
            _ => Err(Errno::Inval),
        }
    }

    pub(crate) fn fd_pread(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: u32,
        iovs: u32,
        count: u32,
        offset: u64,
        nread: u32,
    ) -> WasiResult<()> {
        let d = self.table.get(fd)?;
        d.require(rights::FD_READ | rights::FD_SEEK)?;
        let file = d.seekable_file()?;
        let iovs = mem.iovecs(iovs, count)?;
        let mut total = 0usize;
        let mut pos = offset;
        for (ptr, len) in iovs {
            if len == 0 {
                continue;
            }
            let buf = mem.slice_mut(ptr, len)?;
            let n = file.read_at(buf, pos)?;
            total += n;
            pos = pos.saturating_add(n as u64);
            if n < len as usize {
                break;
            }
        }
        mem.set_u32(nread, total as u32)
    }

    pub(crate) fn fd_pwrite(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: u32,
        iovs: u32,
        count: u32,
        offset: u64,
        nwritten: u32,
    ) -> WasiResult<()> {
        let d = self.table.get(fd)?;
        d.require(rights::FD_WRITE | rights::FD_SEEK)?;
        let file = d.seekable_file()?;
        let iovs = mem.iovecs(iovs, count)?;
        // Straight from guest memory, in bounded chunks: never a copy of
        // the whole payload.
        let mut pos = offset;
        let written = write_iovecs(mem, &iovs, |chunk| {
            let n = file.write_at(chunk, pos)?;
            pos = pos.checked_add(n as u64).ok_or(Errno::Fbig)?;
            Ok(n)
        })?;
        mem.set_u32(nwritten, written as u32)
    }

    pub(crate) fn fd_prestat_get(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: u32,
        out: u32,
    ) -> WasiResult<()> {
        match &self.table.get(fd)?.kind {
            Kind::Dir(dir) => match &dir.preopen {
                Some(name) => {
                    mem.set_u32(out, 0)?;
                    mem.set_u32(out + 4, name.len() as u32)
                }
                // wasi-libc scans descriptors up from 3 until EBADF.
                None => Err(Errno::Badf),
            },
            _ => Err(Errno::Badf),
        }
    }

    pub(crate) fn fd_prestat_dir_name(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: u32,
        path: u32,
        len: u32,
    ) -> WasiResult<()> {
        match &self.table.get(fd)?.kind {
            Kind::Dir(dir) => {
                let name = dir.preopen.as_ref().ok_or(Errno::Badf)?;
                if (len as usize) < name.len() {
                    return Err(Errno::Nametoolong);
                }
                mem.write(path, name.as_bytes())
            }
            _ => Err(Errno::Badf),
        }
    }

    pub(crate) fn fd_read(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: u32,
        iovs: u32,
        count: u32,
        nread: u32,
    ) -> WasiResult<()> {
        let d = self.table.get_mut(fd)?;
        d.require(rights::FD_READ)?;
        match &d.kind {
            Kind::Input(_) | Kind::File(_) | Kind::Stream(_) => {}
            Kind::Dir(_) => return Err(Errno::Isdir),
            _ => return Err(Errno::Badf),
        }
        let iovs = mem.iovecs(iovs, count)?;
        let mut total = 0usize;
        for (ptr, len) in iovs {
            // An empty buffer asks for nothing: it must not wait for input.
            if len == 0 {
                continue;
            }
            let buf = mem.slice_mut(ptr, len)?;
            let n = match &mut d.kind {
                Kind::Input(InputStream::Null) => 0,
                Kind::Input(InputStream::Memory(p)) => p.read(buf),
                Kind::Input(InputStream::Inherit) => std::io::stdin().lock().read(buf)?,
                Kind::File(f) => f.read(buf)?,
                Kind::Stream(s) => s.read(buf)?,
                _ => return Err(Errno::Badf),
            };
            total += n;
            // A short read ends the call, as `readv` does.
            if n < len as usize {
                break;
            }
        }
        mem.set_u32(nread, total as u32)
    }

    pub(crate) fn fd_write(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: u32,
        iovs: u32,
        count: u32,
        nwritten: u32,
    ) -> WasiResult<()> {
        let d = self.table.get_mut(fd)?;
        d.require(rights::FD_WRITE)?;
        let iovs = mem.iovecs(iovs, count)?;
        let append = d.flags & fdflags::APPEND != 0;
        let written = write_iovecs(mem, &iovs, |chunk| match &mut d.kind {
            Kind::Output(out) => Ok(out.write(fd, chunk)?),
            Kind::File(f) => {
                if append {
                    f.seek(SeekFrom::End(0))?;
                }
                Ok(f.write(chunk)?)
            }
            Kind::Stream(s) => Ok(s.write(chunk)?),
            Kind::Dir(_) => Err(Errno::Isdir),
            _ => Err(Errno::Badf),
        })?;
        mem.set_u32(nwritten, written as u32)
    }

    pub(crate) fn fd_readdir(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: u32,
        buf: u32,
        len: u32,
        cookie: u64,
        used: u32,
    ) -> WasiResult<()> {
        let d = self.table.get(fd)?;
        d.require(rights::FD_READDIR)?;
        let Kind::Dir(dir) = &d.kind else {
            return Err(Errno::Notdir);
        };
        use cap_std::fs::MetadataExt;
        // Entries in a stable order, `.` and `..` first; the cookie is the
        // index of the next entry.
        let mut entries: Vec<(Vec<u8>, u64, u8)> = Vec::new();
        let self_ino = dir.dir.dir_metadata().map(|m| m.ino()).unwrap_or(0);
        entries.push((b".".to_vec(), self_ino, filetype::DIRECTORY));
        entries.push((b"..".to_vec(), 0, filetype::DIRECTORY));
        let mut rest: Vec<(Vec<u8>, u64, u8)> = Vec::new();
        for entry in dir.dir.entries()? {
            let entry = entry?;
            let name = entry.file_name().into_encoded_bytes();
            let (ino, ty) = match entry.metadata() {
                Ok(m) => (m.ino(), super::filestat_of_cap(&m).filetype),
                Err(_) => (0, filetype::UNKNOWN),
            };
            rest.push((name, ino, ty));
        }
        rest.sort();
        entries.extend(rest);

        let out = mem.slice_mut(buf, len)?;
        let mut pos = 0usize;
        for (i, (name, ino, ty)) in entries
            .iter()
            .enumerate()
            .skip(cookie.min(usize::MAX as u64) as usize)
        {
            let mut dirent = [0u8; 24];
            dirent[0..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
            dirent[8..16].copy_from_slice(&ino.to_le_bytes());
            dirent[16..20].copy_from_slice(&(name.len() as u32).to_le_bytes());
            dirent[20] = *ty;
            // An entry that does not fit is cut off: a full buffer tells
            // the guest to call again with a larger one.
            for piece in [&dirent[..], &name[..]] {
                let n = piece.len().min(out.len() - pos);
                out[pos..pos + n].copy_from_slice(&piece[..n]);
                pos += n;
            }
            if pos == out.len() {
                break;
            }
        }
        mem.set_u32(used, pos as u32)
    }

    pub(crate) fn fd_renumber(
        &mut self,
        _mem: &mut GuestMemory<'_>,
        from: u32,
        to: u32,
    ) -> WasiResult<()> {
        self.table.get(to)?;
        let d = self.table.remove(from)?;
        self.table.insert_at(to, d);
        Ok(())
    }

    pub(crate) fn fd_seek(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: u32,
        offset: i64,
        whence: u32,
        out: u32,
    ) -> WasiResult<()> {
        let d = self.table.get_mut(fd)?;
        // Streams cannot seek, whatever their rights say.
        let Kind::File(f) = &mut d.kind else {
            return Err(match d.kind {
                Kind::Dir(_) => Errno::Isdir,
                _ => Errno::Spipe,
            });
        };
        let tell_only = offset == 0 && whence == 1;
        let needed = if tell_only {
            rights::FD_TELL | rights::FD_SEEK
        } else {
            rights::FD_SEEK
        };
        if d.rights_base & needed == 0 {
            return Err(Errno::Notcapable);
        }
        let pos = match whence {
            0 => SeekFrom::Start(u64::try_from(offset).map_err(|_| Errno::Inval)?),
            1 => SeekFrom::Current(offset),
            2 => SeekFrom::End(offset),
            _ => return Err(Errno::Inval),
        };
        let new = f.seek(pos)?;
        mem.set_u64(out, new)
    }

    pub(crate) fn fd_tell(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: u32,
        out: u32,
    ) -> WasiResult<()> {
        let d = self.table.get_mut(fd)?;
        // As `fd_seek`: a directory has no position to tell (`EISDIR`, as
        // for every data operation on one), a stream or socket cannot seek.
        let Kind::File(f) = &mut d.kind else {
            return Err(match d.kind {
                Kind::Dir(_) => Errno::Isdir,
                _ => Errno::Spipe,
            });
        };
        if d.rights_base & rights::FD_TELL == 0 {
            return Err(Errno::Notcapable);
        }
        let pos = f.stream_position()?;
        mem.set_u64(out, pos)
    }
}
