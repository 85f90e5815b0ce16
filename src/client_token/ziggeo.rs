//! Ziggeo-format client tokens (SPEC 1.3, format 2): what the Ziggeo server SDKs'
//! `auth().generate(options)` produces.
//!
//! `iv || hex(AES-256-CBC(key, iv, PKCS#7(json)))`, where `iv` is 16 ASCII hex characters used
//! directly as the 16 IV bytes and `key` is the 32 ASCII characters of
//! `md5_hex(encryption_key)`. The format has no integrity protection, so it must not become a
//! padding oracle: every failure gives the same response (the caller maps every [`Problem`]
//! to one fixed `invalid_token`), and the work done does not depend on whether the padding was
//! valid. All blocks are decrypted, the padding is checked in constant time over the whole
//! last block, and the JSON is parsed whatever the padding said, before the verdicts are
//! combined.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aes::cipher::block_padding::{NoPadding, Pkcs7};
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use md5::{Digest, Md5};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use subtle::{ConditionallySelectable, ConstantTimeEq, ConstantTimeGreater, ConstantTimeLess};

use super::{check_nonce, Fields, Format, Refused, Verified};
use crate::config::{ConfigError, ZiggeoConfig};
use crate::session::OwnerKey;
use crate::token::{Grants, InstantInput};

type Decryptor = cbc::Decryptor<aes::Aes256>;
type Encryptor = cbc::Encryptor<aes::Aes256>;

const BLOCK: usize = 16;
const IV_HEX: usize = 16;

/// The Ziggeo format as configured: the application's token and its derived AES key.
#[derive(Clone)]
pub struct ZiggeoFormat {
    key: [u8; 32],
    application_token: String,
}

impl fmt::Debug for ZiggeoFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZiggeoFormat")
            .field("application_token", &self.application_token)
            .finish_non_exhaustive()
    }
}

/// What was wrong with a Ziggeo-format token. Shown by `vidgate token inspect` only; a request
/// gets the same `invalid_token` for each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Not `16 + 32·n` characters.
    Length,
    /// A character that is not a hex digit.
    Hex,
    /// The padding is wrong: a different key, or a damaged token.
    Undecryptable,
    /// The plaintext is not the JSON object the format holds.
    Contents(String),
    /// `application_token` is not the configured application's.
    Application,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Length => f.write_str("its length is not 16 + a multiple of 32 hex digits"),
            Problem::Hex => f.write_str("it holds characters that are not hex digits"),
            Problem::Undecryptable => {
                f.write_str("it does not decrypt with this encryption key (or was damaged)")
            }
            Problem::Contents(what) => write!(f, "{what}"),
            Problem::Application => f.write_str("its application_token is not this application's"),
        }
    }
}

/// The keys a token may hold (SPEC 1.3); anything else, or a key twice, is refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    application_token: Option<String>,
    nonce: Option<Nonce>,
    grants: Option<GrantsOption>,
    session_limit: Option<i64>,
    usage_expiration_time: Option<i64>,
    expiration_date: Option<InstantInput>,
}

/// `nonce`: the SDKs send a string of digits; a number is taken as its decimal text.
struct Nonce(String);

