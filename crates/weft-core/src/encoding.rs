//! Strict borsh decoding: size-limited input, no trailing bytes, unknown
//! variants rejected. Every decoder of bytes from outside goes through here.

use borsh::BorshDeserialize;

/// Why bytes could not be decoded. Never a panic.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The input is larger than this type may ever be.
    #[error("input is {len} bytes, more than the limit of {limit}")]
    TooLarge {
        /// Input length.
        len: usize,
        /// The limit for this type.
        limit: usize,
    },
    /// Malformed borsh: truncated, trailing bytes, unknown variant, bad UTF-8.
    #[error("malformed encoding: {0}")]
    Malformed(String),
    /// Well-formed but breaks a structural rule (a limit, a version).
    #[error("invalid value: {0}")]
    Invalid(String),
}

/// Decodes `bytes` as `T`, refusing inputs over `limit` bytes and any bytes
/// left over after the value.
pub fn decode_strict<T: BorshDeserialize>(bytes: &[u8], limit: usize) -> Result<T, DecodeError> {
    if bytes.len() > limit {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            limit,
        });
    }
    // `from_slice` fails on trailing bytes ("Not all bytes read").
    borsh::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))
}

/// Borsh-encodes a value. Encoding into a `Vec` cannot fail for our types.
pub fn encode<T: borsh::BorshSerialize>(value: &T) -> Vec<u8> {
    borsh::to_vec(value).expect("borsh encoding into a Vec is infallible")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut b = encode(&7u32);
        assert_eq!(decode_strict::<u32>(&b, 16), Ok(7));
        b.push(0);
        assert!(matches!(
            decode_strict::<u32>(&b, 16),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn oversized_input_is_rejected_before_decoding() {
        let b = vec![0u8; 17];
        assert_eq!(
            decode_strict::<Vec<u8>>(&b, 16),
            Err(DecodeError::TooLarge { len: 17, limit: 16 })
        );
    }

    #[test]
    fn a_length_prefix_longer_than_the_input_fails_cleanly() {
        // u32::MAX elements announced, none present: must error, not allocate.
        let b = [0xff, 0xff, 0xff, 0xff];
        assert!(decode_strict::<Vec<u8>>(&b, 16).is_err());
        assert!(decode_strict::<Vec<Vec<u8>>>(&b, 16).is_err());
    }
}
