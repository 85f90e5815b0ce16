//! The value types of the configuration (durations, secrets, origin URLs, listen addresses,
//! byte counts) and the small checks the sections share.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use http::uri::{Authority, Scheme, Uri};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::error::invalid;
use super::ConfigError;
use crate::route::Unmatched;

/// A duration written as a string such as `"5s"`, `"250ms"`, `"24h"` or `"30d"`
/// (`humantime`'s syntax). A bare number is refused: its unit would be a guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(std::time::Duration);

impl HumanDuration {
    /// A duration of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(std::time::Duration::from_secs(secs))
    }

    /// The duration.
    pub const fn get(self) -> std::time::Duration {
        self.0
    }

    /// Whether it is zero.
    pub const fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

impl From<std::time::Duration> for HumanDuration {
    fn from(duration: std::time::Duration) -> Self {
        Self(duration)
    }
}

impl From<HumanDuration> for std::time::Duration {
    fn from(duration: HumanDuration) -> Self {
        duration.0
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        humantime::format_duration(self.0).fmt(f)
    }
}

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        humantime::parse_duration(s)
            .map(Self)
            .map_err(|_| format!("{s:?} is not a duration (write e.g. \"5s\" or \"250ms\")"))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;

        impl Visitor<'_> for DurationVisitor {
            type Value = HumanDuration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"5s\" or \"250ms\"")
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<HumanDuration, E> {
                s.parse().map_err(E::custom)
            }

            fn visit_i64<E: de::Error>(self, n: i64) -> Result<HumanDuration, E> {
                Err(E::custom(format!(
                    "{n} has no unit: write the duration as a string, e.g. \"{n}s\" or \"{n}ms\""
                )))
            }

            fn visit_u64<E: de::Error>(self, n: u64) -> Result<HumanDuration, E> {
                Err(E::custom(format!(
                    "{n} has no unit: write the duration as a string, e.g. \"{n}s\" or \"{n}ms\""
                )))
            }

            fn visit_f64<E: de::Error>(self, n: f64) -> Result<HumanDuration, E> {
                Err(E::custom(format!(
                    "{n} has no unit: write the duration as a string, e.g. \"5s\" or \"250ms\""
                )))
            }
        }

        deserializer.deserialize_any(DurationVisitor)
    }
}

/// A secret from the config: its `Debug` never shows it, so that a logged config leaks nothing.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// `proxy.upstream`: an `http://` or `https://` origin with a host and no path, query or user
/// info, e.g. `http://127.0.0.1:9000` (a trailing `/` is allowed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamUrl {
    https: bool,
    authority: Authority,
    /// `scheme://authority/`, built once.
    uri: Uri,
}

impl UpstreamUrl {
    /// `"http"` or `"https"`.
    pub fn scheme(&self) -> &'static str {
        if self.https {
            "https"
        } else {
            "http"
        }
    }

    /// The scheme as an [`http::uri::Scheme`], to build request URIs with.
    pub fn scheme_http(&self) -> Scheme {
        if self.https {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        }
    }

    /// Host and port as written, e.g. `127.0.0.1:9000`; the value of the forwarded `Host`.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// The host, e.g. `videos.example.com` or `[::1]`.
    pub fn host(&self) -> &str {
        self.authority.host()
    }

    /// The port: the one written, else 443 for https and 80 for http.
    pub fn port(&self) -> u16 {
        // `from_str` refused ports that are not a u16.
        explicit_port(&self.authority)
            .ok()
            .flatten()
            .unwrap_or(if self.https { 443 } else { 80 })
    }

    /// Whether the origin is reached over TLS.
    pub fn is_https(&self) -> bool {
        self.https
    }

    /// The origin as a URI, `scheme://authority/`, e.g. for `proxy::UpstreamConfig::uri`.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }
}

impl fmt::Display for UpstreamUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme(), self.authority)
    }
}

