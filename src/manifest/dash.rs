//! DASH MPDs (ISO/IEC 23009-1): the URIs a player fetches from this origin get
//! [`Rewrite::query`]; every other byte of the MPD is kept.
//!
//! quick-xml parses and checks the MPD, but nothing is re-serialized: the output is the input
//! with each rewritten value spliced in, so the declaration, a DOCTYPE, comments, processing
//! instructions, CDATA, whitespace, attribute order and quoting all stay byte for byte. Only a
//! rewritten value is written anew, escaped the plain way: `&`, `<` and, in an attribute, its own
//! quote character and tab, CR, LF as character references (`>` too in text). So a reference the
//! original value used (`&#x26;`), or a CDATA section around a `BaseURL`, comes out as that
//! plain escaping.
//!
//! Rewritten: the text of `BaseURL`, `Location` and `PatchLocation`; `SegmentTemplate@media`,
//! `@initialization`, `@index` and `@bitstreamSwitching`; `SegmentURL@media` and `@index`;
//! `@sourceURL` of `Initialization`, `RepresentationIndex` and `BitstreamSwitching`. Elements
//! match by local name, whatever their prefix; attributes only unprefixed, as the schema has
//! them. Values are trimmed of XML whitespace first (`anyURI` collapses it) and the whitespace
//! is kept around the new value.
//!
//! # Same origin in an MPD
//!
//! A relative URI in an MPD resolves against the `BaseURL` chain (MPD, Period, AdaptationSet,
//! Representation), not against the MPD's own URL: [`Rewrite::same_origin`] alone would hand
//! the token to whatever host a `BaseURL` names. A relative reference is therefore rewritten
//! only when every base it may resolve against is same-origin:
//! - a `BaseURL`: the base of the element above the one it sits in (the MPD's own URL at the top);
//! - `Location`, `PatchLocation`: the base of the element they sit in (the `MPD`);
//! - segment URIs: the base of the element that holds the `SegmentTemplate`, `SegmentList` or
//!   `SegmentBase` *and of every element below it*, since a template written on an AdaptationSet
//!   is used by each of its Representations with that Representation's own `BaseURL`s.
//!
//! An element with several `BaseURL`s (alternatives a player chooses among) has a cross-origin
//! base if any of them is. An absolute URI on this origin resolves the same whatever the base
//! and is rewritten wherever it is. A value the URL parsers of players would read differently
//! from [`Rewrite::same_origin`] (an ASCII control character, a backslash) is left alone, and
//! as a `BaseURL` counts as cross-origin.
//!
//! So the work is in two steps: `scan` parses, checks and collects the `BaseURL` tree and the
//! candidate values; [`rewrite`] then decides each candidate and splices. Both are linear.
//!
//! # Refused
//!
//! Input that is not UTF-8 or not well-formed (unclosed or mismatched tags, text or a second
//! element outside the root, malformed or duplicated attributes, a bare `&`), and any reference
//! to an entity other than the five predefined ones and character references. A DOCTYPE is
//! kept but never processed: vidgate expands no entity it declares, while a player's XML parser
//! would, so the player would read an MPD other than the one checked here.

use std::borrow::Cow;
use std::ops::Range;

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

use super::Rewrite;

/// Why an MPD could not be rewritten: it is not UTF-8, not well-formed XML, or references an
/// entity vidgate does not expand.
#[derive(Debug, thiserror::Error)]
#[error("malformed MPD: {0}")]
pub struct Malformed(pub String);

