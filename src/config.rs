//! Configuration: `conf/bifrons.toml` (every key documented there with its default),
//! overridden by `BIFRONS_<SECTION>_<KEY>` environment variables.
//!
//! Unknown keys are refused so that a typo is reported by name instead of silently ignored.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Prefix of environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "BIFRONS_";

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read (missing, unreadable, not UTF-8).
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file's path, as given to [`Config::load`].
        path: String,
        /// The I/O error reading it.
        source: std::io::Error,
    },
    /// The TOML or an environment override is wrong: bad syntax, an unknown section or key
    /// (named in the message), a value of the wrong type, or values that contradict each other
    /// (e.g. `ice.port_min` above `ice.port_max`).
    #[error("{origin}: {message}")]
    Invalid {
        /// Where the text came from: the file's path, [`DEFAULTS_ORIGIN`] when no file was
        /// given, `environment variable BIFRONS_…` for an override, or the file followed by
        /// the overrides applied when the values contradict each other.
        origin: String,
        /// What is wrong, naming the section and key.
        message: String,
    },
}

/// The whole configuration, one struct per section of `bifrons.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[general]`: sessions, authentication, logging, media timers.
    pub general: GeneralConfig,
    /// `[http]`: the Janus API over HTTP and the demo pages.
    pub http: HttpConfig,
    /// `[websocket]`: the Janus API over WebSocket.
    pub websocket: WebSocketConfig,
    /// `[admin]`: the Admin API over HTTP and WebSocket.
    pub admin: AdminConfig,
    /// `[ice]`: candidate gathering and NAT traversal.
    pub ice: IceConfig,
    /// `[dtls]`: the DTLS-SRTP certificate.
    pub dtls: DtlsConfig,
    /// `[database]`: the SQL registry.
    pub database: DatabaseConfig,
    /// `[web]`: the demo pages and the scripts they load.
    pub web: WebConfig,
    /// `[recordings]`: the directory recording files go to.
    pub recordings: RecordingsConfig,
    /// `[workers]`: the codec worker threads.
    pub workers: WorkersConfig,
    /// `[panel]`: the web admin panel on the admin HTTP listener.
    pub panel: PanelConfig,
    /// `[rtmp]`: the RTMP ingest server feeding the streaming plugin's mountpoints.
    pub rtmp: RtmpConfig,
    /// `[whep]`: WHEP playback of the streaming plugin's mountpoints.
    pub whep: WhepConfig,
    /// `[streaming]`: the streaming plugin's mountpoints.
    pub streaming: StreamingConfig,
    /// `[audiobridge]`: the audio bridge plugin.
    pub audiobridge: AudioBridgeConfig,
    /// `[sip]`: the SIP plugin (addresses, RTP ports, registration, unanswered calls).
    pub sip: SipConfig,
    /// `[voicemail]`: the voicemail plugin and mailboxes.
    pub voicemail: VoicemailConfig,
    /// `[media]`: the media engine (single-port mode, capacity).
    pub media: MediaConfig,
    /// `[egress]`: RTMP egress (restreaming) of mountpoints.
    pub egress: EgressConfig,
}

/// `[egress]`: RTMP egress (restreaming) of mountpoints.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EgressConfig {
    /// PEM file of CA certificates trusted for `rtmps://` targets besides the system's roots
    /// (a receiver with a self-signed or private-CA certificate); relative to the
    /// configuration file. Default empty: the system's roots only. A file that cannot be read
    /// or holds no certificate stops the start-up.
    pub tls_ca_file: String,
    /// Video of the egress of an audio-only mountpoint (a room's mix): `"none"` (audio-only
    /// FLV, the default) or `"still"` (a still H.264 picture at 5 fps, an IDR every 2 s, for
    /// RTMP services that refuse a stream without video).
    pub audio_only_video: AudioOnlyVideo,
}

/// `[egress] audio_only_video`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AudioOnlyVideo {
    /// Audio-only FLV.
    #[default]
    None,
    /// A still picture as video.
    Still,
}

/// `[general]`: sessions, authentication, logging.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeneralConfig {
    /// Name shown as `server-name` in `server_info`. Default `"Bifrons"`.
    pub server_name: String,
    /// Seconds without any request after which a session is destroyed (Janus
    /// `session_timeout`); 0 = never. Default 60. Keep it at 30 or more: the HTTP long poll,
    /// held 30 s, is an HTTP client's only keepalive. The Admin API's `set_session_timeout`
    /// changes it at run time.
    pub session_timeout: u64,
    /// Seconds a WebSocket session survives its socket closing, its events queued, waiting for
    /// a `claim` from a new connection (Janus `reclaim_session_timeout`). Default 0: the
    /// session then lives on until the ordinary `session_timeout`.
    pub reclaim_session_timeout: u64,
    /// Seconds after which remote candidates trickled before the SDP (and queued meanwhile)
    /// are discarded instead of applied (Janus `candidates_timeout`). Default 45.
    pub candidates_timeout: u64,
    /// When non-empty, every Janus API request must carry `apisecret` with this value (in the
    /// query string for a long poll), compared in constant time; empty (the default) disables
    /// the check. With `token_auth` on too, either a valid secret or a valid token suffices.
    pub api_secret: String,
    /// Whether requests must carry a `token` stored through the Admin API (`add_token`), as
    /// Janus' stored-token authentication. Default `false`.
    pub token_auth: bool,
    /// Initial log level: `off`/`none`, `error`, `warn`/`warning`, `info`, `debug`,
    /// `trace`/`verbose` (case-insensitive; an unknown name is refused at load). Default
    /// `"info"`. `RUST_LOG`, when set, wins; the Admin API's `set_log_level` changes it at run
    /// time.
    pub log_level: String,
    /// Seconds without incoming packets before a `media` event says `receiving: false`
    /// (Janus `no_media_timer`). Default 1; 0 is taken as 1.
    pub no_media_timer: u64,
    /// Lost packets per second, in either direction, that raise a `slowlink` event (Janus
    /// `slowlink_threshold`). Default 0 = never.
    pub slowlink_threshold: u64,
}

impl Default for GeneralConfig {
    fn default() -> Self {
        Self {
            server_name: "Bifrons".into(),
            session_timeout: 60,
            reclaim_session_timeout: 0,
            candidates_timeout: 45,
            api_secret: String::new(),
            token_auth: false,
            log_level: "info".into(),
            no_media_timer: 1,
            slowlink_threshold: 0,
        }
    }
}

