//! Streaming manifests (SPEC 2.7): HLS playlists and DASH MPDs, rewritten so that a player
//! fetching the URIs they name stays inside the request's session.
//!
//! Every URI that points to the same origin as the manifest (a relative reference, or an
//! absolute one with the request's scheme and host) gets the request's token and session
//! appended as query parameters ([`Rewrite::query`]); cross-origin URIs, other schemes
//! (`skd://`, `data:`) and everything vidgate does not know are left byte for byte as they
//! were. In DASH a relative reference resolves against its `BaseURL` chain, so it counts as
//! same-origin only when every base it can resolve against does ([`dash`]).
//!
//! [`hls::rewrite`] and [`dash::rewrite`] are pure functions of the manifest text; the service
//! decides when to call them and fixes the response's headers.

pub mod dash;
pub mod hls;

use http::HeaderValue;

use crate::credentials::is_own_parameter;

/// The manifest formats vidgate rewrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An HLS playlist (master or media).
    Hls,
    /// A DASH media presentation description.
    Dash,
}

impl Kind {
    /// The kind a request path names by its extension (`.m3u8`, `.mpd`, any case).
    pub fn by_path(path: &str) -> Option<Kind> {
        let last = path.rsplit('/').next().unwrap_or(path);
        let (_, extension) = last.rsplit_once('.')?;
        if extension.eq_ignore_ascii_case("m3u8") {
            Some(Kind::Hls)
        } else if extension.eq_ignore_ascii_case("mpd") {
            Some(Kind::Dash)
        } else {
            None
        }
    }

    /// The kind a `Content-Type` names: `application/vnd.apple.mpegurl`,
    /// `application/x-mpegurl` (any case, parameters ignored), `application/dash+xml`.
    pub fn by_content_type(value: &HeaderValue) -> Option<Kind> {
        let text = value.to_str().ok()?;
        let essence = text.split(';').next().unwrap_or(text).trim();
        if essence.eq_ignore_ascii_case("application/vnd.apple.mpegurl")
            || essence.eq_ignore_ascii_case("application/x-mpegurl")
            || essence.eq_ignore_ascii_case("audio/mpegurl")
            || essence.eq_ignore_ascii_case("audio/x-mpegurl")
        {
            Some(Kind::Hls)
        } else if essence.eq_ignore_ascii_case("application/dash+xml") {
            Some(Kind::Dash)
        } else {
            None
        }
    }
}

/// What to append, and to which URIs.
#[derive(Debug, Clone, Copy)]
pub struct Rewrite<'a> {
    /// The scheme the client reached vidgate with: `"http"` or `"https"`.
    pub scheme: &'a str,
    /// The `Host` the client addressed (`host[:port]`), compared case-insensitively.
    pub host: &'a str,
    /// The parameters to append, already encoded for a query string, without a leading `?` or
    /// `&`: e.g. `client_auth=eyJ...&session=AbC...`.
    pub query: &'a str,
}

impl Rewrite<'_> {
    /// Whether `uri` (as written in the manifest, already unescaped from its container)
    /// points to the same origin as the manifest: a relative reference (no scheme, not
    /// `//`-prefixed), a `//host/...` reference to [`Rewrite::host`], or an absolute URI with
    /// [`Rewrite::scheme`] and [`Rewrite::host`].
    ///
    /// A URI holding `\` or an ASCII control character is never same-origin: browsers read
    /// `\` as `/` and drop tabs and newlines, so `/\evil.example/x` or `/<TAB>/evil.example`
    /// would take the token to another host.
    pub fn same_origin(&self, uri: &str) -> bool {
        if uri.bytes().any(|b| b == b'\\' || b.is_ascii_control()) {
            return false;
        }
        if let Some(rest) = uri.strip_prefix("//") {
            return self.is_host(rest);
        }
        match scheme_of(uri) {
            None => true,
            Some(scheme) => {
                scheme.eq_ignore_ascii_case(self.scheme)
                    && uri[scheme.len() + 1..]
                        .strip_prefix("//")
                        .is_some_and(|rest| self.is_host(rest))
            }
        }
    }

    /// `rest` starts with the authority: is it exactly [`Rewrite::host`]?
    fn is_host(&self, rest: &str) -> bool {
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        rest[..end].eq_ignore_ascii_case(self.host)
    }

    /// `uri` with the vidgate parameters it carried removed and [`Rewrite::query`] appended,
    /// before any fragment; `None` when `uri` is not same-origin (leave it as it is).
    pub fn apply(&self, uri: &str) -> Option<String> {
        if !self.same_origin(uri) {
            return None;
        }
        let (before_fragment, fragment) = match uri.find('#') {
            Some(at) => uri.split_at(at),
            None => (uri, ""),
        };
        let (path, query) = match before_fragment.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (before_fragment, None),
        };
        let mut out = String::with_capacity(uri.len() + self.query.len() + 2);
        out.push_str(path);
        out.push('?');
        if let Some(query) = query {
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                // A parameter of vidgate's, in any spelling, is replaced, so that a manifest
                // never hands out two tokens.
                let name = pair.split('=').next().unwrap_or(pair);
                if !is_own_parameter(name.as_bytes()) {
                    out.push_str(pair);
                    out.push('&');
                }
            }
        }
        out.push_str(self.query);
        out.push_str(fragment);
        Some(out)
    }
}

