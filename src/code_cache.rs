//! The persistent code cache (`enableCompileCache()`): wasmtime's compiled code for an input,
//! kept on disk so that the next process loads it instead of compiling again.
//!
//! An entry is native code the next process runs, so it is authenticated, not just checked:
//! each carries a MAC (keyed BLAKE3) under a key private to the user (`key` in the directory,
//! created owner-only; a directory or key that others can write is refused), and an entry
//! that fails it (forged, corrupt, truncated, from another key) is deleted and the input
//! compiled again. Entries are named by a hash of the input and of everything that makes code
//! incompatible (this package's version; wasmtime's version, the engine's compilation
//! settings and target CPU features, which `Engine::precompile_compatibility_hash` covers),
//! written to a temporary file and renamed into place (so a reader never sees half an entry),
//! and evicted least recently used first past the size bound. Any I/O failure (a read-only or
//! full disk, a vanished directory) only means compiling: never an error.

use crate::error::{ErrorCode, Failure, Result};
use crate::user_key;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use wasmtime::Engine;

/// An entry is wasmtime's serialized code as it is (so that wasmtime maps the file itself
/// instead of copying it), then the MAC of the name and that code, then this.
const MAGIC: &[u8; 8] = b"NWTCODE\x02";
const TRAILER_LEN: u64 = 32 + MAGIC.len() as u64;
/// Entries end with this (anything else in the directory is left alone).
const ENTRY_SUFFIX: &str = ".nwtcode";

/// A cache directory in use.
struct Cache {
    dir: PathBuf,
    key: [u8; 32],
    max_bytes: u64,
}

static CACHE: Mutex<Option<Arc<Cache>>> = Mutex::new(None);

/// What the cache did in this process, for `compileCacheStats()`.
static HITS: AtomicU64 = AtomicU64::new(0);
static MISSES: AtomicU64 = AtomicU64::new(0);
static REJECTED: AtomicU64 = AtomicU64::new(0);
static WRITTEN: AtomicU64 = AtomicU64::new(0);
static EVICTED: AtomicU64 = AtomicU64::new(0);

fn cache() -> Option<Arc<Cache>> {
    CACHE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone()
}

/// Uses `dir` (made owner-only if missing) from now on, with at most `max_bytes` of entries.
/// `Ok(false)` if a cache is already in use (it stays as it is). Refused: a directory or key
/// file that another user owns or that others can write.
pub fn enable(dir: &Path, max_bytes: u64) -> Result<bool> {
    let mut current = CACHE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if current.is_some() {
        return Ok(false);
    }
    let key = user_key::open(dir).map_err(|why| Failure::new(ErrorCode::InvalidArgValue, why))?;
    *current = Some(Arc::new(Cache {
        dir: dir.to_path_buf(),
        key,
        max_bytes,
    }));
    Ok(true)
}

/// The directory in use, if any.
pub fn directory() -> Option<PathBuf> {
    cache().map(|cache| cache.dir.clone())
}

/// Counts since the process started: hits, misses, rejected entries, entries written, evicted.
pub fn stats() -> [u64; 5] {
    [&HITS, &MISSES, &REJECTED, &WRITTEN, &EVICTED].map(|count| count.load(Ordering::Relaxed))
}

/// The code for `binary` in `engine`: loaded (by `load`, from the file it is given) if an
/// authentic entry is there, else made by `compile` (and written to the cache). Without a
/// cache, just `compile`.
pub fn compiled<T>(
    engine: &Engine,
    binary: &[u8],
    compile: impl FnOnce() -> Result<T>,
    serialize: impl FnOnce(&T) -> Option<Vec<u8>>,
    load: impl FnOnce(&Path) -> Option<T>,
) -> Result<T> {
    let Some(cache) = cache() else {
        return compile();
    };
    let name = entry_name(engine, binary);
    let path = cache.dir.join(&name);
    if cache.authentic(&path, &name) {
        if let Some(code) = load(&path) {
            HITS.fetch_add(1, Ordering::Relaxed);
            touch(&path);
            return Ok(code);
        }
        // Authentic but not loadable (this wasmtime refuses it): replaced below.
        REJECTED.fetch_add(1, Ordering::Relaxed);
        let _ = fs::remove_file(&path);
    }
    MISSES.fetch_add(1, Ordering::Relaxed);
    let code = compile()?;
    if let Some(payload) = serialize(&code) {
        if cache.write(&path, &name, &payload).is_ok() {
            WRITTEN.fetch_add(1, Ordering::Relaxed);
            cache.evict();
        }
    }
    Ok(code)
}

/// Whether the cache holds an entry for `binary` compiled by `engine` (unchecked: loading it
/// may still refuse it).
pub fn contains(engine: &Engine, binary: &[u8]) -> bool {
    cache().is_some_and(|cache| cache.dir.join(entry_name(engine, binary)).is_file())
}

/// The entry name of `binary` compiled by `engine`: a hash of the input and of what makes
/// code incompatible.
fn entry_name(engine: &Engine, binary: &[u8]) -> String {
    let mut hasher = StableHasher(blake3::Hasher::new());
    hasher.0.update(b"node-wasmtime code cache\0");
    hasher.0.update(env!("CARGO_PKG_VERSION").as_bytes());
    hasher.0.update(b"\0");
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
    hasher.0.update(b"\0");
    hasher.0.update(binary);
    let mut name = hasher.0.finalize().to_hex().to_string();
    name.push_str(ENTRY_SUFFIX);
    name
}

