//! `rtmp://host[:port]/app/key` and `rtmps://host[:port]/app/key` URLs.

use crate::error::RtmpError;

/// The parts of an RTMP publish URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtmpUrl {
    /// `rtmps://`: RTMP inside TLS (the server's certificate checked against `host`).
    pub tls: bool,
    /// Host name or IP address.
    pub host: String,
    /// TCP port (1935 when absent, 443 for `rtmps://`).
    pub port: u16,
    /// Application (everything between the authority and the last path segment).
    pub app: String,
    /// Stream key (the last path segment, query string included as services expect).
    pub key: String,
}

impl RtmpUrl {
    /// Parses `rtmp://host[:port]/app[/more]/key` or `rtmps://…`.
    ///
    /// Errors: [`RtmpError::InvalidUrl`] naming the URL without its last segment (the stream
    /// key is a secret).
    pub fn parse(url: &str) -> Result<Self, RtmpError> {
        let invalid = || RtmpError::InvalidUrl(without_key(url));
        let (tls, rest) = match url.strip_prefix("rtmps://") {
            Some(rest) => (true, rest),
            None => (false, url.strip_prefix("rtmp://").ok_or_else(invalid)?),
        };
        let default_port = if tls { 443 } else { 1935 };
        let (authority, path) = rest.split_once('/').ok_or_else(invalid)?;
        let (app, key) = path.rsplit_once('/').ok_or_else(invalid)?;
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
                (host, port.parse().map_err(|_| invalid())?)
            }
            _ => (authority, default_port),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || app.is_empty() || key.is_empty() {
            return Err(invalid());
        }
        Ok(Self {
            tls,
            host: host.to_string(),
            port,
            app: app.to_string(),
            key: key.to_string(),
        })
    }

    /// The `tcUrl` sent in `connect` (some servers insist on it).
    pub fn tc_url(&self) -> String {
        let scheme = if self.tls { "rtmps" } else { "rtmp" };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{host}:{}/{}", self.port, self.app)
    }
}

/// `url` with its last path segment (the stream key) replaced by `***`.
fn without_key(url: &str) -> String {
    match url.rsplit_once('/') {
        Some((head, _)) if head.contains("//") && !head.ends_with('/') => format!("{head}/***"),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_port_app_key() {
        let url = RtmpUrl::parse("rtmp://127.0.0.1:1940/live/abc").unwrap();
        assert_eq!(
            url,
            RtmpUrl {
                tls: false,
                host: "127.0.0.1".into(),
                port: 1940,
                app: "live".into(),
                key: "abc".into()
            }
        );
        let url = RtmpUrl::parse("rtmp://a.rtmp.youtube.com/live2/xxxx-yyyy").unwrap();
        assert_eq!((url.port, url.app.as_str()), (1935, "live2"));
        let url = RtmpUrl::parse("rtmp://[::1]:1936/app/inst/key").unwrap();
        assert_eq!(
            (
                url.host.as_str(),
                url.port,
                url.app.as_str(),
                url.key.as_str()
            ),
            ("::1", 1936, "app/inst", "key")
        );
    }

    #[test]
    fn rtmps_defaults_to_port_443_and_keeps_its_scheme() {
        let url = RtmpUrl::parse("rtmps://live-api-s.facebook.com/rtmp/FB-1?s=1").unwrap();
        assert!(url.tls);
        assert_eq!(
            (url.port, url.app.as_str(), url.key.as_str()),
            (443, "rtmp", "FB-1?s=1")
        );
        assert_eq!(url.tc_url(), "rtmps://live-api-s.facebook.com:443/rtmp");
        let url = RtmpUrl::parse("rtmps://127.0.0.1:1443/live/k").unwrap();
        assert_eq!((url.tls, url.port), (true, 1443));
        assert!(!RtmpUrl::parse("rtmp://h/a/k").unwrap().tls);
    }

    #[test]
    fn rejects_incomplete_urls() {
        for bad in [
            "http://h/a/k",
            "rtmp://h",
            "rtmp://h/a",
            "rtmp://h:x/a/k",
            "rtmp:///a/k",
            "rtmp://h/a/",
            "rtmps://h/a",
            "rtmpx://h/a/k",
        ] {
            assert!(RtmpUrl::parse(bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics_and_a_parsed_url_parses_back(s in "(rtmps?://)?\\PC{0,40}") {
            if let Ok(url) = RtmpUrl::parse(&s) {
                let again = RtmpUrl::parse(&format!("{}/{}", url.tc_url(), url.key)).unwrap();
                proptest::prop_assert_eq!(again, url);
            }
        }
    }

    #[test]
    fn errors_do_not_show_the_key() {
        let e = RtmpUrl::parse("rtmp://h:x/app/secret-key").unwrap_err();
        assert!(!e.to_string().contains("secret-key"), "{e}");
    }
}
