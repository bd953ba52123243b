//! Precompiled modules: the bytes `Module::serialize` and
//! `Engine::precompile_module` write and `Module::deserialize*` read.
//!
//! ```text
//!   magic "\0keelaot"   format version (u32)   Keel's version (u16 length, bytes)
//!   fingerprint: u32 count, then (u16 length, name, u16 length, value) each
//!   wasm length, tables length, text offset, text length (u64 each)
//!   the module's wasm bytes, without function bodies and custom sections
//!     but `name` (see `artifact_wasm`)
//!   the code tables (`CompiledModuleInfo::encode`; the trap and address
//!     tables packed, read in place) | zeros up to the text offset
//!   the text section (at a multiple of TEXT_ALIGN, so it can be mapped)
//!   trailer: checksum of everything before it (u64, see `checksum`), a
//!            signed flag (0 or 1), signature: HMAC-SHA-256 of the SHA-256s
//!            of the 256 KiB pieces of everything before it (zeros when
//!            unsigned; see `signature_mac`)
//! ```
//!
//! Everything is little-endian. The fingerprint is the compiler's list of
//! code-shaping settings plus the engine's wasm features: an artifact loads
//! only into an engine whose list is the same, and the error names the
//! first setting that differs. The text holds no host address: load-time
//! relocations are zero in the artifact and written when it is loaded.
//!
//! The checksum catches truncation and corruption, not tampering: whoever
//! can write the artifact can recompute it (so a fast non-cryptographic
//! hash, XXH3, serves as well as a cryptographic one would, at a tenth of
//! the time; with AVX2 it hashes 1.7 times as fast as CRC-32). The signature, made with the
//! engine's [`Config::artifact_key`](crate::Config::artifact_key), is what
//! lets [`Module::deserialize_authenticated`](crate::Module) trust bytes
//! from storage the host does not control.

use crate::Engine;
use hmac::{Hmac, Mac};
use keel_environ::{CompiledModuleInfo, InfoDecodeError, SharedBytes};
use sha2::Sha256;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

const MAGIC: &[u8; 8] = b"\0keelaot";
const WASM_MAGIC: &[u8; 4] = b"\0asm";
/// Bumped whenever the layout above, the encoding of the code tables, the
/// checksum or the signature (their hashes, their piece sizes), or the
/// layout of what the code reads (`VMOffsets`) changes.
const FORMAT_VERSION: u32 = 7;
/// The text's alignment in the file: the largest page size Keel runs on,
/// so that the text can be mapped from the file directly.
pub(crate) const TEXT_ALIGN: usize = 64 << 10;
/// The checksum, the signed flag, HMAC-SHA-256.
const TRAILER_LEN: usize = 8 + 1 + 32;

/// Why bytes are not a loadable artifact for an engine.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArtifactError {
    /// A WebAssembly module rather than a precompiled one.
    #[error(
        "this is a WebAssembly module, not a precompiled artifact (compile it with `Module::new`)"
    )]
    IsWasm,
    /// Not made by Keel.
    #[error("not a Keel precompiled artifact (no `\\0keelaot` header)")]
    NotAnArtifact,
    /// Shorter than its own header says.
    #[error("the artifact is truncated")]
    Truncated,
    /// The checksum does not match: truncated or corrupt.
    #[error("the artifact's checksum does not match: it is corrupt or truncated")]
    Checksum,
    /// Another layout version.
    #[error("the artifact has format version {found}, this Keel reads version {expected}")]
    FormatVersion {
        /// The artifact's.
        found: u32,
        /// This build's.
        expected: u32,
    },
    /// Made by another version of Keel.
    #[error("the artifact was made by Keel {artifact}, this is Keel {this}")]
    KeelVersion {
        /// The artifact's.
        artifact: String,
        /// This build's.
        this: String,
    },
    /// Compiled under different settings (target, CPU features, flags,
    /// memory layout, features).
    #[error(
        "the artifact was compiled with {setting}={artifact}, this engine has {setting}={engine}"
    )]
    Fingerprint {
        /// The first setting that differs.
        setting: String,
        /// Its value in the artifact (`<absent>` if missing).
        artifact: String,
        /// Its value in this engine (`<absent>` if missing).
        engine: String,
    },
    /// Authentication was asked of an engine without a key.
    #[error("this engine has no artifact key (set one with `Config::artifact_key`)")]
    NoKey,
    /// Authentication was asked and the artifact is not signed.
    #[error("the artifact is not signed")]
    Unsigned,
    /// The signature is not this engine's key's.
    #[error("the artifact's signature does not match this engine's key")]
    BadSignature,
    /// Inconsistent sections.
    #[error("malformed artifact: {0}")]
    Malformed(&'static str),
    /// The code tables do not decode.
    #[error(transparent)]
    Tables(#[from] InfoDecodeError),
}

/// What an artifact holds, borrowed from its bytes.
pub(crate) struct Parts<'a> {
    /// The module's WebAssembly bytes (its module-level sections).
    pub wasm: &'a [u8],
    /// The code tables; the trap and address tables are read in place
    /// when `decode` was given the bytes' owner.
    pub info: CompiledModuleInfo,
    /// Where the text starts in the artifact (a multiple of [`TEXT_ALIGN`]).
    pub text_offset: usize,
    /// The text section (relocations still zero).
    pub text: &'a [u8],
}

