//! `cairn-bench ec`: erasure-coding throughput on one core.
//!
//! For every scheme shape (k+m) and shard size: encode and decode (m shards lost, all of them
//! data shards — the expensive case) through `cairn_ec::ErasureCodec` for both codecs, raw ISA-L
//! `ec_encode_data` called directly through `cairn-isal-sys` (the reference), and the streaming
//! `StripeEncoder` (copy into aligned pieces + encode + CRC32C of every piece). Throughput is data
//! bytes per second (GB/s = 1e9 B/s); each figure is the median of `--runs` timed runs of at least
//! `--min-run-ms` each, all measured in this process so ratios compare like with like.

use crate::load::median;
use anyhow::{Context, bail};
use cairn_ec::{
    AlignedBuf, CodecKind, Scheme, ShardSet, StripeEncoder, StripeLayout, calibrate, new_codec,
    static_default_codec,
};
use cairn_isal_sys as isal;
use serde_json::{Value, json};
use std::os::raw::c_int;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct EcArgs {
    /// Scheme shapes, k+m.
    #[arg(long, value_delimiter = ',', default_value = "4+2,8+4,10+4,12+4")]
    schemes: Vec<String>,
    /// Shard (piece) sizes in bytes.
    #[arg(long, value_delimiter = ',', default_value = "65536,262144,1048576")]
    shard_sizes_bytes: Vec<usize>,
    /// Timed runs per figure; the median is reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Minimum duration of one timed run.
    #[arg(long, default_value_t = 120)]
    min_run_ms: u64,
    /// Size of the body chunks pushed into the streaming encoder (what the HTTP layer hands over).
    #[arg(long, default_value_t = 64 * 1024)]
    body_chunk_bytes: usize,
    /// CPU to pin the benchmark thread to (single core).
    #[arg(long, default_value_t = 0)]
    cpu: usize,
}

/// CPU time consumed by this thread, in seconds. The machine is shared (two vCPUs, other
/// builds running), so rates are computed from the benchmark thread's own CPU time, which does
/// not count time the thread spent descheduled; SMT siblings and shared caches still add noise.
fn thread_cpu_seconds() -> f64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid clock id and a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    now.tv_sec as f64 + now.tv_nsec as f64 * 1e-9
}

/// Runs `work` (which processes `bytes_per_call` data bytes) for at least `min_run` of thread
/// CPU time per run and returns the median GB/s over `runs` runs.
fn median_gbps(
    runs: usize,
    min_run: Duration,
    bytes_per_call: usize,
    mut work: impl FnMut(),
) -> f64 {
    work(); // warm-up: tables, work areas, page faults
    let min_run_seconds = min_run.as_secs_f64();
    let mut rates: Vec<f64> = (0..runs.max(3))
        .map(|_| {
            let start = thread_cpu_seconds();
            let mut calls = 0u64;
            while calls < 2 || thread_cpu_seconds() - start < min_run_seconds {
                work();
                calls += 1;
            }
            (bytes_per_call as f64 * calls as f64) / (thread_cpu_seconds() - start) / 1e9
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

fn parse_shape(text: &str) -> anyhow::Result<(usize, usize)> {
    let (k, m) = text
        .split_once('+')
        .with_context(|| format!("scheme shape {text:?} is not k+m"))?;
    Ok((k.trim().parse()?, m.trim().parse()?))
}

fn pin_to_cpu(cpu: usize) -> bool {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; we pass its exact size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, name)| name.trim().to_owned())
        })
        .unwrap_or_default()
}

/// A stripe of k + m aligned shards filled with pseudo-random data.
fn make_stripe(total: usize, shard_size_bytes: usize) -> Vec<AlignedBuf> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..total)
        .map(|_| {
            let mut shard = AlignedBuf::new_zeroed(shard_size_bytes);
            for byte in shard.iter_mut() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *byte = state as u8;
            }
            shard
        })
        .collect()
}

/// Raw ISA-L: Cauchy matrix, tables, `ec_encode_data` on pointer arrays — no wrapper at all.
fn raw_isal_encode_gbps(args: &EcArgs, k: usize, m: usize, shard_size_bytes: usize) -> f64 {
    let mut shards = make_stripe(k + m, shard_size_bytes);
    let mut matrix = vec![0u8; (k + m) * k];
    let mut tables = vec![0u8; 32 * k * m];
    // SAFETY: buffer sizes as ISA-L documents: (k+m)*k matrix, 32*k*m tables.
    unsafe {
        isal::gf_gen_cauchy1_matrix(matrix.as_mut_ptr(), (k + m) as c_int, k as c_int);
        isal::ec_init_tables(
            k as c_int,
            m as c_int,
            matrix[k * k..].as_mut_ptr(),
            tables.as_mut_ptr(),
        );
    }
    let mut pointers: Vec<*mut u8> = shards.iter_mut().map(|s| s.as_mut_ptr()).collect();
    let (data_pointers, parity_pointers) = pointers.split_at_mut(k);
    median_gbps(
        args.runs,
        Duration::from_millis(args.min_run_ms),
        k * shard_size_bytes,
        || {
            // SAFETY: k + m distinct buffers of shard_size_bytes each; tables for (k, m).
            unsafe {
                isal::ec_encode_data(
                    shard_size_bytes as c_int,
                    k as c_int,
                    m as c_int,
                    tables.as_mut_ptr(),
                    data_pointers.as_mut_ptr(),
                    parity_pointers.as_mut_ptr(),
                )
            }
        },
    )
}

