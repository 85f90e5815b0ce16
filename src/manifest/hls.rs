//! HLS playlists (RFC 8216, with the low-latency tags of its successor draft): a careful line
//! rewriter.
//!
//! A playlist is read one line at a time, in one pass. Two kinds of line carry URIs:
//!
//! - a URI line (any non-blank line that does not start with `#`): a media segment, or a
//!   variant playlist after `#EXT-X-STREAM-INF`;
//! - the tags `EXT-X-KEY`, `EXT-X-SESSION-KEY`, `EXT-X-MAP`, `EXT-X-MEDIA`,
//!   `EXT-X-I-FRAME-STREAM-INF`, `EXT-X-SESSION-DATA`, and the low-latency `EXT-X-PART`,
//!   `EXT-X-PRELOAD-HINT` and `EXT-X-RENDITION-REPORT`, whose attribute named exactly `URI`
//!   holds one as a quoted string. Other tags, known or not, are copied.
//!
//! Each same-origin URI goes through [`Rewrite::apply`]; everything else — line endings (`\n`,
//! `\r\n`, mixed), a missing final newline, a byte-order mark, blank lines, comments, unknown
//! tags, other attributes and their order, whitespace — is copied byte for byte. This module
//! does not validate playlists: what it cannot parse it leaves as it is, so that a malformed
//! playlist reaches the player exactly as the origin wrote it.
//!
//! Lines are classified after their surrounding whitespace, as lenient players (ExoPlayer)
//! do: `  seg0.ts` is a URI line and `  #EXT-X-KEY:...` a key tag; the whitespace is kept.

use super::Rewrite;

/// The tags (with their `:`, matched case-sensitively as RFC 8216 names them) whose `URI`
/// attribute names something the player fetches. `EXT-X-STREAM-INF` is not here: its URI is
/// the next line. `EXT-X-SESSION-DATA` is: its `URI` names a JSON file the player fetches.
const URI_TAGS: [&str; 9] = [
    "#EXT-X-KEY:",
    "#EXT-X-SESSION-KEY:",
    "#EXT-X-MAP:",
    "#EXT-X-MEDIA:",
    "#EXT-X-I-FRAME-STREAM-INF:",
    "#EXT-X-SESSION-DATA:",
    "#EXT-X-PART:",
    "#EXT-X-PRELOAD-HINT:",
    "#EXT-X-RENDITION-REPORT:",
];

/// Rewrite a playlist: every same-origin URI line and `URI="..."` attribute of the tags that
/// carry one gets [`Rewrite::query`]; every other byte is kept.
pub fn rewrite(playlist: &str, rewrite: &Rewrite<'_>) -> String {
    // About one line in two names a URI (`#EXTINF` + segment, `#EXT-X-STREAM-INF` + variant);
    // sizing for that spares the regrowths when the query is long next to the lines (a token
    // of a few hundred bytes against 20-byte segment lines).
    let lines = playlist.bytes().filter(|&b| b == b'\n').count() + 1;
    let mut out =
        String::with_capacity(playlist.len() + lines.div_ceil(2) * (rewrite.query.len() + 1));
    // A byte-order mark is not part of the first line's tag; keep it and look past it.
    let body = match playlist.strip_prefix('\u{feff}') {
        Some(body) => {
            out.push('\u{feff}');
            body
        }
        None => playlist,
    };
    for line in body.split_inclusive('\n') {
        rewrite_line(line, rewrite, &mut out);
    }
    out
}

/// ASCII whitespace around a line's content, the line ending included.
fn is_space(c: char) -> bool {
    c.is_ascii_whitespace()
}

/// Append `line` (with its ending, if it has one) to `out`, its URIs rewritten.
fn rewrite_line(line: &str, rewrite: &Rewrite<'_>, out: &mut String) {
    let after_lead = line.trim_start_matches(is_space);
    let content = after_lead.trim_end_matches(is_space);
    if content.is_empty() {
        out.push_str(line);
        return;
    }
    let lead = &line[..line.len() - after_lead.len()];
    let trail = &after_lead[content.len()..];
    if content.starts_with('#') {
        // A tag or a comment: only the known URI-carrying tags are looked into.
        match URI_TAGS.iter().find(|tag| content.starts_with(*tag)) {
            Some(tag) => {
                out.push_str(lead);
                out.push_str(tag);
                rewrite_attributes(&content[tag.len()..], rewrite, out);
                out.push_str(trail);
            }
            None => out.push_str(line),
        }
    } else {
        out.push_str(lead);
        push_uri(content, rewrite, out);
        out.push_str(trail);
    }
}