/// Rewrite an MPD: each same-origin URI a player fetches (see the [module docs](self)) gets
/// [`Rewrite::query`]; every other byte is kept.
pub fn rewrite(mpd: &[u8], rewrite: &Rewrite<'_>) -> Result<Vec<u8>, Malformed> {
    let text = std::str::from_utf8(mpd).map_err(|e| Malformed(format!("not UTF-8: {e}")))?;
    // quick-xml skips a byte order mark without counting it in its positions: strip it here, so
    // that every position is an offset into `body`.
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    let scan = scan(body, rewrite)?;
    let bases = scan.bases();

    let mut out = Vec::with_capacity(mpd.len() + scan.candidates.len() * (rewrite.query.len() + 8));
    out.extend_from_slice(&mpd[..mpd.len() - body.len()]);
    let mut copied = 0;
    for candidate in &scan.candidates {
        let base_foreign = match candidate.base {
            Base::Of(node) => bases.foreign(node),
            Base::Subtree(node) => bases.foreign_below(node),
        };
        // Candidates come in document order and never overlap; `get` only keeps a broken
        // invariant from panicking.
        let Some(before) = body.as_bytes().get(copied..candidate.span.start) else {
            continue;
        };
        if let Some(new) = decide(&candidate.value, base_foreign, rewrite) {
            out.extend_from_slice(before);
            escape_into(&mut out, &new, candidate.escape);
            copied = candidate.span.end;
        }
    }
    out.extend_from_slice(body.as_bytes().get(copied..).unwrap_or_default());
    Ok(out)
}

/// The replacement for a candidate `value` (unescaped), or `None` to leave it as it is.
fn decide(value: &str, base_foreign: bool, rewrite: &Rewrite<'_>) -> Option<String> {
    let uri = value.trim_matches(is_xml_space);
    if uri.is_empty() || ambiguous(uri) {
        return None;
    }
    if base_foreign && !absolute_same_origin(rewrite, uri) {
        return None;
    }
    let new = rewrite.apply(uri)?;
    let lead = value.len() - value.trim_start_matches(is_xml_space).len();
    let trail = value.trim_end_matches(is_xml_space).len();
    Some(format!("{}{new}{}", &value[..lead], &value[trail..]))
}

/// XML's whitespace (`S`): what `anyURI` collapses around a value.
fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Whether the URL parser of a player (WHATWG) could read `uri` differently from
/// [`Rewrite::same_origin`]: it drops tabs and newlines anywhere, trims control characters, and
/// reads `\` as `/` (`\\evil.example/x` is another host).
fn ambiguous(uri: &str) -> bool {
    uri.bytes().any(|b| b.is_ascii_control() || b == b'\\')
}

/// `uri` is an absolute URI on this origin (`scheme://host...`), which resolves the same against
/// any base. [`Rewrite::same_origin`] accepts only relative references and URIs with this
/// scheme, so what comes before the first `:` tells the two apart.
fn absolute_same_origin(rewrite: &Rewrite<'_>, uri: &str) -> bool {
    rewrite.same_origin(uri)
        && uri
            .split_once(':')
            .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case(rewrite.scheme))
}

/// How a new value is escaped: as element text, or inside an attribute quoted with this byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    Text,
    Attribute(u8),
}

/// Append `value` escaped for where it goes. Attribute values escape tab, CR and LF too, which
/// a parser would otherwise turn into spaces.
fn escape_into(out: &mut Vec<u8>, value: &str, escape: Escape) {
    for &b in value.as_bytes() {
        let replacement: &[u8] = match (b, escape) {
            (b'&', _) => b"&amp;",
            (b'<', _) => b"&lt;",
            (b'>', Escape::Text) => b"&gt;",
            (b'\r', _) => b"&#13;",
            (b'"', Escape::Attribute(b'"')) => b"&quot;",
            (b'\'', Escape::Attribute(b'\'')) => b"&apos;",
            (b'\t', Escape::Attribute(_)) => b"&#9;",
            (b'\n', Escape::Attribute(_)) => b"&#10;",
            _ => {
                out.push(b);
                continue;
            }
        };
        out.extend_from_slice(replacement);
    }
}

/// What [`scan`] found: the elements that can hold a `BaseURL`, and the values to decide.
struct Scan<'a> {
    /// Every element written with a start tag (an empty-element tag holds no `BaseURL`), in
    /// document order, so a parent always comes before its children.
    nodes: Vec<Node>,
    /// In document order, not overlapping.
    candidates: Vec<Candidate<'a>>,
}

/// One element of [`Scan::nodes`].
struct Node {
    parent: Option<usize>,
    bases: Bases,
}

