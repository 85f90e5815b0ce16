//! Where a configuration's keys were written: the file and, for each key, its line, taken from
//! the spans of the TOML document (`toml_edit`, the parser under `toml`). It lets an error found
//! after parsing (by validation, or by whoever builds from the config) name `file:line: key`
//! like a parse error does.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use toml_edit::{ImDocument, Item, Table, TableLike, Value};

use super::error::line_at;
use super::ConfigError;

/// The file a configuration came from and the line of each of its keys.
///
/// Part of a [`Config`](super::Config) without being part of what it says: two configs that
/// say the same thing are equal wherever they were written.
#[derive(Debug, Clone, Default)]
pub(super) struct Provenance {
    file: Option<PathBuf>,
    /// Key paths as errors name them (`proxy.listen`, `client_tokens.jwt_keys[1].kid`, a table
    /// such as `proxy`) → 1-based line.
    lines: Arc<HashMap<String, usize>>,
}

impl PartialEq for Provenance {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Provenance {}

impl Provenance {
    /// The lines of every key of `text` (none when it is not TOML: its parse error carries its
    /// own line), read from `file`.
    pub(super) fn of(text: &str, file: Option<&Path>) -> Self {
        let mut lines = HashMap::new();
        if let Ok(document) = ImDocument::parse(text) {
            index_table(text, document.as_table(), "", &mut lines);
        }
        Provenance {
            file: file.map(Path::to_owned),
            lines: Arc::new(lines),
        }
    }

    /// The line where `key` is set; failing that, the line of the deepest table on its path (a
    /// missing key is reported where its table starts). An element of an array value
    /// (`proxy.prefixes[2]`) is reported at the array's key.
    pub(super) fn line(&self, key: &str) -> Option<usize> {
        let mut path = key;
        loop {
            if let Some(&line) = self.lines.get(path) {
                return Some(line);
            }
            // `a.b[2]` → `a.b`, then `a.b` → `a`.
            path = match path.rfind(['.', '[']) {
                Some(cut) => &path[..cut],
                None => return None,
            };
        }
    }

    /// `error` with this file and, when it has none, the line of its key.
    pub(super) fn locate(&self, mut error: ConfigError) -> ConfigError {
        if error.line.is_none() {
            error.line = error.key().and_then(|key| self.line(key));
        }
        if error.file.is_none() {
            error.file.clone_from(&self.file);
        }
        error
    }
}

fn index_table(
    text: &str,
    table: &dyn TableLike,
    prefix: &str,
    lines: &mut HashMap<String, usize>,
) {
    for (name, item) in table.iter() {
        let path = join(prefix, name);
        let key_line = table
            .get_key_value(name)
            .and_then(|(key, _)| key.span())
            .map(|span| line_at(text, span.start));
        match item {
            Item::Table(inner) => {
                // A table only implied by a deeper header (`[a]` of `[a.b]`) is written nowhere.
                let line = if inner.is_implicit() {
                    None
                } else {
                    header_line(text, inner).or(key_line)
                };
                if let Some(line) = line {
                    lines.insert(path.clone(), line);
                }
                index_table(text, inner, &path, lines);
            }
            Item::ArrayOfTables(array) => {
                // Each `[[header]]` is its own table; the array as a whole has no one line.
                for (i, inner) in array.iter().enumerate() {
                    let element = format!("{path}[{i}]");
                    if let Some(line) = header_line(text, inner) {
                        lines.insert(element.clone(), line);
                    }
                    index_table(text, inner, &element, lines);
                }
            }
            Item::Value(value) => {
                if let Some(line) = key_line {
                    lines.insert(path.clone(), line);
                }
                if let Value::InlineTable(inner) = value {
                    index_table(text, inner, &path, lines);
                }
            }
            Item::None => {}
        }
    }
}

/// The line of a `[table]` or `[[array]]` header; `None` for a table that has none (implied
/// by a deeper header, or written with dotted keys).
fn header_line(text: &str, table: &Table) -> Option<usize> {
    table.span().map(|span| line_at(text, span.start))
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}
