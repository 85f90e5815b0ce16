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
//! It is also the one home of the method-override rules, for the proxy and the admin API alike
//! ([`query_overrides`], [`method_override`]).
//!
//! It must not look at credentials, touch the store, read the clock or build responses: the layer
//! passes the method, query and headers, asks here, and the decision (`policy`) maps a
//! [`RouteError`] to its status and reason. It never rewrites the path either: the path it judges is the path that is forwarded, so
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

use std::borrow::Cow;

use http::{HeaderMap, Method};
use percent_encoding::{percent_decode, percent_decode_str};
use smallvec::SmallVec;

use crate::form;
use crate::token::Action;

/// The query parameter that overrides a POST's method (SPEC 2.2).
pub const METHOD_PARAMETER: &str = "_method";

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

impl Route {
    /// A short fixed name for logs: `list`, `create`, `video`, `video_sub`, `session`,
    /// `preflight` or `pass` (never the path, which holds video ids).
    pub fn name(&self) -> &'static str {
        match self {
            Route::Video {
                video: None,
                action: Action::Create,
                ..
            } => "create",
            Route::Video { video: None, .. } => "list",
            Route::Video {
                whole_video: true, ..
            } => "video",
            Route::Video { .. } => "video_sub",
            Route::CreateSession => "session",
            Route::Preflight => "preflight",
            Route::PassThrough => "pass",
        }
    }
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
        Ok(Self {
            prefixes: parse_prefixes(prefixes)?,
            app_token: app_token.map(Box::from),
            unmatched,
        })
    }

    /// Check `prefixes` as [`Routes::new`] would, without keeping the table: what config
    /// validation needs.
    pub fn check_prefixes<S: AsRef<str>>(prefixes: &[S]) -> Result<(), RouteConfigError> {
        parse_prefixes(prefixes).map(drop)
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

fn parse_prefixes<S: AsRef<str>>(prefixes: &[S]) -> Result<Vec<Prefix>, RouteConfigError> {
    if prefixes.is_empty() {
        return Err(RouteConfigError::NoPrefixes);
    }
    prefixes.iter().map(|p| Prefix::parse(p.as_ref())).collect()
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

/// Every value of the `_method` query parameter of a raw query string, decoded once (`+` as a
/// space), in order: the query half of the overrides [`effective_method`] judges.
pub fn query_overrides(query: &str) -> SmallVec<[Cow<'_, str>; 1]> {
    form::pairs(query.as_bytes())
        .filter(|(name, _)| name.as_ref() == METHOD_PARAMETER.as_bytes())
        .map(|(_, value)| form::lossy(value))
        .collect()
}

/// The effective method (SPEC 2.2): the request method, or the override that clients such as
/// Ziggeo's SDKs send (`POST ...?_method=DELETE`).
///
/// Overrides come from `query_overrides` (every value of the `_method` query parameter, decoded,
/// in order: [`query_overrides`]) and every value of the [`OVERRIDE_HEADERS`]. They are
/// honoured only on a POST and only to PUT, PATCH or DELETE (any case); an override on another
/// method, to another value (an empty one included), overrides that disagree, or a header value
/// that is not visible ASCII: [`RouteError::BadRequest`]. [`method_override`] says which.
pub fn effective_method(
    method: &Method,
    query_overrides: &[&str],
    headers: &HeaderMap,
) -> Result<Method, RouteError> {
    method_override(method, query_overrides, headers).map_err(|_| RouteError::BadRequest)
}

/// Why a method override is refused: the detail behind [`RouteError::BadRequest`], for
/// messages (the admin API's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OverrideError {
    /// An override on a request that is not a POST.
    #[error("only a POST may override its method")]
    NotPost,
    /// An override to anything but PUT, PATCH or DELETE.
    #[error("must be PUT, PATCH or DELETE")]
    NotAllowed,
    /// Two overrides that name different methods.
    #[error("two overrides name different methods")]
    Disagree,
}

/// [`effective_method`], saying why an override is refused.
pub fn method_override(
    method: &Method,
    query_overrides: &[&str],
    headers: &HeaderMap,
) -> Result<Method, OverrideError> {
    let header_values = OVERRIDE_HEADERS
        .iter()
        .flat_map(|name| headers.get_all(*name))
        .map(|value| value.to_str().map_err(|_| OverrideError::NotAllowed));
    let values = query_overrides.iter().map(|v| Ok(*v)).chain(header_values);

    let mut wanted: Option<Method> = None;
    for value in values {
        let this = override_target(value?)?;
        match &wanted {
            Some(earlier) if *earlier != this => return Err(OverrideError::Disagree),
            Some(_) => {}
            None => wanted = Some(this),
        }
    }
    match wanted {
        None => Ok(method.clone()),
        Some(target) if *method == Method::POST => Ok(target),
        // Overriding a GET could turn a link into a destroy; it is never honoured.
        Some(_) => Err(OverrideError::NotPost),
    }
}

/// The method an override value names, if it is one an override may name.
fn override_target(value: &str) -> Result<Method, OverrideError> {
    [Method::PUT, Method::PATCH, Method::DELETE]
        .into_iter()
        .find(|m| value.eq_ignore_ascii_case(m.as_str()))
        .ok_or(OverrideError::NotAllowed)
}

#[cfg(test)]
mod tests;
