//! Chunked AES-256-GCM: the stored form of one encrypted part (a single PUT is part 1).
//!
//! Layout: the part's plaintext is cut into chunks of [`CHUNK_PLAINTEXT_BYTES`] (the last one
//! shorter); each chunk is stored as `nonce (12) || ciphertext || tag (16)`, one after another,
//! so the stored part is [`stored_length_bytes`] long and chunk `i` starts at
//! `i * (CHUNK_PLAINTEXT_BYTES + CHUNK_OVERHEAD_BYTES)`. A range read therefore fetches and opens
//! only the chunks that cover it ([`ciphertext_range`], [`ChunkDecryptor`]).
//!
//! Nonce: a random 64-bit prefix drawn per encrypted stream, then the chunk index (32 bits, big
//! endian). Each data key encrypts one object or one multipart upload, whose parts may be
//! uploaded again under the same part number: the random prefix keeps those streams' nonces
//! apart (a collision needs two equal 64-bit draws within one upload), and the counter keeps
//! the chunks of one stream apart.
//!
//! Associated data: part number (u32), chunk index (u64), last-chunk flag (u8), all big endian.
//! A chunk moved to another position or part, or a part cut after a chunk boundary, fails to
//! open.

use ring::aead::{Aad, LessSafeKey, NONCE_LEN, Nonce};

use crate::SseError;
use crate::keys::{DataKey, aead_key, random_bytes};

/// Plaintext bytes per chunk (the last chunk of a part may be shorter).
pub const CHUNK_PLAINTEXT_BYTES: u64 = 64 * 1024;
/// Stored bytes added to every chunk: nonce and tag.
pub const CHUNK_OVERHEAD_BYTES: u64 = (NONCE_LEN + TAG_BYTES) as u64;
const TAG_BYTES: usize = 16;
const STORED_CHUNK_BYTES: u64 = CHUNK_PLAINTEXT_BYTES + CHUNK_OVERHEAD_BYTES;
const _: () = assert!(CHUNK_OVERHEAD_BYTES == 28);

fn chunk_count(plaintext_length_bytes: u64) -> u64 {
    plaintext_length_bytes.div_ceil(CHUNK_PLAINTEXT_BYTES)
}

/// Stored (encrypted) length of a part of `plaintext_length_bytes`.
pub fn stored_length_bytes(plaintext_length_bytes: u64) -> u64 {
    plaintext_length_bytes + CHUNK_OVERHEAD_BYTES * chunk_count(plaintext_length_bytes)
}

/// The plaintext length of a stored part, or `None` if no plaintext length stores to it.
pub fn plaintext_length_bytes(stored_length_bytes: u64) -> Option<u64> {
    let chunks = stored_length_bytes.div_ceil(STORED_CHUNK_BYTES);
    let plaintext = stored_length_bytes.checked_sub(chunks * CHUNK_OVERHEAD_BYTES)?;
    let last_stored = stored_length_bytes - (chunks.saturating_sub(1)) * STORED_CHUNK_BYTES;
    (chunks == 0 || last_stored > CHUNK_OVERHEAD_BYTES).then_some(plaintext)
}

/// The stored byte range to read for the plaintext `range` of a part of
/// `part_plaintext_length_bytes`: whole chunks, from the one holding `range.start` to the one
/// holding `range.end - 1`.
pub fn ciphertext_range(
    range: &std::ops::Range<u64>,
    part_plaintext_length_bytes: u64,
) -> std::ops::Range<u64> {
    if range.start >= range.end {
        return 0..0;
    }
    let first_chunk = range.start / CHUNK_PLAINTEXT_BYTES;
    let last_chunk = (range.end - 1) / CHUNK_PLAINTEXT_BYTES;
    let stored_end = ((last_chunk + 1) * STORED_CHUNK_BYTES)
        .min(stored_length_bytes(part_plaintext_length_bytes));
    first_chunk * STORED_CHUNK_BYTES..stored_end
}

fn associated_data(part_number: u32, chunk_index: u64, last: bool) -> [u8; 13] {
    let mut aad = [0u8; 13];
    aad[..4].copy_from_slice(&part_number.to_be_bytes());
    aad[4..12].copy_from_slice(&chunk_index.to_be_bytes());
    aad[12] = u8::from(last);
    aad
}

