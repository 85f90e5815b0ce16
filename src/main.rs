//! The `vidgate` command: parse the command line, set up logging, load the config, run.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use vidgate::config::{Config, LogFormat, Secret};
use vidgate::server::Gateway;
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
    /// Run the gateway: the proxy and the admin API.
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig {
            config: ConfigPath { config },
        } => match Config::load(&config) {
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
            config: ConfigPath { config },
        } => {
            let config = match Config::load(&config) {
                Ok(config) => config,
                Err(error) => {
                    eprintln!("{error}");
                    return ExitCode::from(2);
                }
            };
            init_logging(config.log.format);
            report(runtime().and_then(|rt| rt.block_on(serve(config))))
        }
        Command::Demo {
            listen,
            admin_listen,
        } => {
            init_logging(LogFormat::Text);
            report(runtime().and_then(|rt| rt.block_on(demo(listen, admin_listen))))
        }
    }
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

/// `RUST_LOG` tunes the filter; the config picks text or JSON lines.
fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let gateway = Gateway::bind(config).await?;
    gateway.run(shutdown_signal()).await?;
    Ok(())
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
    let mut config = Config::default();
    config.proxy.upstream = None;
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
         \n  proxy   {proxy}   (in front of the built-in demo origin at {upstream})\
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
