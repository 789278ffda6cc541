//! Erasure-coding schemes: which codec, how many data shards (k) and parity shards (m).
//!
//! Model: a [`Scheme`] is stored with every object, so it names the codec as well as k and m —
//! ISA-L's Cauchy code and reed-solomon-simd's code compute different parity from the same data,
//! and an object must always decode with the codec that wrote it.
//!
//! Invariants: a `Scheme` value is always valid (k ≥ 1, m ≥ 1, k + m within the codec's limits and
//! Cairn's [`MAX_TOTAL_SHARDS`]); its text form `<codec>:<k>+<m>` (e.g. `isal-cauchy:8+4`) is the
//! stable serialisation: `Display` prints exactly the form `FromStr` accepts, and parsing rejects
//! any other spelling (spaces, signs, leading zeros), so text and value round-trip one to one.

use std::fmt;
use std::str::FromStr;

/// Cairn-wide cap on k + m. ISA-L works in GF(2^8), whose Cauchy construction gives at most 256
/// distinct rows; 255 also keeps every shard index in a `u8` and lets [`crate::ShardSet`] be a
/// fixed 256-bit set. No placement has anywhere near this many storage nodes per object.
pub const MAX_TOTAL_SHARDS: usize = 255;

/// The codec that computes an object's parity. Different codecs are different codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CodecKind {
    /// ISA-L `ec_encode_data` with the Cauchy generator matrix from `gf_gen_cauchy1_matrix`.
    IsalCauchy,
    /// reed-solomon-simd 3.x (Leopard-style FFT code over GF(2^16)).
    RsSimd,
}

impl CodecKind {
    /// Every codec, in a fixed order (tests and calibration iterate over it).
    pub const ALL: [CodecKind; 2] = [CodecKind::IsalCauchy, CodecKind::RsSimd];

    /// The stable name used in the scheme string.
    pub fn name(self) -> &'static str {
        match self {
            CodecKind::IsalCauchy => "isal-cauchy",
            CodecKind::RsSimd => "rs-simd",
        }
    }

    /// Largest k + m this codec supports, after Cairn's own cap.
    fn supports(self, data_shards: usize, parity_shards: usize) -> bool {
        let total = data_shards + parity_shards;
        if total > MAX_TOTAL_SHARDS {
            return false;
        }
        match self {
            CodecKind::IsalCauchy => true,
            CodecKind::RsSimd => {
                reed_solomon_simd::ReedSolomonEncoder::supports(data_shards, parity_shards)
            }
        }
    }
}

impl fmt::Display for CodecKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CodecKind {
    type Err = SchemeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        CodecKind::ALL
            .into_iter()
            .find(|kind| kind.name() == text)
            .ok_or_else(|| SchemeError::UnknownCodec(text.to_owned()))
    }
}

/// Why a scheme is invalid or a scheme string does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SchemeError {
    #[error("scheme needs at least one data shard (k >= 1)")]
    NoDataShards,
    #[error("scheme needs at least one parity shard (m >= 1)")]
    NoParityShards,
    #[error(
        "codec {codec} does not support {data_shards}+{parity_shards} \
         (k + m must be at most {MAX_TOTAL_SHARDS} and within the codec's own limits)"
    )]
    UnsupportedShardCount {
        codec: CodecKind,
        data_shards: usize,
        parity_shards: usize,
    },
    #[error("unknown codec {0:?} (expected \"isal-cauchy\" or \"rs-simd\")")]
    UnknownCodec(String),
    #[error("malformed scheme {0:?} (expected <codec>:<k>+<m>, e.g. \"isal-cauchy:8+4\")")]
    Malformed(String),
}

/// A validated erasure-coding scheme: codec, k data shards, m parity shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Scheme {
    codec: CodecKind,
    data_shards: u8,
    parity_shards: u8,
}

