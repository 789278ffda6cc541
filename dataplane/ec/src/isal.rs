//! ISA-L backend: Cauchy generator matrix, `ec_encode_data` for both encode and reconstruction.
//!
//! Model: the `(k + m) x k` generator matrix from `gf_gen_cauchy1_matrix` is the identity on top
//! (systematic) and a Cauchy matrix below, so every k x k submatrix is invertible — any k
//! survivors determine the data. To rebuild, take the generator rows of k survivors, invert that
//! k x k matrix, and express each wanted shard as (its generator row) x (inverse): for a data shard
//! that is just a row of the inverse. The resulting `targets x k` matrix goes through
//! `ec_init_tables` and `ec_encode_data` exactly like encoding.
//!
//! `encode_with_crc32c` (the streaming write path) runs Cairn's fused encode + CRC32C kernel
//! (`fused.rs`) when the CPU allows: same matrix, same bytes as `ec_encode_data` (tested), one
//! pass instead of encode-then-checksum. `encode` and `reconstruct` always call ISA-L.
//!
//! Invariants: the generator matrix and encode tables are computed once per scheme and shared; decode
//! tables are cached for the last (survivors, targets) pair, because consecutive stripes of a
//! degraded read almost always miss the same shards. All scratch is owned by the instance, so the
//! hot path does not allocate.

use crate::codec::{
    EcError, ErasureCodec, blocked_encode_with_crc32c, check_encode_args, check_reconstruct_args,
};
use crate::scheme::Scheme;
use crate::shard_set::ShardSet;
use cairn_isal_sys as sys;
use smallvec::SmallVec;
use std::os::raw::c_int;
use std::sync::{Arc, Mutex, PoisonError};

/// Bytes of ISA-L lookup table per matrix coefficient.
const TABLE_BYTES_PER_COEFFICIENT: usize = 32;

pub struct IsalCauchyCodec {
    scheme: Scheme,
    /// The scheme's generator matrix and tables, shared by every codec of the scheme.
    matrices: Arc<Matrices>,
    /// Cache key of `decode_tables`: which shards were read and which were written.
    decode_key: Option<(ShardSet, ShardSet)>,
    decode_tables: Vec<u8>,
    /// Scratch for the survivors' submatrix, its inverse and the decode rows.
    submatrix: Vec<u8>,
    inverse: Vec<u8>,
    decode_rows: Vec<u8>,
    /// Kernel for `encode_with_crc32c`; `None` uses the blocked ISA-L + crc32c path.
    #[cfg(target_arch = "x86_64")]
    fused_kernel: Option<crate::fused::FusedKernel>,
}

/// What a codec of one scheme computes from the scheme alone and never changes. A request
/// builds its own codec (the decode scratch is per instance), so these are computed once per
/// scheme and process and shared ([`Matrices::of`]): about 4,000 `gf_mul` calls for 4+2 that
/// every GET and PUT paid before.
struct Matrices {
    /// `(k + m) x k`, row-major.
    generator: Vec<u8>,
    /// Tables for the m parity rows. ISA-L's `ec_encode_data` takes them through a `*mut`
    /// pointer but only reads them.
    encode_tables: Vec<u8>,
    /// Tables of the parity coefficients for the fused kernel, indexed `p * k + j`.
    #[cfg(target_arch = "x86_64")]
    fused_tables: Vec<crate::fused::CoefficientTables>,
}

impl Matrices {
    /// The shared matrices of `scheme`, computed on first use.
    fn of(scheme: Scheme) -> Arc<Matrices> {
        static COMPUTED: Mutex<Vec<(Scheme, Arc<Matrices>)>> = Mutex::new(Vec::new());
        let mut computed = COMPUTED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, matrices)) = computed.iter().find(|(known, _)| *known == scheme) {
            return Arc::clone(matrices);
        }
        let matrices = Arc::new(Matrices::compute(scheme));
        computed.push((scheme, Arc::clone(&matrices)));
        matrices
    }

    fn compute(scheme: Scheme) -> Matrices {
        let (k, m) = (scheme.data_shards(), scheme.parity_shards());
        let total = k + m;
        let mut generator = vec![0u8; total * k];
        // SAFETY: `generator` holds `total * k` bytes, the size ISA-L writes for (m = total, k).
        unsafe { sys::gf_gen_cauchy1_matrix(generator.as_mut_ptr(), total as c_int, k as c_int) };
        let mut encode_tables = vec![0u8; TABLE_BYTES_PER_COEFFICIENT * k * m];
        // SAFETY: the parity rows are the last `m * k` bytes of the generator; the table buffer
        // holds 32 * k * m bytes.
        unsafe {
            sys::ec_init_tables(
                k as c_int,
                m as c_int,
                generator[k * k..].as_mut_ptr(),
                encode_tables.as_mut_ptr(),
            )
        };
        #[cfg(target_arch = "x86_64")]
        let fused_tables = {
            let gf_mul = |a, b| {
                // SAFETY: pure function over two bytes.
                unsafe { sys::gf_mul(a, b) }
            };
            generator[k * k..]
                .iter()
                .map(|&coefficient| crate::fused::coefficient_tables(gf_mul, coefficient))
                .collect()
        };
        Matrices {
            generator,
            encode_tables,
            #[cfg(target_arch = "x86_64")]
            fused_tables,
        }
    }
}

