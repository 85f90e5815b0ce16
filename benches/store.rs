//! The memory store on the gateway's hot path, under contention, and while a sweep runs.
//!
//! Run with `cargo bench --bench store` (about a minute on 2 cores); a section's name as an
//! argument (`cargo bench --bench store -- sweep`) runs only that section. It prints:
//!
//! 1. **hot path**: what the gateway does for each request that carries a server token and a
//!    session — one `store.lookup(token, session)`, build the owner key, read the clock,
//!    `decide(...)` — over 100k tokens (3 resources each, `session_limit` set) with one session
//!    each. One thread; two threads contending on the same store with random picks; two
//!    threads on the *same* token and session. Target: p50 at most 1 µs. Two `part:` lines
//!    time `store.token()` and `store.session()` alone on random picks; two `dispatch:` lines
//!    run the same path through the gateway's [`Store`] handle (a boxed future per call)
//!    instead of the `MemoryStore` itself (static dispatch).
//! 2. **session_owned**: the same path for tokens granting `read` on `session_owned`, judged on
//!    a session that owns 3 videos (the session's owned list is copied out of the store).
//! 3. **create_session**: throughput of session creation, and of `SessionId::generate` alone.
//! 4. **growth**: hot-path lookups on other tokens while one token without a session limit
//!    gains 1.1M sessions (how long a creation can hold the locks lookups need).
//! 5. **sweep**: 1M sessions past their end and retention, removed by `store.sweep()` on a
//!    current-thread Tokio runtime while another OS thread does hot-path lookups on live
//!    tokens and sessions. Target: worst lookup latency during the sweep at most 1 ms.
//!
//! Latency is measured with `Instant::now()` around each single operation unless a line says
//! `batch16` (one reading around 16 operations, divided by 16: the per-op timer overhead,
//! printed first, is then spread out). Per-op readings include one timer overhead.
//! ops/s is the number of threads over the mean latency (what back-to-back operations would
//! reach; the per-op timer overhead is included, the loading of each request is not). A request's token
//! id, session id and video are copied into a reused buffer before its timer starts, as they
//! would sit in a parsed request: the fixture's own cache misses are not counted.
//!
//! The memory store's futures never pend, so they are driven by polling them once with a
//! no-op waker ([`ready`]); a `Pending` would be a bug and panics.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

mod common;
use common::ready;
use vidgate::clock::{Clock, ManualClock, SystemClock, Timestamp};
use vidgate::policy::{
    decide, Credential, Decision, PresentedSession, SessionSource, SessionUse, TokenCheck,
};
use vidgate::session::{OwnerKey, SessionId};
use vidgate::store::{Lookup, MemoryStore, SessionCreation, SessionTerms, Store, TokenStore};
use vidgate::token::{Action, Grant, Grants, NewToken, TokenId};

/// Tokens (each with one session) in the hot-path store.
const TOKENS: u64 = 100_000;
/// Timed operations per thread and per hot-path case.
const OPS: usize = 1_000_000;
/// Untimed operations before each case, to warm caches and branch predictors.
const WARMUP: usize = 100_000;
/// Sessions removed by the sweep.
const SWEPT_SESSIONS: u64 = 1_000_000;
/// Rounds of the sweep case (each on a fresh store).
const SWEEP_ROUNDS: usize = 3;
/// How long the sweep case's lookups run beside a spinning thread, for comparison.
const QUIET: Duration = Duration::from_millis(600);
/// Sessions created on one token while lookups run.
const GROWN_SESSIONS: usize = 1_100_000;
/// At most this many lookup readings are kept (the worst is always kept).
const LOOKUP_READINGS: usize = 10_000_000;

// ---------------------------------------------------------------------------------------------
// Helpers

/// splitmix64: a fast, seedable generator for picks and ids (no dependency needed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The `i`-th random index below `n` of the sequence `seed`: a pure function, so threads
/// need no shared generator.
fn pick(seed: u64, i: usize, n: usize) -> usize {
    Rng(seed << 32 ^ i as u64).below(n)
}

/// A 32-hex-character id, distinct for each `(space, n)`.
fn hex_id(space: u64, n: u64) -> String {
    let mut rng = Rng((space << 40) ^ n);
    format!("{:016x}{:016x}", rng.next(), rng.next())
}

