//! Tests of rewriting DASH manifests.

use super::*;
use proptest::prelude::*;

const R: Rewrite<'static> = Rewrite {
    scheme: "http",
    host: "cdn.example:8080",
    query: "server_auth=t0k&session=S1",
};

/// [`R`]'s query as it reads in XML.
const Q: &str = "server_auth=t0k&amp;session=S1";

fn run(mpd: &str) -> String {
    let out = rewrite(mpd.as_bytes(), &R).expect("rewrites");
    String::from_utf8(out).expect("UTF-8 out")
}

/// Every attribute (`Element@name`) and the trimmed text of every URI element, as a
/// player's XML parser reads them back: unescaped, attributes normalized.
fn model(xml: &str) -> Vec<(String, String)> {
    let mut reader = Reader::from_str(xml.strip_prefix('\u{feff}').unwrap_or(xml));
    let mut entries = Vec::new();
    let mut text: Option<(String, String)> = None;
    loop {
        let event = reader.read_event().expect("the output parses");
        let empty = matches!(event, Event::Empty(_));
        match event {
            Event::Start(e) | Event::Empty(e) => {
                let name = String::from_utf8(e.local_name().as_ref().to_vec()).unwrap();
                for a in e.attributes() {
                    let a = a.expect("the output's attributes parse");
                    let key = String::from_utf8(a.key.as_ref().to_vec()).unwrap();
                    let value = a.normalized_value(XmlVersion::Implicit1_0).unwrap();
                    entries.push((format!("{name}@{key}"), value.into_owned()));
                }
                if !empty && matches!(name.as_str(), "BaseURL" | "Location" | "PatchLocation") {
                    text = Some((name, String::new()));
                }
            }
            Event::Text(t) => {
                if let Some((_, v)) = &mut text {
                    v.push_str(&t.xml10_content().unwrap());
                }
            }
            Event::CData(t) => {
                if let Some((_, v)) = &mut text {
                    v.push_str(&t.xml10_content().unwrap());
                }
            }
            Event::GeneralRef(r) => {
                if let Some((_, v)) = &mut text {
                    v.push_str(&resolve(&r).unwrap());
                }
            }
            Event::End(_) => {
                if let Some((name, v)) = text.take() {
                    entries.push((name, v.trim_matches(is_xml_space).to_owned()));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    entries
}

/// The output reads back as the input did, except that the values `rewritten` picks (by
/// key and value) are exactly what [`Rewrite::apply`] made of them.
fn assert_reads_back(input: &str, output: &str, rewritten: impl Fn(&str, &str) -> bool) -> usize {
    let before = model(input);
    let after = model(output);
    assert_eq!(before.len(), after.len(), "{output}");
    let mut changed = 0;
    for ((key, old), (key_after, new)) in before.iter().zip(&after) {
        assert_eq!(key, key_after);
        if rewritten(key, old) {
            assert_eq!(Some(new), R.apply(old).as_ref(), "{key}");
            changed += 1;
        } else {
            assert_eq!(new, old, "{key} changed");
        }
    }
    assert!(changed > 0, "the test rewrites nothing");
    changed
}

/// The keys of the values vidgate rewrites.
fn is_uri(key: &str) -> bool {
    matches!(
        key,
        "BaseURL"
            | "Location"
            | "PatchLocation"
            | "SegmentTemplate@media"
            | "SegmentTemplate@initialization"
            | "SegmentTemplate@index"
            | "SegmentTemplate@bitstreamSwitching"
            | "SegmentURL@media"
            | "SegmentURL@index"
            | "Initialization@sourceURL"
            | "RepresentationIndex@sourceURL"
            | "BitstreamSwitching@sourceURL"
    )
}

/// Written by `ffmpeg -f lavfi -i testsrc -f lavfi -i sine -c:v libx264 -c:a aac
/// -map 0:v -map 1:a -seg_duration 2 -f dash manifest.mpd` (ffmpeg 5.1), tabs and all.
const FFMPEG: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
	xmlns="urn:mpeg:dash:schema:mpd:2011"
	xmlns:xlink="http://www.w3.org/1999/xlink"
	xsi:schemaLocation="urn:mpeg:DASH:schema:MPD:2011 http://standards.iso.org/ittf/PubliclyAvailableStandards/MPEG-DASH_schema_files/DASH-MPD.xsd"
	profiles="urn:mpeg:dash:profile:isoff-live:2011"
	type="static"
	mediaPresentationDuration="PT4.0S"
	maxSegmentDuration="PT2.0S"
	minBufferTime="PT8.0S">
	<ProgramInformation>
	</ProgramInformation>
	<ServiceDescription id="0">
	</ServiceDescription>
	<Period id="0" start="PT0.0S">
		<AdaptationSet id="0" contentType="video" startWithSAP="1" segmentAlignment="true" bitstreamSwitching="true" frameRate="25/1" maxWidth="160" maxHeight="90" par="16:9">
			<Representation id="0" mimeType="video/mp4" codecs="avc1.f4000b" bandwidth="34414" width="160" height="90" sar="1:1">
				<SegmentTemplate timescale="12800" initialization="init-stream$RepresentationID$.m4s" media="chunk-stream$RepresentationID$-$Number%05d$.m4s" startNumber="1">
					<SegmentTimeline>
						<S t="0" d="51200" />
					</SegmentTimeline>
				</SegmentTemplate>
			</Representation>
		</AdaptationSet>
		<AdaptationSet id="1" contentType="audio" startWithSAP="1" segmentAlignment="true" bitstreamSwitching="true">
			<Representation id="1" mimeType="audio/mp4" codecs="mp4a.40.2" bandwidth="69000" audioSamplingRate="44100">
				<AudioChannelConfiguration schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011" value="1" />
				<SegmentTemplate timescale="44100" initialization="init-stream$RepresentationID$.m4s" media="chunk-stream$RepresentationID$-$Number%05d$.m4s" startNumber="1">
					<SegmentTimeline>
						<S t="0" d="88064" />
						<S d="88336" />
					</SegmentTimeline>
				</SegmentTemplate>
			</Representation>
		</AdaptationSet>
	</Period>
</MPD>
"#;

#[test]
fn an_ffmpeg_mpd_gets_the_query_on_its_templates_and_nothing_else_changes() {
    let out = run(FFMPEG);
    let expected = FFMPEG
        .replace(
            r#"initialization="init-stream$RepresentationID$.m4s""#,
            &format!(r#"initialization="init-stream$RepresentationID$.m4s?{Q}""#),
        )
        .replace(
            r#"media="chunk-stream$RepresentationID$-$Number%05d$.m4s""#,
            &format!(r#"media="chunk-stream$RepresentationID$-$Number%05d$.m4s?{Q}""#),
        );
    assert_ne!(expected, FFMPEG);
    assert_eq!(out, expected);
    assert_eq!(out.matches(Q).count(), 4);
    assert_reads_back(FFMPEG, &out, |key, _| is_uri(key));
}

#[test]
fn a_segment_list_gets_it_on_media_index_and_source_urls_not_on_ranges() {
    let mpd = r#"<?xml version="1.0"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT6S">
  <Period>
    <AdaptationSet mimeType="video/mp4">
      <Representation id="v0" bandwidth="500000">
        <BaseURL>video/</BaseURL>
        <SegmentList timescale="1000" duration="2000">
          <Initialization sourceURL="init.mp4" range="0-861"/>
          <RepresentationIndex sourceURL="index.sidx"/>
          <SegmentURL media="seg1.m4s" mediaRange="862-50000"/>
          <SegmentURL media="seg2.m4s?v=2" mediaRange="50001-99000" index="seg2.sidx" indexRange="0-99"/>
          <SegmentURL mediaRange="99001-150000"/>
        </SegmentList>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>"#;
    let out = run(mpd);
    let expected = mpd
        .replace("video/<", &format!("video/?{Q}<"))
        .replace("init.mp4\"", &format!("init.mp4?{Q}\""))
        .replace("index.sidx\"", &format!("index.sidx?{Q}\""))
        .replace("seg1.m4s\"", &format!("seg1.m4s?{Q}\""))
        .replace("seg2.m4s?v=2\"", &format!("seg2.m4s?v=2&amp;{Q}\""))
        .replace("seg2.sidx\"", &format!("seg2.sidx?{Q}\""));
    assert_eq!(out, expected);
    assert_eq!(out.matches(Q).count(), 6);
    assert_reads_back(mpd, &out, |key, _| is_uri(key));
}

#[test]
fn base_urls_relative_and_same_origin_get_it_cross_origin_ones_do_not() {
    let mpd = r#"<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic">
  <Location>http://cdn.example:8080/v/live.mpd</Location>
  <Location>https://elsewhere.example/live.mpd</Location>
  <PatchLocation ttl="60">patch.mpp</PatchLocation>
  <BaseURL>http://CDN.example:8080/v/</BaseURL>
  <Period id="p1"><BaseURL>p1/</BaseURL></Period>
  <Period id="p2"><BaseURL>//cdn.example:8080/p2/</BaseURL></Period>
  <Period id="p3"><BaseURL>https://cdn.example:8080/p3/</BaseURL></Period>
  <Period id="p4"><BaseURL serviceLocation="b">https://other.example/p4/</BaseURL></Period>
  <Period id="p5"><BaseURL>//other.example/p5/</BaseURL></Period>
  <Period id="p6"><BaseURL></BaseURL><BaseURL/></Period>
</MPD>"#;
    let out = run(mpd);
    let expected = mpd
        .replace(
            "live.mpd</Location>\n  <L",
            &format!("live.mpd?{Q}</Location>\n  <L"),
        )
        .replace("patch.mpp<", &format!("patch.mpp?{Q}<"))
        .replace("8080/v/<", &format!("8080/v/?{Q}<"))
        .replace("p1/<", &format!("p1/?{Q}<"))
        .replace("p2/<", &format!("p2/?{Q}<"));
    assert_eq!(out, expected);
    assert_reads_back(mpd, &out, |key, value| {
        is_uri(key) && R.apply(value).is_some() && !value.is_empty() && !value.starts_with("https")
    });
}

#[test]
fn escaped_values_are_unescaped_before_and_escaped_after() {
    let mpd = r#"<MPD>
  <BaseURL>v/?a=1&amp;b=2&amp;session=old</BaseURL>
  <BaseURL><![CDATA[w/?a=1&b=<2>]]></BaseURL>
  <Period>
    <SegmentTemplate media="seg-$Number$.m4s?a=1&#x26;b=&lt;2&gt;" initialization='it"s.mp4' index="it&apos;s.sidx"/>
  </Period>
</MPD>"#;
    let out = run(mpd);
    let expected = format!(
        r#"<MPD>
  <BaseURL>v/?a=1&amp;b=2&amp;{Q}</BaseURL>
  <BaseURL>w/?a=1&amp;b=&lt;2&gt;&amp;{Q}</BaseURL>
  <Period>
    <SegmentTemplate media="seg-$Number$.m4s?a=1&amp;b=&lt;2>&amp;{Q}" initialization='it"s.mp4?{Q}' index="it's.sidx?{Q}"/>
  </Period>
</MPD>"#
    );
    assert_eq!(out, expected);
    assert_reads_back(mpd, &out, |key, _| is_uri(key));
}

#[test]
fn declaration_comments_pis_doctype_cdata_whitespace_and_quoting_are_kept() {
    let mpd = "<?xml version='1.0' encoding='UTF-8' standalone=\"yes\"?>\r\n\
<!DOCTYPE MPD>\r\n\
<!-- made by hand -->\r\n\
<?xml-stylesheet href=\"mpd.xsl\"?>\r\n\
<MPD   xmlns = 'urn:mpeg:dash:schema:mpd:2011'\r\n\ttype=\"static\" >\r\n\
  <ProgramInformation><Title><![CDATA[A & B <live>]]></Title>\
<Copyright>&#169; me &amp; you</Copyright></ProgramInformation>\r\n\
  <Period><!-- p --><AdaptationSet>\r\n\
    <SegmentTemplate   startNumber = '1'\tmedia = 'a-$Number$.m4s'  timescale=\"1\"\r\n  />\r\n\
    <ContentProtection schemeIdUri=\"urn:mpeg:dash:mp4protection:2011\" value=\"cenc\"/>\r\n\
  </AdaptationSet></Period>\r\n\
</MPD>\r\n\
<!-- trailing -->\r\n";
    let out = run(mpd);
    let expected = mpd.replace("'a-$Number$.m4s'", &format!("'a-$Number$.m4s?{Q}'"));
    assert_eq!(out, expected);
    assert_reads_back(mpd, &out, |key, _| is_uri(key));
}

#[test]
fn prefixed_elements_match_by_local_name_prefixed_attributes_do_not() {
    let mpd = r#"<mpd:MPD xmlns:mpd="urn:mpeg:dash:schema:mpd:2011" xmlns:x="urn:example:other">
  <mpd:BaseURL>base/</mpd:BaseURL>
  <mpd:Period>
    <mpd:SegmentTemplate media="m-$Number$.m4s" x:media="keep-1.m4s"/>
    <x:Thing media="keep-2.m4s" x:href="keep-3"/>
  </mpd:Period>
</mpd:MPD>"#;
    let out = run(mpd);
    let expected = mpd
        .replace("base/<", &format!("base/?{Q}<"))
        .replace("m-$Number$.m4s\"", &format!("m-$Number$.m4s?{Q}\""));
    assert_eq!(out, expected);
    assert_reads_back(mpd, &out, |key, _| is_uri(key));
}

/// Values named `yes…` must get the query, `no…` must not.
#[test]
fn relative_uris_under_a_cross_origin_base_get_no_token() {
    let mpd = r#"<MPD xmlns="urn:mpeg:dash:schema:mpd:2011">
  <Period id="foreign at the top">
    <BaseURL>https://other.example/no-1/</BaseURL>
    <AdaptationSet>
      <SegmentTemplate media="no-2-$Number$.m4s" initialization="http://cdn.example:8080/yes-3.mp4"/>
      <Representation id="r">
        <BaseURL>no-4/</BaseURL>
        <SegmentBase><Initialization sourceURL="no-5.mp4"/></SegmentBase>
      </Representation>
      <Representation id="back home">
        <BaseURL>http://cdn.example:8080/yes-6/</BaseURL>
        <SegmentList><SegmentURL media="yes-7.m4s"/></SegmentList>
      </Representation>
    </AdaptationSet>
  </Period>
  <Period id="foreign below">
    <BaseURL>http://cdn.example:8080/yes-8/</BaseURL>
    <AdaptationSet id="one Representation elsewhere">
      <SegmentTemplate media="no-9-$Number$.m4s"/>
      <Representation id="a"/>
      <Representation id="b"><BaseURL>//other.example/no-10/</BaseURL></Representation>
    </AdaptationSet>
    <AdaptationSet id="all at home">
      <SegmentTemplate media="yes-11-$Number$.m4s"/>
      <Representation id="c"><BaseURL>yes-12/</BaseURL></Representation>
    </AdaptationSet>
  </Period>
  <Period id="alternatives">
    <BaseURL serviceLocation="a">http://cdn.example:8080/yes-13/</BaseURL>
    <BaseURL serviceLocation="b">https://other.example/no-14/</BaseURL>
    <BaseURL serviceLocation="c">yes-18/</BaseURL>
    <SegmentTemplate media="no-15-$Number$.m4s"/>
  </Period>
  <Period id="not judged">
    <BaseURL>no-16/<!-- a comment --></BaseURL>
    <SegmentTemplate media="no-17-$Number$.m4s"/>
  </Period>
</MPD>"#;
    let out = run(mpd);
    let rewritten = assert_reads_back(mpd, &out, |key, value| is_uri(key) && value.contains("yes"));
    assert_eq!(rewritten, 8);
    // Value 16 is same-origin, but a comment in it keeps vidgate from judging it.
    assert!(out.contains("<BaseURL>no-16/<!-- a comment --></BaseURL>"));
}

#[test]
fn a_cross_origin_base_on_the_mpd_keeps_a_relative_location_without_token() {
    let mpd = "<MPD><BaseURL>https://other.example/</BaseURL>\
<Location>live.mpd</Location><PatchLocation>http://cdn.example:8080/p.mpp</PatchLocation></MPD>";
    let expected = mpd.replace("p.mpp<", &format!("p.mpp?{Q}<"));
    assert_eq!(run(mpd), expected);
}

#[test]
fn values_a_player_could_read_as_another_host_are_left_alone() {
    let mpd = "<MPD>\n\
<Period><BaseURL>\n   http://evil.example/no-1/\n</BaseURL><SegmentTemplate media=\"no-2.m4s\"/></Period>\n\
<Period><BaseURL>\\\\evil.example/no-3/</BaseURL><SegmentTemplate media=\"no-4.m4s\"/></Period>\n\
<Period><BaseURL>/\\evil.example/no-5/</BaseURL></Period>\n\
<Period><BaseURL>ht&#9;tp://evil.example/no-6/</BaseURL></Period>\n\
<Period><SegmentTemplate media=\"ht&#10;tp://evil.example/no-7.m4s\" index=\" \"/></Period>\n\
<Period><BaseURL>\n   yes-8/\n   </BaseURL><SegmentTemplate media=\" yes-9.m4s\t\"/></Period>\n\
</MPD>";
    let out = run(mpd);
    let expected = mpd
        .replace("yes-8/\n", &format!("yes-8/?{Q}\n"))
        // XML reads the tab as a space (attribute value normalization): so is it written.
        .replace("\" yes-9.m4s\t\"", &format!("\" yes-9.m4s?{Q} \""));
    assert_eq!(out, expected);
}

#[test]
fn malformed_input_is_refused() {
    let bad: &[&[u8]] = &[
        b"",
        b"   \n",
        b"<!-- only a comment -->",
        b"not xml at all",
        b"<MPD>",
        b"<MPD><Period></MPD>",
        b"<MPD><Period></Period>",
        b"<MPD></Period></MPD>",
        b"<MPD></MPD></MPD>",
        b"<MPD/><MPD/>",
        b"<MPD/>trailing text",
        b"text first<MPD/>",
        b"<MPD",
        b"<MPD><BaseURL>a</BaseURL",
        b"<MPD type=static/>",
        b"<MPD type=\"a\" type=\"b\"/>",
        b"<MPD type=\"a/>",
        b"<MPD>a & b</MPD>",
        b"<MPD><BaseURL>a&b</BaseURL></MPD>",
        b"<MPD><!-- unclosed </MPD>",
        b"<MPD><![CDATA[ unclosed </MPD>",
        b"<MPD><SegmentTemplate media=\"&#xZZ;\"/></MPD>",
        b"<MPD>&#0;</MPD>",
        b"<MPD/><?xml version=\"1.0\"?>",
        b"<MPD/><!DOCTYPE MPD>",
        b"<MPD>\xff\xfe</MPD>",
        b"\xff\xfe<\x00M\x00P\x00D\x00/\x00>\x00",
    ];
    for input in bad {
        assert!(
            rewrite(input, &R).is_err(),
            "accepted {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn a_doctype_is_kept_and_its_entities_never_expanded() {
    let doctype = r#"<?xml version="1.0"?>
<!DOCTYPE MPD [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY cdn "https://evil.example/">
  <!ENTITY passwd SYSTEM "file:///etc/passwd">
  <!ENTITY tag "<BaseURL>https://evil.example/</BaseURL>">
  <!ATTLIST SegmentTemplate media CDATA "x>y">
]>
"#;
    // Declared but not referenced: kept byte for byte, the rest rewritten.
    let mpd = format!("{doctype}<MPD><SegmentTemplate media=\"a.m4s\"/></MPD>");
    let expected = mpd.replace("\"a.m4s\"", &format!("\"a.m4s?{Q}\""));
    assert_eq!(run(&mpd), expected);
    // Referenced anywhere: refused, whatever the entity would expand to.
    for body in [
        "<MPD><Title>&lol2;</Title></MPD>",
        "<MPD><BaseURL>&cdn;</BaseURL></MPD>",
        "<MPD><Title>&passwd;</Title></MPD>",
        "<MPD><Period>&tag;<SegmentTemplate media=\"a.m4s\"/></Period></MPD>",
        "<MPD><SegmentTemplate media=\"&cdn;a.m4s\"/></MPD>",
        "<MPD id=\"&lol;\"/>",
    ] {
        let result = rewrite(format!("{doctype}{body}").as_bytes(), &R);
        let error = result.expect_err(body).to_string();
        assert!(
            error.contains("does not expand") || error.contains("entity"),
            "{error}"
        );
    }
}

#[test]
fn rewriting_keeps_a_byte_order_mark_and_twice_is_once() {
    let with_bom = format!("\u{feff}{FFMPEG}");
    let once = run(&with_bom);
    assert!(once.starts_with("\u{feff}<?xml"));
    assert_eq!(once, format!("\u{feff}{}", run(FFMPEG)));
    assert_eq!(run(&once), once);
    let list = "<MPD><BaseURL>v/?session=old&amp;x=1</BaseURL></MPD>";
    let once = run(list);
    assert_eq!(
        once,
        format!("<MPD><BaseURL>v/?x=1&amp;{Q}</BaseURL></MPD>")
    );
    assert_eq!(run(&once), once);
}

#[test]
fn a_long_segment_list_is_rewritten_whole() {
    const SEGMENTS: usize = 50_000;
    let mut mpd = String::from("<MPD><Period><AdaptationSet><Representation><SegmentList>");
    for i in 0..SEGMENTS {
        mpd.push_str(&format!(
            "\n<SegmentURL media=\"s{i}.m4s\" mediaRange=\"{i}-{}\"/>",
            i + 1
        ));
    }
    mpd.push_str("</SegmentList></Representation></AdaptationSet></Period></MPD>");
    let out = run(&mpd);
    assert_eq!(out.matches(Q).count(), SEGMENTS);
    assert_eq!(out.len(), mpd.len() + SEGMENTS * (Q.len() + 1));
    assert!(out.contains(&format!("\"s{}.m4s?{Q}\"", SEGMENTS - 1)));
}

proptest! {
    #[test]
    fn never_panics(input in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = rewrite(&input, &R);
    }

    #[test]
    fn never_panics_on_near_mpds(
        cut in 0..FFMPEG.len(),
        insert in "[<>&;\"'/a-z!\\[\\]?= -]{0,6}",
    ) {
        if FFMPEG.is_char_boundary(cut) {
            let input = format!("{}{insert}{}", &FFMPEG[..cut], &FFMPEG[cut..]);
            if let Ok(out) = rewrite(input.as_bytes(), &R) {
                // Whatever was accepted is still accepted once rewritten.
                prop_assert!(rewrite(&out, &R).is_ok());
            }
        }
    }

    /// Any value, escaped into text or either kind of attribute, reads back as exactly
    /// what `apply` made of it (or as it was, where it is not rewritten).
    #[test]
    fn any_value_reads_back_as_apply_made_it(value in "[ -~\u{e9}\u{2028}]{0,24}") {
        let mut text = Vec::new();
        escape_into(&mut text, &value, Escape::Text);
        let mut double = Vec::new();
        escape_into(&mut double, &value, Escape::Attribute(b'"'));
        let mut single = Vec::new();
        escape_into(&mut single, &value, Escape::Attribute(b'\''));
        let mpd = format!(
            "<MPD><BaseURL>{}</BaseURL><SegmentURL media=\"{}\" index='{}'/></MPD>",
            String::from_utf8(text).unwrap(),
            String::from_utf8(double).unwrap(),
            String::from_utf8(single).unwrap(),
        );
        let out = run(&mpd);
        let uri = value.trim_matches(is_xml_space);
        let expected = if uri.is_empty() || ambiguous(uri) {
            uri.to_owned()
        } else {
            R.apply(uri).unwrap_or_else(|| uri.to_owned())
        };
        for (key, read) in model(&out) {
            prop_assert_eq!(read.trim_matches(is_xml_space), expected.as_str(), "{}", key);
        }
    }
}
