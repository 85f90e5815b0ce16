//! `application/x-www-form-urlencoded`, read one way everywhere: query strings (credentials,
//! method overrides, the admin API's paging) and form bodies (the admin API) are split and
//! decoded here, by the WHATWG rules: pairs separated by `&`, name and value by the first `=`,
//! `+` is a space and `%XX` a byte; a `%` not followed by two hex digits is kept as it is.
//!
//! Decoding yields bytes; a caller that needs text chooses [`lossy`] (an invalid sequence
//! becomes U+FFFD, which then matches nothing vidgate looks for) or [`utf8`] (refuse it, where a
//! silent change would alter a stored value).

use std::borrow::Cow;

use percent_encoding::percent_decode;

/// Every `name=value` pair of `input`, decoded, in order; empty pairs (`a&&b`) are skipped and a
/// pair without `=` has an empty value.
pub fn pairs(input: &[u8]) -> impl Iterator<Item = (Cow<'_, [u8]>, Cow<'_, [u8]>)> {
    raw_pairs(input).map(|(name, value)| (decode(name), decode(value)))
}

/// Every pair of `input` as written, not decoded.
fn raw_pairs(input: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    input
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &b""[..]),
        })
}

/// One component decoded: `+` as a space, then `%XX` as a byte.
pub fn decode(component: &[u8]) -> Cow<'_, [u8]> {
    if !component.iter().any(|&b| b == b'+' || b == b'%') {
        return Cow::Borrowed(component);
    }
    let spaced: Vec<u8> = component
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    Cow::Owned(percent_decode(&spaced).collect())
}

/// Decoded bytes as text, invalid UTF-8 replaced by U+FFFD.
pub fn lossy(bytes: Cow<'_, [u8]>) -> Cow<'_, str> {
    match bytes {
        Cow::Borrowed(b) => String::from_utf8_lossy(b),
        Cow::Owned(b) => match String::from_utf8(b) {
            Ok(text) => Cow::Owned(text),
            Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
        },
    }
}

/// Decoded bytes as text, or `None` when they are not UTF-8.
pub fn utf8(bytes: Cow<'_, [u8]>) -> Option<Cow<'_, str>> {
    match bytes {
        Cow::Borrowed(b) => std::str::from_utf8(b).ok().map(Cow::Borrowed),
        Cow::Owned(b) => String::from_utf8(b).ok().map(Cow::Owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(input: &str) -> Vec<(String, String)> {
        pairs(input.as_bytes())
            .map(|(n, v)| (lossy(n).into_owned(), lossy(v).into_owned()))
            .collect()
    }

    #[test]
    fn pairs_split_on_ampersands_and_the_first_equals_sign() {
        assert_eq!(
            decoded("a=1&&b=x=y&c&=d"),
            [("a", "1"), ("b", "x=y"), ("c", ""), ("", "d")]
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn plus_is_a_space_and_escapes_are_bytes() {
        assert_eq!(decoded("a+b=%2B+%41"), [("a b".into(), "+ A".into())]);
        // A `%2B` stays a plus sign: `+` is replaced before escapes are decoded.
        assert_eq!(decode(b"%2B").as_ref(), b"+");
        // A malformed escape is kept as it is.
        assert_eq!(decode(b"100%").as_ref(), b"100%");
        assert_eq!(decode(b"%zz").as_ref(), b"%zz");
    }

    #[test]
    fn text_is_lossy_or_strict_by_choice() {
        assert_eq!(lossy(decode(b"%FF")), "\u{FFFD}");
        assert_eq!(utf8(decode(b"%FF")), None);
        assert_eq!(utf8(decode(b"caf%C3%A9")).as_deref(), Some("café"));
    }
}
