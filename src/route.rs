//! Routes: which action a request performs on which video (SPEC 2.2), and the path checks that
//! run before any token is looked at (SPEC 2.6 step 1).
//!
//! This module owns three things:
//! - the **path checks** that make a path mean the same thing to vidgate and to the origin
//!   (`bad_path`): no encoded `/`, `\` or NUL, no raw `\` or `;`, no dot or empty segments, no
//!   malformed escapes, nothing outside visible ASCII;
//! - the **effective method** ([`effective_method`]): the request method or the override that
//!   Ziggeo-style clients send (`bad_request` when it is not allowed);
//! - the **route table** ([`Routes`]): effective method + path → [`Route`] (`no_route`).
//!
//! It must not look at credentials, touch the store, read the clock or build responses: the layer
//! extracts the method, query and headers, asks here, and maps a [`RouteError`] to its status and
//! reason. It never rewrites the path either: the path it judges is the path that is forwarded, so
//! that the origin runs exactly what was checked.
//!
//! Relative to each configured prefix (tried in order, matched by whole segments):
//!
//! ```text
//! GET, HEAD         /videos, /videos/          Video { Read, None }      (listing)
//! POST              /videos, /videos/          Video { Create, None }
//! GET, HEAD         /videos/{v}[/...]          Video { Read, Some(v) }
//! POST, PUT, PATCH  /videos/{v}[/...]          Video { Update, Some(v) }
//! DELETE            /videos/{v}[/...]          Video { Destroy, Some(v) }
//! POST              /session, /session/        CreateSession
//! OPTIONS           any well-formed path       Preflight
//! ```
//!
//! Literal segments (`videos`, `session`, the prefixes' own) are compared after one
//! percent-decoding and without regard to ASCII case, so that `/V1/vid%65os/x` cannot slip past
//! the checks to an origin that decodes or folds case: it is routed like `/v1/videos/x`.

use http::{HeaderMap, Method};
use percent_encoding::{percent_decode, percent_decode_str};

use crate::token::Action;

/// The prefixes used when `proxy.prefixes` is not configured (SPEC 5), tried in this order.
pub const DEFAULT_PREFIXES: [&str; 3] = ["/v1/applications/{app}", "/v1", ""];

/// The names of the method-override headers (SPEC 2.2), lower-case, so the proxy can strip them
/// before forwarding.
pub const OVERRIDE_HEADERS: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// The placeholder a prefix segment may be, standing for the application token.
const APP_PLACEHOLDER: &str = "{app}";

/// Why a request was refused before any token was looked at.
///
/// SPEC 2.6 step 1 checks these in the order of the variants; [`Routes::classify`] keeps that
/// order for a caller that has all the pieces at hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The path could mean something else to the origin than to vidgate (400 `bad_path`).
    #[error("the request path is malformed or ambiguous")]
    BadPath,
    /// The method override is not allowed, or overrides disagree (400 `bad_request`).
    #[error("the request's method override is not allowed or is contradictory")]
    BadRequest,
    /// No route takes this method on this path (404 `no_route`).
    #[error("no route matches this method and path")]
    NoRoute,
}

/// What `proxy.unmatched` says to do with a path that matches no route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unmatched {
    /// Refuse it with `no_route` (`"deny"`, the default).
    #[default]
    Deny,
    /// Forward it unchecked (`"pass"`); never done for a path below `{prefix}/videos`.
    Pass,
}

/// Error building the route table from config: a prefix that is malformed.
///
/// Its `Display` names the prefix at fault; the config layer adds the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteConfigError {
    /// No prefix at all: no video route would exist and nothing would ever be checked.
    #[error("no route prefix is configured (use \"\" to match videos at the root)")]
    NoPrefixes,
    /// A prefix that is neither empty nor starts with `/`.
    #[error("route prefix {prefix:?} must be empty or start with '/'")]
    NotAbsolute {
        /// The prefix as configured.
        prefix: String,
    },
    /// A prefix ending with `/` (including `"/"` itself, which is spelled `""`).
    #[error("route prefix {prefix:?} must not end with '/' (the root is the empty prefix \"\")")]
    TrailingSlash {
        /// The prefix as configured.
        prefix: String,
    },
    /// A prefix with `//` in it.
    #[error("route prefix {prefix:?} has an empty segment")]
    EmptySegment {
        /// The prefix as configured.
        prefix: String,
    },
    /// A prefix with a `.` or `..` segment.
    #[error("route prefix {prefix:?} has a '.' or '..' segment")]
    DotSegment {
        /// The prefix as configured.
        prefix: String,
    },
    /// A `{` or `}` that is not part of a whole `{app}` segment.
    #[error("route prefix {prefix:?}: the only placeholder is `{{app}}`, as a whole segment")]
    Placeholder {
        /// The prefix as configured.
        prefix: String,
    },
    /// A character a prefix cannot hold: anything outside visible ASCII, or `%`, `\`, `;`, `?`,
    /// `#` (prefixes are written unencoded; the path is decoded to compare with them).
    #[error("route prefix {prefix:?} holds {ch:?}, which a prefix cannot hold")]
    ForbiddenChar {
        /// The prefix as configured.
        prefix: String,
        /// The first character at fault.
        ch: char,
    },
}

impl RouteConfigError {
    /// The prefix at fault, if the error is about one.
    pub fn prefix(&self) -> Option<&str> {
        match self {
            Self::NoPrefixes => None,
            Self::NotAbsolute { prefix }
            | Self::TrailingSlash { prefix }
            | Self::EmptySegment { prefix }
            | Self::DotSegment { prefix }
            | Self::Placeholder { prefix }
            | Self::ForbiddenChar { prefix, .. } => Some(prefix),
        }
    }
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A video route: the action it performs and its target video.
    Video {
        /// What the request does.
        action: Action,
        /// The `{v}` segment, percent-decoded once; `None` for listing (Read) and for Create.
        video: Option<String>,
        /// True only when the path is exactly `/videos/{v}` or `/videos/{v}/`, with no sub-path:
        /// only such a destroy cascades (SPEC 2.5), deleting a stream does not.
        whole_video: bool,
    },
    /// `POST {prefix}/session`: vidgate answers it itself (SPEC 2.3).
    CreateSession,
    /// An OPTIONS request on any well-formed path: CORS preflight, no credentials checked.
    Preflight,
    /// No route matched and `proxy.unmatched = "pass"`: forwarded unchecked.
    PassThrough,
}

/// The compiled route table: the prefixes, the application token `{app}` must equal, and what to
/// do with unmatched paths.
#[derive(Debug, Clone)]
pub struct Routes {
    prefixes: Vec<Prefix>,
    app_token: Option<Box<str>>,
    unmatched: Unmatched,
}

impl Default for Routes {
    /// The default prefixes of SPEC 5 ([`DEFAULT_PREFIXES`]), no app token, [`Unmatched::Deny`].
    fn default() -> Self {
        // A constant, not input: the `default_routes_are_the_spec_defaults` test keeps it valid.
        Self::new(&DEFAULT_PREFIXES, None, Unmatched::Deny)
            .expect("DEFAULT_PREFIXES are well-formed")
    }
}