fn token_id(space: u64, n: u64) -> TokenId {
    TokenId::new(&hex_id(space, n)).expect("a hex id is a token id")
}

fn read_grants(videos: &[String]) -> Grants {
    Grants::new()
        .with(Action::Read, Grant::resources(videos.iter().cloned()))
        .expect("hex ids are valid resources")
}

fn created(outcome: Result<SessionCreation, vidgate::store::StoreError>) -> SessionId {
    match outcome {
        Ok(SessionCreation::Created(session)) => session.id,
        other => panic!("session not created: {other:?}"),
    }
}

/// What one request presents: a token id (as the request carries it), a session, a video.
struct Request {
    token: String,
    session: SessionId,
    video: String,
}

/// One hot-path request as the gateway runs it: the one lookup of its token and session, then
/// the decision.
fn serve<St: TokenStore>(store: &St, clock: &dyn Clock, request: &Local) -> Decision {
    let found = ready(store.lookup(Lookup {
        token: Some(&request.token),
        session: Some(SessionId::from_bits(request.session)),
    }));
    let owner = match &found.token {
        Ok(Some(t)) => Some(OwnerKey::Server(t.token.id.clone())),
        _ => None,
    };
    let token = match (&found.token, &owner) {
        (Ok(Some(t)), Some(owner)) => TokenCheck::Found(Credential {
            token: &t.token,
            owner,
        }),
        (Ok(_), _) => TokenCheck::Unknown,
        (Err(_), _) => TokenCheck::Unavailable,
    };
    let presented = match &found.session {
        Ok(session) => PresentedSession::Some {
            found: session.as_ref(),
            source: SessionSource::Explicit,
        },
        Err(_) => PresentedSession::Unavailable,
    };
    decide(
        token,
        presented,
        Action::Read,
        Some(&request.video),
        clock.now(),
    )
}

/// Percentiles of a set of nanosecond readings.
struct Summary {
    mean: f64,
    p50: u64,
    p99: u64,
    p999: u64,
    max: u64,
}

impl Summary {
    fn of(readings: &mut [u64]) -> Summary {
        assert!(!readings.is_empty(), "no readings");
        readings.sort_unstable();
        let at = |q: f64| readings[((readings.len() - 1) as f64 * q).round() as usize];
        Summary {
            mean: readings.iter().sum::<u64>() as f64 / readings.len() as f64,
            p50: at(0.50),
            p99: at(0.99),
            p999: at(0.999),
            max: readings[readings.len() - 1],
        }
    }
}

fn header() {
    println!(
        "  {:<44} {:>9} {:>9} {:>9} {:>11} {:>12}",
        "case", "p50 ns", "p99 ns", "p99.9 ns", "max ns", "ops/s"
    );
}

/// One line of results; ops/s is `threads` over the mean latency.
fn row(name: &str, s: &Summary, threads: usize) {
    println!(
        "  {:<44} {:>9} {:>9} {:>9} {:>11} {:>12.0}",
        name,
        s.p50,
        s.p99,
        s.p999,
        s.max,
        threads as f64 * 1e9 / s.mean
    );
}

/// A request's credentials as the gateway holds them once it has parsed the request: copied
/// out of the fixture before the timer starts, so that the fixture's own cache misses are not
/// counted (a real request's bytes are in cache when the gateway looks them up).
#[derive(Default)]
struct Local {
    token: String,
    session: u128,
    video: String,
}

impl Local {
    fn load(&mut self, request: &Request) {
        self.token.clear();
        self.token.push_str(&request.token);
        self.session = request.session.to_bits();
        self.video.clear();
        self.video.push_str(&request.video);
    }
}

/// Run `op` `OPS` times, timing each call (inputs loaded by `load`, untimed); readings in ns.
fn time_each(mut load: impl FnMut(usize, &mut Local), mut op: impl FnMut(&Local)) -> Vec<u64> {
    let mut local = Local::default();
    for i in 0..WARMUP {
        load(i, &mut local);
        op(&local);
    }
    let mut readings = Vec::with_capacity(OPS);
    for i in 0..OPS {
        load(WARMUP + i, &mut local);
        let t = Instant::now();
        op(&local);
        readings.push(t.elapsed().as_nanos() as u64);
    }
    readings
}