fn codec_encode_gbps(args: &EcArgs, scheme: Scheme, shard_size_bytes: usize) -> f64 {
    let k = scheme.data_shards();
    let mut codec = new_codec(scheme);
    let mut shards = make_stripe(scheme.total_shards(), shard_size_bytes);
    let (data, parity) = shards.split_at_mut(k);
    let data: Vec<&[u8]> = data.iter().map(|s| &s[..shard_size_bytes]).collect();
    let mut parity: Vec<&mut [u8]> = parity
        .iter_mut()
        .map(|s| &mut s[..shard_size_bytes])
        .collect();
    median_gbps(
        args.runs,
        Duration::from_millis(args.min_run_ms),
        k * shard_size_bytes,
        || codec.encode(&data, &mut parity).expect("valid stripe"),
    )
}

/// `encode_with_crc32c` on a stripe in place: the codec's share of the streaming encoder.
fn codec_encode_crc_gbps(args: &EcArgs, scheme: Scheme, shard_size_bytes: usize) -> f64 {
    let k = scheme.data_shards();
    let mut codec = new_codec(scheme);
    let mut shards = make_stripe(scheme.total_shards(), shard_size_bytes);
    let (data, parity) = shards.split_at_mut(k);
    let data: Vec<&[u8]> = data.iter().map(|s| &s[..shard_size_bytes]).collect();
    let mut parity: Vec<&mut [u8]> = parity
        .iter_mut()
        .map(|s| &mut s[..shard_size_bytes])
        .collect();
    let mut crcs = vec![0u32; scheme.total_shards()];
    median_gbps(
        args.runs,
        Duration::from_millis(args.min_run_ms),
        k * shard_size_bytes,
        || {
            codec
                .encode_with_crc32c(&data, &mut parity, &mut crcs)
                .expect("valid stripe")
        },
    )
}

/// Degraded read: the first m shards (data shards, as m <= k here) are lost and rebuilt.
fn codec_decode_gbps(
    args: &EcArgs,
    scheme: Scheme,
    shard_size_bytes: usize,
) -> anyhow::Result<f64> {
    let (k, m) = (scheme.data_shards(), scheme.parity_shards());
    if m > k {
        bail!("decode benchmark assumes m <= k");
    }
    let mut codec = new_codec(scheme);
    let mut shards = make_stripe(scheme.total_shards(), shard_size_bytes);
    {
        let (data, parity) = shards.split_at_mut(k);
        let data: Vec<&[u8]> = data.iter().map(|s| &s[..shard_size_bytes]).collect();
        let mut parity: Vec<&mut [u8]> = parity
            .iter_mut()
            .map(|s| &mut s[..shard_size_bytes])
            .collect();
        codec.encode(&data, &mut parity)?;
    }
    let original: Vec<Vec<u8>> = shards[..m]
        .iter()
        .map(|s| s[..shard_size_bytes].to_vec())
        .collect();
    let present = ShardSet::range(m, k + m);
    let mut refs: Vec<&mut [u8]> = shards
        .iter_mut()
        .map(|s| &mut s[..shard_size_bytes])
        .collect();
    let rate = median_gbps(
        args.runs,
        Duration::from_millis(args.min_run_ms),
        k * shard_size_bytes,
        || {
            codec
                .reconstruct_data(&mut refs, present)
                .expect("m erasures")
        },
    );
    for (rebuilt, expected) in refs.iter().zip(&original) {
        if **rebuilt != **expected {
            bail!("{scheme}: decode produced wrong bytes");
        }
    }
    Ok(rate)
}

