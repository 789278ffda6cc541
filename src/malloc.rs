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
}
