//! Tests of the path checks, the route table and the effective method.

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
    let got = Routes::default().classify(&Method::GET, &["DELETE"], &HeaderMap::new(), "/v1//x");
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
    let got =
        Routes::default().classify(&Method::POST, &["DELETE"], &HeaderMap::new(), "/v1/session");
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
    let free = prop::collection::vec(pieces(PATH_PIECES), 0..16).prop_map(|pieces| pieces.concat());
    let segment = || prop::collection::vec(pieces(SEGMENT_PIECES), 1..5).prop_map(|p| p.concat());
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
