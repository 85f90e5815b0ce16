//! Memory per token and per session in the memory store, at a million of each.
//!
//! Run with `cargo bench --bench memory` (about a minute on 2 cores). Targets (the issue's
//! table): at most 400 B per token (3 resources each) and 200 B per session.
//!
//! Each case runs in a fresh child process (this binary, re-executed with `child CASE N`), so
//! that one case's freed memory cannot hide the next one's growth. A child fills a store in
//! two phases and reports the growth of its resident set (`VmRSS` of `/proc/self/status`)
//! over the second phase: what the operating system actually gives the process, allocator
//! overhead, fragmentation and freed-but-kept hash tables included.
//!
//! The gateway binary links mimalloc, so each case also runs with Debian's `libmimalloc2.0`
//! preloaded (`LD_PRELOAD`; a different mimalloc build than the crate's, same design), when it
//! is installed or `VIDGATE_BENCH_MIMALLOC` names a `libmimalloc.so`: the RSS a deployment
//! sees. Allocators differ in rounding and per-block headers, not in what the store asks for.
//!
//! The live heap (bytes requested from the allocator, net) cannot be counted in-process: a
//! counting `#[global_allocator]` needs `unsafe impl GlobalAlloc`, and the crate's
//! `unsafe_code = "forbid"` (Cargo.toml `[lints]`, which covers benches too) refuses it. With
//! `VIDGATE_BENCH_HEAP=valgrind`, the parent also runs each phase under valgrind's memcheck,
//! whose "in use at exit" is exactly that count (the child exits without freeing anything),
//! and reports the difference between the two phases. That takes about 12 minutes.
//!
//! Cases:
//! - `tokens`: N tokens, each naming 3 distinct videos (32 hex characters) in `read`, with a
//!   32-hex-character id and `session_limit` set. Per token.
//! - `sessions_spread`: 1k tokens without a limit, then N sessions spread over them
//!   round-robin. Per session.
//! - `sessions_spread_lifetime`: the same with `usage_expiration_time` set, so each session
//!   is also queued for its sweep. Per session.
//! - `sessions_each`: N tokens as in `tokens`, then one session each. Per session (the owner
//!   entry each token gets with its first session is counted here).
//!
//! Each at N = 1M and 900k: `dashmap` splits a map into shards that each grow by doubling, so
//! the bytes per entry depend on where N falls between two doublings.

use std::num::NonZeroU32;
use std::process::Command;
use std::time::Instant;

mod common;
use common::ready;
use vidgate::session::OwnerKey;
use vidgate::store::{MemoryStore, SessionCreation, SessionTerms, TokenStore};
use vidgate::token::{Action, Grant, Grants, NewToken, TokenId};

const CASES: [&str; 4] = [
    "tokens",
    "sessions_spread",
    "sessions_spread_lifetime",
    "sessions_each",
];
const SIZES: [u64; 2] = [1_000_000, 900_000];
/// Where Debian's `libmimalloc2.0` puts the library.
const DEBIAN_MIMALLOC: &str = "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2";
/// Tokens the `sessions_spread` cases spread their sessions over.
const SPREAD_TOKENS: u64 = 1_000;

/// A 32-hex-character id, distinct for each `(space, n)` (splitmix64 of both).
fn hex_id(space: u64, n: u64) -> String {
    let mut state = (space << 40) ^ n;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    format!("{:016x}{:016x}", next(), next())
}

/// The resident set size of this process, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status");
    kib * 1024
}

/// Insert `n` tokens (ids from `space`), each naming 3 distinct videos in `read`, with these
/// session terms; their owner keys and terms if `keep`.
fn insert_tokens(
    store: &MemoryStore,
    space: u64,
    n: u64,
    terms: SessionTerms,
    keep: bool,
) -> Vec<(OwnerKey, SessionTerms)> {
    let mut owners = Vec::new();
    for i in 0..n {
        let videos = [0, 1, 2].map(|k| hex_id(space + 1, i * 3 + k));
        let grants = Grants::new()
            .with(Action::Read, Grant::resources(videos))
            .expect("hex ids are valid resources");
        let mut new = NewToken::new(grants);
        new.id = Some(TokenId::new(&hex_id(space, i)).expect("a hex id is a token id"));
        new.session_limit = terms.limit;
        new.usage_expiration_time = terms.lifetime;
        let token = ready(store.insert_token(new)).expect("insert");
        if keep {
            owners.push((OwnerKey::Server(token.id.clone()), SessionTerms::of(&token)));
        }
    }
    owners
}

