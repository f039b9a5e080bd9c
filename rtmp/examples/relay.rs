//! A small RTMP relay: encoders publish, RTMP players pull any live key.
//!
//! ```text
//! cargo run -p bifrons-rtmp --example relay -- --listen 127.0.0.1:1935 [--key KEY]... [--replace]
//! ffmpeg -re -i input.mp4 -c copy -f flv rtmp://127.0.0.1:1935/live/KEY
//! ffplay rtmp://127.0.0.1:1935/live/KEY
//! ffmpeg -re -i input.mp4 -c copy -f flv 'rtmp://127.0.0.1:1935/live/cam1?key=KEY'
//! ffplay rtmp://127.0.0.1:1935/live/cam1
//! ```
//! A key is accepted as the stream name or as a `key`/`token` parameter; without `--key`, any
//! stream may publish. Events and per-stream bitrates are printed to stdout.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bifrons_rtmp::server::{DuplicatePublisher, PublishRequest, RtmpServer, ServerConfig};

fn usage() -> ! {
    eprintln!("usage: relay [--listen ADDR:PORT] [--key KEY]... [--replace]");
    std::process::exit(2);
}

#[tokio::main]
async fn main() {
    let mut config = ServerConfig::default();
    let mut keys: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => {
                config.listen = args
                    .next()
                    .and_then(|a| a.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            "--key" => keys.push(args.next().unwrap_or_else(|| usage())),
            "--replace" => config.duplicate_publisher = DuplicatePublisher::Replace,
            _ => usage(),
        }
    }
    let keys = Arc::new(keys);
    let allowed = keys.clone();
    let server = match RtmpServer::bind(config, move |req: PublishRequest| {
        let allowed = allowed.clone();
        let given = [Some(req.key.as_str()), req.param("key"), req.param("token")];
        let ok = allowed.is_empty()
            || given
                .into_iter()
                .flatten()
                .any(|key| allowed.iter().any(|a| a == key));
        async move { ok }
    })
    .await
    {
        Ok(server) => server,
        Err(error) => {
            eprintln!("relay: cannot listen: {error}");
            std::process::exit(1);
        }
    };
    println!("listening on {}", server.local_addr());

    let mut events = server.events();
    let mut ticker = tokio::time::interval(Duration::from_secs(2));
    let mut last: HashMap<(String, String), (u64, u64)> = HashMap::new();
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(event) => println!("event {event:?}"),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => println!("({n} events missed)"),
                Err(_) => return,
            },
            _ = ticker.tick() => {
                for s in server.stats() {
                    let name = (s.app.clone(), s.key.clone());
                    let (bytes, at) = last.get(&name).copied().unwrap_or((0, 0));
                    let elapsed = s.uptime_ms.saturating_sub(at).max(1);
                    let kbps = (s.bytes - bytes.min(s.bytes)) * 8 / elapsed;
                    println!("stream {}/{} {} kbit/s, {} player(s)", s.app, s.key, kbps, s.players);
                    last.insert(name, (s.bytes, s.uptime_ms));
                }
            }
            _ = tokio::signal::ctrl_c() => {
                server.shutdown().await;
                return;
            }
        }
    }
}