/// What the `BaseURL` children of an element say about its base.
#[derive(Debug, Default, Clone, Copy)]
struct Bases {
    /// It has at least one: its base is theirs, not its parent's.
    any: bool,
    /// One of them is cross-origin whatever the parent's base is.
    foreign: bool,
    /// One of them is relative: cross-origin if the parent's base is.
    relative: bool,
}

/// A URI vidgate may rewrite.
struct Candidate<'a> {
    /// The escaped value in the input: an attribute's between its quotes, an element's content.
    span: Range<usize>,
    /// The value unescaped (an attribute's normalized as XML does).
    value: Cow<'a, str>,
    escape: Escape,
    base: Base,
}

/// Which bases a candidate may resolve against; `None` is the MPD's own URL.
#[derive(Debug, Clone, Copy)]
enum Base {
    /// That element's.
    Of(Option<usize>),
    /// That element's and every one below it.
    Subtree(Option<usize>),
}

/// Which elements have a cross-origin base, worked out from [`Scan::nodes`].
struct Foreign {
    /// By node: its own base.
    own: Vec<bool>,
    /// By node: its own base or that of an element below it.
    below: Vec<bool>,
}

impl Foreign {
    fn foreign(&self, node: Option<usize>) -> bool {
        node.is_some_and(|n| self.own.get(n).copied().unwrap_or(true))
    }

    fn foreign_below(&self, node: Option<usize>) -> bool {
        node.is_some_and(|n| self.below.get(n).copied().unwrap_or(true))
    }
}

impl Scan<'_> {
    fn bases(&self) -> Foreign {
        let mut own: Vec<bool> = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            let inherited = node
                .parent
                .is_some_and(|p| own.get(p).copied().unwrap_or(true));
            let b = node.bases;
            own.push(if b.any {
                b.foreign || (b.relative && inherited)
            } else {
                inherited
            });
        }
        // Children come after their parent: one backward sweep carries each flag up.
        let mut below = own.clone();
        for (i, node) in self.nodes.iter().enumerate().rev() {
            if let (true, Some(p)) = (below[i], node.parent) {
                if let Some(flag) = below.get_mut(p) {
                    *flag = true;
                }
            }
        }
        Foreign { own, below }
    }
}

/// The elements whose text is a URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextUri {
    /// `BaseURL`.
    Base,
    /// `Location`, `PatchLocation`.
    Location,
}

/// An element [`scan`] is inside of.
struct Open {
    node: usize,
    /// `SegmentBase`, `SegmentList` or `SegmentTemplate`: segment URIs below it resolve against
    /// the base of the element holding it.
    segment_information: bool,
    /// For a [`TextUri`] element: its text so far.
    text: Option<Text>,
}

/// The content of a [`TextUri`] element, as it is read.
struct Text {
    kind: TextUri,
    /// Where the content starts in the input.
    start: usize,
    value: String,
    /// Only text, references and CDATA so far: no element, comment or processing instruction,
    /// which a rewrite of the whole content would drop.
    plain: bool,
}

/// The attributes holding a URI, by the local name of their element.
fn uri_attributes(element: &[u8]) -> &'static [&'static [u8]] {
    match element {
        b"SegmentTemplate" => &[b"media", b"initialization", b"index", b"bitstreamSwitching"],
        b"SegmentURL" => &[b"media", b"index"],
        b"Initialization" | b"RepresentationIndex" | b"BitstreamSwitching" => &[b"sourceURL"],
        _ => &[],
    }
}

