//! Padding pieces: the data pieces of a stripe that lie wholly past its data.
//!
//! A stripe holds `k` data pieces of `piece_size_bytes` each; the last stripe of an object (or of
//! a multipart part) is zero-padded to whole pieces, so when its data ends early, the data pieces
//! after the one holding the last byte are zeros from end to end. A 4 KiB object in 4+2 with
//! 4 KiB pieces has two of them. They carry no information: the stripe's data length, which
//! every shard map records, says where they are and that they are zeros. So they are never
//! written to a node, placed in a shard map or read back; the erasure code still counts them
//! (parity is computed over the padded stripe), and a reader or the healer that decodes a stripe
//! takes them as known zeros. Skipping them saves a third of a 4 KiB PUT's piece writes
//! (`benches/results/README.md`, "Padding pieces").
//!
//! Shard maps written before this rule may still place padding pieces (stored empty); readers
//! ignore those placements.

use std::ops::Range;

/// The padding data pieces (see the module docs) of a stripe of `data_shards` pieces of
/// `piece_size_bytes`, holding `data_len_bytes` real bytes: `ceil(data_len / piece)..k`. Empty
/// when the data reaches the last data piece, when `data_len_bytes` exceeds one stripe (a block
/// of several stripes has no padding pieces), and for a zero piece size.
pub fn padding_data_pieces(
    data_shards: usize,
    piece_size_bytes: u64,
    data_len_bytes: u64,
) -> Range<usize> {
    if piece_size_bytes == 0 {
        return data_shards..data_shards;
    }
    let holding_data = data_len_bytes.div_ceil(piece_size_bytes);
    let first = usize::try_from(holding_data).map_or(data_shards, |count| count.min(data_shards));
    first..data_shards
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_wholly_past_the_data_are_padding() {
        // 4 KiB + 28 bytes (one SSE chunk) in 4+2 with 4 KiB pieces: pieces 0 and 1 hold data.
        assert_eq!(padding_data_pieces(4, 4096, 4124), 2..4);
        assert_eq!(padding_data_pieces(4, 4096, 4096), 1..4);
        assert_eq!(padding_data_pieces(4, 4096, 4097), 2..4);
        assert_eq!(padding_data_pieces(4, 4096, 1), 1..4);
        // Data reaching into the last data piece, a full stripe, several stripes: none.
        assert_eq!(padding_data_pieces(4, 4096, 3 * 4096 + 1), 4..4);
        assert_eq!(padding_data_pieces(4, 4096, 4 * 4096), 4..4);
        assert_eq!(padding_data_pieces(4, 4096, 40 * 4096), 4..4);
        assert_eq!(padding_data_pieces(4, 4096, u64::MAX), 4..4);
        // No data at all: every data piece (a shard map never has such a block).
        assert_eq!(padding_data_pieces(4, 4096, 0), 0..4);
        assert_eq!(padding_data_pieces(4, 0, 100), 4..4);
        assert_eq!(padding_data_pieces(10, 1 << 20, 5 << 20), 5..10);
    }

    #[test]
    fn a_padding_piece_holds_no_byte_of_the_data() {
        for data_shards in 1..=6usize {
            for piece in [1u64, 7, 4096] {
                for data_len in 1..=(data_shards as u64 * piece) {
                    let padding = padding_data_pieces(data_shards, piece, data_len);
                    for index in 0..data_shards {
                        let starts_past_the_end = index as u64 * piece >= data_len;
                        assert_eq!(padding.contains(&index), starts_past_the_end);
                    }
                }
            }
        }
    }
}
