//! `path_*`: operations on paths beneath a directory descriptor.
//!
//! Every path is resolved by cap-std beneath the directory's handle:
//! `..` past the directory, absolute paths and symlinks that lead outside
//! fail (with `ENOTCAPABLE`) instead of escaping, and the check and the use
//! are one operation, so a concurrent rename cannot race them apart.

use super::{filestat_of_cap, time_specs};
use crate::WasiCtx;
use crate::abi::{GuestMemory, LOOKUP_SYMLINK_FOLLOW, PATH_MAX, fdflags, oflags, rights};
use crate::errno::{Errno, WasiResult};
use crate::table::{Descriptor, DirDesc, Kind};
use cap_fs_ext::{DirExt, FollowSymlinks, OpenOptionsFollowExt, OpenOptionsMaybeDirExt};
use cap_std::fs::OpenOptions;

/// A guest path: empty is `ENOENT` (as POSIX says), a NUL byte `EINVAL`,
/// [`PATH_MAX`] bytes or more `ENAMETOOLONG` (as Linux answers, and before
/// cap-std copies it).
fn path<'m>(mem: &'m GuestMemory<'_>, ptr: u32, len: u32) -> WasiResult<&'m str> {
    if len >= PATH_MAX {
        return Err(Errno::Nametoolong);
    }
    let p = mem.str(ptr, len)?;
    if p.is_empty() {
        return Err(Errno::Noent);
    }
    if p.contains('\0') {
        return Err(Errno::Inval);
    }
    Ok(p)
}

/// Rights whose calls need a file opened for writing on the host
/// (`ftruncate` and `fallocate` refuse a read-only descriptor), though they
/// write no data. Unlike `FD_WRITE` they do not make a directory
/// unopenable: programs open directories with every right they hold, and a
/// directory's rights pass these on to the files beneath it.
const WRITE_MODE_RIGHTS: u64 = rights::FD_ALLOCATE | rights::FD_FILESTAT_SET_SIZE;

impl WasiCtx {
    pub(crate) fn path_create_directory(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: u32,
        p: u32,
        len: u32,
    ) -> WasiResult<()> {
        let dir = self.table.dir(fd, rights::PATH_CREATE_DIRECTORY)?;
        Ok(dir.create_dir(path(mem, p, len)?)?)
    }

    pub(crate) fn path_filestat_get(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: u32,
        flags: u32,
        p: u32,
        len: u32,
        out: u32,
    ) -> WasiResult<()> {
        let dir = self.table.dir(fd, rights::PATH_FILESTAT_GET)?;
        let p = path(mem, p, len)?;
        let m = if flags & LOOKUP_SYMLINK_FOLLOW != 0 {
            dir.metadata(p)?
        } else {
            dir.symlink_metadata(p)?
        };
        filestat_of_cap(&m).write(mem, out)
    }

    #[allow(clippy::too_many_arguments, reason = "the WASI signature")]
    pub(crate) fn path_filestat_set_times(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: u32,
        flags: u32,
        p: u32,
        len: u32,
        atim: u64,
        mtim: u64,
        fst: u32,
    ) -> WasiResult<()> {
        let dir = self.table.dir(fd, rights::PATH_FILESTAT_SET_TIMES)?;
        let p = path(mem, p, len)?;
        let (a, m) = time_specs(atim, mtim, fst as u16)?;
        let to_cap = |t: Option<fs_set_times::SystemTimeSpec>| {
            t.map(|t| match t {
                fs_set_times::SystemTimeSpec::SymbolicNow => {
                    cap_fs_ext::SystemTimeSpec::SymbolicNow
                }
                fs_set_times::SystemTimeSpec::Absolute(t) => {
                    cap_fs_ext::SystemTimeSpec::Absolute(cap_std::time::SystemTime::from_std(t))
                }
            })
        };
        if flags & LOOKUP_SYMLINK_FOLLOW != 0 {
            dir.set_times(p, to_cap(a), to_cap(m))?;
        } else {
            dir.set_symlink_times(p, to_cap(a), to_cap(m))?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments, reason = "the WASI signature")]
    pub(crate) fn path_link(
        &mut self,
        mem: &mut GuestMemory<'_>,
        old_fd: u32,
        old_flags: u32,
        old: u32,
        old_len: u32,
        new_fd: u32,
        new: u32,
        new_len: u32,
    ) -> WasiResult<()> {
        let from = self.table.dir(old_fd, rights::PATH_LINK_SOURCE)?;
        let to = self.table.dir(new_fd, rights::PATH_LINK_TARGET)?;
        // The link is made to the path itself: following a final symlink
        // could name a file outside the directory. Asking to follow it is
        // refused (`EINVAL`, as Wasmtime answers) rather than silently
        // ignored, so that a program cannot believe it linked the target.
        if old_flags & LOOKUP_SYMLINK_FOLLOW != 0 {
            return Err(Errno::Inval);
        }
        Ok(from.hard_link(path(mem, old, old_len)?, to, path(mem, new, new_len)?)?)
    }