/// The streaming encoder as the gateway drives it: body chunks in, stripes out, stripes dropped
/// (their buffers go back to the pool as the shard writes would).
fn stream_encode_gbps(
    args: &EcArgs,
    scheme: Scheme,
    shard_size_bytes: usize,
) -> anyhow::Result<f64> {
    let layout = StripeLayout::new(scheme, shard_size_bytes)?;
    let mut encoder = StripeEncoder::new(
        new_codec(scheme),
        shard_size_bytes,
        StripeEncoder::pool_for(layout, 2),
    )?;
    let stripe_data_bytes = layout.stripe_data_bytes();
    // One stripe's worth of body per call, fed from a body buffer in HTTP-sized chunks.
    let body: Vec<u8> = (0..stripe_data_bytes)
        .map(|i| (i * 131 + 7) as u8)
        .collect();
    let chunk_bytes = args.body_chunk_bytes.max(1);
    let rate = median_gbps(
        args.runs,
        Duration::from_millis(args.min_run_ms),
        stripe_data_bytes,
        || {
            for chunk in body.chunks(chunk_bytes) {
                let mut input = chunk;
                while !input.is_empty() {
                    let outcome = encoder.push(input).expect("push");
                    input = &input[outcome.consumed_bytes..];
                    if let Some(stripe) = outcome.stripe {
                        std::hint::black_box(stripe.pieces[0].crc32c);
                        encoder.recycle(stripe);
                    }
                }
            }
        },
    );
    Ok(rate)
}

/// The streaming encoder with zero-copy ingestion: the body is "read" straight into the
/// encoder's piece buffers (here by a fill that stands in for the socket read), so no copy.
fn stream_fill_encode_gbps(
    args: &EcArgs,
    scheme: Scheme,
    shard_size_bytes: usize,
) -> anyhow::Result<f64> {
    let layout = StripeLayout::new(scheme, shard_size_bytes)?;
    let mut encoder = StripeEncoder::new(
        new_codec(scheme),
        shard_size_bytes,
        StripeEncoder::pool_for(layout, 2),
    )?;
    let stripe_data_bytes = layout.stripe_data_bytes();
    let chunk_bytes = args.body_chunk_bytes.max(1);
    let mut filled_bytes_total = 0usize;
    let rate = median_gbps(
        args.runs,
        Duration::from_millis(args.min_run_ms),
        stripe_data_bytes,
        || loop {
            let target = encoder.fill_buffer();
            let count = target.len().min(chunk_bytes);
            // Only the first byte is touched: a real read writes these bytes through the
            // kernel, which this benchmark does not charge to the encoder.
            target[0] = filled_bytes_total as u8;
            filled_bytes_total += count;
            if let Some(stripe) = encoder.commit_filled(count).expect("commit") {
                std::hint::black_box(stripe.pieces[0].crc32c);
                encoder.recycle(stripe);
                break;
            }
        },
    );
    Ok(rate)
}

