//! The `vidgate` command: parse the command line, set up logging, load the config, run.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use std::io::{IsTerminal as _, Read as _};
use tracing_subscriber::EnvFilter;

use vidgate::client_token::{cli, Format};
use vidgate::clock::{Clock as _, SystemClock};
use vidgate::config::{Config, LogFormat, Secret, UpstreamUrl};
use vidgate::demo::DemoOrigin;
use vidgate::server::{self, Gateway, ServerError};
use vidgate::store::TokenStore;
use vidgate::token::NewToken;

/// mimalloc: the gateway allocates small, short-lived buffers on every request, which glibc's
/// allocator serves noticeably slower (measured with bench/load.sh).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// vidgate: an authorization gateway for video hosts.
///
/// It stands in front of a video origin and lets a request through only when the auth
/// token it carries grants the action the request performs on the video it names.
#[derive(Parser)]
#[command(name = "vidgate", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `--config PATH`, shared by the commands that read a configuration file.
#[derive(clap::Args)]
struct ConfigPath {
    /// The configuration file.
    #[arg(
        long,
        short,
        default_value = "config/vidgate.toml",
        env = "VIDGATE_CONFIG"
    )]
    config: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway in front of `proxy.upstream`: the proxy and the admin API.
    Serve {
        #[command(flatten)]
        config: ConfigPath,
    },
    /// Check a configuration file (and every file and variable it names), then exit:
    /// 0 when it is valid, 2 with the line and key at fault when it is not.
    CheckConfig {
        #[command(flatten)]
        config: ConfigPath,
    },
    /// Mint and inspect client-side tokens (JWT, Ziggeo format) with the configured keys.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Try vidgate on a machine with nothing else running: a built-in sample origin, the
    /// gateway in front of it, a sample token, and the commands to try printed.
    Demo {
        /// Where the proxy listens (falls back to a free port if this one is taken).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Where the admin API listens (falls back to a free port if this one is taken).
        #[arg(long, default_value = "127.0.0.1:9090")]
        admin_listen: std::net::SocketAddr,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Mint a client token signed (JWT) or encrypted (Ziggeo format) with a configured key,
    /// to test a setup. Prints the token; refuses to print one the gateway would refuse.
    ///
    /// Example: vidgate token mint --grants '{"read": {"resources": ["v1"]}}' --session-limit 2
    Mint {
        #[command(flatten)]
        config: ConfigPath,
        /// The token format.
        #[arg(long, value_enum, default_value = "jwt")]
        format: MintFormat,
        /// JWT: the kid of the key to sign with (default: the only key that can sign).
        #[arg(long)]
        kid: Option<String>,
        /// Claims to start from, as a JSON object; the flags below override them.
        #[arg(long, value_name = "JSON")]
        claims: Option<String>,
        /// The grants, as JSON, e.g. '{"read": "all"}'.
        #[arg(long, value_name = "JSON")]
        grants: Option<String>,
        /// Expire after this long, e.g. "15m" (default: 1h, unless --claims sets an expiry).
        #[arg(long, value_name = "DURATION")]
        expires_in: Option<humantime::Duration>,
        /// At most this many sessions.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        session_limit: Option<u32>,
        /// Each session lasts this many seconds.
        #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u32).range(1..))]
        usage_expiration_time: Option<u32>,
        /// The JWT's jti, or the Ziggeo token's nonce: the id its sessions are counted
        /// under (default: a random one).
        #[arg(long, alias = "nonce", value_name = "ID")]
        jti: Option<String>,
    },
    /// Decode and verify a client token as the gateway would now, and say in one line why it
    /// would be accepted or refused. Exits 0 when accepted, 1 when refused, 2 on a bad config.
    Inspect {
        #[command(flatten)]
        config: ConfigPath,
        /// The token; "-" reads it from standard input (keeps it out of the process list).
        token: String,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum MintFormat {
    /// A compact JWS signed with a [[client_tokens.jwt_keys]] key.
    Jwt,
    /// The Ziggeo SDKs' encrypted format, with [client_tokens.ziggeo].
    Ziggeo,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig {
            config: ConfigPath { config },
        } => match server::check_config(&config) {
            Ok(_) => {
                println!("{}: ok", config.display());
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("{error}");
                ExitCode::from(2)
            }
        },
        Command::Serve {
            config: ConfigPath { config: path },
        } => {
            let config = match Config::load(&path) {
                Ok(config) => config,
                Err(error) => {
                    eprintln!("{error}");
                    return ExitCode::from(2);
                }
            };
            init_logging(config.log.format);
            let served = runtime().map_err(Served::Failed).and_then(|rt| {
                rt.block_on(serve(config, path))
                    .map_err(|error| match error {
                        // What check-config would say about the same file, as it says it.
                        ServerError::Config(error) => Served::Refused(error.to_string()),
                        other => Served::Failed(other.into()),
                    })
            });
            match served {
                Ok(()) => ExitCode::SUCCESS,
                Err(Served::Refused(message)) => {
                    eprintln!("{message}");
                    ExitCode::from(2)
                }
                Err(Served::Failed(error)) => report(Err(error)),
            }
        }
        Command::Token(command) => token(command),
        Command::Demo {
            listen,
            admin_listen,
        } => {
            init_logging(LogFormat::Text);
            report(runtime().and_then(|rt| rt.block_on(demo(listen, admin_listen))))
        }
    }
}

/// Why `vidgate serve` stopped with an error: a config it refuses (exit 2, as `check-config`),
/// or anything else (exit 1).
enum Served {
    Refused(String),
    Failed(anyhow::Error),
}

/// `vidgate token mint` and `vidgate token inspect`.
fn token(command: TokenCommand) -> ExitCode {
    let (TokenCommand::Mint { config, .. } | TokenCommand::Inspect { config, .. }) = &command;
    let tokens = match Config::load(&config.config).and_then(|c| server::client_tokens(&c)) {
        Ok(tokens) => tokens,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    let now = SystemClock.now();
    match command {
        TokenCommand::Mint {
            format,
            kid,
            claims,
            grants,
            expires_in,
            session_limit,
            usage_expiration_time,
            jti,
            ..
        } => {
            let minted =
                mint_options(format, claims, grants).and_then(|(format, claims, grants)| {
                    let options = cli::MintOptions {
                        format,
                        kid,
                        claims,
                        grants,
                        expires_in: expires_in.map(Into::into),
                        session_limit,
                        usage_expiration_time,
                        nonce: jti,
                    };
                    cli::mint(&tokens, options, now)
                });
            match minted {
                Ok(token) => {
                    println!("{token}");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("vidgate token mint: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        TokenCommand::Inspect { token, .. } => {
            let token = if token == "-" {
                let mut text = String::new();
                if let Err(error) = std::io::stdin().read_to_string(&mut text) {
                    eprintln!("vidgate token inspect: cannot read standard input: {error}");
                    return ExitCode::from(2);
                }
                text
            } else {
                token
            };
            let inspection = cli::inspect(&tokens, &token, now);
            println!("{}", inspection.line);
            if inspection.accepted {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

type MintJson = (
    Format,
    serde_json::Map<String, serde_json::Value>,
    Option<serde_json::Value>,
);

/// Parse `--claims` and `--grants`.
fn mint_options(
    format: MintFormat,
    claims: Option<String>,
    grants: Option<String>,
) -> Result<MintJson, String> {
    let format = match format {
        MintFormat::Jwt => Format::Jwt,
        MintFormat::Ziggeo => Format::Ziggeo,
    };
    let claims = match claims {
        None => serde_json::Map::new(),
        Some(text) => match serde_json::from_str(&text) {
            Ok(serde_json::Value::Object(map)) => map,
            Ok(_) => return Err("--claims must be a JSON object".into()),
            Err(e) => return Err(format!("--claims is not JSON: {e}")),
        },
    };
    let grants = grants
        .map(|text| serde_json::from_str(&text).map_err(|e| format!("--grants is not JSON: {e}")))
        .transpose()?;
    Ok((format, claims, grants))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("vidgate: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr (stdout is for what a command prints: the demo's instructions, a minted
/// token), in colour only when stderr is a terminal. `RUST_LOG` tunes the filter; the config
/// picks text or JSON lines.
fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn serve(config: Config, path: PathBuf) -> Result<(), ServerError> {
    // Listening for SIGHUP before anything else: its default action would end the process.
    #[cfg(unix)]
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|e| ServerError::Listener(format!("cannot listen for SIGHUP: {e}")))?;
    let gateway = Gateway::bind(config).await?;
    #[cfg(unix)]
    tokio::spawn(reload_on_sighup(hangups, gateway.reloader(), path));
    #[cfg(not(unix))]
    let _ = path;
    gateway.run(shutdown_signal()).await?;
    Ok(())
}

/// On every SIGHUP, reload the configuration file; one that does not load changes nothing
/// (the reloader logs why and counts it).
#[cfg(unix)]
async fn reload_on_sighup(
    mut hangups: tokio::signal::unix::Signal,
    reloader: vidgate::server::Reloader,
    path: PathBuf,
) {
    while hangups.recv().await.is_some() {
        tracing::info!(config = %path.display(), "SIGHUP received: reloading the configuration");
        let (reloader, path) = (reloader.clone(), path.clone());
        // Reading files and building TLS roots blocks: off the request threads.
        let _ = tokio::task::spawn_blocking(move || reloader.reload_from(&path)).await;
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("Ctrl-C received"),
        _ = terminate => tracing::info!("SIGTERM received"),
    }
}

async fn demo(
    listen: std::net::SocketAddr,
    admin_listen: std::net::SocketAddr,
) -> anyhow::Result<()> {
    let private_key = hex_key();
    let (origin, _origin_task) = DemoOrigin::with_samples()
        .spawn()
        .await
        .context("cannot start the demo origin")?;
    let mut config = Config::default();
    config.proxy.upstream = Some(
        format!("http://{origin}")
            .parse::<UpstreamUrl>()
            .map_err(anyhow::Error::msg)?,
    );
    config.admin.app_token = Some("demo-app".into());
    config.admin.private_key = Some(Secret::new(private_key.clone()));
    config.proxy.listen = free_or_any(listen);
    config.admin.listen = free_or_any(admin_listen);
    let gateway = Gateway::bind(config).await?;
    let store = gateway.store().clone();
    let token = store
        .insert_token(NewToken::from_json(
            r#"{"grants": {"read": {"resources": ["welcome", "big-buck-bunny"]}},
                "session_limit": 3, "usage_expiration_time": 3600}"#,
        )?)
        .await?;
    let proxy = format!("http://{}", gateway.proxy_addr());
    let admin = format!("http://{}", gateway.admin_addr());
    let t = &token.id;
    println!(
        "\nvidgate demo is running.\n\
         \n  proxy   {proxy}   (in front of the demo origin at {upstream})\
         \n  admin   {admin}   (user demo-app, private key {private_key})\
         \n\nA sample token {t} may read the videos `welcome` and `big-buck-bunny`,\
         \nin at most 3 sessions of one hour each. Try:\n\
         \n  allowed  curl -i '{proxy}/v1/videos/welcome?server_auth={t}'\
         \n  stream   curl -s -r 0-99 '{proxy}/v1/videos/welcome/stream?server_auth={t}' | wc -c\
         \n  denied   curl -i '{proxy}/v1/videos/welcome'                      # 401 missing_token\
         \n  denied   curl -i '{proxy}/v1/videos/other?server_auth={t}'        # 403 grant_missing\
         \n  admin    curl -s -u demo-app:{private_key} '{admin}/v1/authtokens'\
         \n  create   curl -s -u demo-app:{private_key} -H 'content-type: application/json' \\\
         \n                -d '{{\"grants\": {{\"read\": \"all\"}}}}' '{admin}/v1/authtokens'\
         \n  metrics  curl -s '{admin}/metrics' | grep ^vidgate_\
         \n\nEach allowed request opens a session (see X-Vidgate-Session); add &session=<id> to reuse it.\
         \nCtrl-C stops the demo.\n",
        upstream = gateway.upstream(),
    );
    gateway.run(shutdown_signal()).await?;
    Ok(())
}

/// `addr` if it can be bound now, else the same IP on a free port.
fn free_or_any(addr: std::net::SocketAddr) -> std::net::SocketAddr {
    match std::net::TcpListener::bind(addr) {
        Ok(_) => addr,
        Err(_) => std::net::SocketAddr::new(addr.ip(), 0),
    }
}

/// A random admin key for the demo.
fn hex_key() -> String {
    let mut bytes = [0u8; 12];
    let _ = getrandom::getrandom(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
