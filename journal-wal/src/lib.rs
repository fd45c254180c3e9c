//! The journal's SQLite VFS: a commit's WAL frames reach the file in one write.
//!
//! SQLite writes each WAL frame as two `pwrite` calls, its 24-byte header and then the
//! page, so a group commit of ~60 pages makes ~120 system calls before its one sync. This
//! VFS is SQLite's own (the platform's default, found at [`register`]) with one change:
//! writes to a WAL file that follow one another are gathered in memory and go to the file
//! as one write, at the latest when the commit's frame is complete.
//!
//! ```text
//!  WAL file:  [hdr 32][fh 24][page][fh 24][page] … [fh 24, size ≠ 0][page]
//!                      └─ each an xWrite, gathered ─────────────────────┘
//!                                                      commit frame ─▶ one write,
//!                                                                      then xSync
//! ```
//!
//! What a connection reading the same WAL relies on still holds: a frame is in the file
//! before any wal-index names it. SQLite names a transaction's frames in the wal-index only
//! after writing its commit frame (and after syncing it, where `synchronous` asks), and the
//! gathered writes go out when the commit frame's page is written, whatever `synchronous`
//! says. They also go out before anything else reaches the file through this handle (a
//! read, a sync, a truncation, its size, a file control, closing it) and before a write
//! that does not follow on, so the file never sees writes out of their order. A
//! transaction rolled back after spilling frames leaves them gathered until the next
//! write; SQLite ignores such frames in the file either way (their salts or checksums do
//! not match), as it does when they were written at once. Only files SQLite opens as a
//! WAL are changed; the database file, its shared memory and temporary files are the
//! default VFS's own objects.
//!
//! The switch opens its journal's writer connection with this VFS ([`NAME`]); readers
//! and the checkpointer keep the default, and all of them share the same locks, which are
//! the default VFS's.

use std::ffi::{CStr, c_int, c_void};
use std::ptr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use rusqlite::ffi;

/// The VFS's name, for `Connection::open_with_flags_and_vfs`.
pub const NAME: &str = "journal-wal";

const NAME_C: &CStr = c"journal-wal";

/// Gathered bytes past which the writes go out before more are gathered (a very large
/// transaction). A single write larger than this (never SQLite's: a frame is at most
/// 64 KiB) is gathered alone and goes out in pieces like the rest.
const MAX_GATHERED: usize = 1 << 20;

/// The most one write to the default VFS carries: the Unix VFS writes at most 128 KiB
/// less one byte a call (it masks the length with `0x1ffff` and reports a shorter write
/// as a full disk), so gathered bytes go out in pieces of this size.
const MAX_WRITE: usize = 120 << 10;

/// The 24-byte header of a WAL frame; bytes 4..8 hold the database's size in pages after
/// a commit, zero in every other frame.
const FRAME_HEADER: usize = 24;

/// The VFS could not be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegisterError(c_int);

impl std::fmt::Display for RegisterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0 == ffi::SQLITE_NOTFOUND {
            f.write_str("SQLite has no default VFS to wrap")
        } else {
            write!(f, "SQLite refused the VFS (code {})", self.0)
        }
    }
}

impl std::error::Error for RegisterError {}

/// Registers the VFS with SQLite (once a process; later calls return the first one's
/// result) and returns its name.
pub fn register() -> Result<&'static str, RegisterError> {
    static REGISTERED: OnceLock<Result<(), RegisterError>> = OnceLock::new();
    (*REGISTERED.get_or_init(register_once)).map(|()| NAME)
}

/// How many writes SQLite gave WAL files of this VFS, and how many reached the files,
/// since the process started (writes that went through at once count in both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Writes {
    /// Writes SQLite asked for.
    pub given: u64,
    /// Writes made to the files.
    pub made: u64,
}

static GIVEN: AtomicU64 = AtomicU64::new(0);
static MADE: AtomicU64 = AtomicU64::new(0);

