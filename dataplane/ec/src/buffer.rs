//! 4096-byte-aligned piece buffers and a pool that recycles them.
//!
//! Model: a shard piece lives in one [`AlignedBuf`] from encode to the disk (or from the disk to
//! decode), so the storage node can hand it straight to O_DIRECT I/O without copying. A
//! [`PooledBuf`] returns its buffer to the [`BufferPool`] when dropped, so steady-state streaming
//! allocates nothing per stripe.
//!
//! Invariants: every buffer's address and capacity are multiples of [`BUFFER_ALIGN_BYTES`]; a
//! pooled buffer's visible length is the pool's `buffer_size_bytes` (which need not be a multiple
//! of 4096; the capacity is rounded up). Recycled buffers keep old contents: writers must
//! overwrite (or zero) every byte they publish. The pool keeps at most `max_idle_buffers` idle
//! buffers so a burst does not pin memory forever. Pools are `Send + Sync` (a mutex that is
//! uncontended when, as intended, each core owns its pool).

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Alignment of every piece buffer: the O_DIRECT logical block size of the shard log.
pub const BUFFER_ALIGN_BYTES: usize = 4096;

/// An owned, zero-initialised, 4096-byte-aligned byte buffer.
pub struct AlignedBuf {
    pointer: NonNull<u8>,
    capacity_bytes: usize,
}

// SAFETY: AlignedBuf owns its allocation exclusively (like Vec<u8>).
unsafe impl Send for AlignedBuf {}
// SAFETY: shared access only hands out `&[u8]`.
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// Allocates `len_bytes` rounded up to a multiple of 4096 (at least 4096), zeroed.
    pub fn new_zeroed(len_bytes: usize) -> Self {
        let capacity_bytes = len_bytes
            .max(1)
            .div_ceil(BUFFER_ALIGN_BYTES)
            .checked_mul(BUFFER_ALIGN_BYTES)
            .expect("buffer size overflows usize");
        let layout = Layout::from_size_align(capacity_bytes, BUFFER_ALIGN_BYTES)
            .expect("valid aligned layout");
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { alloc_zeroed(layout) };
        let pointer = NonNull::new(raw).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        AlignedBuf {
            pointer,
            capacity_bytes,
        }
    }

    /// Length in bytes (the rounded-up capacity).
    pub fn capacity_bytes(&self) -> usize {
        self.capacity_bytes
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        let layout = Layout::from_size_align(self.capacity_bytes, BUFFER_ALIGN_BYTES)
            .expect("layout was valid at allocation");
        // SAFETY: allocated in `new_zeroed` with this exact layout.
        unsafe { dealloc(self.pointer.as_ptr(), layout) };
    }
}

impl Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the allocation holds `capacity_bytes` initialised (zeroed) bytes.
        unsafe { std::slice::from_raw_parts(self.pointer.as_ptr(), self.capacity_bytes) }
    }
}

impl DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, and `&mut self` guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.pointer.as_ptr(), self.capacity_bytes) }
    }
}

impl fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AlignedBuf({} bytes)", self.capacity_bytes)
    }
}

struct PoolShared {
    buffer_size_bytes: usize,
    max_idle_buffers: usize,
    idle: Mutex<Vec<AlignedBuf>>,
    /// Buffers ever allocated by this pool: flat in steady state (tests assert it).
    allocated_buffers: AtomicUsize,
}

/// A pool of equally sized aligned buffers. Cloning shares the pool.
#[derive(Clone)]
pub struct BufferPool {
    shared: Arc<PoolShared>,
}

impl BufferPool {
    /// A pool of `buffer_size_bytes` buffers that keeps up to `max_idle_buffers` idle ones.
    pub fn new(buffer_size_bytes: usize, max_idle_buffers: usize) -> Self {
        BufferPool {
            shared: Arc::new(PoolShared {
                buffer_size_bytes,
                max_idle_buffers,
                idle: Mutex::new(Vec::with_capacity(max_idle_buffers)),
                allocated_buffers: AtomicUsize::new(0),
            }),
        }
    }

    pub fn buffer_size_bytes(&self) -> usize {
        self.shared.buffer_size_bytes
    }

    /// Idle buffers currently held (for tests and metrics).
    pub fn idle_buffers(&self) -> usize {
        self.shared.idle.lock().expect("pool mutex").len()
    }

    /// Buffers this pool has allocated since it was created (for tests and metrics).
    pub fn allocated_buffers(&self) -> usize {
        self.shared.allocated_buffers.load(Ordering::Relaxed)
    }

    /// A buffer of `buffer_size_bytes` visible bytes; recycled contents are unspecified.
    pub fn take(&self) -> PooledBuf {
        let recycled = self.shared.idle.lock().expect("pool mutex").pop();
        let buf = recycled.unwrap_or_else(|| {
            self.shared
                .allocated_buffers
                .fetch_add(1, Ordering::Relaxed);
            AlignedBuf::new_zeroed(self.shared.buffer_size_bytes)
        });
        PooledBuf {
            buf: Some(buf),
            len_bytes: self.shared.buffer_size_bytes,
            pool: Arc::clone(&self.shared),
        }
    }

    /// Whether `buf` came from this pool.
    pub fn owns(&self, buf: &PooledBuf) -> bool {
        Arc::ptr_eq(&self.shared, &buf.pool)
    }
}

impl fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufferPool")
            .field("buffer_size_bytes", &self.shared.buffer_size_bytes)
            .field("idle_buffers", &self.idle_buffers())
            .finish()
    }
}

/// An aligned buffer on loan from a [`BufferPool`]; goes back to the pool on drop.
pub struct PooledBuf {
    /// Always `Some` until drop.
    buf: Option<AlignedBuf>,
    len_bytes: usize,
    pool: Arc<PoolShared>,
}

impl PooledBuf {
    /// The whole aligned allocation (capacity rounded up to 4096), e.g. for an O_DIRECT write
    /// that must cover full blocks.
    pub fn as_aligned(&self) -> &AlignedBuf {
        self.buf.as_ref().expect("present until drop")
    }

    pub fn as_aligned_mut(&mut self) -> &mut AlignedBuf {
        self.buf.as_mut().expect("present until drop")
    }
}

impl Deref for PooledBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.as_aligned()[..self.len_bytes]
    }
}

impl DerefMut for PooledBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        let len_bytes = self.len_bytes;
        &mut self.as_aligned_mut()[..len_bytes]
    }
}

impl Drop for PooledBuf {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            // A poisoned mutex only means another thread panicked mid-push; dropping the buffer
            // instead of recycling it is always safe.
            if let Ok(mut idle) = self.pool.idle.lock()
                && idle.len() < self.pool.max_idle_buffers
            {
                idle.push(buf);
            }
        }
    }
}

impl fmt::Debug for PooledBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PooledBuf({} bytes)", self.len_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_buffers_are_aligned_and_recycled() {
        let pool = BufferPool::new(5000, 2);
        let a = pool.take();
        assert_eq!(a.len(), 5000);
        assert_eq!(a.as_aligned().capacity_bytes(), 8192);
        assert_eq!(a.as_ptr() as usize % BUFFER_ALIGN_BYTES, 0);
        let address = a.as_ptr();
        drop(a);
        assert_eq!(pool.idle_buffers(), 1);
        let b = pool.take();
        assert_eq!(b.as_ptr(), address, "the idle buffer is reused");
        let c = pool.take();
        let d = pool.take();
        drop((b, c, d));
        assert_eq!(pool.idle_buffers(), 2, "idle buffers are capped");
    }
}
