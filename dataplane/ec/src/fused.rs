//! Fused encode + CRC32C kernels for the `isal-cauchy` code on x86-64 (GFNI or AVX2, plus SSE4.2).
//!
//! Why: the streaming encoder must checksum every piece. Done as a separate pass, CRC32C (one
//! `crc32` instruction per 8 bytes, on the integer ports) costs as much as the encode itself
//! (byte shuffles on the vector ports). Interleaving both in one loop lets the two run on
//! different execution ports at the same time and reads each byte once.
//!
//! Model: exactly ISA-L's arithmetic. Parity shard p is the XOR over data shards j of
//! `generator[k + p][j] * data[j]` in GF(2^8) (polynomial 0x11d). Multiplying by a constant is a
//! linear map on the 8 bits of a byte, so the GFNI kernel applies it as one 8x8 bit-matrix
//! (`vgf2p8affineqb`) per 32 bytes; the AVX2 kernel splits each byte into nibbles and looks both
//! up in 16-entry product tables (`vpshufb`), as ISA-L's AVX2 code does. CPUs with GFNI run the
//! first (ISA-L itself uses GFNI there, and the shuffle kernel cannot keep up with it).
//! The output is therefore byte-identical to `ec_encode_data` with the same matrix — the shared
//! tests compare them on random inputs, and the golden tests pin both.
//!
//! Invariants: `data` holds k pointers and `parity` M pointers, all valid for `len_bytes`;
//! parity buffers alias nothing else. CRC states are the raw (inverted) CRC32C registers so
//! blocks can be chained.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

/// Everything a kernel needs to multiply by one coefficient.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(32))]
pub(crate) struct CoefficientTables {
    /// The low-nibble product table twice, then the high-nibble table twice, so each loads
    /// straight into a 256-bit register: `c * x = nibbles[x & 15] ^ nibbles[32 + (x >> 4)]`.
    pub(crate) nibbles: [u8; 64],
    /// The 8x8 bit matrix of `x -> c * x` in GFNI's layout, repeated for the four 64-bit lanes.
    pub(crate) affine: [u64; 4],
}

/// Builds the tables for one coefficient from a GF(2^8) multiply function.
pub(crate) fn coefficient_tables(
    gf_mul: impl Fn(u8, u8) -> u8,
    coefficient: u8,
) -> CoefficientTables {
    let mut nibbles = [0u8; 64];
    for x in 0..16u8 {
        let low = gf_mul(coefficient, x);
        let high = gf_mul(coefficient, x << 4);
        nibbles[usize::from(x)] = low;
        nibbles[16 + usize::from(x)] = low;
        nibbles[32 + usize::from(x)] = high;
        nibbles[48 + usize::from(x)] = high;
    }
    // `vgf2p8affineqb` computes output bit i as the parity of (matrix byte 7 - i) AND x. Column j
    // of the map is c * 2^j, so matrix byte 7 - i has bit j set when bit i of c * 2^j is set.
    let mut matrix = 0u64;
    for output_bit in 0..8 {
        let mut row = 0u8;
        for input_bit in 0..8 {
            if gf_mul(coefficient, 1 << input_bit) & (1 << output_bit) != 0 {
                row |= 1 << input_bit;
            }
        }
        matrix |= u64::from(row) << (8 * (7 - output_bit));
    }
    CoefficientTables {
        nibbles,
        affine: [matrix; 4],
    }
}

/// The fused kernels, fastest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FusedKernel {
    /// GF(2^8) products with `vgf2p8affineqb` (GFNI + AVX2).
    Gfni,
    /// GF(2^8) products with nibble tables and `vpshufb` (AVX2).
    Avx2Shuffle,
}

impl FusedKernel {
    /// Whether the running CPU can run this kernel.
    pub fn is_supported(self) -> bool {
        let base = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("sse4.2");
        match self {
            FusedKernel::Gfni => base && is_x86_feature_detected!("gfni"),
            FusedKernel::Avx2Shuffle => base,
        }
    }