/// A `Hasher` that feeds a BLAKE3 (stable across processes, unlike `DefaultHasher`'s
/// promise).
struct StableHasher(blake3::Hasher);

impl std::hash::Hasher for StableHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(&self) -> u64 {
        0
    }
}

impl Cache {
    fn mac(&self, name: &str) -> blake3::Hasher {
        user_key::mac(&self.key, &[name.as_bytes()])
    }

    /// Whether the entry at `path` is there and authentic (its MAC, over its name and code,
    /// verified under the key); one that is not is deleted. The file is read in pieces, not
    /// into memory: wasmtime then maps it.
    fn authentic(&self, path: &Path, name: &str) -> bool {
        let Ok(mut file) = fs::File::open(path) else {
            return false;
        };
        let verified = (|| -> std::io::Result<bool> {
            let len = file.metadata()?.len();
            if len < TRAILER_LEN {
                return Ok(false);
            }
            let mut trailer = [0u8; TRAILER_LEN as usize];
            file.seek(SeekFrom::Start(len - TRAILER_LEN))?;
            file.read_exact(&mut trailer)?;
            let (tag, magic) = trailer.split_at(32);
            if magic != MAGIC {
                return Ok(false);
            }
            file.seek(SeekFrom::Start(0))?;
            let mut mac = self.mac(name);
            mac.update_reader((&mut file).take(len - TRAILER_LEN))?;
            let tag: [u8; 32] = tag.try_into().expect("32 bytes");
            // `Hash`'s equality is constant-time.
            Ok(mac.finalize() == blake3::Hash::from_bytes(tag))
        })()
        .unwrap_or(false);
        if !verified {
            REJECTED.fetch_add(1, Ordering::Relaxed);
            let _ = fs::remove_file(path);
        }
        verified
    }

    /// Writes the entry for `payload` at `path` through a temporary file renamed into place.
    fn write(&self, path: &Path, name: &str, payload: &[u8]) -> std::io::Result<()> {
        let mut mac = self.mac(name);
        mac.update(payload);
        let tag = mac.finalize();
        let temporary = self
            .dir
            .join(format!(".{name}.{}.{}.tmp", std::process::id(), unique()));
        let written = (|| {
            let mut file = user_key::private_file(&temporary)?;
            file.write_all(payload)?;
            file.write_all(tag.as_bytes())?;
            file.write_all(MAGIC)?;
            file.sync_all()?;
            fs::rename(&temporary, path)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&temporary);
        }
        written
    }

    /// Deletes the least recently used entries until the rest fit in `max_bytes`.
    fn evict(&self) {
        let Ok(listing) = fs::read_dir(&self.dir) else {
            return;
        };
        let mut entries: Vec<(SystemTime, u64, PathBuf)> = listing
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let name = entry.file_name();
                if !name.to_str()?.ends_with(ENTRY_SUFFIX) {
                    return None;
                }
                let metadata = entry.metadata().ok()?;
                Some((metadata.modified().ok()?, metadata.len(), entry.path()))
            })
            .collect();
        let mut total: u64 = entries.iter().map(|(_, len, _)| len).sum();
        entries.sort();
        for (_, len, path) in entries {
            if total <= self.max_bytes {
                break;
            }
            if fs::remove_file(&path).is_ok() {
                EVICTED.fetch_add(1, Ordering::Relaxed);
            }
            total -= len;
        }
    }
}

/// Marks the entry at `path` used now (eviction goes by modification time).
fn touch(path: &Path) {
    if let Ok(file) = fs::File::options().append(true).open(path) {
        let _ = file.set_modified(SystemTime::now());
    }
}

/// A number no other temporary file of this process has.
fn unique() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Internal: `enableCompileCache()` (lib/compile-cache.js): uses `directory` with at most
/// `maxBytes` of entries; false if a cache is already in use. Throws `ERR_INVALID_ARG_VALUE`
/// with the reason when the directory or its key cannot be used.
#[napi(catch_unwind)]
pub fn compile_cache_enable(
    env: napi::Env,
    directory: String,
    max_bytes: f64,
) -> napi::Result<bool> {
    enable(Path::new(&directory), max_bytes as u64).map_err(|f| f.into_napi(&env))
}

/// Internal: the directory of the cache in use.
#[napi(catch_unwind)]
pub fn compile_cache_directory() -> Option<String> {
    directory().map(|dir| dir.to_string_lossy().into_owned())
}

/// What the persistent code cache did in this process.
#[napi(object)]
pub struct CompileCacheStats {
    /// Inputs whose code was loaded from the cache.
    pub hits: f64,
    /// Inputs compiled (no entry, or one that was refused).
    pub misses: f64,
    /// Entries refused (not authentic, or not loadable) and deleted.
    pub rejected: f64,
    /// Entries written.
    pub written: f64,
    /// Entries deleted to keep the cache under its size bound.
    pub evicted: f64,
}

/// Internal: `compileCacheStats()`.
#[napi(catch_unwind)]
pub fn compile_cache_stats() -> CompileCacheStats {
    let [hits, misses, rejected, written, evicted] = stats().map(|count| count as f64);
    CompileCacheStats {
        hits,
        misses,
        rejected,
        written,
        evicted,
    }
}
