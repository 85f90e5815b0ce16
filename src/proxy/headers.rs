//! Header hygiene between the client's connection and the origin's: hop-by-hop headers go, the
//! `X-Forwarded-*` set is rebuilt from what vidgate saw itself.
//!
//! Pure functions over a [`HeaderMap`]: no I/O, no logging (header values may be credentials).

use std::net::IpAddr;

use http::header::{
    CONNECTION, CONTENT_LENGTH, FORWARDED, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, TE, TRAILER,
    TRANSFER_ENCODING, UPGRADE,
};
use http::{HeaderMap, HeaderName, HeaderValue};

/// `Keep-Alive` (not among `http`'s constants: RFC 9110 only mentions it as hop-by-hop).
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
/// `Proxy-Connection`, the pre-standard `Connection` some clients still send.
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
/// `X-Forwarded-For`: the client's address, as vidgate's socket saw it.
pub(crate) const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `X-Forwarded-Proto`: `https` when the client spoke TLS to vidgate, else `http`.
pub(crate) const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `X-Forwarded-Host`: the host the client asked for.
pub(crate) const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Headers that describe one connection, not the message (RFC 9110 7.6.1), plus the
/// non-standard ones proxies have always treated the same way.
const HOP_BY_HOP: [HeaderName; 9] = [
    CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION,
    TE,
    TRAILER,
    TRANSFER_ENCODING,
    UPGRADE,
];