/// Encrypts one part as it streams in. The plaintext length is declared up front (the request's
/// length), which tells which chunk is the last; more or fewer bytes are an error.
pub struct ChunkEncryptor {
    key: LessSafeKey,
    part_number: u32,
    plaintext_length_bytes: u64,
    chunks: u64,
    nonce_prefix: [u8; 8],
    chunk_index: u64,
    consumed_bytes: u64,
    pending: Vec<u8>,
}

impl ChunkEncryptor {
    pub fn new(
        data_key: &DataKey,
        part_number: u32,
        plaintext_length_bytes: u64,
    ) -> Result<Self, SseError> {
        let chunks = chunk_count(plaintext_length_bytes);
        if chunks > u64::from(u32::MAX) {
            return Err(SseError::LengthMismatch {
                expected_bytes: u64::from(u32::MAX) * CHUNK_PLAINTEXT_BYTES,
                actual_bytes: plaintext_length_bytes,
            });
        }
        Ok(Self {
            key: aead_key(data_key.expose_bytes()),
            part_number,
            plaintext_length_bytes,
            chunks,
            nonce_prefix: random_bytes()?,
            chunk_index: 0,
            consumed_bytes: 0,
            pending: Vec::new(),
        })
    }

    fn current_chunk_bytes(&self) -> usize {
        (self.plaintext_length_bytes - self.chunk_index * CHUNK_PLAINTEXT_BYTES)
            .min(CHUNK_PLAINTEXT_BYTES) as usize
    }

    fn seal(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), SseError> {
        let mut nonce = [0u8; NONCE_LEN];
        nonce[..8].copy_from_slice(&self.nonce_prefix);
        nonce[8..].copy_from_slice(&(self.chunk_index as u32).to_be_bytes());
        let last = self.chunk_index + 1 == self.chunks;
        out.reserve(plaintext.len() + CHUNK_OVERHEAD_BYTES as usize);
        out.extend_from_slice(&nonce);
        let start = out.len();
        out.extend_from_slice(plaintext);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(associated_data(self.part_number, self.chunk_index, last)),
                &mut out[start..],
            )
            .map_err(|_| SseError::Authentication)?;
        out.extend_from_slice(tag.as_ref());
        self.chunk_index += 1;
        Ok(())
    }

    /// Encrypts `plaintext`, appending every chunk it completes to `out`.
    pub fn push(&mut self, mut plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), SseError> {
        let arriving = self.consumed_bytes + plaintext.len() as u64;
        if arriving > self.plaintext_length_bytes {
            return Err(SseError::LengthMismatch {
                expected_bytes: self.plaintext_length_bytes,
                actual_bytes: arriving,
            });
        }
        self.consumed_bytes = arriving;
        while !plaintext.is_empty() {
            let wanted = self.current_chunk_bytes();
            if self.pending.is_empty() && plaintext.len() >= wanted {
                let (chunk, rest) = plaintext.split_at(wanted);
                self.seal(chunk, out)?;
                plaintext = rest;
                continue;
            }
            let taken = (wanted - self.pending.len()).min(plaintext.len());
            self.pending.extend_from_slice(&plaintext[..taken]);
            plaintext = &plaintext[taken..];
            if self.pending.len() == wanted {
                let pending = std::mem::take(&mut self.pending);
                self.seal(&pending, out)?;
                self.pending = pending;
                self.pending.clear();
            }
        }
        Ok(())
    }

    /// Checks that exactly the declared length arrived (every chunk was then already emitted).
    pub fn finish(self) -> Result<(), SseError> {
        if self.consumed_bytes != self.plaintext_length_bytes {
            return Err(SseError::LengthMismatch {
                expected_bytes: self.plaintext_length_bytes,
                actual_bytes: self.consumed_bytes,
            });
        }
        debug_assert_eq!(self.chunk_index, self.chunks);
        Ok(())
    }
}

/// Opens the chunks of a plaintext range of one part and yields exactly that range.
pub struct ChunkDecryptor {
    key: LessSafeKey,
    part_number: u32,
    part_plaintext_length_bytes: u64,
    chunks: u64,
    chunk_index: u64,
    end_chunk: u64,
    skip_bytes: usize,
    remaining_bytes: u64,
    pending: Vec<u8>,
}