/// `[http]`: the Janus API over HTTP (REST + long poll) and the demo pages.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Whether the HTTP listener (Janus API and demo pages) is started. Default `true`.
    pub enabled: bool,
    /// Address the listener binds to. Default `0.0.0.0` (every IPv4 interface).
    pub bind: IpAddr,
    /// TCP port. Default 8088, as Janus; 0 binds an ephemeral port.
    pub port: u16,
    /// Path prefix of the Janus API: `POST {base_path}`, `{base_path}/{session}`,
    /// `{base_path}/{session}/{handle}`, long polls as `GET {base_path}/{session}`. Must start
    /// with `/`. Default `"/janus"`.
    pub base_path: String,
    /// CORS: empty (the default) answers `Access-Control-Allow-Origin: *`; a value answers
    /// that origin with `Access-Control-Allow-Credentials: true`, as Janus' `allow_origin`.
    pub allow_origin: String,
    /// Refuse with HTTP 403 requests whose `Origin` does not start with `allow_origin`
    /// (requests without `Origin` included). Needs `allow_origin`. Default `false`.
    pub enforce_cors: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            bind: IpAddr::from([0, 0, 0, 0]),
            port: 8088,
            base_path: "/janus".into(),
            allow_origin: String::new(),
            enforce_cors: false,
        }
    }
}

/// `[websocket]`: the Janus API over WebSocket (subprotocol `janus-protocol`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebSocketConfig {
    /// Whether the WebSocket listener is started. Default `true`.
    pub enabled: bool,
    /// Address the listener binds to. Default `0.0.0.0`.
    pub bind: IpAddr,
    /// TCP port; any URL path is accepted. Default 8188, as Janus; 0 binds an ephemeral port.
    pub port: u16,
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            bind: IpAddr::from([0, 0, 0, 0]),
            port: 8188,
        }
    }
}

/// `[admin]`: the Admin API over HTTP and WebSocket (`janus-admin-protocol`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Address both Admin API listeners bind to. Default `127.0.0.1`: loopback only, so that
    /// exposing the Admin API is a deliberate choice.
    pub bind: IpAddr,
    /// Whether the Admin API over HTTP is started. Default `true` (Janus' sample: off).
    pub http_enabled: bool,
    /// TCP port of the Admin API over HTTP. Default 7088, as Janus; 0 binds an ephemeral port.
    pub http_port: u16,
    /// Path prefix of the Admin API over HTTP (`POST {base_path}[/{session}[/{handle}]]`).
    /// Must start with `/`. Default `"/admin"`.
    pub base_path: String,
    /// Whether the Admin API over WebSocket (subprotocol `janus-admin-protocol`) is started.
    /// Default `true`.
    pub websocket_enabled: bool,
    /// TCP port of the Admin API over WebSocket. Default 7188, as Janus; 0 binds an ephemeral
    /// port.
    pub websocket_port: u16,
    /// When non-empty, every Admin API request but `info` and `ping` must carry
    /// `admin_secret` with this value (constant-time comparison; else error 403), as Janus'
    /// `admin_secret`. Default empty: no check.
    pub secret: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            bind: IpAddr::from([127, 0, 0, 1]),
            http_enabled: true,
            http_port: 7088,
            base_path: "/admin".into(),
            websocket_enabled: true,
            websocket_port: 7188,
            secret: String::new(),
        }
    }
}

/// Whether ICE gathers loopback host candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LoopbackMode {
    /// Only when loopback is the only interface up (e.g. inside `unshare --net`).
    #[default]
    Auto,
    /// Always, even when other interfaces are up (peers on the same host).
    Always,
    /// Never, even when no other interface is up.
    Never,
}

/// A TURN server and its credentials.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnServer {
    /// `turn:host:port` or `turns:host:port` (RFC 7065); other schemes are refused at load.
    pub url: String,
    /// TURN username (long-term credential, RFC 8489 §9.2).
    pub username: String,
    /// TURN password for `username`.
    pub credential: String,
}

/// `[ice]`: candidate gathering, NAT traversal, trickle mode.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct IceConfig {
    /// Local addresses host candidates are gathered on. Default empty: every usable
    /// interface.
    pub bind_addresses: Vec<IpAddr>,
    /// Whether loopback host candidates are gathered. Default `auto`.
    pub loopback: LoopbackMode,
    /// Lowest UDP port for ICE, inclusive. Default 0: with `port_max` also 0, any port the
    /// system gives; set, it must not exceed `port_max`.
    pub port_min: u16,
    /// Highest UDP port for ICE, inclusive. Default 0 (see `port_min`).
    pub port_max: u16,
    /// STUN servers as `stun:host:port` (RFC 7064), for server-reflexive candidates; the
    /// first is shown as `stun-server` in `server_info`. Default none: a gateway usually has
    /// a reachable address, and tests must not leave the machine.
    pub stun_servers: Vec<String>,
    /// TURN servers for relay candidates. Default none.
    pub turn_servers: Vec<TurnServer>,
    /// Public addresses advertised in host candidates instead of the local ones (1:1 NAT,
    /// e.g. a cloud VM), as Janus' `nat_1_1_mapping`. Default none.
    pub nat_1_1_mapping: Vec<IpAddr>,
    /// ICE-lite (RFC 8445 §2.5): answer connectivity checks only, for a gateway on a public
    /// address. Default `false`.
    pub ice_lite: bool,
    /// Trickle our own candidates to clients as `trickle` events instead of waiting for
    /// gathering to finish and putting them in the SDP, as Janus' `full_trickle`. Default
    /// `false`.
    pub full_trickle: bool,
}

/// `[dtls]`: the certificate used for DTLS-SRTP; self-signed and generated at start when empty.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct DtlsConfig {
    /// Path of a PEM file holding the certificate (a chain is accepted: every `CERTIFICATE`
    /// block is used). Default empty; must be set together with `key_pem`.
    pub cert_pem: String,
    /// Path of a PEM file holding the certificate's private key in PKCS#8 (`PRIVATE KEY`);
    /// other key formats are refused at start. Default empty.
    pub key_pem: String,
}