impl FromStr for UpstreamUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        const EXAMPLE: &str = "write e.g. \"http://127.0.0.1:9000\"";
        if s.contains('#') {
            return Err(format!("{s:?} must not have a fragment ({EXAMPLE})"));
        }
        let uri: Uri = s
            .parse()
            .map_err(|_| format!("{s:?} is not a URL ({EXAMPLE})"))?;
        let https = match uri.scheme() {
            Some(scheme) if *scheme == Scheme::HTTPS => true,
            Some(scheme) if *scheme == Scheme::HTTP => false,
            Some(_) => return Err(format!("{s:?} must start with http:// or https://")),
            None => return Err(format!("{s:?} has no scheme ({EXAMPLE})")),
        };
        let authority = match uri.authority() {
            Some(authority) if !authority.host().is_empty() => authority.clone(),
            _ => return Err(format!("{s:?} has no host ({EXAMPLE})")),
        };
        if authority.as_str().contains('@') {
            return Err(format!("{s:?} must not hold a user name or password"));
        }
        match explicit_port(&authority) {
            Err(()) => return Err(format!("{s:?} has an invalid port ({EXAMPLE})")),
            Ok(Some(0)) => return Err(format!("{s:?}: port 0 cannot be connected to")),
            Ok(_) => {}
        }
        if !matches!(uri.path(), "" | "/") {
            return Err(format!(
                "{s:?} must not have a path: vidgate forwards each request's own path ({EXAMPLE})"
            ));
        }
        if uri.query().is_some() {
            return Err(format!("{s:?} must not have a query ({EXAMPLE})"));
        }
        let uri = Uri::builder()
            .scheme(if https { Scheme::HTTPS } else { Scheme::HTTP })
            .authority(authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|_| format!("{s:?} is not a URL ({EXAMPLE})"))?;
        Ok(Self {
            https,
            authority,
            uri,
        })
    }
}

impl<'de> Deserialize<'de> for UpstreamUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(de::Error::custom)
    }
}

pub(super) fn de_socket_addr<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<SocketAddr, D::Error> {
    let s = String::deserialize(deserializer)?;
    s.parse().map_err(|_| {
        de::Error::custom(format!(
            "{s:?} is not a listen address (write e.g. \"127.0.0.1:8080\" or \"[::1]:8080\")"
        ))
    })
}

pub(super) fn de_unmatched<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Unmatched, D::Error> {
    /// `route::Unmatched` stays free of serde; this is its spelling in the file.
    #[derive(Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Spelling {
        Deny,
        Pass,
    }
    Ok(match Spelling::deserialize(deserializer)? {
        Spelling::Deny => Unmatched::Deny,
        Spelling::Pass => Unmatched::Pass,
    })
}

pub(super) fn de_byte_count<'de, D: Deserializer<'de>>(deserializer: D) -> Result<usize, D::Error> {
    struct BytesVisitor;

    impl Visitor<'_> for BytesVisitor {
        type Value = usize;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number of bytes")
        }

        fn visit_i64<E: de::Error>(self, n: i64) -> Result<usize, E> {
            usize::try_from(n).map_err(|_| E::custom(format!("{n} is not a number of bytes")))
        }

        fn visit_u64<E: de::Error>(self, n: u64) -> Result<usize, E> {
            usize::try_from(n).map_err(|_| E::custom(format!("{n} is too large")))
        }

        fn visit_str<E: de::Error>(self, s: &str) -> Result<usize, E> {
            Err(E::custom(format!(
                "{s:?} is a string: write a number of bytes, e.g. 1048576"
            )))
        }
    }

    deserializer.deserialize_any(BytesVisitor)
}

/// The port written in `authority`, if any; `Err` when it is not a number from 0 to 65535
/// (`http` parses such authorities without complaint).
pub(super) fn explicit_port(authority: &Authority) -> Result<Option<u16>, ()> {
    let text = authority.as_str();
    let after_host = text.rfind(']').map_or(text, |end| &text[end..]);
    match after_host.rsplit_once(':') {
        None => Ok(None),
        Some((_, port)) => port.parse().map(Some).map_err(|_| ()),
    }
}

/// `value` within `min..=max`.
pub(super) fn in_range(key: &str, value: usize, min: usize, max: usize) -> Result<(), ConfigError> {
    if !(min..=max).contains(&value) {
        return Err(invalid(
            key,
            format!("{value} is not between {min} and {max}"),
        ));
    }
    Ok(())
}

pub(super) fn nonzero(key: &str, duration: HumanDuration) -> Result<(), ConfigError> {
    if duration.is_zero() {
        return Err(invalid(key, "must be more than zero"));
    }
    Ok(())
}

/// An environment variable's name, as far as one can be set from a shell.
pub(super) fn env_name(key: &str, name: Option<&str>) -> Result<(), ConfigError> {
    match name {
        Some(name) if name.is_empty() || name.contains(['=', '\0']) => Err(invalid(
            key,
            format!("{name:?} is not an environment variable's name"),
        )),
        _ => Ok(()),
    }
}
