//! Real peers for the integration tests: kamailio (registrar/proxy with digest auth) and
//! baresip (far-end softphone), each started on loopback in its own temp dir and killed by PID
//! when the guard drops, also when a test fails.
#![allow(dead_code)]

use bifrons_sip::wav::Wav;
use bifrons_sip::{Account, Ua, UaConfig, UaEvents};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Users kamailio knows, with their passwords.
pub const USERS: &[(&str, &str)] = &[
    ("alice", "alicepw"),
    ("bob", "bobpw"),
    ("carol", "carolpw"),
    ("dave", "davepw"),
];

/// A free loopback port for both UDP and TCP (best effort: the socket is closed before use).
pub fn free_port() -> u16 {
    loop {
        let u = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let p = u.local_addr().expect("addr").port();
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() && p % 2 == 0 && p < 60000 {
            return p;
        }
    }
}

pub fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "bifrons-sip-{tag}-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn rand_suffix() -> u64 {
    use std::time::SystemTime;
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        % 1_000_000_007
}

/// Stops a child started in its own process group (see [`own_group`]): SIGTERM to the group,
/// then SIGKILL to it after 5 s, while the leader is not yet reaped (so its PID, the group's
/// id, cannot have been reused). Signalling the group, not only the PID, reaches the workers
/// kamailio forks, which a SIGKILL of the main process alone would leave running.
fn kill(child: &mut Child) {
    signal_group(child.id(), "-TERM");
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    signal_group(child.id(), "-KILL");
    let _ = child.wait();
}

/// Sends `signal` to the process group led by the child `pid` (only what we started).
fn signal_group(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, "--", &format!("-{pid}")])
        .stderr(Stdio::null())
        .status();
}

/// Makes `command` lead a process group of its own, so [`kill`] can stop all it forks.
fn own_group(command: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    command.process_group(0)
}

