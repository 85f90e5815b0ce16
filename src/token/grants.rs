//! Grants: which actions a token allows, on which videos.
//!
//! [`Grants`] is the form kept in the store and consulted on every request, so it is compact:
//! three bit sets and one byte buffer holding every resource of every action. [`Grant`] is the
//! expanded form people read and write (SPEC 1.2). This module knows nothing of sessions or
//! time: it answers "does this grant name that video".

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

/// An action a token can grant (SPEC 1.1, `grants` keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Watching a video or listing videos.
    Read,
    /// Recording a new video.
    Create,
    /// Changing or re-recording a video.
    Update,
    /// Deleting a video or one of its streams.
    Destroy,
}

impl Action {
    /// Every action, in the order grants are written.
    pub const ALL: [Action; 4] = [
        Action::Read,
        Action::Create,
        Action::Update,
        Action::Destroy,
    ];

    /// The action's name, as in `grants` and in metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Create => "create",
            Action::Update => "update",
            Action::Destroy => "destroy",
        }
    }

    const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The longest video identifier a grant may name, in bytes.
pub const MAX_RESOURCE_LEN: usize = 1024;

/// One action's grant, in the expanded form of SPEC 1.2.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Grant {
    /// Videos this grant names explicitly.
    pub resources: Vec<String>,
    /// Whether videos created in the same session are granted.
    pub session_owned: bool,
    /// Whether every video is granted.
    pub all: bool,
}

impl Grant {
    /// The grant of every video (the string `"all"` in JSON).
    pub fn all() -> Self {
        Grant {
            all: true,
            ..Grant::default()
        }
    }

    /// A grant naming exactly these videos.
    pub fn resources<I, S>(videos: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Grant {
            resources: videos.into_iter().map(Into::into).collect(),
            ..Grant::default()
        }
    }

    /// A grant of the videos created in the same session.
    pub fn session_owned() -> Self {
        Grant {
            session_owned: true,
            ..Grant::default()
        }
    }
}

/// A video identifier that no grant may hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a resource must be 1 to {MAX_RESOURCE_LEN} bytes without control characters")]
pub struct InvalidResource;

fn check_resource(video: &str) -> Result<(), InvalidResource> {
    if video.is_empty() || video.len() > MAX_RESOURCE_LEN || video.chars().any(char::is_control) {
        return Err(InvalidResource);
    }
    Ok(())
}

/// All of a token's grants.
///
/// Resources live in one buffer of `[action][len: u16 LE][bytes]` entries, grouped by action in
/// [`Action::ALL`] order: one allocation per token however many videos it names, and a lookup
/// that is a linear scan over bytes (fast for the handful of videos a token usually names).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Grants {
    present: u8,
    all: u8,
    session_owned: u8,
    resources: Box<[u8]>,
}

impl Grants {
    /// No grants at all.
    pub fn new() -> Self {
        Grants::default()
    }

    /// These grants with `action` set to `grant` (replacing any previous grant of it).
    pub fn with(mut self, action: Action, grant: Grant) -> Result<Self, InvalidResource> {
        self.set(action, Some(grant))?;
        Ok(self)
    }

    /// Set or clear the grant of `action`.
    pub fn set(&mut self, action: Action, grant: Option<Grant>) -> Result<(), InvalidResource> {
        if let Some(grant) = &grant {
            for video in &grant.resources {
                check_resource(video)?;
            }
        }
        let mut expanded: Vec<(Action, Option<Grant>)> =
            Action::ALL.iter().map(|&a| (a, self.get(a))).collect();
        expanded[action as usize].1 = grant;
        *self = Self::encode(&expanded);
        Ok(())
    }

    fn encode(grants: &[(Action, Option<Grant>)]) -> Self {
        let mut out = Grants::default();
        let mut buf = Vec::new();
        for (action, grant) in grants {
            let Some(grant) = grant else { continue };
            out.present |= action.bit();
            if grant.all {
                out.all |= action.bit();
            }
            if grant.session_owned {
                out.session_owned |= action.bit();
            }
            for video in &grant.resources {
                // check_resource bounds the length, so it fits in a u16.
                let len = u16::try_from(video.len()).unwrap_or(u16::MAX);
                buf.push(*action as u8);
                buf.extend_from_slice(&len.to_le_bytes());
                buf.extend_from_slice(&video.as_bytes()[..usize::from(len)]);
            }
        }
        out.resources = buf.into_boxed_slice();
        out
    }

