//! The wasm32 exports (ABI version [`crate::ABI_VERSION`], documented in edge-wasm/README.md):
//! `memory`, `cairn_abi_version() -> i32`, `cairn_alloc(len: i32) -> i32` and
//! `cairn_route(ptr: i32, len: i32) -> i64` (decision pointer in the high 32 bits, length in the
//! low 32).
//!
//! Model: one request at a time. Memory comes from a bump arena that starts at the end of the
//! module's initial memory and grows with `memory.grow`; `cairn_alloc` empties the arena before
//! handing out the request buffer, so everything from the previous request (its record and its
//! decision) is reclaimed at once. Freeing is a no-op. The host bounds the arena through its
//! memory cap; an arena that cannot grow makes the allocation fail, which aborts (traps).

use core::alloc::{GlobalAlloc, Layout};
use core::arch::wasm32;
use core::cell::UnsafeCell;

const PAGE_BYTES: usize = 65_536;

struct Arena {
    /// (start, next free byte, end of the memory we grew); 0 start = not initialised yet.
    state: UnsafeCell<(usize, usize, usize)>,
}

// Safety: wasm32-unknown-unknown without the atomics feature is single-threaded.
unsafe impl Sync for Arena {}

impl Arena {
    fn reset(&self) {
        // Safety: single-threaded (see above) and no allocation is alive across a reset (the
        // host calls `cairn_alloc` only between requests).
        let state = unsafe { &mut *self.state.get() };
        state.1 = state.0;
    }
}

unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // Safety: single-threaded.
        let state = unsafe { &mut *self.state.get() };
        if state.0 == 0 {
            let end = wasm32::memory_size(0) * PAGE_BYTES;
            *state = (end, end, end);
        }
        let align = layout.align();
        let start = (state.1 + align - 1) & !(align - 1);
        let Some(new_next) = start.checked_add(layout.size()) else {
            return core::ptr::null_mut();
        };
        if new_next > state.2 {
            let pages = (new_next - state.2).div_ceil(PAGE_BYTES);
            if wasm32::memory_grow(0, pages) == usize::MAX {
                return core::ptr::null_mut();
            }
            state.2 += pages * PAGE_BYTES;
        }
        state.1 = new_next;
        start as *mut u8
    }

    unsafe fn dealloc(&self, _pointer: *mut u8, _layout: Layout) {}
}

#[global_allocator]
static ARENA: Arena = Arena {
    state: UnsafeCell::new((0, 0, 0)),
};

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    wasm32::unreachable()
}

#[unsafe(no_mangle)]
pub extern "C" fn cairn_abi_version() -> u32 {
    crate::ABI_VERSION
}

/// Empties the arena and returns a buffer of `length` bytes for the request record.
#[unsafe(no_mangle)]
pub extern "C" fn cairn_alloc(length: u32) -> u32 {
    ARENA.reset();
    let layout = match Layout::from_size_align(length.max(1) as usize, 8) {
        Ok(layout) => layout,
        Err(_) => wasm32::unreachable(),
    };
    // Safety: the layout has a non-zero size.
    let pointer = unsafe { ARENA.alloc(layout) };
    if pointer.is_null() {
        wasm32::unreachable()
    }
    pointer as u32
}

/// Routes the request record at `pointer..pointer + length` (written by the host into the buffer
/// `cairn_alloc` returned) and returns the decision record's location.
#[unsafe(no_mangle)]
pub extern "C" fn cairn_route(pointer: u32, length: u32) -> u64 {
    // Safety: the host wrote `length` bytes at `pointer`, inside the buffer from `cairn_alloc`.
    let request = unsafe { core::slice::from_raw_parts(pointer as *const u8, length as usize) };
    let decision = crate::route_record(request);
    let location = ((decision.as_ptr() as u64) << 32) | decision.len() as u64;
    // The arena owns the bytes until the next `cairn_alloc`; do not run Vec's (no-op) free.
    core::mem::forget(decision);
    location
}