/// `[database]`: the SQL registry.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://path` (embedded, created on first start) or
    /// `postgres://user:pass@host/db`; the command line's `--database-url` overrides it.
    /// Default `"sqlite://data/bifrons.db"`.
    pub url: String,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://data/bifrons.db".into(),
        }
    }
}

/// `[web]`: demo pages served on the HTTP port.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// Serve the demo pages (`/`, `/demos/...`) on the HTTP port, for paths outside
    /// `http.base_path`. Default `true`.
    pub demos: bool,
    /// Optional replacement for the built-in janus.js (npm `janus-gateway` 1.4.2,
    /// `npm/dist/janus.es.js`), an ES module served as `/demos/janus.js` and read on each
    /// request. Default empty: the copy compiled into the binary.
    pub janus_js: String,
    /// Optional replacement for the built-in webrtc-adapter 9.0.6 browser build (which
    /// janus.js expects as `window.adapter`), served as `/demos/adapter.js`. Default empty:
    /// the copy compiled into the binary.
    pub adapter_js: String,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            demos: true,
            janus_js: String::new(),
            adapter_js: String::new(),
        }
    }
}

/// `[recordings]`: where recording files are written (the registry points at them by a path
/// relative to this directory).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordingsConfig {
    /// Directory of recording files, created at start if missing; a relative path is taken
    /// from the configuration file's folder (from the working directory when it comes from
    /// `BIFRONS_RECORDINGS_DIR` or no file is given).
    pub dir: PathBuf,
}

impl Default for RecordingsConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("data/recordings"),
        }
    }
}

/// `[workers]`: the OS threads that run codec work (transcoding legs, mixers) on a 20 ms clock.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkersConfig {
    /// Number of worker threads; 0 = one per core minus one (at least 2).
    pub threads: usize,
}

/// `[panel]`: the web admin panel (pages at `/panel/`, REST API under `/panel/api/v1/`) on the
/// admin HTTP listener. Users log in with the registry's admin users (`bifrons user add`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PanelConfig {
    /// Serve the panel on the admin HTTP listener. Default `true`.
    pub enabled: bool,
    /// Always mark the session cookie `Secure`. Default `false`: it is marked `Secure` only
    /// when the request says it came over HTTPS (`X-Forwarded-Proto: https` from a TLS
    /// reverse proxy); set it when the panel is only reached over HTTPS.
    pub secure_cookie: bool,
    /// Minutes a panel session may stay idle before it must log in again. Default 60.
    pub session_idle_minutes: u64,
    /// Failed logins for one username, within `lockout_seconds`, that lock it. Default 5.
    pub max_failed_logins: u32,
    /// How long a locked username is refused, in seconds (and the window failures are
    /// counted in). Default 300.
    pub lockout_seconds: u64,
    /// RTMP URL shown with a new stream key (the encoder's "server"); `{host}` is replaced by
    /// the host name the panel was opened with. Default empty: `rtmp://{host}:PORT/APP` from
    /// the `[rtmp]` section.
    pub rtmp_url: String,
    /// WHIP endpoint shown with a new stream key, `{host}` replaced as for `rtmp_url`, the key
    /// appended as the last path segment. Default empty: `http://{host}:PORT/whip` of the
    /// `[whep]` listener when it is enabled, else no WHIP URL is shown.
    pub whip_url: String,
}

impl Default for PanelConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            secure_cookie: false,
            session_idle_minutes: 60,
            max_failed_logins: 5,
            lockout_seconds: 300,
            rtmp_url: String::new(),
            whip_url: String::new(),
        }
    }
}

/// `[sip]`: the SIP plugin (`janus.plugin.sip`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SipConfig {
    /// Address SIP and RTP sockets bind to and SDP advertises to PBXs. Default `127.0.0.1`:
    /// set the host's address facing the PBX.
    pub local_ip: IpAddr,
    /// Lowest RTP port of the SIP legs (even). Default 20000.
    pub rtp_port_min: u16,
    /// Highest RTP port of the SIP legs. Default 40000.
    pub rtp_port_max: u16,
    /// `User-Agent` of the gateway's SIP requests. Default `Bifrons`.
    pub user_agent: String,
    /// Registration lifetime asked for when a request or trunk names none, seconds.
    /// Default 3600.
    pub register_ttl: u32,
    /// SIP status answered to an inbound call nobody takes (nobody registered, every handle
    /// declined, or the ring timeout passed): 480 (Temporarily Unavailable, the default) or
    /// 486 (Busy Here).
    pub unanswered_code: u16,
    /// Seconds an inbound call rings before it counts as unanswered. Default 60.
    pub ring_timeout: u64,
    /// SIP timer T1 (RFC 3261 §17: round-trip estimate), milliseconds. Default 500; a PBX that
    /// does not answer fails a REGISTER or an INVITE after 64 × T1 (32 s).
    pub timer_t1_ms: u64,
    /// Seconds between checks of the registry for edited trunks and accounts whose line is
    /// open (a changed registration is sent again at once). Default 30; 0 = never.
    pub registry_poll: u64,
}

impl Default for SipConfig {
    fn default() -> Self {
        Self {
            local_ip: IpAddr::from([127, 0, 0, 1]),
            rtp_port_min: 20000,
            rtp_port_max: 40000,
            user_agent: "Bifrons".into(),
            register_ttl: 3600,
            unanswered_code: 480,
            ring_timeout: 60,
            timer_t1_ms: 500,
            registry_poll: 30,
        }
    }
}

/// `[rtmp]`: the RTMP ingest server (OBS, ffmpeg) whose publishes feed the streaming plugin's
/// mountpoints; a publish is accepted only for a stream key of the registry.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RtmpConfig {
    /// Whether the RTMP server is started. Default `false` in the built-in defaults (so that
    /// several gateways can run side by side); `conf/bifrons.toml` turns it on.
    pub enabled: bool,
    /// Address the listener binds to. Default `0.0.0.0`.
    pub bind: IpAddr,
    /// TCP port. Default 1935 (RTMP's); 0 binds an ephemeral port.
    pub port: u16,
    /// Application name publishers use: `rtmp://HOST/<app>/<stream key>`. Default `live`.
    pub app: String,
    /// A second publisher on a live key: `refuse` (default) or `replace` (the newcomer takes
    /// over).
    pub duplicate_publisher: String,
    /// Host name written in the URLs `bifrons key add` prints. Default `localhost`.
    pub public_host: String,
}

