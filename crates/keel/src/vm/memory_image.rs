//! Copy-on-write images of linear memories' initial contents.
//!
//! When every active data segment of a defined memory has a constant offset
//! and fits the memory's minimum size, the memory's initial contents are the
//! same for every instance. They are written once into a sealed, anonymous
//! in-memory file (`memfd`), and each instance maps that file privately over
//! its memory: instantiating costs one `mmap` instead of copying the data,
//! pages are shared between instances until one writes to them, and
//! `madvise(MADV_DONTNEED)` restores the image on slot reuse.

use keel_environ::{DataMode, DefinedMemoryIndex, EntityRef, Module};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd};
use std::os::unix::fs::FileExt;

use super::mmap::page_size;

/// The initial contents of one memory, as a file to map at `start`.
///
/// Invariant: `start` and `len` are multiples of the page size, and
/// `start + len` is at most the memory's minimum size in bytes, so the image
/// always lies in the part of the memory that is accessible from the start.
#[derive(Debug)]
pub struct MemoryImage {
    file: File,
    start: usize,
    len: usize,
}

/// Groups `segments` (offset, bytes) into runs whose segments lie at most
/// `gap` bytes apart: each run's start and end offsets and the indices of
/// its segments, in the order given.
fn runs(segments: &[(usize, &[u8])], gap: usize) -> Vec<(usize, usize, Vec<usize>)> {
    let mut by_offset: Vec<usize> = (0..segments.len()).collect();
    by_offset.sort_by_key(|&i| segments[i].0);
    let mut runs: Vec<(usize, usize, Vec<usize>)> = Vec::new();
    for i in by_offset {
        let (start, bytes) = segments[i];
        let end = start + bytes.len();
        match runs.last_mut() {
            Some(run) if start <= run.1.saturating_add(gap) => {
                run.1 = run.1.max(end);
                run.2.push(i);
            }
            _ => runs.push((start, end, vec![i])),
        }
    }
    for run in &mut runs {
        // Applied in the module's order: a later segment overwrites.
        run.2.sort_unstable();
    }
    runs
}

/// The bytes of one run of [`runs`]: zeros, then its segments applied.
fn run_bytes(
    segments: &[(usize, &[u8])],
    (start, end, members): &(usize, usize, Vec<usize>),
) -> Vec<u8> {
    let mut bytes = vec![0; end - start];
    for &i in members {
        let (offset, data) = segments[i];
        let at = offset - start;
        bytes[at..at + data.len()].copy_from_slice(data);
    }
    bytes
}

/// Segments closer than this are written together, zeros between them.
const COALESCE_GAP: usize = 256;

impl MemoryImage {
    /// The image of defined memory `def`, or `None` when its data segments
    /// do not allow one (or there is no data at all); such a memory is
    /// initialized by copying, as the spec describes.
    ///
    /// Errors only if the system refuses to create the file; callers then
    /// fall back to copying too.
    pub fn build(env: &Module, def: DefinedMemoryIndex) -> std::io::Result<Option<MemoryImage>> {
        let memory = env.memory_index(def);
        let ty = &env.memories[memory];
        let minimum_bytes = ty.minimum.saturating_mul(ty.page_size());
        let mut segments = Vec::new();
        for (index, data) in env.datas.iter() {
            let DataMode::Active { memory: m, offset } = &data.mode else {
                continue;
            };
            if *m != memory {
                continue;
            }
            // A segment whose offset is only known at instantiation (a
            // `global.get`), or that does not fit, must be applied in order
            // with its bounds check: no image for this memory.
            let Some(offset) = offset.as_constant_offset() else {
                return Ok(None);
            };
            let bytes = env.data_bytes(index);
            let fits = offset
                .checked_add(bytes.len() as u64)
                .is_some_and(|end| end <= minimum_bytes);
            if !fits {
                return Ok(None);
            }
            if !bytes.is_empty() {
                segments.push((offset as usize, bytes));
            }
        }
        let Some(first) = segments.iter().map(|(o, _)| *o).min() else {
            return Ok(None);
        };
        let end = segments
            .iter()
            .map(|(o, b)| o + b.len())
            .max()
            .unwrap_or(first);
        let page = page_size();
        let start = first / page * page;
        // Rounding `end` up to a host page keeps it inside the host pages
        // a memory of the minimum size makes accessible (the minimum
        // itself, with 64 KiB pages; with one-byte pages the image's tail
        // past the minimum is zeros, which the memory has there anyway).
        let len = end.div_ceil(page) * page - start;

        let file = create_sealable_file()?;
        file.set_len(len as u64)?;
        // One write per run of nearby segments, not one per segment: a big
        // program has tens of thousands. One run's buffer at a time.
        for run in runs(&segments, COALESCE_GAP) {
            file.write_all_at(&run_bytes(&segments, &run), (run.0 - start) as u64)?;
        }
        seal(&file)?;
        Ok(Some(MemoryImage { file, start, len }))
    }

    /// The byte offset in the memory where the image begins.
    pub fn start(&self) -> usize {
        self.start
    }

    /// The image's length in bytes.
    pub fn byte_len(&self) -> usize {
        self.len
    }

    /// The file to map.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// Images of every defined memory of `env`, built now. A memory whose
    /// image cannot be built gets `None` and is initialized by copying.
    pub fn build_all(env: &Module) -> Box<[Option<std::sync::Arc<MemoryImage>>]> {
        let defined = env.memories.len() - env.num_imported_memories;
        (0..defined)
            .map(|i| {
                MemoryImage::build(env, DefinedMemoryIndex::new(i))
                    .ok()
                    .flatten()
                    .map(std::sync::Arc::new)
            })
            .collect()
    }
}

fn create_sealable_file() -> std::io::Result<File> {
    // SAFETY: the name is a NUL-terminated literal; the call creates a new
    // descriptor that nothing else owns.
    let fd = unsafe {
        libc::memfd_create(
            c"keel-memory-image".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor we own exclusively.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Forbids any later change to the file's size or contents, so an image
/// mapped into many instances can never change under them.
fn seal(file: &File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: `fcntl` on a descriptor we own, with an integer argument.
    let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{run_bytes, runs};

    fn coalesce(segments: &[(usize, &[u8])], gap: usize) -> Vec<(usize, Vec<u8>)> {
        runs(segments, gap)
            .iter()
            .map(|run| (run.0, run_bytes(segments, run)))
            .collect()
    }

    #[test]
    fn coalesced_runs_hold_the_segments_applied_in_order() {
        let segments: [(usize, &[u8]); 4] =
            [(10, b"aaaa"), (4, b"bbbbbbbb"), (100, b"far"), (11, b"c")];
        let runs = coalesce(&segments, 8);
        assert_eq!(
            runs,
            vec![(4, b"bbbbbbbcaa".to_vec()), (100, b"far".to_vec())]
        );
        // Within the gap, zeros fill between segments.
        let runs = coalesce(&segments, 100);
        let mut expected = b"bbbbbbbcaa".to_vec();
        expected.resize(96, 0);
        expected.extend_from_slice(b"far");
        assert_eq!(runs, vec![(4, expected)]);
    }
}