/// A kamailio registrar/proxy on 127.0.0.1:`port` (UDP and TCP).
pub struct Kamailio {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        kill(&mut self.child);
        // Keep the logs of a failed test for diagnosis.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Kamailio {
    /// Starts kamailio with digest auth using `algorithm` ("MD5" or "SHA-256").
    pub fn start(algorithm: &str) -> Kamailio {
        let port = free_port();
        let dir = tempdir("kamailio");
        let mut pw = String::new();
        for (u, p) in USERS {
            pw.push_str(&format!(
                "    if ($var(u) == \"{u}\") {{ $var(pw) = \"{p}\"; }}\n"
            ));
        }
        let cfg = format!(
            r#"#!KAMAILIO
debug=2
log_stderror=yes
memdbg=5
memlog=5
children=2
tcp_children=2
auto_aliases=no
listen=udp:127.0.0.1:{port}
listen=tcp:127.0.0.1:{port}
alias="127.0.0.1:{port}"
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "auth.so"
loadmodule "corex.so"
modparam("usrloc", "db_mode", 0)
modparam("registrar", "min_expires", 2)
modparam("registrar", "max_expires", 3600)
modparam("auth", "algorithm", "{algorithm}")
modparam("rr", "append_fromtag", 1)

request_route {{
    xlog("L_INFO", "REQ $rm $ru from $si:$sp cseq $cs\n");
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (has_totag()) {{
        if (loose_route()) {{ t_relay(); exit; }}
        if (is_method("ACK")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
        sl_send_reply("404", "Not here");
        exit;
    }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
    if (is_method("ACK")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
    t_check_trans();
    if (is_method("OPTIONS") && uri==myself && $rU==$null) {{ sl_send_reply("200", "Keepalive"); exit; }}
    if ($fU == "mallory") {{ sl_send_reply("403", "Forbidden"); exit; }}
    if (is_method("INVITE") && $rU == "forward") {{
        append_to_reply("Contact: <sip:bob@127.0.0.1:{port}>\r\n");
        sl_send_reply("302", "Moved Temporarily");
        exit;
    }}
    $var(u) = $au;
    $var(pw) = "";
{pw}
    # Load-test accounts: loadN authenticates with password loadNpw.
    if ($var(pw) == "" && $(var(u){{s.substr,0,4}}) == "load") {{ $var(pw) = $var(u) + "pw"; }}
    if (is_method("REGISTER")) {{
        if (!pv_www_authenticate("$td", "$var(pw)", "0")) {{
            www_challenge("$td", "1");
            exit;
        }}
        consume_credentials();
        if (!save("location")) {{ sl_reply_error(); }}
        exit;
    }}
    if (is_method("INVITE|MESSAGE") && $fd == "127.0.0.1") {{
        if (!pv_proxy_authenticate("$fd", "$var(pw)", "0")) {{
            proxy_challenge("$fd", "1");
            exit;
        }}
        consume_credentials();
    }}
    if (is_method("INVITE")) {{ record_route(); }}
    if (uri==myself) {{
        if (!lookup("location")) {{ sl_send_reply("404", "Not Found"); exit; }}
    }}
    if (!t_relay()) {{ sl_reply_error(); }}
    exit;
}}
"#
        );
        let cfg_path = dir.join("kamailio.cfg");
        std::fs::write(&cfg_path, cfg).expect("write cfg");
        let log = std::fs::File::create(dir.join("kamailio.log")).expect("log");
        let child = own_group(&mut Command::new("kamailio"))
            .args(["-DD", "-E", "-m", "32", "-M", "4", "-Y"])
            .arg(&dir)
            .arg("-f")
            .arg(&cfg_path)
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("kamailio is installed (scripts/deps/sip.apt)");
        let k = Kamailio { child, port, dir };
        k.wait_ready();
        k
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let sock = UdpSocket::bind("127.0.0.1:0").expect("probe");
        sock.set_read_timeout(Some(Duration::from_millis(200))).ok();
        while Instant::now() < deadline {
            let probe = format!(
                "OPTIONS sip:127.0.0.1:{p} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bKprobe{n}\r\nFrom: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1:{p}>\r\nCall-ID: probe{n}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
                p = self.port,
                l = sock.local_addr().expect("addr"),
                n = rand_suffix()
            );
            let _ = sock.send_to(probe.as_bytes(), ("127.0.0.1", self.port));
            let mut buf = [0u8; 2048];
            if let Ok((n, _)) = sock.recv_from(&mut buf) {
                if buf[..n].starts_with(b"SIP/2.0 200") {
                    return;
                }
            }
        }
        panic!("kamailio did not start; log:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("kamailio.log")).unwrap_or_default()
    }

    pub fn registrar(&self) -> String {
        format!("sip:127.0.0.1:{}", self.port)
    }

    pub fn uri(&self, user: &str) -> String {
        format!("sip:{user}@127.0.0.1:{}", self.port)
    }
}

/// A headless baresip registered at kamailio as `user`, playing `tone` and dumping audio.
pub struct Baresip {
    child: Child,
    pub dir: PathBuf,
    pub ctrl_port: u16,
    pub sip_port: u16,
}

impl Drop for Baresip {
    fn drop(&mut self) {
        kill(&mut self.child);
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Baresip {
    /// Starts baresip; `answer` sets auto-answer; `dtmf_info` makes it use INFO for DTMF.
    pub fn start(k: &Kamailio, user: &str, tone_hz: f64, answer: bool) -> Baresip {
        Self::start_mode(k, user, tone_hz, if answer { "auto" } else { "manual" })
    }

    /// Starts baresip with an explicit answer mode: "auto", "manual" or "early" (183 + media).
    pub fn start_mode(k: &Kamailio, user: &str, tone_hz: f64, mode: &str) -> Baresip {
        Self::start_with(k, user, tone_hz, mode, "")
    }

    /// Starts baresip with extra account parameters (e.g. `;dtmfmode=info`).
    pub fn start_with(k: &Kamailio, user: &str, tone_hz: f64, mode: &str, params: &str) -> Baresip {
        let dir = tempdir(&format!("baresip-{user}"));
        let (sip_port, ctrl_port) = (free_port(), free_port());
        Wav::tone(8000, tone_hz, 30.0, 0.3)
            .write(std::fs::File::create(dir.join("tone.wav")).expect("tone"))
            .expect("write tone");
        let pass = USERS
            .iter()
            .find(|(u, _)| *u == user)
            .map(|(_, p)| *p)
            .unwrap_or("x");
        std::fs::write(
            dir.join("accounts"),
            format!("<sip:{user}@127.0.0.1:{}>;auth_pass={pass};regint=600;answermode={mode};audio_codecs=PCMU;mediaenc=;medianat={params}\n", k.port),
        )
        .expect("accounts");
        std::fs::write(
            dir.join("config"),
            format!(
                "poll_method epoll\nnet_interface 127.0.0.1\nsip_listen 127.0.0.1:{sip_port}\nsip_trans_def udp\naudio_player alsa,null\naudio_source aufile,{tone}\naudio_alert alsa,null\naudio_srate 8000\naudio_channels 1\nrtp_ports 40000-49999\nmodule_path /usr/lib/baresip/modules\nmodule g711.so\nmodule aufile.so\nmodule alsa.so\nmodule sndfile.so\nmodule_app account.so\nmodule_app menu.so\nmodule_app ctrl_tcp.so\nctrl_tcp_listen 127.0.0.1:{ctrl_port}\nsnd_path {dir}\n",
                tone = dir.join("tone.wav").display(),
                dir = dir.display()
            ),
        )
        .expect("config");
        let log = std::fs::File::create(dir.join("baresip.log")).expect("log");
        let child = own_group(&mut Command::new("baresip"))
            .arg("-f")
            .arg(&dir)
            .arg("-v")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("baresip is installed (scripts/deps/sip.apt)");
        let b = Baresip {
            child,
            dir,
            ctrl_port,
            sip_port,
        };
        b.wait_for_log("200 OK", Duration::from_secs(20))
            .or_else(|| b.wait_for_log("registered successfully", Duration::from_secs(1)))
            .unwrap_or_else(|| panic!("baresip did not register; log:\n{}", b.log()));
        b
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("baresip.log")).unwrap_or_default()
    }

    /// Waits until `needle` appears in the log; returns the log then.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let l = self.log();
            if l.contains(needle) {
                return Some(l);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    /// Sends a command through ctrl_tcp (netstring-framed JSON) and returns the raw reply.
    pub fn command(&self, command: &str, params: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.ctrl_port)).expect("ctrl_tcp");
        s.set_read_timeout(Some(Duration::from_secs(5))).ok();
        let json = format!("{{\"command\":\"{command}\",\"params\":\"{params}\",\"token\":\"t\"}}");
        let _ = s.write_all(format!("{}:{},", json.len(), json).as_bytes());
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    out.extend_from_slice(&buf[..n]);
                    if String::from_utf8_lossy(&out).contains("\"response\":true") {
                        break;
                    }
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The WAV baresip's sndfile module wrote for the decoded (received) direction.
    pub fn received_wav(&self) -> Option<Wav> {
        let entries = std::fs::read_dir(&self.dir).ok()?;
        let path = entries
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with("-dec.wav"))?;
        Wav::read(std::fs::File::open(path).ok()?).ok()
    }
}

/// Dominant frequency of `samples` (Hz), via an FFT over a Hann-windowed block.
pub fn dominant_frequency(samples: &[i16], rate: u32) -> f64 {
    use rustfft::{num_complex::Complex, FftPlanner};
    let n = samples.len().min(16384).next_power_of_two() / 2;
    let n = n.max(256);
    if samples.len() < n {
        return 0.0;
    }
    let start = (samples.len() - n) / 2;
    let mut buf: Vec<Complex<f64>> = samples[start..start + n]
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let w = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos();
            Complex::new(s as f64 * w, 0.0)
        })
        .collect();
    FftPlanner::new().plan_fft_forward(n).process(&mut buf);
    let (bin, _) = buf[1..n / 2]
        .iter()
        .enumerate()
        .map(|(i, c)| (i + 1, c.norm()))
        .fold((0, 0.0), |a, b| if b.1 > a.1 { b } else { a });
    bin as f64 * rate as f64 / n as f64
}

/// RMS level of samples.
pub fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
}

pub fn read_lines(p: &Path) -> Vec<String> {
    std::fs::File::open(p)
        .map(|f| BufReader::new(f).lines().map_while(Result::ok).collect())
        .unwrap_or_default()
}

/// A user agent registered at `k` as `user` (password from [`USERS`]), with its event stream.
pub async fn registered_ua(k: &Kamailio, user: &str) -> (Ua, UaEvents) {
    let (ua, ev) = Ua::start(UaConfig::default()).await.unwrap();
    let pw = USERS
        .iter()
        .find(|(u, _)| *u == user)
        .map(|(_, p)| *p)
        .unwrap_or("x");
    ua.register(Account {
        registrar: k.registrar(),
        user: user.into(),
        outbound_proxy: None,
        auth_user: None,
        secret: bifrons_sip::DigestSecret::Password(pw.into()),
        domain: None,
        expires: 300,
    })
    .await
    .expect("register");
    (ua, ev)
}