/// Parse and check `body`, collecting the `BaseURL` tree and the candidate values.
fn scan<'a>(body: &'a str, rewrite: &Rewrite<'_>) -> Result<Scan<'a>, Malformed> {
    let mut reader = Reader::from_str(body);
    let mut scan = Scan {
        nodes: Vec::new(),
        candidates: Vec::new(),
    };
    let mut open: Vec<Open> = Vec::new();
    let mut root_seen = false;
    let mut version = XmlVersion::Implicit1_0;
    loop {
        let start = position(&reader);
        let event = reader
            .read_event()
            .map_err(|e| Malformed(format!("at byte {}: {e}", reader.error_position())))?;
        let end = position(&reader);
        let outside = open.is_empty();
        match event {
            Event::Start(ref element) | Event::Empty(ref element) => {
                if outside {
                    if root_seen {
                        return Err(Malformed(format!("at byte {start}: a second root element")));
                    }
                    root_seen = true;
                }
                if let Some(text) = text_of(&mut open) {
                    text.plain = false;
                }
                let context = segment_context(&open);
                attributes(body, element, start, version, context, &mut scan.candidates)?;
                let local = element.local_name();
                let local = local.as_ref();
                let kind = match local {
                    b"BaseURL" => Some(TextUri::Base),
                    b"Location" | b"PatchLocation" => Some(TextUri::Location),
                    _ => None,
                };
                let parent = open.last().map(|o| o.node);
                if let Event::Start(_) = event {
                    scan.nodes.push(Node {
                        parent,
                        bases: Bases::default(),
                    });
                    open.push(Open {
                        node: scan.nodes.len() - 1,
                        segment_information: matches!(
                            local,
                            b"SegmentBase" | b"SegmentList" | b"SegmentTemplate"
                        ),
                        text: kind.map(|kind| Text {
                            kind,
                            start: end,
                            value: String::new(),
                            plain: true,
                        }),
                    });
                } else if kind == Some(TextUri::Base) {
                    // `<BaseURL/>`: the parent's base itself.
                    note_base(&mut scan.nodes, parent, Some(""), rewrite);
                }
            }
            Event::End(_) => {
                // quick-xml has checked that the name matches the open element.
                let Some(closed) = open.pop() else {
                    return Err(Malformed(format!(
                        "at byte {start}: an end tag without a start"
                    )));
                };
                let Some(text) = closed.text else { continue };
                let holder = open.last().map(|o| o.node);
                let base = match text.kind {
                    TextUri::Base => {
                        let value = text.plain.then_some(text.value.as_str());
                        note_base(&mut scan.nodes, holder, value, rewrite);
                        Base::Of(holder.and_then(|h| scan.nodes.get(h)?.parent))
                    }
                    TextUri::Location => Base::Of(holder),
                };
                if text.plain {
                    scan.candidates.push(Candidate {
                        span: text.start..start,
                        value: Cow::Owned(text.value),
                        escape: Escape::Text,
                        base,
                    });
                }
            }
            Event::Text(ref content) => {
                let content = content
                    .xml_content(version)
                    .map_err(|e| Malformed(format!("at byte {start}: {e}")))?;
                if outside && !content.trim_matches(is_xml_space).is_empty() {
                    return Err(Malformed(format!(
                        "at byte {start}: text outside the root element"
                    )));
                }
                if let Some(text) = text_of(&mut open) {
                    text.value.push_str(&content);
                }
            }
            Event::GeneralRef(ref reference) => {
                let resolved =
                    resolve(reference).map_err(|e| Malformed(format!("at byte {start}: {e}")))?;
                if outside {
                    return Err(Malformed(format!(
                        "at byte {start}: a reference outside the root element"
                    )));
                }
                if let Some(text) = text_of(&mut open) {
                    text.value.push_str(&resolved);
                }
            }
            Event::CData(ref content) => {
                let content = content
                    .xml_content(version)
                    .map_err(|e| Malformed(format!("at byte {start}: {e}")))?;
                if outside {
                    return Err(Malformed(format!(
                        "at byte {start}: CDATA outside the root element"
                    )));
                }
                if let Some(text) = text_of(&mut open) {
                    text.value.push_str(&content);
                }
            }
            Event::Comment(_) | Event::PI(_) => {
                if let Some(text) = text_of(&mut open) {
                    text.plain = false;
                }
            }
            Event::Decl(ref declaration) => {
                if start != 0 {
                    return Err(Malformed(format!(
                        "at byte {start}: an XML declaration not at the start"
                    )));
                }
                version = declaration
                    .xml_version()
                    .map_err(|e| Malformed(format!("at byte {start}: {e}")))?;
            }
            Event::DocType(_) => {
                if root_seen {
                    return Err(Malformed(format!(
                        "at byte {start}: a DOCTYPE after the root element"
                    )));
                }
            }
            Event::Eof => break,
        }
    }
    if !open.is_empty() {
        return Err(Malformed(format!(
            "the document ends inside {} open element(s)",
            open.len()
        )));
    }
    if !root_seen {
        return Err(Malformed("no root element".to_owned()));
    }
    Ok(scan)
}