/// Remove every hop-by-hop header: the fixed set, and every header the `Connection` header
/// names (comma-separated, any case, over any number of `Connection` lines).
///
/// A message that came with `Transfer-Encoding` also loses its `Content-Length`: RFC 9112 6.3
/// says the encoding overrides the length and a proxy must not forward both (the pair is the
/// classic request-smuggling vector). hyper frames the body it forwards by itself.
pub(crate) fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // The names are read before `Connection` itself goes.
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b','))
        .filter_map(|token| HeaderName::from_bytes(token.trim_ascii()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    if headers.contains_key(TRANSFER_ENCODING) {
        headers.remove(CONTENT_LENGTH);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// What vidgate itself knows about the client, for the rebuilt `X-Forwarded-*` headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ForwardedFor {
    /// The peer address of the client connection, if known.
    pub(crate) client: Option<IpAddr>,
    /// Whether the client connection was TLS.
    pub(crate) tls: bool,
    /// The host the client asked for (request authority or `Host`), if any.
    pub(crate) host: Option<HeaderValue>,
}

/// Replace whatever forwarding headers the client sent (`X-Forwarded-For`, `-Proto`, `-Host`
/// and `Forwarded`) with the ones vidgate can vouch for. A client-sent value is never
/// extended: an origin that trusts the first address of `X-Forwarded-For` must see the real
/// peer there, not one the client made up.
pub(crate) fn rebuild_forwarded(headers: &mut HeaderMap, forwarded: &ForwardedFor) {
    for name in [
        X_FORWARDED_FOR,
        X_FORWARDED_PROTO,
        X_FORWARDED_HOST,
        FORWARDED,
    ] {
        headers.remove(name);
    }
    if let Some(ip) = forwarded.client {
        // An IPv4 client on a dual-stack socket shows as `::ffff:a.b.c.d`; origins expect
        // `a.b.c.d`.
        let text = ip.to_canonical().to_string();
        if let Ok(value) = HeaderValue::from_str(&text) {
            headers.insert(X_FORWARDED_FOR, value);
        }
    }
    let proto = if forwarded.tls { "https" } else { "http" };
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    if let Some(host) = &forwarded.host {
        headers.insert(X_FORWARDED_HOST, host.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    fn names(headers: &HeaderMap) -> Vec<&str> {
        let mut names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        names
    }

    #[test]
    fn the_fixed_hop_by_hop_set_goes_and_the_rest_stays() {
        let mut headers = map(&[
            ("Connection", "keep-alive"),
            ("Keep-Alive", "timeout=5"),
            ("Proxy-Connection", "keep-alive"),
            ("Proxy-Authenticate", "Basic"),
            ("Proxy-Authorization", "Basic dXNlcjpwdw=="),
            ("TE", "trailers"),
            ("Trailer", "x-checksum"),
            ("Upgrade", "websocket"),
            ("Authorization", "Basic b3JpZ2luOnB3"),
            ("Range", "bytes=0-99"),
            ("Cookie", "a=1"),
            ("Cookie", "b=2"),
        ]);
        remove_hop_by_hop(&mut headers);
        assert_eq!(names(&headers), ["authorization", "cookie", "range"]);
        let cookies: Vec<_> = headers.get_all("cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
    }

    #[test]
    fn headers_named_in_connection_go_whatever_their_case_and_spacing() {
        let mut headers = map(&[
            ("Connection", "close, X-Secret ,,x-other"),
            ("Connection", "X-THIRD"),
            ("x-secret", "1"),
            ("X-Other", "2"),
            ("x-third", "3"),
            ("x-kept", "4"),
        ]);
        remove_hop_by_hop(&mut headers);
        assert_eq!(names(&headers), ["x-kept"]);
    }

    #[test]
    fn garbage_in_connection_is_ignored_not_fatal() {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONNECTION,
            HeaderValue::from_bytes(b"x-a, \xff\xfe, (bad), x-b").unwrap(),
        );
        headers.insert("x-a", HeaderValue::from_static("1"));
        headers.insert("x-b", HeaderValue::from_static("2"));
        headers.insert("x-c", HeaderValue::from_static("3"));
        remove_hop_by_hop(&mut headers);
        assert_eq!(names(&headers), ["x-c"]);
    }

    #[test]
    fn transfer_encoding_takes_content_length_with_it() {
        let mut both = map(&[("Transfer-Encoding", "chunked"), ("Content-Length", "10")]);
        remove_hop_by_hop(&mut both);
        assert!(both.is_empty());
        let mut length_only = map(&[("Content-Length", "10")]);
        remove_hop_by_hop(&mut length_only);
        assert_eq!(length_only["content-length"], "10");
    }

    #[test]
    fn forwarding_headers_are_rebuilt_not_extended() {
        let mut headers = map(&[
            ("X-Forwarded-For", "6.6.6.6"),
            ("X-Forwarded-For", "7.7.7.7"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "evil.example"),
            ("Forwarded", "for=6.6.6.6;proto=https"),
            ("Accept", "*/*"),
        ]);
        rebuild_forwarded(
            &mut headers,
            &ForwardedFor {
                client: Some("203.0.113.9".parse().unwrap()),
                tls: false,
                host: Some(HeaderValue::from_static("videos.example:8080")),
            },
        );
        assert_eq!(
            names(&headers),
            [
                "accept",
                "x-forwarded-for",
                "x-forwarded-host",
                "x-forwarded-proto"
            ]
        );
        let xff: Vec<_> = headers.get_all(X_FORWARDED_FOR).iter().collect();
        assert_eq!(xff, ["203.0.113.9"]);
        assert_eq!(headers[X_FORWARDED_PROTO], "http");
        assert_eq!(headers[X_FORWARDED_HOST], "videos.example:8080");
    }

    #[test]
    fn unknown_client_and_host_are_omitted_and_mapped_ipv4_is_unwrapped() {
        let mut headers = map(&[("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-Host", "x")]);
        rebuild_forwarded(
            &mut headers,
            &ForwardedFor {
                client: None,
                tls: true,
                host: None,
            },
        );
        assert_eq!(names(&headers), ["x-forwarded-proto"]);
        assert_eq!(headers[X_FORWARDED_PROTO], "https");

        rebuild_forwarded(
            &mut headers,
            &ForwardedFor {
                client: Some("::ffff:192.0.2.1".parse().unwrap()),
                tls: false,
                host: None,
            },
        );
        assert_eq!(headers[X_FORWARDED_FOR], "192.0.2.1");
        rebuild_forwarded(
            &mut headers,
            &ForwardedFor {
                client: Some("2001:db8::1".parse().unwrap()),
                tls: false,
                host: None,
            },
        );
        assert_eq!(headers[X_FORWARDED_FOR], "2001:db8::1");
    }
}