/// Run `op` `OPS` times in batches of 16, one reading (divided by 16) per batch.
fn time_batch16(mut load: impl FnMut(usize, &mut Local), mut op: impl FnMut(&Local)) -> Vec<u64> {
    let mut locals: [Local; 16] = std::array::from_fn(|_| Local::default());
    for i in 0..WARMUP {
        load(i, &mut locals[0]);
        op(&locals[0]);
    }
    let mut readings = Vec::with_capacity(OPS / 16);
    for batch in 0..OPS / 16 {
        for (k, local) in locals.iter_mut().enumerate() {
            load(WARMUP + batch * 16 + k, local);
        }
        let t = Instant::now();
        for local in &locals {
            op(local);
        }
        readings.push(t.elapsed().as_nanos() as u64 / 16);
    }
    readings
}

/// Run `op` on `threads` threads at once, each timing every call; all readings.
fn contend(
    threads: usize,
    load: impl Fn(usize, usize, &mut Local) + Sync,
    op: impl Fn(usize, &Local) + Sync,
) -> Vec<u64> {
    let barrier = Barrier::new(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let (barrier, load, op) = (&barrier, &load, &op);
                scope.spawn(move || {
                    barrier.wait();
                    time_each(|i, local| load(thread, i, local), |local| op(thread, local))
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("bench thread panicked"))
            .collect()
    })
}

// ---------------------------------------------------------------------------------------------
// 1–2. The hot path

/// `n` tokens granting `read` on 3 videos, `session_limit` 4, one session each.
fn populate_resources(store: &MemoryStore, space: u64, n: u64) -> Vec<Request> {
    (0..n)
        .map(|i| {
            let videos: Vec<String> = (0..3).map(|k| hex_id(space + 1, i * 3 + k)).collect();
            let mut new = NewToken::new(read_grants(&videos));
            new.id = Some(token_id(space, i));
            new.session_limit = NonZeroU32::new(4);
            let token = ready(store.insert_token(new)).expect("insert");
            let owner = OwnerKey::Server(token.id.clone());
            let session = created(ready(
                store.create_session(&owner, SessionTerms::of(&token)),
            ));
            Request {
                token: token.id.to_string(),
                session,
                // The last video: a full scan of the token's resources.
                video: videos[2].clone(),
            }
        })
        .collect()
}

/// `n` tokens granting `read` on `session_owned`, each with a session that owns 3 videos.
fn populate_session_owned(store: &MemoryStore, space: u64, n: u64) -> Vec<Request> {
    (0..n)
        .map(|i| {
            let grants = Grants::new()
                .with(Action::Read, Grant::session_owned())
                .expect("valid grant");
            let mut new = NewToken::new(grants);
            new.id = Some(token_id(space, i));
            let token = ready(store.insert_token(new)).expect("insert");
            let owner = OwnerKey::Server(token.id.clone());
            let session = created(ready(
                store.create_session(&owner, SessionTerms::of(&token)),
            ));
            let videos: Vec<String> = (0..3).map(|k| hex_id(space + 1, i * 3 + k)).collect();
            for video in &videos {
                assert!(ready(store.record_owned(session, video)).expect("record"));
            }
            Request {
                token: token.id.to_string(),
                session,
                video: videos[2].clone(),
            }
        })
        .collect()
}

/// Load the `i`-th random request of `set` (sequence `seed`).
fn random(set: &[Request], seed: u64) -> impl Fn(usize, &mut Local) + '_ {
    move |i, local| local.load(&set[pick(seed, i, set.len())])
}

/// Load the first request of `set`, every time.
fn first(set: &[Request]) -> impl Fn(usize, &mut Local) + '_ {
    move |_, local| local.load(&set[0])
}