/// Append an attribute list (RFC 8216 4.2: `NAME=value` pairs separated by commas, where a
/// quoted string may hold commas) to `out`, the contents of each quoted `URI` value rewritten.
///
/// Lenient: whitespace around names and before values is allowed and kept; a pair without `=`
/// is copied; an unquoted `URI` value (invalid: RFC 8216 quotes it) is copied, as is everything
/// from an unterminated quote on.
fn rewrite_attributes(list: &str, rewrite: &Rewrite<'_>, out: &mut String) {
    let mut rest = list;
    while !rest.is_empty() {
        let Some(at) = rest.find(['=', ',']) else {
            out.push_str(rest);
            return;
        };
        let (name, separator) = (rest[..at].trim_matches(is_space), rest.as_bytes()[at]);
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        if separator == b',' {
            // A pair without a value: nothing to look into.
            continue;
        }
        let value = rest.trim_start_matches(is_space);
        if let Some(quoted) = value.strip_prefix('"') {
            let Some(end) = quoted.find('"') else {
                out.push_str(rest);
                return;
            };
            out.push_str(&rest[..rest.len() - quoted.len()]);
            if name == "URI" {
                push_uri(&quoted[..end], rewrite, out);
            } else {
                out.push_str(&quoted[..end]);
            }
            out.push('"');
            rest = &quoted[end + 1..];
        }
        // The rest of the value (all of an unquoted one), up to and with the next comma.
        match rest.find(',') {
            Some(comma) => {
                out.push_str(&rest[..=comma]);
                rest = &rest[comma + 1..];
            }
            None => {
                out.push_str(rest);
                return;
            }
        }
    }
}

/// Append `uri` to `out`: rewritten when it is same-origin, as it is otherwise.
///
/// An empty URI (`URI=""`, invalid) is kept: rewriting it would make a reference to the playlist
/// itself into one to its path with a different query.
fn push_uri(uri: &str, rewrite: &Rewrite<'_>, out: &mut String) {
    let rewritten = if uri.is_empty() || !origin_is_fixed(uri) {
        None
    } else {
        rewrite.apply(uri)
    };
    out.push_str(rewritten.as_deref().unwrap_or(uri));
}

