//! Load figures against a real kamailio on loopback: registrations held at once, calls set up
//! per second, and CPU per active RTP call leg. Run with `cargo bench -p bifrons-sip`.
//! (A plain `harness = false` binary: these are end-to-end figures, not micro-benchmarks.)

#[path = "../tests/common/mod.rs"]
mod common;

use bifrons_sip::media::{play_ulaw, record_ulaw};
use bifrons_sip::wav::Wav;
use bifrons_sip::{Account, CallEvent, Ua, UaConfig, UaEvent};
use common::Kamailio;
use std::time::{Duration, Instant};

fn cpu_seconds() -> f64 {
    // utime + stime of this process, in clock ticks (USER_HZ = 100 on Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

fn account(k: &Kamailio, user: &str) -> Account {
    Account {
        registrar: k.registrar(),
        user: user.into(),
        outbound_proxy: None,
        auth_user: None,
        secret: bifrons_sip::DigestSecret::Password(format!("{user}pw")),
        domain: None,
        expires: 600,
    }
}

async fn registrations(k: &Kamailio, n: usize) {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..n {
        let acct = account(k, &format!("load{i}"));
        tasks.push(tokio::spawn(async move {
            let (ua, ev) = Ua::start(UaConfig::default()).await.ok()?;
            ua.register(acct).await.ok()?;
            Some((ua, ev))
        }));
    }
    let mut held = Vec::new();
    for t in tasks {
        if let Ok(Some(x)) = t.await {
            held.push(x);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!("registrations: {}/{} held concurrently, all done in {:.2} s ({:.0} REGISTER exchanges/s incl. digest challenge)", held.len(), n, secs, held.len() as f64 / secs);
}

async fn calls_per_second(k: &Kamailio, total: usize, concurrency: usize) {
    let (callee, mut ev) = Ua::start(UaConfig::default()).await.expect("ua");
    callee
        .register(account(k, "loadcallee"))
        .await
        .expect("register callee");
    tokio::spawn(async move {
        while let Some(e) = ev.next().await {
            if let UaEvent::IncomingCall(mut c) = e {
                tokio::spawn(async move {
                    let _ = c.answer().await;
                    while c.next_event().await.is_some() {}
                });
            }
        }
    });
    let (caller, _cev) = Ua::start(UaConfig::default()).await.expect("ua");
    caller
        .register(account(k, "loadcaller"))
        .await
        .expect("register caller");
    let caller = std::sync::Arc::new(caller);
    let uri = k.uri("loadcallee");
    let start = Instant::now();
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = Vec::new();
    for _ in 0..total {
        let (caller, uri, sem) = (caller.clone(), uri.clone(), sem.clone());
        tasks.push(tokio::spawn(async move {
            let _p = sem.acquire().await.ok()?;
            let mut call = caller.call(&uri, None).await.ok()?;
            loop {
                match tokio::time::timeout(Duration::from_secs(20), call.next_event())
                    .await
                    .ok()??
                {
                    CallEvent::Answered => break,
                    CallEvent::Failed { .. } => return None,
                    _ => {}
                }
            }
            call.hangup().await.ok()?;
            Some(())
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if let Ok(Some(())) = t.await {
            ok += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!("calls: {ok}/{total} set up and torn down (INVITE/407/INVITE/200/ACK + BYE) in {secs:.2} s: {:.1} calls/s at concurrency {concurrency}", ok as f64 / secs);
}

async fn cpu_per_leg(k: &Kamailio, calls: usize, secs: u64) {
    let (callee, mut ev) = Ua::start(UaConfig::default()).await.expect("ua");
    callee
        .register(account(k, "loadmedia"))
        .await
        .expect("register");
    let tone = Wav::tone(8000, 440.0, 1.0, 0.3).samples;
    let dur = Duration::from_secs(secs + 3);
    let t2 = tone.clone();
    tokio::spawn(async move {
        while let Some(e) = ev.next().await {
            if let UaEvent::IncomingCall(c) = e {
                let tone = t2.clone();
                tokio::spawn(async move {
                    let _ = c.answer().await;
                    let rtp = c.rtp().cloned();
                    if let Some(rtp) = rtp {
                        let r2 = rtp.clone();
                        let rec = tokio::spawn(async move { record_ulaw(&r2, dur).await });
                        let _ = play_ulaw(&rtp, &tone, dur).await;
                        let _ = rec.await;
                    }
                    drop(c);
                });
            }
        }
    });
    let (caller, _cev) = Ua::start(UaConfig::default()).await.expect("ua");
    caller
        .register(account(k, "loadmediacaller"))
        .await
        .expect("register");
    let mut held = Vec::new();
    for _ in 0..calls {
        let mut call = caller.call(&k.uri("loadmedia"), None).await.expect("call");
        while let Some(e) = call.next_event().await {
            if e == CallEvent::Answered {
                break;
            }
        }
        let rtp = call.rtp().cloned().expect("media");
        let tone = tone.clone();
        let r2 = rtp.clone();
        tokio::spawn(async move { record_ulaw(&r2, dur).await });
        tokio::spawn(async move { play_ulaw(&rtp, &tone, dur).await });
        held.push(call);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (c0, w0) = (cpu_seconds(), Instant::now());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let (cpu, wall) = (cpu_seconds() - c0, w0.elapsed().as_secs_f64());
    let legs = (2 * calls) as f64;
    let received: u64 = held
        .iter()
        .filter_map(|c| c.rtp())
        .map(|r| {
            r.stats()
                .received
                .load(std::sync::atomic::Ordering::Relaxed)
        })
        .sum();
    println!(
        "rtp: {calls} calls = {legs} legs (PCMU 20 ms, both directions, G.711 encode+decode included): {:.2}% of one core per leg ({:.1}% total); caller legs received {received} packets",
        100.0 * cpu / wall / legs,
        100.0 * cpu / wall
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` / test harness probing
    }
    let k = Kamailio::start("MD5");
    registrations(&k, 500).await;
    calls_per_second(&k, 200, 10).await;
    cpu_per_leg(&k, 20, 10).await;
}