impl Routes {
    /// Compile the route table.
    ///
    /// `prefixes` as in `proxy.prefixes`, e.g. `["/v1/applications/{app}", "/v1", ""]`: each empty
    /// or starting with `/`, not ending with `/`, with `{app}` only as a whole segment.
    /// `app_token` is `admin.app_token`: when set, `{app}` matches only that value.
    pub fn new<S: AsRef<str>>(
        prefixes: &[S],
        app_token: Option<&str>,
        unmatched: Unmatched,
    ) -> Result<Self, RouteConfigError> {
        if prefixes.is_empty() {
            return Err(RouteConfigError::NoPrefixes);
        }
        let prefixes = prefixes
            .iter()
            .map(|p| Prefix::parse(p.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            prefixes,
            app_token: app_token.map(Box::from),
            unmatched,
        })
    }

    /// Classify a request.
    ///
    /// `method` is the *effective* method ([`effective_method`]); `path` is the raw path exactly
    /// as it will be forwarded, without the query string. `BadPath` depends on the path alone,
    /// whatever the method; use [`Routes::classify`] to get SPEC 2.6's order when a method
    /// override may also be wrong.
    pub fn route(&self, method: &Method, path: &str) -> Result<Route, RouteError> {
        let target = self.target(path)?;
        self.by_method(target, method)
    }

    /// SPEC 2.6 step 1 in one call: `bad_path`, then `bad_request`, then `no_route`.
    ///
    /// `method` is the request's own method, `query_overrides` every value of the `_method`
    /// query parameter (decoded, in order), `headers` the request headers. Returns the
    /// effective method (to forward) and the route.
    pub fn classify(
        &self,
        method: &Method,
        query_overrides: &[&str],
        headers: &HeaderMap,
        path: &str,
    ) -> Result<(Method, Route), RouteError> {
        let target = self.target(path)?;
        let effective = effective_method(method, query_overrides, headers)?;
        let route = self.by_method(target, &effective)?;
        Ok((effective, route))
    }

    /// The method-independent half of routing: the path checks, then what the path names.
    /// Every `BadPath` comes from here, so it never depends on the method.
    fn target(&self, path: &str) -> Result<Target, RouteError> {
        check_path(path)?;
        // Set when some prefix named a vidgate route but with the wrong `{app}`: such a path
        // gets `no_route` even under `Unmatched::Pass`, or it would reach the origin unchecked.
        let mut wrong_app = false;
        for prefix in &self.prefixes {
            let Some((rest, app_ok)) = prefix.strip(path, self.app_token.as_deref()) else {
                continue;
            };
            let target = match Place::of(rest) {
                Place::Elsewhere => continue,
                Place::Collection => Target::Collection,
                Place::Session => Target::Session,
                // `{v}` is checked whichever `{app}` came with it: it is a path check.
                Place::Video { raw, whole_video } => Target::Video {
                    video: decode_video(raw)?,
                    whole_video,
                },
            };
            if app_ok {
                return Ok(target);
            }
            wrong_app = true;
        }
        Ok(if wrong_app {
            Target::Refused
        } else {
            Target::Unmatched
        })
    }

    /// The method-dependent half of routing.
    fn by_method(&self, target: Target, method: &Method) -> Result<Route, RouteError> {
        // A preflight carries no credentials by design (SPEC 2.7), whatever the path names.
        if *method == Method::OPTIONS {
            return Ok(Route::Preflight);
        }
        let video = |action, video, whole_video| {
            Ok(Route::Video {
                action,
                video,
                whole_video,
            })
        };
        // `as_str` is case-sensitive, as methods are: `get` is an extension method, not GET.
        match (target, method.as_str()) {
            (Target::Collection, "GET" | "HEAD") => video(Action::Read, None, false),
            (Target::Collection, "POST") => video(Action::Create, None, false),
            (
                Target::Video {
                    video: v,
                    whole_video,
                },
                m,
            ) => {
                let action = match m {
                    "GET" | "HEAD" => Action::Read,
                    "POST" | "PUT" | "PATCH" => Action::Update,
                    "DELETE" => Action::Destroy,
                    _ => return Err(RouteError::NoRoute),
                };
                video(action, Some(v), whole_video)
            }
            (Target::Session, "POST") => Ok(Route::CreateSession),
            // Another method on a route's path, or a vidgate route under the wrong `{app}`:
            // never passed, whatever `proxy.unmatched` says.
            (Target::Collection | Target::Session | Target::Refused, _) => Err(RouteError::NoRoute),
            (Target::Unmatched, _) => match self.unmatched {
                Unmatched::Deny => Err(RouteError::NoRoute),
                Unmatched::Pass => Ok(Route::PassThrough),
            },
        }
    }
}

/// What a path names, before the method is considered.
enum Target {
    /// `{prefix}/videos` or `{prefix}/videos/`.
    Collection,
    /// `{prefix}/videos/{v}` and below.
    Video { video: String, whole_video: bool },
    /// `{prefix}/session`.
    Session,
    /// A vidgate route, but only under a prefix whose `{app}` is not the application token.
    Refused,
    /// No route at all.
    Unmatched,
}

/// One configured prefix, split into segments.
#[derive(Debug, Clone)]
struct Prefix {
    segments: Box<[PrefixSegment]>,
}

#[derive(Debug, Clone)]
enum PrefixSegment {
    /// A literal segment, stored lower-case: path segments are compared case-insensitively.
    Literal(Box<str>),
    /// `{app}`: any one segment, or exactly the application token when one is configured.
    App,
}

impl Prefix {
    fn parse(prefix: &str) -> Result<Self, RouteConfigError> {
        if prefix.is_empty() {
            return Ok(Self {
                segments: Box::new([]),
            });
        }
        let owned = || prefix.to_owned();
        let body = prefix
            .strip_prefix('/')
            .ok_or_else(|| RouteConfigError::NotAbsolute { prefix: owned() })?;
        if body.is_empty() || body.ends_with('/') {
            return Err(RouteConfigError::TrailingSlash { prefix: owned() });
        }
        let mut segments = Vec::new();
        for segment in body.split('/') {
            if segment == APP_PLACEHOLDER {
                segments.push(PrefixSegment::App);
                continue;
            }
            if segment.is_empty() {
                return Err(RouteConfigError::EmptySegment { prefix: owned() });
            }
            if segment == "." || segment == ".." {
                return Err(RouteConfigError::DotSegment { prefix: owned() });
            }
            if let Some(ch) = segment.chars().find(|&c| !is_prefix_char(c)) {
                return Err(if ch == '{' || ch == '}' {
                    RouteConfigError::Placeholder { prefix: owned() }
                } else {
                    RouteConfigError::ForbiddenChar {
                        prefix: owned(),
                        ch,
                    }
                });
            }
            segments.push(PrefixSegment::Literal(segment.to_ascii_lowercase().into()));
        }
        Ok(Self {
            segments: segments.into(),
        })
    }

    /// Match this prefix against the start of a checked path, by whole segments. Returns the rest
    /// of the path (empty or starting with `/`) and whether `{app}` (if any) was accepted.
    fn strip<'p>(&self, path: &'p str, app_token: Option<&str>) -> Option<(&'p str, bool)> {
        let mut rest = path;
        let mut app_ok = true;
        for expected in self.segments.iter() {
            let (segment, tail) = split_segment(rest.strip_prefix('/')?);
            if segment.is_empty() {
                return None;
            }
            match expected {
                PrefixSegment::Literal(literal) => {
                    if !decoded_eq_ignore_case(segment, literal) {
                        return None;
                    }
                }
                PrefixSegment::App => {
                    // Compared decoded, since that is what the origin sees; but exactly, since
                    // tokens are case-sensitive.
                    if let Some(token) = app_token {
                        app_ok &= percent_decode(segment.as_bytes()).eq(token.bytes());
                    }
                }
            }
            rest = tail;
        }
        Some((rest, app_ok))
    }
}

