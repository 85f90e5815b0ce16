//! The `vidgate` binary (SPEC 5): `--help`, `--version`, `check-config`, and `serve` and `demo`
//! run as child processes, driven with `curl` and stopped with SIGTERM.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{curl_blocking, free_port};

const BIN: &str = env!("CARGO_BIN_EXE_vidgate");
/// The `shutdown_timeout` of the configs served here.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);

fn vidgate(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("VIDGATE_CONFIG")
        .output()
        .expect("vidgate runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A file in the temp directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!("vidgate-cli-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A child process this test started, killed (by its own handle) if the test fails first.
struct Running {
    child: Child,
    name: &'static str,
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Running {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn assert_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited early with {status}", self.name);
        }
    }

    /// `kill -TERM <pid>`, then wait at most `bound` for the exit.
    fn terminate(&mut self, bound: Duration) -> ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -TERM {}", self.pid());
        self.terminate_wait(bound)
    }

    /// Wait at most `bound` for the exit of a process already sent SIGTERM.
    fn terminate_wait(&mut self, bound: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                started.elapsed() < bound,
                "{} did not exit within {bound:?} of SIGTERM",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A plain HTTP/1.1 GET with std sockets: the status, or `None` when nothing answers.
fn status_of(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.split_whitespace().nth(1)?.parse().ok()
}

/// Poll `GET /healthz` until it answers 200, at most 10 s.
fn wait_healthy(child: &mut Running, admin: SocketAddr) {
    let started = Instant::now();
    while status_of(admin, "/healthz") != Some(200) {
        child.assert_alive();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{}: /healthz on {admin} did not answer 200 within 10 s",
            child.name
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// `vidgate serve --config <config>`, logging to `log` (stdout) and `log.err` (stderr).
fn serve(config: &TempFile, log: &TempFile) -> Running {
    Running {
        child: Command::new(BIN)
            .args(["serve", "--config", config.path()])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("VIDGATE_CONFIG")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log.0).unwrap())
            .stderr(std::fs::File::create(log.0.with_extension("err")).unwrap())
            .spawn()
            .expect("vidgate serve starts"),
        name: "vidgate serve",
    }
}

/// The sample origin of `vidgate demo` (videos `welcome`, titled "Welcome to vidgate", and
/// `big-buck-bunny`), run by the test itself: `serve` needs an upstream. It stops when dropped.
struct DemoOrigin {
    addr: SocketAddr,
    _runtime: tokio::runtime::Runtime,
}

fn demo_origin() -> DemoOrigin {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (addr, _serving) = runtime
        .block_on(vidgate::demo::DemoOrigin::with_samples().spawn())
        .expect("the demo origin binds");
    DemoOrigin {
        addr,
        _runtime: runtime,
    }
}

/// Both log files of [`serve`], then removes the `.err` one.
fn logs_of(log: &TempFile) -> String {
    let text = std::fs::read_to_string(&log.0).unwrap()
        + &std::fs::read_to_string(log.0.with_extension("err")).unwrap();
    let _ = std::fs::remove_file(log.0.with_extension("err"));
    text
}

fn curl(args: &[&str]) -> common::CurlReply {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    curl_blocking(&args)
}

// ---------------------------------------------------------------------------------------------
// --help, --version
// ---------------------------------------------------------------------------------------------

#[test]
fn help_names_every_command() {
    let output = vidgate(&["--help"]);
    assert!(output.status.success(), "{output:?}");
    let text = stdout(&output);
    for command in ["serve", "check-config", "demo", "token"] {
        assert!(text.contains(command), "{command} not in --help:\n{text}");
    }
    for command in ["serve", "check-config", "demo"] {
        let output = vidgate(&[command, "--help"]);
        assert!(output.status.success(), "{command} --help: {output:?}");
    }
    assert!(stdout(&vidgate(&["serve", "--help"])).contains("--config"));
    assert!(stdout(&vidgate(&["demo", "--help"])).contains("--admin-listen"));
    assert!(stdout(&vidgate(&["token", "mint", "--help"])).contains("--session-limit"));
    assert!(stdout(&vidgate(&["token", "inspect", "--help"])).contains("standard input"));

    let nothing = vidgate(&[]);
    assert_eq!(
        nothing.status.code(),
        Some(2),
        "no command is a usage error"
    );
}

#[test]
fn version_is_the_crate_version() {
    let output = vidgate(&["--version"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(stdout(&output), "vidgate 0.1.0\n");
}

// ---------------------------------------------------------------------------------------------
// check-config, and serve with the same files
// ---------------------------------------------------------------------------------------------

#[test]
fn the_shipped_configs_check_out() {
    // The documented one, and the one the Docker image bakes in.
    for file in ["config/vidgate.toml", "docker/vidgate.toml"] {
        let output = vidgate(&["check-config", "--config", file]);
        assert_eq!(output.status.code(), Some(0), "{file}: {}", stderr(&output));
        assert_eq!(stdout(&output), format!("{file}: ok\n"));
        assert_eq!(stderr(&output), "");
    }
}

/// `check-config` exits 2 with `message`; `serve` on the same file exits non-zero with the same
/// message, and starts nothing.
fn refused(file: &str, message: &str) {
    let checked = vidgate(&["check-config", "--config", file]);
    assert_eq!(
        checked.status.code(),
        Some(2),
        "check-config {file}: {checked:?}"
    );
    assert_eq!(
        stderr(&checked),
        format!("{message}\n"),
        "check-config {file}"
    );
    assert_eq!(stdout(&checked), "");

    let started = Instant::now();
    let served = vidgate(&["serve", "--config", file]);
    assert!(!served.status.success(), "serve {file}: {served:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        stderr(&served),
        stderr(&checked),
        "serve and check-config must say the same thing"
    );
}

#[test]
fn an_unknown_key_is_refused_naming_its_line_and_key() {
    let file = TempFile::new(
        "unknown.toml",
        "# a comment\n[proxy]\nlisten = \"127.0.0.1:8080\"\nresponse_timeot = \"5s\"\n",
    );
    let output = vidgate(&["check-config", "--config", file.path()]);
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(
        text.starts_with(&format!("{}:4: proxy.response_timeot: ", file.path())),
        "{text}"
    );
    assert!(text.contains("unknown key"), "{text}");
    refused(file.path(), text.trim_end());

    let section = TempFile::new("unknown-section.toml", "[proxy]\n\n[metrics]\nport = 1\n");
    let output = vidgate(&["check-config", "--config", section.path()]);
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(
        text.starts_with(&format!("{}:3: metrics", section.path())),
        "{text}"
    );
    refused(section.path(), text.trim_end());
}

#[test]
fn a_config_without_an_upstream_is_refused_and_points_at_the_demo() {
    let file = TempFile::new(
        "no-upstream.toml",
        "[proxy]\nlisten = \"127.0.0.1:0\"\n\n[admin]\nlisten = \"127.0.0.1:0\"\n",
    );
    refused(
        file.path(),
        &format!(
            "{}:1: proxy.upstream: is required: the video origin to forward requests to, e.g. \
             upstream = \"http://127.0.0.1:9000\" (to try vidgate without one, run `vidgate demo`)",
            file.path()
        ),
    );
    // Without a [proxy] table at all, the error has no line to point at.
    let empty = TempFile::new("empty.toml", "");
    let checked = vidgate(&["check-config", "--config", empty.path()]);
    assert_eq!(checked.status.code(), Some(2), "{checked:?}");
    assert!(
        stderr(&checked).starts_with(&format!("{}: proxy.upstream: is required", empty.path())),
        "{}",
        stderr(&checked)
    );
}

#[test]
fn a_bad_duration_is_refused_naming_proxy_connect_timeout() {
    let file = TempFile::new(
        "duration.toml",
        "[proxy]\nconnect_timeout = \"5 parsecs\"\n",
    );
    refused(
        file.path(),
        &format!(
            "{}:2: proxy.connect_timeout: \"5 parsecs\" is not a duration (write e.g. \"5s\" or \"250ms\")",
            file.path()
        ),
    );
}

#[test]
fn a_missing_file_is_refused() {
    let path = std::env::temp_dir().join("vidgate-cli-surely-not-here.toml");
    let path = path.to_str().unwrap();
    let output = vidgate(&["check-config", "--config", path]);
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(
        text.starts_with(&format!("{path}: cannot read the config file")),
        "{text}"
    );
    refused(path, text.trim_end());
}

#[test]
fn an_environment_variable_the_config_names_is_read_by_check_config() {
    let var = format!("VIDGATE_CLI_TEST_UNSET_{}", std::process::id());
    let file = TempFile::new(
        "env.toml",
        &format!(
            "[admin]\napp_token = \"a\"\nprivate_key_env = \"{var}\"\n\n\
             [proxy]\nupstream = \"http://127.0.0.1:9\"\n"
        ),
    );
    let output = vidgate(&["check-config", "--config", file.path()]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let text = stderr(&output);
    assert!(
        text.starts_with(&format!("{}:3: admin.private_key_env: ", file.path())),
        "{text}"
    );
    refused(file.path(), text.trim_end());

    let set = Command::new(BIN)
        .args(["check-config", "--config", file.path()])
        .env(&var, "from-the-environment")
        .output()
        .unwrap();
    assert_eq!(set.status.code(), Some(0), "{set:?}");
}

/// A config that `serve` cannot run must not pass `check-config` (SPEC 5: same message, and a
/// bad config never starts): here, an `upstream_ca` whose PEM block is not a certificate.
#[test]
fn check_config_refuses_the_upstream_ca_that_serve_refuses() {
    let ca = TempFile::new(
        "ca.pem",
        "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n",
    );
    let file = TempFile::new(
        "https.toml",
        &format!(
            "[proxy]\nlisten = \"127.0.0.1:{}\"\nupstream = \"https://videos.example.com\"\n\
             upstream_ca = \"{}\"\n[admin]\nlisten = \"127.0.0.1:{}\"\n",
            free_port(),
            ca.path(),
            free_port()
        ),
    );
    let served = vidgate(&["serve", "--config", file.path()]);
    assert!(!served.status.success(), "{served:?}");
    let checked = vidgate(&["check-config", "--config", file.path()]);
    assert_eq!(
        checked.status.code(),
        Some(2),
        "check-config says {:?} for a file that serve refuses with {:?}",
        stdout(&checked),
        stderr(&served)
    );
    assert_eq!(stderr(&served), stderr(&checked));
}

/// The same for a TLS listener whose certificate does not parse.
#[test]
fn check_config_refuses_the_tls_listener_that_serve_refuses() {
    let cert = TempFile::new(
        "server.pem",
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    );
    let key = TempFile::new(
        "server.key",
        "-----BEGIN PRIVATE KEY-----\nMC4C\n-----END PRIVATE KEY-----\n",
    );
    let file = TempFile::new(
        "tls.toml",
        &format!(
            "[proxy]\nlisten = \"127.0.0.1:{}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n\
             upstream = \"http://127.0.0.1:9\"\n[admin]\nlisten = \"127.0.0.1:{}\"\n",
            free_port(),
            cert.path(),
            key.path(),
            free_port()
        ),
    );
    let served = vidgate(&["serve", "--config", file.path()]);
    assert!(!served.status.success(), "{served:?}");
    let checked = vidgate(&["check-config", "--config", file.path()]);
    assert_eq!(
        checked.status.code(),
        Some(2),
        "check-config says {:?} for a file that serve refuses with {:?}",
        stdout(&checked),
        stderr(&served)
    );
    assert_eq!(stderr(&served), stderr(&checked));
}

// ---------------------------------------------------------------------------------------------
// serve
// ---------------------------------------------------------------------------------------------

#[test]
fn serve_answers_until_sigterm_then_exits_0() {
    let proxy = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    // The demo's sample origin stands behind the proxy.
    let origin = demo_origin();
    let file = TempFile::new(
        "serve.toml",
        &format!(
            "[proxy]\nlisten = \"{proxy}\"\nupstream = \"http://{}\"\nshutdown_timeout = \"{}s\"\n\n\
             [admin]\nlisten = \"{admin}\"\napp_token = \"cli-app\"\nprivate_key = \"cli-secret\"\n",
            origin.addr,
            SHUTDOWN_TIMEOUT.as_secs()
        ),
    );
    let log = TempFile::new("serve.log", "");
    let mut child = serve(&file, &log);
    wait_healthy(&mut child, admin);
    assert_eq!(status_of(admin, "/readyz"), Some(200));
    // The admin API is not on the proxy's listener.
    assert_eq!(status_of(proxy, "/healthz"), Some(404));

    let created = curl(&[
        "-u",
        "cli-app:cli-secret",
        "-H",
        "content-type: application/json",
        "-d",
        r#"{"grants": {"read": {"resources": ["welcome"]}}}"#,
        &format!("http://{admin}/v1/authtokens"),
    ]);
    assert_eq!(created.status, 201, "{created:?}");
    let token = created.json()["token"].as_str().unwrap().to_owned();

    let allowed = curl(&[&format!(
        "http://{proxy}/v1/videos/welcome?server_auth={token}"
    )]);
    assert_eq!(allowed.status, 200, "{allowed:?}");
    assert_eq!(allowed.json()["title"], "Welcome to vidgate");
    let denied = curl(&[&format!("http://{proxy}/v1/videos/welcome")]);
    assert_eq!(denied.status, 401, "{denied:?}");
    assert_eq!(denied.json()["error"], "missing_token");

    let metrics = curl(&[&format!("http://{admin}/metrics")]);
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    assert_eq!(
        common::metric(
            &text,
            r#"vidgate_requests_total{action="read",outcome="allowed"}"#
        ),
        1.0
    );
    assert_eq!(
        common::metric(&text, r#"vidgate_denials_total{reason="missing_token"}"#),
        1.0
    );

    let status = child.terminate(SHUTDOWN_TIMEOUT + Duration::from_secs(2));
    assert_eq!(status.code(), Some(0), "{status}");
    assert_eq!(status_of(proxy, "/"), None, "the proxy stopped listening");
    assert_eq!(
        status_of(admin, "/healthz"),
        None,
        "the admin API stopped listening"
    );

    // SPEC 4: no log line holds a token.
    let logs = logs_of(&log);
    assert!(
        logs.contains("SIGTERM"),
        "the logs say why it stopped:\n{logs}"
    );
    assert!(!logs.contains(&token), "the token is in the logs:\n{logs}");
}

#[test]
fn serve_logs_to_stderr_without_colours_when_stderr_is_a_file() {
    let proxy = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let file = TempFile::new(
        "stderr.toml",
        &format!(
            "[proxy]\nlisten = \"{proxy}\"\nupstream = \"http://127.0.0.1:9\"\n\
             shutdown_timeout = \"{}s\"\n[admin]\nlisten = \"{admin}\"\n",
            SHUTDOWN_TIMEOUT.as_secs()
        ),
    );
    let log = TempFile::new("stderr.log", "");
    let mut child = serve(&file, &log);
    wait_healthy(&mut child, admin);
    let denied = curl(&[&format!("http://{proxy}/v1/videos/v")]);
    assert_eq!(denied.status, 401, "{denied:?}");
    let status = child.terminate(SHUTDOWN_TIMEOUT + Duration::from_secs(2));
    assert_eq!(status.code(), Some(0), "{status}");
    let stdout = std::fs::read_to_string(&log.0).unwrap();
    let stderr = std::fs::read_to_string(log.0.with_extension("err")).unwrap();
    let _ = std::fs::remove_file(log.0.with_extension("err"));
    assert_eq!(stdout, "", "serve prints nothing on stdout");
    for line in ["vidgate is serving", "request denied", "SIGTERM received"] {
        assert!(stderr.contains(line), "{line:?} not in the logs:\n{stderr}");
    }
    assert!(
        !stderr.contains('\u{1b}'),
        "no ANSI colours in a file:\n{stderr}"
    );
}

#[test]
fn serve_refuses_a_port_in_use_and_exits_non_zero() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = taken.local_addr().unwrap();
    let file = TempFile::new(
        "taken.toml",
        &format!(
            "[proxy]\nlisten = \"{proxy}\"\nupstream = \"http://127.0.0.1:9\"\n\
             [admin]\nlisten = \"127.0.0.1:{}\"\n",
            free_port()
        ),
    );
    let output = Command::new(BIN)
        .args(["serve", "--config", file.path()])
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success(), "{output:?}");
    let text = stderr(&output);
    assert!(
        text.contains(&proxy.to_string()) && text.contains("proxy.listen"),
        "{text}"
    );
    drop(taken);
}

// ---------------------------------------------------------------------------------------------
// demo
// ---------------------------------------------------------------------------------------------

/// The text between the first pair of single quotes of the line that starts (after spaces)
/// with `label`.
fn quoted_after(lines: &[String], label: &str) -> String {
    let line = lines
        .iter()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no `{label}` line in:\n{}", lines.join("\n")));
    let start = line.find('\'').expect(line) + 1;
    let end = start + line[start..].find('\'').expect(line);
    line[start..end].to_owned()
}

#[test]
fn demo_prints_a_token_whose_commands_work_then_exits_0_on_sigterm() {
    let proxy = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut child = Running {
        child: Command::new(BIN)
            .args([
                "demo",
                "--listen",
                &proxy.to_string(),
                "--admin-listen",
                &admin.to_string(),
            ])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("vidgate demo starts"),
        name: "vidgate demo",
    };
    // Read stdout on a thread, to the end, so that the demo never blocks on a full pipe.
    let (lines_tx, lines_rx) = mpsc::channel::<String>();
    let out = child.child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            let _ = lines_tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let started = Instant::now();
    while !lines
        .iter()
        .any(|l: &String| l.contains("Ctrl-C stops the demo"))
    {
        child.assert_alive();
        let left = Duration::from_secs(10).saturating_sub(started.elapsed());
        match lines_rx.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(_) => panic!(
                "the demo printed no instructions within 10 s:\n{}",
                lines.join("\n")
            ),
        }
    }

    let allowed = quoted_after(&lines, "allowed");
    let denied = quoted_after(&lines, "denied");
    let stream = quoted_after(&lines, "stream");
    assert_eq!(
        allowed.split('?').next().unwrap(),
        format!("http://{proxy}/v1/videos/welcome")
    );
    assert_eq!(denied, format!("http://{proxy}/v1/videos/welcome"));
    let token = allowed
        .split_once("server_auth=")
        .map(|(_, t)| t.to_owned())
        .expect("the allowed command carries server_auth");
    assert_eq!(token.len(), 32, "{token}");
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
        "{token}"
    );

    let reply = curl(&[&allowed]);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(
        reply.header("x-vidgate-session").is_some(),
        "the demo token needs sessions"
    );
    let reply = curl(&[&denied]);
    assert_eq!(reply.status, 401, "{reply:?}");
    assert_eq!(reply.json()["error"], "missing_token");
    assert_eq!(
        reply.header("www-authenticate"),
        Some(r#"Bearer error="invalid_token""#)
    );
    let reply = curl(&["-r", "0-99", &stream]);
    assert_eq!(reply.status, 206, "{reply:?}");
    assert_eq!(reply.body.len(), 100);
    // The admin API answers on the address asked for.
    assert_eq!(status_of(admin, "/healthz"), Some(200));

    let status = child.terminate(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{status}");
    reader.join().unwrap();
    assert_eq!(status_of(proxy, "/"), None, "the proxy stopped listening");
}

// ---------------------------------------------------------------------------------------------
// vidgate token mint / inspect
// ---------------------------------------------------------------------------------------------

const KEYS_TOML: &str = "[[client_tokens.jwt_keys]]\nkid = \"k1\"\nalg = \"HS256\"\nsecret = \"cli-jwt-secret\"\n\n\
     [[client_tokens.jwt_keys]]\nkid = \"ed\"\nalg = \"EdDSA\"\n\
     public_key_pem = \"tests/keys/ed25519.pub.pem\"\nprivate_key_pem = \"tests/keys/ed25519.key.pem\"\n\n\
     [client_tokens.ziggeo]\napplication_token = \"cli-app\"\nencryption_key = \"cli-zig\"\n";

/// An inspect line with its "(in 10m 4s, " countdown cut out.
fn without_countdown(line: &str) -> String {
    match line.split_once("(in ") {
        Some((before, rest)) => {
            let after = rest.split_once(", ").map_or(rest, |(_, after)| after);
            format!("{before}({after}")
        }
        None => line.to_owned(),
    }
}

fn mint(config: &str, args: &[&str]) -> String {
    let mut all = vec!["token", "mint", "--config", config];
    all.extend_from_slice(args);
    let output = vidgate(&all);
    assert!(output.status.success(), "mint {args:?}: {output:?}");
    assert_eq!(stderr(&output), "");
    stdout(&output).trim().to_owned()
}

#[test]
fn token_mint_and_inspect_explain_themselves() {
    let file = TempFile::new("keys.toml", KEYS_TOML);
    let config = file.path();
    let jwt = mint(
        config,
        &[
            "--kid",
            "ed",
            "--grants",
            r#"{"read": {"resources": ["v1"]}}"#,
            "--session-limit",
            "2",
            "--jti",
            "cli-nonce",
            "--expires-in",
            "10m",
        ],
    );
    assert_eq!(jwt.matches('.').count(), 2, "{jwt}");

    let inspected = vidgate(&["token", "inspect", "--config", config, &jwt]);
    assert_eq!(inspected.status.code(), Some(0), "{inspected:?}");
    let line = stdout(&inspected);
    assert!(line.starts_with("accepted: JWT with grants"), "{line}");
    assert!(line.contains("at most 2 sessions"), "{line}");
    assert!(
        line.contains(r#"sessions counted per jti "cli-nonce""#),
        "{line}"
    );
    assert_eq!(line.lines().count(), 1, "one line: {line}");

    // "-" reads the token from standard input.
    let mut child = Command::new(BIN)
        .args(["token", "inspect", "--config", config, "-"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(jwt.as_bytes())
        .unwrap();
    let piped = child.wait_with_output().unwrap();
    // The same verdict, bar the countdown ("in 10m 4s"), which moves with the clock between
    // the two runs.
    assert_eq!(without_countdown(&stdout(&piped)), without_countdown(&line));

    // One character of the signature changed: refused, exit 1, saying why.
    let mut forged = jwt.clone().into_bytes();
    let at = forged.len() - 5;
    forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let refused = vidgate(&["token", "inspect", "--config", config, &forged]);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert_eq!(
        stdout(&refused).trim(),
        r#"refused: invalid_token: the JWT's signature does not verify with key "ed" (EdDSA)"#
    );

    let ziggeo = mint(
        config,
        &["--format", "ziggeo", "--grants", r#"{"read": "all"}"#],
    );
    let inspected = vidgate(&["token", "inspect", "--config", config, &ziggeo]);
    assert_eq!(inspected.status.code(), Some(0), "{inspected:?}");
    assert!(stdout(&inspected).starts_with("accepted: Ziggeo-format token"));
}

#[test]
fn token_mint_refuses_what_the_gateway_would_refuse() {
    let file = TempFile::new("keys-refuse.toml", KEYS_TOML);
    let config = file.path();
    let several = vidgate(&["token", "mint", "--config", config, "--grants", "{}"]);
    assert_eq!(several.status.code(), Some(1));
    assert!(
        stderr(&several).contains("several keys can sign (k1, ed): choose one with --kid"),
        "{several:?}"
    );
    let no_grants = vidgate(&["token", "mint", "--config", config, "--kid", "k1"]);
    assert_eq!(no_grants.status.code(), Some(1));
    assert!(stderr(&no_grants).contains("--grants"), "{no_grants:?}");
    assert_eq!(stdout(&no_grants), "", "no token is printed");
    let bad_grants = vidgate(&[
        "token",
        "mint",
        "--config",
        config,
        "--kid",
        "k1",
        "--grants",
        r#"{"read": {"al": 1}}"#,
    ]);
    assert_eq!(bad_grants.status.code(), Some(1));
    assert!(
        stderr(&bad_grants).contains("would be refused: invalid_token: claim grants.read"),
        "{bad_grants:?}"
    );
    let bad_config = vidgate(&["token", "inspect", "--config", "/nonexistent.toml", "x"]);
    assert_eq!(bad_config.status.code(), Some(2));
}

#[test]
fn a_minted_token_passes_the_running_gateway() {
    let proxy = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let origin = demo_origin();
    let file = TempFile::new(
        "serve-jwt.toml",
        &format!(
            "[proxy]\nlisten = \"{proxy}\"\nupstream = \"http://{}\"\nshutdown_timeout = \"{}s\"\n\n\
             [admin]\nlisten = \"{admin}\"\napp_token = \"cli-app\"\nprivate_key = \"cli-secret\"\n\n{KEYS_TOML}",
            origin.addr,
            SHUTDOWN_TIMEOUT.as_secs()
        ),
    );
    let token = mint(
        file.path(),
        &[
            "--kid",
            "k1",
            "--grants",
            r#"{"read": {"resources": ["welcome"]}}"#,
        ],
    );
    let log = TempFile::new("serve-jwt.log", "");
    let mut child = serve(&file, &log);
    wait_healthy(&mut child, admin);
    let bearer = format!("authorization: Bearer {token}");
    let allowed = curl(&["-H", &bearer, &format!("http://{proxy}/v1/videos/welcome")]);
    assert_eq!(allowed.status, 200, "{allowed:?}");
    let query = curl(&[&format!(
        "http://{proxy}/v1/videos/welcome?client_auth={token}"
    )]);
    assert_eq!(query.status, 200, "{query:?}");
    let other = curl(&["-H", &bearer, &format!("http://{proxy}/v1/videos/other")]);
    assert_eq!(other.status, 403, "{other:?}");
    assert_eq!(other.json()["error"], "grant_missing");
    let status = child.terminate(SHUTDOWN_TIMEOUT + Duration::from_secs(2));
    assert_eq!(status.code(), Some(0), "{status}");
    // SPEC 4: the JWT is in no log line either.
    let logs = logs_of(&log);
    assert!(!logs.contains(&token), "the token is in the logs:\n{logs}");
}

// ---------------------------------------------------------------------------------------------
// SIGHUP reload, SIGTERM drain
// ---------------------------------------------------------------------------------------------

/// `kill -<signal> <pid>`.
fn signal(child: &Running, signal: &str) {
    let sent = Command::new("kill")
        .args([signal, &child.pid().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill {signal} {}", child.pid());
}

/// Poll the admin API's metrics until `series` reaches `value` (10 s at most).
fn wait_for_metric(child: &mut Running, admin: SocketAddr, series: &str, value: f64) {
    let started = Instant::now();
    loop {
        let text = curl(&[&format!("http://{admin}/metrics")]).text();
        if common::metric(&text, series) >= value {
            return;
        }
        child.assert_alive();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{series} did not reach {value} within 10 s:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[test]
fn sighup_swaps_the_jwt_keys_and_a_broken_config_changes_nothing() {
    let proxy = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let origin = demo_origin();
    let base = format!(
        "[proxy]\nlisten = \"{proxy}\"\nupstream = \"http://{}\"\nshutdown_timeout = \"{}s\"\n\n\
         [admin]\nlisten = \"{admin}\"\napp_token = \"cli-app\"\nprivate_key = \"cli-secret\"\n\n",
        origin.addr,
        SHUTDOWN_TIMEOUT.as_secs()
    );
    let key = |kid: &str| {
        format!("[[client_tokens.jwt_keys]]\nkid = \"{kid}\"\nalg = \"HS256\"\nsecret = \"{kid}-secret\"\n")
    };
    // Each token minted from a file that holds only its key.
    let grants = r#"{"read": {"resources": ["welcome"]}}"#;
    let old_keys = TempFile::new("reload-old-key.toml", &key("old"));
    let new_keys = TempFile::new("reload-new-key.toml", &key("new"));
    let old_token = mint(old_keys.path(), &["--kid", "old", "--grants", grants]);
    let new_token = mint(new_keys.path(), &["--kid", "new", "--grants", grants]);
    let file = TempFile::new("reload.toml", &format!("{base}{}", key("old")));
    let log = TempFile::new("reload.log", "");
    let mut child = serve(&file, &log);
    wait_healthy(&mut child, admin);
    let url = format!("http://{proxy}/v1/videos/welcome");
    let answer = |token: &str| {
        let reply = curl(&["-H", &format!("authorization: Bearer {token}"), &url]);
        match reply.status {
            200 => "allowed".to_owned(),
            _ => reply.json()["error"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        }
    };
    assert_eq!(answer(&old_token), "allowed");
    assert_eq!(answer(&new_token), "invalid_token");

    // The old key replaced by the new one.
    std::fs::write(&file.0, format!("{base}{}", key("new"))).unwrap();
    signal(&child, "-HUP");
    let applied = r#"vidgate_config_reloads_total{outcome="applied"}"#;
    wait_for_metric(&mut child, admin, applied, 1.0);
    assert_eq!(answer(&new_token), "allowed");
    assert_eq!(answer(&old_token), "invalid_token");

    // A config that does not load: refused, logged, and the running one stays.
    let broken = base.replace("[proxy]\n", "[proxy]\nconnect_timeout = \"5 parsecs\"\n");
    std::fs::write(&file.0, format!("{broken}{}", key("old"))).unwrap();
    signal(&child, "-HUP");
    let refused = r#"vidgate_config_reloads_total{outcome="refused"}"#;
    wait_for_metric(&mut child, admin, refused, 1.0);
    assert_eq!(answer(&new_token), "allowed");
    assert_eq!(answer(&old_token), "invalid_token");
    let metrics = curl(&[&format!("http://{admin}/metrics")]).text();
    assert_eq!(common::metric(&metrics, applied), 1.0);

    let status = child.terminate(SHUTDOWN_TIMEOUT + Duration::from_secs(2));
    assert_eq!(status.code(), Some(0), "{status}");
    let logs = logs_of(&log);
    assert!(logs.contains("SIGHUP received"), "{logs}");
    assert!(logs.contains("configuration reloaded"), "{logs}");
    assert!(
        logs.contains("configuration reload refused") && logs.contains("proxy.connect_timeout"),
        "the refusal names the key at fault:\n{logs}"
    );
    for token in [&old_token, &new_token] {
        assert!(
            !logs.contains(token.as_str()),
            "a token is in the logs:\n{logs}"
        );
    }
}

#[test]
fn sigterm_lets_a_slow_download_finish_and_refuses_new_connections() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let origin = runtime.block_on(common::Origin::start());
    let proxy = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let file = TempFile::new(
        "drain.toml",
        &format!(
            "[proxy]\nlisten = \"{proxy}\"\nupstream = \"http://{}\"\nshutdown_timeout = \"20s\"\n\n\
             [admin]\nlisten = \"{admin}\"\napp_token = \"cli-app\"\nprivate_key = \"cli-secret\"\n",
            origin.addr
        ),
    );
    let log = TempFile::new("drain.log", "");
    let mut child = serve(&file, &log);
    wait_healthy(&mut child, admin);
    let created = curl(&[
        "-u",
        "cli-app:cli-secret",
        "-H",
        "content-type: application/json",
        "-d",
        r#"{"grants": {"read": "all"}}"#,
        &format!("http://{admin}/v1/authtokens"),
    ]);
    let token = created.json()["token"].as_str().unwrap().to_owned();

    // A download the origin holds after its first chunk, until released.
    let out = TempFile::new("drain.out", "");
    let mut download = Command::new("curl")
        .args([
            "-sS",
            "--no-buffer",
            "--fail",
            "--max-time",
            "30",
            "-o",
            out.path(),
        ])
        .arg(format!(
            "http://{proxy}/v1/videos/v1/drip?server_auth={token}"
        ))
        .spawn()
        .expect("curl starts");
    let started = Instant::now();
    while std::fs::metadata(&out.0).map_or(0, |m| m.len()) < common::DRIP_CHUNK as u64 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the first chunk never came"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    signal(&child, "-TERM");
    // New connections are refused from then on ...
    let started = Instant::now();
    loop {
        match TcpStream::connect_timeout(&proxy, Duration::from_millis(500)) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break,
            _ => {}
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still accepting after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // ... while the download in flight keeps the gateway running ...
    std::thread::sleep(Duration::from_millis(200));
    child.assert_alive();
    // ... to its last byte.
    origin.release_drip();
    let finished = download.wait().unwrap();
    assert!(finished.success(), "the download failed: {finished}");
    let body = std::fs::read(&out.0).unwrap();
    assert_eq!(
        body,
        common::pattern(0, common::DRIP_CHUNKS * common::DRIP_CHUNK)
    );
    let status = child.terminate_wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{status}");
    let logs = logs_of(&log);
    assert!(
        logs.contains("drained: every connection finished"),
        "{logs}"
    );
}