impl Scheme {
    /// Validates and builds a scheme.
    pub fn new(
        codec: CodecKind,
        data_shards: usize,
        parity_shards: usize,
    ) -> Result<Self, SchemeError> {
        if data_shards == 0 {
            return Err(SchemeError::NoDataShards);
        }
        if parity_shards == 0 {
            return Err(SchemeError::NoParityShards);
        }
        if !codec.supports(data_shards, parity_shards) {
            return Err(SchemeError::UnsupportedShardCount {
                codec,
                data_shards,
                parity_shards,
            });
        }
        // Both fit in u8 because k + m <= MAX_TOTAL_SHARDS = 255.
        Ok(Scheme {
            codec,
            data_shards: data_shards as u8,
            parity_shards: parity_shards as u8,
        })
    }

    pub fn codec(self) -> CodecKind {
        self.codec
    }

    /// k.
    pub fn data_shards(self) -> usize {
        usize::from(self.data_shards)
    }

    /// m.
    pub fn parity_shards(self) -> usize {
        usize::from(self.parity_shards)
    }

    /// k + m.
    pub fn total_shards(self) -> usize {
        self.data_shards() + self.parity_shards()
    }

    /// The same k and m with another codec (used by calibration and tests).
    pub fn with_codec(self, codec: CodecKind) -> Result<Self, SchemeError> {
        Scheme::new(codec, self.data_shards(), self.parity_shards())
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}+{}",
            self.codec, self.data_shards, self.parity_shards
        )
    }
}

/// Parses a canonical decimal count: digits only, no sign, no leading zero (except "0" itself,
/// which validation then rejects with a precise error).
fn parse_count(text: &str, whole: &str) -> Result<usize, SchemeError> {
    let canonical = !text.is_empty()
        && text.len() <= 3
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if !canonical {
        return Err(SchemeError::Malformed(whole.to_owned()));
    }
    text.parse()
        .map_err(|_| SchemeError::Malformed(whole.to_owned()))
}

impl FromStr for Scheme {
    type Err = SchemeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (codec_text, counts) = text
            .split_once(':')
            .ok_or_else(|| SchemeError::Malformed(text.to_owned()))?;
        let codec: CodecKind = codec_text.parse()?;
        let (data_text, parity_text) = counts
            .split_once('+')
            .ok_or_else(|| SchemeError::Malformed(text.to_owned()))?;
        let data_shards = parse_count(data_text, text)?;
        let parity_shards = parse_count(parity_text, text)?;
        Scheme::new(codec, data_shards, parity_shards)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_strings_round_trip() {
        for text in [
            "isal-cauchy:8+4",
            "rs-simd:8+4",
            "isal-cauchy:1+1",
            "rs-simd:10+4",
        ] {
            let scheme: Scheme = text.parse().unwrap();
            assert_eq!(scheme.to_string(), text);
        }
        let scheme: Scheme = "isal-cauchy:12+4".parse().unwrap();
        assert_eq!(scheme.codec(), CodecKind::IsalCauchy);
        assert_eq!((scheme.data_shards(), scheme.parity_shards()), (12, 4));
        assert_eq!(scheme.total_shards(), 16);
    }

    #[test]
    fn scheme_validation_errors_are_typed() {
        assert_eq!(
            "isal-cauchy:0+4".parse::<Scheme>(),
            Err(SchemeError::NoDataShards)
        );
        assert_eq!(
            "rs-simd:4+0".parse::<Scheme>(),
            Err(SchemeError::NoParityShards)
        );
        assert!(matches!(
            "isal-cauchy:200+56".parse::<Scheme>(),
            Err(SchemeError::UnsupportedShardCount { .. })
        ));
        assert!(Scheme::new(CodecKind::IsalCauchy, 200, 55).is_ok());
        assert!(matches!(
            "lrc:8+4".parse::<Scheme>(),
            Err(SchemeError::UnknownCodec(_))
        ));
        for bad in [
            "isal-cauchy",
            "isal-cauchy:8",
            "isal-cauchy:8+",
            "isal-cauchy:+4",
            "isal-cauchy: 8+4",
            "isal-cauchy:08+4",
            "isal-cauchy:8+-4",
            "isal-cauchy:8+4 ",
            "isal-cauchy:1000+4",
            "ISAL-CAUCHY:8+4x",
        ] {
            assert!(bad.parse::<Scheme>().is_err(), "{bad} parsed");
        }
    }
}
