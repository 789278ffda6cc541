//! Status codes, the thread-local last-error message, and the guard every C entry point runs in.
//!
//! Model: a C call returns a [`CairnStatus`] and nothing else signals failure (no errno, no
//! exceptions). The human-readable reason of the last failure on the calling thread is kept in a
//! thread-local and read with `cairn_last_error()`.
//!
//! Invariant: no panic crosses the boundary. [`guard`] runs the body under `catch_unwind` and turns
//! a panic into [`CairnStatus::Internal`] with the panic message as the last error.

use cairn_ec::{EcError, SchemeError};
use cairn_shardlog::LogError;
use std::cell::RefCell;
use std::ffi::{CStr, CString};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Result of every fallible libcairn call. `CAIRN_STATUS_OK` is zero; every other value is a
/// failure whose message `cairn_last_error()` returns on the same thread.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CairnStatus {
    Ok = 0,
    /// A null pointer, a bad length, an unknown option value or a misuse of the API.
    InvalidArgument = 1,
    /// The shard (or, for `cairn_store_open` without `create_if_missing`, the directory) does not
    /// exist.
    NotFound = 2,
    /// Stored or supplied bytes do not match their CRC32C.
    ChecksumMismatch = 3,
    /// The caller's buffer is too small; the size needed was written to the length out-parameter.
    BufferTooSmall = 4,
    /// The device holding the store is full. The store keeps serving reads and deletes.
    NoSpace = 5,
    /// A shard is larger than the shard log accepts.
    TooLarge = 6,
    /// A range starts past the end of the shard.
    InvalidRange = 7,
    /// The scheme string does not parse, or shard counts do not match the codec's scheme.
    InvalidScheme = 8,
    /// Fewer than k shards are present: the stripe cannot be rebuilt.
    TooManyErasures = 9,
    /// An I/O error on the store's files.
    Io = 10,
    /// The directory is not a valid store (bad layout file, corrupt segment header).
    Corrupt = 11,
    /// The store stopped accepting writes after an I/O error, or is shutting down.
    Unavailable = 12,
    /// Another handle (in this or another process) has the directory open.
    Locked = 13,
    /// A bug in libcairn (including a caught panic). The handle should be closed.
    Internal = 99,
}

/// An error on its way out through the C boundary.
#[derive(Debug, Clone)]
pub struct FfiError {
    pub status: CairnStatus,
    pub message: String,
}

impl FfiError {
    pub fn new(status: CairnStatus, message: impl Into<String>) -> Self {
        FfiError {
            status,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        FfiError::new(CairnStatus::InvalidArgument, message)
    }
}

impl From<LogError> for FfiError {
    fn from(error: LogError) -> Self {
        let status = match &error {
            LogError::NotFound => CairnStatus::NotFound,
            LogError::ChecksumMismatch { .. } => CairnStatus::ChecksumMismatch,
            LogError::NoSpace => CairnStatus::NoSpace,
            LogError::TooLarge(_) => CairnStatus::TooLarge,
            LogError::InvalidRange { .. } => CairnStatus::InvalidRange,
            LogError::Failed(_) | LogError::Closed => CairnStatus::Unavailable,
            LogError::CorruptSegment { .. } => CairnStatus::Corrupt,
            LogError::Io(_) => CairnStatus::Io,
        };
        FfiError::new(status, error.to_string())
    }
}

impl From<EcError> for FfiError {
    fn from(error: EcError) -> Self {
        let status = match &error {
            EcError::Scheme(_) | EcError::SchemeMismatch { .. } => CairnStatus::InvalidScheme,
            EcError::TooManyErasures { .. } => CairnStatus::TooManyErasures,
            EcError::SingularMatrix => CairnStatus::Internal,
            _ => CairnStatus::InvalidArgument,
        };
        FfiError::new(status, error.to_string())
    }
}

impl From<SchemeError> for FfiError {
    fn from(error: SchemeError) -> Self {
        FfiError::new(CairnStatus::InvalidScheme, error.to_string())
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Records `message` as this thread's last error. Interior NULs (which C cannot carry) are
/// replaced so that the message is never lost.
pub fn set_last_error(message: &str) {
    let text = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|cell| *cell.borrow_mut() = text);
}

/// Pointer to this thread's last error; valid until the next libcairn call on this thread.
pub fn last_error_ptr() -> *const libc::c_char {
    LAST_ERROR.with(|cell| cell.borrow().as_ptr())
}

/// Copy of this thread's last error (for Rust callers and tests).
pub fn last_error_string() -> String {
    LAST_ERROR.with(|cell| cell.borrow().to_string_lossy().into_owned())
}

/// Runs one C entry point: catches panics, records the error message, returns the status.
pub fn guard(body: impl FnOnce() -> Result<(), FfiError>) -> CairnStatus {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => CairnStatus::Ok,
        Ok(Err(error)) => {
            set_last_error(&error.message);
            error.status
        }
        Err(payload) => {
            let reason = payload
                .downcast_ref::<&str>()
                .map(|text| (*text).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic payload".to_owned());
            set_last_error(&format!("internal error (panic): {reason}"));
            CairnStatus::Internal
        }
    }
}

/// Runs an entry point that cannot fail but must still never unwind into C; returns `fallback` on
/// a panic.
pub fn guard_value<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|_| {
        set_last_error("internal error (panic)");
        fallback
    })
}