    /// The fastest kernel the running CPU supports.
    pub fn best() -> Option<FusedKernel> {
        [FusedKernel::Gfni, FusedKernel::Avx2Shuffle]
            .into_iter()
            .find(|kernel| kernel.is_supported())
    }
}

/// `encode_crc_block` for the chosen kernel.
///
/// # Safety
/// `kernel.is_supported()`, and the contract of [`encode_crc_block`].
pub(crate) unsafe fn encode_crc_block_with<const M: usize>(
    kernel: FusedKernel,
    len_bytes: usize,
    tables: &[CoefficientTables],
    data: &[*const u8],
    parity: &[*mut u8; M],
    data_states: Option<&mut [u64]>,
    parity_states: &mut [u64; M],
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        match kernel {
            FusedKernel::Gfni => encode_crc_block_gfni::<M>(
                len_bytes,
                tables,
                data,
                parity,
                data_states,
                parity_states,
            ),
            FusedKernel::Avx2Shuffle => {
                encode_crc_block::<M>(len_bytes, tables, data, parity, data_states, parity_states)
            }
        }
    }
}

/// Folds 32 bytes at `source` into a raw CRC32C register.
///
/// # Safety
/// SSE4.2 is available and `source` is valid for 32 bytes.
#[inline]
#[target_feature(enable = "sse4.2")]
unsafe fn crc32c_32_bytes(state: u64, source: *const u8) -> u64 {
    let words = source as *const u64;
    // SAFETY: 4 x 8 bytes within the 32 the caller guarantees.
    unsafe {
        let mut crc = _mm_crc32_u64(state, words.read_unaligned());
        crc = _mm_crc32_u64(crc, words.add(1).read_unaligned());
        crc = _mm_crc32_u64(crc, words.add(2).read_unaligned());
        _mm_crc32_u64(crc, words.add(3).read_unaligned())
    }
}

/// The GFNI kernel; same contract as [`encode_crc_block`], CPU must also support GFNI.
#[target_feature(enable = "avx2,gfni,sse4.2")]
unsafe fn encode_crc_block_gfni<const M: usize>(
    len_bytes: usize,
    tables: &[CoefficientTables],
    data: &[*const u8],
    parity: &[*mut u8; M],
    mut data_states: Option<&mut [u64]>,
    parity_states: &mut [u64; M],
) {
    debug_assert_eq!(len_bytes % 32, 0);
    let k = data.len();
    debug_assert!(tables.len() >= M * k);
    let mut offset = 0;
    while offset < len_bytes {
        let mut accumulators = [_mm256_setzero_si256(); M];
        for j in 0..k {
            // SAFETY (whole block): offsets stay below len_bytes, for which every pointer is
            // valid; table indices are below M * k.
            unsafe {
                let source = (*data.get_unchecked(j)).add(offset);
                let bytes = _mm256_loadu_si256(source as *const __m256i);
                if let Some(states) = data_states.as_deref_mut() {
                    let state = states.get_unchecked_mut(j);
                    *state = crc32c_32_bytes(*state, source);
                }
                for (p, accumulator) in accumulators.iter_mut().enumerate() {
                    let matrix = tables.get_unchecked(p * k + j).affine.as_ptr();
                    let matrix = _mm256_load_si256(matrix as *const __m256i);
                    let product = _mm256_gf2p8affine_epi64_epi8::<0>(bytes, matrix);
                    *accumulator = _mm256_xor_si256(*accumulator, product);
                }
            }
        }
        for p in 0..M {
            // SAFETY: as above; the parity buffer is exclusively ours.
            unsafe {
                let target = parity[p].add(offset);
                _mm256_storeu_si256(target as *mut __m256i, accumulators[p]);
                parity_states[p] = crc32c_32_bytes(parity_states[p], target);
            }
        }
        offset += 32;
    }
}

