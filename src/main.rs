//! The `vidgate` command. The gateway itself (`vidgate serve`) arrives with the proxy; for
//! now the binary reports its version and points at the library.

use std::process::ExitCode;

const HELP: &str = "\
vidgate: an authorization gateway for video hosts

Usage: vidgate [--help | --version]

The token model, the decision, sessions and the in-memory store are available as the
`vidgate` library; `cargo run --example quickstart` runs them end to end.
";

fn main() -> ExitCode {
    let arg = std::env::args().nth(1);
    match arg.as_deref() {
        None | Some("-h" | "--help" | "help") => {
            print!("{HELP}");
            ExitCode::SUCCESS
        }
        Some("-V" | "--version") => {
            println!("vidgate {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("vidgate: unknown argument {other:?}\n\n{HELP}");
            ExitCode::from(2)
        }
    }
}