impl ChunkDecryptor {
    /// A decryptor for plaintext `range` of a part; feed it the stored bytes of the returned
    /// range, in order.
    pub fn new(
        data_key: &DataKey,
        part_number: u32,
        part_plaintext_length_bytes: u64,
        range: std::ops::Range<u64>,
    ) -> (Self, std::ops::Range<u64>) {
        let stored = ciphertext_range(&range, part_plaintext_length_bytes);
        let empty = range.start >= range.end;
        let first_chunk = range.start / CHUNK_PLAINTEXT_BYTES;
        let decryptor = Self {
            key: aead_key(data_key.expose_bytes()),
            part_number,
            part_plaintext_length_bytes,
            chunks: chunk_count(part_plaintext_length_bytes),
            chunk_index: first_chunk,
            end_chunk: if empty {
                first_chunk
            } else {
                (range.end - 1) / CHUNK_PLAINTEXT_BYTES + 1
            },
            skip_bytes: (range.start % CHUNK_PLAINTEXT_BYTES) as usize,
            remaining_bytes: range.end.saturating_sub(range.start),
            pending: Vec::new(),
        };
        (decryptor, stored)
    }

    fn stored_chunk_bytes(&self) -> usize {
        let plaintext = (self.part_plaintext_length_bytes
            - self.chunk_index * CHUNK_PLAINTEXT_BYTES)
            .min(CHUNK_PLAINTEXT_BYTES);
        (plaintext + CHUNK_OVERHEAD_BYTES) as usize
    }

    fn open(&mut self, stored_chunk: &[u8], out: &mut Vec<u8>) -> Result<(), SseError> {
        let start = out.len();
        out.extend_from_slice(stored_chunk);
        let kept = self.open_at(out, start, start)?;
        out.truncate(start + kept);
        Ok(())
    }

    /// Opens the chunk that ends where `buffer` ends and starts at `read`, writing its plaintext
    /// (within the range) to `buffer[write..]`, `write <= read`; returns the plaintext length.
    /// ring decrypts while it moves the bytes down, so the move costs no extra pass.
    fn open_at(&mut self, buffer: &mut [u8], read: usize, write: usize) -> Result<usize, SseError> {
        let nonce = Nonce::try_assume_unique_for_key(&buffer[read..read + NONCE_LEN])
            .map_err(|_| SseError::Authentication)?;
        let last = self.chunk_index + 1 == self.chunks;
        let plaintext_bytes = self
            .key
            .open_within(
                nonce,
                Aad::from(associated_data(self.part_number, self.chunk_index, last)),
                &mut buffer[write..],
                read + NONCE_LEN - write..,
            )
            .map_err(|_| SseError::Authentication)?
            .len();
        let skip = std::mem::take(&mut self.skip_bytes).min(plaintext_bytes);
        if skip > 0 {
            buffer.copy_within(write + skip..write + plaintext_bytes, write);
        }
        let kept = ((plaintext_bytes - skip) as u64).min(self.remaining_bytes);
        self.remaining_bytes -= kept;
        self.chunk_index += 1;
        Ok(kept as usize)
    }

    fn check_more_expected(&self, stored_bytes: usize) -> Result<(), SseError> {
        if self.chunk_index >= self.end_chunk {
            return Err(SseError::LengthMismatch {
                expected_bytes: 0,
                actual_bytes: stored_bytes as u64,
            });
        }
        Ok(())
    }

    /// Like [`Self::push`], but without a second buffer: the chunks that lie wholly in `stored`
    /// are opened where they are, and `stored` is left holding their plaintext (within the
    /// range). A chunk begun by an earlier call's tail and completed here is returned apart,
    /// to be sent before `stored`; a tail that begins a chunk is kept for the next call.
    pub fn push_in_place(&mut self, stored: &mut Vec<u8>) -> Result<Option<Vec<u8>>, SseError> {
        let length = stored.len();
        let (head, plaintext) = self.open_in_place(stored, 0..length)?;
        stored.truncate(plaintext.end);
        Ok(head)
    }