/// Whether the origin `uri` points to is decided by its text as written.
///
/// A variable reference (`{$name}`, defined by `EXT-X-DEFINE` in RFC 8216bis) is replaced by the
/// player. Where a scheme or `//` is written before it, [`Rewrite::same_origin`] reads the
/// authority from the text itself: a variable inside it never matches the host, one after it
/// cannot move it. But in a URI that looks relative, a variable could still supply a scheme (its
/// `:` comes before any `/`, `?` or `#`) or the second `/` of `//host`: `{$cdn}/seg.ts`,
/// `/{$path}`. Appending the token there could hand it to another host, so such a URI is left as
/// it is; a variable after the first segment (`v/{$quality}/seg.ts`, `seg.ts?v={$v}`) is
/// harmless.
fn origin_is_fixed(uri: &str) -> bool {
    let Some(at) = uri.find("{$") else {
        return true;
    };
    let before = &uri[..at];
    before.starts_with("//")
        || before.contains(':')
        || (before.contains(['/', '?', '#']) && before != "/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The query is made of vidgate's own parameters only, so that rewriting is idempotent.
    const R: Rewrite<'static> = Rewrite {
        scheme: "http",
        host: "cdn.example:8080",
        query: "server_auth=t0k&session=S1",
    };
    const Q: &str = "server_auth=t0k&session=S1";

    fn hls(playlist: &str) -> String {
        rewrite(playlist, &R)
    }

    #[test]
    fn master_playlist_variants_renditions_iframes_and_session_key() {
        let input = "\
#EXTM3U
#EXT-X-VERSION:6
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI=\"keys/master.key\",KEYFORMAT=\"identity\"
#EXT-X-SESSION-DATA:DATA-ID=\"com.example.title\",URI=\"title.json\"
#EXT-X-SESSION-DATA:DATA-ID=\"com.example.lyrics\",VALUE=\"la la\"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"English\",LANGUAGE=\"en\",DEFAULT=YES,AUTOSELECT=YES,URI=\"audio/en/index.m3u8\"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"Main\",DEFAULT=NO
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"Deutsch\",LANGUAGE=\"de\",URI=\"subs/de.m3u8\"
#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"CC1\",INSTREAM-ID=\"CC1\"
#EXT-X-STREAM-INF:BANDWIDTH=1280000,AVERAGE-BANDWIDTH=1000000,RESOLUTION=640x360,CODECS=\"avc1.4d401e,mp4a.40.2\",AUDIO=\"aud\",SUBTITLES=\"subs\",CLOSED-CAPTIONS=\"cc\"
360p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=2560000,RESOLUTION=1280x720,CODECS=\"avc1.4d401f,mp4a.40.2\",AUDIO=\"aud\"
http://cdn.example:8080/v/720p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=7680000,RESOLUTION=1920x1080,AUDIO=\"aud\"
https://other.example/v/1080p/index.m3u8
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=86000,CODECS=\"avc1.4d401e\",URI=\"360p/iframes.m3u8\",RESOLUTION=640x360
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=150000,URI=\"https://other.example/720p/iframes.m3u8\"
";
        let expected = format!(
            "\
#EXTM3U
#EXT-X-VERSION:6
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI=\"keys/master.key?{Q}\",KEYFORMAT=\"identity\"
#EXT-X-SESSION-DATA:DATA-ID=\"com.example.title\",URI=\"title.json?{Q}\"
#EXT-X-SESSION-DATA:DATA-ID=\"com.example.lyrics\",VALUE=\"la la\"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"English\",LANGUAGE=\"en\",DEFAULT=YES,AUTOSELECT=YES,URI=\"audio/en/index.m3u8?{Q}\"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"Main\",DEFAULT=NO
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"Deutsch\",LANGUAGE=\"de\",URI=\"subs/de.m3u8?{Q}\"
#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"CC1\",INSTREAM-ID=\"CC1\"
#EXT-X-STREAM-INF:BANDWIDTH=1280000,AVERAGE-BANDWIDTH=1000000,RESOLUTION=640x360,CODECS=\"avc1.4d401e,mp4a.40.2\",AUDIO=\"aud\",SUBTITLES=\"subs\",CLOSED-CAPTIONS=\"cc\"
360p/index.m3u8?{Q}
#EXT-X-STREAM-INF:BANDWIDTH=2560000,RESOLUTION=1280x720,CODECS=\"avc1.4d401f,mp4a.40.2\",AUDIO=\"aud\"
http://cdn.example:8080/v/720p/index.m3u8?{Q}
#EXT-X-STREAM-INF:BANDWIDTH=7680000,RESOLUTION=1920x1080,AUDIO=\"aud\"
https://other.example/v/1080p/index.m3u8
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=86000,CODECS=\"avc1.4d401e\",URI=\"360p/iframes.m3u8?{Q}\",RESOLUTION=640x360
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=150000,URI=\"https://other.example/720p/iframes.m3u8\"
"
        );
        assert_eq!(hls(input), expected);
    }

    #[test]
    fn media_playlist_keys_maps_and_byte_ranges() {
        let input = "\
#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:12
#EXT-X-KEY:METHOD=AES-128,URI=\"key.bin\",IV=0x1234567890ABCDEF1234567890ABCDEF,KEYFORMAT=\"identity\",KEYFORMATVERSIONS=\"1\"
#EXT-X-MAP:URI=\"init.mp4\",BYTERANGE=\"720@0\"
#EXTINF:4.0,
#EXT-X-BYTERANGE:75232@720
main.mp4
#EXTINF:4.0,title with, a comma
#EXT-X-BYTERANGE:82112
main.mp4
#EXT-X-KEY:METHOD=NONE
#EXTINF:4.0,
clear.mp4
#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://key-id-42\",KEYFORMAT=\"com.apple.streamingkeydelivery\",KEYFORMATVERSIONS=\"1\"
#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"data:text/plain;base64,AAAA\",KEYFORMAT=\"urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed\"
#EXTINF:4.0,
drm.mp4
#EXT-X-ENDLIST
";
        let expected = format!(
            "\
#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:12
#EXT-X-KEY:METHOD=AES-128,URI=\"key.bin?{Q}\",IV=0x1234567890ABCDEF1234567890ABCDEF,KEYFORMAT=\"identity\",KEYFORMATVERSIONS=\"1\"
#EXT-X-MAP:URI=\"init.mp4?{Q}\",BYTERANGE=\"720@0\"
#EXTINF:4.0,
#EXT-X-BYTERANGE:75232@720
main.mp4?{Q}
#EXTINF:4.0,title with, a comma
#EXT-X-BYTERANGE:82112
main.mp4?{Q}
#EXT-X-KEY:METHOD=NONE
#EXTINF:4.0,
clear.mp4?{Q}
#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://key-id-42\",KEYFORMAT=\"com.apple.streamingkeydelivery\",KEYFORMATVERSIONS=\"1\"
#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"data:text/plain;base64,AAAA\",KEYFORMAT=\"urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed\"
#EXTINF:4.0,
drm.mp4?{Q}
#EXT-X-ENDLIST
"
        );
        assert_eq!(hls(input), expected);
    }

    #[test]
    fn absolute_uris_only_for_this_scheme_and_host() {
        let input = "\
#EXTINF:4,
http://cdn.example:8080/v/s0.ts
#EXTINF:4,
HTTP://CDN.Example:8080/v/s1.ts
#EXTINF:4,
//cdn.example:8080/v/s2.ts
#EXTINF:4,
/v/s3.ts
#EXTINF:4,
../s4.ts
#EXTINF:4,
https://cdn.example:8080/v/s5.ts
#EXTINF:4,
http://cdn.example/v/s6.ts
#EXTINF:4,
http://cdn.example:8080.evil.example/v/s7.ts
#EXTINF:4,
//other.example/v/s8.ts
#EXT-X-KEY:METHOD=AES-128,URI=\"https://keys.example/k?kid=7\"
#EXT-X-KEY:METHOD=AES-128,URI=\"http://cdn.example:8080/k?kid=7\"
";
        let expected = format!(
            "\
#EXTINF:4,
http://cdn.example:8080/v/s0.ts?{Q}
#EXTINF:4,
HTTP://CDN.Example:8080/v/s1.ts?{Q}
#EXTINF:4,
//cdn.example:8080/v/s2.ts?{Q}
#EXTINF:4,
/v/s3.ts?{Q}
#EXTINF:4,
../s4.ts?{Q}
#EXTINF:4,
https://cdn.example:8080/v/s5.ts
#EXTINF:4,
http://cdn.example/v/s6.ts
#EXTINF:4,
http://cdn.example:8080.evil.example/v/s7.ts
#EXTINF:4,
//other.example/v/s8.ts
#EXT-X-KEY:METHOD=AES-128,URI=\"https://keys.example/k?kid=7\"
#EXT-X-KEY:METHOD=AES-128,URI=\"http://cdn.example:8080/k?kid=7&{Q}\"
"
        );
        assert_eq!(hls(input), expected);
    }

    #[test]
    fn existing_queries_kept_and_stale_vidgate_parameters_replaced() {
        let input = "\
#EXT-X-MAP:URI=\"init.mp4?v=3&session=OLD\"
#EXT-X-KEY:METHOD=AES-128,URI=\"key?server_auth=stale\"
#EXTINF:4,
s0.ts?v=3
#EXTINF:4,
s1.ts?session=OLD&v=3&server_auth=stale&client_auth=x
#EXTINF:4,
s2.ts?server_auth=stale
#EXTINF:4,
s3.ts?sessionx=keep&v=3#t=10
#EXTINF:4,
https://other.example/s4.ts?session=theirs
";
        let expected = format!(
            "\
#EXT-X-MAP:URI=\"init.mp4?v=3&{Q}\"
#EXT-X-KEY:METHOD=AES-128,URI=\"key?{Q}\"
#EXTINF:4,
s0.ts?v=3&{Q}
#EXTINF:4,
s1.ts?v=3&{Q}
#EXTINF:4,
s2.ts?{Q}
#EXTINF:4,
s3.ts?sessionx=keep&v=3&{Q}#t=10
#EXTINF:4,
https://other.example/s4.ts?session=theirs
"
        );
        assert_eq!(hls(input), expected);
    }

    #[test]
    fn line_endings_final_newline_bom_and_whitespace_are_kept() {
        // CRLF throughout, no final newline.
        assert_eq!(
            hls("#EXTM3U\r\n#EXT-X-MAP:URI=\"i.mp4\"\r\n#EXTINF:4,\r\ns0.ts\r\n#EXTINF:4,\r\ns1.ts"),
            format!(
                "#EXTM3U\r\n#EXT-X-MAP:URI=\"i.mp4?{Q}\"\r\n#EXTINF:4,\r\ns0.ts?{Q}\r\n#EXTINF:4,\r\ns1.ts?{Q}"
            )
        );
        // Mixed endings, blank lines (some holding whitespace), a final tag without newline.
        assert_eq!(
            hls("#EXTM3U\n\r\n#EXTINF:4,\r\ns0.ts\n \t\n\ns1.ts\r\n#EXT-X-ENDLIST"),
            format!("#EXTM3U\n\r\n#EXTINF:4,\r\ns0.ts?{Q}\n \t\n\ns1.ts?{Q}\r\n#EXT-X-ENDLIST")
        );
        // Whitespace around URIs and tags is kept around the rewritten text.
        assert_eq!(
            hls("  s0.ts \t\r\n\ts1.ts\n  #EXT-X-MAP:URI=\"i.mp4\"  \r\n#EXT-X-KEY: METHOD=AES-128 , URI = \"k\" ,IV=0x1\n"),
            format!("  s0.ts?{Q} \t\r\n\ts1.ts?{Q}\n  #EXT-X-MAP:URI=\"i.mp4?{Q}\"  \r\n#EXT-X-KEY: METHOD=AES-128 , URI = \"k?{Q}\" ,IV=0x1\n")
        );
        // A byte-order mark is kept, and does not make the first line a URI.
        assert_eq!(
            hls("\u{feff}#EXTM3U\n#EXTINF:4,\ns0.ts\n"),
            format!("\u{feff}#EXTM3U\n#EXTINF:4,\ns0.ts?{Q}\n")
        );
        assert_eq!(hls("\u{feff}s0.ts"), format!("\u{feff}s0.ts?{Q}"));
        // A lone CR (not a line ending in HLS) at the very end stays trailing whitespace.
        assert_eq!(hls("s0.ts\r"), format!("s0.ts?{Q}\r"));
        assert_eq!(hls(""), "");
        assert_eq!(hls("\n\r\n"), "\n\r\n");
    }

    #[test]
    fn unknown_tags_comments_and_other_attributes_are_untouched() {
        let input = "\
#EXTM3U
# a comment: URI=\"s0.ts\"
#EXT-X-SOMETHING-NEW:URI=\"x.ts\"
#EXT-X-CONTENT-STEERING:SERVER-URI=\"steering.json\",PATHWAY-ID=\"CDN\"
#EXT-X-DATERANGE:ID=\"ad1\",START-DATE=\"2024-01-01T00:00:00Z\",X-ASSET-URI=\"ad.m3u8\"
#ext-x-key:METHOD=AES-128,URI=\"lower.key\"
#EXT-X-KEYS:URI=\"not-a-key-tag\"
#EXT-X-MEDIA-SEQUENCE:7
#EXT-X-KEY:METHOD=AES-128,X-URI=\"x.key\",KEYFORMAT=\"URI\",URI=\"k.key\",XURI=\"y\"
#EXT-X-KEY:METHOD=AES-128,KEY-URI=\"z.key\"
#EXTINF:4,URI=\"in-a-title\"
s0.ts
";
        let expected = format!(
            "\
#EXTM3U
# a comment: URI=\"s0.ts\"
#EXT-X-SOMETHING-NEW:URI=\"x.ts\"
#EXT-X-CONTENT-STEERING:SERVER-URI=\"steering.json\",PATHWAY-ID=\"CDN\"
#EXT-X-DATERANGE:ID=\"ad1\",START-DATE=\"2024-01-01T00:00:00Z\",X-ASSET-URI=\"ad.m3u8\"
#ext-x-key:METHOD=AES-128,URI=\"lower.key\"
#EXT-X-KEYS:URI=\"not-a-key-tag\"
#EXT-X-MEDIA-SEQUENCE:7
#EXT-X-KEY:METHOD=AES-128,X-URI=\"x.key\",KEYFORMAT=\"URI\",URI=\"k.key?{Q}\",XURI=\"y\"
#EXT-X-KEY:METHOD=AES-128,KEY-URI=\"z.key\"
#EXTINF:4,URI=\"in-a-title\"
s0.ts?{Q}
"
        );
        assert_eq!(hls(input), expected);
    }

    #[test]
    fn quoted_values_may_hold_commas_and_uri_text() {
        let input = "\
#EXT-X-I-FRAME-STREAM-INF:CODECS=\"avc1.4d401f,mp4a.40.2\",URI=\"i.m3u8\",BANDWIDTH=1
#EXT-X-MEDIA:TYPE=AUDIO,NAME=\"a,URI=b.m3u8,c\",GROUP-ID=\"g\",URI=\"a.m3u8\"
#EXT-X-MEDIA:TYPE=AUDIO,NAME=\"URI=\",GROUP-ID=\"g\",CHARACTERISTICS=\"public.accessibility,URI\",URI=\"b.m3u8\",DEFAULT=NO
";
        let expected = format!(
            "\
#EXT-X-I-FRAME-STREAM-INF:CODECS=\"avc1.4d401f,mp4a.40.2\",URI=\"i.m3u8?{Q}\",BANDWIDTH=1
#EXT-X-MEDIA:TYPE=AUDIO,NAME=\"a,URI=b.m3u8,c\",GROUP-ID=\"g\",URI=\"a.m3u8?{Q}\"
#EXT-X-MEDIA:TYPE=AUDIO,NAME=\"URI=\",GROUP-ID=\"g\",CHARACTERISTICS=\"public.accessibility,URI\",URI=\"b.m3u8?{Q}\",DEFAULT=NO
"
        );
        assert_eq!(hls(input), expected);
    }

    #[test]
    fn malformed_attribute_lists_are_copied() {
        let input = "\
#EXT-X-KEY:METHOD=AES-128,URI=k.key
#EXT-X-KEY:METHOD=AES-128,URI=\"unterminated.key
#EXT-X-MAP:URI=\"\"
#EXT-X-MAP:
#EXT-X-MAP:,,URI,=,\"\",URI=\"ok.mp4\"junk,URI=\"again.mp4\"
#EXT-X-MAP:BYTERANGE=\"1@0\",URI=\"last.mp4\"
";
        let expected = format!(
            "\
#EXT-X-KEY:METHOD=AES-128,URI=k.key
#EXT-X-KEY:METHOD=AES-128,URI=\"unterminated.key
#EXT-X-MAP:URI=\"\"
#EXT-X-MAP:
#EXT-X-MAP:,,URI,=,\"\",URI=\"ok.mp4?{Q}\"junk,URI=\"again.mp4?{Q}\"
#EXT-X-MAP:BYTERANGE=\"1@0\",URI=\"last.mp4?{Q}\"
"
        );
        assert_eq!(hls(input), expected);
    }

    #[test]
    fn low_latency_parts_preload_hints_and_rendition_reports() {
        let input = "\
#EXTM3U
#EXT-X-TARGETDURATION:4
#EXT-X-VERSION:9
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.0,CAN-SKIP-UNTIL=24.0
#EXT-X-PART-INF:PART-TARGET=0.333
#EXT-X-MEDIA-SEQUENCE:266
#EXT-X-SKIP:SKIPPED-SEGMENTS=3
#EXT-X-MAP:URI=\"init.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2024-01-01T00:00:00.000Z
#EXTINF:4.00008,
fileSequence269.mp4
#EXT-X-PART:DURATION=0.33334,URI=\"filePart270.0.mp4\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.33334,URI=\"filePart270.1.mp4\"
#EXT-X-PART:DURATION=0.33334,URI=\"main.mp4\",BYTERANGE=\"20000@0\"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"filePart270.2.mp4\"
#EXT-X-PRELOAD-HINT:TYPE=MAP,URI=\"init2.mp4\",BYTERANGE-START=0,BYTERANGE-LENGTH=720
#EXT-X-RENDITION-REPORT:URI=\"../1M/waitForMSN.php\",LAST-MSN=273,LAST-PART=2
#EXT-X-RENDITION-REPORT:URI=\"https://other.example/4M/x.m3u8\",LAST-MSN=273,LAST-PART=1
";
        let expected = format!(
            "\
#EXTM3U
#EXT-X-TARGETDURATION:4
#EXT-X-VERSION:9
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.0,CAN-SKIP-UNTIL=24.0
#EXT-X-PART-INF:PART-TARGET=0.333
#EXT-X-MEDIA-SEQUENCE:266
#EXT-X-SKIP:SKIPPED-SEGMENTS=3
#EXT-X-MAP:URI=\"init.mp4?{Q}\"
#EXT-X-PROGRAM-DATE-TIME:2024-01-01T00:00:00.000Z
#EXTINF:4.00008,
fileSequence269.mp4?{Q}
#EXT-X-PART:DURATION=0.33334,URI=\"filePart270.0.mp4?{Q}\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.33334,URI=\"filePart270.1.mp4?{Q}\"
#EXT-X-PART:DURATION=0.33334,URI=\"main.mp4?{Q}\",BYTERANGE=\"20000@0\"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"filePart270.2.mp4?{Q}\"
#EXT-X-PRELOAD-HINT:TYPE=MAP,URI=\"init2.mp4?{Q}\",BYTERANGE-START=0,BYTERANGE-LENGTH=720
#EXT-X-RENDITION-REPORT:URI=\"../1M/waitForMSN.php?{Q}\",LAST-MSN=273,LAST-PART=2
#EXT-X-RENDITION-REPORT:URI=\"https://other.example/4M/x.m3u8\",LAST-MSN=273,LAST-PART=1
"
        );
        assert_eq!(hls(input), expected);
    }

    /// What ffmpeg 5.1 writes for
    /// `ffmpeg -i in -f hls -hls_time 2 -hls_segment_type fmp4 -hls_playlist_type vod out.m3u8`,
    /// and, with `-master_pl_name master.m3u8 -var_stream_map "v:0,agroup:aud a:0,agroup:aud"`,
    /// its master playlist (blank lines included).
    #[test]
    fn ffmpeg_fmp4_playlists() {
        let media = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
            #EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2.000000,\nout0.m4s\n\
            #EXTINF:2.000000,\nout1.m4s\n#EXTINF:2.000000,\nout2.m4s\n#EXTINF:1.000000,\nout3.m4s\n\
            #EXT-X-ENDLIST\n";
        assert_eq!(
            hls(media),
            format!(
                "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
                #EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MAP:URI=\"init.mp4?{Q}\"\n#EXTINF:2.000000,\nout0.m4s?{Q}\n\
                #EXTINF:2.000000,\nout1.m4s?{Q}\n#EXTINF:2.000000,\nout2.m4s?{Q}\n#EXTINF:1.000000,\nout3.m4s?{Q}\n\
                #EXT-X-ENDLIST\n"
            )
        );
        let master = "#EXTM3U\n#EXT-X-VERSION:7\n\
            #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"group_aud\",NAME=\"audio_1\",DEFAULT=YES,URI=\"stream_1.m3u8\"\n\
            #EXT-X-STREAM-INF:BANDWIDTH=75900,RESOLUTION=160x120,CODECS=\"avc1.f4000a,mp4a.40.2\",AUDIO=\"group_aud\"\n\
            stream_0.m3u8\n\n\
            #EXT-X-STREAM-INF:BANDWIDTH=75900,CODECS=\"mp4a.40.2\",AUDIO=\"group_aud\"\n\
            stream_1.m3u8\n\n";
        assert_eq!(
            hls(master),
            format!(
                "#EXTM3U\n#EXT-X-VERSION:7\n\
                #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"group_aud\",NAME=\"audio_1\",DEFAULT=YES,URI=\"stream_1.m3u8?{Q}\"\n\
                #EXT-X-STREAM-INF:BANDWIDTH=75900,RESOLUTION=160x120,CODECS=\"avc1.f4000a,mp4a.40.2\",AUDIO=\"group_aud\"\n\
                stream_0.m3u8?{Q}\n\n\
                #EXT-X-STREAM-INF:BANDWIDTH=75900,CODECS=\"mp4a.40.2\",AUDIO=\"group_aud\"\n\
                stream_1.m3u8?{Q}\n\n"
            )
        );
    }

    /// What ffmpeg 5.1 writes with `-hls_flags single_file -hls_key_info_file`: one file in byte
    /// ranges, and a key on another host.
    #[test]
    fn ffmpeg_single_file_with_key() {
        let input = "#EXTM3U\n#EXT-X-VERSION:4\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
            #EXT-X-PLAYLIST-TYPE:VOD\n\
            #EXT-X-KEY:METHOD=AES-128,URI=\"https://keys.example/enc.key?kid=7\",IV=0x0123456789abcdef0123456789abcdef\n\
            #EXTINF:2.000000,\n#EXT-X-BYTERANGE:25392@0\nsingle.ts\n\
            #EXTINF:2.000000,\n#EXT-X-BYTERANGE:25952@25392\nsingle.ts\n#EXT-X-ENDLIST\n";
        assert_eq!(
            hls(input),
            format!(
                "#EXTM3U\n#EXT-X-VERSION:4\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
                #EXT-X-PLAYLIST-TYPE:VOD\n\
                #EXT-X-KEY:METHOD=AES-128,URI=\"https://keys.example/enc.key?kid=7\",IV=0x0123456789abcdef0123456789abcdef\n\
                #EXTINF:2.000000,\n#EXT-X-BYTERANGE:25392@0\nsingle.ts?{Q}\n\
                #EXTINF:2.000000,\n#EXT-X-BYTERANGE:25952@25392\nsingle.ts?{Q}\n#EXT-X-ENDLIST\n"
            )
        );
    }

    #[test]
    fn variables_that_could_move_the_origin_are_left_alone() {
        let input = "\
#EXT-X-DEFINE:NAME=\"cdn\",VALUE=\"https://other.example\"
#EXT-X-DEFINE:QUERYPARAM=\"q\"
{$cdn}/s0.ts
/{$path}/s1.ts
//{$host}/s2.ts
//cdn.example:8080{$port}/s3.ts
http:{$rest}/s4.ts
http:/{$rest}/s5.ts
http://{$host}/s6.ts
ht{$tp}://cdn.example:8080/s7.ts
seg{$n}.ts
v/{$quality}/s8.ts
/v/{$quality}/s9.ts
s10.ts?q={$q}
http://cdn.example:8080/{$p}/s11.ts
//cdn.example:8080/{$p}/s12.ts
a b:{$x}
#EXT-X-MAP:URI=\"{$cdn}/init.mp4\"
#EXT-X-MAP:URI=\"{$quality}/init.mp4\"
#EXT-X-MAP:URI=\"v/{$quality}/init.mp4\"
";
        let expected = format!(
            "\
#EXT-X-DEFINE:NAME=\"cdn\",VALUE=\"https://other.example\"
#EXT-X-DEFINE:QUERYPARAM=\"q\"
{{$cdn}}/s0.ts
/{{$path}}/s1.ts
//{{$host}}/s2.ts
//cdn.example:8080{{$port}}/s3.ts
http:{{$rest}}/s4.ts
http:/{{$rest}}/s5.ts
http://{{$host}}/s6.ts
ht{{$tp}}://cdn.example:8080/s7.ts
seg{{$n}}.ts
v/{{$quality}}/s8.ts?{Q}
/v/{{$quality}}/s9.ts?{Q}
s10.ts?q={{$q}}&{Q}
http://cdn.example:8080/{{$p}}/s11.ts?{Q}
//cdn.example:8080/{{$p}}/s12.ts?{Q}
a b:{{$x}}?{Q}
#EXT-X-MAP:URI=\"{{$cdn}}/init.mp4\"
#EXT-X-MAP:URI=\"{{$quality}}/init.mp4\"
#EXT-X-MAP:URI=\"v/{{$quality}}/init.mp4?{Q}\"
"
        );
        assert_eq!(hls(input), expected);
    }

    #[test]
    fn rewriting_twice_changes_nothing_more() {
        let input =
            "#EXTM3U\r\n#EXT-X-MAP:URI=\"init.mp4?session=OLD\"\r\n#EXTINF:4,\r\n s0.ts?v=1 \r\n";
        let once = hls(input);
        assert_ne!(once, input);
        assert_eq!(hls(&once), once);
    }

    // --- properties -----------------------------------------------------------------------

    /// A marker query that no generated playlist contains (upper case, which the generators
    /// never produce), made of vidgate's own parameters only.
    const MARK: Rewrite<'static> = Rewrite {
        scheme: "http",
        host: "cdn.example:8080",
        query: "server_auth=TOKEN&session=SESSION",
    };

    /// A same-origin or cross-origin URI whose rewriting only inserts `?query` or `&query`:
    /// no vidgate parameter, no empty query pair, no `?` or `#` in a fragment.
    fn uri() -> impl Strategy<Value = String> {
        let prefix = prop_oneof![
            Just(""),
            Just("/v/"),
            Just("../"),
            Just("http://cdn.example:8080/"),
            Just("//cdn.example:8080/"),
            Just("https://other.example/"),
            Just("skd://"),
            Just("data:text/plain,"),
        ];
        let path = "[a-z0-9_.-]{1,12}(/[a-z0-9_.-]{1,8}){0,2}";
        let query = prop::option::of("[a-z]{1,4}=[a-z0-9,]{0,4}(&[a-z]{1,4}=[a-z0-9]{0,4}){0,2}");
        let fragment = prop::option::of("[a-z0-9=.]{0,6}");
        (prefix, path, query, fragment).prop_map(|(prefix, path, query, fragment)| {
            let mut uri = format!("{prefix}{path}");
            if let Some(query) = query {
                uri.push('?');
                uri.push_str(&query);
            }
            if let Some(fragment) = fragment {
                uri.push('#');
                uri.push_str(&fragment);
            }
            uri
        })
    }

    /// Attributes that are not `URI`, some with commas and `URI=` inside quotes.
    fn other_attribute() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("METHOD=AES-128".to_owned()),
            Just("IV=0x0123456789abcdef0123456789abcdef".to_owned()),
            Just("KEYFORMAT=\"identity\"".to_owned()),
            Just("BYTERANGE=\"720@0\"".to_owned()),
            Just("CODECS=\"avc1.4d401f,mp4a.40.2\"".to_owned()),
            Just("X-URI=\"x.ts\"".to_owned()),
            Just("NAME=\"a,URI=b,c\"".to_owned()),
            "[a-z0-9 ,=]{0,10}".prop_map(|s| format!("NAME=\"{s}\"")),
        ]
    }

    /// One line, without its ending, and whether it may contain a rewritten URI.
    fn line() -> impl Strategy<Value = (String, bool)> {
        let ws = || "[ \t]{0,2}";
        let tag = prop::sample::select(URI_TAGS.to_vec());
        let tag_line = (
            tag,
            prop::collection::vec(other_attribute(), 0..3),
            prop::option::of(uri()),
            prop::collection::vec(other_attribute(), 0..2),
        )
            .prop_map(|(tag, before, uri, after)| {
                let mut attributes = before;
                if let Some(uri) = uri {
                    attributes.push(format!("URI=\"{uri}\""));
                }
                attributes.extend(after);
                (format!("{tag}{}", attributes.join(",")), true)
            });
        let uri_line = (ws(), uri(), ws()).prop_map(|(a, uri, b)| (format!("{a}{uri}{b}"), true));
        let plain = prop_oneof![
            Just("#EXTM3U".to_owned()),
            Just("#EXTINF:4.000,".to_owned()),
            Just("#EXT-X-BYTERANGE:720@0".to_owned()),
            Just("#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"a,b\"".to_owned()),
            Just("#EXT-X-MEDIA-SEQUENCE:3".to_owned()),
            Just("#EXT-X-KEY:METHOD=NONE".to_owned()),
            "#[ a-z0-9=\",]{0,12}".prop_map(|s| s.to_owned()),
            (uri()).prop_map(|uri| format!("#EXT-X-SOMETHING-NEW:URI=\"{uri}\"")),
            (uri()).prop_map(|uri| format!("#ext-x-key:URI=\"{uri}\"")),
            ws().prop_map(|s| s.to_owned()),
        ]
        .prop_map(|line| (line, false));
        prop_oneof![tag_line, uri_line, plain]
    }

    /// A playlist: lines with random endings, maybe a BOM, maybe no final newline.
    fn playlist() -> impl Strategy<Value = (String, Vec<bool>)> {
        (
            any::<bool>(),
            prop::collection::vec((line(), prop::sample::select(vec!["\n", "\r\n"])), 0..24),
            any::<bool>(),
        )
            .prop_map(|(bom, lines, final_newline)| {
                let mut text = if bom {
                    "\u{feff}".to_owned()
                } else {
                    String::new()
                };
                let mut kinds = Vec::with_capacity(lines.len());
                let count = lines.len();
                for (i, ((line, may_change), ending)) in lines.into_iter().enumerate() {
                    text.push_str(&line);
                    if i + 1 < count || final_newline {
                        text.push_str(ending);
                    }
                    kinds.push(may_change);
                }
                (text, kinds)
            })
    }

    proptest! {
        #[test]
        fn removing_the_inserted_query_gives_the_input_back((input, _) in playlist()) {
            let output = rewrite(&input, &MARK);
            let back = output
                .replace(&format!("?{}", MARK.query), "")
                .replace(&format!("&{}", MARK.query), "");
            prop_assert_eq!(back, input);
        }

        #[test]
        fn lines_without_uris_are_unchanged((input, may_change) in playlist()) {
            let output = rewrite(&input, &MARK);
            let body = |s: &str| s.strip_prefix('\u{feff}').unwrap_or(s).to_owned();
            let (input, output) = (body(&input), body(&output));
            let before: Vec<&str> = input.split_inclusive('\n').collect();
            let after: Vec<&str> = output.split_inclusive('\n').collect();
            prop_assert_eq!(before.len(), after.len());
            for ((before, after), may_change) in before.iter().zip(&after).zip(&may_change) {
                if !may_change {
                    prop_assert_eq!(before, after);
                }
            }
        }

        #[test]
        fn same_origin_uris_get_the_query_and_no_other_does((input, _) in playlist()) {
            let output = rewrite(&input, &MARK);
            for line in output.strip_prefix('\u{feff}').unwrap_or(&output).split_inclusive('\n') {
                let line = line.trim_matches(is_space);
                let uris: Vec<&str> = if line.is_empty() {
                    Vec::new()
                } else if !line.starts_with('#') {
                    vec![line]
                } else if URI_TAGS.iter().any(|tag| line.starts_with(tag)) {
                    // Values of attributes named exactly `URI` (generated values hold no `"`).
                    line.match_indices("URI=\"")
                        .filter(|(at, _)| matches!(line.as_bytes()[at - 1], b',' | b':'))
                        .filter_map(|(at, _)| line[at + 5..].split('"').next())
                        .collect()
                } else {
                    Vec::new()
                };
                for uri in uris {
                    prop_assert_eq!(uri.contains(MARK.query), MARK.same_origin(uri), "{}", line);
                }
            }
            // And nothing else carries it: every inserted query sits in one of those URIs.
            let x_uri = format!("X-URI=\"x.ts?{}", MARK.query);
            prop_assert!(!output.contains(&x_uri), "{}", output);
        }

        #[test]
        fn arbitrary_text_keeps_its_lines_and_rewriting_is_idempotent(
            input in concat!(
                r"(\x{FEFF})?([ \t]{0,2}(#|#EXT-X-(KEY|MAP|PART|MEDIA):)?",
                r#"(URI=|"|,|=| |\{\$|/|//|http:|http://cdn\.example:8080|\?|#|&|session=|[^\n]{0,6}){0,8}"#,
                r"(\n|\r\n)?){0,8}",
            ),
        ) {
            let once = rewrite(&input, &R);
            // Only a mark at the very start is a BOM; elsewhere U+FEFF is text like any other.
            let body = |s: &str| s.strip_prefix('\u{feff}').unwrap_or(s).to_owned();
            let (input, after) = (body(&input), body(&once));
            prop_assert_eq!(after.split_inclusive('\n').count(), input.split_inclusive('\n').count());
            for (before, after) in input.split_inclusive('\n').zip(after.split_inclusive('\n')) {
                let content = before.trim_matches(is_space);
                let tagged = URI_TAGS.iter().any(|tag| content.starts_with(tag));
                if content.is_empty() || (content.starts_with('#') && !tagged) {
                    prop_assert_eq!(before, after);
                }
            }
            prop_assert_eq!(rewrite(&once, &R), once);
        }
    }
}