/// The AVX2 shuffle kernel. Encodes `M` parity shards from k data shards over the first `len_bytes` (a multiple of 32),
/// updating the raw CRC32C states of the parity shards and, when `data_states` is given, of the
/// data shards. `tables[p * k + j]` holds the coefficient of data shard j in parity shard p.
///
/// # Safety
/// The CPU supports AVX2 and SSE4.2; pointers are valid as the module header states;
/// `tables.len() >= M * k`; `data_states`, if given, has k entries.
#[target_feature(enable = "avx2,sse4.2")]
unsafe fn encode_crc_block<const M: usize>(
    len_bytes: usize,
    tables: &[CoefficientTables],
    data: &[*const u8],
    parity: &[*mut u8; M],
    mut data_states: Option<&mut [u64]>,
    parity_states: &mut [u64; M],
) {
    debug_assert_eq!(len_bytes % 32, 0);
    let k = data.len();
    debug_assert!(tables.len() >= M * k);
    let nibble_mask = _mm256_set1_epi8(0x0f);
    let mut offset = 0;
    while offset < len_bytes {
        let mut accumulators = [_mm256_setzero_si256(); M];
        for j in 0..k {
            // SAFETY (whole block): offsets stay below len_bytes, for which every pointer is
            // valid; table indices are below M * k.
            unsafe {
                let source = (*data.get_unchecked(j)).add(offset);
                let bytes = _mm256_loadu_si256(source as *const __m256i);
                if let Some(states) = data_states.as_deref_mut() {
                    let state = states.get_unchecked_mut(j);
                    *state = crc32c_32_bytes(*state, source);
                }
                let low = _mm256_and_si256(bytes, nibble_mask);
                let high = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), nibble_mask);
                for (p, accumulator) in accumulators.iter_mut().enumerate() {
                    let table = tables.get_unchecked(p * k + j).nibbles.as_ptr();
                    let low_table = _mm256_loadu_si256(table as *const __m256i);
                    let high_table = _mm256_loadu_si256(table.add(32) as *const __m256i);
                    let product = _mm256_xor_si256(
                        _mm256_shuffle_epi8(low_table, low),
                        _mm256_shuffle_epi8(high_table, high),
                    );
                    *accumulator = _mm256_xor_si256(*accumulator, product);
                }
            }
        }
        for p in 0..M {
            // SAFETY: as above; the parity buffer is exclusively ours.
            unsafe {
                let target = parity[p].add(offset);
                _mm256_storeu_si256(target as *mut __m256i, accumulators[p]);
                let value = accumulators[p];
                let mut crc = parity_states[p];
                crc = _mm_crc32_u64(crc, _mm256_extract_epi64::<0>(value) as u64);
                crc = _mm_crc32_u64(crc, _mm256_extract_epi64::<1>(value) as u64);
                crc = _mm_crc32_u64(crc, _mm256_extract_epi64::<2>(value) as u64);
                crc = _mm_crc32_u64(crc, _mm256_extract_epi64::<3>(value) as u64);
                parity_states[p] = crc;
            }
        }
        offset += 32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GF(2^8) product with polynomial 0x11d, independent of ISA-L.
    fn reference_gf_mul(mut a: u8, mut b: u8) -> u8 {
        let mut product = 0u8;
        while b != 0 {
            if b & 1 != 0 {
                product ^= a;
            }
            let carry = a & 0x80 != 0;
            a <<= 1;
            if carry {
                a ^= 0x1d;
            }
            b >>= 1;
        }
        product
    }

    /// Scalar model of `vgf2p8affineqb` with a zero constant.
    fn affine_byte(matrix: u64, x: u8) -> u8 {
        (0..8).fold(0u8, |out, bit| {
            let row = (matrix >> (8 * (7 - bit))) as u8;
            out | ((((row & x).count_ones() & 1) as u8) << bit)
        })
    }

    #[test]
    fn tables_multiply_by_the_coefficient() {
        for coefficient in 0..=255u8 {
            let tables = coefficient_tables(reference_gf_mul, coefficient);
            for x in 0..=255u8 {
                let expected = reference_gf_mul(coefficient, x);
                let by_nibbles =
                    tables.nibbles[usize::from(x & 15)] ^ tables.nibbles[32 + usize::from(x >> 4)];
                assert_eq!(by_nibbles, expected, "nibbles c={coefficient} x={x}");
                assert_eq!(
                    affine_byte(tables.affine[0], x),
                    expected,
                    "affine c={coefficient} x={x}"
                );
            }
        }
    }
}