/// The process's counts so far.
pub fn writes() -> Writes {
    Writes {
        given: GIVEN.load(Ordering::Relaxed),
        made: MADE.load(Ordering::Relaxed),
    }
}

/// The default VFS this one wraps; set once, before this one is registered.
static INNER: AtomicPtr<ffi::sqlite3_vfs> = AtomicPtr::new(ptr::null_mut());

/// A WAL file of this VFS: SQLite's `sqlite3_file` first, as SQLite requires, then what
/// is gathered, then (at [`HEADER`] bytes) the default VFS's own file object.
#[repr(C)]
struct WalFile {
    base: ffi::sqlite3_file,
    inner: *mut ffi::sqlite3_file,
    gathered: Gathered,
}

/// Writes not yet made: `bytes` belong at `at` in the file.
struct Gathered {
    bytes: Vec<u8>,
    at: i64,
    /// Where the page of the last commit frame whose header was written starts, until
    /// that page is written.
    commit_page: Option<i64>,
}

impl Gathered {
    fn end(&self) -> i64 {
        self.at
            .saturating_add(i64::try_from(self.bytes.len()).unwrap_or(i64::MAX))
    }
}

/// Where the default VFS's file object starts in a WAL file of this VFS (aligned as
/// SQLite aligns its own allocations).
const HEADER: usize = std::mem::size_of::<WalFile>().next_multiple_of(16);

static WAL_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 1,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

fn register_once() -> Result<(), RegisterError> {
    // SAFETY: `sqlite3_vfs_find` with a null name initialises SQLite if needed and returns
    // its default VFS, a registration that lives as long as the process, or null.
    let inner = unsafe { ffi::sqlite3_vfs_find(ptr::null()) };
    if inner.is_null() {
        return Err(RegisterError(ffi::SQLITE_NOTFOUND));
    }
    // SAFETY: `inner` is a valid, registered VFS (above); it is read, not changed.
    let mut ours = unsafe { *inner };
    let extra = c_int::try_from(HEADER).map_err(|_| RegisterError(ffi::SQLITE_MISUSE))?;
    // Every method but `xOpen` is the default VFS's own: they read only the fields copied
    // here (`pAppData` included), never this VFS's name or size.
    ours.szOsFile = ours.szOsFile.saturating_add(extra);
    ours.pNext = ptr::null_mut();
    ours.zName = NAME_C.as_ptr();
    ours.xOpen = Some(open);
    INNER.store(inner, Ordering::Release);
    let ours: &'static mut ffi::sqlite3_vfs = Box::leak(Box::new(ours));
    // SAFETY: `ours` lives for the rest of the process (leaked) and is complete; 0: not
    // the default VFS.
    let rc = unsafe { ffi::sqlite3_vfs_register(ours, 0) };
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(RegisterError(rc))
    }
}

/// The default VFS's methods for `inner`.
///
/// # Safety
/// `inner` is an open file of the default VFS.
unsafe fn methods(inner: *mut ffi::sqlite3_file) -> &'static ffi::sqlite3_io_methods {
    // SAFETY: `inner` is an open file object (the caller's promise).
    let table = unsafe { (*inner).pMethods };
    // SAFETY: an open file's `pMethods` points at its VFS's static method table.
    unsafe { &*table }
}

/// The WAL file behind `file`.
///
/// # Safety
/// `file` is a file this VFS opened as a WAL (its methods are [`WAL_METHODS`]), not yet
/// closed, and SQLite is calling one of its methods (so no other reference to it is in
/// use: SQLite uses a file from one thread at a time).
unsafe fn wal<'a>(file: *mut ffi::sqlite3_file) -> &'a mut WalFile {
    // SAFETY: the caller's promise: `file` starts a live `WalFile` made by `open`.
    unsafe { &mut *file.cast::<WalFile>() }
}

