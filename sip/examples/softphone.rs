//! A command-line softphone for diagnosing a trunk: registers, places or answers one call,
//! plays a WAV into it, records what it hears, hangs up after the duration and exits non-zero
//! on failure (auth failure, no answer, no media).
//!
//! cargo run -p bifrons-sip --example softphone -- --registrar sip:HOST:PORT --user NAME \
//!     --password PW [--call URI | --answer] --play FILE.wav --record FILE.wav --duration SECONDS

use bifrons_sip::media::{play_ulaw, record_ulaw};
use bifrons_sip::wav::Wav;
use bifrons_sip::{Account, CallEvent, Ua, UaConfig, UaEvent};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Default)]
struct Args {
    registrar: String,
    user: String,
    password: String,
    call: Option<String>,
    answer: bool,
    play: Option<String>,
    record: Option<String>,
    duration: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        duration: 10,
        ..Default::default()
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut val = || it.next().ok_or(format!("{k} needs a value"));
        match k.as_str() {
            "--registrar" => a.registrar = val()?,
            "--user" => a.user = val()?,
            "--password" => a.password = val()?,
            "--call" => a.call = Some(val()?),
            "--answer" => a.answer = true,
            "--play" => a.play = Some(val()?),
            "--record" => a.record = Some(val()?),
            "--duration" => {
                a.duration = val()?
                    .parse()
                    .map_err(|_| "--duration takes seconds".to_string())?
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.registrar.is_empty() || a.user.is_empty() {
        return Err("--registrar and --user are required".into());
    }
    if a.call.is_some() == a.answer {
        return Err("give exactly one of --call URI or --answer".into());
    }
    Ok(a)
}

/// The local address the OS would use to reach the registrar (for Via, Contact and SDP).
fn local_ip_towards(registrar: &str) -> IpAddr {
    let hostport = registrar
        .trim_start_matches("sip:")
        .split(';')
        .next()
        .unwrap_or("");
    let target = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:5060")
    };
    UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| {
            s.connect(&target)?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

#[tokio::main]
async fn main() -> ExitCode {
    // SIP traces on demand: RUST_LOG=bifrons_sip=debug.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("softphone: {e}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("softphone: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let ip = local_ip_towards(&args.registrar);
    let cfg = UaConfig {
        bind: SocketAddr::new(ip, 0),
        rtp_ip: ip,
        ..UaConfig::default()
    };
    let (ua, mut events) = Ua::start(cfg).await.map_err(|e| e.to_string())?;
    println!("sip: listening on {}", ua.local_addr());
    let account = Account {
        registrar: args.registrar.clone(),
        user: args.user.clone(),
        outbound_proxy: None,
        auth_user: None,
        secret: bifrons_sip::DigestSecret::Password(args.password.clone()),
        domain: None,
        expires: 300,
    };
    let expires = ua
        .register(account)
        .await
        .map_err(|e| format!("registration: {e}"))?;
    println!("sip: registered for {expires} s");

    let mut call = match &args.call {
        Some(uri) => {
            let mut call = ua.call(uri, None).await.map_err(|e| e.to_string())?;
            println!("sip: calling {uri}");
            loop {
                let ev = tokio::time::timeout(Duration::from_secs(60), call.next_event())
                    .await
                    .map_err(|_| "no answer within 60 s".to_string())?;
                match ev {
                    Some(CallEvent::Answered) => {
                        println!("sip: answered");
                        break call;
                    }
                    Some(CallEvent::Failed { code, reason }) => {
                        return Err(format!("call failed: {code} {reason}"))
                    }
                    Some(other) => println!("sip: {other:?}"),
                    None => return Err("call vanished".into()),
                }
            }
        }
        None => {
            println!("sip: waiting for a call");
            let call = loop {
                match events.next().await {
                    Some(UaEvent::IncomingCall(c)) => break c,
                    Some(other) => println!("sip: {other:?}"),
                    None => return Err("user agent stopped".into()),
                }
            };
            println!("sip: incoming call from {}", call.remote());
            call.answer().await.map_err(|e| format!("answer: {e}"))?;
            println!("sip: answered");
            call
        }
    };

    let rtp = call.rtp().cloned().ok_or("no media endpoint")?;
    let samples = match &args.play {
        Some(p) => {
            Wav::read(std::fs::File::open(p).map_err(|e| format!("{p}: {e}"))?)
                .map_err(|e| format!("{p}: {e}"))?
                .to_8k()
                .samples
        }
        None => vec![0; 160],
    };
    let duration = Duration::from_secs(args.duration);
    let player = {
        let rtp = rtp.clone();
        tokio::spawn(async move { play_ulaw(&rtp, &samples, duration).await })
    };
    let recorder = {
        let rtp = rtp.clone();
        tokio::spawn(async move { record_ulaw(&rtp, duration).await })
    };
    // Print call events while media runs; a remote BYE ends the call early.
    let mut remote_ended = false;
    let sleeper = tokio::time::sleep(duration);
    tokio::pin!(sleeper);
    loop {
        tokio::select! {
            _ = &mut sleeper => break,
            ev = call.next_event() => match ev {
                Some(CallEvent::Ended(r)) => { println!("sip: ended ({r:?})"); remote_ended = true; break; }
                Some(e) => println!("sip: {e:?}"),
                None => { remote_ended = true; break; }
            }
        }
    }
    player.abort();
    let rec = recorder.await.map_err(|e| e.to_string())?;
    if !remote_ended {
        call.hangup().await.map_err(|e| format!("hangup: {e}"))?;
        println!("sip: hung up");
    }
    println!(
        "rtp: sent {} packets, received {} audio packets, dtmf {:?}",
        rtp.stats().sent.load(std::sync::atomic::Ordering::Relaxed),
        rec.packets,
        rec.dtmf
    );
    if let Some(path) = &args.record {
        Wav {
            rate: 8000,
            samples: rec.samples.clone(),
        }
        .write(std::fs::File::create(path).map_err(|e| format!("{path}: {e}"))?)
        .map_err(|e| e.to_string())?;
        println!(
            "rtp: recorded {:.1} s to {path}",
            rec.samples.len() as f64 / 8000.0
        );
    }
    let _ = ua.unregister().await;
    if rec.packets == 0 {
        return Err("no media received".into());
    }
    Ok(())
}
