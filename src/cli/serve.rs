//! `bifrons` with no subcommand: open the registry (migrating it), then run the gateway,
//! announcing with a banner what it serves, from where, and which settings expose it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use bifrons::config::{sqlite_path, Config, DEFAULTS_ORIGIN};
use bifrons::logging;
use bifrons::server::Addresses;
use bifrons::storage::{admin_bootstrap_hint, Storage};

/// Starts the gateway and serves until Ctrl-C or SIGTERM. `config_path` is the file the
/// configuration came from, for the banner.
pub fn run(config: Config, database_url: String, config_path: Option<&Path>) -> ExitCode {
    let level = logging::parse_level(&config.general.log_level)
        .unwrap_or(tracing::level_filters::LevelFilter::INFO);
    let log = logging::init(level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bifrons: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config_file = config_path.map(|p| p.canonicalize().unwrap_or_else(|_| p.into()));
    let result: anyhow::Result<()> = runtime.block_on(async move {
        let storage = Storage::open(&database_url)
            .await
            .map_err(|e| super::open_error(&database_url, e))
            .context("opening the registry database")?;
        tracing::info!(
            backend = ?storage.backend(),
            database = %database_label(&database_url),
            "registry ready"
        );
        if let Some(hint) = admin_bootstrap_hint(&storage).await {
            tracing::warn!("{hint}");
        }
        let listeners = bifrons::server::Listeners::bind(&config).await?;
        let addresses = listeners.addresses();
        let mut banner = Banner {
            config_file,
            database: database_label(&database_url),
            recordings: config.recordings.dir.clone(),
            addresses,
            http_base: config.http.base_path.clone(),
            admin_base: config.admin.base_path.clone(),
            demos: config.web.demos,
            plugins: Vec::new(),
        };
        let warnings = exposure_warnings(&config, &addresses);
        let core = bifrons::server::build_core(config, log, storage).await?;
        banner.plugins = core
            .plugins
            .descriptors()
            .map(|d| format!("{} {}", d.package, d.version_string))
            .collect();
        println!("{}", banner.render());
        for warning in warnings {
            tracing::warn!("{warning}");
        }
        bifrons::server::run(core, listeners, bifrons::server::shutdown_signal()).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("bifrons: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The database as the banner and logs show it: the absolute file of a SQLite URL, the URL
/// without its password otherwise.
fn database_label(url: &str) -> String {
    match sqlite_path(url) {
        Some(path) => format!("sqlite {}", path.display()),
        None => super::display_url(url),
    }
}

/// What the start-up banner shows.
struct Banner {
    config_file: Option<PathBuf>,
    database: String,
    recordings: PathBuf,
    addresses: Addresses,
    http_base: String,
    admin_base: String,
    demos: bool,
    plugins: Vec<String>,
}

impl Banner {
    /// The banner, one `  label  value` line each; the `demos` line always comes last.
    fn render(&self) -> String {
        let mut lines = vec![format!("Bifrons {} ready", env!("CARGO_PKG_VERSION"))];
        let mut line = |label: &str, value: String| lines.push(format!("  {label:<22} {value}"));
        line(
            "configuration",
            self.config_file
                .as_ref()
                .map_or_else(|| DEFAULTS_ORIGIN.to_owned(), |p| p.display().to_string()),
        );
        line("database", self.database.clone());
        line("recordings", self.recordings.display().to_string());
        let a = &self.addresses;
        let listeners = [
            (
                "Janus API (HTTP)",
                a.janus_http,
                "http",
                self.http_base.as_str(),
            ),
            ("Janus API (WebSocket)", a.janus_ws, "ws", "/"),
            (
                "Admin API (HTTP)",
                a.admin_http,
                "http",
                self.admin_base.as_str(),
            ),
            ("Admin API (WebSocket)", a.admin_ws, "ws", "/"),
        ];
        for (name, addr, scheme, path) in listeners {
            line(
                name,
                addr.map_or_else(|| "off".to_owned(), |a| format!("{scheme}://{a}{path}")),
            );
        }
        line(
            "plugins",
            match self.plugins.is_empty() {
                true => "none".to_owned(),
                false => self.plugins.join(", "),
            },
        );
        let demos = match (self.demos, a.janus_http) {
            (true, Some(addr)) => format!("http://{}/", browsable(addr)),
            (true, None) => "off (the HTTP listener is off)".to_owned(),
            (false, _) => "off".to_owned(),
        };
        line("demos", demos);
        lines.join("\n")
    }
}

/// An address a browser on this machine can open: `localhost` for a wildcard bind (a secure
/// context, so the demos may use the camera).
fn browsable(addr: SocketAddr) -> String {
    match addr.ip().is_unspecified() {
        true => format!("localhost:{}", addr.port()),
        false => addr.to_string(),
    }
}

/// Warnings for APIs reachable from other machines without a secret: the Janus API with an
/// empty `api_secret` (and no `token_auth`), the Admin API with an empty `admin.secret`.
fn exposure_warnings(config: &Config, addresses: &Addresses) -> Vec<String> {
    let exposed = |addrs: &[Option<SocketAddr>]| {
        addrs
            .iter()
            .flatten()
            .filter(|a| !a.ip().is_loopback())
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
    };
    let mut warnings = Vec::new();
    let janus = exposed(&[addresses.janus_http, addresses.janus_ws]);
    if config.general.api_secret.is_empty() && !config.general.token_auth && !janus.is_empty() {
        warnings.push(format!(
            "the Janus API listens on {} with an empty [general] api_secret and token_auth off: \
             anyone who can reach it may create sessions; set api_secret or token_auth, or bind \
             to 127.0.0.1",
            janus.join(", ")
        ));
    }
    let admin = exposed(&[addresses.admin_http, addresses.admin_ws]);
    if config.admin.secret.is_empty() && !admin.is_empty() {
        warnings.push(format!(
            "the Admin API listens on {} with an empty [admin] secret: anyone who can reach it \
             may control the gateway; set [admin] secret, or bind it to 127.0.0.1",
            admin.join(", ")
        ));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Option<SocketAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn exposure_warnings_only_for_empty_secrets_beyond_loopback() {
        let mut config = Config::default();
        let local = Addresses {
            janus_http: addr("127.0.0.1:8088"),
            janus_ws: addr("[::1]:8188"),
            admin_http: addr("127.0.0.1:7088"),
            admin_ws: None,
        };
        assert!(exposure_warnings(&config, &local).is_empty());
        let public = Addresses {
            janus_ws: addr("0.0.0.0:8188"),
            admin_ws: addr("192.0.2.1:7188"),
            ..local
        };
        let w = exposure_warnings(&config, &public);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("0.0.0.0:8188") && w[0].contains("api_secret"));
        assert!(w[1].contains("192.0.2.1:7188") && w[1].contains("[admin] secret"));
        config.general.api_secret = "s".into();
        config.admin.secret = "t".into();
        assert!(exposure_warnings(&config, &public).is_empty());
        config.general.api_secret.clear();
        config.general.token_auth = true;
        assert!(exposure_warnings(&config, &public).is_empty());
    }

    #[test]
    fn banner_lists_every_listener_plugin_and_the_demo_url() {
        let banner = Banner {
            config_file: None,
            database: database_label("sqlite:///srv/b/data/bifrons.db"),
            recordings: PathBuf::from("/srv/b/data/recordings"),
            addresses: Addresses {
                janus_http: addr("0.0.0.0:8088"),
                janus_ws: addr("0.0.0.0:8188"),
                admin_http: addr("127.0.0.1:7088"),
                admin_ws: None,
            },
            http_base: "/janus".into(),
            admin_base: "/admin".into(),
            demos: true,
            plugins: vec!["janus.plugin.echotest 0.0.1".into()],
        }
        .render();
        for part in [
            "built-in defaults",
            "sqlite /srv/b/data/bifrons.db",
            "/srv/b/data/recordings",
            "http://0.0.0.0:8088/janus",
            "ws://0.0.0.0:8188/",
            "http://127.0.0.1:7088/admin",
            "Admin API (WebSocket)  off",
            "janus.plugin.echotest 0.0.1",
        ] {
            assert!(banner.contains(part), "{part} in\n{banner}");
        }
        assert!(banner
            .lines()
            .last()
            .unwrap()
            .ends_with("http://localhost:8088/"));
        assert_eq!(
            database_label("postgres://u:pw@db/x"),
            "postgres://u:***@db/x"
        );
    }
}