/// Makes the gathered writes; the default VFS's result code.
///
/// What a failed write did not make stays gathered, and the next call on the file tries
/// it again first: SQLite was told those bytes were written, so nothing may read the file
/// where they belong, and no commit may succeed, until they are.
///
/// # Safety
/// `w.inner` is open (true from `open` until `close`).
unsafe fn flush(w: &mut WalFile) -> c_int {
    if w.gathered.bytes.is_empty() {
        return ffi::SQLITE_OK;
    }
    // SAFETY: `inner` is open (the caller's promise).
    let inner_write = unsafe { methods(w.inner) }.xWrite;
    let mut rc = ffi::SQLITE_OK;
    let mut made = 0;
    for piece in w.gathered.bytes.chunks(MAX_WRITE) {
        // MAX_WRITE fits both.
        let amount = c_int::try_from(piece.len()).unwrap_or(c_int::MAX);
        let at = w
            .gathered
            .at
            .saturating_add(i64::try_from(made).unwrap_or(i64::MAX));
        rc = match inner_write {
            // SAFETY: `piece` holds `amount` initialised bytes; `inner` is open.
            Some(f) => unsafe { f(w.inner, piece.as_ptr().cast::<c_void>(), amount, at) },
            None => ffi::SQLITE_IOERR_WRITE,
        };
        MADE.fetch_add(1, Ordering::Relaxed);
        if rc != ffi::SQLITE_OK {
            break;
        }
        made += piece.len();
    }
    w.gathered.bytes.drain(..made);
    w.gathered.at = w
        .gathered
        .at
        .saturating_add(i64::try_from(made).unwrap_or(i64::MAX));
    rc
}

unsafe extern "C" fn open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let inner_vfs = INNER.load(Ordering::Acquire);
    // SAFETY: set before this VFS was registered, so before any open through it; the
    // default VFS's registration lives as long as the process.
    let Some(inner_open) = (unsafe { (*inner_vfs).xOpen }) else {
        return ffi::SQLITE_CANTOPEN;
    };
    if flags & ffi::SQLITE_OPEN_WAL == 0 {
        // Anything but a WAL is the default VFS's own object, at the start of the memory
        // SQLite allocated (`szOsFile` bytes, more than the default VFS needs).
        // SAFETY: the arguments are SQLite's own for this open, passed on.
        return unsafe { inner_open(inner_vfs, name, file, flags, out_flags) };
    }
    // SAFETY: SQLite allocated `szOsFile` bytes at `file`, which is HEADER plus what the
    // default VFS needs, so the default VFS's object fits from HEADER on.
    let inner = unsafe { file.cast::<u8>().add(HEADER) }.cast::<ffi::sqlite3_file>();
    // SAFETY: as above, SQLite's arguments with the default VFS's own object.
    let rc = unsafe { inner_open(inner_vfs, name, inner, flags, out_flags) };
    if rc != ffi::SQLITE_OK {
        // SAFETY: `inner` is the default VFS's object, written by its xOpen (it sets
        // `pMethods` whether or not it failed).
        let inner_methods = unsafe { (*inner).pMethods };
        if !inner_methods.is_null() {
            // SAFETY: a non-null `pMethods` after xOpen means the object must be closed.
            if let Some(inner_close) = unsafe { (*inner_methods).xClose } {
                // SAFETY: closed once, here, and never used again.
                unsafe { inner_close(inner) };
            }
        }
        // SAFETY: `file` is SQLite's allocation; a null `pMethods` tells SQLite there is
        // nothing to close.
        unsafe { (*file).pMethods = ptr::null() };
        return rc;
    }
    let opened = WalFile {
        base: ffi::sqlite3_file {
            pMethods: &WAL_METHODS,
        },
        inner,
        gathered: Gathered {
            bytes: Vec::new(),
            at: 0,
            commit_page: None,
        },
    };
    // SAFETY: SQLite's allocation has room for a `WalFile` at its start (HEADER bytes),
    // aligned as `malloc` aligns; nothing was there to drop.
    unsafe { file.cast::<WalFile>().write(opened) };
    ffi::SQLITE_OK
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite calls xClose once on a file `open` made (WAL_METHODS).
    let w = unsafe { wal(file) };
    // SAFETY: `inner` is open until below.
    let flushed = unsafe { flush(w) };
    let inner = w.inner;
    // SAFETY: the `WalFile` is dropped once, here; SQLite frees its memory after xClose
    // and never uses `w` again.
    unsafe { ptr::drop_in_place(file.cast::<WalFile>()) };
    // SAFETY: `inner` is open; closed once, here.
    let closed = match unsafe { methods(inner) }.xClose {
        // SAFETY: as above.
        Some(f) => unsafe { f(inner) },
        None => ffi::SQLITE_OK,
    };
    if flushed != ffi::SQLITE_OK {
        flushed
    } else {
        closed
    }
}

