//! The key private to the user that authenticates the native code this package writes and
//! later loads (persistent cache entries, `Module.prototype.serialize()` output), and the
//! owner-only directory and files it lives in. Loading compiled code is loading machine
//! code, so a directory or key file that another user owns or can write is refused: a MAC
//! under a key others can read or replace would stop nothing.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The name of the key file in a key directory.
const KEY_FILE: &str = "key";

/// The key in `dir` (made owner-only, with a new random key, if missing). Refused: a
/// directory or key file that another user owns or that others can write (or, the key,
/// read).
pub fn open(dir: &Path) -> std::result::Result<[u8; 32], String> {
    create_private_dir(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    check_private(dir, false)?;
    read_or_create_key(&dir.join(KEY_FILE))
}

/// The user's node-wasmtime directory: `$XDG_CACHE_HOME/node-wasmtime` (an absolute
/// `XDG_CACHE_HOME`, as the XDG spec has it), else `~/.cache/node-wasmtime`. The default
/// cache directory, and where the key of `serialize()` output lives.
pub fn default_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|base| base.is_absolute())
        .or_else(|| std::env::home_dir().map(|home| home.join(".cache")))?;
    Some(base.join("node-wasmtime"))
}

/// The key that signs `serialize()` output: the one in `default_dir()`, read once per process
/// (a failure is not remembered: the next call tries again).
pub fn serialization_key() -> std::result::Result<[u8; 32], String> {
    static KEY: Mutex<Option<[u8; 32]>> = Mutex::new(None);
    let mut key = KEY.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(key) = *key {
        return Ok(key);
    }
    let dir = default_dir().ok_or("there is no home directory (set XDG_CACHE_HOME or HOME)")?;
    let opened = open(&dir)?;
    *key = Some(opened);
    Ok(opened)
}

/// A MAC under `key` (keyed BLAKE3) of `parts`, each followed by a `\0` so that no two
/// splits of the same bytes agree; more bytes may follow (`update`) before `finalize`.
pub fn mac(key: &[u8; 32], parts: &[&[u8]]) -> blake3::Hasher {
    let mut mac = blake3::Hasher::new_keyed(key);
    for part in parts {
        mac.update(part);
        mac.update(b"\0");
    }
    mac
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)
}

#[cfg(unix)]
pub fn private_file(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
pub fn private_file(path: &Path) -> std::io::Result<fs::File> {
    fs::File::options().write(true).create_new(true).open(path)
}

/// Refuses `path` unless this user owns it and no one else can write it (or, for the key
/// file, `secret`: read it either).
#[cfg(unix)]
fn check_private(path: &Path, secret: bool) -> std::result::Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let metadata = fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if metadata.uid() != me {
        return Err(format!(
            "{} belongs to another user (uid {}): its entries would be native code that user \
             chose",
            path.display(),
            metadata.uid()
        ));
    }
    let others = if secret { 0o077 } else { 0o022 };
    if metadata.mode() & others != 0 {
        return Err(format!(
            "{} can be {} by other users (mode {:o}): make it {} first",
            path.display(),
            if secret { "read or written" } else { "written" },
            metadata.mode() & 0o7777,
            if secret { "0600" } else { "0700 or 0755" },
        ));
    }
    if secret && !metadata.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path, _secret: bool) -> std::result::Result<(), String> {
    Ok(())
}

/// The 32-byte key at `path`, made (owner-only, random) if there is none.
fn read_or_create_key(path: &Path) -> std::result::Result<[u8; 32], String> {
    let made = (|| -> std::io::Result<()> {
        let mut key = [0u8; 32];
        getrandom::getrandom(&mut key).map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut file = private_file(path)?;
        file.write_all(&key)?;
        file.sync_all()
    })();
    if let Err(e) = made {
        if e.kind() != std::io::ErrorKind::AlreadyExists {
            return Err(format!("cannot create the key {}: {e}", path.display()));
        }
    }
    check_private(path, true)?;
    // Another process may be writing it this instant: wait a little for all 32 bytes.
    for _ in 0..50 {
        let bytes = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice()) {
            return Ok(key);
        }
        if bytes.len() > 32 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Err(format!(
        "{} is not a key of 32 bytes: delete it to have a new one made",
        path.display()
    ))
}

/// Internal: `defaultCacheDir()` (lib/compile-cache.js).
#[napi(catch_unwind)]
pub fn user_directory() -> Option<String> {
    default_dir().map(|dir| dir.to_string_lossy().into_owned())
}