    /// Like [`Self::push_in_place`] for the stored bytes at `range` of `buffer` (a piece holding
    /// them among other bytes): their plaintext is left from `range.start` on, and the range it
    /// occupies is returned with the head. Bytes of `buffer` outside `range` are not touched.
    pub fn open_in_place(
        &mut self,
        buffer: &mut [u8],
        range: std::ops::Range<usize>,
    ) -> Result<(Option<Vec<u8>>, std::ops::Range<usize>), SseError> {
        let end = range.end;
        let mut read = range.start;
        let mut head = None;
        if !self.pending.is_empty() && read < end {
            self.check_more_expected(end - read)?;
            let wanted = self.stored_chunk_bytes();
            let taken = (wanted - self.pending.len()).min(end - read);
            self.pending.extend_from_slice(&buffer[read..read + taken]);
            read += taken;
            if self.pending.len() == wanted {
                let mut chunk = std::mem::take(&mut self.pending);
                let kept = self.open_at(&mut chunk, 0, 0)?;
                chunk.truncate(kept);
                head = Some(chunk);
            }
        }
        let mut write = range.start;
        while read < end {
            self.check_more_expected(end - read)?;
            let wanted = self.stored_chunk_bytes();
            if end - read < wanted {
                // The chunk goes on in the next buffer. `pending` is empty here (its buffer went
                // out as the last head): sized for the whole chunk now, it is not reallocated
                // (and copied again) when the rest arrives.
                self.pending.reserve_exact(wanted);
                self.pending.extend_from_slice(&buffer[read..end]);
                break;
            }
            write += self.open_at(&mut buffer[..read + wanted], read, write)?;
            read += wanted;
        }
        Ok((head, range.start..write))
    }

    /// Opens the chunks `stored` completes, appending their plaintext (within the range) to `out`.
    pub fn push(&mut self, mut stored: &[u8], out: &mut Vec<u8>) -> Result<(), SseError> {
        while !stored.is_empty() {
            self.check_more_expected(stored.len())?;
            let wanted = self.stored_chunk_bytes();
            if self.pending.is_empty() && stored.len() >= wanted {
                let (chunk, rest) = stored.split_at(wanted);
                self.open(chunk, out)?;
                stored = rest;
                continue;
            }
            let taken = (wanted - self.pending.len()).min(stored.len());
            self.pending.extend_from_slice(&stored[..taken]);
            stored = &stored[taken..];
            if self.pending.len() == wanted {
                let pending = std::mem::take(&mut self.pending);
                self.open(&pending, out)?;
                self.pending = pending;
                self.pending.clear();
            }
        }
        Ok(())
    }