    /// The grant of `action`, expanded; `None` when the token does not grant it.
    pub fn get(&self, action: Action) -> Option<Grant> {
        if !self.is_present(action) {
            return None;
        }
        Some(Grant {
            resources: self.resources(action).map(str::to_owned).collect(),
            session_owned: self.session_owned & action.bit() != 0,
            all: self.all & action.bit() != 0,
        })
    }

    /// Whether the token has a grant (possibly an empty one) for `action`.
    pub fn is_present(&self, action: Action) -> bool {
        self.present & action.bit() != 0
    }

    /// Every `(action, video bytes)` entry, in order. Comparisons run on these bytes: checking
    /// UTF-8 on every compare was half the cost of a decision.
    fn raw_entries(&self) -> impl Iterator<Item = (u8, &[u8])> + '_ {
        let mut rest: &[u8] = &self.resources;
        std::iter::from_fn(move || {
            let (&action, tail) = rest.split_first()?;
            let len = usize::from(u16::from_le_bytes([*tail.first()?, *tail.get(1)?]));
            let bytes = tail.get(2..2 + len)?;
            rest = &tail[2 + len..];
            Some((action, bytes))
        })
    }

    /// Every `(action, video)` entry, in order.
    fn entries(&self) -> impl Iterator<Item = (u8, &str)> + '_ {
        // Entries are only ever written from `&str`, so the conversion never fails.
        self.raw_entries()
            .filter_map(|(action, bytes)| Some((action, std::str::from_utf8(bytes).ok()?)))
    }

    /// Whether `action`'s grant names `video` explicitly.
    fn names(&self, action: Action, video: &str) -> bool {
        self.raw_entries()
            .any(|(a, v)| a == action as u8 && v == video.as_bytes())
    }

    /// The videos `action`'s grant names explicitly.
    pub fn resources(&self, action: Action) -> impl Iterator<Item = &str> + '_ {
        self.entries()
            .filter(move |&(a, _)| a == action as u8)
            .map(|(_, v)| v)
    }

    /// Every video named by any grant, once each (for the destroy cascade's index).
    pub fn videos(&self) -> Vec<&str> {
        let mut videos: Vec<&str> = self.entries().map(|(_, v)| v).collect();
        videos.sort_unstable();
        videos.dedup();
        videos
    }

    /// Whether `action` on `video` is granted (SPEC 1.2). `video` is `None` for a create and
    /// for listing; `owned` says whether a video was created in the request's session.
    pub fn allows(
        &self,
        action: Action,
        video: Option<&str>,
        owned: impl Fn(&str) -> bool,
    ) -> bool {
        if !self.is_present(action) {
            return false;
        }
        let bit = action.bit();
        if self.all & bit != 0 {
            return true;
        }
        match video {
            // A create has no target: any non-empty grant of it allows it. Listing needs `all`.
            None => {
                action == Action::Create
                    && (self.session_owned & bit != 0
                        || self.raw_entries().any(|(a, _)| a == action as u8))
            }
            Some(video) => {
                self.names(action, video) || (self.session_owned & bit != 0 && owned(video))
            }
        }
    }

    /// Whether no action grants anything (SPEC 1.4).
    pub fn is_empty(&self) -> bool {
        self.all == 0 && self.session_owned == 0 && self.resources.is_empty()
    }

    /// Whether some grant has `session_owned`, which makes the token need sessions.
    pub fn has_session_owned(&self) -> bool {
        self.session_owned != 0
    }

    /// Remove `video` from every grant's resources; whether anything changed.
    pub fn remove_resource(&mut self, video: &str) -> bool {
        if !self.raw_entries().any(|(_, v)| v == video.as_bytes()) {
            return false;
        }
        let expanded: Vec<(Action, Option<Grant>)> = Action::ALL
            .iter()
            .map(|&a| {
                let grant = self.get(a).map(|mut g| {
                    g.resources.retain(|v| v != video);
                    g
                });
                (a, grant)
            })
            .collect();
        *self = Self::encode(&expanded);
        true
    }

    /// Heap bytes this value owns (for memory accounting).
    pub fn heap_size(&self) -> usize {
        self.resources.len()
    }
}