/// Whether `bytes` start like an artifact.
pub(crate) fn is_artifact(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// The settings an artifact must match to load into `engine` (cached as
/// [`Engine::artifact_fingerprint`]).
pub(crate) fn fingerprint(engine: &Engine) -> Vec<(String, String)> {
    let mut entries = engine.compiler().fingerprint();
    entries.push((
        "wasm_features".into(),
        format!("{:#x}", engine.config().features.bits()),
    ));
    entries
}

/// What must be equal for an artifact of one engine to load into another.
pub(crate) fn compatibility(engine: &Engine) -> (u32, &'static str, Vec<(String, String)>) {
    (
        FORMAT_VERSION,
        env!("CARGO_PKG_VERSION"),
        engine.artifact_fingerprint().to_vec(),
    )
}

/// Writes an artifact for `engine`: `text` with the relocation sites that
/// `info` lists cleared, so that no host address leaks into it. `wasm` is
/// the module's, as `Module` keeps it (see `artifact_wasm`).
pub(crate) fn encode(
    engine: &Engine,
    wasm: &[u8],
    info: &CompiledModuleInfo,
    text: &[u8],
) -> Vec<u8> {
    let mut tables = Vec::new();
    info.encode(&mut tables);
    let mut out = Vec::with_capacity(wasm.len() + tables.len() + text.len() + 2 * TEXT_ALIGN);
    out.extend_from_slice(MAGIC);
    out.extend(FORMAT_VERSION.to_le_bytes());
    put_str(&mut out, env!("CARGO_PKG_VERSION"));
    let entries = engine.artifact_fingerprint();
    out.extend((entries.len() as u32).to_le_bytes());
    for (name, value) in entries {
        put_str(&mut out, name);
        put_str(&mut out, value);
    }
    let header_end = out.len() + 4 * 8;
    let text_offset = (header_end + wasm.len() + tables.len()).next_multiple_of(TEXT_ALIGN);
    for n in [wasm.len(), tables.len(), text_offset, text.len()] {
        out.extend((n as u64).to_le_bytes());
    }
    out.extend_from_slice(wasm);
    out.extend_from_slice(&tables);
    out.resize(text_offset, 0);
    out.extend_from_slice(text);
    for r in &info.relocations {
        let at = text_offset + r.offset as usize;
        if let Some(slot) = out.get_mut(at..at + 8) {
            slot.fill(0);
        }
    }
    out.extend(checksum(&out).to_le_bytes());
    match engine.config().artifact_key.as_ref() {
        Some(key) => {
            out.push(1);
            let signature = signature_mac(key.bytes(), &out).finalize().into_bytes();
            out.extend_from_slice(&signature);
        }
        None => {
            out.push(0);
            out.extend([0; 32]);
        }
    }
    out
}

/// What an artifact keeps of a module's bytes: its module-level sections,
/// which loading reads again, and the `name` section (function names, for
/// backtraces); not the function bodies (the artifact has the code: the
/// code section keeps one empty body per function) nor other custom
/// sections (debug information can be most of a module's bytes).
/// Bytes that do not walk as a module (which compiled modules do) are
/// kept whole.
pub(crate) fn artifact_wasm(wasm: &[u8]) -> Vec<u8> {
    fn leb(bytes: &[u8], at: &mut usize) -> Option<usize> {
        let mut value = 0usize;
        for shift in (0..35).step_by(7) {
            let b = *bytes.get(*at)?;
            *at += 1;
            value |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }
    let walk = || -> Option<Vec<u8>> {
        let mut out = wasm.get(..8)?.to_vec();
        let mut at = 8;
        while at < wasm.len() {
            let start = at;
            let id = wasm[at];
            at += 1;
            let len = leb(wasm, &mut at)?;
            let end = at.checked_add(len).filter(|&e| e <= wasm.len())?;
            const CODE: u8 = 10;
            if id == CODE {
                // As many bodies as there are functions (the parser checks
                // it), each empty.
                let mut count_at = at;
                let count = leb(wasm, &mut count_at)?;
                let mut body = Vec::new();
                put_leb(&mut body, count);
                body.resize(body.len() + count, 0);
                out.push(CODE);
                put_leb(&mut out, body.len());
                out.extend(body);
            } else if id != 0 || {
                let mut name_at = at;
                let name_len = leb(wasm, &mut name_at)?;
                wasm.get(name_at..name_at.checked_add(name_len)?) == Some(b"name")
            } {
                out.extend_from_slice(&wasm[start..end]);
            }
            at = end;
        }
        Some(out)
    };
    walk().unwrap_or_else(|| wasm.to_vec())
}

fn put_leb(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Bytes per piece of the signature. Part of the format: changing it
/// changes every signature (bump [`FORMAT_VERSION`]).
const SIGNATURE_PIECE: usize = 256 << 10;
/// From this many bytes on, a second thread hashes half of the pieces:
/// below it, starting the thread costs more than it saves.
const SIGNATURE_SPLIT_LEN: usize = 1 << 20;

/// The signature's MAC over `signed` (the bytes before the signature),
/// ready to finalize or verify: HMAC-SHA-256 of the SHA-256s of its
/// [`SIGNATURE_PIECE`]-byte pieces, in order. As strong as HMAC-SHA-256
/// of the bytes themselves (two inputs with the same digests would be a
/// SHA-256 collision), and the pieces hash on two threads: the SHA-256
/// of a 3 MB artifact is most of the time an authenticated load takes.
fn signature_mac(key: &[u8], signed: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(&piece_digests(signed));
    mac
}

/// The SHA-256s of the [`SIGNATURE_PIECE`]-byte pieces of `bytes`,
/// concatenated; the later half hashed on a thread of its own when
/// `bytes` is long enough to gain by it.
fn piece_digests(bytes: &[u8]) -> Vec<u8> {
    fn hash_into(pieces: std::slice::Chunks<'_, u8>, out: &mut [u8]) {
        for (piece, digest) in pieces.zip(out.chunks_mut(32)) {
            digest.copy_from_slice(&<Sha256 as sha2::Digest>::digest(piece));
        }
    }
    let count = bytes.len().div_ceil(SIGNATURE_PIECE);
    let mut out = vec![0; 32 * count];
    let half = count / 2;
    if bytes.len() < SIGNATURE_SPLIT_LEN {
        hash_into(bytes.chunks(SIGNATURE_PIECE), &mut out);
        return out;
    }
    let (first, second) = bytes.split_at(half * SIGNATURE_PIECE);
    let helped = {
        let (first_out, second_out) = out.split_at_mut(32 * half);
        std::thread::scope(|scope| {
            let helper = std::thread::Builder::new()
                .name("keel-signature".into())
                .spawn_scoped(scope, move || {
                    hash_into(second.chunks(SIGNATURE_PIECE), second_out)
                });
            hash_into(first.chunks(SIGNATURE_PIECE), first_out);
            helper.is_ok_and(|helper| helper.join().is_ok())
        })
    };
    if !helped {
        // No thread to be had: this one hashes the rest.
        hash_into(second.chunks(SIGNATURE_PIECE), &mut out[32 * half..]);
    }
    out
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Names and values are short (settings); longer ones are cut, which
    // only weakens the error message, never the check (the whole list is
    // also compared by value below).
    let bytes = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    out.extend((bytes.len() as u16).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Reads an artifact for `engine`. With `authenticate`, the signature
/// must be that of the engine's key, checked before anything else is read.
/// `owner`, when given, holds `bytes` (all of them, from their start) for
/// as long as the module may live: the code tables are then read in place
/// rather than copied.
pub(crate) fn decode<'a>(
    engine: &Engine,
    bytes: &'a [u8],
    authenticate: bool,
    owner: Option<SharedBytes>,
) -> Result<Parts<'a>, ArtifactError> {
    let body = if authenticate {
        // The signature covers the checksum and all before it: bytes that
        // pass it are the signer's, so their checksum holds as well.
        authenticate_with_key(engine, bytes)?
    } else {
        let body = unauthenticated_body(bytes)?;
        verify_checksum(bytes)?;
        body
    };
    read_unverified(engine, body, bytes, owner)
}

/// The body of `bytes`, an artifact loaded without a signature, once it
/// looks like an artifact of this format (see [`split`] and
/// [`refuse_earlier_format`]); its checksum is still to check.
fn unauthenticated_body(bytes: &[u8]) -> Result<&[u8], ArtifactError> {
    let body = split(bytes)?;
    refuse_earlier_format(bytes)?;
    Ok(body)
}

/// Refuses, by its version, an artifact of an earlier format: its trailer
/// is laid out otherwise, so its checksum cannot be checked here. (Damage
/// to the version field that happens to give one of these is refused as
/// well.) Not for authenticated loads, which read nothing before the
/// signature. Part of [`unauthenticated_body`].
fn refuse_earlier_format(bytes: &[u8]) -> Result<(), ArtifactError> {
    let version = bytes.get(MAGIC.len()..MAGIC.len() + 4);
    if let Some(&[a, b, c, d]) = version {
        let found = u32::from_le_bytes([a, b, c, d]);
        if (1..FORMAT_VERSION).contains(&found) {
            return Err(ArtifactError::FormatVersion {
                found,
                expected: FORMAT_VERSION,
            });
        }
    }
    Ok(())
}

/// The artifact's body (everything before the trailer), once `bytes`
/// look like an artifact at all.
fn split(bytes: &[u8]) -> Result<&[u8], ArtifactError> {
    if bytes.starts_with(WASM_MAGIC) {
        return Err(ArtifactError::IsWasm);
    }
    if !is_artifact(bytes) {
        return Err(ArtifactError::NotAnArtifact);
    }
    let body_len = bytes
        .len()
        .checked_sub(TRAILER_LEN)
        .ok_or(ArtifactError::Truncated)?;
    Ok(&bytes[..body_len])
}

/// Checks the signature of `bytes` (an artifact, see [`split`]) against
/// `engine`'s key, and returns its body.
fn authenticate_with_key<'a>(engine: &Engine, bytes: &'a [u8]) -> Result<&'a [u8], ArtifactError> {
    let body = split(bytes)?;
    let body_len = body.len();
    // The trailer: checksum (8 bytes), signed flag, signature.
    let (signed, signature) = (bytes[body_len + 8], &bytes[body_len + 9..]);
    let key = engine
        .config()
        .artifact_key
        .as_ref()
        .ok_or(ArtifactError::NoKey)?;
    if signed != 1 {
        return Err(ArtifactError::Unsigned);
    }
    signature_mac(key.bytes(), &bytes[..body_len + 9])
        .verify_slice(signature)
        .map_err(|_| ArtifactError::BadSignature)?;
    Ok(body)
}

/// Checks the checksum of `bytes` (an artifact, see [`split`]).
pub(crate) fn verify_checksum(bytes: &[u8]) -> Result<(), ArtifactError> {
    let body = split(bytes)?;
    if checksum(body) != stored_checksum(bytes, body) {
        return Err(ArtifactError::Checksum);
    }
    Ok(())
}

/// The checksum the trailer of `bytes` (whose body is `body`) holds.
fn stored_checksum(bytes: &[u8], body: &[u8]) -> u64 {
    let mut stored = [0; 8];
    stored.copy_from_slice(&bytes[body.len()..body.len() + 8]);
    u64::from_le_bytes(stored)
}

/// Bytes per piece of the checksum: pieces can be hashed by several
/// threads at once. Part of the format: changing it changes every
/// artifact's checksum (bump [`FORMAT_VERSION`]).
const CHECKSUM_PIECE: usize = 128 << 10;

/// The checksum of an artifact's body: the XXH3-64 of the little-endian
/// XXH3-64s of its [`CHECKSUM_PIECE`]-byte pieces, in order.
fn checksum(body: &[u8]) -> u64 {
    combine_pieces(
        body.chunks(CHECKSUM_PIECE)
            .map(twox_hash::XxHash3_64::oneshot),
    )
}

/// The checksum of a body whose pieces hash to `pieces`.
fn combine_pieces(pieces: impl Iterator<Item = u64>) -> u64 {
    let bytes: Vec<u8> = pieces.flat_map(u64::to_le_bytes).collect();
    twox_hash::XxHash3_64::oneshot(&bytes)
}

/// Checks the checksum of `bytes` (an artifact, see [`split`]) while
/// `work` runs: a pool thread is asked to hash pieces, and this thread
/// hashes pieces until the pool thread starts (waking one takes tens of
/// microseconds), then runs `work`, then helps with the pieces left.
/// `work` gets the artifact's body; its result is returned only if the
/// checksum passes (a failed check wins over whatever `work` found).
/// `work` does not run on bytes that [`unauthenticated_body`] refuses.
pub(crate) fn verify_checksum_beside<R>(
    bytes: SharedBytes,
    work: impl FnOnce(&[u8]) -> R,
) -> Result<R, ArtifactError> {
    let all = (*bytes).as_ref();
    let body_len = unauthenticated_body(all)?.len();
    let pieces = Arc::new(ChecksumPieces::new(body_len));
    let helper = (pieces.clone(), bytes.clone());
    rayon::spawn(move || {
        let (pieces, bytes) = helper;
        pieces.helper_started.store(true, Ordering::Relaxed);
        while pieces.hash_next((*bytes).as_ref()) {}
    });
    // Waking the pool thread takes tens of microseconds: not wasted.
    while !pieces.helper_started.load(Ordering::Relaxed) {
        if !pieces.hash_next(all) {
            break;
        }
    }
    let result = work(&all[..body_len]);
    while pieces.hash_next(all) {}
    if pieces.combined() != stored_checksum(all, &all[..body_len]) {
        return Err(ArtifactError::Checksum);
    }
    Ok(result)
}

/// The [`checksum`] of `len` bytes, its pieces hashed by whichever threads
/// call [`ChecksumPieces::hash_next`].
struct ChecksumPieces {
    len: usize,
    /// The next piece to hash.
    next: AtomicUsize,
    /// Whether the pool thread has started on the pieces.
    helper_started: AtomicBool,
    /// Each piece's hash, valid once `done` counts it.
    hashes: Box<[AtomicU64]>,
    /// How many pieces are hashed. A hasher stores its piece's hash before
    /// it counts it under the lock, so whoever reads the full count under
    /// the lock reads every hash.
    done: std::sync::Mutex<usize>,
    all_done: std::sync::Condvar,
}

impl ChecksumPieces {
    fn new(len: usize) -> ChecksumPieces {
        ChecksumPieces {
            len,
            next: AtomicUsize::new(0),
            helper_started: AtomicBool::new(false),
            hashes: (0..len.div_ceil(CHECKSUM_PIECE))
                .map(|_| AtomicU64::new(0))
                .collect(),
            done: std::sync::Mutex::new(0),
            all_done: std::sync::Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, usize> {
        // The lock guards a count, changed by one whole increment: poison
        // is moot.
        self.done.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hashes the next piece of `bytes[..len]` nobody has started; false
    /// when none is left.
    fn hash_next(&self, bytes: &[u8]) -> bool {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        let Some(slot) = self.hashes.get(i) else {
            return false;
        };
        let end = ((i + 1) * CHECKSUM_PIECE).min(self.len);
        slot.store(
            twox_hash::XxHash3_64::oneshot(&bytes[i * CHECKSUM_PIECE..end]),
            Ordering::Relaxed,
        );
        let mut done = self.lock();
        *done += 1;
        if *done == self.hashes.len() {
            self.all_done.notify_all();
        }
        true
    }

    /// The checksum of the whole, once every piece is done. Called when no
    /// piece is left to start: the wait is for pieces another thread is
    /// still hashing (which may wait on the disk, for a file's pages).
    fn combined(&self) -> u64 {
        debug_assert!(self.next.load(Ordering::Relaxed) >= self.hashes.len());
        let mut done = self.lock();
        while *done < self.hashes.len() {
            done = self.all_done.wait(done).unwrap_or_else(|e| e.into_inner());
        }
        combine_pieces(self.hashes.iter().map(|hash| hash.load(Ordering::Relaxed)))
    }
}

/// Reads the artifact whose body is `body` (the start of `bytes`) for
/// `engine`: its header, fingerprint and parts. The checksum is not
/// checked here: [`decode`] checks it first, and a loader that reads in
/// parallel with checking must not use what it read unless it passes.
pub(crate) fn read_unverified<'a>(
    engine: &Engine,
    body: &'a [u8],
    bytes: &'a [u8],
    owner: Option<SharedBytes>,
) -> Result<Parts<'a>, ArtifactError> {
    let mut r = Cursor(body.get(MAGIC.len()..).ok_or(ArtifactError::Truncated)?);
    let found = r.u32()?;
    if found != FORMAT_VERSION {
        return Err(ArtifactError::FormatVersion {
            found,
            expected: FORMAT_VERSION,
        });
    }
    let version = r.str()?;
    if version != env!("CARGO_PKG_VERSION") {
        return Err(ArtifactError::KeelVersion {
            artifact: version.to_string(),
            this: env!("CARGO_PKG_VERSION").to_string(),
        });
    }
    let count = r.u32()?;
    let mut entries = Vec::new();
    for _ in 0..count {
        entries.push((r.str()?, r.str()?));
    }
    check_fingerprint(&entries, engine.artifact_fingerprint())?;
    let [wasm_len, tables_len, text_offset, text_len] =
        [r.u64()?, r.u64()?, r.u64()?, r.u64()?].map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let wasm = r.take(wasm_len)?;
    let tables = r.take(tables_len)?;
    if text_offset % TEXT_ALIGN != 0
        || text_offset.checked_add(text_len) != Some(body.len())
        || text_offset < body.len() - r.0.len()
    {
        return Err(ArtifactError::Malformed(
            "the text is not where the header says",
        ));
    }
    let text = &body[text_offset..];
    let info = match owner {
        Some(owner) if (*owner).as_ref().as_ptr() == bytes.as_ptr() => {
            let start = tables.as_ptr() as usize - bytes.as_ptr() as usize;
            CompiledModuleInfo::decode(owner, start..start + tables.len(), text.len())?
        }
        _ => CompiledModuleInfo::decode_copy(tables, text.len())?,
    };
    Ok(Parts {
        wasm,
        info,
        text_offset,
        text,
    })
}

/// The first setting on which an artifact's list and the engine's differ.
fn check_fingerprint(
    artifact: &[(&str, &str)],
    engine: &[(String, String)],
) -> Result<(), ArtifactError> {
    let absent = || "<absent>".to_string();
    for (name, value) in engine {
        let theirs = artifact.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
        if theirs != Some(value.as_str()) {
            return Err(ArtifactError::Fingerprint {
                setting: name.clone(),
                artifact: theirs.map_or_else(absent, str::to_string),
                engine: value.clone(),
            });
        }
    }
    if let Some((name, value)) = artifact
        .iter()
        .find(|(n, _)| !engine.iter().any(|(e, _)| e == n))
    {
        return Err(ArtifactError::Fingerprint {
            setting: name.to_string(),
            artifact: value.to_string(),
            engine: absent(),
        });
    }
    Ok(())
}

/// A cursor over an artifact's header.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ArtifactError> {
        if n > self.0.len() {
            return Err(ArtifactError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, ArtifactError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, ArtifactError> {
        let b = self.take(8)?;
        let mut a = [0; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn str(&mut self) -> Result<&'a str, ArtifactError> {
        let b = self.take(2)?;
        let n = usize::from(u16::from_le_bytes([b[0], b[1]]));
        std::str::from_utf8(self.take(n)?).map_err(|_| ArtifactError::Malformed("text not UTF-8"))
    }
}

/// A secret key that signs artifacts; never printed.
#[derive(Clone)]
pub(crate) struct ArtifactKey(std::sync::Arc<[u8]>);

impl ArtifactKey {
    pub(crate) fn new(key: &[u8]) -> ArtifactKey {
        ArtifactKey(key.into())
    }

    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for ArtifactKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ArtifactKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_environ::{LibCall, LoadRelocation};

    #[test]
    fn relocation_sites_are_zero_in_an_artifact() {
        // Loaded text holds host addresses where it has relocations; the
        // artifact must not carry them.
        let engine = Engine::default();
        let mut info = CompiledModuleInfo::default();
        info.relocations.push(LoadRelocation {
            offset: 8,
            target: LibCall::FloorF64,
            addend: 0,
        });
        let text = [0xaau8; 24];
        let bytes = encode(&engine, b"\0asm\x01\0\0\0", &info, &text);
        let parts = decode(&engine, &bytes, false, None).unwrap();
        assert_eq!(&parts.text[..8], &[0xaa; 8]);
        assert_eq!(&parts.text[8..16], &[0; 8]);
        assert_eq!(&parts.text[16..], &[0xaa; 8]);
        assert_eq!(parts.info.relocations, info.relocations);
    }

    #[test]
    fn the_code_section_and_custom_sections_but_name_are_dropped() {
        let custom = |name: &str, body: &[u8]| {
            let mut s = vec![0u8, (1 + name.len() + body.len()) as u8, name.len() as u8];
            s.extend_from_slice(name.as_bytes());
            s.extend_from_slice(body);
            s
        };
        let header = b"\0asm\x01\0\0\0";
        let types = [1u8, 1, 0]; // a type section with no types
        let mut wasm = header.to_vec();
        wasm.extend(custom(".debug_info", &[1, 2, 3]));
        wasm.extend(types);
        wasm.extend(custom("name", &[9]));
        // A code section with two bodies, which become empty.
        wasm.extend([10u8, 7, 2, 2, 0, 0x0b, 2, 0, 0x0b]);
        let mut expected = header.to_vec();
        expected.extend(types);
        expected.extend(custom("name", &[9]));
        expected.extend([10u8, 3, 2, 0, 0]);
        assert_eq!(artifact_wasm(&wasm), expected);
        // Not a module: kept whole.
        let broken = [header.as_slice(), &[0, 200]].concat();
        assert_eq!(artifact_wasm(&broken), broken);
    }

    fn borrowed(l: &[(String, String)]) -> Vec<(&str, &str)> {
        l.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect()
    }

    #[test]
    fn the_first_differing_setting_is_named() {
        let list = |v: &str| {
            vec![
                ("a".to_string(), "1".to_string()),
                ("b".to_string(), v.to_string()),
            ]
        };
        assert_eq!(check_fingerprint(&borrowed(&list("2")), &list("2")), Ok(()));
        assert_eq!(
            check_fingerprint(&borrowed(&list("2")), &list("3")),
            Err(ArtifactError::Fingerprint {
                setting: "b".into(),
                artifact: "2".into(),
                engine: "3".into(),
            })
        );
        let mut longer = list("2");
        longer.push(("c".into(), "x".into()));
        assert!(matches!(
            check_fingerprint(&borrowed(&longer), &list("2")),
            Err(ArtifactError::Fingerprint { setting, .. }) if setting == "c"
        ));
    }

    /// An artifact-shaped byte string of `len` bytes with a valid trailer.
    fn sealed(len: usize) -> Vec<u8> {
        let mut bytes: Vec<u8> = MAGIC
            .iter()
            .copied()
            .chain((0..len).map(|i| i as u8))
            .collect();
        bytes.extend(checksum(&bytes).to_le_bytes());
        bytes.extend([0; TRAILER_LEN - 8]);
        bytes
    }

    #[test]
    fn the_checksum_in_pieces_on_two_threads_is_the_checksum() {
        // Bodies of no piece, of pieces exactly full and not, and a
        // flipped bit in each piece.
        let p = CHECKSUM_PIECE;
        for len in [0, 1, p - 9, p - 8, p - 7, 2 * p - 8, 3 * p + 5] {
            let bytes = sealed(len);
            assert_eq!(verify_checksum(&bytes), Ok(()));
            let shared: SharedBytes = Arc::new(bytes.clone());
            let body = bytes.len() - TRAILER_LEN;
            // The work gets the body: everything before the trailer.
            assert_eq!(verify_checksum_beside(shared, <[u8]>::len), Ok(body));
            // (A flipped magic is no artifact at all: not the checksum's.)
            let sites = (MAGIC.len()..body).step_by(p).chain([body - 1]);
            for at in sites.filter(|&at| at >= MAGIC.len()) {
                let mut flipped = bytes.clone();
                flipped[at] ^= 0x10;
                assert_eq!(verify_checksum(&flipped), Err(ArtifactError::Checksum));
                let shared: SharedBytes = Arc::new(flipped);
                assert_eq!(
                    verify_checksum_beside(shared, |_| 7),
                    Err(ArtifactError::Checksum)
                );
            }
        }
    }

    #[test]
    fn the_loading_thread_hashes_every_piece_when_the_pool_thread_is_busy() {
        // A pool of one thread that is running this very check: the spawned
        // helper cannot start before the check ends.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let bytes = sealed(5 * CHECKSUM_PIECE);
        pool.install(|| {
            let shared: SharedBytes = Arc::new(bytes.clone());
            assert_eq!(verify_checksum_beside(shared, |_| 7), Ok(7));
            let mut flipped = bytes.clone();
            flipped[4 * CHECKSUM_PIECE] ^= 1;
            let shared: SharedBytes = Arc::new(flipped);
            assert_eq!(
                verify_checksum_beside(shared, |_| 7),
                Err(ArtifactError::Checksum)
            );
        });
    }

    #[test]
    fn the_checksum_is_stable() {
        // Part of the format: these change only with `FORMAT_VERSION`. (No
        // piece at all hashes as XXH3-64's empty input, 0x2d06800538d394c2.)
        let pattern: Vec<u8> = (0..2 * CHECKSUM_PIECE + 3).map(|i| (i * 7) as u8).collect();
        let got = [checksum(&[]), checksum(b"k"), checksum(&pattern)];
        assert_eq!(
            got,
            [0x2d06800538d394c2, 0xe34f6bc7d266d07b, 0x371a3e2635dc0081]
        );
    }

    #[test]
    fn the_signature_is_the_hmac_of_the_pieces_digests_on_one_thread_or_two() {
        use sha2::Digest as _;
        let key = b"signing key";
        for len in [
            0,
            5,
            SIGNATURE_PIECE,
            SIGNATURE_SPLIT_LEN - 1,
            3 * SIGNATURE_SPLIT_LEN + 17,
        ] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 13 + i / 4099) as u8).collect();
            // Written out once more, sequentially, as the format says.
            let mut expected = Hmac::<Sha256>::new_from_slice(key).unwrap();
            for piece in bytes.chunks(SIGNATURE_PIECE) {
                expected.update(&Sha256::digest(piece));
            }
            let expected = expected.finalize().into_bytes();
            assert_eq!(
                signature_mac(key, &bytes).finalize().into_bytes(),
                expected,
                "{len} bytes"
            );
            if len > 0 {
                // A change in the last piece (the second thread's) shows.
                let mut changed = bytes.clone();
                changed[len - 1] ^= 1;
                assert!(
                    signature_mac(key, &changed)
                        .verify_slice(&expected)
                        .is_err(),
                    "{len} bytes"
                );
            }
        }
    }

    #[test]
    fn an_earlier_format_is_named_and_a_short_body_is_no_panic() {
        let mut bytes = sealed(100);
        bytes[MAGIC.len()..MAGIC.len() + 4].copy_from_slice(&4u32.to_le_bytes());
        let shared: SharedBytes = Arc::new(bytes.clone());
        let earlier = Err(ArtifactError::FormatVersion {
            found: 4,
            expected: FORMAT_VERSION,
        });
        assert_eq!(verify_checksum_beside(shared, |_| ()), earlier);
        // Shorter than a header: an error, not a panic.
        let short = sealed(0);
        let body = split(&short).unwrap();
        let engine = Engine::default();
        assert!(matches!(
            read_unverified(&engine, &body[..4], &short, None),
            Err(ArtifactError::Truncated)
        ));
    }
}
