//! Raw bindings to ISA-L's erasure-code API (Debian `libisal-dev`, ISA-L 2.30).
//!
//! Model: ISA-L works over GF(2^8). An erasure code is a `rows x k` coefficient matrix; the caller
//! expands the rows it wants to compute into lookup tables (`ec_init_tables`, 32 bytes per
//! coefficient) and then multiplies `k` source buffers into `rows` destination buffers
//! (`ec_encode_data`). Decoding is the same multiplication with a matrix derived from the inverse of
//! the surviving rows (`gf_invert_matrix`).
//!
//! Invariants the caller must uphold (ISA-L does not check them): every buffer pointer is valid
//! for `len` bytes, destination buffers do not alias sources or each other, `gftbls` holds
//! `32 * k * rows` bytes, and matrices hold `rows * k` (or `n * n`) bytes. The declarations were
//! written by hand from `/usr/include/isa-l/erasure_code.h`; `int` is `c_int`.

#![allow(unsafe_code)]

use std::os::raw::{c_int, c_uchar};

unsafe extern "C" {
    /// Expands a `rows x k` coefficient matrix `a` into `32 * k * rows` bytes of tables `gftbls`.
    pub fn ec_init_tables(k: c_int, rows: c_int, a: *mut c_uchar, gftbls: *mut c_uchar);

    /// Computes `rows` output buffers of `len` bytes from `k` input buffers with the tables built
    /// by [`ec_init_tables`]. Dispatches at run time to the best SIMD version for the CPU.
    pub fn ec_encode_data(
        len: c_int,
        k: c_int,
        rows: c_int,
        gftbls: *mut c_uchar,
        data: *mut *mut c_uchar,
        coding: *mut *mut c_uchar,
    );

    /// Portable (non-SIMD) version of [`ec_encode_data`], same contract.
    pub fn ec_encode_data_base(
        len: c_int,
        srcs: c_int,
        dests: c_int,
        v: *mut c_uchar,
        src: *mut *mut c_uchar,
        dest: *mut *mut c_uchar,
    );

    /// Fills `a` (`m * k` bytes, row-major) with an `m x k` matrix whose top `k x k` block is the
    /// identity and whose remaining rows are a Cauchy matrix; every `k x k` submatrix is invertible.
    pub fn gf_gen_cauchy1_matrix(a: *mut c_uchar, m: c_int, k: c_int);

    /// Vandermonde-style generator; not invertible for every erasure set, kept for completeness.
    pub fn gf_gen_rs_matrix(a: *mut c_uchar, m: c_int, k: c_int);

    /// Inverts the `n x n` matrix `input` into `output`. Returns 0 on success, non-zero when the
    /// input is singular. `input` is clobbered.
    pub fn gf_invert_matrix(input: *mut c_uchar, output: *mut c_uchar, n: c_int) -> c_int;

    /// Product of two GF(2^8) elements.
    pub fn gf_mul(a: c_uchar, b: c_uchar) -> c_uchar;

    /// Multiplicative inverse of a GF(2^8) element (`gf_inv(0)` is 0).
    pub fn gf_inv(a: c_uchar) -> c_uchar;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gf_mul_and_inverse_agree() {
        for a in 1..=255u8 {
            // SAFETY: pure functions over bytes.
            let product = unsafe { gf_mul(a, gf_inv(a)) };
            assert_eq!(product, 1, "a = {a}");
        }
    }

    #[test]
    fn cauchy_matrix_is_systematic_and_encode_links() {
        let (k, m) = (4usize, 2usize);
        let mut matrix = vec![0u8; (k + m) * k];
        // SAFETY: matrix holds (k + m) * k bytes.
        unsafe { gf_gen_cauchy1_matrix(matrix.as_mut_ptr(), (k + m) as c_int, k as c_int) };
        for row in 0..k {
            for column in 0..k {
                assert_eq!(matrix[row * k + column], u8::from(row == column));
            }
        }
        let mut tables = vec![0u8; 32 * k * m];
        // SAFETY: the parity rows start at k * k; tables holds 32 * k * m bytes.
        unsafe {
            ec_init_tables(
                k as c_int,
                m as c_int,
                matrix[k * k..].as_mut_ptr(),
                tables.as_mut_ptr(),
            )
        };
        let len = 64usize;
        let mut data: Vec<Vec<u8>> = (0..k).map(|i| vec![i as u8 + 1; len]).collect();
        let mut parity: Vec<Vec<u8>> = (0..m).map(|_| vec![0u8; len]).collect();
        let mut data_pointers: Vec<*mut u8> = data.iter_mut().map(|d| d.as_mut_ptr()).collect();
        let mut parity_pointers: Vec<*mut u8> = parity.iter_mut().map(|p| p.as_mut_ptr()).collect();
        // SAFETY: k inputs and m outputs of len bytes each, no aliasing.
        unsafe {
            ec_encode_data(
                len as c_int,
                k as c_int,
                m as c_int,
                tables.as_mut_ptr(),
                data_pointers.as_mut_ptr(),
                parity_pointers.as_mut_ptr(),
            )
        };
        // Every output byte is the GF dot product of its matrix row with the input bytes.
        for (p, out) in parity.iter().enumerate() {
            let mut expected = 0u8;
            for (i, input) in data.iter().enumerate() {
                // SAFETY: pure function.
                expected ^= unsafe { gf_mul(matrix[(k + p) * k + i], input[0]) };
            }
            assert!(out.iter().all(|&b| b == expected));
        }
    }
}
