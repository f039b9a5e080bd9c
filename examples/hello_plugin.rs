//! A gateway binary with a plugin of its own beside the built-in ones: how to write and host
//! a plugin without touching the gateway's sources.
//!
//! `example.plugin.hello` keeps a per-handle counter, answers `{"request":"hello","name":…}`
//! with an event, and answers an offer preferring PCMU, then Opus (as a PBX-facing plugin
//! would), echoing the caller's audio back and telling which codec was negotiated.
//!
//! ```sh
//! cargo run --example hello_plugin          # conf/bifrons.toml, Janus API on :8088 and :8188
//! curl -s localhost:8088/janus -d '{"janus":"create","transaction":"1"}'
//! curl -s localhost:8088/janus/<session> -d '{"janus":"attach","plugin":"example.plugin.hello","transaction":"2"}'
//! curl -s localhost:8088/janus/<session>/<handle> -d '{"janus":"message","transaction":"3","body":{"request":"hello","name":"Ada"}}'
//! curl -s 'localhost:8088/janus/<session>?maxev=5'
//! ```

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::json;

use bifrons::config::Config;
use bifrons::plugins::registry::PluginRegistry;
use bifrons::plugins::{
    AnswerPlan, AttachError, Codec, Direction, HandleCtx, MediaKind, Plugin, PluginDescriptor,
    PluginFactory, PluginHost, PluginMessage, PluginResult, RegisteredPlugin, RtpPacket,
    StreamInfo, StreamPlan,
};
use bifrons::server::{build_core_with, run, shutdown_signal, Listeners};
use bifrons::storage::Storage;

static DESCRIPTOR: PluginDescriptor = PluginDescriptor {
    package: "example.plugin.hello",
    name: "Hello",
    author: "Bifrons examples",
    description: "Counts messages, answers offers with PCMU or Opus and echoes audio",
    version: 1,
    version_string: "0.0.1",
};

/// The plugin: shared by all its handles.
struct Hello;

/// One handle's state, created at attach and handed back with every call.
#[derive(Default)]
struct Caller {
    messages: AtomicU64,
}

/// Started once at boot with the host (configuration, registry, services...).
fn factory(_host: &PluginHost) -> BoxFuture<'_, anyhow::Result<RegisteredPlugin>> {
    Box::pin(async { Ok(RegisteredPlugin::new(Hello)) })
}

impl Hello {
    /// Runs after the `ack` has gone out, so its events follow it.
    async fn reply(caller: Arc<Caller>, ctx: Arc<HandleCtx>, message: PluginMessage) {
        let n = caller.messages.fetch_add(1, Ordering::Relaxed) + 1;
        let t = Some(message.transaction.as_str());
        let name = message.body["name"].as_str().unwrap_or("stranger");
        let Some(offer) = message.jsep else {
            return ctx.push_event(t, json!({ "hello": name, "count": n }), None);
        };
        let plan = AnswerPlan {
            audio: Some(StreamPlan::new(
                Direction::SendRecv,
                vec![Codec::Pcmu, Codec::Opus],
            )),
            video: None,
        };
        match ctx.answer_offer(&offer, &plan).await {
            Ok((answer, negotiated)) => {
                let codec = negotiated
                    .first(MediaKind::Audio)
                    .and_then(|s| s.codec.as_ref())
                    .map(|c| c.encoding_name());
                ctx.push_event(
                    t,
                    json!({ "hello": name, "count": n, "codec": codec }),
                    Some(answer),
                );
            }
            Err(e) => ctx.push_event(
                t,
                json!({ "error_code": 499, "error": e.to_string() }),
                None,
            ),
        }
    }
}

#[async_trait::async_trait]
impl Plugin for Hello {
    type Handle = Caller;

    fn descriptor(&self) -> &PluginDescriptor {
        &DESCRIPTOR
    }

    fn create_handle(&self, _ctx: &HandleCtx) -> Result<Caller, AttachError> {
        Ok(Caller::default())
    }

    async fn handle_message(
        &self,
        caller: &Arc<Caller>,
        ctx: &Arc<HandleCtx>,
        message: PluginMessage,
    ) -> PluginResult {
        if message.body["request"] != "hello" {
            return PluginResult::Ok(json!({ "error_code": 411, "error": "unknown request" }));
        }
        PluginResult::Async {
            hint: None,
            work: Box::pin(Self::reply(caller.clone(), ctx.clone(), message)),
        }
    }

    fn incoming_rtp(
        &self,
        _caller: &Caller,
        ctx: &HandleCtx,
        stream: &StreamInfo,
        packet: RtpPacket,
    ) {
        // The media path: synchronous, no blocking, no codec work. Echo the audio back.
        if stream.kind == MediaKind::Audio {
            ctx.send_rtp(MediaKind::Audio, packet);
        }
    }
}

fn main() -> anyhow::Result<()> {
    let log = bifrons::logging::init(tracing::level_filters::LevelFilter::INFO);
    let config = Config::load(Some(Path::new("conf/bifrons.toml")))?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let storage = Storage::open(&config.database.url).await?;
        let listeners = Listeners::bind(&config).await?;
        let mut factories: Vec<PluginFactory> = PluginRegistry::builtin();
        factories.push(factory);
        let core = build_core_with(config, log, storage, &factories).await?;
        run(core, listeners, shutdown_signal()).await
    })
}
