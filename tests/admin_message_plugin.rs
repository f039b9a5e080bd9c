//! Admin API `message_plugin` answers as Janus' `janus_admin_handle_request` does: a plugin
//! without Admin API support gives 490, an unknown package 460, and the echo test (which in
//! Janus echoes the request as a proof of concept) echoes it.

mod support;

use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::json;

use bifrons::plugins::{
    echotest, AttachError, HandleCtx, Plugin, PluginDescriptor, PluginHost, PluginMessage,
    PluginResult, RegisteredPlugin,
};
use support::gateway::TestGateway;

/// A plugin that leaves `handle_admin_message` to the trait's default.
struct Mute(PluginDescriptor);

#[async_trait::async_trait]
impl Plugin for Mute {
    type Handle = ();
    fn descriptor(&self) -> &PluginDescriptor {
        &self.0
    }
    fn create_handle(&self, _ctx: &HandleCtx) -> Result<(), AttachError> {
        Ok(())
    }
    async fn handle_message(
        &self,
        _handle: &Arc<()>,
        _ctx: &Arc<HandleCtx>,
        _message: PluginMessage,
    ) -> PluginResult {
        PluginResult::Ok(json!({}))
    }
}

fn mute(_host: &PluginHost) -> BoxFuture<'_, anyhow::Result<RegisteredPlugin>> {
    Box::pin(async {
        Ok(RegisteredPlugin::new(Mute(PluginDescriptor {
            package: "janus.plugin.mute",
            name: "Mute",
            author: "tests",
            description: "takes no Admin API messages",
            version: 1,
            version_string: "0.0.1",
        })))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_plugin_to_a_plugin_without_admin_support_is_refused_with_490() {
    let gw = TestGateway::start(&[mute, echotest::factory]).await;
    let ask = |plugin: &str| json!({"janus":"message_plugin","transaction":"m","plugin":plugin,"request":{"q":1}});

    let r = gw.admin(&ask("janus.plugin.mute")).await;
    assert_eq!(r["janus"], "error", "{r}");
    assert_eq!(r["transaction"], "m");
    assert_eq!(r["error"]["code"], 490, "{r}");
    assert_eq!(
        r["error"]["reason"],
        "Plugin doesn't support Admin API messages"
    );

    let r = gw.admin(&ask("janus.plugin.nothere")).await;
    assert_eq!(r["error"]["code"], 460, "{r}");
    assert_eq!(r["error"]["reason"], "Invalid plugin");

    let r = gw.admin(&ask("janus.plugin.echotest")).await;
    assert_eq!(r["janus"], "success", "{r}");
    assert_eq!(r["response"], json!({"q":1}));
    gw.stop().await;
}