impl<'de> Deserialize<'de> for Nonce {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NonceVisitor;
        impl Visitor<'_> for NonceVisitor {
            type Value = Nonce;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an integer")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Nonce, E> {
                Ok(Nonce(v.to_owned()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Nonce, E> {
                Ok(Nonce(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Nonce, E> {
                Ok(Nonce(v.to_string()))
            }
        }
        deserializer.deserialize_any(NonceVisitor)
    }
}

/// `grants`: an object, or a string holding one (as server-side forms carry it).
struct GrantsOption(Grants);

impl<'de> Deserialize<'de> for GrantsOption {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct GrantsVisitor;
        impl<'de> Visitor<'de> for GrantsVisitor {
            type Value = GrantsOption;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a grants object, or a string holding one")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<GrantsOption, E> {
                serde_json::from_str(text)
                    .map(GrantsOption)
                    .map_err(|e| E::custom(format_args!("grants string: {e}")))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<GrantsOption, A::Error> {
                Grants::deserialize(de::value::MapAccessDeserializer::new(map)).map(GrantsOption)
            }
        }
        deserializer.deserialize_any(GrantsVisitor)
    }
}

impl ZiggeoFormat {
    /// The format for an application's token and encryption key.
    pub fn new(application_token: &str, encryption_key: &str) -> ZiggeoFormat {
        let digest = Md5::digest(encryption_key.as_bytes());
        let mut key = [0u8; 32];
        // The key is the md5 digest's 32 lowercase hex characters, as ASCII bytes.
        hex::encode_to_slice(digest.as_slice(), &mut key).expect("32 hex chars fit 32 bytes");
        ZiggeoFormat {
            key,
            application_token: application_token.to_owned(),
        }
    }

    /// From `[client_tokens.ziggeo]`, after [`Config::resolve`](crate::config::Config::resolve).
    pub fn from_config(config: &ZiggeoConfig) -> Result<ZiggeoFormat, ConfigError> {
        let key = config.resolved_encryption_key().ok_or_else(|| {
            ConfigError::invalid("client_tokens.ziggeo.encryption_key", "is not set")
        })?;
        Ok(ZiggeoFormat::new(&config.application_token, key))
    }

    /// The configured application token.
    pub fn application_token(&self) -> &str {
        &self.application_token
    }

    /// Verify a token (see [`ClientTokens::verify`](super::ClientTokens::verify)).
    pub(super) fn verify(&self, value: &str, leeway: Duration) -> Result<Verified, Refused> {
        let options = self.open(value).map_err(Refused::Ziggeo)?;
        let application = options.application_token.unwrap_or_default();
        if !bool::from(
            application
                .as_bytes()
                .ct_eq(self.application_token.as_bytes()),
        ) {
            return Err(Refused::Ziggeo(Problem::Application));
        }
        let contents = |what: &str| Refused::Ziggeo(Problem::Contents(what.to_owned()));
        let Some(Nonce(nonce)) = options.nonce else {
            return Err(contents("it has no nonce"));
        };
        check_nonce("nonce", &nonce)?;
        let Some(GrantsOption(grants)) = options.grants else {
            return Err(contents("it has no grants"));
        };
        let token = Fields {
            grants,
            expires: options.expiration_date.map(|d| d.0),
            session_limit: options.session_limit,
            usage_expiration_time: options.usage_expiration_time,
        }
        .into_token(leeway)?;
        Ok(Verified {
            token,
            owner: OwnerKey::Ziggeo(Arc::<str>::from(nonce)),
            format: Format::Ziggeo,
        })
    }

    /// Decrypt and parse, doing the same work whether or not the padding is valid.
    fn open(&self, value: &str) -> Result<Options, Problem> {
        let text = value.as_bytes();
        if text.len() < IV_HEX + 2 * BLOCK || !(text.len() - IV_HEX).is_multiple_of(2 * BLOCK) {
            return Err(Problem::Length);
        }
        let (iv, hex_ciphertext) = text.split_at(IV_HEX);
        if !iv.iter().all(u8::is_ascii_hexdigit) {
            return Err(Problem::Hex);
        }
        let mut buffer = decode_hex(hex_ciphertext).ok_or(Problem::Hex)?;
        let decryptor = Decryptor::new_from_slices(&self.key, iv).map_err(|_| Problem::Length)?;
        decryptor
            .decrypt_padded::<NoPadding>(&mut buffer)
            .map_err(|_| Problem::Length)?;

        let (padding_ok, padding) = pkcs7_padding(&buffer);
        // Parse whatever the padding said: a bad padding costs the same parse as a good one.
        let plaintext = &buffer[..buffer.len() - padding];
        let parsed = parse_options(plaintext);
        if !bool::from(padding_ok) {
            return Err(Problem::Undecryptable);
        }
        parsed
    }

    /// Encrypt `options` (a JSON object, to which `application_token` and a fresh `nonce` are
    /// added unless present) the way the Ziggeo SDKs do: for `vidgate token mint` and tests.
    pub fn seal(&self, options: &serde_json::Value) -> Result<String, String> {
        let mut options = options
            .as_object()
            .cloned()
            .ok_or("the options must be a JSON object")?;
        options
            .entry("application_token")
            .or_insert_with(|| self.application_token.clone().into());
        options
            .entry("nonce")
            .or_insert_with(|| hex::encode(crate::random_bytes::<16>()).into());
        Ok(self.seal_text(&serde_json::Value::Object(options).to_string()))
    }

    /// Encrypt any text (tests use it to build malformed tokens with a valid encryption).
    pub fn seal_text(&self, plaintext: &str) -> String {
        let iv = hex::encode(crate::random_bytes::<8>());
        let length = plaintext.len();
        let mut buffer = vec![0u8; length + BLOCK - length % BLOCK];
        buffer[..length].copy_from_slice(plaintext.as_bytes());
        let ciphertext = Encryptor::new_from_slices(&self.key, iv.as_bytes())
            .expect("a 32-byte key and a 16-byte IV")
            .encrypt_padded::<Pkcs7>(&mut buffer, length)
            .expect("the buffer has room for the padding");
        iv + &hex::encode(ciphertext)
    }
}

/// One plain parse, never a second tracking one on failure: the work must not depend on what
/// the plaintext holds more than the parse itself does.
fn parse_options(plaintext: &[u8]) -> Result<Options, Problem> {
    serde_json::from_slice(plaintext).map_err(|e| Problem::Contents(e.to_string()))
}

/// Hex to bytes (either case), `None` if any character is not a hex digit. A table lookup
/// per character: `hex::decode` is an iterator chain that cost a quarter of the whole check.
fn decode_hex(text: &[u8]) -> Option<Vec<u8>> {
    const INVALID: u8 = 0xff;
    const TABLE: [u8; 256] = {
        let mut table = [INVALID; 256];
        let mut i = 0;
        while i < 10 {
            table[b'0' as usize + i] = i as u8;
            i += 1;
        }
        let mut i = 0;
        while i < 6 {
            table[b'a' as usize + i] = 10 + i as u8;
            table[b'A' as usize + i] = 10 + i as u8;
            i += 1;
        }
        table
    };
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 2);
    let mut bad = 0u8;
    for pair in text.chunks_exact(2) {
        let (high, low) = (TABLE[usize::from(pair[0])], TABLE[usize::from(pair[1])]);
        bad |= (high | low) & 0xf0;
        out.push((high << 4) | (low & 0x0f));
    }
    (bad == 0).then_some(out)
}

/// The PKCS#7 padding of a decrypted buffer (a whole number of blocks, at least one), checked
/// in constant time over the last block: whether it is valid, and its length (0 when not).
fn pkcs7_padding(buffer: &[u8]) -> (subtle::Choice, usize) {
    let last = &buffer[buffer.len() - BLOCK..];
    let n = last[BLOCK - 1];
    let mut valid = n.ct_gt(&0) & !n.ct_gt(&(BLOCK as u8));
    for (i, &byte) in last.iter().rev().enumerate() {
        let in_padding = (i as u8).ct_lt(&n);
        valid &= !in_padding | byte.ct_eq(&n);
    }
    let length = u8::conditional_select(&0, &n, valid);
    (valid, usize::from(length))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_is_checked_over_the_whole_last_block() {
        let mut block = [7u8; 16];
        assert!(bool::from(pkcs7_padding(&block).0));
        assert_eq!(pkcs7_padding(&block).1, 7);
        block[10] = 1; // inside the 7 padding bytes
        assert!(!bool::from(pkcs7_padding(&block).0));
        assert_eq!(pkcs7_padding(&block).1, 0);
        block[10] = 7;
        block[8] = 1; // just before them: fine
        assert!(bool::from(pkcs7_padding(&block).0));
        for bad_last in [0u8, 17, 255] {
            block[15] = bad_last;
            assert!(!bool::from(pkcs7_padding(&block).0), "{bad_last}");
        }
        let full = [16u8; 16];
        assert_eq!(pkcs7_padding(&full).1, 16);
    }

    #[test]
    fn hex_decodes_like_the_hex_crate() {
        for text in ["", "00", "ff", "FF", "0aF9", "deadBEEF0123456789abcdef"] {
            assert_eq!(
                decode_hex(text.as_bytes()),
                hex::decode(text).ok(),
                "{text}"
            );
        }
        for bad in ["0", "0g", "g0", "zz", "0 ", "\u{e9}0"] {
            assert_eq!(decode_hex(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn the_key_is_the_ascii_hex_of_md5() {
        // md5("") = d41d8cd98f00b204e9800998ecf8427e
        let format = ZiggeoFormat::new("app", "");
        assert_eq!(&format.key, b"d41d8cd98f00b204e9800998ecf8427e");
    }
}
