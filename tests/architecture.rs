//! The shape of `src/`, checked so that it stays the shape `lib.rs`'s `# Layout` describes:
//! no two top-level modules use each other (directly or around a cycle), no source file grows
//! past 1000 lines (tests live in `tests.rs` files), every file says what it owns in a `//!`
//! comment, and the composition root is the only code outside `store/` that names a concrete
//! store.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `src/`, with its path relative to `src/`.
fn sources() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("src/ is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut paths = Vec::new();
    walk(&root, &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("a source file is readable");
            (path.strip_prefix(&root).unwrap().to_owned(), text)
        })
        .collect()
}

/// The top-level module a file belongs to (`store` for `store/memory.rs`), `None` for the
/// crate roots.
fn module_of(path: &Path) -> Option<String> {
    let first = path.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib" && name != "main").then(|| name.to_owned())
}

/// Which top-level modules each module mentions as `crate::<name>` (code, docs and tests
/// alike: a doc link is a dependency a reader follows too).
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let files = sources();
    let modules: BTreeSet<String> = files.iter().filter_map(|(p, _)| module_of(p)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, text) in &files {
        let Some(module) = module_of(path) else {
            continue;
        };
        let uses = graph.entry(module.clone()).or_default();
        for (at, _) in text.match_indices("crate::") {
            let rest = &text[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name != module && modules.contains(&name) {
                uses.insert(name);
            }
        }
    }
    graph
}

#[test]
fn no_top_level_module_depends_on_itself_through_others() {
    let graph = dependencies();
    assert!(graph.len() > 10, "found the modules: {graph:?}");
    // Depth-first search from each module; a path back to it is a cycle.
    for start in graph.keys() {
        let mut stack: Vec<Vec<&String>> = vec![vec![start]];
        let mut seen = BTreeSet::new();
        while let Some(path) = stack.pop() {
            let last = path[path.len() - 1];
            for next in graph.get(last).into_iter().flatten() {
                if next == start {
                    let cycle: Vec<&str> = path.iter().map(|m| m.as_str()).collect();
                    panic!("a cycle: {} -> {start}", cycle.join(" -> "));
                }
                if seen.insert(next) {
                    let mut longer = path.clone();
                    longer.push(next);
                    stack.push(longer);
                }
            }
        }
    }
}

#[test]
fn the_dependency_check_sees_what_is_there() {
    // The check above must find real edges, or it proves nothing.
    let graph = dependencies();
    assert!(graph["layer"].contains("policy"), "{graph:?}");
    assert!(graph["server"].contains("config"), "{graph:?}");
    assert!(!graph["policy"].contains("layer"), "{graph:?}");
}

#[test]
fn no_source_file_is_over_1000_lines() {
    for (path, text) in sources() {
        if path.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let lines = text.lines().count();
        assert!(
            lines <= 1000,
            "src/{} has {lines} lines: split it, and keep its tests in a tests.rs",
            path.display()
        );
    }
}

#[test]
fn every_source_file_says_what_it_owns() {
    for (path, text) in sources() {
        assert!(
            text.trim_start().starts_with("//!"),
            "src/{} does not open with a //! comment",
            path.display()
        );
    }
}

#[test]
fn only_the_composition_root_names_a_concrete_store() {
    for (path, text) in sources() {
        let allowed = path.starts_with("store") || path == Path::new("server/build.rs");
        if allowed {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            assert!(
                !code.contains("MemoryStore"),
                "src/{}:{} names MemoryStore: {line}",
                path.display(),
                n + 1
            );
        }
    }
}