/// The text being read of the innermost open element, if that is a [`TextUri`] one.
fn text_of(open: &mut [Open]) -> Option<&mut Text> {
    open.last_mut()?.text.as_mut()
}

/// The byte offset in the input where the reader is.
fn position(reader: &Reader<&[u8]>) -> usize {
    usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX)
}

/// The element whose base segment URIs written now resolve against: the innermost open one
/// that is not segment information itself.
fn segment_context(open: &[Open]) -> Option<usize> {
    open.iter()
        .rev()
        .find(|o| !o.segment_information)
        .map(|o| o.node)
}

/// What a general reference in text stands for: a character, or one of the five predefined
/// entities. Any other entity is refused rather than expanded or passed over.
fn resolve(reference: &BytesRef<'_>) -> Result<Cow<'static, str>, String> {
    if let Some(c) = reference.resolve_char_ref().map_err(|e| e.to_string())? {
        return Ok(Cow::Owned(c.to_string()));
    }
    let name = reference.decode().map_err(|e| e.to_string())?;
    resolve_predefined_entity(&name)
        .map(Cow::Borrowed)
        .ok_or_else(|| {
            format!("a reference to the entity `&{name};`, which vidgate does not expand")
        })
}

/// Check every attribute of `element` (tag at `tag` in `body`); collect those holding a URI.
fn attributes<'a>(
    body: &'a str,
    element: &BytesStart<'_>,
    tag: usize,
    version: XmlVersion,
    context: Option<usize>,
    candidates: &mut Vec<Candidate<'a>>,
) -> Result<(), Malformed> {
    let uris = uri_attributes(element.local_name().into_inner());
    for attribute in element.attributes() {
        let attribute =
            attribute.map_err(|e| Malformed(format!("in the tag at byte {tag}: {e}")))?;
        let value = attribute
            .normalized_value(version)
            .map_err(|e| Malformed(format!("in the tag at byte {tag}: {e}")))?;
        let key = attribute.key;
        if key.prefix().is_some() || !uris.contains(&key.as_ref()) {
            continue;
        }
        // The reader lends out slices of `body`: find where this value lies, and its quote.
        let span = offset_in(body.as_bytes(), &attribute.value)
            .map(|at| at..at + attribute.value.len())
            .ok_or_else(|| Malformed(format!("in the tag at byte {tag}: lost an attribute")))?;
        let quote = body.as_bytes().get(span.end).copied().unwrap_or(b'"');
        let value = match value {
            // Nothing to normalize: the raw text is the value, borrowed for as long as `body`.
            Cow::Borrowed(_) => Cow::Borrowed(body.get(span.clone()).unwrap_or_default()),
            Cow::Owned(value) => Cow::Owned(value),
        };
        candidates.push(Candidate {
            span,
            value,
            escape: Escape::Attribute(quote),
            base: Base::Subtree(context),
        });
    }
    Ok(())
}

/// Where `part`, a slice of `whole`, starts in it.
fn offset_in(whole: &[u8], part: &[u8]) -> Option<usize> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    (start + part.len() <= whole.len()).then_some(start)
}

/// Record a `BaseURL` child of `holder` with this value (`None`: content other than text, which
/// vidgate cannot judge).
fn note_base(
    nodes: &mut [Node],
    holder: Option<usize>,
    value: Option<&str>,
    rewrite: &Rewrite<'_>,
) {
    let Some(node) = holder.and_then(|h| nodes.get_mut(h)) else {
        return;
    };
    let bases = &mut node.bases;
    bases.any = true;
    match value.map(|v| v.trim_matches(is_xml_space)) {
        Some(uri) if !ambiguous(uri) && rewrite.same_origin(uri) => {
            if !absolute_same_origin(rewrite, uri) {
                bases.relative = true;
            }
        }
        _ => bases.foreign = true,
    }
}

#[cfg(test)]
mod tests;