impl Default for RtmpConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            bind: IpAddr::from([0, 0, 0, 0]),
            port: 1935,
            app: "live".into(),
            duplicate_publisher: "refuse".into(),
            public_host: "localhost".into(),
        }
    }
}

/// `[whep]`: WHEP playback (`POST /whep/<mountpoint>` with an SDP offer) of the streaming
/// plugin's mountpoints, on a listener of its own.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WhepConfig {
    /// Whether the WHEP listener is started. Default `false` in the built-in defaults;
    /// `conf/bifrons.toml` turns it on.
    pub enabled: bool,
    /// Address the listener binds to. Default `0.0.0.0`.
    pub bind: IpAddr,
    /// TCP port. Default 8089; 0 binds an ephemeral port.
    pub port: u16,
}

impl Default for WhepConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            bind: IpAddr::from([0, 0, 0, 0]),
            port: 8089,
        }
    }
}

/// Default of `[streaming] keyframe_cache_packets`.
pub const DEFAULT_KEYFRAME_CACHE_PACKETS: usize = 4096;

/// `[streaming]`: the streaming plugin's mountpoints (`janus.plugin.streaming`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamingConfig {
    /// Most video packets a mountpoint keeps since its last keyframe, so that a new viewer
    /// starts at once at that keyframe. Default 4096 (about 5 MB per mountpoint). A longer
    /// GOP is not cached: its viewers wait for the next keyframe, which a WebRTC publisher
    /// sends when asked (PLI) but an RTMP encoder only on its own schedule (OBS's "auto"
    /// keyframe interval at 6 Mbit/s is ~5,000 packets: raise this, or set the interval to
    /// 2 s). 0 keeps nothing.
    pub keyframe_cache_packets: usize,
}

impl Default for StreamingConfig {
    fn default() -> Self {
        Self {
            keyframe_cache_packets: DEFAULT_KEYFRAME_CACHE_PACKETS,
        }
    }
}

/// `[audiobridge]`: the audio bridge plugin (`janus.plugin.audiobridge`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AudioBridgeConfig {
    /// Room and participant ids are strings instead of integers (Janus' `string_ids`).
    pub string_ids: bool,
}

/// `[voicemail]`: `janus.plugin.voicemail` (Janus ≤ 1.1.2's `path`/`base`, plus limits).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VoicemailConfig {
    /// Folder of the messages, relative to `[recordings] dir` (Janus' `path`). Default
    /// `voicemail`.
    pub folder: String,
    /// Longest message, seconds of recorded audio (RTP clock); the recording stops by itself
    /// then (Janus: 10 s, fixed). 1..=3600.
    pub max_seconds: u32,
    /// Largest message file, bytes of Opus payload; the recording stops by itself then.
    /// 0 = no limit.
    pub max_bytes: u64,
    /// Prefix of the `recording` URL of the `done` event (Janus' `base`); the file's name
    /// follows it. Default `/voicemail/`.
    pub base_url: String,
    /// Seconds of silence after which the answering machine ends a SIP caller's message;
    /// 0 = never. Default 5.
    pub silence_seconds: u32,
    /// Message waiting (RFC 3842) towards SIP phones on the account's line, for mailboxes
    /// whose own setting is `off` (the default): `subscribe` (SUBSCRIBE `message-summary`
    /// served, NOTIFY on each change), `unsolicited` (NOTIFY to the account's address of
    /// record without subscription) or `off` (default).
    pub mwi: String,
    /// The mailbox extension: the extension of a registry account whose line the gateway
    /// keeps registered and whose calls get the mailbox menu (PIN, messages, `#` skips, `7`
    /// deletes), e.g. `*97`. Empty (default): no menu.
    pub extension: String,
}

impl Default for VoicemailConfig {
    fn default() -> Self {
        Self {
            folder: "voicemail".into(),
            max_seconds: 10,
            max_bytes: 0,
            base_url: "/voicemail/".into(),
            silence_seconds: 5,
            mwi: "off".into(),
            extension: String::new(),
        }
    }
}

/// `[media]`: the media engine shared by every PeerConnection.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// Single-port mode: every PeerConnection's ICE on this one UDP port (IPv4, every
    /// interface; demultiplexed by ICE ufrag, then by remote address), instead of one socket per
    /// PeerConnection from `[ice] port_min..port_max`. Default 0: off.
    pub udp_port: u16,
    /// Most PeerConnections alive at once; past it `create` and `attach` are refused with
    /// Janus error 490 and the Admin API's `get_status` counts the refusals. Default 0: no
    /// limit.
    pub max_sessions: usize,
    /// What drives the PeerConnections: `loop` (webrtc-rs's sans-I/O `rtc` core: one
    /// event-loop thread per core, each with one UDP socket shared by its PeerConnections),
    /// `webrtc` (webrtc-rs 0.17, tasks and a socket per PeerConnection) or `auto` (default:
    /// `loop`, unless `[ice]` asks for STUN or TURN servers, which only `webrtc` gathers
    /// from; see [`EngineKind::resolve`]).
    pub engine: EngineKind,
    /// Event loops of the `loop` engine; 0 = one per core. Single-port mode runs one loop.
    pub loops: usize,
    /// The shortest time (ms) each outgoing stream that negotiated `nack` keeps what it
    /// sent, to send it again when the receiver asks (RFC 4585 §6.2.1); Janus' key and rule:
    /// a stream keeps its round trip time + 100 ms, at least this and at most
    /// [`MAX_NACK_QUEUE_MS`]. 0 keeps nothing (NACKs go unanswered). The `webrtc` engine keeps
    /// a fixed ring of packets and reads only 0 from it.
    pub min_nack_queue: u32,
}

/// `[media] min_nack_queue` default (ms): Janus' 200.
pub const DEFAULT_MIN_NACK_QUEUE_MS: u32 = 200;

/// Most `[media] min_nack_queue` accepted (ms): Janus' ceiling for its NACK queue.
pub const MAX_NACK_QUEUE_MS: u32 = 1000;

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            udp_port: 0,
            max_sessions: 0,
            engine: EngineKind::default(),
            loops: 0,
            min_nack_queue: DEFAULT_MIN_NACK_QUEUE_MS,
        }
    }
}