fn hot_path() {
    println!("== hot path: token + session lookup + decision ({TOKENS} tokens, 3 resources, one session each)");
    let store = MemoryStore::builder().sweeper(false).build();
    let started = Instant::now();
    let requests = populate_resources(&store, 1 << 20, TOKENS);
    let owned = populate_session_owned(&store, 2 << 20, TOKENS / 10);
    println!(
        "  (populated {} tokens and sessions in {:.2?})",
        requests.len() + owned.len(),
        started.elapsed()
    );
    let clock = SystemClock;
    let mut local = Local::default();
    for r in requests.iter().take(100).chain(owned.iter().take(100)) {
        local.load(r);
        assert_eq!(
            serve(&store, &clock, &local),
            Decision::Allow(SessionUse::Existing(r.session)),
            "the hot path must allow"
        );
    }

    // The timer's own cost, paid once by every per-op reading.
    let mut timer = time_each(|_, _| {}, |_| {});
    let timer = Summary::of(&mut timer);
    println!(
        "  timer overhead (empty op): p50 {} ns, p99 {} ns",
        timer.p50, timer.p99
    );
    header();
    let serve = |local: &Local| {
        black_box(serve(&store, &clock, local));
    };
    let mut r = time_each(random(&requests, 1), serve);
    row("1 thread, random token", &Summary::of(&mut r), 1);
    let mut r = time_batch16(random(&requests, 1), serve);
    row("1 thread, random token (batch16)", &Summary::of(&mut r), 1);
    // The same store behind the gateway's `Store` handle: every call a boxed future.
    let handle = Store::new(store.clone());
    let through_handle = |local: &Local| {
        black_box(self::serve(&handle, &clock, local));
    };
    let mut r = time_each(random(&requests, 1), through_handle);
    row("  dispatch: through Store, random", &Summary::of(&mut r), 1);
    let mut r = time_batch16(random(&requests, 1), through_handle);
    row(
        "  dispatch: through Store (batch16)",
        &Summary::of(&mut r),
        1,
    );
    // The parts, to see where a random request's time goes.
    let mut r = time_each(random(&requests, 1), |local| {
        black_box(ready(store.token(&local.token)).ok().flatten());
    });
    row(
        "  part: store.token() alone, random",
        &Summary::of(&mut r),
        1,
    );
    let mut r = time_each(random(&requests, 1), |local| {
        black_box(
            ready(store.session(SessionId::from_bits(local.session)))
                .ok()
                .flatten(),
        );
    });
    row(
        "  part: store.session() alone, random",
        &Summary::of(&mut r),
        1,
    );
    let mut r = time_each(first(&requests), serve);
    row("1 thread, one token", &Summary::of(&mut r), 1);
    let mut r = contend(
        2,
        |thread, i, local| random(&requests, thread as u64 + 1)(i, local),
        |_, local| serve(local),
    );
    row("2 threads, random tokens", &Summary::of(&mut r), 2);
    let mut r = contend(
        2,
        |_, i, local| first(&requests)(i, local),
        |_, local| serve(local),
    );
    row("2 threads, same token and session", &Summary::of(&mut r), 2);

    println!();
    println!(
        "== session_owned: {} tokens granting read on session_owned, sessions owning 3 videos",
        owned.len()
    );
    header();
    let mut r = time_each(random(&owned, 1), serve);
    row("1 thread, random token", &Summary::of(&mut r), 1);
    let mut r = time_each(first(&owned), serve);
    row("1 thread, one token", &Summary::of(&mut r), 1);
    let mut r = contend(
        2,
        |thread, i, local| random(&owned, thread as u64 + 1)(i, local),
        |_, local| serve(local),
    );
    row("2 threads, random tokens", &Summary::of(&mut r), 2);
}

// ---------------------------------------------------------------------------------------------
// 3. Session creation

/// `n` tokens without a session limit; their owner keys and session terms.
fn unlimited_tokens(store: &MemoryStore, space: u64, n: u64) -> Vec<(OwnerKey, SessionTerms)> {
    (0..n)
        .map(|i| {
            let videos: Vec<String> = (0..3).map(|k| hex_id(space + 1, i * 3 + k)).collect();
            let mut new = NewToken::new(read_grants(&videos));
            new.id = Some(token_id(space, i));
            let token = ready(store.insert_token(new)).expect("insert");
            (OwnerKey::Server(token.id.clone()), SessionTerms::of(&token))
        })
        .collect()
}