/// Reference figures for the streaming encoder's extra work: CRC32C and memcpy of a body chunk.
fn reference_gbps(args: &EcArgs) -> (f64, f64) {
    let chunk_bytes = args.body_chunk_bytes.max(1);
    let source: Vec<u8> = (0..chunk_bytes).map(|i| i as u8).collect();
    let mut target = AlignedBuf::new_zeroed(chunk_bytes);
    let min_run = Duration::from_millis(args.min_run_ms);
    let crc = median_gbps(args.runs, min_run, chunk_bytes, || {
        std::hint::black_box(crc32c::crc32c(std::hint::black_box(&source)));
    });
    let copy = median_gbps(args.runs, min_run, chunk_bytes, || {
        target[..chunk_bytes].copy_from_slice(std::hint::black_box(&source));
        std::hint::black_box(&target);
    });
    (crc, copy)
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

pub fn run(args: EcArgs) -> anyhow::Result<()> {
    let pinned = pin_to_cpu(args.cpu);
    let calibration = calibrate(8, 4, 256 * 1024, Duration::from_millis(400))?;
    let default_codec = calibration.chosen;
    eprintln!("ec: default codec by calibration: {default_codec}");
    let mut results = Vec::new();
    let mut default_vs_raw = Vec::new();
    let mut stream_vs_codec = Vec::new();
    let mut stream_fill_vs_codec = Vec::new();
    let (crc32c_gbps, memcpy_gbps) = reference_gbps(&args);
    let cpu_flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_features: Vec<&str> = ["avx2", "avx512f", "avx512bw", "gfni", "vpclmulqdq"]
        .into_iter()
        .filter(|flag| cpu_flags.split_whitespace().any(|word| word == *flag))
        .collect();
    for shape in &args.schemes {
        let (k, m) = parse_shape(shape)?;
        for &shard_size_bytes in &args.shard_sizes_bytes {
            eprintln!("ec: {k}+{m}, {shard_size_bytes} B shards");
            let raw = raw_isal_encode_gbps(&args, k, m, shard_size_bytes);
            let mut codecs = serde_json::Map::new();
            let mut default_encode = f64::NAN;
            let mut default_stream = f64::NAN;
            let mut default_stream_fill = f64::NAN;
            for codec in CodecKind::ALL {
                let scheme = Scheme::new(codec, k, m)?;
                let encode = codec_encode_gbps(&args, scheme, shard_size_bytes);
                let encode_crc = codec_encode_crc_gbps(&args, scheme, shard_size_bytes);
                let decode = codec_decode_gbps(&args, scheme, shard_size_bytes)?;
                let stream = stream_encode_gbps(&args, scheme, shard_size_bytes)?;
                let stream_fill = stream_fill_encode_gbps(&args, scheme, shard_size_bytes)?;
                if codec == default_codec {
                    default_encode = encode;
                    default_stream = stream;
                    default_stream_fill = stream_fill;
                }
                codecs.insert(
                    codec.name().to_owned(),
                    json!({
                        "encode_gbps": round3(encode),
                        "encode_with_crc32c_gbps": round3(encode_crc),
                        "decode_m_lost_gbps": round3(decode),
                        "stream_encode_crc32c_gbps": round3(stream),
                        "stream_vs_codec_encode": round3(stream / encode),
                        "stream_zero_copy_encode_crc32c_gbps": round3(stream_fill),
                        "stream_zero_copy_vs_codec_encode": round3(stream_fill / encode),
                    }),
                );
            }
            // What an encoder that checksums in a separate pass (crc32c crate over k + m pieces
            // after the codec, plus one memcpy for push) could reach at best; the fused kernel
            // is measured against this.
            let crc_seconds_per_data_byte = ((k + m) as f64 / k as f64) / crc32c_gbps;
            let ceiling_zero_copy = 1.0 / (1.0 + default_encode * crc_seconds_per_data_byte);
            let ceiling_copy =
                1.0 / (1.0 + default_encode * (crc_seconds_per_data_byte + 1.0 / memcpy_gbps));
            default_vs_raw.push(default_encode / raw);
            stream_vs_codec.push(default_stream / default_encode);
            stream_fill_vs_codec.push(default_stream_fill / default_encode);
            results.push(json!({
                "scheme": format!("{k}+{m}"),
                "shard_size_bytes": shard_size_bytes,
                "raw_isal_encode_gbps": round3(raw),
                "codecs": Value::Object(codecs),
                "default_encode_vs_raw_isal": round3(default_encode / raw),
                "default_stream_vs_default_codec": round3(default_stream / default_encode),
                "default_stream_zero_copy_vs_default_codec": round3(default_stream_fill / default_encode),
                "separate_crc_pass_ceiling_stream_vs_codec": round3(ceiling_copy),
                "separate_crc_pass_ceiling_stream_zero_copy_vs_codec": round3(ceiling_zero_copy),
            }));
        }
    }
    let min = |values: &[f64]| values.iter().copied().fold(f64::INFINITY, f64::min);
    let report = json!({
        "workload": "ec",
        "cpu_model": cpu_model(),
        "cpu_features": cpu_features,
        "pinned_cpu": if pinned { Some(args.cpu) } else { None },
        "runs_per_figure": args.runs.max(3),
        "min_run_ms": args.min_run_ms,
        "body_chunk_bytes": args.body_chunk_bytes,
        "units": "GB/s of data bytes (1e9 B/s) per CPU-second of the benchmark thread, median of runs",
        "static_default_codec": static_default_codec().name(),
        "calibration": {
            "scheme_shape": "8+4",
            "shard_size_bytes": calibration.shard_size_bytes,
            "chosen": default_codec.name(),
            "speeds": calibration.speeds.iter().map(|speed| json!({
                "codec": speed.codec.name(),
                "encode_gbps": round3(speed.encode_bytes_per_second / 1e9),
                "decode_m_lost_gbps": round3(speed.decode_bytes_per_second / 1e9),
            })).collect::<Vec<_>>(),
        },
        "default_codec": default_codec.name(),
        "references": {
            "crc32c_gbps": round3(crc32c_gbps),
            "memcpy_gbps": round3(memcpy_gbps),
            "note": "one body chunk, in cache; the streaming encoder adds a copy of the data and a CRC32C of k+m pieces to the codec's work",
        },
        "results": results,
        "summary": {
            "default_encode_vs_raw_isal": {
                "min": round3(min(&default_vs_raw)),
                "median": round3(median(&mut default_vs_raw.clone())),
                "target": 0.90,
            },
            "stream_vs_codec_encode": {
                "min": round3(min(&stream_vs_codec)),
                "median": round3(median(&mut stream_vs_codec.clone())),
                "target": 0.75,
            },
            "stream_zero_copy_vs_codec_encode": {
                "min": round3(min(&stream_fill_vs_codec)),
                "median": round3(median(&mut stream_fill_vs_codec.clone())),
                "target": 0.75,
            },
        },
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