impl IsalCauchyCodec {
    pub fn new(scheme: Scheme) -> Self {
        let (k, m) = (scheme.data_shards(), scheme.parity_shards());
        let total = k + m;
        IsalCauchyCodec {
            scheme,
            matrices: Matrices::of(scheme),
            decode_key: None,
            decode_tables: Vec::with_capacity(TABLE_BYTES_PER_COEFFICIENT * k * total),
            submatrix: vec![0u8; k * k],
            inverse: vec![0u8; k * k],
            decode_rows: Vec::with_capacity(total * k),
            #[cfg(target_arch = "x86_64")]
            fused_kernel: crate::fused::FusedKernel::best(),
        }
    }

    /// Fused encode + CRC32C (see `fused.rs`); `false` when the CPU lacks AVX2 / SSE4.2 and the
    /// caller must use the blocked path.
    #[cfg(target_arch = "x86_64")]
    fn fused_encode_with_crc32c(
        &mut self,
        len_bytes: usize,
        data: &[&[u8]],
        parity: &mut [&mut [u8]],
        crc32c_out: &mut [u32],
    ) -> bool {
        let Some(kernel) = self.fused_kernel else {
            return false;
        };
        let k = self.scheme.data_shards();
        let vector_len_bytes = len_bytes - len_bytes % crate::fused::COLUMN_BYTES;
        if vector_len_bytes == 0 {
            return false; // too short for a vector column: the blocked path handles it
        }
        let data_pointers: SmallVec<[*const u8; 32]> =
            data.iter().map(|shard| shard.as_ptr()).collect();
        let parity_pointers: SmallVec<[*mut u8; 32]> =
            parity.iter_mut().map(|shard| shard.as_mut_ptr()).collect();
        // SAFETY: `fused_kernel` is only ever set to a kernel the CPU supports; k data and m
        // parity pointers are valid for `len_bytes >= vector_len_bytes` (checked by the caller),
        // parity shards are `&mut` so alias nothing; tables hold m * k entries; crc32c_out holds
        // k + m entries (checked by the caller).
        unsafe {
            crate::fused::encode_with_crc32c_prefix(
                kernel,
                vector_len_bytes,
                &self.matrices.fused_tables,
                &data_pointers,
                &parity_pointers,
                crc32c_out,
            )
        };
        // The tail below one column: the same table arithmetic, one byte at a time.
        if vector_len_bytes < len_bytes {
            for (p, parity_shard) in parity.iter_mut().enumerate() {
                for offset in vector_len_bytes..len_bytes {
                    let mut value = 0u8;
                    for (j, data_shard) in data.iter().enumerate() {
                        let byte = data_shard[offset];
                        let tables = &self.matrices.fused_tables[p * k + j].nibbles;
                        value ^=
                            tables[usize::from(byte & 15)] ^ tables[32 + usize::from(byte >> 4)];
                    }
                    parity_shard[offset] = value;
                }
            }
            let tails = data
                .iter()
                .map(|shard| &shard[vector_len_bytes..])
                .chain(parity.iter().map(|shard| &shard[vector_len_bytes..]));
            for (crc, tail) in crc32c_out.iter_mut().zip(tails) {
                *crc = crc32c::crc32c_append(*crc, tail);
            }
        }
        true
    }

    /// Chooses the fused encode + CRC32C kernel (`None`: ISA-L then crc32c in column blocks).
    /// The default is the fastest the CPU supports; tests use this to cover every kernel.
    /// Returns `false` (and changes nothing) when the CPU cannot run `kernel`.
    #[cfg(target_arch = "x86_64")]
    pub fn set_fused_kernel(&mut self, kernel: Option<crate::fused::FusedKernel>) -> bool {
        if kernel.is_some_and(|kernel| !kernel.is_supported()) {
            return false;
        }
        self.fused_kernel = kernel;
        true
    }

    /// The generator matrix, row-major `(k + m) x k` (exposed for tests and the benchmark).
    pub fn generator_matrix(&self) -> &[u8] {
        &self.matrices.generator
    }

