//! glibc malloc settings for the whole process, applied once at start.
//!
//! The data path allocates and frees buffers of about a stripe (k × the piece size: 1 MiB with
//! EC 4+2 and 256 KiB pieces) many times a second: decoded stripes, decrypted plaintext, pieces
//! read from the storage nodes. glibc serves requests above its mmap threshold (128 KiB at start,
//! raised only when such a block is freed, and reset by trimming) with a fresh `mmap`, and trims
//! a thread arena's free top back to the kernel once it passes the trim threshold. Either way
//! every such buffer came back as new pages: a page fault and a zeroed page per 4 KiB on first
//! touch, `munmap` and a TLB shootdown on free. A profile of a 16 MiB GET load
//! (`perf record -g`, `cairn dev`, c8) put about 11 % of the process's CPU there.
//!
//! Settings (fixed, so glibc's dynamic threshold no longer moves):
//! - [`MMAP_THRESHOLD_BYTES`]: blocks up to 4 MiB come from the arenas and are reused;
//! - [`TRIM_THRESHOLD_BYTES`]: an arena keeps up to 32 MiB of free top before returning it.
//!
//! Measured (benches/results/README.md, "The GET path's buffers"): GET 16 MiB c8 against
//! `cairn dev`, server CPU per MB 2.65 → 2.36 and throughput 1.11× (median of 5 alternating
//! rounds), peak RSS 395 → 439 MiB; PUT 16 MiB and PUT 4 KiB unchanged.
//!
//! An operator who sets glibc's malloc tunables (`GLIBC_TUNABLES=glibc.malloc.…`) keeps them:
//! nothing is changed then.
//!
//! # Small blocks: mimalloc
//!
//! Requests also allocate and free many small blocks on every executor thread (headers, keys,
//! records, envelopes, futures): glibc's malloc, free and consolidation took about a tenth of a
//! 4 KiB GET's CPU. [`SplitAllocator`], the process's global allocator, serves blocks below
//! [`LARGE_BLOCK_BYTES`] from mimalloc and larger ones from glibc with the settings above,
//! which keep stripe-sized buffers in the arenas (mimalloc for every block measured 5–7 % more
//! CPU per byte of 16 MiB PUT; see benches/results/README.md, "Metadata client per executor,
//! and mimalloc for small blocks").
//! Rust gives the layout back on every free and resize, so which allocator owns a block follows
//! from its size and needs no bookkeeping.

use std::alloc::{GlobalAlloc, Layout, System};

/// Blocks of at least this many bytes come from glibc, smaller ones from mimalloc.
pub const LARGE_BLOCK_BYTES: usize = 64 * 1024;

/// mimalloc below [`LARGE_BLOCK_BYTES`], glibc (`System`) from there up.
pub struct SplitAllocator;

fn is_large(size: usize) -> bool {
    size >= LARGE_BLOCK_BYTES
}

// SAFETY: every block is freed or resized by the allocator that served it, which its size (part
// of the layout Rust passes back) determines; a resize across the threshold allocates from the
// other allocator, copies and frees the old block with its own.
unsafe impl GlobalAlloc for SplitAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_large(layout.size()) {
            unsafe { System.alloc(layout) }
        } else {
            unsafe { mimalloc::MiMalloc.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_large(layout.size()) {
            unsafe { System.alloc_zeroed(layout) }
        } else {
            unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_large(layout.size()) {
            unsafe { System.dealloc(ptr, layout) }
        } else {
            unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        match (is_large(layout.size()), is_large(new_size)) {
            (true, true) => unsafe { System.realloc(ptr, layout, new_size) },
            (false, false) => unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) },
            _ => {
                // SAFETY: the caller guarantees `new_size`, rounded up to `layout.align()`, does
                // not overflow isize, which is what a layout needs.
                let new_layout =
                    unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
                let moved = unsafe { self.alloc(new_layout) };
                if !moved.is_null() {
                    unsafe {
                        std::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                }
                moved
            }
        }
    }
}

/// Largest block glibc serves from an arena rather than a fresh mapping.
pub const MMAP_THRESHOLD_BYTES: i32 = 4 << 20;
/// Free top of an arena that glibc keeps before trimming it.
pub const TRIM_THRESHOLD_BYTES: i32 = 32 << 20;

/// Applies the settings unless the environment sets malloc tunables. Call it first in `main`,
/// before any thread starts.
pub fn configure() {
    let operator_tuned =
        std::env::var("GLIBC_TUNABLES").is_ok_and(|tunables| tunables.contains("glibc.malloc."));
    if !operator_tuned {
        apply();
    }
}

/// Whether glibc took both settings.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn apply() -> bool {
    // SAFETY: mallopt only changes allocator parameters; it is called before other threads run.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn apply() -> bool {
    false
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn a_stripe_sized_buffer_comes_from_the_arena() {
        // glibc counts the blocks it serves with mmap (`hblks`). At its start-up threshold
        // (128 KiB) a 1 MiB buffer is one more such block; with the settings it is not.
        assert!(super::apply());
        // SAFETY: mallinfo2 only reads allocator statistics.
        let mapped_blocks = || unsafe { libc::mallinfo2() }.hblks;
        let before = mapped_blocks();
        let buffer = std::hint::black_box(vec![1u8; 1 << 20]);
        let during = mapped_blocks();
        drop(buffer);
        assert_eq!(during, before, "a 1 MiB buffer was a fresh mapping");
    }

    #[test]
    fn blocks_keep_their_bytes_across_the_threshold() {
        use super::{LARGE_BLOCK_BYTES, SplitAllocator};
        use std::alloc::{GlobalAlloc, Layout};
        let pattern = |length: usize| {
            (0..length)
                .map(|i| (i * 31 % 251) as u8)
                .collect::<Vec<_>>()
        };
        // Small → large → small → large again, and within each side, with a 64-byte alignment.
        let sizes = [
            100,
            LARGE_BLOCK_BYTES - 1,
            LARGE_BLOCK_BYTES,
            3 * LARGE_BLOCK_BYTES,
            LARGE_BLOCK_BYTES - 64,
            200,
            5 * LARGE_BLOCK_BYTES,
        ];
        let allocator = SplitAllocator;
        unsafe {
            let mut layout = Layout::from_size_align(sizes[0], 64).unwrap();
            let mut block = allocator.alloc(layout);
            assert!(!block.is_null());
            std::ptr::copy_nonoverlapping(pattern(sizes[0]).as_ptr(), block, sizes[0]);
            for &size in &sizes[1..] {
                block = allocator.realloc(block, layout, size);
                assert!(!block.is_null());
                assert_eq!(block as usize % 64, 0, "alignment kept at {size} bytes");
                let kept = layout.size().min(size);
                let bytes = std::slice::from_raw_parts(block, kept);
                assert_eq!(bytes, &pattern(layout.size())[..kept], "resize to {size}");
                layout = Layout::from_size_align(size, 64).unwrap();
                std::ptr::copy_nonoverlapping(pattern(size).as_ptr(), block, size);
            }
            allocator.dealloc(block, layout);
            for size in [1, LARGE_BLOCK_BYTES - 1, LARGE_BLOCK_BYTES, 1 << 20] {
                let layout = Layout::from_size_align(size, 8).unwrap();
                let zeroed = allocator.alloc_zeroed(layout);
                assert!(
                    std::slice::from_raw_parts(zeroed, size)
                        .iter()
                        .all(|byte| *byte == 0)
                );
                allocator.dealloc(zeroed, layout);
            }
        }
    }
}