    #[allow(clippy::too_many_arguments, reason = "the WASI signature")]
    pub(crate) fn path_open(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: u32,
        dirflags: u32,
        p: u32,
        len: u32,
        oflags: u32,
        base: u64,
        inheriting: u64,
        fdflags: u32,
        out: u32,
    ) -> WasiResult<()> {
        let parent = self.table.get(fd)?;
        parent.require(rights::PATH_OPEN)?;
        let Kind::Dir(dir) = &parent.kind else {
            return Err(Errno::Notdir);
        };
        // A descriptor opened through a directory has at most the rights
        // the directory passes on.
        if base & !parent.rights_inheriting != 0 || inheriting & !parent.rights_inheriting != 0 {
            return Err(Errno::Notcapable);
        }
        let oflags = u16::try_from(oflags).map_err(|_| Errno::Inval)?;
        let fdflags = u16::try_from(fdflags).map_err(|_| Errno::Inval)?;
        let creating = oflags & oflags::CREAT != 0;
        if creating {
            parent.require(rights::PATH_CREATE_FILE)?;
        }
        if oflags & oflags::TRUNC != 0 {
            parent.require(rights::PATH_FILESTAT_SET_SIZE)?;
        }
        let p = path(mem, p, len)?;
        let follow = if dirflags & LOOKUP_SYMLINK_FOLLOW != 0 {
            FollowSymlinks::Yes
        } else {
            FollowSymlinks::No
        };

        let want_dir = oflags & oflags::DIRECTORY != 0;
        // Writing data (or truncating) is what a directory cannot be opened
        // for: `EISDIR`, as `open(O_RDWR)` of a directory is. The rights a
        // directory merely passes on (`FD_DATASYNC`, `FD_ALLOCATE`, ...)
        // are no reason to refuse it: Rust's std and wasi-libc open a
        // preopen with `path_open(fd, ".", O_DIRECTORY, <its own rights>)`.
        let write_data = base & rights::FD_WRITE != 0
            || oflags & oflags::TRUNC != 0
            || fdflags & fdflags::APPEND != 0;
        if want_dir && (creating || write_data) {
            return Err(Errno::Isdir);
        }
        // Write mode when opening a file: to write data, to create it, or
        // for the rights that need it. Never for a directory.
        let write_mode = !want_dir && (write_data || creating || base & WRITE_MODE_RIGHTS != 0);
        let read = base & (rights::FD_READ | rights::FD_READDIR) != 0 || !write_mode;
        let mut opts = OpenOptions::new();
        opts.read(read)
            .write(write_mode)
            .truncate(oflags & oflags::TRUNC != 0)
            .follow(follow)
            .maybe_dir(true);
        // Synchronized I/O is a property of the open file.
        let sync_flags = fdflags & (fdflags::DSYNC | fdflags::RSYNC | fdflags::SYNC);
        let mut custom = 0;
        if sync_flags & fdflags::DSYNC != 0 {
            custom |= libc::O_DSYNC;
        }
        if sync_flags & (fdflags::SYNC | fdflags::RSYNC) != 0 {
            custom |= libc::O_SYNC;
        }
        {
            use cap_std::fs::OpenOptionsExt;
            opts.custom_flags(custom);
        }
        if creating {
            if oflags & oflags::EXCL != 0 {
                opts.create_new(true);
            } else {
                opts.create(true);
            }
        }
        // Whether the path is a directory is learnt by opening it (a check
        // first would race with renames). When write mode was asked only for
        // the rights and the host answers `EISDIR`, the path is opened again
        // to read: it is a directory, and those rights do not apply to it.
        let only_for_rights = write_mode && !write_data && !creating;
        let (file, reopened) = match dir.dir.open_with(p, &opts) {
            Ok(f) => (f, false),
            Err(e) => match Errno::from(e) {
                Errno::Isdir if only_for_rights => {
                    (dir.dir.open_with(p, opts.read(true).write(false))?, true)
                }
                e => return Err(e),
            },
        };
        let file = file.into_std();
        let is_dir = file.metadata()?.is_dir();
        if want_dir && !is_dir {
            return Err(Errno::Notdir);
        }
        if is_dir && write_mode && !reopened {
            return Err(Errno::Isdir);
        }
        if reopened && !is_dir {
            // The directory was replaced by a file between the two opens:
            // answer as the first open did.
            return Err(Errno::Isdir);
        }
        let kind = if is_dir {
            Kind::Dir(DirDesc {
                dir: cap_std::fs::Dir::from_std_file(file),
                preopen: None,
            })
        } else {
            Kind::File(file)
        };
        let (kind_base, kind_inheriting) = if is_dir {
            (rights::DIRECTORY, rights::DIRECTORY | rights::FILE)
        } else {
            (rights::FILE, 0)
        };
        let mut d = Descriptor::new(
            kind,
            base & kind_base & parent.rights_inheriting,
            inheriting & kind_inheriting & parent.rights_inheriting,
        );
        d.flags = fdflags & (fdflags::APPEND | fdflags::NONBLOCK) | sync_flags;
        let new_fd = self.table.try_push(d)?;
        mem.set_u32(out, new_fd)
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "mirrors the WASI signature one to one"
    )]
    pub(crate) fn path_readlink(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: u32,
        p: u32,
        len: u32,
        buf: u32,
        buf_len: u32,
        used: u32,
    ) -> WasiResult<()> {
        let dir = self.table.dir(fd, rights::PATH_READLINK)?;
        let target = dir.read_link_contents(path(mem, p, len)?)?;
        let bytes = target.into_os_string().into_encoded_bytes();
        let n = bytes.len().min(buf_len as usize);
        mem.write(buf, &bytes[..n])?;
        mem.set_u32(used, n as u32)
    }

    pub(crate) fn path_remove_directory(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: u32,
        p: u32,
        len: u32,
    ) -> WasiResult<()> {
        let dir = self.table.dir(fd, rights::PATH_REMOVE_DIRECTORY)?;
        Ok(dir.remove_dir(path(mem, p, len)?)?)
    }

    #[allow(clippy::too_many_arguments, reason = "the WASI signature")]
    pub(crate) fn path_rename(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: u32,
        old: u32,
        old_len: u32,
        new_fd: u32,
        new: u32,
        new_len: u32,
    ) -> WasiResult<()> {
        let from = self.table.dir(fd, rights::PATH_RENAME_SOURCE)?;
        let to = self.table.dir(new_fd, rights::PATH_RENAME_TARGET)?;
        Ok(from.rename(path(mem, old, old_len)?, to, path(mem, new, new_len)?)?)
    }

    /// `path_symlink`. The link may point anywhere relative, but not to an
    /// absolute path: following one always fails inside the sandbox, and
    /// it would be a trap for the host's own tools later.
    pub(crate) fn path_symlink(
        &mut self,
        mem: &mut GuestMemory<'_>,
        old: u32,
        old_len: u32,
        fd: u32,
        new: u32,
        new_len: u32,
    ) -> WasiResult<()> {
        let dir = self.table.dir(fd, rights::PATH_SYMLINK)?;
        if old_len >= PATH_MAX {
            return Err(Errno::Nametoolong);
        }
        let target = mem.str(old, old_len)?;
        if target.starts_with('/') {
            return Err(Errno::Notcapable);
        }
        if target.is_empty() {
            return Err(Errno::Noent);
        }
        Ok(dir.symlink(target, path(mem, new, new_len)?)?)
    }

    pub(crate) fn path_unlink_file(
        &mut self,
        mem: &mut GuestMemory<'_>,
        fd: u32,
        p: u32,
        len: u32,
    ) -> WasiResult<()> {
        let dir = self.table.dir(fd, rights::PATH_UNLINK_FILE)?;
        Ok(dir.remove_file_or_symlink(path(mem, p, len)?)?)
    }
}
