//! The per-packet path of a plugin: an RTP packet from a handle's PeerConnection goes to the
//! plugin (`incoming_rtp`), which sends it on (`MediaSender`). Measured on the echo test
//! through the public API: a real PeerConnection (gateway offer made, not connected), the
//! handle's context as its listener.
//!
//! Run: `cargo bench -p bifrons --bench rtp_path`. Besides criterion's time per packet it
//! prints heap allocations per packet, counted by a global allocator wrapper.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;

use bifrons::api::router::{handle_request, RequestContext};
use bifrons::config::{Config, LoopbackMode};
use bifrons::ids::{HandleId, Mid, Pt};
use bifrons::logging::LogControl;
use bifrons::media::{
    Codec, MediaKind, OfferPlan, PeerListener, RtpPacket, StreamInfo, StreamPlan,
};
use bifrons::plugins::HandleCtx;
use bifrons::session::Sink;
use bifrons::storage::Storage;

/// Counts allocations made on the calling thread, so the bench can say whether the path
/// allocates per packet (the runtime's own threads allocate too, and are not counted).
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// An echo-test handle with a PeerConnection, on a gateway built in-process.
fn echo_handle(rt: &tokio::runtime::Runtime) -> (Arc<HandleCtx>, tempfile::TempDir) {
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.ice.loopback = LoopbackMode::Always;
        config.recordings.dir = dir.path().join("recordings");
        let storage = Storage::open(&format!("sqlite://{}/db", dir.path().display()))
            .await
            .unwrap();
        let log = LogControl::detached(tracing::level_filters::LevelFilter::WARN);
        let core = bifrons::server::build_core(config, log, storage).await.unwrap();
        let ctx = RequestContext {
            sink: Sink::Queue,
            transport: "bench",
            path_session: None,
            path_handle: None,
        };
        let request = |v: serde_json::Value| v.as_object().unwrap().clone();
        let created = handle_request(&core, request(json!({"janus":"create","transaction":"c"})), &ctx).await;
        let session = created.reply["data"]["id"].as_u64().unwrap();
        let attached = handle_request(
            &core,
            request(json!({"janus":"attach","transaction":"a","session_id":session,"plugin":"janus.plugin.echotest"})),
            &ctx,
        )
        .await;
        let handle = attached.reply["data"]["id"].as_u64().unwrap();
        let session = core.sessions.get(bifrons::ids::SessionId(session)).unwrap();
        let ctx = session.handle(HandleId(handle)).unwrap().ctx.clone();
        let plan = OfferPlan {
            audio: Some(StreamPlan::sendrecv()),
            video: Some(StreamPlan::sendrecv()),
            data: false,
        };
        ctx.create_offer(&plan).await.unwrap();
        std::mem::forget(core);
        (ctx, dir)
    })
}

fn bench(c: &mut Criterion) {
    // A current-thread runtime runs only inside `block_on`: during the measurement the
    // PeerConnection's writer task does not run, so its queue fills and every further send
    // is a counted drop. What is measured is the path up to the queue, the same on every
    // run, instead of a race with a writer thread on the other core.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (ctx, _dir) = echo_handle(&rt);
    let stream = StreamInfo {
        mid: Mid::from("0"),
        kind: MediaKind::Audio,
        codec: Some(Codec::Opus),
        pt: Pt(111),
        clock_rate: 48_000,
        audio_level_id: None,
        audio_level: None,
    };
    let packet = RtpPacket {
        payload_type: 111,
        sequence_number: 1,
        timestamp: 960,
        ssrc: 1234,
        marker: false,
        payload: Bytes::from(vec![0u8; 160]),
    };
    let sender = ctx.media_sender().expect("PeerConnection made");

    let mut group = c.benchmark_group("rtp_path");
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("incoming_rtp_echo_to_media_sender", |b| {
        b.iter(|| ctx.on_rtp(&stream, packet.clone()))
    });
    group.bench_function("media_sender_send_rtp", |b| {
        b.iter(|| sender.send_rtp(MediaKind::Audio, packet.clone()))
    });
    group.finish();

    let n = 100_000u64;
    let before = allocations();
    for _ in 0..n {
        ctx.on_rtp(&stream, packet.clone());
    }
    let allocs = allocations() - before;
    println!(
        "incoming_rtp_echo_to_media_sender: {allocs} allocations in {n} packets ({:.3} per packet), {} dropped by a full queue",
        allocs as f64 / n as f64,
        sender.dropped()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