unsafe extern "C" fn write(
    file: *mut ffi::sqlite3_file,
    data: *const c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: SQLite calls a WAL_METHODS method on a file `open` made.
    let w = unsafe { wal(file) };
    GIVEN.fetch_add(1, Ordering::Relaxed);
    let Ok(n) = usize::try_from(amount) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    let follows_on = !w.gathered.bytes.is_empty() && offset == w.gathered.end();
    if !w.gathered.bytes.is_empty()
        && (!follows_on || w.gathered.bytes.len().saturating_add(n) > MAX_GATHERED)
    {
        // SAFETY: `inner` is open while `w` is.
        let rc = unsafe { flush(w) };
        if rc != ffi::SQLITE_OK {
            return rc;
        }
    }
    // SAFETY: SQLite's buffer holds `amount` bytes for the length of this call.
    let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), n) };
    if w.gathered.bytes.is_empty() {
        w.gathered.at = offset;
    }
    w.gathered.bytes.extend_from_slice(bytes);
    if n == FRAME_HEADER && bytes[4..8] != [0; 4] {
        // A commit frame's header: its page comes next.
        w.gathered.commit_page = offset.checked_add(FRAME_HEADER as i64);
    } else if w.gathered.commit_page == Some(offset) {
        // The commit frame is whole: the transaction's frames go to the file before
        // SQLite names them in the wal-index. (Kept apart from what is gathered: the
        // header may have gone out alone, at the gathering's bound, before its page.)
        w.gathered.commit_page = None;
        // SAFETY: `inner` is open while `w` is.
        return unsafe { flush(w) };
    }
    ffi::SQLITE_OK
}

/// The default VFS's object behind a WAL file of this VFS, and its methods.
///
/// # Safety
/// As [`wal`].
unsafe fn inner(
    file: *mut ffi::sqlite3_file,
) -> (*mut ffi::sqlite3_file, &'static ffi::sqlite3_io_methods) {
    // SAFETY: the caller's promise.
    let inner = unsafe { wal(file) }.inner;
    // SAFETY: `inner` is open while the file is.
    (inner, unsafe { methods(inner) })
}

/// [`inner`], once the gathered writes are made; a failure's code otherwise.
///
/// # Safety
/// As [`wal`].
unsafe fn flushed(
    file: *mut ffi::sqlite3_file,
) -> Result<(*mut ffi::sqlite3_file, &'static ffi::sqlite3_io_methods), c_int> {
    // SAFETY: the caller's promise.
    let w = unsafe { wal(file) };
    // SAFETY: `inner` is open while `w` is.
    match unsafe { flush(w) } {
        // SAFETY: the caller's promise.
        ffi::SQLITE_OK => Ok(unsafe { inner(file) }),
        rc => Err(rc),
    }
}