/// Characters a literal prefix segment may hold.
fn is_prefix_char(c: char) -> bool {
    c.is_ascii_graphic() && !matches!(c, '%' | '\\' | ';' | '?' | '#' | '{' | '}')
}

/// Where the rest of a path (after a prefix) points.
enum Place<'p> {
    Collection,
    Video { raw: &'p str, whole_video: bool },
    Session,
    Elsewhere,
}

impl<'p> Place<'p> {
    fn of(rest: &'p str) -> Self {
        let Some(after) = rest.strip_prefix('/') else {
            return Self::Elsewhere;
        };
        let (first, below) = split_segment(after);
        // `below` is empty or starts with `/`; a lone `/` is the allowed trailing slash.
        let ends_here = below.is_empty() || below == "/";
        if decoded_eq_ignore_case(first, "videos") {
            if ends_here {
                return Self::Collection;
            }
            let (raw, below) = split_segment(&below[1..]);
            Self::Video {
                raw,
                whole_video: below.is_empty() || below == "/",
            }
        } else if ends_here && decoded_eq_ignore_case(first, "session") {
            Self::Session
        } else {
            Self::Elsewhere
        }
    }
}

/// Split at the first `/`: the segment before it and the rest from the `/` on (or empty).
fn split_segment(s: &str) -> (&str, &str) {
    match s.find('/') {
        Some(i) => s.split_at(i),
        None => (s, ""),
    }
}

/// Whether a raw segment, percent-decoded once, equals `lower` ignoring ASCII case.
fn decoded_eq_ignore_case(raw: &str, lower: &str) -> bool {
    percent_decode(raw.as_bytes())
        .map(|b| b.to_ascii_lowercase())
        .eq(lower.bytes())
}

/// The path checks of SPEC 2.2, on the raw path as it will be forwarded. Allocates nothing.
fn check_path(path: &str) -> Result<(), RouteError> {
    let bad = Err(RouteError::BadPath);
    let bytes = path.as_bytes();
    let Some(body) = path.strip_prefix('/') else {
        return bad;
    };
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => match escape_at(bytes, i) {
                // An encoded `/` or `\` is a separator to some origins and not to others; NUL
                // truncates paths in C-based servers.
                Some(decoded) if !is_separator_or_nul(decoded) => i += 3,
                _ => return bad,
            },
            // `\` is a separator on some origins; `;` starts path parameters on others (Tomcat).
            b'\\' | b';' => return bad,
            0x21..=0x7e => i += 1,
            // Controls, space, DEL and non-ASCII: hyper lets some through, origins differ on them.
            _ => return bad,
        }
    }
    // Beyond the letter of SPEC 2.2 (which forbids double encoding only in `{v}`): anything that
    // decodes twice, like a CDN in front of the origin, would read `%252F` as `/`.
    if holds_escape(percent_decode(bytes), is_separator_or_nul) {
        return bad;
    }
    let mut segments = body.split('/').peekable();
    while let Some(segment) = segments.next() {
        // Only the last segment may be empty: that is the allowed trailing slash.
        if segment.is_empty() && segments.peek().is_some() {
            return bad;
        }
        if is_dot_segment(segment) {
            return bad;
        }
    }
    Ok(())
}

/// The byte encoded by the `%XX` escape at `bytes[i]`, if it is a well-formed one.
fn escape_at(bytes: &[u8], i: usize) -> Option<u8> {
    let hi = hex_value(*bytes.get(i + 1)?)?;
    let lo = hex_value(*bytes.get(i + 2)?)?;
    Some(hi << 4 | lo)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn is_separator_or_nul(b: u8) -> bool {
    matches!(b, b'/' | b'\\' | 0)
}

/// Whether a byte stream holds a `%XX` escape whose byte satisfies `bad`. It looks at every
/// `%` followed by two hex digits, overlapping ones included, so it errs on the side of finding
/// one.
fn holds_escape(stream: impl IntoIterator<Item = u8>, bad: impl Fn(u8) -> bool) -> bool {
    let (mut before_last, mut last) = (None, None);
    for b in stream {
        if before_last == Some(b'%') {
            if let (Some(hi), Some(lo)) = (last.and_then(hex_value), hex_value(b)) {
                if bad(hi << 4 | lo) {
                    return true;
                }
            }
        }
        before_last = last;
        last = Some(b);
    }
    false
}

/// Whether a raw segment is `.` or `..` once or twice decoded: one or two units, each `.` or
/// `%2e` (any case) after one decoding. So `.`, `%2E`, `.%2e`, `%2e%2E` and `%252e` all are.
fn is_dot_segment(raw: &str) -> bool {
    let mut stream = percent_decode(raw.as_bytes());
    let mut dots = 0;
    while let Some(b) = stream.next() {
        let unit = b == b'.'
            || (b == b'%'
                && stream.next() == Some(b'2')
                && matches!(stream.next(), Some(b'e' | b'E')));
        if !unit || dots == 2 {
            return false;
        }
        dots += 1;
    }
    dots > 0
}

/// `{v}`, percent-decoded once. It must be UTF-8 (SPEC 2.2) and must not still hold an escape:
/// the origin decodes it once too, and something that decoded it again would see another video.
fn decode_video(raw: &str) -> Result<String, RouteError> {
    if raw.is_empty() {
        // Unreachable after `check_path` (that would be `//`), kept so no path yields `Some("")`.
        return Err(RouteError::BadPath);
    }
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| RouteError::BadPath)?;
    if holds_escape(decoded.bytes(), |_| true) || decoded.bytes().any(is_separator_or_nul) {
        return Err(RouteError::BadPath);
    }
    Ok(decoded.into_owned())
}

/// The effective method (SPEC 2.2): the request method, or the override that clients such as
/// Ziggeo's SDKs send (`POST ...?_method=DELETE`).
///
/// Overrides come from `query_overrides` (every value of the `_method` query parameter, decoded,
/// in order) and every value of the [`OVERRIDE_HEADERS`]. They are honoured only on a POST and
/// only to PUT, PATCH or DELETE (any case); an override on another method, to another value
/// (an empty one included), overrides that disagree, or a header value that is not visible
/// ASCII: [`RouteError::BadRequest`].
pub fn effective_method(
    method: &Method,
    query_overrides: &[&str],
    headers: &HeaderMap,
) -> Result<Method, RouteError> {
    let header_values = OVERRIDE_HEADERS
        .iter()
        .flat_map(|name| headers.get_all(*name))
        .map(|value| value.to_str().map_err(|_| RouteError::BadRequest));
    let values = query_overrides.iter().map(|v| Ok(*v)).chain(header_values);

    let mut wanted: Option<Method> = None;
    for value in values {
        let this = override_target(value?)?;
        match &wanted {
            Some(earlier) if *earlier != this => return Err(RouteError::BadRequest),
            Some(_) => {}
            None => wanted = Some(this),
        }
    }
    match wanted {
        None => Ok(method.clone()),
        Some(target) if *method == Method::POST => Ok(target),
        // Overriding a GET could turn a link into a destroy; it is never honoured.
        Some(_) => Err(RouteError::BadRequest),
    }
}

