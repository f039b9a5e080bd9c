//! Input checks run before any SQL, so bad input is a typed error and never a half-written row.
//! The CHECK constraints in the migrations repeat the length limits as a last line of defence.

use super::error::{Result, StorageError};

/// Longest name (username, trunk name, extension, stream key name, owner, mountpoint).
pub const MAX_NAME_LEN: usize = 64;
/// Longest display name.
pub const MAX_DISPLAY_NAME_LEN: usize = 128;
/// Longest URI or URL.
pub const MAX_URI_LEN: usize = 512;
/// Longest relative recording path.
pub const MAX_PATH_LEN: usize = 512;
/// Longest free-text field (realm, caller, codec name, credentials).
pub const MAX_TEXT_LEN: usize = 256;

fn invalid(field: &'static str, reason: impl Into<String>) -> StorageError {
    StorageError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// A short identifier: 1..=64 characters, no control characters, no surrounding spaces.
pub fn name(field: &'static str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    bounded_text(field, value, MAX_NAME_LEN)?;
    if value.trim() != value {
        return Err(invalid(field, "must not start or end with spaces"));
    }
    Ok(())
}

/// A login name: 1..=64 of `A-Z a-z 0-9 . _ -`, so that it is typed the same on every
/// keyboard, needs no quoting in a shell or a URL, and cannot pass for another name.
pub fn username(value: &str) -> Result<()> {
    const FIELD: &str = "username";
    if value.is_empty() || value.len() > MAX_NAME_LEN {
        return Err(invalid(
            FIELD,
            format!("{value:?}: 1 to {MAX_NAME_LEN} characters"),
        ));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(invalid(
            FIELD,
            format!("{value:?}: only letters A-Z a-z, digits and . _ - are allowed"),
        ));
    }
    Ok(())
}

/// Free text with a length limit and no control characters (may be empty).
pub fn bounded_text(field: &'static str, value: &str, max: usize) -> Result<()> {
    let len = value.chars().count();
    if len > max {
        return Err(invalid(
            field,
            format!("{len} characters, at most {max} allowed"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// A SIP or SIPS URI: `sip:[user@]host[:port][;params]`, host being a name, IPv4 or `[IPv6]`.
pub fn sip_uri(field: &'static str, value: &str) -> Result<()> {
    bounded_text(field, value, MAX_URI_LEN)?;
    let rest = value
        .strip_prefix("sip:")
        .or_else(|| value.strip_prefix("sips:"))
        .ok_or_else(|| invalid(field, "must start with sip: or sips:"))?;
    // Parameters and headers do not take part in routing checks here.
    let hostport_user = rest.split([';', '?']).next().unwrap_or("");
    let hostport = match hostport_user.rsplit_once('@') {
        Some((user, hp)) => {
            if user.is_empty() || user.contains(char::is_whitespace) {
                return Err(invalid(field, "empty or malformed user part"));
            }
            hp
        }
        None => hostport_user,
    };
    host_port(field, hostport)
}

/// Field named by [`egress_destination`] for a bad URL.
pub const EGRESS_URL: &str = "egress url";
/// Field named by [`egress_destination`] for a missing or bad stream key.
pub const EGRESS_KEY: &str = "egress key";

/// An RTMP(S) application URL for egress: `rtmp[s]://host[:port]/app[/more]`, host a DNS name,
/// IPv4 or `[IPv6]`, port 1..=65535, no empty path segment, no spaces.
///
/// Errors: `Invalid` naming `field`, saying which part is wrong.
pub fn rtmp_url(field: &'static str, value: &str) -> Result<()> {
    bounded_text(field, value, MAX_URI_LEN)?;
    let rest = value
        .strip_prefix("rtmp://")
        .or_else(|| value.strip_prefix("rtmps://"))
        .ok_or_else(|| {
            invalid(
                field,
                "must start with rtmp:// or rtmps:// (e.g. rtmp://a.rtmp.youtube.com/live2)",
            )
        })?;
    let (hostport, path) = rest.split_once('/').unwrap_or((rest, ""));
    host_port(field, hostport)?;
    let path = path.strip_suffix('/').unwrap_or(path);
    if path.is_empty() {
        return Err(invalid(
            field,
            "needs an application path, e.g. rtmp://host/live",
        ));
    }
    if path.contains(char::is_whitespace) {
        return Err(invalid(field, "path must not contain spaces"));
    }
    if path.split('/').any(str::is_empty) {
        return Err(invalid(field, "path has an empty segment (//)"));
    }
    Ok(())
}

/// The one rule for an RTMP egress destination, applied by the registry (create, update), the
/// CLI (`bifrons egress add`), the panel and `egress_start`: a [`rtmp_url`] (scheme `rtmp` or
/// `rtmps`, a host, an application path) and a stream key, unless the URL carries the stream
/// name as its last path segment after the application (`rtmp://host/live/NAME`). `key`:
/// `None` or `""` for no key; a key has no `/`, no spaces and at most 256 characters.
///
/// Which mountpoint is sent is not checked here: mountpoints may be created at run time, so a
/// target may name one that does not exist yet; starting it then answers "no such mountpoint".
///
/// Errors: `Invalid` with field [`EGRESS_URL`] or [`EGRESS_KEY`].
pub fn egress_destination(url: &str, key: Option<&str>) -> Result<()> {
    rtmp_url(EGRESS_URL, url)?;
    match key.filter(|k| !k.is_empty()) {
        Some(k) => {
            bounded_text(EGRESS_KEY, k, MAX_TEXT_LEN)?;
            if k.contains('/') || k.contains(char::is_whitespace) {
                return Err(invalid(EGRESS_KEY, "must not contain '/' or spaces"));
            }
            Ok(())
        }
        None => {
            let rest = url.split_once("://").map_or("", |(_, r)| r);
            let path = rest.split_once('/').map_or("", |(_, p)| p);
            let path = path.strip_suffix('/').unwrap_or(path);
            if path.contains('/') {
                Ok(())
            } else {
                Err(invalid(
                    EGRESS_KEY,
                    format!(
                        "a stream key is needed: give the destination's key, or end the URL \
                         with the stream name (rtmp://host/{path}/NAME)"
                    ),
                ))
            }
        }
    }
}

fn host_port(field: &'static str, value: &str) -> Result<()> {
    let (host, port) = if let Some(v6) = value.strip_prefix('[') {
        let (addr, after) = v6
            .split_once(']')
            .ok_or_else(|| invalid(field, "unterminated IPv6 reference"))?;
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(invalid(field, "invalid IPv6 address"));
        }
        match after {
            "" => (addr, None),
            p => (
                addr,
                Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| invalid(field, "junk after ]"))?,
                ),
            ),
        }
    } else {
        match value.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (value, None),
        }
    };
    if host.is_empty() {
        return Err(invalid(field, "missing host"));
    }
    if !value.starts_with('[') {
        let ok = host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
        if !ok || host.len() > 253 {
            return Err(invalid(field, format!("invalid host {host:?}")));
        }
    }
    if let Some(p) = port {
        match p.parse::<u16>() {
            Ok(n) if n > 0 => {}
            _ => return Err(invalid(field, format!("invalid port {p:?}"))),
        }
    }
    Ok(())
}

/// A path relative to the recordings directory: no absolute path, no `..`, no empty segment.
pub fn relative_path(field: &'static str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    bounded_text(field, value, MAX_PATH_LEN)?;
    if value.starts_with('/') || value.contains('\\') {
        return Err(invalid(
            field,
            "must be relative to the recordings directory",
        ));
    }
    if value
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return Err(invalid(field, "must not contain empty, . or .. segments"));
    }
    Ok(())
}

/// A codec name such as `opus`, `PCMU`, `G722`, `telephone-event`.
pub fn codec(field: &'static str, value: &str) -> Result<()> {
    if value.is_empty() || value.len() > 32 {
        return Err(invalid(field, "codec names are 1..=32 characters"));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
    {
        return Err(invalid(field, format!("invalid codec name {value:?}")));
    }
    Ok(())
}

/// A voicemail PIN: 4 to 12 digits.
pub fn pin(value: &str) -> Result<()> {
    if !(4..=12).contains(&value.len()) || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("voicemail pin", "must be 4 to 12 digits"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_common_sip_uris() {
        for uri in [
            "sip:pbx.example.com",
            "sip:alice@pbx.example.com:5060",
            "sips:bob@10.0.0.1;transport=tls",
            "sip:1000@[::1]:5070",
            "sip:127.0.0.1",
        ] {
            assert!(sip_uri("uri", uri).is_ok(), "{uri}");
        }
    }

    #[test]
    fn refuses_malformed_sip_uris() {
        for uri in [
            "",
            "http://x",
            "sip:",
            "sip:@host",
            "sip:a@",
            "sip:host:0",
            "sip:host:99999",
            "sip:ho st",
            "sip:[::1",
        ] {
            assert!(
                matches!(sip_uri("uri", uri), Err(StorageError::Invalid { .. })),
                "{uri}"
            );
        }
    }

    #[test]
    fn egress_destinations_need_scheme_host_app_and_a_key_or_stream_name() {
        for (url, key) in [
            ("rtmp://live.example.com/app", Some("k")),
            ("rtmps://live.example.com:443/app", Some("k")),
            ("rtmp://127.0.0.1:1935/live/stream-name", None),
            ("rtmp://[::1]/app/inst", Some("")),
            (
                "rtmps://live-api-s.facebook.com:443/rtmp/",
                Some("FB-123?s_bl=1"),
            ),
        ] {
            assert!(egress_destination(url, key).is_ok(), "{url}");
        }
        for (url, key, field, says) in [
            ("http://h/app", Some("k"), EGRESS_URL, "rtmp:// or rtmps://"),
            ("rtmp://h", Some("k"), EGRESS_URL, "application path"),
            ("rtmp:///app", Some("k"), EGRESS_URL, "missing host"),
            ("rtmp://h:0/app", Some("k"), EGRESS_URL, "invalid port"),
            ("rtmp://h//app", Some("k"), EGRESS_URL, "empty segment"),
            ("rtmp://h/app", None, EGRESS_KEY, "stream key is needed"),
            (
                "rtmps://h/app/",
                Some(""),
                EGRESS_KEY,
                "rtmp://host/app/NAME",
            ),
            ("rtmp://h/app", Some("a/b"), EGRESS_KEY, "'/'"),
            ("rtmp://h/app", Some("a b"), EGRESS_KEY, "spaces"),
        ] {
            match egress_destination(url, key) {
                Err(StorageError::Invalid { field: f, reason }) => {
                    assert_eq!(f, field, "{url}");
                    assert!(reason.contains(says), "{url}: {reason}");
                }
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[test]
    fn rtmp_urls_need_scheme_host_and_app() {
        assert!(rtmp_url("url", "rtmp://live.example.com/app").is_ok());
        assert!(rtmp_url("url", "rtmps://live.example.com:443/app/x").is_ok());
        assert!(rtmp_url("url", "rtmp://live.example.com").is_err());
        assert!(rtmp_url("url", "http://live.example.com/app").is_err());
    }

    #[test]
    fn relative_paths_cannot_escape() {
        assert!(relative_path("p", "voicemail/1000/msg-1.opus").is_ok());
        for p in ["/etc/passwd", "../x", "a/../../b", "a//b", ""] {
            assert!(relative_path("p", p).is_err(), "{p}");
        }
    }

    #[test]
    fn names_are_bounded() {
        assert!(name("n", &"a".repeat(64)).is_ok());
        assert!(name("n", &"a".repeat(65)).is_err());
        assert!(name("n", " padded").is_err());
        assert!(name("n", "tab\there").is_err());
    }

    #[test]
    fn usernames_are_plain_ascii() {
        for ok in ["alice", "a", "Bob.Smith_2-x", &"a".repeat(64)] {
            assert!(username(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a b/c",
            "a b",
            "x/y",
            "é",
            "tab\t",
            "a@b",
            &"a".repeat(65),
        ] {
            assert!(
                matches!(
                    username(bad),
                    Err(StorageError::Invalid {
                        field: "username",
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }

    proptest! {
        #[test]
        fn validators_never_panic(s in "\\PC*") {
            let _ = sip_uri("u", &s);
            let _ = rtmp_url("u", &s);
            let _ = egress_destination(&s, Some(&s));
            let _ = egress_destination(&s, None);
            let _ = relative_path("p", &s);
            let _ = name("n", &s);
            let _ = username(&s);
            let _ = codec("c", &s);
            let _ = pin(&s);
        }

        #[test]
        fn generated_sip_uris_are_accepted(
            user in "[a-z0-9]{1,10}",
            host in "[a-z]{1,10}(\\.[a-z]{1,10}){0,3}",
            port in 1u16..,
        ) {
            let uri = format!("sip:{user}@{host}:{port}");
            prop_assert!(sip_uri("u", &uri).is_ok(), "{}", uri);
        }

        #[test]
        fn overlong_names_are_refused(n in 65usize..300) {
            prop_assert!(name("n", &"x".repeat(n)).is_err());
        }
    }
}