    /// Builds `decode_tables` that compute `targets` from `survivors` (exactly k shards).
    fn prepare_decode(&mut self, survivors: ShardSet, targets: ShardSet) -> Result<(), EcError> {
        if self.decode_key == Some((survivors, targets)) {
            return Ok(());
        }
        let k = self.scheme.data_shards();
        for (row, shard) in survivors.iter().enumerate() {
            self.submatrix[row * k..(row + 1) * k]
                .copy_from_slice(&self.matrices.generator[shard * k..(shard + 1) * k]);
        }
        // SAFETY: both buffers hold k * k bytes; ISA-L clobbers the input, which is scratch.
        let status = unsafe {
            sys::gf_invert_matrix(
                self.submatrix.as_mut_ptr(),
                self.inverse.as_mut_ptr(),
                k as c_int,
            )
        };
        if status != 0 {
            self.decode_key = None;
            return Err(EcError::SingularMatrix);
        }
        self.decode_rows.clear();
        for target in targets.iter() {
            if target < k {
                self.decode_rows
                    .extend_from_slice(&self.inverse[target * k..(target + 1) * k]);
            } else {
                // A parity shard is its generator row applied to the data, and the data is the
                // inverse applied to the survivors: row x inverse, in GF(2^8).
                let generator_row = &self.matrices.generator[target * k..(target + 1) * k];
                for column in 0..k {
                    let mut coefficient = 0u8;
                    for (inner, &g) in generator_row.iter().enumerate() {
                        // SAFETY: pure function over two bytes.
                        coefficient ^= unsafe { sys::gf_mul(g, self.inverse[inner * k + column]) };
                    }
                    self.decode_rows.push(coefficient);
                }
            }
        }
        let rows = targets.len();
        self.decode_tables
            .resize(TABLE_BYTES_PER_COEFFICIENT * k * rows, 0);
        // SAFETY: decode_rows holds rows * k bytes, decode_tables 32 * k * rows bytes.
        unsafe {
            sys::ec_init_tables(
                k as c_int,
                rows as c_int,
                self.decode_rows.as_mut_ptr(),
                self.decode_tables.as_mut_ptr(),
            )
        };
        self.decode_key = Some((survivors, targets));
        Ok(())
    }
}

impl ErasureCodec for IsalCauchyCodec {
    fn scheme(&self) -> Scheme {
        self.scheme
    }

    fn encode(&mut self, data: &[&[u8]], parity: &mut [&mut [u8]]) -> Result<(), EcError> {
        let len_bytes = check_encode_args(self.scheme, data, parity)?;
        if len_bytes == 0 {
            return Ok(());
        }
        // ISA-L takes `unsigned char **` for inputs although it only reads them.
        let mut inputs: SmallVec<[*mut u8; 32]> =
            data.iter().map(|shard| shard.as_ptr() as *mut u8).collect();
        let mut outputs: SmallVec<[*mut u8; 32]> =
            parity.iter_mut().map(|shard| shard.as_mut_ptr()).collect();
        // SAFETY: k input and m output pointers, each valid for `len_bytes` (checked above);
        // outputs are `&mut` so they alias neither inputs nor each other; tables match (k, m)
        // and are only read, so the shared tables may be passed as `*mut`.
        unsafe {
            sys::ec_encode_data(
                len_bytes as c_int,
                self.scheme.data_shards() as c_int,
                self.scheme.parity_shards() as c_int,
                self.matrices.encode_tables.as_ptr().cast_mut(),
                inputs.as_mut_ptr(),
                outputs.as_mut_ptr(),
            )
        };
        Ok(())
    }

    fn encode_with_crc32c(
        &mut self,
        data: &[&[u8]],
        parity: &mut [&mut [u8]],
        crc32c_out: &mut [u32],
    ) -> Result<(), EcError> {
        let len_bytes = check_encode_args(self.scheme, data, parity)?;
        if crc32c_out.len() != self.scheme.total_shards() {
            return Err(EcError::ShardCount {
                expected: self.scheme.total_shards(),
                got: crc32c_out.len(),
            });
        }
        #[cfg(target_arch = "x86_64")]
        if self.fused_encode_with_crc32c(len_bytes, data, parity, crc32c_out) {
            return Ok(());
        }
        let _ = len_bytes;
        blocked_encode_with_crc32c(self, data, parity, crc32c_out)
    }

    fn reconstruct(
        &mut self,
        shards: &mut [&mut [u8]],
        present: ShardSet,
        rebuild: ShardSet,
    ) -> Result<(), EcError> {
        let (len_bytes, targets) = check_reconstruct_args(self.scheme, shards, present, rebuild)?;
        if targets.is_empty() || len_bytes == 0 {
            return Ok(());
        }
        let k = self.scheme.data_shards();
        // The first k present shards: data shards come first, so a stripe missing only parity
        // gets an identity inverse and the decode rows are plain generator rows.
        let survivors: ShardSet = present.iter().take(k).collect();
        self.prepare_decode(survivors, targets)?;
        let mut inputs: SmallVec<[*mut u8; 32]> = SmallVec::new();
        let mut outputs: SmallVec<[*mut u8; 32]> = SmallVec::new();
        for (index, shard) in shards.iter_mut().enumerate() {
            if survivors.contains(index) {
                inputs.push(shard.as_mut_ptr());
            } else if targets.contains(index) {
                outputs.push(shard.as_mut_ptr());
            }
        }
        // SAFETY: survivors and targets are disjoint sets of distinct `&mut` shards, each valid
        // for `len_bytes`; the tables were built for (k, targets.len()).
        unsafe {
            sys::ec_encode_data(
                len_bytes as c_int,
                k as c_int,
                outputs.len() as c_int,
                self.decode_tables.as_mut_ptr(),
                inputs.as_mut_ptr(),
                outputs.as_mut_ptr(),
            )
        };
        Ok(())
    }
}