fn create_session(store: &MemoryStore, owner: &OwnerKey, terms: SessionTerms) {
    match ready(store.create_session(owner, terms)) {
        Ok(SessionCreation::Created(_)) => {}
        other => panic!("session not created: {other:?}"),
    }
}

/// Run one case in this process: phase 1, then (unless `phases` is 1) phase 2; print the
/// resident set before and after phase 2. Exits without freeing anything (for memcheck).
fn child(case: &str, n: u64, phases: u32) -> ! {
    let store = MemoryStore::builder().sweeper(false).build();
    let started = Instant::now();
    // Tokens as a gateway's viewers hold them: a few sessions each.
    let limited = SessionTerms {
        limit: NonZeroU32::new(4),
        lifetime: None,
        keep_counter_until: None,
    };
    let unlimited = SessionTerms {
        limit: None,
        ..limited
    };
    let hour = SessionTerms {
        lifetime: NonZeroU32::new(3600),
        ..unlimited
    };
    // Phase 1: what the measured items need to exist first.
    let owners = match case {
        "tokens" => Vec::new(),
        "sessions_spread" => insert_tokens(&store, 1 << 20, SPREAD_TOKENS, unlimited, true),
        "sessions_spread_lifetime" => insert_tokens(&store, 1 << 20, SPREAD_TOKENS, hour, true),
        "sessions_each" => insert_tokens(&store, 2 << 20, n, limited, false),
        other => panic!("unknown case {other}"),
    };
    let before = rss();
    // Phase 2: the measured items.
    if phases == 2 {
        match case {
            "tokens" => {
                insert_tokens(&store, 2 << 20, n, limited, false);
            }
            "sessions_spread" | "sessions_spread_lifetime" => {
                for i in 0..n {
                    let (owner, terms) = &owners[(i % SPREAD_TOKENS) as usize];
                    create_session(&store, owner, *terms);
                }
            }
            _ => {
                for i in 0..n {
                    let id = TokenId::new(&hex_id(2 << 20, i)).expect("a token id");
                    let owner = OwnerKey::Server(id);
                    create_session(&store, &owner, limited);
                }
            }
        }
    }
    let after = rss();
    let stats = ready(store.stats()).expect("stats");
    // Whether a preloaded allocator is in place (see `run_child`).
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    println!(
        "RESULT {before} {after} {} {} {:.2} {}",
        stats.tokens,
        stats.sessions,
        started.elapsed().as_secs_f64(),
        maps.contains("libmimalloc")
    );
    // Keep everything allocated: memcheck counts what is in use at exit.
    std::process::exit(0)
}

/// What a child reported.
struct Measured {
    rss_growth: u64,
    tokens: u64,
    sessions: u64,
    seconds: f64,
    mimalloc: bool,
}

/// Run a case in a child; with `preload`, under that allocator (`LD_PRELOAD`): `malloc` and
/// `free`, which Rust's `System` allocator calls, then go to it.
fn run_child(case: &str, n: u64, preload: Option<&str>) -> Measured {
    let exe = std::env::current_exe().expect("the bench binary");
    let mut command = Command::new(exe);
    command.args(["child", case, &n.to_string(), "2"]);
    if let Some(library) = preload {
        command.env("LD_PRELOAD", library);
    }
    let out = command.output().expect("run a child");
    assert!(out.status.success(), "child {case} {n} failed: {out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no result from child {case} {n}: {stdout}"));
    let fields: Vec<&str> = line.split_whitespace().collect();
    let num = |i: usize| -> u64 { fields[i].parse().expect("a number") };
    Measured {
        rss_growth: num(1).saturating_sub(num(0)),
        tokens: num(2),
        sessions: num(3),
        seconds: fields[4].parse().expect("seconds"),
        mimalloc: fields[5] == "true",
    }
}