/// `[media] engine`: which implementation drives PeerConnections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// `Loop` when the `[ice]` section allows it, else `Webrtc`.
    #[default]
    Auto,
    /// webrtc-rs 0.17: each PeerConnection has its own tasks and sockets.
    Webrtc,
    /// The event-loop engine on webrtc-rs's sans-I/O `rtc` core (`media::rtc`).
    Loop,
}

impl EngineKind {
    /// The engine that runs: `Auto` is `Webrtc` when `ice` names STUN or TURN servers (the
    /// loop engine offers its sockets' host candidates, and the mapped ones of
    /// `nat_1_1_mapping`, but gathers no server-reflexive or relayed ones), else `Loop`.
    pub fn resolve(self, ice: &IceConfig) -> EngineKind {
        match self {
            EngineKind::Auto if ice.stun_servers.is_empty() && ice.turn_servers.is_empty() => {
                EngineKind::Loop
            }
            EngineKind::Auto => EngineKind::Webrtc,
            kind => kind,
        }
    }
}

/// Most worker threads accepted: more than this is a typo, not a machine.
pub const MAX_WORKER_THREADS: usize = 1024;

const SECTIONS: &[&str] = &[
    "general",
    "http",
    "websocket",
    "admin",
    "ice",
    "dtls",
    "database",
    "web",
    "recordings",
    "workers",
    "panel",
    "rtmp",
    "whep",
    "streaming",
    "audiobridge",
    "sip",
    "voicemail",
    "media",
    "egress",
];

/// Variables starting with [`ENV_PREFIX`] that belong to the tools around the gateway, not to
/// its configuration, and are therefore not checked: `BIFRONS_BIN` (the binary the end-to-end
/// suite runs), `BIFRONS_PG_*` (the PostgreSQL the tests start) and `BIFRONS_TEST_*`.
pub const TOOL_VARIABLES: &[&str] = &["BIN", "PG_", "TEST_"];

/// What `origin` is called when no configuration file is given.
pub const DEFAULTS_ORIGIN: &str = "built-in defaults";

