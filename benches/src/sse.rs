//! `cairn-bench sse`: the CPU cost of SSE on one core, in process: the chunked AES-256-GCM
//! encryptor and the decryptor over a 16 MiB body fed in 64 KiB request chunks (and the decryptor
//! in place over 1 MiB buffers, as the gateway's GET path feeds it decoded stripes), next to what the
//! PUT path already spends per byte in the same run (MD5 for the ETag: `md5_etag` is md-5's,
//! `md5_etag_md5_many` the compressor the gateway's body verifier uses; CRC32C of the pieces) and
//! a memcpy. The end-to-end cost through `cairn dev` is `scripts/bench-sse.sh`; this one isolates
//! the cipher from a shared machine's noise. Medians of `--runs` runs, JSON on stdout.

use crate::load::median;
use clap::Args;
use serde_json::json;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct SseArgs {
    /// Body size in MiB.
    #[arg(long, default_value_t = 16)]
    size_mib: usize,
    /// Runs per case; the median is reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

fn rate_gigabytes_per_second(bytes: usize, runs: usize, mut work: impl FnMut()) -> f64 {
    rate_with_setup(bytes, runs, || (), |()| work())
}

/// The median rate of `runs` runs of `work` over `bytes`, each after an untimed `setup`.
fn rate_with_setup<T>(
    bytes: usize,
    runs: usize,
    mut setup: impl FnMut() -> T,
    mut work: impl FnMut(T),
) -> f64 {
    let mut rates: Vec<f64> = (0..runs)
        .map(|_| {
            let input = setup();
            let start = Instant::now();
            work(input);
            bytes as f64 / start.elapsed().as_secs_f64() / 1e9
        })
        .collect();
    median(&mut rates)
}

pub fn run(args: SseArgs) -> anyhow::Result<()> {
    use md5::Digest;
    const REQUEST_CHUNK_BYTES: usize = 64 * 1024;
    let size = args.size_mib << 20;
    let body: Vec<u8> = (0..size).map(|index| (index * 31 % 251) as u8).collect();
    let key = cairn_sse::DataKey::generate()?;
    let mut stored = Vec::with_capacity(cairn_sse::stored_length_bytes(size as u64) as usize);
    let encrypt = rate_gigabytes_per_second(size, args.runs, || {
        stored.clear();
        let mut encryptor =
            cairn_sse::ChunkEncryptor::new(&key, 1, size as u64).expect("encryptor");
        for chunk in body.chunks(REQUEST_CHUNK_BYTES) {
            encryptor.push(chunk, &mut stored).expect("push");
        }
        encryptor.finish().expect("finish");
    });
    let mut plain = Vec::with_capacity(size);
    let decrypt = rate_gigabytes_per_second(size, args.runs, || {
        plain.clear();
        let (mut decryptor, _) =
            cairn_sse::ChunkDecryptor::new(&key, 1, size as u64, 0..size as u64);
        for chunk in stored.chunks(REQUEST_CHUNK_BYTES) {
            decryptor.push(chunk, &mut plain).expect("push");
        }
        decryptor.finish().expect("finish");
    });
    anyhow::ensure!(plain == body, "decrypted body differs");
    const STRIPE_BYTES: usize = 1 << 20;
    let mut opened = Vec::new();
    let decrypt_in_place = rate_with_setup(
        size,
        args.runs,
        || {
            stored
                .chunks(STRIPE_BYTES)
                .map(<[u8]>::to_vec)
                .collect::<Vec<_>>()
        },
        |buffers| {
            opened.clear();
            let (mut decryptor, _) =
                cairn_sse::ChunkDecryptor::new(&key, 1, size as u64, 0..size as u64);
            for mut buffer in buffers {
                if let Some(head) = decryptor.push_in_place(&mut buffer).expect("push") {
                    opened.push(head);
                }
                opened.push(buffer);
            }
            decryptor.finish().expect("finish");
        },
    );
    anyhow::ensure!(opened.concat() == body, "decrypted body differs (in place)");
    let md5 = rate_gigabytes_per_second(size, args.runs, || {
        let mut hasher = md5::Md5::new();
        for chunk in body.chunks(REQUEST_CHUNK_BYTES) {
            hasher.update(chunk);
        }
        std::hint::black_box(hasher.finalize());
    });
    // The compressor the gateway's body verifier uses (cairn-s3-proto).
    let md5_many = rate_gigabytes_per_second(size, args.runs, || {
        let mut state = md5_many::Md5State::new();
        for chunk in body.chunks(REQUEST_CHUNK_BYTES) {
            state.update(chunk);
        }
        std::hint::black_box(state.finalize());
    });
    let crc = rate_gigabytes_per_second(size, args.runs, || {
        std::hint::black_box(crc32c::crc32c(&body));
    });
    let mut copy = vec![0u8; size];
    let memcpy = rate_gigabytes_per_second(size, args.runs, || {
        copy.copy_from_slice(&body);
        std::hint::black_box(&copy);
    });
    let document = json!({
        "schema": "cairn-bench/sse",
        "body_bytes": size,
        "runs": args.runs,
        "chunk_plaintext_bytes": cairn_sse::CHUNK_PLAINTEXT_BYTES,
        "gigabytes_per_second_median": {
            "encrypt_aes256_gcm_chunked": encrypt,
            "decrypt_aes256_gcm_chunked": decrypt,
            "decrypt_in_place_aes256_gcm_1MiB_buffers": decrypt_in_place,
            "md5_etag": md5,
            "md5_etag_md5_many": md5_many,
            "crc32c": crc,
            "memcpy": memcpy,
        },
        "encrypt_cpu_relative_to_md5": md5 / encrypt,
        "encrypt_cpu_relative_to_md5_many": md5_many / encrypt,
    });
    println!("{}", serde_json::to_string_pretty(&document)?);
    Ok(())
}