fn create_sessions() {
    println!();
    println!("== create_session (server tokens without a session limit, fresh store per case)");
    header();
    let nothing = |_: usize, _: &mut Local| {};

    let mut r = time_each(nothing, |_| {
        black_box(SessionId::generate());
    });
    row("SessionId::generate alone", &Summary::of(&mut r), 1);

    let store = MemoryStore::builder().sweeper(false).build();
    let owners = unlimited_tokens(&store, 3 << 20, 10_000);
    let mut n = 0;
    let mut r = time_each(nothing, |_| {
        let (owner, terms) = &owners[n % owners.len()];
        n += 1;
        black_box(created(ready(store.create_session(owner, *terms))));
    });
    row("1 thread, 10k tokens round-robin", &Summary::of(&mut r), 1);
    drop(store);

    let store = MemoryStore::builder().sweeper(false).build();
    let owners = unlimited_tokens(&store, 3 << 20, 10_000);
    let mut r = contend(
        2,
        |thread, i, local| local.session = (i * 2 + thread) as u128,
        |_, local| {
            let (owner, terms) = &owners[local.session as usize % owners.len()];
            black_box(created(ready(store.create_session(owner, *terms))));
        },
    );
    row("2 threads, 10k tokens, distinct", &Summary::of(&mut r), 2);
    drop(store);

    let store = MemoryStore::builder().sweeper(false).build();
    let owners = unlimited_tokens(&store, 3 << 20, 1);
    let mut r = contend(
        2,
        |_, _, _| {},
        |_, _| {
            let (owner, terms) = &owners[0];
            black_box(created(ready(store.create_session(owner, *terms))));
        },
    );
    row("2 threads, same token", &Summary::of(&mut r), 2);
}

// ---------------------------------------------------------------------------------------------
// 4–5. Lookups while the store works: one token's sessions growing, and a sweep

/// Hot-path lookups on random `requests` until `stop`, each timed: the readings (at most
/// `cap`), the worst reading and the number of lookups.
fn lookups_until(
    stop: &AtomicBool,
    store: &MemoryStore,
    requests: &[Request],
    cap: usize,
) -> (Vec<u64>, u64, usize) {
    let clock = SystemClock;
    let mut local = Local::default();
    let mut readings = Vec::with_capacity(cap);
    let (mut worst, mut count) = (0, 0);
    while !stop.load(Ordering::Relaxed) {
        local.load(&requests[pick(7, count, requests.len())]);
        let t = Instant::now();
        black_box(serve(store, &clock, &local));
        let ns = t.elapsed().as_nanos() as u64;
        worst = worst.max(ns);
        count += 1;
        if readings.len() < cap {
            readings.push(ns);
        }
    }
    (readings, worst, count)
}

/// Run `work` on this thread while another thread does timed lookups; the work's result and
/// duration, and the lookups' summary (its max is the worst of all lookups) and count.
fn under_lookups<T>(
    store: &MemoryStore,
    requests: &[Request],
    work: impl FnOnce() -> T,
) -> (T, Duration, Summary, usize, usize) {
    let stop = AtomicBool::new(false);
    let barrier = Barrier::new(2);
    std::thread::scope(|scope| {
        let lookups = scope.spawn(|| {
            barrier.wait();
            lookups_until(&stop, store, requests, LOOKUP_READINGS)
        });
        barrier.wait();
        let t = Instant::now();
        let out = work();
        let took = t.elapsed();
        stop.store(true, Ordering::Relaxed);
        let (mut readings, worst, count) = lookups.join().expect("lookup thread panicked");
        let over_1ms = readings.iter().filter(|&&ns| ns > 1_000_000).count();
        let mut summary = Summary::of(&mut readings);
        summary.max = worst;
        (out, took, summary, count, over_1ms)
    })
}

fn session_growth() {
    println!();
    println!("== lookups while one token without a session limit gains {GROWN_SESSIONS} sessions");
    let store = MemoryStore::builder().sweeper(false).build();
    let live = populate_resources(&store, 8 << 20, TOKENS);
    let owners = unlimited_tokens(&store, 9 << 20, 1);
    let (owner, terms) = &owners[0];

    let (creations, took, lookups, count, over) = under_lookups(&store, &live, || {
        let mut readings = Vec::with_capacity(GROWN_SESSIONS);
        for _ in 0..GROWN_SESSIONS {
            let t = Instant::now();
            black_box(created(ready(store.create_session(owner, *terms))));
            readings.push(t.elapsed().as_nanos() as u64);
        }
        readings
    });
    // Which creations were slow says why: the owner's session list is pruned (a lookup per
    // listed session) each time it is full, at powers of two.
    let mut slowest: Vec<(u64, usize)> = creations
        .iter()
        .enumerate()
        .map(|(i, &ns)| (ns, i + 1))
        .collect();
    slowest.sort_unstable_by(|a, b| b.cmp(a));
    let slowest: Vec<String> = slowest
        .iter()
        .take(5)
        .map(|(ns, n)| format!("#{n} {:.1} ms", *ns as f64 / 1e6))
        .collect();
    println!(
        "  {GROWN_SESSIONS} creations took {:.2} s",
        took.as_secs_f64()
    );
    println!(
        "  slowest creations (n-th session of the token): {}",
        slowest.join(", ")
    );
    let pruning: Vec<String> = [1 << 18, 1 << 19, 1 << 20]
        .iter()
        .filter(|&&n| n < creations.len())
        .map(|&n| format!("#{} {:.1} ms", n + 1, creations[n] as f64 / 1e6))
        .collect();
    println!("  creations that prune a full list: {}", pruning.join(", "));
    let mut creations = creations;
    header();
    row(
        "create_session on the one token",
        &Summary::of(&mut creations),
        1,
    );
    row(&format!("lookups meanwhile ({count} ops)"), &lookups, 1);
    println!("  lookups over 1 ms meanwhile: {over}");
}