/// The method an override value names, if it is one an override may name.
fn override_target(value: &str) -> Result<Method, RouteError> {
    [Method::PUT, Method::PATCH, Method::DELETE]
        .into_iter()
        .find(|m| value.eq_ignore_ascii_case(m.as_str()))
        .ok_or(RouteError::BadRequest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use proptest::prelude::*;

    const APP: &str = "demo-app";

    /// One path form per default prefix: `/v1/applications/{app}`, `/v1` and the empty prefix.
    const PREFIXES: [&str; 3] = ["/v1/applications/demo-app", "/v1", ""];

    fn method(name: &str) -> Method {
        Method::from_bytes(name.as_bytes()).expect("test method")
    }

    fn route(name: &str, path: &str) -> Result<Route, RouteError> {
        Routes::default().route(&method(name), path)
    }

    fn pass() -> Routes {
        Routes::new(&DEFAULT_PREFIXES, None, Unmatched::Pass).expect("routes")
    }

    fn with_app() -> Routes {
        Routes::new(&DEFAULT_PREFIXES, Some(APP), Unmatched::Deny).expect("routes")
    }

    fn video(action: Action, v: Option<&str>, whole_video: bool) -> Result<Route, RouteError> {
        Ok(Route::Video {
            action,
            video: v.map(str::to_owned),
            whole_video,
        })
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::header::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        map
    }

    // ---- SPEC 2.2 table, under each default prefix ----

    #[test]
    fn get_and_head_on_videos_list() {
        for p in PREFIXES {
            for m in ["GET", "HEAD"] {
                for path in [format!("{p}/videos"), format!("{p}/videos/")] {
                    assert_eq!(
                        route(m, &path),
                        video(Action::Read, None, false),
                        "{m} {path}"
                    );
                }
            }
        }
    }

    #[test]
    fn post_on_videos_creates() {
        for p in PREFIXES {
            for path in [format!("{p}/videos"), format!("{p}/videos/")] {
                assert_eq!(
                    route("POST", &path),
                    video(Action::Create, None, false),
                    "{path}"
                );
            }
        }
    }

    #[test]
    fn get_and_head_on_a_video_read_it() {
        for p in PREFIXES {
            for m in ["GET", "HEAD"] {
                let path = format!("{p}/videos/abc");
                assert_eq!(
                    route(m, &path),
                    video(Action::Read, Some("abc"), true),
                    "{path}"
                );
            }
        }
    }

    #[test]
    fn get_below_a_video_reads_it() {
        for p in PREFIXES {
            let path = format!("{p}/videos/abc/streams/s1/video.mp4");
            assert_eq!(
                route("GET", &path),
                video(Action::Read, Some("abc"), false),
                "{path}"
            );
        }
    }

    #[test]
    fn post_put_patch_on_a_video_update_it() {
        for p in PREFIXES {
            for m in ["POST", "PUT", "PATCH"] {
                let path = format!("{p}/videos/abc");
                assert_eq!(
                    route(m, &path),
                    video(Action::Update, Some("abc"), true),
                    "{m} {path}"
                );
            }
        }
    }

    #[test]
    fn post_on_streams_is_re_recording_an_update() {
        for p in PREFIXES {
            let path = format!("{p}/videos/abc/streams");
            assert_eq!(
                route("POST", &path),
                video(Action::Update, Some("abc"), false)
            );
        }
    }

    #[test]
    fn delete_on_a_video_destroys_it_whole() {
        for p in PREFIXES {
            let path = format!("{p}/videos/abc");
            assert_eq!(
                route("DELETE", &path),
                video(Action::Destroy, Some("abc"), true)
            );
        }
    }

    #[test]
    fn delete_on_a_stream_destroys_but_not_whole() {
        for p in PREFIXES {
            let path = format!("{p}/videos/abc/streams/s1");
            assert_eq!(
                route("DELETE", &path),
                video(Action::Destroy, Some("abc"), false)
            );
        }
    }

    #[test]
    fn post_session_creates_a_session() {
        for p in PREFIXES {
            assert_eq!(
                route("POST", &format!("{p}/session")),
                Ok(Route::CreateSession)
            );
            assert_eq!(
                route("POST", &format!("{p}/session/")),
                Ok(Route::CreateSession)
            );
        }
    }

    #[test]
    fn other_methods_on_session_are_no_route_even_under_pass() {
        for routes in [Routes::default(), pass()] {
            for m in ["GET", "PUT", "DELETE"] {
                assert_eq!(
                    routes.route(&method(m), "/v1/session"),
                    Err(RouteError::NoRoute)
                );
            }
        }
    }

    #[test]
    fn below_session_is_not_session() {
        assert_eq!(route("POST", "/v1/session/x"), Err(RouteError::NoRoute));
        assert_eq!(
            pass().route(&Method::POST, "/v1/session/x"),
            Ok(Route::PassThrough)
        );
    }

    #[test]
    fn options_is_a_preflight_on_any_path() {
        for path in [
            "/v1/videos/abc",
            "/videos",
            "/v1/session",
            "/",
            "/anything/else",
            "/v1/applications/wrong/videos/abc",
        ] {
            assert_eq!(route("OPTIONS", path), Ok(Route::Preflight), "{path}");
            assert_eq!(
                with_app().route(&Method::OPTIONS, path),
                Ok(Route::Preflight)
            );
        }
    }

    #[test]
    fn options_still_gets_the_path_checks() {
        assert_eq!(
            route("OPTIONS", "/v1/videos/a%2Fb"),
            Err(RouteError::BadPath)
        );
        assert_eq!(
            route("OPTIONS", "/v1/videos/%2541"),
            Err(RouteError::BadPath)
        );
    }

    #[test]
    fn other_methods_on_videos_are_no_route() {
        for (m, path) in [
            ("PUT", "/v1/videos"),
            ("PATCH", "/v1/videos/"),
            ("DELETE", "/v1/videos"),
            ("TRACE", "/v1/videos/abc"),
            ("CONNECT", "/videos/abc"),
            ("PROPFIND", "/videos/abc/streams"),
            // Methods are case-sensitive: `get` is an extension method, not GET.
            ("get", "/videos/abc"),
        ] {
            assert_eq!(route(m, path), Err(RouteError::NoRoute), "{m} {path}");
        }
    }

    #[test]
    fn other_methods_below_videos_are_never_passed() {
        let routes = pass();
        for (m, path) in [
            ("PUT", "/v1/videos"),
            ("DELETE", "/videos/"),
            ("TRACE", "/v1/applications/x/videos/abc"),
            ("PROPFIND", "/videos/abc/streams/s"),
        ] {
            assert_eq!(
                routes.route(&method(m), path),
                Err(RouteError::NoRoute),
                "{m} {path}"
            );
        }
    }

    #[test]
    fn unmatched_path_is_no_route_by_default() {
        for path in [
            "/",
            "/v1",
            "/v1/",
            "/v1/other",
            "/static/app.js",
            "/videosx/abc",
        ] {
            assert_eq!(route("GET", path), Err(RouteError::NoRoute), "{path}");
        }
    }

    #[test]
    fn unmatched_path_passes_under_pass() {
        let routes = pass();
        for path in ["/", "/v1", "/static/app.js", "/videosx/abc"] {
            assert_eq!(
                routes.route(&Method::GET, path),
                Ok(Route::PassThrough),
                "{path}"
            );
        }
        assert_eq!(
            routes.route(&Method::DELETE, "/other"),
            Ok(Route::PassThrough)
        );
        // Pass changes nothing for real routes.
        assert_eq!(
            routes.route(&Method::GET, "/v1/videos/abc"),
            video(Action::Read, Some("abc"), true)
        );
    }

    // ---- prefixes ----

    #[test]
    fn default_routes_are_the_spec_defaults() {
        let routes = Routes::default();
        assert_eq!(routes.prefixes.len(), 3);
        assert_eq!(routes.app_token, None);
        assert_eq!(routes.unmatched, Unmatched::Deny);
        assert_eq!(
            routes.route(&Method::GET, "/v1/applications/any/videos/x"),
            video(Action::Read, Some("x"), true)
        );
    }

    #[test]
    fn prefixes_match_whole_segments() {
        assert_eq!(route("GET", "/v1x/videos/abc"), Err(RouteError::NoRoute));
        assert_eq!(route("GET", "/v/videos/abc"), Err(RouteError::NoRoute));
        assert_eq!(
            route("GET", "/v1/applicationsx/a/videos/abc"),
            Err(RouteError::NoRoute)
        );
        assert_eq!(route("GET", "/v1/videosx"), Err(RouteError::NoRoute));
    }

    #[test]
    fn prefixes_are_tried_in_order() {
        // Under ["/a", ""], `/a/videos/x` is a video of prefix `/a`, and `/a/x/videos/y` of none.
        let routes = Routes::new(&["/a", ""], None, Unmatched::Deny).expect("routes");
        assert_eq!(
            routes.route(&Method::GET, "/a/videos/x"),
            video(Action::Read, Some("x"), true)
        );
        assert_eq!(
            routes.route(&Method::GET, "/a/x/videos/y"),
            Err(RouteError::NoRoute)
        );
        // Without the empty prefix, root video paths are not routes.
        let only_v1 = Routes::new(&["/v1"], None, Unmatched::Deny).expect("routes");
        assert_eq!(
            only_v1.route(&Method::GET, "/videos/x"),
            Err(RouteError::NoRoute)
        );
        assert_eq!(
            only_v1.route(&Method::GET, "/v1/videos/x"),
            video(Action::Read, Some("x"), true)
        );
    }

    #[test]
    fn app_matches_any_segment_without_an_app_token() {
        assert_eq!(
            route("DELETE", "/v1/applications/whatever/videos/abc"),
            video(Action::Destroy, Some("abc"), true)
        );
        assert_eq!(
            route("POST", "/v1/applications/whatever/session"),
            Ok(Route::CreateSession)
        );
    }

    #[test]
    fn app_must_equal_the_app_token_when_set() {
        let routes = with_app();
        assert_eq!(
            routes.route(&Method::GET, "/v1/applications/demo-app/videos/abc"),
            video(Action::Read, Some("abc"), true)
        );
        // Decoded before comparing, since the origin decodes it.
        assert_eq!(
            routes.route(&Method::GET, "/v1/applications/demo%2Dapp/videos/abc"),
            video(Action::Read, Some("abc"), true)
        );
        for path in [
            "/v1/applications/other/videos/abc",
            "/v1/applications/DEMO-APP/videos/abc",
            "/v1/applications/other/videos",
            "/v1/applications/other/session",
        ] {
            assert_eq!(
                routes.route(&Method::GET, path),
                Err(RouteError::NoRoute),
                "{path}"
            );
        }
        assert_eq!(
            routes.route(&Method::POST, "/v1/applications/other/session"),
            Err(RouteError::NoRoute)
        );
    }

    #[test]
    fn a_wrong_app_is_never_passed() {
        let routes = Routes::new(&DEFAULT_PREFIXES, Some(APP), Unmatched::Pass).expect("routes");
        for path in [
            "/v1/applications/other/videos/abc",
            "/v1/applications/other/videos",
            "/v1/applications/other/session",
        ] {
            assert_eq!(
                routes.route(&Method::GET, path),
                Err(RouteError::NoRoute),
                "{path}"
            );
        }
        // Not a vidgate route under any `{app}`: passed.
        assert_eq!(
            routes.route(&Method::GET, "/v1/applications/other/static"),
            Ok(Route::PassThrough)
        );
    }

    #[test]
    fn a_wrong_app_still_gets_the_video_checks() {
        assert_eq!(
            with_app().route(&Method::GET, "/v1/applications/other/videos/%2541"),
            Err(RouteError::BadPath)
        );
    }

    #[test]
    fn literal_segments_are_compared_decoded_and_ignoring_case() {
        for path in ["/V1/Videos/abc", "/v1/vid%65os/abc", "/%76%31/VIDEOS/abc"] {
            assert_eq!(
                route("GET", path),
                video(Action::Read, Some("abc"), true),
                "{path}"
            );
        }
        assert_eq!(route("POST", "/v1/SESSION"), Ok(Route::CreateSession));
        // The video id itself keeps its case.
        assert_eq!(
            route("GET", "/videos/AbC"),
            video(Action::Read, Some("AbC"), true)
        );
    }

    #[test]
    fn custom_prefixes() {
        let routes = Routes::new(&["/api/{app}/v2"], Some("k"), Unmatched::Deny).expect("routes");
        assert_eq!(
            routes.route(&Method::PUT, "/api/k/v2/videos/x/"),
            video(Action::Update, Some("x"), true)
        );
        assert_eq!(
            routes.route(&Method::PUT, "/api/j/v2/videos/x"),
            Err(RouteError::NoRoute)
        );
        assert_eq!(
            routes.route(&Method::PUT, "/videos/x"),
            Err(RouteError::NoRoute)
        );
    }

    #[test]
    fn malformed_prefixes_are_config_errors() {
        let err = |p: &str| {
            Routes::new(&[p], None, Unmatched::Deny)
                .map(|_| ())
                .unwrap_err()
        };
        let owned = |p: &str| p.to_owned();
        assert_eq!(
            err("v1"),
            RouteConfigError::NotAbsolute {
                prefix: owned("v1")
            }
        );
        assert_eq!(
            err("/"),
            RouteConfigError::TrailingSlash { prefix: owned("/") }
        );
        assert_eq!(
            err("/v1/"),
            RouteConfigError::TrailingSlash {
                prefix: owned("/v1/")
            }
        );
        assert_eq!(
            err("/a//b"),
            RouteConfigError::EmptySegment {
                prefix: owned("/a//b")
            }
        );
        assert_eq!(
            err("/a/../b"),
            RouteConfigError::DotSegment {
                prefix: owned("/a/../b")
            }
        );
        assert_eq!(
            err("/a/./b"),
            RouteConfigError::DotSegment {
                prefix: owned("/a/./b")
            }
        );
        for p in ["/x{app}", "/{app}x", "/{apps}", "/{other}", "/a/{app"] {
            assert_eq!(
                err(p),
                RouteConfigError::Placeholder { prefix: owned(p) },
                "{p}"
            );
        }
        assert_eq!(
            err("/v%31"),
            RouteConfigError::ForbiddenChar {
                prefix: owned("/v%31"),
                ch: '%'
            }
        );
        assert_eq!(
            err("/a b"),
            RouteConfigError::ForbiddenChar {
                prefix: owned("/a b"),
                ch: ' '
            }
        );
        assert_eq!(
            Routes::new::<&str>(&[], None, Unmatched::Deny)
                .map(|_| ())
                .unwrap_err(),
            RouteConfigError::NoPrefixes
        );
    }

    #[test]
    fn config_errors_name_the_prefix() {
        let e = Routes::new(&["/v1", "/bad/"], None, Unmatched::Deny)
            .map(|_| ())
            .unwrap_err();
        assert!(e.to_string().contains("\"/bad/\""), "{e}");
        assert_eq!(e.prefix(), Some("/bad/"));
        assert_eq!(RouteConfigError::NoPrefixes.prefix(), None);
    }

    #[test]
    fn well_formed_prefixes_are_accepted() {
        for p in [
            "",
            "/v1",
            "/{app}",
            "/a/{app}/{app}/b",
            "/v1/applications/{app}",
            "/a-b_c.d~e",
        ] {
            assert!(Routes::new(&[p], None, Unmatched::Deny).is_ok(), "{p}");
        }
    }

    // ---- trailing slashes and whole_video ----

    #[test]
    fn trailing_slash_on_a_video_is_the_video() {
        assert_eq!(
            route("DELETE", "/v1/videos/abc/"),
            video(Action::Destroy, Some("abc"), true)
        );
        assert_eq!(
            route("GET", "/videos/abc/"),
            video(Action::Read, Some("abc"), true)
        );
    }

    #[test]
    fn whole_video_is_false_below_the_video() {
        for path in [
            "/v1/videos/abc/streams",
            "/v1/videos/abc/streams/",
            "/v1/videos/abc/x/y",
        ] {
            assert_eq!(
                route("DELETE", path),
                video(Action::Destroy, Some("abc"), false),
                "{path}"
            );
        }
    }

    // ---- {v} decoding ----

    #[test]
    fn video_is_decoded_once() {
        assert_eq!(
            route("GET", "/videos/a%20b"),
            video(Action::Read, Some("a b"), true)
        );
        assert_eq!(
            route("GET", "/videos/caf%C3%A9"),
            video(Action::Read, Some("café"), true)
        );
        // A lone `%` after decoding is not an escape.
        assert_eq!(
            route("GET", "/videos/100%25"),
            video(Action::Read, Some("100%"), true)
        );
    }

    #[test]
    fn double_encoded_video_is_bad_path() {
        assert_eq!(route("GET", "/v1/videos/%2541"), Err(RouteError::BadPath));
        assert_eq!(
            route("GET", "/v1/videos/a%2561b/streams"),
            Err(RouteError::BadPath)
        );
        assert_eq!(route("DELETE", "/videos/%252e"), Err(RouteError::BadPath));
        assert_eq!(route("GET", "/videos/%25%34%31"), Err(RouteError::BadPath));
    }

    #[test]
    fn non_utf8_video_is_bad_path() {
        assert_eq!(route("GET", "/v1/videos/%FF"), Err(RouteError::BadPath));
        assert_eq!(route("GET", "/v1/videos/%C3"), Err(RouteError::BadPath));
        assert_eq!(
            route("DELETE", "/videos/a%ffb/streams"),
            Err(RouteError::BadPath)
        );
    }

    // ---- path checks, each its own case ----

    fn assert_bad(path: &str) {
        // Every method, with and without pass, so that no route or pass-through skips a check.
        for m in ["GET", "POST", "DELETE", "OPTIONS", "TRACE"] {
            for routes in [Routes::default(), pass()] {
                assert_eq!(
                    routes.route(&method(m), path),
                    Err(RouteError::BadPath),
                    "{m} {path}"
                );
            }
        }
    }

    #[test]
    fn path_must_start_with_a_slash() {
        assert_bad("");
        assert_bad("videos/abc");
        assert_bad("*");
    }

    #[test]
    fn encoded_slash_is_bad_path() {
        assert_bad("/v1/videos/a%2Fb");
        assert_bad("/v1/videos/a%2fb");
        assert_bad("/v1%2Fvideos/abc");
        assert_bad("/static%2f..%2fsecret");
    }

    #[test]
    fn encoded_backslash_is_bad_path() {
        assert_bad("/v1/videos/a%5Cb");
        assert_bad("/v1/videos/a%5cb");
    }

    #[test]
    fn encoded_nul_is_bad_path() {
        assert_bad("/v1/videos/a%00b");
        assert_bad("/other%00.txt");
    }

    #[test]
    fn double_encoded_separators_are_bad_path_anywhere() {
        assert_bad("/v1/videos/abc/x%252Fy");
        assert_bad("/static/x%255cy");
        assert_bad("/static/x%2500y");
        assert_bad("/static/x%25%32%46y");
    }

    #[test]
    fn raw_backslash_is_bad_path() {
        assert_bad("/v1/videos/a\\b");
        assert_bad("/v1\\videos/abc");
    }

    #[test]
    fn plain_dot_segments_are_bad_path() {
        assert_bad("/v1/videos/.");
        assert_bad("/v1/videos/..");
        assert_bad("/v1/videos/abc/../xyz");
        assert_bad("/v1/./videos/abc");
        assert_bad("/./");
        assert_bad("/..");
    }

    #[test]
    fn encoded_dot_segments_are_bad_path() {
        assert_bad("/v1/videos/%2e");
        assert_bad("/v1/videos/%2E");
        assert_bad("/v1/videos/%2e%2e");
        assert_bad("/v1/videos/abc/%2E%2E/xyz");
    }

    #[test]
    fn mixed_case_and_mixed_dot_segments_are_bad_path() {
        assert_bad("/v1/videos/%2E%2e");
        assert_bad("/v1/videos/%2e%2E/x");
        assert_bad("/v1/videos/.%2E");
        assert_bad("/v1/videos/%2e.");
        assert_bad("/v1/videos/abc/.%2e/");
    }

    #[test]
    fn double_encoded_dot_segments_are_bad_path() {
        assert_bad("/static/%252e%252e/secret");
        assert_bad("/static/.%252E/secret");
    }

    #[test]
    fn names_with_dots_are_not_dot_segments() {
        assert_eq!(
            route("GET", "/videos/a.b"),
            video(Action::Read, Some("a.b"), true)
        );
        assert_eq!(
            route("GET", "/videos/..."),
            video(Action::Read, Some("..."), true)
        );
        assert_eq!(route("GET", "/videos/.x/.."), Err(RouteError::BadPath));
        assert_eq!(
            route("GET", "/videos/abc/.hidden"),
            video(Action::Read, Some("abc"), false)
        );
    }

    #[test]
    fn empty_segment_is_bad_path() {
        assert_bad("//videos/abc");
        assert_bad("/v1//videos/abc");
        assert_bad("/v1/videos//abc");
        assert_bad("/v1/videos//");
        assert_bad("/v1/videos/abc//");
        assert_bad("/v1/videos/abc//streams");
        assert_bad("//");
    }

    #[test]
    fn one_trailing_slash_is_not_an_empty_segment() {
        assert_eq!(
            route("GET", "/v1/videos/"),
            video(Action::Read, None, false)
        );
        assert_eq!(route("GET", "/"), Err(RouteError::NoRoute));
    }

    #[test]
    fn semicolon_is_bad_path() {
        assert_bad("/v1/videos/abc;jsessionid=1");
        assert_bad("/v1;x/videos/abc");
        assert_bad("/v1/videos;/abc");
        assert_bad("/static/a;b");
    }

    #[test]
    fn malformed_escape_is_bad_path() {
        assert_bad("/v1/videos/a%");
        assert_bad("/v1/videos/a%2");
        assert_bad("/v1/videos/a%zz");
        assert_bad("/v1/videos/a%g0");
        assert_bad("/static/%%41");
    }

    #[test]
    fn non_visible_bytes_are_bad_path() {
        assert_bad("/v1/videos/a b");
        assert_bad("/v1/videos/a\tb");
        assert_bad("/v1/videos/a\nb");
        assert_bad("/v1/videos/a\u{7f}b");
        assert_bad("/v1/videos/a\u{0}b");
        assert_bad("/v1/videos/café");
    }

    // ---- effective method ----

    #[test]
    fn no_override_is_the_method_itself() {
        for m in [
            "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND",
        ] {
            let got = effective_method(&method(m), &[], &HeaderMap::new());
            assert_eq!(got, Ok(method(m)), "{m}");
        }
    }

    #[test]
    fn query_override_on_post_is_honoured_in_any_case() {
        for (value, want) in [
            ("DELETE", Method::DELETE),
            ("delete", Method::DELETE),
            ("Put", Method::PUT),
            ("pAtCh", Method::PATCH),
        ] {
            let got = effective_method(&Method::POST, &[value], &HeaderMap::new());
            assert_eq!(got, Ok(want), "{value}");
        }
    }

    #[test]
    fn each_override_header_is_honoured_on_post() {
        for name in OVERRIDE_HEADERS {
            for (value, want) in [("PUT", Method::PUT), ("patch", Method::PATCH)] {
                let got = effective_method(&Method::POST, &[], &headers(&[(name, value)]));
                assert_eq!(got, Ok(want), "{name}: {value}");
            }
        }
        // Header names are case-insensitive on the wire; HeaderMap stores them lower-case.
        let got = effective_method(
            &Method::POST,
            &[],
            &headers(&[("X-HTTP-Method-Override", "DELETE")]),
        );
        assert_eq!(got, Ok(Method::DELETE));
    }

    #[test]
    fn override_on_another_method_is_bad_request() {
        for m in ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"] {
            let got = effective_method(&method(m), &["DELETE"], &HeaderMap::new());
            assert_eq!(got, Err(RouteError::BadRequest), "query on {m}");
            let got = effective_method(&method(m), &[], &headers(&[("x-http-method", "PUT")]));
            assert_eq!(got, Err(RouteError::BadRequest), "header on {m}");
        }
    }

    #[test]
    fn override_to_another_value_is_bad_request() {
        for value in [
            "GET", "get", "POST", "HEAD", "OPTIONS", "CONNECT", "", "DELETE ", "DEL",
        ] {
            let got = effective_method(&Method::POST, &[value], &HeaderMap::new());
            assert_eq!(got, Err(RouteError::BadRequest), "{value:?}");
        }
        let got = effective_method(
            &Method::POST,
            &[],
            &headers(&[("x-method-override", "GET")]),
        );
        assert_eq!(got, Err(RouteError::BadRequest));
    }

    #[test]
    fn overrides_that_disagree_are_bad_request() {
        let none = HeaderMap::new();
        assert_eq!(
            effective_method(&Method::POST, &["DELETE", "PUT"], &none),
            Err(RouteError::BadRequest)
        );
        assert_eq!(
            effective_method(
                &Method::POST,
                &["DELETE"],
                &headers(&[("x-http-method", "PUT")])
            ),
            Err(RouteError::BadRequest)
        );
        let two_headers = headers(&[
            ("x-http-method-override", "PATCH"),
            ("x-method-override", "PUT"),
        ]);
        assert_eq!(
            effective_method(&Method::POST, &[], &two_headers),
            Err(RouteError::BadRequest)
        );
        let repeated = headers(&[("x-http-method", "PATCH"), ("x-http-method", "DELETE")]);
        assert_eq!(
            effective_method(&Method::POST, &[], &repeated),
            Err(RouteError::BadRequest)
        );
    }

    #[test]
    fn overrides_that_agree_are_honoured() {
        let all = headers(&[
            ("x-http-method-override", "delete"),
            ("x-http-method", "DELETE"),
            ("x-http-method", "Delete"),
            ("x-method-override", "DELETE"),
        ]);
        assert_eq!(
            effective_method(&Method::POST, &["DELETE", "delete"], &all),
            Ok(Method::DELETE)
        );
    }

    #[test]
    fn one_bad_override_among_good_ones_is_bad_request() {
        assert_eq!(
            effective_method(
                &Method::POST,
                &["PUT"],
                &headers(&[("x-http-method", "GET")])
            ),
            Err(RouteError::BadRequest)
        );
    }

    #[test]
    fn non_ascii_override_header_is_bad_request() {
        let mut map = HeaderMap::new();
        map.insert(
            "x-http-method-override",
            HeaderValue::from_bytes(b"DEL\xc3\x89TE").expect("value"),
        );
        assert_eq!(
            effective_method(&Method::POST, &[], &map),
            Err(RouteError::BadRequest)
        );
    }

    #[test]
    fn other_headers_are_not_overrides() {
        let map = headers(&[("x-override", "DELETE"), ("method", "DELETE")]);
        assert_eq!(effective_method(&Method::POST, &[], &map), Ok(Method::POST));
    }

    // ---- SPEC 2.6 step 1 order ----

    #[test]
    fn classify_puts_bad_path_before_bad_request() {
        let got =
            Routes::default().classify(&Method::GET, &["DELETE"], &HeaderMap::new(), "/v1//x");
        assert_eq!(got, Err(RouteError::BadPath));
        // Also when only `{v}` is bad, which the raw checks alone do not see.
        let got = Routes::default().classify(
            &Method::POST,
            &["GET"],
            &HeaderMap::new(),
            "/v1/videos/%2541",
        );
        assert_eq!(got, Err(RouteError::BadPath));
    }

    #[test]
    fn classify_puts_bad_request_before_no_route() {
        let got = Routes::default().classify(&Method::GET, &["DELETE"], &HeaderMap::new(), "/nope");
        assert_eq!(got, Err(RouteError::BadRequest));
    }

    #[test]
    fn classify_routes_by_the_effective_method() {
        let got = Routes::default().classify(
            &Method::POST,
            &["delete"],
            &HeaderMap::new(),
            "/v1/videos/abc",
        );
        assert_eq!(
            got,
            Ok((
                Method::DELETE,
                Route::Video {
                    action: Action::Destroy,
                    video: Some("abc".to_owned()),
                    whole_video: true
                }
            ))
        );
        // An override to DELETE on `/session` is a DELETE there: no route.
        let got = Routes::default().classify(
            &Method::POST,
            &["DELETE"],
            &HeaderMap::new(),
            "/v1/session",
        );
        assert_eq!(got, Err(RouteError::NoRoute));
    }

    // ---- properties ----

    /// Pieces to build paths from: the characters that matter to the checks, and whole prefixes
    /// and route segments so that some of the paths reach a route.
    const PATH_PIECES: &str = "/ . % 2 e E f F 5 c C 0 ; \\ a v i d o s .. %2e %2E %2f %2F %5c \
        %00 %25 %FF /videos /videos/ /v1 /v1/applications/ /v1/applications/demo-app /session";

    /// Pieces of one segment, mostly well-formed so that the `{v}` rules are what decides.
    const SEGMENT_PIECES: &str = ". .. a e E f F 2 5 c 0 %2e %2E %2f %2F %5c %5C %00 %25 %252e \
        %252F %41 %FF %C3%A9 % ; \\ /";

    fn pieces(list: &'static str) -> impl Strategy<Value = &'static str> {
        prop::sample::select(list.split_whitespace().collect::<Vec<_>>())
    }

    /// Paths from pieces: a quarter free-form, the rest shaped like `{prefix}/videos/{v}{below}`,
    /// since free-form ones are mostly refused before `{v}` is ever looked at.
    fn path_strategy() -> impl Strategy<Value = String> {
        let free =
            prop::collection::vec(pieces(PATH_PIECES), 0..16).prop_map(|pieces| pieces.concat());
        let segment =
            || prop::collection::vec(pieces(SEGMENT_PIECES), 1..5).prop_map(|p| p.concat());
        let prefix = prop::sample::select(vec![
            "",
            "/v1",
            "/v1/applications/demo-app",
            "/v1/applications/x",
        ]);
        let shaped = (
            prefix,
            segment(),
            prop::collection::vec(segment(), 0..3),
            any::<bool>(),
        )
            .prop_map(|(prefix, v, below, slash)| {
                let mut path = format!("{prefix}/videos/{v}");
                for seg in below {
                    path.push('/');
                    path.push_str(&seg);
                }
                if slash {
                    path.push('/');
                }
                path
            });
        prop_oneof![1 => free, 3 => shaped]
    }

    fn method_strategy() -> impl Strategy<Value = Method> {
        prop::sample::select(vec![
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
            Method::TRACE,
        ])
    }

    fn routes_strategy() -> impl Strategy<Value = Routes> {
        (any::<bool>(), any::<bool>()).prop_map(|(app, pass)| {
            let unmatched = if pass {
                Unmatched::Pass
            } else {
                Unmatched::Deny
            };
            Routes::new(&DEFAULT_PREFIXES, app.then_some(APP), unmatched).expect("routes")
        })
    }

    /// An override value: mostly method names in various cases, sometimes arbitrary bytes.
    fn override_value() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            3 => pieces("PUT put Patch PATCH DELETE delete GET post POST").prop_map(|p| p.into()),
            1 => prop::collection::vec(any::<u8>(), 0..8),
        ]
    }

    /// Whether `s` holds `%` followed by two hex digits: the oracle, written independently.
    fn has_percent_escape(s: &str) -> bool {
        s.as_bytes()
            .windows(3)
            .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Whatever reaches a video route is a path the origin cannot read differently.
        #[test]
        fn video_routes_only_for_safe_paths(
            routes in routes_strategy(),
            m in method_strategy(),
            path in path_strategy(),
        ) {
            if let Ok(Route::Video { video: Some(v), .. }) = routes.route(&m, &path) {
                prop_assert!(path.starts_with('/'));
                let lower = path.to_ascii_lowercase();
                for encoded in ["%2f", "%5c", "%00"] {
                    prop_assert!(!lower.contains(encoded), "{} in {:?}", encoded, path);
                }
                prop_assert!(!path.contains('\\') && !path.contains(';'));
                let segments: Vec<&str> = path[1..].split('/').collect();
                for (i, seg) in segments.iter().enumerate() {
                    let last = i + 1 == segments.len();
                    prop_assert!(!seg.is_empty() || last, "empty segment in {:?}", path);
                    let decoded = percent_decode_str(seg).decode_utf8_lossy();
                    prop_assert!(decoded != "." && decoded != "..", "dot segment in {:?}", path);
                }
                prop_assert!(!v.is_empty());
                prop_assert!(!v.contains(['/', '\\', '\0']), "separator or NUL in {:?}", v);
                prop_assert!(!has_percent_escape(&v), "escape left in {:?}", v);
                // `{v}` is some segment of the path, decoded once.
                let is_v = |s: &&str| percent_decode_str(s).decode_utf8_lossy() == v;
                prop_assert!(segments.iter().any(is_v), "{:?} is no segment of {:?}", v, path);
            }
        }

        /// Nothing a client sends makes routing panic, and what is not visible ASCII after a
        /// leading `/` is always `bad_path`.
        #[test]
        fn route_never_panics(
            routes in routes_strategy(),
            m in "[A-Za-z]{1,10}",
            path in any::<String>(),
            built in path_strategy(),
        ) {
            let m = Method::from_bytes(m.as_bytes()).expect("letters are a method");
            let got = routes.route(&m, &path);
            if !path.starts_with('/') || !path.bytes().all(|b| b.is_ascii_graphic()) {
                prop_assert_eq!(got, Err(RouteError::BadPath));
            }
            let _ = routes.route(&m, &built);
        }

        /// Whatever a client sends, the effective method is the method itself, or an allowed
        /// override of a POST that every override value names; anything else is `bad_request`.
        #[test]
        fn effective_method_is_the_method_or_an_allowed_override(
            m in prop::sample::select(vec!["GET", "HEAD", "POST", "PUT", "DELETE", "PROPFIND"]),
            query in prop::collection::vec(override_value(), 0..3),
            values in prop::collection::vec((0..3usize, override_value()), 0..3),
        ) {
            let m = method(m);
            let mut map = HeaderMap::new();
            for (which, value) in &values {
                if let Ok(value) = HeaderValue::from_bytes(value) {
                    map.append(OVERRIDE_HEADERS[*which], value);
                }
            }
            let query: Vec<&str> =
                query.iter().filter_map(|q| std::str::from_utf8(q).ok()).collect();
            let overridden = !query.is_empty() || !map.is_empty();
            match effective_method(&m, &query, &map) {
                Ok(got) if !overridden => prop_assert_eq!(got, m),
                Ok(got) => {
                    prop_assert_eq!(&m, &Method::POST);
                    prop_assert!(matches!(got.as_str(), "PUT" | "PATCH" | "DELETE"), "{}", got);
                    let names = |v: &[u8]| v.eq_ignore_ascii_case(got.as_str().as_bytes());
                    prop_assert!(query.iter().all(|q| names(q.as_bytes())));
                    prop_assert!(map.values().all(|v| names(v.as_bytes())));
                }
                Err(e) => {
                    prop_assert_eq!(e, RouteError::BadRequest);
                    prop_assert!(overridden);
                }
            }
        }

        /// `bad_path` is judged on the path alone, so it comes first whatever the method.
        #[test]
        fn bad_path_does_not_depend_on_the_method(
            routes in routes_strategy(),
            path in path_strategy(),
        ) {
            let bad = routes.route(&Method::GET, &path) == Err(RouteError::BadPath);
            for m in [Method::POST, Method::DELETE, Method::OPTIONS, Method::TRACE] {
                prop_assert_eq!(routes.route(&m, &path) == Err(RouteError::BadPath), bad);
            }
        }

        /// Plain ids are routed as themselves, under every default prefix.
        #[test]
        fn plain_ids_route_to_themselves(
            id in "[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,40}",
            prefix in prop::sample::select(PREFIXES.to_vec()),
            below in prop::sample::select(vec!["", "/", "/streams", "/streams/s1"]),
        ) {
            prop_assume!(id != "." && id != "..");
            let path = format!("{prefix}/videos/{id}{below}");
            prop_assert_eq!(
                Routes::default().route(&Method::DELETE, &path),
                video(Action::Destroy, Some(&id), below.len() <= 1)
            );
        }
    }
}