impl fmt::Debug for Grants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for action in Action::ALL {
            if let Some(grant) = self.get(action) {
                map.entry(&action.as_str(), &grant);
            }
        }
        map.finish()
    }
}

impl Serialize for Grants {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.present.count_ones() as usize))?;
        for action in Action::ALL {
            if let Some(grant) = self.get(action) {
                map.serialize_entry(action.as_str(), &grant)?;
            }
        }
        map.end()
    }
}

/// The object form of a grant, strictly: unknown keys are refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantObject {
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    session_owned: bool,
    #[serde(default)]
    all: bool,
}

/// A grant as written: the string `"all"` or an object.
struct GrantInput(Grant);

impl<'de> Deserialize<'de> for GrantInput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct GrantVisitor;
        impl<'de> Visitor<'de> for GrantVisitor {
            type Value = GrantInput;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a grant object or the string \"all\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                if v == "all" {
                    Ok(GrantInput(Grant::all()))
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(v), &self))
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let object = GrantObject::deserialize(de::value::MapAccessDeserializer::new(map))?;
                for video in &object.resources {
                    check_resource(video).map_err(de::Error::custom)?;
                }
                Ok(GrantInput(Grant {
                    resources: object.resources,
                    session_owned: object.session_owned,
                    all: object.all,
                }))
            }
        }
        deserializer.deserialize_any(GrantVisitor)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantsInput {
    read: Option<GrantInput>,
    create: Option<GrantInput>,
    update: Option<GrantInput>,
    destroy: Option<GrantInput>,
}

impl<'de> Deserialize<'de> for Grants {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let input = GrantsInput::deserialize(deserializer)?;
        let expanded = [
            (Action::Read, input.read.map(|g| g.0)),
            (Action::Create, input.create.map(|g| g.0)),
            (Action::Update, input.update.map(|g| g.0)),
            (Action::Destroy, input.destroy.map(|g| g.0)),
        ];
        Ok(Grants::encode(&expanded))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<Grants, String> {
        serde_path_to_error::deserialize(v).map_err(|e| format!("{}: {}", e.path(), e.inner()))
    }

    fn never_owned(_: &str) -> bool {
        false
    }

    #[test]
    fn all_string_is_shorthand_for_all_true() {
        let g = parse(json!({"read": "all"})).unwrap();
        assert_eq!(g.get(Action::Read), Some(Grant::all()));
        assert!(g.allows(Action::Read, Some("anything"), never_owned));
        assert!(
            g.allows(Action::Read, None, never_owned),
            "listing needs read.all"
        );
    }

    #[test]
    fn object_fields_default_to_empty_and_false() {
        let g = parse(json!({"update": {}})).unwrap();
        assert_eq!(g.get(Action::Update), Some(Grant::default()));
        assert!(g.is_present(Action::Update));
        assert!(!g.allows(Action::Update, Some("v"), never_owned));
        assert!(g.is_empty());
    }

    #[test]
    fn resources_grant_exactly_the_named_videos() {
        let g = parse(json!({"read": {"resources": ["a", "b"]}})).unwrap();
        assert!(g.allows(Action::Read, Some("a"), never_owned));
        assert!(g.allows(Action::Read, Some("b"), never_owned));
        assert!(!g.allows(Action::Read, Some("c"), never_owned));
        assert!(!g.allows(Action::Read, Some("ab"), never_owned));
        assert!(
            !g.allows(Action::Update, Some("a"), never_owned),
            "other actions"
        );
        assert!(
            !g.allows(Action::Read, None, never_owned),
            "listing needs all"
        );
    }

    #[test]
    fn session_owned_grants_only_owned_videos() {
        let g = parse(json!({"destroy": {"session_owned": true}})).unwrap();
        assert!(g.allows(Action::Destroy, Some("mine"), |v| v == "mine"));
        assert!(!g.allows(Action::Destroy, Some("theirs"), |v| v == "mine"));
        assert!(g.has_session_owned());
    }