/// The scheme of an absolute URI (RFC 3986: `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":"`),
/// `None` for a relative reference.
fn scheme_of(uri: &str) -> Option<&str> {
    let colon = uri.find(':')?;
    let scheme = &uri[..colon];
    let mut bytes = scheme.bytes();
    let first = bytes.next()?;
    (first.is_ascii_alphabetic()
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')))
    .then_some(scheme)
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: Rewrite<'static> = Rewrite {
        scheme: "http",
        host: "cdn.example:8080",
        query: "server_auth=t0k&session=S1",
    };

    #[test]
    fn kinds_by_path_and_content_type() {
        assert_eq!(
            Kind::by_path("/v1/videos/v/hls/master.m3u8"),
            Some(Kind::Hls)
        );
        assert_eq!(Kind::by_path("/v1/videos/v/x.M3U8"), Some(Kind::Hls));
        assert_eq!(
            Kind::by_path("/v1/videos/v/dash/manifest.mpd"),
            Some(Kind::Dash)
        );
        assert_eq!(Kind::by_path("/v1/videos/v/seg.ts"), None);
        assert_eq!(Kind::by_path("/v1/videos/m3u8"), None);
        assert_eq!(Kind::by_path("/v1/videos/v.m3u8/seg.ts"), None);
        let ct = |s: &'static str| Kind::by_content_type(&HeaderValue::from_static(s));
        assert_eq!(ct("application/vnd.apple.mpegurl"), Some(Kind::Hls));
        assert_eq!(ct("Application/X-MpegURL; charset=utf-8"), Some(Kind::Hls));
        assert_eq!(ct("application/dash+xml"), Some(Kind::Dash));
        assert_eq!(ct("video/mp2t"), None);
    }

    #[test]
    fn same_origin_is_relative_or_this_scheme_and_host() {
        assert!(R.same_origin("seg0.ts"));
        assert!(R.same_origin("../audio/a.m3u8"));
        assert!(R.same_origin("/v1/videos/v/seg0.ts"));
        assert!(R.same_origin("http://cdn.example:8080/x.ts"));
        assert!(R.same_origin("HTTP://CDN.EXAMPLE:8080/x.ts"));
        assert!(R.same_origin("//cdn.example:8080/x.ts"));
        assert!(R.same_origin("http://cdn.example:8080"));
        assert!(!R.same_origin("https://cdn.example:8080/x.ts"));
        assert!(!R.same_origin("http://cdn.example/x.ts"));
        assert!(!R.same_origin("http://cdn.example:8080.evil/x.ts"));
        assert!(!R.same_origin("http://other.example:8080/x.ts"));
        assert!(!R.same_origin("//other.example/x.ts"));
        assert!(!R.same_origin("skd://key-id"));
        assert!(!R.same_origin("data:text/plain;base64,AAAA"));
        // What browsers would resolve to another host.
        assert!(!R.same_origin("/\\evil.example/x.ts"));
        assert!(!R.same_origin("\\\\evil.example/x.ts"));
        assert!(!R.same_origin("/\t/evil.example/x.ts"));
        assert!(!R.same_origin("seg\n0.ts"));
    }

    #[test]
    fn apply_appends_before_the_fragment_and_replaces_own_parameters() {
        assert_eq!(
            R.apply("seg0.ts").as_deref(),
            Some("seg0.ts?server_auth=t0k&session=S1")
        );
        assert_eq!(
            R.apply("seg0.ts?v=2").as_deref(),
            Some("seg0.ts?v=2&server_auth=t0k&session=S1")
        );
        assert_eq!(
            R.apply("seg0.ts?session=old&v=2&server_auth=x#t=10")
                .as_deref(),
            Some("seg0.ts?v=2&server_auth=t0k&session=S1#t=10")
        );
        assert_eq!(
            R.apply("seg0.ts?").as_deref(),
            Some("seg0.ts?server_auth=t0k&session=S1")
        );
        assert_eq!(R.apply("https://elsewhere.example/seg0.ts"), None);
    }

    #[test]
    fn own_parameters_are_replaced_in_any_spelling() {
        assert_eq!(
            R.apply("seg0.ts?server%5Fauth=old&v=2&%73ession=S0&_method=PUT")
                .as_deref(),
            Some("seg0.ts?v=2&server_auth=t0k&session=S1")
        );
        // Names that only look alike are kept.
        assert_eq!(
            R.apply("seg0.ts?server_auth2=x").as_deref(),
            Some("seg0.ts?server_auth2=x&server_auth=t0k&session=S1")
        );
    }
}
