//! Real players through the real gateway (SPEC 2.1, 2.3, 2.7): ffprobe and ffmpeg play HLS
//! (MPEG-TS and fMP4 segments) and DASH, hls.js plays HLS in headless Chromium from a page on
//! another origin and from one served through vidgate, and Range requests come back byte for
//! byte. The media is made at test time by ffmpeg, once per run; the origin is a static file
//! server ([`StaticOrigin`]) that records every request, so that each test shows that no
//! credential ever reached it.
//!
//! These tests need ffmpeg, ffprobe, Chromium, Node.js and `tests/browser/node_modules`;
//! `scripts/test` installs them. A missing one fails the test with the command that installs
//! it: nothing is skipped.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::static_origin::{range_of, StaticOrigin};
use common::{assert_error, gateway_toml, TestGateway};
use http::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::OnceCell;
use vidgate::client_token::ClientTokens;
use vidgate::config::Config;
use vidgate::session::OwnerKey;
use vidgate::store::TokenStore;
use vidgate::token::TokenId;

/// What installs every tool these tests drive.
const INSTALL: &str = "scripts/test installs them all (or by hand: apt-get install -y ffmpeg \
                       chromium nodejs npm && npm ci --prefix tests/browser)";

/// How long one run of ffmpeg, ffprobe or the browser may take before it is killed.
const CHILD_BOUND: Duration = Duration::from_secs(90);

/// The secret of the HS256 key the client-token tests sign with.
const HS_SECRET: &str = "players-hs256-secret-of-at-least-32-bytes";

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

// ---------------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------------