impl Config {
    /// Loads `path` (when given) and applies the process environment's overrides, then makes
    /// every relative path absolute (see [`Config::resolve_paths`]): paths written in the file
    /// are taken from the file's folder, paths from environment variables (and every path when
    /// no file is given) from the working directory.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let cwd = std::env::current_dir().map_err(|source| ConfigError::Read {
            path: "the working directory".into(),
            source,
        })?;
        let (text, origin, file_base) = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.display().to_string(),
                    source,
                })?;
                let absolute = normalize(&cwd.join(p));
                let base = absolute
                    .parent()
                    .map_or_else(|| cwd.clone(), Path::to_path_buf);
                (text, p.display().to_string(), base)
            }
            None => (String::new(), DEFAULTS_ORIGIN.to_string(), cwd.clone()),
        };
        let env: Vec<(String, String)> = std::env::vars().collect();
        let mut config = Self::from_sources(&text, &origin, env.iter().cloned())?;
        let from_env = |section: &str, key: &str| {
            let name = format!("{ENV_PREFIX}{section}_{key}").to_ascii_uppercase();
            env.iter().any(|(n, _)| n.eq_ignore_ascii_case(&name))
        };
        config.resolve_paths(&file_base, &cwd, from_env);
        Ok(config)
    }

    /// Builds a configuration from TOML text and `(name, value)` environment pairs. Errors name
    /// their source: `origin` for the text, `environment variable BIFRONS_…` for an override
    /// (an unknown section or key, a value of the wrong type), both for values that contradict
    /// each other. Paths are left as written.
    pub fn from_sources(
        text: &str,
        origin: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let invalid = |origin: &str, message: String| ConfigError::Invalid {
            origin: origin.into(),
            message,
        };
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| invalid(origin, e.to_string()))?;
        // The file alone first, so that its mistakes are blamed on it.
        toml::Value::Table(table.clone())
            .try_into::<Config>()
            .map_err(|e| invalid(origin, e.to_string()))?;
        let overrides: BTreeMap<String, String> = env.into_iter().collect();
        let mut applied = Vec::new();
        for (name, raw) in &overrides {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if TOOL_VARIABLES
                .iter()
                .any(|t| rest == t.trim_end_matches('_') || rest.starts_with(t))
            {
                continue;
            }
            let source = format!("environment variable {name}");
            let lower = rest.to_ascii_lowercase();
            let Some((section, key)) = lower.split_once('_').filter(|(_, k)| !k.is_empty()) else {
                return Err(invalid(
                    &source,
                    format!("not a configuration key; expected {ENV_PREFIX}<SECTION>_<KEY>"),
                ));
            };
            if !SECTIONS.contains(&section) {
                return Err(invalid(
                    &source,
                    format!(
                        "unknown section '{section}' (sections: {})",
                        SECTIONS.join(", ")
                    ),
                ));
            }
            // toml ends its messages with a line naming the key; one line reads better.
            let value = env_value::<Config>(section, key, raw).map_err(|e| {
                let message = e.to_string();
                invalid(
                    &source,
                    message.split_whitespace().collect::<Vec<_>>().join(" "),
                )
            })?;
            let entry = table
                .entry(section.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let Some(section_table) = entry.as_table_mut() else {
                return Err(invalid(origin, format!("[{section}] must be a table")));
            };
            section_table.insert(key.to_string(), value);
            applied.push(name.as_str());
        }
        let merged = match applied.as_slice() {
            [] => origin.to_string(),
            names => format!("{origin} with {}", names.join(", ")),
        };
        let config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| invalid(&merged, e.to_string()))?;
        config.validate().map_err(|m| invalid(&merged, m))?;
        Ok(config)
    }

    /// Makes the configuration's relative paths absolute: the SQLite database of
    /// `database.url`, `recordings.dir`, `web.janus_js`, `web.adapter_js`, `dtls.cert_pem`,
    /// `dtls.key_pem` and `egress.tls_ca_file`. A path is taken from `cwd` when `from_env(section, key)` says an
    /// environment variable gave it, from `file_base` otherwise. Empty paths stay empty.
    pub fn resolve_paths(
        &mut self,
        file_base: &Path,
        cwd: &Path,
        from_env: impl Fn(&str, &str) -> bool,
    ) {
        let base = |section: &str, key: &str| {
            if from_env(section, key) {
                cwd
            } else {
                file_base
            }
        };
        let file = |value: &mut String, base: &Path| {
            if !value.is_empty() {
                *value = absolute(base, Path::new(value)).display().to_string();
            }
        };
        self.database.url = resolve_sqlite_url(&self.database.url, base("database", "url"));
        self.recordings.dir = absolute(base("recordings", "dir"), &self.recordings.dir);
        file(&mut self.web.janus_js, base("web", "janus_js"));
        file(&mut self.web.adapter_js, base("web", "adapter_js"));
        file(&mut self.dtls.cert_pem, base("dtls", "cert_pem"));
        file(&mut self.dtls.key_pem, base("dtls", "key_pem"));
        file(&mut self.egress.tls_ca_file, base("egress", "tls_ca_file"));
    }

    fn validate(&self) -> Result<(), String> {
        if !self.http.base_path.starts_with('/') {
            return Err("http.base_path must start with '/'".into());
        }
        if !self.admin.base_path.starts_with('/') {
            return Err("admin.base_path must start with '/'".into());
        }
        if self.ice.port_min > self.ice.port_max {
            return Err("ice.port_min must not exceed ice.port_max".into());
        }
        if self.ice.port_min == 0 && self.ice.port_max != 0 {
            return Err("ice.port_min must be set when ice.port_max is".into());
        }
        if self.media.udp_port != 0 && self.ice.port_min != 0 {
            return Err("media.udp_port and ice.port_min/port_max exclude each other".into());
        }
        if self.media.min_nack_queue > MAX_NACK_QUEUE_MS {
            return Err(format!(
                "media.min_nack_queue: 0 (off) to {MAX_NACK_QUEUE_MS} ms"
            ));
        }
        if self.media.engine.resolve(&self.ice) == EngineKind::Loop {
            // The loop engine offers its sockets' host candidates only (media::rtc).
            if !self.ice.stun_servers.is_empty() || !self.ice.turn_servers.is_empty() {
                return Err("media.engine = \"loop\" gathers host candidates only: \
                            ice.stun_servers and ice.turn_servers need engine = \"webrtc\" \
                            (or \"auto\")"
                    .into());
            }
            if self.ice.port_min != 0
                && usize::from(self.ice.port_max - self.ice.port_min) + 1 < self.media.loops
            {
                return Err("media.loops needs one port of ice.port_min..port_max each".into());
            }
        }
        if self.http.enforce_cors && self.http.allow_origin.is_empty() {
            return Err("http.enforce_cors needs http.allow_origin".into());
        }
        if self.dtls.cert_pem.is_empty() != self.dtls.key_pem.is_empty() {
            return Err("dtls.cert_pem and dtls.key_pem go together".into());
        }
        if self.recordings.dir.as_os_str().is_empty() {
            return Err("recordings.dir must not be empty".into());
        }
        if !matches!(self.rtmp.duplicate_publisher.as_str(), "refuse" | "replace") {
            return Err("rtmp.duplicate_publisher: 'refuse' or 'replace'".into());
        }
        if self.rtmp.app.is_empty() || self.rtmp.app.contains(['/', '?']) {
            return Err("rtmp.app: a name without '/' or '?'".into());
        }
        if self.sip.rtp_port_min > self.sip.rtp_port_max || self.sip.rtp_port_min == 0 {
            return Err("sip.rtp_port_min must be set and not exceed sip.rtp_port_max".into());
        }
        if !(10..=10_000).contains(&self.sip.timer_t1_ms) {
            return Err("sip.timer_t1_ms: 10 to 10000".into());
        }
        if ![480, 486].contains(&self.sip.unanswered_code) {
            return Err("sip.unanswered_code: 480 or 486".into());
        }
        if !matches!(
            self.voicemail.mwi.as_str(),
            "off" | "unsolicited" | "subscribe"
        ) {
            return Err("voicemail.mwi: off, unsolicited or subscribe".into());
        }
        if !(1..=3600).contains(&self.voicemail.max_seconds) {
            return Err("voicemail.max_seconds: 1 to 3600".into());
        }
        // A folder inside the recordings directory (the registry's relative paths start there).
        let folder = std::path::Path::new(&self.voicemail.folder);
        if self.voicemail.folder.is_empty()
            || !folder
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
        {
            return Err("voicemail.folder: a relative path without '..'".into());
        }
        if self.workers.threads > MAX_WORKER_THREADS {
            return Err(format!(
                "workers.threads: at most {MAX_WORKER_THREADS} (0 = cores - 1)"
            ));
        }
        crate::logging::parse_level(&self.general.log_level).ok_or_else(|| {
            format!(
                "general.log_level: unknown level '{}'",
                self.general.log_level
            )
        })?;
        for server in &self.ice.stun_servers {
            if !server.starts_with("stun:") {
                return Err(format!(
                    "ice.stun_servers: '{server}' must start with stun:"
                ));
            }
        }
        for server in &self.ice.turn_servers {
            if !(server.url.starts_with("turn:") || server.url.starts_with("turns:")) {
                return Err(format!(
                    "ice.turn_servers: '{}' must start with turn: or turns:",
                    server.url
                ));
            }
        }
        Ok(())
    }
}

/// Environment values are typed like TOML literals (numbers, booleans, arrays) and are strings
/// otherwise, or when the key wants a string (a numeric `api_secret` stays a secret). Checked
/// alone, so that an unknown key or a wrong type is blamed on the variable.
fn env_value<T: serde::de::DeserializeOwned>(
    section: &str,
    key: &str,
    raw: &str,
) -> Result<toml::Value, toml::de::Error> {
    let check = |value: &toml::Value| {
        let mut inner = toml::Table::new();
        inner.insert(key.to_string(), value.clone());
        let mut outer = toml::Table::new();
        outer.insert(section.to_string(), toml::Value::Table(inner));
        toml::Value::Table(outer).try_into::<T>().map(drop)
    };
    let parsed: Result<toml::Table, _> = toml::from_str(&format!("v = {raw}"));
    let string = toml::Value::String(raw.to_string());
    match parsed.ok().and_then(|mut t| t.remove("v")) {
        Some(typed) => match check(&typed) {
            Ok(()) => Ok(typed),
            Err(e) => check(&string).map(|()| string).map_err(|_| e),
        },
        None => check(&string).map(|()| string),
    }
}