/// A store holding `SWEPT_SESSIONS` sessions that ended 60 s after creation (1k tokens
/// without a limit, 1k sessions each) and `TOKENS` live tokens with one session each; its
/// clock is then moved past their end and the retention. The live requests.
fn sweepable_store() -> (MemoryStore, Vec<Request>) {
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_750_000_000)));
    let retention = Duration::from_secs(1);
    let store = MemoryStore::builder()
        .clock(clock.clone())
        .retention(retention)
        .sweeper(false)
        .build();
    let per_token = 1_000;
    for i in 0..SWEPT_SESSIONS / per_token {
        let videos: Vec<String> = (0..3).map(|k| hex_id(6 << 20, i * 3 + k)).collect();
        let mut new = NewToken::new(read_grants(&videos));
        new.id = Some(token_id(5 << 20, i));
        new.usage_expiration_time = NonZeroU32::new(60);
        let token = ready(store.insert_token(new)).expect("insert");
        let owner = OwnerKey::Server(token.id.clone());
        for _ in 0..per_token {
            created(ready(
                store.create_session(&owner, SessionTerms::of(&token)),
            ));
        }
    }
    let live = populate_resources(&store, 7 << 20, TOKENS);
    clock.advance(Duration::from_secs(60) + retention + Duration::from_secs(1));
    (store, live)
}

fn sweep() {
    println!();
    println!(
        "== sweep: {SWEPT_SESSIONS} ended sessions removed while another thread looks up live ones ({SWEEP_ROUNDS} rounds)"
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    header();
    for round in 1..=SWEEP_ROUNDS {
        let (store, live) = sweepable_store();
        // The same lookups while this thread spins instead of sweeping, for comparison: both
        // cores busy, so this machine's own noise (other processes preempting one of the two
        // threads) shows here too.
        let ((), _, quiet, quiet_count, quiet_over) = under_lookups(&store, &live, || {
            let t = Instant::now();
            while t.elapsed() < QUIET {
                std::hint::spin_loop();
            }
        });
        let (removed, took, during, count, over) =
            under_lookups(&store, &live, || runtime.block_on(store.sweep()));
        let stats = ready(store.stats()).expect("stats");
        assert_eq!(
            removed as u64, SWEPT_SESSIONS,
            "the sweep removes every ended session"
        );
        assert_eq!(stats.sessions, TOKENS, "only the live sessions remain");

        println!(
            "  round {round}: the sweep removed {removed} sessions in {:.1} ms ({:.0} removals/s)",
            took.as_secs_f64() * 1e3,
            removed as f64 / took.as_secs_f64()
        );
        row(
            &format!("  lookups, spin ({quiet_count} ops, {quiet_over} > 1 ms)"),
            &quiet,
            1,
        );
        row(
            &format!("  lookups during it ({count} ops, {over} > 1 ms)"),
            &during,
            1,
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a name filters the sections.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    // Other processes skew every figure here: say how busy the machine was.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("(load average at start: {})", load.trim());
    let started = Instant::now();
    if wanted("hot_path") {
        hot_path();
    }
    if wanted("create_session") {
        create_sessions();
    }
    if wanted("growth") {
        session_growth();
    }
    if wanted("sweep") {
        sweep();
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!();
    println!(
        "(store bench took {:.1?}; load average at end: {})",
        started.elapsed(),
        load.trim()
    );
}