unsafe extern "C" fn read(
    file: *mut ffi::sqlite3_file,
    data: *mut c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: SQLite calls this VFS's methods on a file `open` made.
    let (inner, m) = match unsafe { flushed(file) } {
        Ok(found) => found,
        Err(rc) => return rc,
    };
    let Some(f) = m.xRead else {
        return ffi::SQLITE_IOERR_READ;
    };
    // SAFETY: SQLite's arguments, passed on to the default VFS's open object.
    unsafe { f(inner, data, amount, offset) }
}

unsafe extern "C" fn truncate(file: *mut ffi::sqlite3_file, size: ffi::sqlite3_int64) -> c_int {
    // SAFETY: SQLite calls this VFS's methods on a file `open` made.
    let (inner, m) = match unsafe { flushed(file) } {
        Ok(found) => found,
        Err(rc) => return rc,
    };
    let Some(f) = m.xTruncate else {
        return ffi::SQLITE_IOERR_TRUNCATE;
    };
    // SAFETY: as in `read`.
    unsafe { f(inner, size) }
}

unsafe extern "C" fn sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    // SAFETY: SQLite calls this VFS's methods on a file `open` made.
    let (inner, m) = match unsafe { flushed(file) } {
        Ok(found) => found,
        Err(rc) => return rc,
    };
    let Some(f) = m.xSync else {
        return ffi::SQLITE_IOERR_FSYNC;
    };
    // SAFETY: as in `read`.
    unsafe { f(inner, flags) }
}

unsafe extern "C" fn file_size(
    file: *mut ffi::sqlite3_file,
    size: *mut ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: SQLite calls this VFS's methods on a file `open` made.
    let (inner, m) = match unsafe { flushed(file) } {
        Ok(found) => found,
        Err(rc) => return rc,
    };
    let Some(f) = m.xFileSize else {
        return ffi::SQLITE_IOERR_FSTAT;
    };
    // SAFETY: as in `read`.
    unsafe { f(inner, size) }
}

unsafe extern "C" fn file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    // SAFETY: SQLite calls this VFS's methods on a file `open` made.
    let (inner, m) = match unsafe { flushed(file) } {
        Ok(found) => found,
        Err(rc) => return rc,
    };
    let Some(f) = m.xFileControl else {
        return ffi::SQLITE_NOTFOUND;
    };
    // SAFETY: as in `read`.
    unsafe { f(inner, op, arg) }
}

unsafe extern "C" fn lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: SQLite calls this VFS's methods on a file `open` made.
    let (inner, m) = unsafe { self::inner(file) };
    let Some(f) = m.xLock else {
        return ffi::SQLITE_IOERR_LOCK;
    };
    // SAFETY: as in `read`.
    unsafe { f(inner, level) }
}

unsafe extern "C" fn unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: SQLite calls this VFS's methods on a file `open` made.
    let (inner, m) = unsafe { self::inner(file) };
    let Some(f) = m.xUnlock else {
        return ffi::SQLITE_IOERR_UNLOCK;
    };
    // SAFETY: as in `read`.
    unsafe { f(inner, level) }
}

unsafe extern "C" fn check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    // SAFETY: SQLite calls this VFS's methods on a file `open` made.
    let (inner, m) = unsafe { self::inner(file) };
    let Some(f) = m.xCheckReservedLock else {
        return ffi::SQLITE_IOERR_CHECKRESERVEDLOCK;
    };
    // SAFETY: as in `read`.
    unsafe { f(inner, out) }
}

unsafe extern "C" fn sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite calls this VFS's methods on a file `open` made.
    let (inner, m) = unsafe { self::inner(file) };
    let Some(f) = m.xSectorSize else {
        return 4096;
    };
    // SAFETY: as in `read`.
    unsafe { f(inner) }
}

unsafe extern "C" fn device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite calls this VFS's methods on a file `open` made.
    let (inner, m) = unsafe { self::inner(file) };
    let Some(f) = m.xDeviceCharacteristics else {
        return 0;
    };
    // SAFETY: as in `read`.
    unsafe { f(inner) }
}