    #[test]
    fn create_is_granted_by_any_nonempty_grant() {
        for grant in [
            json!("all"),
            json!({"session_owned": true}),
            json!({"resources": ["whatever"]}),
        ] {
            let g = parse(json!({ "create": grant })).unwrap();
            assert!(g.allows(Action::Create, None, never_owned), "{g:?}");
        }
        let g = parse(json!({"create": {}})).unwrap();
        assert!(!g.allows(Action::Create, None, never_owned));
        let g = parse(json!({"read": "all"})).unwrap();
        assert!(!g.allows(Action::Create, None, never_owned));
    }

    #[test]
    fn unknown_keys_are_refused_with_their_path() {
        let err = parse(json!({"read": {"resourses": []}})).unwrap_err();
        assert!(err.starts_with("read.resourses: unknown field"), "{err}");
        let err = parse(json!({"watch": "all"})).unwrap_err();
        assert!(err.contains("watch"), "{err}");
    }

    #[test]
    fn wrong_types_are_refused_with_their_path() {
        let err = parse(json!({"read": {"resources": [1]}})).unwrap_err();
        assert!(err.starts_with("read.resources[0]:"), "{err}");
        let err = parse(json!({"read": "some"})).unwrap_err();
        assert!(err.starts_with("read:"), "{err}");
        let err = parse(json!({"read": {"all": "yes"}})).unwrap_err();
        assert!(err.starts_with("read.all:"), "{err}");
    }

    #[test]
    fn bad_resources_are_refused() {
        assert!(parse(json!({"read": {"resources": [""]}})).is_err());
        assert!(parse(json!({"read": {"resources": ["a\nb"]}})).is_err());
        let long = "x".repeat(MAX_RESOURCE_LEN + 1);
        assert!(parse(json!({"read": {"resources": [long]}})).is_err());
        let ok = "x".repeat(MAX_RESOURCE_LEN);
        assert!(parse(json!({"read": {"resources": [ok]}})).is_ok());
    }

    #[test]
    fn empty_means_no_action_grants_anything() {
        assert!(Grants::new().is_empty());
        assert!(parse(json!({"read": {"resources": []}, "create": {}}))
            .unwrap()
            .is_empty());
        assert!(!parse(json!({"read": {"resources": ["v"]}}))
            .unwrap()
            .is_empty());
        assert!(!parse(json!({"read": {"session_owned": true}}))
            .unwrap()
            .is_empty());
        assert!(!parse(json!({"destroy": "all"})).unwrap().is_empty());
    }

    #[test]
    fn remove_resource_touches_every_action_and_keeps_order() {
        let mut g = parse(json!({
            "read": {"resources": ["a", "b", "c"]},
            "update": {"resources": ["b"], "session_owned": true},
        }))
        .unwrap();
        assert!(g.remove_resource("b"));
        assert_eq!(g.get(Action::Read).unwrap().resources, vec!["a", "c"]);
        assert_eq!(g.get(Action::Update).unwrap(), Grant::session_owned());
        assert!(!g.remove_resource("b"), "nothing left to remove");
    }

    #[test]
    fn videos_lists_each_video_once() {
        let g = parse(json!({
            "read": {"resources": ["b", "a"]},
            "destroy": {"resources": ["a"]},
        }))
        .unwrap();
        assert_eq!(g.videos(), vec!["a", "b"]);
    }

    #[test]
    fn serializes_every_present_grant_as_an_object() {
        let g = parse(json!({"read": "all", "destroy": {"resources": ["v"]}})).unwrap();
        assert_eq!(
            serde_json::to_value(&g).unwrap(),
            json!({
                "read": {"resources": [], "session_owned": false, "all": true},
                "destroy": {"resources": ["v"], "session_owned": false, "all": false},
            })
        );
    }

    #[test]
    fn unicode_resources_round_trip() {
        let g = Grants::new()
            .with(Action::Read, Grant::resources(["vidéo-ü", "日本"]))
            .unwrap();
        assert!(g.allows(Action::Read, Some("日本"), never_owned));
        let back: Grants = serde_json::from_value(serde_json::to_value(&g).unwrap()).unwrap();
        assert_eq!(back, g);
    }
}