/// Bytes in use at exit of a child stopped after `phases` phases, as memcheck counts them.
fn heap_at_exit(case: &str, n: u64, phases: u32) -> Option<u64> {
    let exe = std::env::current_exe().ok()?;
    let out = Command::new("valgrind")
        .args([
            "--tool=memcheck",
            "--leak-check=no",
            "--undef-value-errors=no",
        ])
        .arg(exe)
        .args(["child", case, &n.to_string(), &phases.to_string()])
        .output()
        .ok()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    // "==123==     in use at exit: 1,234 bytes in 5 blocks"
    let line = stderr.lines().find(|l| l.contains("in use at exit:"))?;
    let bytes = line
        .split("in use at exit:")
        .nth(1)?
        .split(" bytes")
        .next()?;
    bytes.trim().replace(',', "").parse().ok()
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if args.first().map(String::as_str) == Some("child") {
        let case = args.get(1).expect("child CASE N PHASES");
        let n = args.get(2).and_then(|n| n.parse().ok()).expect("child N");
        let phases = args.get(3).and_then(|p| p.parse().ok()).unwrap_or(2);
        child(case, n, phases);
    }
    let with_heap = std::env::var("VIDGATE_BENCH_HEAP").as_deref() == Ok("valgrind");
    // The gateway binary links mimalloc; this bench cannot (a counting or swapped global
    // allocator here would hide the heap from memcheck), so it preloads the system's build.
    let mimalloc = std::env::var("VIDGATE_BENCH_MIMALLOC")
        .ok()
        .or_else(|| Some(DEBIAN_MIMALLOC.to_owned()))
        .filter(|path| std::path::Path::new(path).exists());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "== memory per entry (load average at start: {})",
        load.trim()
    );
    println!(
        "  {:<26} {:>9} {:>14} {:>16} {:>18} {:>16} {:>7}",
        "case", "n", "RSS growth", "RSS B/ea glibc", "RSS B/ea mimalloc", "heap B/ea exact", "secs"
    );
    // The sizes the per-entry figures are made of (the store's private entries hold these).
    println!(
        "  sizes: AuthToken {} B, TokenId {} B, OwnerKey {} B, SessionId {} B (align {}), \
         Option<Timestamp> {} B, Vec<String> {} B, dashmap shards {}",
        size_of::<vidgate::token::AuthToken>(),
        size_of::<TokenId>(),
        size_of::<OwnerKey>(),
        size_of::<vidgate::session::SessionId>(),
        align_of::<vidgate::session::SessionId>(),
        size_of::<Option<vidgate::clock::Timestamp>>(),
        size_of::<Vec<String>>(),
        // dashmap's default: four per core, rounded up to a power of two.
        (std::thread::available_parallelism().map_or(1, |n| n.get()) * 4).next_power_of_two(),
    );
    let started = Instant::now();
    for case in CASES {
        for n in SIZES {
            let m = run_child(case, n, None);
            let mi = mimalloc
                .as_deref()
                .map(|path| run_child(case, n, Some(path)));
            assert!(!m.mimalloc, "the plain child runs on glibc's malloc");
            let mi_each = match &mi {
                Some(mi) if mi.mimalloc => format!("{:.0}", mi.rss_growth as f64 / n as f64),
                Some(_) => "not loaded".to_owned(),
                None => "-".to_owned(),
            };
            let expected = match case {
                "tokens" => (n, 0),
                "sessions_each" => (n, n),
                _ => (SPREAD_TOKENS, n),
            };
            assert_eq!((m.tokens, m.sessions), expected, "{case} {n}");
            let heap = if with_heap {
                // The two phases' runs are independent: one per core.
                let (one, two) = std::thread::scope(|scope| {
                    let one = scope.spawn(|| heap_at_exit(case, n, 1));
                    let two = heap_at_exit(case, n, 2);
                    (one.join().ok().flatten(), two)
                });
                match (one, two) {
                    (Some(one), Some(two)) => Some(two.saturating_sub(one)),
                    _ => None,
                }
            } else {
                None
            };
            let heap_each = match heap {
                Some(h) => format!("{:.0}", h as f64 / n as f64),
                None => "-".to_owned(),
            };
            println!(
                "  {:<26} {:>9} {:>14} {:>16.0} {:>18} {:>16} {:>7.1}",
                case,
                n,
                m.rss_growth,
                m.rss_growth as f64 / n as f64,
                mi_each,
                heap_each,
                m.seconds
            );
        }
    }
    if !with_heap {
        println!("  (exact heap: set VIDGATE_BENCH_HEAP=valgrind to count it under memcheck)");
    }
    if mimalloc.is_none() {
        println!(
            "  (mimalloc: install Debian's libmimalloc2.0 or set VIDGATE_BENCH_MIMALLOC to a \
             libmimalloc.so)"
        );
    }
    println!("(memory bench took {:.1?})", started.elapsed());
}
