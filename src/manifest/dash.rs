//! DASH MPDs (ISO/IEC 23009-1). (Stub: being written.)

use super::Rewrite;

/// Why an MPD could not be rewritten.
#[derive(Debug, thiserror::Error)]
#[error("the MPD is not well-formed XML: {0}")]
pub struct Malformed(pub String);

/// Rewrite an MPD: `BaseURL` text, `SegmentTemplate@media`/`@initialization` and
/// `SegmentURL@media` that are same-origin get [`Rewrite::query`]; everything else is kept.
pub fn rewrite(mpd: &[u8], rewrite: &Rewrite<'_>) -> Result<Vec<u8>, Malformed> {
    let _ = rewrite;
    Ok(mpd.to_vec())
}