/// The path of `program` on `PATH`.
fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Run `program` to its end, at most [`CHILD_BOUND`] (it is killed when the bound passes or the
/// test ends), and return what it printed. A program that cannot be started fails the test
/// with [`INSTALL`].
async fn run(program: &str, args: &[&str]) -> Output {
    run_in(program, args, None).await
}

async fn run_in(program: &str, args: &[&str], dir: Option<&Path>) -> Output {
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let child = command
        .spawn()
        .unwrap_or_else(|e| panic!("{program} cannot be run ({e}); {INSTALL}"));
    tokio::time::timeout(CHILD_BOUND, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{program} {args:?} did not finish within {CHILD_BOUND:?}"))
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

/// Panic with the output of a program that failed.
fn assert_success(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// The media
// ---------------------------------------------------------------------------------------------

/// The test media, made by ffmpeg once per test run: 6 s of a test pattern (320x240, 25 fps,
/// H.264) with a 440 Hz tone (AAC), under `<root>/v1/`:
///
/// | path | what |
/// |---|---|
/// | `hls/master.m3u8`, `hls/index.m3u8`, `hls/seg_NNN.ts` | HLS, 1 s MPEG-TS segments |
/// | `fmp4/master.m3u8`, `fmp4/index.m3u8`, `fmp4/init.mp4`, `fmp4/seg_NNN.m4s` | HLS, fMP4 segments (`EXT-X-MAP`) |
/// | `dash/manifest.mpd`, `dash/init-streamN.m4s`, `dash/chunk-streamN-NNNNN.m4s` | DASH, a `SegmentTemplate` per stream |
/// | `file.mp4` | a progressive MP4 with its index at the end, so that a player must seek |
///
/// The static origin serves `/v1/videos/v1/<rest>` from `<root>/v1/<rest>`.
struct Media {
    root: PathBuf,
}

static MEDIA: OnceCell<Media> = OnceCell::const_new();

async fn media() -> &'static Media {
    MEDIA.get_or_init(make_media).await
}

/// The source every stream is encoded from, as ffmpeg arguments (no argument has a space).
const SOURCE: &str = "-nostdin -hide_banner -loglevel error \
    -f lavfi -i testsrc2=size=320x240:rate=25 -f lavfi -i sine=frequency=440:sample_rate=44100 \
    -t 6 -c:v libx264 -preset ultrafast -pix_fmt yuv420p -g 25 -c:a aac -b:a 64k";

/// The HLS muxer's options shared by both segment types: 1 s segments, a VOD playlist
/// (`index.m3u8`, named last) and a master playlist wrapping it.
const HLS: &str = "-f hls -hls_time 1 -hls_playlist_type vod -master_pl_name master.m3u8";

async fn make_media() -> Media {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let root = tmp.join(format!("players-media-{}", std::process::id()));
    remove_stale_media(tmp);
    let _ = std::fs::remove_dir_all(&root);
    let video = root.join("v1");
    for dir in ["hls", "fmp4", "dash"] {
        std::fs::create_dir_all(video.join(dir)).unwrap();
    }
    // Each job: options after SOURCE, then the output files' paths (which may hold spaces).
    let jobs = [
        (
            format!("{HLS} -hls_segment_filename"),
            ["hls/seg_%03d.ts", "hls/index.m3u8"].as_slice(),
        ),
        (
            format!(
                "{HLS} -hls_segment_type fmp4 -hls_fmp4_init_filename init.mp4 \
                 -hls_segment_filename"
            ),
            ["fmp4/seg_%03d.m4s", "fmp4/index.m3u8"].as_slice(),
        ),
        (
            "-f dash -seg_duration 1".to_owned(),
            ["dash/manifest.mpd"].as_slice(),
        ),
        (String::new(), ["file.mp4"].as_slice()),
    ];
    let runs = jobs.iter().map(|(options, outputs)| {
        let outputs: Vec<String> = outputs
            .iter()
            .map(|o| video.join(o).to_str().unwrap().to_owned())
            .collect();
        async move {
            let mut args: Vec<&str> = SOURCE.split_whitespace().collect();
            args.extend(options.split_whitespace());
            args.extend(outputs.iter().map(String::as_str));
            let output = run("ffmpeg", &args).await;
            assert_success(&format!("ffmpeg {}", args.join(" ")), &output);
        }
    });
    futures_util::future::join_all(runs).await;
    Media { root }
}

/// Remove the media of earlier runs whose process is gone.
fn remove_stale_media(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("players-media-")) else {
            continue;
        };
        if pid != std::process::id().to_string() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl Media {
    /// The directory the static origin serves.
    fn root(&self) -> &Path {
        &self.root
    }

    /// A file of video `v1`, by its path below `/v1/videos/v1/`.
    fn file(&self, rest: &str) -> PathBuf {
        self.root.join("v1").join(rest)
    }

    fn bytes(&self, rest: &str) -> Vec<u8> {
        std::fs::read(self.file(rest)).unwrap()
    }
}

/// A stream the players are pointed at: its directory below `/v1/videos/v1/` and its manifest.
#[derive(Clone, Copy)]
struct Stream {
    dir: &'static str,
    manifest: &'static str,
}

const HLS_TS: Stream = Stream {
    dir: "hls",
    manifest: "master.m3u8",
};
const HLS_FMP4: Stream = Stream {
    dir: "fmp4",
    manifest: "master.m3u8",
};
const DASH: Stream = Stream {
    dir: "dash",
    manifest: "manifest.mpd",
};

impl Stream {
    /// The manifest's path through vidgate (and at the origin).
    fn path(&self) -> String {
        format!("/v1/videos/v1/{}/{}", self.dir, self.manifest)
    }

    /// The manifest as a file.
    fn local(&self, media: &Media) -> PathBuf {
        media.file(&format!("{}/{}", self.dir, self.manifest))
    }

    /// The origin path of every file of the stream (manifests, init sections, segments).
    fn files(&self, media: &Media) -> Vec<String> {
        let mut files: Vec<String> = std::fs::read_dir(media.file(self.dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .map(|name| format!("/v1/videos/v1/{}/{name}", self.dir))
            .collect();
        files.sort();
        files
    }
}

// ---------------------------------------------------------------------------------------------
// ffprobe and ffmpeg
// ---------------------------------------------------------------------------------------------

/// Every stream's type and the number of packets ffprobe read from it (`-count_packets`
/// demuxes the input to its end), sorted; `Err` with ffprobe's words when it failed.
async fn packet_counts(input: &str) -> Result<Vec<(String, u64)>, String> {
    let mut args: Vec<&str> =
        "-v error -count_packets -show_entries stream=codec_type,nb_read_packets -of json"
            .split_whitespace()
            .collect();
    args.push(input);
    let output = run("ffprobe", &args).await;
    if !output.status.success() {
        return Err(format!(
            "ffprobe failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let json: Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("ffprobe printed no JSON ({e})"))?;
    let mut counts: Vec<(String, u64)> = json["streams"]
        .as_array()
        .ok_or("ffprobe found no streams")?
        .iter()
        .map(|s| {
            let kind = s["codec_type"].as_str().unwrap_or("?").to_owned();
            let count = s["nb_read_packets"]
                .as_str()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            (kind, count)
        })
        .collect();
    counts.sort();
    Ok(counts)
}

/// [`packet_counts`] of a local file, which must work.
async fn local_counts(file: &Path) -> Vec<(String, u64)> {
    let counts = packet_counts(file.to_str().unwrap())
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert!(
        counts.iter().any(|(kind, n)| kind == "video" && *n > 0)
            && counts.iter().any(|(kind, n)| kind == "audio" && *n > 0),
        "the test media has video and audio packets: {counts:?}"
    );
    counts
}

/// `ffmpeg -i <url> -map 0 -c copy -f null -`: read every packet of the input, decode nothing.
async fn ffmpeg_copy(url: &str) -> Output {
    let mut args: Vec<&str> = "-nostdin -hide_banner -loglevel error -i"
        .split_whitespace()
        .collect();
    args.push(url);
    args.extend("-map 0 -c copy -f null -".split_whitespace());
    run("ffmpeg", &args).await
}

// ---------------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------------

/// The token a player carries: a server token made through the admin API, or a JWT client
/// token with its `jti`.
enum Token {
    Server(String),
    Jwt { jwt: String, jti: String },
}

impl Token {
    /// A server token that reads `v1` in at most one session.
    async fn server(gw: &TestGateway) -> Token {
        Token::Server(
            gw.create_token(json!({
                "grants": {"read": {"resources": ["v1"]}},
                "session_limit": 1,
            }))
            .await,
        )
    }

    /// A JWT signed with the `hs` key of [`jwt_toml`] that reads `v1` in at most one session.
    fn jwt(toml: &str) -> Token {
        let mut config = Config::from_toml_str(toml).expect("the test config is valid");
        config.resolve().expect("the test config resolves");
        let keys = ClientTokens::from_config(&config.client_tokens).expect("the JWT keys load");
        let jti = format!("players-{}", TokenId::generate().as_str());
        let claims = json!({
            "grants": {"read": {"resources": ["v1"]}},
            "session_limit": 1,
            "exp": now_secs() + 3600,
            "jti": jti,
        });
        let jwt = keys.jwt().sign("hs", &claims).expect("the hs key signs");
        Token::Jwt { jwt, jti }
    }

    /// The query parameter that carries it.
    fn query(&self) -> String {
        match self {
            Token::Server(id) => format!("server_auth={id}"),
            Token::Jwt { jwt, .. } => format!("client_auth={jwt}"),
        }
    }

    fn secret(&self) -> &str {
        match self {
            Token::Server(id) => id,
            Token::Jwt { jwt, .. } => jwt,
        }
    }

    /// The ids of the token's sessions, as the store holds them; for a server token, also
    /// checks that the admin API's `sessions_created` agrees.
    async fn sessions(&self, gw: &TestGateway) -> Vec<String> {
        match self {
            Token::Server(id) => {
                let sessions: Vec<String> = gw
                    .sessions_of(id)
                    .await
                    .iter()
                    .map(|s| s["session"].as_str().unwrap().to_owned())
                    .collect();
                assert_eq!(
                    gw.token(id).await["sessions_created"],
                    sessions.len(),
                    "sessions_created counts the live sessions (none ended)"
                );
                sessions
            }
            Token::Jwt { jti, .. } => gw
                .store
                .sessions_of(&OwnerKey::Jwt(Arc::from(jti.as_str())))
                .await
                .unwrap()
                .iter()
                .map(|s| s.id.to_string())
                .collect(),
        }
    }

    /// Its one session, which must exist.
    async fn only_session(&self, gw: &TestGateway) -> String {
        let sessions = self.sessions(gw).await;
        assert_eq!(sessions.len(), 1, "exactly one session: {sessions:?}");
        sessions[0].clone()
    }
}

/// The test gateway's config with a response timeout that a busy machine meets: the origin
/// reads whole files (half a megabyte for hls.js) while ffmpeg and Chromium share the cores, and
/// 300 ms was seen to pass.
fn players_toml(upstream: std::net::SocketAddr) -> String {
    let toml = gateway_toml(upstream);
    assert!(toml.contains("response_timeout = \"1s\""), "{toml}");
    toml.replacen("response_timeout = \"1s\"", "response_timeout = \"10s\"", 1)
}

/// [`players_toml`] plus the HS256 key `hs`.
fn jwt_toml(upstream: std::net::SocketAddr) -> String {
    format!(
        "{}\n[[client_tokens.jwt_keys]]\nkid = \"hs\"\nalg = \"HS256\"\nsecret = \"{HS_SECRET}\"\n",
        players_toml(upstream)
    )
}

/// [`players_toml`] with `proxy.unmatched = "pass"` and, when given, `[proxy.cors]`.
fn browser_toml(upstream: std::net::SocketAddr, cors_origin: Option<&str>) -> String {
    let mut toml =
        players_toml(upstream).replacen("[proxy]\n", "[proxy]\nunmatched = \"pass\"\n", 1);
    if let Some(origin) = cors_origin {
        toml.push_str(&format!(
            "\n[proxy.cors]\nallowed_origins = [\"{origin}\"]\n"
        ));
    }
    toml
}

// ---------------------------------------------------------------------------------------------
// What the origin saw
// ---------------------------------------------------------------------------------------------

/// Every file of `stream` reached the origin, and no request carried a credential or a secret.
fn assert_origin_served(origin: &StaticOrigin, stream: Stream, media: &Media, secrets: &[&str]) {
    let paths = origin.paths();
    for file in stream.files(media) {
        assert!(
            paths.contains(&file),
            "the origin never saw {file}; it saw {paths:#?}"
        );
    }
    origin.assert_no_credentials(secrets);
    // A manifest is fetched whole (SPEC 2.7): whatever Range the player sent is dropped.
    for seen in origin.seen() {
        let path = seen.target.split('?').next().unwrap_or_default();
        if path.ends_with(".m3u8") || path.ends_with(".mpd") {
            assert!(
                seen.headers.get("range").is_none(),
                "a manifest was asked for with a Range: {}",
                seen.head_text()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ffprobe and ffmpeg play each stream in one session
// ---------------------------------------------------------------------------------------------

/// The whole story of one stream and one token with `session_limit = 1`:
/// 1. ffprobe, given only the token, reads every packet (as many as from the files), which
///    takes exactly one session, and the origin sees every file and no credential;
/// 2. a second playback with the token alone is refused: ffmpeg fails on the 403 and a plain
///    GET answers `session_limit_reached`, and nothing reaches the origin;
/// 3. presenting the first session (header or query) still works, and ffmpeg plays the whole
///    stream again in it, creating nothing.
async fn plays_once_per_session(
    stream: Stream,
    gw: &TestGateway,
    origin: &StaticOrigin,
    token: Token,
) {
    let media = media().await;
    let expected = local_counts(&stream.local(media)).await;
    let credential = token.query();
    let url = gw.url(&format!("{}?{credential}", stream.path()));

    let counts = packet_counts(&url)
        .await
        .unwrap_or_else(|e| panic!("the first playback of {}: {e}", stream.path()));
    assert_eq!(counts, expected, "every packet of {}", stream.path());
    let session = token.only_session(gw).await;
    assert_origin_served(origin, stream, media, &[token.secret(), &session]);

    let before = origin.seen().len();
    let second = ffmpeg_copy(&url).await;
    assert!(
        !second.status.success(),
        "a second playback without the session must be refused"
    );
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("403"), "ffmpeg saw the 403: {stderr}");
    let reply = gw.get(&format!("{}?{credential}", stream.path())).await;
    assert_error(&reply, 403, "session_limit_reached");
    assert_eq!(
        origin.seen().len(),
        before,
        "refused requests never reach the origin"
    );

    let reply = gw
        .send(
            Method::GET,
            &format!("{}?{credential}", stream.path()),
            &[("x-vidgate-session", &session)],
            "",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let reply = gw
        .get(&format!("{}?{credential}&session={session}", stream.path()))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let again = ffmpeg_copy(&format!("{url}&session={session}")).await;
    assert_success("ffmpeg playing again in the first session", &again);
    assert_eq!(
        token.sessions(gw).await,
        vec![session.clone()],
        "presenting the session creates nothing"
    );
    origin.assert_no_credentials(&[token.secret(), &session]);
}

#[tokio::test]
async fn ffprobe_plays_hls_with_ts_segments_in_one_session() {
    let origin = StaticOrigin::start(media().await.root()).await;
    let gw = TestGateway::from_toml(&players_toml(origin.addr)).await;
    let token = Token::server(&gw).await;
    plays_once_per_session(HLS_TS, &gw, &origin, token).await;
}

#[tokio::test]
async fn ffprobe_plays_hls_with_fmp4_segments_in_one_session() {
    let origin = StaticOrigin::start(media().await.root()).await;
    let gw = TestGateway::from_toml(&players_toml(origin.addr)).await;
    let token = Token::server(&gw).await;
    plays_once_per_session(HLS_FMP4, &gw, &origin, token).await;
}

#[tokio::test]
async fn ffprobe_plays_dash_in_one_session() {
    let demuxers = run("ffmpeg", &["-hide_banner", "-demuxers"]).await;
    assert!(
        String::from_utf8_lossy(&demuxers.stdout)
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some("dash")),
        "this ffmpeg has no dash demuxer; Debian's ffmpeg has one ({INSTALL})"
    );
    let origin = StaticOrigin::start(media().await.root()).await;
    let gw = TestGateway::from_toml(&players_toml(origin.addr)).await;
    let token = Token::server(&gw).await;
    plays_once_per_session(DASH, &gw, &origin, token).await;
}

#[tokio::test]
async fn ffprobe_plays_hls_with_a_jwt_client_token_in_one_session() {
    let origin = StaticOrigin::start(media().await.root()).await;
    let toml = jwt_toml(origin.addr);
    let gw = TestGateway::from_toml(&toml).await;
    let token = Token::jwt(&toml);
    plays_once_per_session(HLS_TS, &gw, &origin, token).await;
}

#[tokio::test]
async fn ffprobe_plays_dash_with_a_jwt_client_token_in_one_session() {
    let origin = StaticOrigin::start(media().await.root()).await;
    let toml = jwt_toml(origin.addr);
    let gw = TestGateway::from_toml(&toml).await;
    let token = Token::jwt(&toml);
    plays_once_per_session(DASH, &gw, &origin, token).await;
}

// ---------------------------------------------------------------------------------------------
// Manifests as vidgate answers them
// ---------------------------------------------------------------------------------------------

/// The URIs of an HLS playlist: its URI lines and every `URI="..."` attribute.
fn hls_uris(text: &str) -> Vec<String> {
    let mut uris = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            continue;
        }
        if !line.starts_with('#') {
            uris.push(line.to_owned());
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("URI=\"") {
            let value = &rest[at + 5..];
            let end = value.find('"').expect("a closing quote");
            uris.push(value[..end].to_owned());
            rest = &value[end..];
        }
    }
    uris
}

/// The values of every `name="..."` attribute in an XML text, with their entities replaced.
fn xml_attributes(text: &str, name: &str) -> Vec<String> {
    let needle = format!("{name}=\"");
    text.match_indices(&needle)
        .filter(|(at, _)| text[..*at].ends_with(char::is_whitespace))
        .map(|(at, _)| {
            let value = &text[at + needle.len()..];
            xml_unescape(&value[..value.find('"').expect("a closing quote")])
        })
        .collect()
}

/// XML text with its five predefined entities replaced (`&amp;` last).
fn xml_unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Whether every `&` in an XML text starts an entity or a character reference, as XML
/// requires: a query appended with a bare `&` breaks the whole MPD.
fn ampersands_are_escaped(text: &str) -> bool {
    text.match_indices('&').all(|(at, _)| {
        let rest = &text[at..];
        ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#"]
            .iter()
            .any(|entity| rest.starts_with(entity))
    })
}

/// The query parameters of a URI, decoded.
fn query_of(uri: &str) -> Vec<(String, String)> {
    uri.split_once('?')
        .map(|(_, q)| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

/// Assert a manifest answer (SPEC 2.7): 200 whole even when a Range was asked for, private and
/// uncacheable, the right length and type, and each of `uris` carrying the token and the session
/// exactly once.
fn assert_rewritten(
    reply: &common::Reply,
    content_type: &str,
    uris: &[String],
    token: (&str, &str),
    session: &str,
) {
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "a manifest is answered whole: {reply:?}"
    );
    assert!(reply.header("content-range").is_none(), "{reply:?}");
    assert_eq!(
        reply.header("cache-control"),
        Some("private, no-store"),
        "{reply:?}"
    );
    assert_eq!(
        reply.header("content-type"),
        Some(content_type),
        "{reply:?}"
    );
    assert_eq!(
        reply.header("content-length"),
        Some(reply.body.len().to_string().as_str()),
        "{reply:?}"
    );
    assert!(!uris.is_empty(), "the manifest names URIs: {reply:?}");
    let (name, value) = token;
    for uri in uris {
        let query = query_of(uri);
        let count = |n: &str| query.iter().filter(|(k, _)| k == n).count();
        assert!(
            query.contains(&(name.to_owned(), value.to_owned())) && count(name) == 1,
            "{uri} carries {name} once: {}",
            reply.text()
        );
        assert!(
            query.contains(&("session".to_owned(), session.to_owned())) && count("session") == 1,
            "{uri} carries the session once: {}",
            reply.text()
        );
    }
}

#[tokio::test]
async fn manifests_are_answered_whole_private_and_rewritten_whatever_carried_the_token() {
    let media = media().await;
    let origin = StaticOrigin::start(media.root()).await;
    let gw = TestGateway::from_toml(&players_toml(origin.addr)).await;
    let token = gw
        .create_token(json!({"grants": {"read": {"resources": ["v1"]}}, "session_limit": 1}))
        .await;
    let hls = "application/vnd.apple.mpegurl";

    // The first request creates the session and names it in the manifest it answers.
    let reply = gw
        .send(
            Method::GET,
            &format!("{}?server_auth={token}", HLS_TS.path()),
            &[("range", "bytes=0-20")],
            "",
        )
        .await;
    let session = reply
        .header("x-vidgate-session")
        .unwrap_or_else(|| panic!("a new session is handed out: {reply:?}"))
        .to_owned();
    assert_rewritten(
        &reply,
        hls,
        &hls_uris(&reply.text()),
        ("server_auth", &token),
        &session,
    );
    assert_eq!(
        hls_uris(&reply.text())
            .iter()
            .map(|u| u.split('?').next().unwrap().to_owned())
            .collect::<Vec<_>>(),
        ["index.m3u8"],
        "the master playlist names its media playlist"
    );

    // A token in Authorization and the session in X-Vidgate-Session come out as query
    // parameters: the player's next requests carry no headers of their own.
    let bearer = format!("Bearer {token}");
    let by_headers = [
        ("authorization", bearer.as_str()),
        ("x-vidgate-session", session.as_str()),
        ("range", "bytes=10-"),
    ];
    let reply = gw
        .send(
            Method::GET,
            "/v1/videos/v1/fmp4/index.m3u8",
            &by_headers,
            "",
        )
        .await;
    let uris = hls_uris(&reply.text());
    assert_rewritten(&reply, hls, &uris, ("server_auth", &token), &session);
    let original = std::fs::read_to_string(media.file("fmp4/index.m3u8")).unwrap();
    assert_eq!(
        uris.iter()
            .map(|u| u.split('?').next().unwrap())
            .collect::<Vec<_>>(),
        hls_uris(&original),
        "every segment and the EXT-X-MAP, in order, nothing else changed"
    );
    assert!(
        reply.text().contains("#EXT-X-MAP:URI=\"init.mp4?"),
        "{}",
        reply.text()
    );

    let reply = gw
        .send(Method::GET, DASH.path().as_str(), &by_headers, "")
        .await;
    let text = reply.text();
    assert!(ampersands_are_escaped(&text), "an MPD is XML: {text}");
    let mut uris = xml_attributes(&text, "initialization");
    uris.extend(xml_attributes(&text, "media"));
    assert_eq!(uris.len(), 4, "two SegmentTemplates: {text}");
    assert_rewritten(
        &reply,
        "application/dash+xml",
        &uris,
        ("server_auth", &token),
        &session,
    );
    let original = std::fs::read_to_string(media.file("dash/manifest.mpd")).unwrap();
    assert_eq!(
        xml_attributes(&text, "xsi:schemaLocation"),
        xml_attributes(&original, "xsi:schemaLocation"),
        "a cross-origin URL is left as it was"
    );
    for template in xml_attributes(&text, "media") {
        assert!(
            template.starts_with("chunk-stream$RepresentationID$-$Number%05d$.m4s?"),
            "{template}"
        );
    }

    assert_eq!(gw.token(&token).await["sessions_created"], 1);
    origin.assert_no_credentials(&[&token, &session]);
    for seen in origin.seen() {
        assert!(seen.headers.get("range").is_none(), "{}", seen.head_text());
    }
}

// ---------------------------------------------------------------------------------------------
// Range requests
// ---------------------------------------------------------------------------------------------

#[test]
fn the_static_origin_reads_every_form_of_a_single_range() {
    assert_eq!(range_of("bytes=0-9", 100), Some(Ok((0, 9))));
    assert_eq!(range_of("bytes=90-200", 100), Some(Ok((90, 99))));
    assert_eq!(range_of("bytes=90-", 100), Some(Ok((90, 99))));
    assert_eq!(range_of("bytes=-10", 100), Some(Ok((90, 99))));
    assert_eq!(range_of("bytes=-1000", 100), Some(Ok((0, 99))));
    assert_eq!(range_of("bytes=100-", 100), Some(Err(())));
    assert_eq!(range_of("bytes=-0", 100), Some(Err(())));
    assert_eq!(range_of("bytes=0-1,5-6", 100), None);
    assert_eq!(range_of("items=0-1", 100), None);
    assert_eq!(range_of("bytes=5-1", 100), None);
}

#[tokio::test]
async fn ranges_of_mp4_and_ts_files_come_back_byte_for_byte() {
    let media = media().await;
    let origin = StaticOrigin::start(media.root()).await;
    let gw = TestGateway::from_toml(&players_toml(origin.addr)).await;
    let token = gw
        .create_token(json!({"grants": {"read": {"resources": ["v1"]}}}))
        .await;

    for (file, content_type) in [("file.mp4", "video/mp4"), ("hls/seg_002.ts", "video/mp2t")] {
        let bytes = media.bytes(file);
        let len = bytes.len();
        assert!(len > 20_000, "{file} is big enough to cut: {len}");
        let path = format!("/v1/videos/v1/{file}?server_auth={token}");

        let reply = gw.get(&path).await;
        assert_eq!(reply.status, StatusCode::OK, "{file}: {:?}", reply.headers);
        assert_eq!(reply.body, bytes, "{file} whole");
        assert_eq!(reply.header("content-type"), Some(content_type));

        for (range, first, last) in [
            ("bytes=0-99".to_owned(), 0, 99),
            ("bytes=1000-10999".to_owned(), 1000, 10_999),
            ("bytes=-500".to_owned(), len - 500, len - 1),
            (format!("bytes={}-", len - 777), len - 777, len - 1),
            (
                format!("bytes={}-{}", len - 10, len + 1000),
                len - 10,
                len - 1,
            ),
        ] {
            let reply = gw.send(Method::GET, &path, &[("range", &range)], "").await;
            assert_eq!(
                reply.status,
                StatusCode::PARTIAL_CONTENT,
                "{file} {range}: {:?}",
                reply.headers
            );
            assert_eq!(
                reply.header("content-range"),
                Some(format!("bytes {first}-{last}/{len}").as_str()),
                "{file} {range}"
            );
            assert_eq!(
                reply.header("content-length"),
                Some((last - first + 1).to_string().as_str()),
                "{file} {range}"
            );
            assert!(
                reply.body[..] == bytes[first..=last],
                "{file} {range}: the bytes differ from the file's"
            );
            let seen = origin.seen().pop().unwrap();
            assert_eq!(seen.header_values("range"), [range], "forwarded as sent");
        }

        let reply = gw
            .send(
                Method::GET,
                &path,
                &[("range", &format!("bytes={len}-"))],
                "",
            )
            .await;
        assert_eq!(reply.status, StatusCode::RANGE_NOT_SATISFIABLE, "{file}");
        assert_eq!(
            reply.header("content-range"),
            Some(format!("bytes */{len}").as_str())
        );
    }
    origin.assert_no_credentials(&[&token]);
}

#[tokio::test]
async fn ffprobe_seeks_through_a_progressive_mp4_with_range_requests() {
    let media = media().await;
    let origin = StaticOrigin::start(media.root()).await;
    let gw = TestGateway::from_toml(&players_toml(origin.addr)).await;
    let token = gw
        .create_token(json!({"grants": {"read": {"resources": ["v1"]}}}))
        .await;

    let url = gw.url(&format!("/v1/videos/v1/file.mp4?server_auth={token}"));
    let counts = packet_counts(&url).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(counts, local_counts(&media.file("file.mp4")).await);
    // The index is at the end: ffmpeg had to ask for a range that does not start at 0.
    let ranges: Vec<String> = origin
        .seen()
        .iter()
        .flat_map(|s| s.header_values("range"))
        .collect();
    assert!(
        ranges
            .iter()
            .any(|r| !r.starts_with("bytes=0-") && r.starts_with("bytes=")),
        "ffmpeg seeks with Range: {ranges:?}"
    );
    origin.assert_no_credentials(&[&token]);
}

// ---------------------------------------------------------------------------------------------
// hls.js in headless Chromium
// ---------------------------------------------------------------------------------------------

/// `tests/browser`: the page, the driver script and their npm packages.
fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// What `tests/browser/play.mjs` reports.
struct Played {
    result: Value,
    stderr: String,
}

/// Open `page` in headless Chromium, wait until hls.js has played past one second, then fetch
/// the manifest once more presenting the session in `X-Vidgate-Session` (see `play.mjs`).
async fn play_in_chromium(page: &str) -> Played {
    let chromium = which("chromium")
        .or_else(|| which("chromium-browser"))
        .unwrap_or_else(|| panic!("no chromium on PATH; {INSTALL}"));
    which("node").unwrap_or_else(|| panic!("no node on PATH; {INSTALL}"));
    let dir = browser_dir();
    for package in ["playwright-core", "hls.js"] {
        assert!(
            dir.join("node_modules")
                .join(package)
                .join("package.json")
                .is_file(),
            "tests/browser/node_modules/{package} is missing: run `npm ci --prefix tests/browser` \
             ({INSTALL})"
        );
    }
    let output = run_in(
        "node",
        &[
            "play.mjs",
            "--chromium",
            chromium.to_str().unwrap(),
            "--page",
            page,
            "--timeout-ms",
            "30000",
            "--follow-up",
        ],
        Some(&dir),
    )
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_success("node tests/browser/play.mjs", &output);
    let result = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l).ok())
        .unwrap_or_else(|| panic!("play.mjs printed no JSON:\n{stdout}\n{stderr}"));
    Played { result, stderr }
}

/// What every browser run must show: hls.js played past 1 s in one session, the page read
/// that session from `X-Vidgate-Session`, and fetching the manifest again with it worked.
async fn assert_played(played: &Played, gw: &TestGateway, token: &Token) -> String {
    let result = &played.result;
    let context = format!("{result:#}\n{}", played.stderr);
    assert_eq!(result["ok"], true, "{context}");
    assert!(
        result["currentTime"].as_f64().unwrap_or(0.0) > 1.0,
        "{context}"
    );
    let session = token.only_session(gw).await;
    assert_eq!(
        result["session"].as_str(),
        Some(session.as_str()),
        "the page read the new session from X-Vidgate-Session: {context}"
    );
    let follow_up = &result["followUp"];
    assert_eq!(follow_up["status"], 200, "{context}");
    assert_eq!(follow_up["firstLine"], "#EXTM3U", "{context}");
    assert_eq!(follow_up["cacheControl"], "private, no-store", "{context}");
    assert_eq!(
        token.sessions(gw).await,
        vec![session.clone()],
        "hls.js and the follow-up stayed in one session: {context}"
    );
    session
}

/// The origin served the playlists and the first segments to hls.js.
fn assert_segments_served(origin: &StaticOrigin) {
    let paths = origin.paths();
    for path in [
        "/v1/videos/v1/hls/master.m3u8",
        "/v1/videos/v1/hls/index.m3u8",
        "/v1/videos/v1/hls/seg_000.ts",
        "/v1/videos/v1/hls/seg_001.ts",
    ] {
        assert!(paths.iter().any(|p| p == path), "no {path} in {paths:#?}");
    }
}

#[tokio::test]
async fn hls_js_in_chromium_plays_from_a_page_on_another_origin() {
    let media = media().await;
    let pages = StaticOrigin::start(browser_dir()).await;
    let page_origin = format!("http://{}", pages.addr);
    let origin = StaticOrigin::start(media.root()).await;
    let gw = TestGateway::from_toml(&browser_toml(origin.addr, Some(&page_origin))).await;
    let token = Token::server(&gw).await;

    // The preflight the page's follow-up fetch causes, answered by vidgate itself.
    let preflight = gw
        .send(
            Method::OPTIONS,
            &HLS_TS.path(),
            &[
                ("origin", &page_origin),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "x-vidgate-session"),
            ],
            "",
        )
        .await;
    assert_eq!(preflight.status, StatusCode::NO_CONTENT, "{preflight:?}");
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some(page_origin.as_str()),
        "{preflight:?}"
    );
    assert!(
        preflight
            .header("access-control-allow-headers")
            .is_some_and(|h| h.to_ascii_lowercase().contains("x-vidgate-session")),
        "{preflight:?}"
    );

    let src = gw.url(&format!("{}?{}", HLS_TS.path(), token.query()));
    let page = format!("{page_origin}/player.html#src={}", encode(&src));
    let played = play_in_chromium(&page).await;
    let session = assert_played(&played, &gw, &token).await;

    assert_segments_served(&origin);
    origin.assert_no_credentials(&[token.secret(), &session]);
    assert!(
        origin.seen().iter().all(|s| s.method == Method::GET),
        "vidgate answered the preflights itself: {:?}",
        origin
            .seen()
            .iter()
            .map(|s| s.head_text())
            .collect::<Vec<_>>()
    );
    pages.assert_no_credentials(&[token.secret(), &session]);
}

#[tokio::test]
async fn hls_js_in_chromium_plays_from_a_page_served_through_the_gateway() {
    let media = media().await;
    // One origin serves the media and, unchecked through `unmatched = "pass"`, the page.
    for name in ["player.html", "node_modules"] {
        let link = media.root().join(name);
        if !link.exists() {
            std::os::unix::fs::symlink(browser_dir().join(name), &link).unwrap();
        }
    }
    let origin = StaticOrigin::start(media.root()).await;
    let gw = TestGateway::from_toml(&browser_toml(origin.addr, None)).await;
    let token = Token::server(&gw).await;

    let src = format!("{}?{}", HLS_TS.path(), token.query());
    let page = gw.url(&format!("/player.html#src={}", encode(&src)));
    let played = play_in_chromium(&page).await;
    let session = assert_played(&played, &gw, &token).await;

    assert_segments_served(&origin);
    let paths = origin.paths();
    assert!(
        paths.iter().any(|p| p == "/player.html")
            && paths
                .iter()
                .any(|p| p == "/node_modules/hls.js/dist/hls.min.js"),
        "the page came through vidgate: {paths:#?}"
    );
    // The browser sent vidgate's session cookie along too; it was stripped like the rest.
    origin.assert_no_credentials(&[token.secret(), &session]);
}

/// Percent-encode a URL for a `#src=` fragment parameter.
fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
