//! Golden parity bytes for each codec. Objects on disk decode only if the codec still computes
//! exactly these bytes: a change here (a different matrix, a library upgrade that changes the
//! code, a broken sub-stripe split) would make old objects undecodable, so it must fail a test.
//! Never update these constants to make a test pass; add a new codec name instead.

use cairn_ec::{Scheme, new_codec};

/// Deterministic data: shard `i`, byte `j` = (i * 64 + j) * 7 + 3 (mod 256), with a twist so
/// shards are not affine in each other.
fn golden_data(data_shards: usize, len_bytes: usize) -> Vec<Vec<u8>> {
    (0..data_shards)
        .map(|shard| {
            (0..len_bytes)
                .map(|byte| {
                    let x = (shard * 64 + byte) as u32;
                    (x.wrapping_mul(7).wrapping_add(3) ^ (x >> 3).wrapping_mul(13)) as u8
                })
                .collect()
        })
        .collect()
}

fn parity(scheme: &str, len_bytes: usize) -> Vec<Vec<u8>> {
    let scheme: Scheme = scheme.parse().unwrap();
    let mut codec = new_codec(scheme);
    let data = golden_data(scheme.data_shards(), len_bytes);
    let data_refs: Vec<&[u8]> = data.iter().map(|s| &s[..]).collect();
    let mut parity = vec![vec![0u8; len_bytes]; scheme.parity_shards()];
    let mut parity_refs: Vec<&mut [u8]> = parity.iter_mut().map(|s| &mut s[..]).collect();
    codec.encode(&data_refs, &mut parity_refs).unwrap();
    parity
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// CRC32C of each parity shard: a compact fingerprint for the larger golden stripes.
fn parity_crcs(scheme: &str, len_bytes: usize) -> Vec<u32> {
    parity(scheme, len_bytes)
        .iter()
        .map(|shard| crc32c::crc32c(shard))
        .collect()
}

#[test]
#[ignore = "prints the current golden values; run by hand only when adding a codec"]
fn print_golden_values() {
    for scheme in ["isal-cauchy:3+2", "rs-simd:3+2"] {
        for shard in parity(scheme, 64) {
            println!("{scheme} 64: {}", hex(&shard));
        }
        for shard in parity(scheme, 34) {
            println!("{scheme} 34: {}", hex(&shard));
        }
    }
    for scheme in [
        "isal-cauchy:8+4",
        "rs-simd:8+4",
        "isal-cauchy:10+4",
        "rs-simd:10+4",
    ] {
        println!(
            "{scheme} 1MiB+4096 crcs: {:08x?}",
            parity_crcs(scheme, (1 << 20) + 4096)
        );
    }
}

#[test]
fn isal_cauchy_golden_parity() {
    let expected_64 = [
        "890d9c1864d8aacd336416710d89c347e86c86027e196bd7214634631f9b0a8ebb3fae2a564a385f85394b2c50d475f11a9ed4502c4b3925dfb8ca760a8e1f9b",
        "dae4a69879b8afc44fbea9c2231df5cb0638724cadc6d110c6adba4baa94d6e86f51132dccafb8d34a8b9cf71628f0ce3907efd1305b4c2fe78c9b5abb85c7f9",
    ];
    let actual: Vec<String> = parity("isal-cauchy:3+2", 64)
        .iter()
        .map(|s| hex(s))
        .collect();
    assert_eq!(actual, expected_64);
    // ISA-L's code is bytewise, so a shorter shard is a prefix (exercises its short-length path).
    let actual: Vec<String> = parity("isal-cauchy:3+2", 34)
        .iter()
        .map(|s| hex(s))
        .collect();
    assert_eq!(actual, expected_64.map(|h| h[..68].to_owned()));
    assert_eq!(
        parity_crcs("isal-cauchy:8+4", (1 << 20) + 4096),
        [0x12de38c4, 0xd8eee59e, 0xbeea5967, 0xa9d1c3e8]
    );
    assert_eq!(
        parity_crcs("isal-cauchy:10+4", (1 << 20) + 4096),
        [0xdff73f93, 0x53c4ac1a, 0x562e72a5, 0xbe1e6a60]
    );
}

#[test]
fn rs_simd_golden_parity() {
    let actual: Vec<String> = parity("rs-simd:3+2", 64).iter().map(|s| hex(s)).collect();
    assert_eq!(
        actual,
        [
            "592e5720db6be06526ee65e01b6cdea9196e2750ab2ea51580058e46bdcab3c40f0c4e4d44424a0396606821282b5b583e3dc0c3ca838b8dde979f6960632122",
            "a2dcbec03cb535a9f8c949d52957dea0d8a694ea168a0a8334a82819e59bf987808ad3d9d7a8abfb34fbf8a8a6ac272d4b41878d83d3d0afa6f6f53a343e676d",
        ]
    );
    // A length that is not a multiple of 64 takes reed-solomon-simd's tail path.
    let actual: Vec<String> = parity("rs-simd:3+2", 34).iter().map(|s| hex(s)).collect();
    assert_eq!(
        actual,
        [
            "893b0dfc394cf7f61de555ee93ab224ccd4c41424b020afc88c1c9b2bbb8faf90f0c",
            "72c9e41cde92223ac3c279dba19022450c84f2f8f6a6a56a3c6c6fede3e9b0ba808a",
        ]
    );
    // 1 MiB + 4 KiB crosses several 64 KiB sub-stripes.
    assert_eq!(
        parity_crcs("rs-simd:8+4", (1 << 20) + 4096),
        [0x9ca5f73e, 0x2248309f, 0x9eedb11a, 0xb1faaf4d]
    );
    assert_eq!(
        parity_crcs("rs-simd:10+4", (1 << 20) + 4096),
        [0x119c01d0, 0x6eba554e, 0xcf42a273, 0x74297e8c]
    );
}

/// GF(2^8) product with ISA-L's polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11d), written out
/// independently of ISA-L.
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

fn reference_gf_inv(a: u8) -> u8 {
    (1..=255u8)
        .find(|&b| reference_gf_mul(a, b) == 1)
        .expect("non-zero elements are invertible")
}

/// The stored code is "parity row i = 1 / (i xor j) for data column j" (ISA-L's Cauchy1
/// construction). Checking ISA-L against that definition pins the code itself, not just the
/// library's current output.
#[test]
fn isal_parity_matches_the_cauchy_definition() {
    for (k, m) in [(1usize, 1usize), (3, 2), (8, 4), (12, 4), (20, 7)] {
        let scheme = format!("isal-cauchy:{k}+{m}");
        let len_bytes = 96;
        let data = golden_data(k, len_bytes);
        let computed = parity(&scheme, len_bytes);
        for (p, shard) in computed.iter().enumerate() {
            let row = k + p;
            for (byte, &value) in shard.iter().enumerate() {
                let expected = (0..k).fold(0u8, |acc, column| {
                    let coefficient = reference_gf_inv((row ^ column) as u8);
                    acc ^ reference_gf_mul(coefficient, data[column][byte])
                });
                assert_eq!(value, expected, "{scheme} parity {p} byte {byte}");
            }
        }
    }
}
