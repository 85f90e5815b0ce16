//! The reference in `docs/` and the README keep up with the code: every denial reason, every
//! metric and every configuration key the build knows is documented, and the README links the
//! reference and nothing outside the repository.

use std::path::Path;

use vidgate::config::Config;
use vidgate::metrics::Metrics;
use vidgate::policy::DenyReason;

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Whether `text` shows `name` as code: `` `name` `` alone, as the last part of a dotted key
/// such as `` `proxy.listen` ``, or as a table header such as `` `[proxy]` `` or
/// `` `[[client_tokens.jwt_keys]]` ``.
fn shows(text: &str, name: &str) -> bool {
    ["`", "."]
        .iter()
        .any(|before| text.contains(&format!("{before}{name}`")))
        || ["[", "."]
            .iter()
            .any(|before| text.contains(&format!("{before}{name}]`")))
}

/// The keys the config accepts in the table at `header` (`""` for the top level), as its
/// "unknown key" error lists them.
fn keys_of(header: &str) -> Vec<String> {
    let text = match header {
        "" => "zz_not_a_key = 1\n".to_owned(),
        _ => format!("{header}\nzz_not_a_key = 1\n"),
    };
    let error = Config::from_toml_str(&text).expect_err("an unknown key");
    let message = error.message();
    let list = message
        .strip_prefix("unknown key (the keys here are: ")
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{header}: {message}"));
    list.split(", ").map(str::to_owned).collect()
}

#[test]
fn every_denial_reason_is_documented_with_its_status() {
    let requests = read("docs/requests.md");
    for reason in DenyReason::ALL {
        let line = requests
            .lines()
            .find(|l| l.starts_with('|') && l.contains(&format!("`{}`", reason.as_str())))
            .unwrap_or_else(|| panic!("docs/requests.md has no table row for {reason}"));
        assert!(
            line.contains(&reason.status().as_u16().to_string()),
            "the row of {reason} does not give its status {}: {line}",
            reason.status()
        );
    }
}

#[test]
fn every_metric_is_documented() {
    let metrics = read("docs/metrics.md");
    let rendered = Metrics::new().render();
    let names: Vec<&str> = rendered
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert!(names.len() >= 9, "{names:?}");
    for name in names {
        assert!(
            shows(&metrics, name),
            "docs/metrics.md does not name {name}"
        );
    }
}

#[test]
fn every_config_key_is_documented_and_shown_in_the_shipped_config() {
    let reference = read("docs/configuration.md");
    let shipped = read("config/vidgate.toml");
    let tables = [
        "",
        "[proxy]",
        "[proxy.cors]\nallowed_origins = [\"*\"]",
        "[admin]",
        "[store]",
        "[client_tokens]",
        "[[client_tokens.jwt_keys]]\nkid = \"k\"\nalg = \"HS256\"\nsecret = \"s\"",
        "[client_tokens.ziggeo]\napplication_token = \"a\"\nencryption_key = \"k\"",
        "[log]",
    ];
    let mut count = 0;
    for table in tables {
        for key in keys_of(table) {
            count += 1;
            assert!(
                shows(&reference, &key),
                "docs/configuration.md does not document {key} (of {table:?})"
            );
            assert!(
                shipped.contains(&key),
                "config/vidgate.toml does not show {key} (of {table:?})"
            );
        }
    }
    assert!(count > 40, "only {count} keys found");
}

#[test]
fn the_readme_links_the_reference_and_nothing_outside_the_repository() {
    let readme = read("README.md");
    assert!(
        !readme.contains("../"),
        "README.md links outside the repository"
    );
    assert!(readme.contains("(docs/"), "README.md does not link docs/");
    // Every relative link points at a file that exists.
    for (at, _) in readme.match_indices("](") {
        let target: String = readme[at + 2..].chars().take_while(|&c| c != ')').collect();
        if target.starts_with("http") || target.starts_with('#') {
            continue;
        }
        let file = target.split('#').next().unwrap_or(&target);
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        assert!(
            path.exists(),
            "README.md links {target}, which does not exist"
        );
    }
}