/// The URL with a relative SQLite path made absolute from `base` (`sqlite://data/x.db` →
/// `sqlite:///srv/bifrons/data/x.db`, query kept); other URLs, `:memory:` and absolute paths
/// unchanged.
pub fn resolve_sqlite_url(url: &str, base: &Path) -> String {
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return url.to_string();
    };
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, format!("?{q}")),
        None => (rest, String::new()),
    };
    if path.is_empty() || path.starts_with(':') || Path::new(path).is_absolute() {
        return url.to_string();
    }
    format!(
        "sqlite://{}{query}",
        absolute(base, Path::new(path)).display()
    )
}

/// The file path of a `sqlite:` URL (`None` for other schemes and `:memory:`).
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    (!path.is_empty() && !path.starts_with(':')).then(|| PathBuf::from(path))
}

/// `path` made absolute from `base`, with `.` and `..` removed lexically.
fn absolute(base: &Path, path: &Path) -> PathBuf {
    normalize(&base.join(path))
}

fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push(part);
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_match_janus_ports() {
        let c = Config::from_sources("", "t", env(&[])).unwrap();
        assert_eq!(
            (
                c.http.port,
                c.websocket.port,
                c.admin.http_port,
                c.admin.websocket_port
            ),
            (8088, 8188, 7088, 7188)
        );
        assert_eq!(c.general.session_timeout, 60);
        assert_eq!(c.database.url, "sqlite://data/bifrons.db");
    }

    #[test]
    fn environment_overrides_file() {
        let c = Config::from_sources(
            "[http]\nport = 9000\n",
            "t",
            env(&[
                ("BIFRONS_HTTP_PORT", "9100"),
                ("BIFRONS_DATABASE_URL", "postgres://x/y"),
                ("BIFRONS_BIN", "ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(c.http.port, 9100);
        assert_eq!(c.database.url, "postgres://x/y");
    }

    #[test]
    fn egress_tls_ca_file_from_file_or_environment() {
        let c =
            Config::from_sources("[egress]\ntls_ca_file = \"ca.pem\"\n", "t", env(&[])).unwrap();
        assert_eq!(c.egress.tls_ca_file, "ca.pem");
        let c = Config::from_sources(
            "",
            "t",
            env(&[("BIFRONS_EGRESS_TLS_CA_FILE", "/etc/bifrons/ca.pem")]),
        )
        .unwrap();
        assert_eq!(c.egress.tls_ca_file, "/etc/bifrons/ca.pem");
        assert_eq!(Config::default().egress.tls_ca_file, "");
    }

    #[test]
    fn media_keys_from_file_and_environment_and_single_port_excludes_the_range() {
        let c = Config::from_sources(
            "[media]\nudp_port = 10000\n",
            "t",
            env(&[
                ("BIFRONS_MEDIA_MAX_SESSIONS", "400"),
                ("BIFRONS_MEDIA_MIN_NACK_QUEUE", "1000"),
            ]),
        )
        .unwrap();
        assert_eq!((c.media.udp_port, c.media.max_sessions), (10000, 400));
        assert_eq!(c.media.min_nack_queue, 1000);
        let d = Config::from_sources("", "t", env(&[])).unwrap();
        assert_eq!((d.media.udp_port, d.media.max_sessions), (0, 0));
        assert_eq!(d.media.min_nack_queue, 200);
        for (value, ok) in [(0, true), (1, true), (1000, true), (1001, false)] {
            let r = Config::from_sources(
                &format!("[media]\nmin_nack_queue = {value}\n"),
                "t",
                env(&[]),
            );
            assert_eq!(r.is_ok(), ok, "min_nack_queue = {value}");
        }
        let err = Config::from_sources(
            "[media]\nudp_port = 10000\n[ice]\nport_min = 20000\nport_max = 20100\n",
            "bifrons.toml",
            env(&[]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("media.udp_port"), "{err}");
    }

    #[test]
    fn the_loop_engine_is_chosen_by_key_or_environment_and_refuses_what_it_cannot_gather() {
        let default = Config::default();
        assert_eq!(default.media.engine, EngineKind::Auto);
        assert_eq!(default.media.engine.resolve(&default.ice), EngineKind::Loop);
        let stun = Config::from_sources(
            "[ice]\nstun_servers = [\"stun:127.0.0.1:3478\"]\n",
            "t",
            env(&[]),
        )
        .unwrap();
        assert_eq!(stun.media.engine.resolve(&stun.ice), EngineKind::Webrtc);
        let nat = Config::from_sources("[ice]\nnat_1_1_mapping = [\"192.0.2.1\"]\n", "t", env(&[]))
            .unwrap();
        assert_eq!(nat.media.engine.resolve(&nat.ice), EngineKind::Loop);
        let webrtc =
            Config::from_sources("", "t", env(&[("BIFRONS_MEDIA_ENGINE", "webrtc")])).unwrap();
        assert_eq!(webrtc.media.engine.resolve(&webrtc.ice), EngineKind::Webrtc);
        let c =
            Config::from_sources("[media]\nengine = \"loop\"\nloops = 3\n", "t", env(&[])).unwrap();
        assert_eq!((c.media.engine, c.media.loops), (EngineKind::Loop, 3));
        let e = Config::from_sources("", "t", env(&[("BIFRONS_MEDIA_ENGINE", "loop")])).unwrap();
        assert_eq!(e.media.engine, EngineKind::Loop);
        for (extra, named) in [
            (
                "[ice]\nstun_servers = [\"stun:127.0.0.1:3478\"]\n",
                "stun_servers",
            ),
            (
                "[ice]\nport_min = 20000\nport_max = 20001\n[media]\nloops = 3\n",
                "media.loops",
            ),
        ] {
            let err = Config::from_sources(extra, "t", env(&[("BIFRONS_MEDIA_ENGINE", "loop")]))
                .unwrap_err();
            assert!(err.to_string().contains(named), "{named}: {err}");
        }
        assert!(Config::from_sources("[media]\nengine = \"str0m\"\n", "t", env(&[])).is_err());
    }

    #[test]
    fn numeric_looking_secret_stays_usable() {
        let c = Config::from_sources("", "t", env(&[("BIFRONS_GENERAL_API_SECRET", "s3cret")]))
            .unwrap();
        assert_eq!(c.general.api_secret, "s3cret");
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::from_sources("[http]\nprot = 1\n", "bifrons.toml", env(&[])).unwrap_err();
        assert!(err.to_string().contains("prot"), "{err}");
        let err = Config::from_sources("", "t", env(&[("BIFRONS_HTTP_PROT", "1")])).unwrap_err();
        assert!(err.to_string().contains("prot"), "{err}");
    }

    #[test]
    fn wrong_type_is_refused() {
        let err = Config::from_sources("[general]\nsession_timeout = \"soon\"\n", "t", env(&[]))
            .unwrap_err();
        assert!(
            err.to_string().contains("session_timeout") || err.to_string().contains("invalid type"),
            "{err}"
        );
    }

    #[test]
    fn the_keyframe_cache_size_has_a_default_and_an_env_override() {
        let c = Config::from_sources("", "t", env(&[])).unwrap();
        assert_eq!(c.streaming.keyframe_cache_packets, 4096);
        let c = Config::from_sources(
            "[streaming]\nkeyframe_cache_packets = 8000\n",
            "t",
            env(&[("BIFRONS_STREAMING_KEYFRAME_CACHE_PACKETS", "600")]),
        )
        .unwrap();
        assert_eq!(c.streaming.keyframe_cache_packets, 600);
    }

    #[test]
    fn recordings_and_workers_sections_have_defaults_and_env_overrides() {
        let c = Config::from_sources("", "t", env(&[])).unwrap();
        assert_eq!(c.recordings.dir, PathBuf::from("data/recordings"));
        assert_eq!(c.workers.threads, 0);
        let c = Config::from_sources(
            "[recordings]\ndir = \"/var/lib/bifrons/rec\"\n",
            "t",
            env(&[("BIFRONS_WORKERS_THREADS", "3")]),
        )
        .unwrap();
        assert_eq!(c.recordings.dir, PathBuf::from("/var/lib/bifrons/rec"));
        assert_eq!(c.workers.threads, 3);
        let c = Config::from_sources("", "t", env(&[("BIFRONS_RECORDINGS_DIR", "rec")])).unwrap();
        assert_eq!(c.recordings.dir, PathBuf::from("rec"));
        assert!(Config::from_sources("[workers]\nthreads = 100000\n", "t", env(&[])).is_err());
        assert!(Config::from_sources("[recordings]\ndir = \"\"\n", "t", env(&[])).is_err());
    }

    #[test]
    fn inconsistent_values_are_refused() {
        assert!(
            Config::from_sources("[ice]\nport_min = 20000\nport_max = 10000\n", "t", env(&[]))
                .is_err()
        );
        assert!(Config::from_sources("[general]\nlog_level = \"loud\"\n", "t", env(&[])).is_err());
    }

    #[test]
    fn environment_errors_name_the_variable_not_the_file() {
        let err = Config::from_sources(
            "",
            "conf/bifrons.toml",
            env(&[("BIFRONS_HTTP_PORT", "abc")]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("environment variable BIFRONS_HTTP_PORT:"),
            "{err}"
        );
        assert!(!err.contains("bifrons.toml"), "{err}");
        let err =
            Config::from_sources("", "conf/bifrons.toml", env(&[("BIFRONS_HTTP_PROT", "80")]))
                .unwrap_err()
                .to_string();
        assert!(
            err.starts_with("environment variable BIFRONS_HTTP_PROT:"),
            "{err}"
        );
        assert!(err.contains("prot"), "{err}");
    }

    #[test]
    fn unknown_environment_section_is_refused_but_tool_variables_are_not_config() {
        let err = Config::from_sources("", "t", env(&[("BIFRONS_FOO_BAR", "1")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("BIFRONS_FOO_BAR"), "{err}");
        assert!(err.contains("unknown section 'foo'"), "{err}");
        assert!(Config::from_sources("", "t", env(&[("BIFRONS_PORT", "1")])).is_err());
        Config::from_sources(
            "",
            "t",
            env(&[
                ("BIFRONS_BIN", "/x/bifrons"),
                ("BIFRONS_PG_BINDIR", "/usr/lib/postgresql/15/bin"),
                ("BIFRONS_TEST_CHILD_URL", "sqlite://x"),
            ]),
        )
        .unwrap();
    }

    #[test]
    fn contradictions_name_the_file_and_the_overrides() {
        let err = Config::from_sources(
            "[ice]\nport_max = 10000\n",
            "my.toml",
            env(&[("BIFRONS_ICE_PORT_MIN", "20000")]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("my.toml with BIFRONS_ICE_PORT_MIN:"),
            "{err}"
        );
    }

    #[test]
    fn numeric_secret_from_the_environment_stays_a_string() {
        let c = Config::from_sources("", "t", env(&[("BIFRONS_ADMIN_SECRET", "123456")])).unwrap();
        assert_eq!(c.admin.secret, "123456");
    }

    #[test]
    fn relative_paths_resolve_against_the_file_folder_or_cwd_for_env() {
        let mut c = Config::from_sources(
            "[database]\nurl = \"sqlite://../data/b.db?mode=rwc\"\n\
             [recordings]\ndir = \"rec\"\n\
             [web]\njanus_js = \"./js/janus.js\"\nadapter_js = \"/abs/adapter.js\"\n\
             [dtls]\ncert_pem = \"tls/c.pem\"\nkey_pem = \"tls/k.pem\"\n",
            "t",
            env(&[]),
        )
        .unwrap();
        c.resolve_paths(Path::new("/etc/bifrons"), Path::new("/home/me"), |s, k| {
            (s, k) == ("dtls", "key_pem")
        });
        assert_eq!(c.database.url, "sqlite:///etc/data/b.db?mode=rwc");
        assert_eq!(c.recordings.dir, PathBuf::from("/etc/bifrons/rec"));
        assert_eq!(c.web.janus_js, "/etc/bifrons/js/janus.js");
        assert_eq!(c.web.adapter_js, "/abs/adapter.js");
        assert_eq!(c.dtls.cert_pem, "/etc/bifrons/tls/c.pem");
        assert_eq!(c.dtls.key_pem, "/home/me/tls/k.pem");
        for unchanged in ["sqlite::memory:", "sqlite:///var/b.db", "postgres://u@h/db"] {
            assert_eq!(resolve_sqlite_url(unchanged, Path::new("/x")), unchanged);
        }
        assert_eq!(
            sqlite_path("sqlite:///var/b.db?mode=rwc"),
            Some(PathBuf::from("/var/b.db"))
        );
        assert_eq!(sqlite_path("postgres://h/db"), None);
    }
}