    /// Checks that every chunk of the range arrived and opened.
    pub fn finish(&self) -> Result<(), SseError> {
        if self.chunk_index != self.end_chunk || !self.pending.is_empty() {
            return Err(SseError::LengthMismatch {
                expected_bytes: self.end_chunk * CHUNK_PLAINTEXT_BYTES,
                actual_bytes: self.chunk_index * CHUNK_PLAINTEXT_BYTES + self.pending.len() as u64,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encrypt(key: &DataKey, part: u32, plaintext: &[u8], piece: usize) -> Vec<u8> {
        let mut encryptor = ChunkEncryptor::new(key, part, plaintext.len() as u64).unwrap();
        let mut out = Vec::new();
        for slice in plaintext.chunks(piece.max(1)) {
            encryptor.push(slice, &mut out).unwrap();
        }
        encryptor.finish().unwrap();
        out
    }

    /// How a test feeds the decryptor.
    #[derive(Clone, Copy)]
    enum Feed {
        /// [`ChunkDecryptor::push`] into one output buffer.
        Copying,
        /// [`ChunkDecryptor::push_in_place`]: each buffer's returned head, then what is left in
        /// the buffer, appended in order.
        InPlace,
        /// [`ChunkDecryptor::open_in_place`] on each slice placed amid other bytes, which must
        /// come through untouched.
        InPlaceRange,
    }

    /// Decrypts plaintext `range` from `stored`, fed in `piece`-byte slices.
    fn decrypt(
        feed: Feed,
        key: &DataKey,
        part: u32,
        stored: &[u8],
        plaintext_length: u64,
        range: std::ops::Range<u64>,
        piece: usize,
    ) -> Result<Vec<u8>, SseError> {
        let (mut decryptor, stored_range) = ChunkDecryptor::new(key, part, plaintext_length, range);
        let mut out = Vec::new();
        for slice in stored[stored_range.start as usize..stored_range.end as usize].chunks(piece) {
            match feed {
                Feed::Copying => decryptor.push(slice, &mut out)?,
                Feed::InPlace => {
                    let mut buffer = slice.to_vec();
                    if let Some(head) = decryptor.push_in_place(&mut buffer)? {
                        out.extend_from_slice(&head);
                    }
                    out.extend_from_slice(&buffer);
                }
                Feed::InPlaceRange => {
                    let before = slice.len() % 7 + 3;
                    let mut buffer = vec![0xA5; before];
                    buffer.extend_from_slice(slice);
                    buffer.extend_from_slice(&[0x5A; 5]);
                    let (head, plaintext) =
                        decryptor.open_in_place(&mut buffer, before..before + slice.len())?;
                    assert_eq!(plaintext.start, before);
                    assert!(buffer[..before].iter().all(|&byte| byte == 0xA5));
                    assert!(
                        buffer[before + slice.len()..]
                            .iter()
                            .all(|&byte| byte == 0x5A)
                    );
                    if let Some(head) = head {
                        out.extend_from_slice(&head);
                    }
                    out.extend_from_slice(&buffer[plaintext]);
                }
            }
        }
        decryptor.finish()?;
        Ok(out)
    }

    fn sample(length: usize) -> Vec<u8> {
        (0..length).map(|index| (index * 31 % 251) as u8).collect()
    }

    #[test]
    fn lengths_round_trip() {
        for plaintext in [0u64, 1, 65535, 65536, 65537, 131072, 5 << 20, (5 << 20) + 3] {
            let stored = stored_length_bytes(plaintext);
            assert_eq!(
                plaintext_length_bytes(stored),
                Some(plaintext),
                "{plaintext}"
            );
        }
        assert_eq!(stored_length_bytes(1), 29);
        assert_eq!(stored_length_bytes(65536), 65564);
        // Lengths no plaintext stores to.
        assert_eq!(plaintext_length_bytes(28), None);
        assert_eq!(plaintext_length_bytes(65564 + 28), None);
    }

    #[test]
    fn stored_bytes_do_not_contain_the_plaintext() {
        let key = DataKey::generate().unwrap();
        let marker = b"CAIRN-MARKER-1234567890".repeat(10_000);
        let stored = encrypt(&key, 1, &marker, 4096);
        assert_eq!(
            stored.len() as u64,
            stored_length_bytes(marker.len() as u64)
        );
        assert!(
            !stored
                .windows(12)
                .any(|window| window == &b"CAIRN-MARKER"[..])
        );
    }

    #[test]
    fn whole_and_ranges_across_chunk_boundaries() {
        let key = DataKey::generate().unwrap();
        let plaintext = sample(3 * 65536 + 100);
        let stored = encrypt(&key, 2, &plaintext, 10_000);
        let length = plaintext.len() as u64;
        for range in [
            0..length,
            0..1,
            65535..65537,
            65536..65536 * 2,
            100..3 * 65536 + 1,
            3 * 65536..length,
            length - 1..length,
            5..5,
        ] {
            let expected = &plaintext[range.start as usize..range.end as usize];
            let out =
                decrypt(Feed::Copying, &key, 2, &stored, length, range.clone(), 7000).unwrap();
            assert_eq!(out, expected);
            // In place, with buffers smaller than, near and larger than a stored chunk.
            for piece in [7000, 65563, 65564, 65565, 200_000] {
                for feed in [Feed::InPlace, Feed::InPlaceRange] {
                    let out = decrypt(feed, &key, 2, &stored, length, range.clone(), piece);
                    assert_eq!(out.unwrap(), expected, "{range:?} in {piece}-byte buffers");
                }
            }
        }
    }

    #[test]
    fn tampering_is_detected() {
        let key = DataKey::generate().unwrap();
        let plaintext = sample(2 * 65536 + 10);
        let length = plaintext.len() as u64;
        let stored = encrypt(&key, 1, &plaintext, 65536);
        // A flipped byte.
        let mut flipped = stored.clone();
        flipped[70_000] ^= 1;
        assert_eq!(
            decrypt(Feed::Copying, &key, 1, &flipped, length, 0..length, 4096),
            Err(SseError::Authentication)
        );
        for piece in [4096, 70_000, 1 << 20] {
            for feed in [Feed::InPlace, Feed::InPlaceRange] {
                assert_eq!(
                    decrypt(feed, &key, 1, &flipped, length, 0..length, piece),
                    Err(SseError::Authentication)
                );
            }
        }
        // Chunks swapped.
        let chunk = STORED_CHUNK_BYTES as usize;
        let mut swapped = stored.clone();
        swapped[..chunk].copy_from_slice(&stored[chunk..2 * chunk]);
        swapped[chunk..2 * chunk].copy_from_slice(&stored[..chunk]);
        assert_eq!(
            decrypt(Feed::Copying, &key, 1, &swapped, length, 0..length, 4096),
            Err(SseError::Authentication)
        );
        // Another part number, another key.
        assert_eq!(
            decrypt(Feed::Copying, &key, 2, &stored, length, 0..length, 4096),
            Err(SseError::Authentication)
        );
        let other = DataKey::generate().unwrap();
        assert_eq!(
            decrypt(Feed::Copying, &other, 1, &stored, length, 0..length, 4096),
            Err(SseError::Authentication)
        );
        // Cut after the first two chunks (which then claims the part is 128 KiB): the second
        // chunk was not the last one.
        let cut = &stored[..2 * chunk];
        assert_eq!(
            decrypt(Feed::Copying, &key, 1, cut, 2 * 65536, 0..2 * 65536, 4096),
            Err(SseError::Authentication)
        );
        assert_eq!(
            decrypt(
                Feed::InPlace,
                &key,
                1,
                cut,
                2 * 65536,
                0..2 * 65536,
                1 << 20
            ),
            Err(SseError::Authentication)
        );
        // More stored bytes than the range covers; fewer.
        let (mut decryptor, _) = ChunkDecryptor::new(&key, 1, length, 0..65536);
        let mut buffer = stored.clone();
        assert!(matches!(
            decryptor.push_in_place(&mut buffer),
            Err(SseError::LengthMismatch { .. })
        ));
        let (mut decryptor, _) = ChunkDecryptor::new(&key, 1, length, 0..length);
        let mut buffer = stored[..chunk + 5].to_vec();
        decryptor.push_in_place(&mut buffer).unwrap();
        assert_eq!(buffer, &plaintext[..65536]);
        assert!(matches!(
            decryptor.finish(),
            Err(SseError::LengthMismatch { .. })
        ));
    }

    #[test]
    fn wrong_lengths_are_refused() {
        let key = DataKey::generate().unwrap();
        let mut encryptor = ChunkEncryptor::new(&key, 1, 10).unwrap();
        let mut out = Vec::new();
        assert!(matches!(
            encryptor.push(&[0u8; 11], &mut out),
            Err(SseError::LengthMismatch { .. })
        ));
        let mut encryptor = ChunkEncryptor::new(&key, 1, 10).unwrap();
        encryptor.push(&[0u8; 9], &mut out).unwrap();
        assert!(matches!(
            encryptor.finish(),
            Err(SseError::LengthMismatch { .. })
        ));
    }

    #[test]
    fn nonces_differ_between_streams_of_the_same_key() {
        let key = DataKey::generate().unwrap();
        let first = encrypt(&key, 1, &[0u8; 100], 100);
        let second = encrypt(&key, 1, &[0u8; 100], 100);
        assert_ne!(first[..12], second[..12]);
        assert_ne!(first[12..], second[12..]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn any_range_of_any_length_decrypts(
            length in 0usize..300_000,
            start_fraction in 0.0f64..1.0,
            end_fraction in 0.0f64..1.0,
            push_size in 1usize..100_000,
        ) {
            let key = DataKey::generate().unwrap();
            let plaintext = sample(length);
            let stored = encrypt(&key, 9, &plaintext, push_size);
            prop_assert_eq!(stored.len() as u64, stored_length_bytes(length as u64));
            let start = (length as f64 * start_fraction) as u64;
            let end = start + ((length as u64 - start) as f64 * end_fraction) as u64;
            let out = decrypt(Feed::Copying, &key, 9, &stored, length as u64, start..end, push_size).unwrap();
            prop_assert_eq!(&out[..], &plaintext[start as usize..end as usize]);
            let out =
                decrypt(Feed::InPlace, &key, 9, &stored, length as u64, start..end, push_size).unwrap();
            prop_assert_eq!(&out[..], &plaintext[start as usize..end as usize]);
            let out = decrypt(
                Feed::InPlaceRange, &key, 9, &stored, length as u64, start..end, push_size,
            )
            .unwrap();
            prop_assert_eq!(&out[..], &plaintext[start as usize..end as usize]);
        }
    }
}