/// Reads a NUL-terminated UTF-8 C string argument.
///
/// # Safety
/// `pointer` is null or points to a NUL-terminated string valid for the call.
pub unsafe fn c_str_arg<'a>(pointer: *const libc::c_char, name: &str) -> Result<&'a str, FfiError> {
    if pointer.is_null() {
        return Err(FfiError::invalid(format!("{name} is null")));
    }
    // SAFETY: non-null, and the caller promises a NUL-terminated string.
    let text = unsafe { CStr::from_ptr(pointer) };
    text.to_str()
        .map_err(|_| FfiError::invalid(format!("{name} is not valid UTF-8")))
}

/// Builds a slice from a C pointer and length, accepting a null pointer only for length zero.
///
/// # Safety
/// When non-null, `pointer` is valid for reads of `len_bytes` bytes for the call.
pub unsafe fn slice_arg<'a>(
    pointer: *const u8,
    len_bytes: usize,
    name: &str,
) -> Result<&'a [u8], FfiError> {
    if pointer.is_null() {
        if len_bytes == 0 {
            return Ok(&[]);
        }
        return Err(FfiError::invalid(format!(
            "{name} is null but its length is {len_bytes}"
        )));
    }
    if len_bytes > isize::MAX as usize {
        return Err(FfiError::invalid(format!("{name} length is too large")));
    }
    // SAFETY: non-null, bounded length, validity promised by the caller.
    Ok(unsafe { std::slice::from_raw_parts(pointer, len_bytes) })
}

/// Mutable counterpart of [`slice_arg`].
///
/// # Safety
/// When non-null, `pointer` is valid for writes of `len_bytes` bytes for the call and not aliased.
pub unsafe fn slice_arg_mut<'a>(
    pointer: *mut u8,
    len_bytes: usize,
    name: &str,
) -> Result<&'a mut [u8], FfiError> {
    if pointer.is_null() {
        if len_bytes == 0 {
            return Ok(&mut []);
        }
        return Err(FfiError::invalid(format!(
            "{name} is null but its length is {len_bytes}"
        )));
    }
    if len_bytes > isize::MAX as usize {
        return Err(FfiError::invalid(format!("{name} length is too large")));
    }
    // SAFETY: non-null, bounded length, validity and exclusivity promised by the caller.
    Ok(unsafe { std::slice::from_raw_parts_mut(pointer, len_bytes) })
}

/// Turns a required out-pointer into a reference.
///
/// # Safety
/// When non-null, `pointer` is valid for writes of one `T`.
pub unsafe fn out_arg<'a, T>(pointer: *mut T, name: &str) -> Result<&'a mut T, FfiError> {
    // SAFETY: the caller promises validity when non-null.
    unsafe { pointer.as_mut() }.ok_or_else(|| FfiError::invalid(format!("{name} is null")))
}

/// Turns a required in-pointer into a reference.
///
/// # Safety
/// When non-null, `pointer` is valid for reads of one `T`.
pub unsafe fn in_arg<'a, T>(pointer: *const T, name: &str) -> Result<&'a T, FfiError> {
    // SAFETY: the caller promises validity when non-null.
    unsafe { pointer.as_ref() }.ok_or_else(|| FfiError::invalid(format!("{name} is null")))
}

/// A message for `status` (used by `cairn_status_name`).
pub fn status_name(status: CairnStatus) -> &'static CStr {
    match status {
        CairnStatus::Ok => c"ok",
        CairnStatus::InvalidArgument => c"invalid argument",
        CairnStatus::NotFound => c"not found",
        CairnStatus::ChecksumMismatch => c"checksum mismatch",
        CairnStatus::BufferTooSmall => c"buffer too small",
        CairnStatus::NoSpace => c"no space",
        CairnStatus::TooLarge => c"too large",
        CairnStatus::InvalidRange => c"invalid range",
        CairnStatus::InvalidScheme => c"invalid scheme",
        CairnStatus::TooManyErasures => c"too many erasures",
        CairnStatus::Io => c"I/O error",
        CairnStatus::Corrupt => c"corrupt store",
        CairnStatus::Unavailable => c"unavailable",
        CairnStatus::Locked => c"locked",
        CairnStatus::Internal => c"internal error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_internal_with_its_message() {
        let status = guard(|| panic!("boom at the boundary"));
        assert_eq!(status, CairnStatus::Internal);
        assert!(last_error_string().contains("boom at the boundary"));
        assert_eq!(guard_value(7, || panic!("again")), 7);
    }

    #[test]
    fn errors_set_the_thread_local_message_per_thread() {
        let status = guard(|| Err(FfiError::invalid("first \0 message")));
        assert_eq!(status, CairnStatus::InvalidArgument);
        assert_eq!(last_error_string(), "first \\0 message");
        std::thread::spawn(|| assert_eq!(last_error_string(), ""))
            .join()
            .unwrap();
        assert_eq!(guard(|| Ok(())), CairnStatus::Ok);
    }

    #[test]
    fn log_errors_map_to_statuses() {
        let cases = [
            (LogError::NotFound, CairnStatus::NotFound),
            (LogError::NoSpace, CairnStatus::NoSpace),
            (LogError::TooLarge(1), CairnStatus::TooLarge),
            (LogError::Closed, CairnStatus::Unavailable),
            (LogError::Failed("eio".into()), CairnStatus::Unavailable),
            (
                LogError::InvalidRange {
                    offset: 2,
                    length: 1,
                    shard_length: 1,
                },
                CairnStatus::InvalidRange,
            ),
            (LogError::Io(std::io::Error::other("x")), CairnStatus::Io),
        ];
        for (error, status) in cases {
            assert_eq!(FfiError::from(error).status, status);
        }
    }
}
