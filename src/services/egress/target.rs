//! Where an egress publishes: an RTMP application URL and a stream key, kept apart so that
//! the key (a secret of the destination) is never shown, logged or returned.

use bifrons_rtmp::client::RtmpUrl;

use crate::storage::{validate, Secret, StorageError};

/// An RTMP destination.
#[derive(Clone)]
pub struct Target {
    /// The registry target's name, when it came from the registry.
    pub name: Option<String>,
    /// The registry target's row id, when it came from the registry.
    pub registry_id: Option<i64>,
    /// `rtmp[s]://host:port/app` without the key.
    url: String,
    /// The stream key (last path segment of the publish URL).
    key: Secret,
    /// `scheme://host:port/app/key`, lower-cased host: what makes two egresses "the same
    /// target".
    identity: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("key", &"***")
            .finish()
    }
}

/// Why a destination is unusable: the rule of [`validate::egress_destination`] (the one the
/// registry, the CLI and the panel apply when a target is created), with its message, e.g.
/// `invalid egress key: a stream key is needed: …`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Not `rtmp[s]://host[:port]/app`, or no key (neither given nor in the URL).
    #[error("{0}")]
    Invalid(String),
}

impl From<StorageError> for TargetError {
    fn from(e: StorageError) -> Self {
        TargetError::Invalid(e.to_string())
    }
}

impl Target {
    /// A destination from an application URL (`rtmp://` or `rtmps://`, TLS) and a key; with
    /// no key the URL's last path segment is the key (`rtmp://host/app/key`).
    ///
    /// Errors: [`TargetError::Invalid`] as [`validate::egress_destination`] says.
    pub fn new(url: &str, key: Option<&str>) -> Result<Self, TargetError> {
        let url = url.trim();
        validate::egress_destination(url, key)?;
        let url = url.trim_end_matches('/');
        let full = match key {
            Some(k) if !k.is_empty() => format!("{url}/{k}"),
            _ => url.to_string(),
        };
        let parsed = RtmpUrl::parse(&full).map_err(|_| {
            TargetError::Invalid("invalid egress url: no host, application or key".into())
        })?;
        Ok(Self {
            name: None,
            registry_id: None,
            url: parsed.tc_url(),
            identity: format!(
                "{}://{}:{}/{}/{}",
                if parsed.tls { "rtmps" } else { "rtmp" },
                parsed.host.to_ascii_lowercase(),
                parsed.port,
                parsed.app,
                parsed.key
            ),
            key: Secret::new(parsed.key),
        })
    }

    /// The same destination named after its registry row.
    pub fn registered(mut self, id: i64, name: &str) -> Self {
        self.registry_id = Some(id);
        self.name = Some(name.to_string());
        self
    }

    /// `rtmp[s]://host:port/app`: what may be shown and logged.
    pub fn display(&self) -> &str {
        &self.url
    }

    /// The publish URL with the key, for the RTMP client only.
    pub(super) fn publish_url(&self) -> String {
        format!("{}/{}", self.url, self.key.expose())
    }

    /// Whether both name the same host, port, application and key.
    pub fn same_as(&self, other: &Target) -> bool {
        self.identity == other.identity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_apart_or_in_the_url_is_the_same_target_and_never_shown() {
        let a = Target::new("rtmp://Example.com/live", Some("k1")).unwrap();
        let b = Target::new("rtmp://example.com:1935/live/k1", None).unwrap();
        assert!(a.same_as(&b));
        assert_eq!(a.display(), "rtmp://Example.com:1935/live");
        assert!(!format!("{a:?}").contains("k1"));
        assert_eq!(b.publish_url(), "rtmp://example.com:1935/live/k1");
        let c = Target::new("rtmp://example.com/live", Some("k2")).unwrap();
        assert!(!a.same_as(&c));
    }

    #[test]
    fn rtmps_is_a_target_of_its_own() {
        let a = Target::new("rtmps://live.example.com/rtmp", Some("k1")).unwrap();
        assert_eq!(a.display(), "rtmps://live.example.com:443/rtmp");
        assert_eq!(a.publish_url(), "rtmps://live.example.com:443/rtmp/k1");
        let b = Target::new("rtmp://live.example.com:443/rtmp", Some("k1")).unwrap();
        assert!(!a.same_as(&b));
    }

    #[test]
    fn says_why_a_destination_is_refused() {
        let e = Target::new("rtmp://h/app", None).unwrap_err();
        assert!(e.to_string().contains("a stream key is needed"), "{e}");
        let e = Target::new("srt://h/app", Some("k")).unwrap_err();
        assert!(e.to_string().contains("rtmp:// or rtmps://"), "{e}");
    }

    #[test]
    fn refuses_what_is_not_rtmp() {
        for (url, key) in [
            ("http://h/app", Some("k")),
            ("rtmp://h", Some("k")),
            ("rtmp://h/app", None),
            ("rtmp://h/app", Some("a/b")),
            ("rtmp:///app", Some("k")),
        ] {
            assert!(Target::new(url, key).is_err(), "{url}");
        }
    }
}
