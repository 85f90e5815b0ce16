//! Helpers the unit tests of several modules share. Compiled for tests only.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A file in the temporary directory, removed when dropped.
pub(crate) struct TempFile(pub(crate) PathBuf);

impl TempFile {
    /// A file named for this process, this call and `name`, holding `contents`: tests run in
    /// parallel threads, and two may ask for the same name.
    pub(crate) fn new(name: &str, contents: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "vidgate-unit-test-{}-{n}-{name}",
            std::process::id()
        ));
        std::fs::write(&path, contents).expect("write temp file");
        Self(path)
    }

    /// The path as a TOML basic string's contents.
    pub(crate) fn toml(&self) -> String {
        self.0.display().to_string().replace('\\', "\\\\")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
