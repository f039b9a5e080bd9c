//! The figures of a run, summed over calls and printed as a table, plus one Markdown row for
//! the README.

use crate::metrics::{percentiles, LegStats};
use crate::sip::CallResult;

/// Everything a SIP run measured.
pub struct Summary {
    /// Calls asked for.
    pub calls: usize,
    /// Calls that were up through the window and hung up cleanly.
    pub up: usize,
    /// Measuring window, s.
    pub window_s: f64,
    /// Time to set every call up, s.
    pub ramp_s: f64,
    /// Gateway CPU over the window, % of one core.
    pub gateway_cpu_pct: Option<f64>,
    /// The load client's own CPU over the window, % of one core (it shares the machine).
    pub loadgen_cpu_pct: f64,
    /// The whole machine's busy time over the window, % of one core (all processes).
    pub machine_cpu_pct: f64,
    /// 1-minute load average at the end of the window.
    pub load_average: Option<f64>,
    /// Gateway RSS before the first call, KiB.
    pub idle_rss_kib: Option<u64>,
    /// Gateway RSS at the end of the window, KiB.
    pub loaded_rss_kib: Option<u64>,
    /// Gateway CPU by thread name over the window, % of one core.
    pub threads: Vec<(String, f64)>,
    /// Per-call results.
    pub results: Vec<CallResult>,
    /// Calls that failed, with why.
    pub failures: Vec<String>,
}

/// One direction summed over calls.
#[derive(Default)]
struct Leg {
    expected: u64,
    received: u64,
    lost: u64,
    late: u64,
    silent_calls: usize,
    delays: Vec<f64>,
    missed: u64,
    sent: u64,
    slips: u64,
}

impl Leg {
    fn add(&mut self, s: &LegStats, expected: u64, sent: u64, slips: u64) {
        self.expected += expected;
        self.received += s.received;
        self.lost += s.lost();
        self.late += s.late;
        self.silent_calls += usize::from(s.received == 0);
        self.delays.extend_from_slice(&s.delays_ms);
        self.missed += s.pulses_missed;
        self.sent += sent;
        self.slips += slips;
    }

    /// Frames that never arrived: the shortfall against 50 per second per call, or the
    /// sequence gaps when more. The gateway renumbers what it sends, so a frame it dropped
    /// before sending (a full input queue) shows as a shortfall, not as a gap.
    fn missing(&self) -> u64 {
        self.expected.saturating_sub(self.received).max(self.lost)
    }

    fn delay(&self) -> String {
        match percentiles(&self.delays) {
            Some((m, p95, max)) => format!("{m:.1} / {p95:.1} / {max:.1}"),
            None => "-".into(),
        }
    }
}

impl Summary {
    fn legs(&self) -> (Leg, Leg) {
        let expected = (self.window_s * 50.0).round() as u64;
        let (mut up, mut down) = (Leg::default(), Leg::default());
        for r in &self.results {
            up.add(
                &r.sip.rx,
                expected,
                r.browser.peer.sent,
                r.browser.peer.slips,
            );
            down.add(&r.browser.rx, expected, r.sip.sent, r.sip.slips);
        }
        (up, down)
    }

    /// Every call was up, and each leg of each call received packets in the window.
    pub fn all_legs_carried(&self) -> bool {
        self.up == self.calls
            && self
                .results
                .iter()
                .all(|r| r.sip.rx.received > 0 && r.browser.rx.received > 0)
    }

    /// Prints the table and the README row to stdout.
    pub fn print(&self) {
        let (up, down) = self.legs();
        let per_call = |v: f64| v / self.up.max(1) as f64;
        println!(
            "SIP benchmark: {} calls asked, {} up and measured",
            self.calls, self.up
        );
        println!("  ramp-up            {:.1} s", self.ramp_s);
        println!("  window             {:.1} s", self.window_s);
        if let Some(c) = self.gateway_cpu_pct {
            println!(
                "  gateway CPU        {c:.1} % of a core, {:.2} % per call",
                per_call(c)
            );
        }
        if let (Some(i), Some(l)) = (self.idle_rss_kib, self.loaded_rss_kib) {
            println!(
                "  gateway RSS        {:.1} MiB idle, {:.1} MiB loaded, {:.0} KiB per call",
                i as f64 / 1024.0,
                l as f64 / 1024.0,
                per_call(l.saturating_sub(i) as f64)
            );
        }
        println!(
            "  load client CPU    {:.1} % of a core",
            self.loadgen_cpu_pct
        );
        let others =
            self.machine_cpu_pct - self.loadgen_cpu_pct - self.gateway_cpu_pct.unwrap_or(0.0);
        println!(
            "  machine            {:.1} % of a core busy, {:.1} % of it other processes; load average {}",
            self.machine_cpu_pct,
            others.max(0.0),
            self.load_average.map_or("-".into(), |l| format!("{l:.2}"))
        );
        for (name, leg) in [("browser→SIP", &up), ("SIP→browser", &down)] {
            println!("  {name}:");
            println!(
                "    received         {} of {} expected ({} calls received nothing)",
                leg.received, leg.expected, leg.silent_calls
            );
            println!(
                "    missing          {} ({} of them sequence gaps)",
                leg.missing(),
                leg.lost
            );
            println!("    late (> 40 ms)   {}", leg.late);
            println!(
                "    delay ms         {} (median / p95 / max of {} pulses; {} missed)",
                leg.delay(),
                leg.delays.len(),
                leg.missed
            );
            println!(
                "    sender           {} frames sent, {} ticks more than 20 ms late",
                leg.sent, leg.slips
            );
        }
        let mut threads: Vec<_> = self.threads.iter().filter(|t| t.1 >= 0.5).collect();
        threads.sort_by(|a, b| b.1.total_cmp(&a.1));
        if !threads.is_empty() {
            let list: Vec<String> = threads
                .iter()
                .map(|(n, c)| format!("{n} {c:.1} %"))
                .collect();
            println!("  gateway threads    {}", list.join(", "));
        }
        for f in self.failures.iter().take(10) {
            println!("  failed: {f}");
        }
        if self.failures.len() > 10 {
            println!("  ... {} more failures", self.failures.len() - 10);
        }
        let cpu = self
            .gateway_cpu_pct
            .map_or("-".into(), |c| format!("{:.2} %", per_call(c)));
        let mem = match (self.idle_rss_kib, self.loaded_rss_kib) {
            (Some(i), Some(l)) => format!("{:.0} KiB", per_call(l.saturating_sub(i) as f64)),
            _ => "-".into(),
        };
        println!();
        println!("| calls up | gateway CPU / call | RSS / call | browser→SIP missing / late frames | SIP→browser missing / late frames | delay browser→SIP ms (median / p95) | delay SIP→browser ms (median / p95) |");
        let leg = |l: &Leg| format!("{} / {} of {}", l.missing(), l.late, l.expected);
        let med95 = |l: &Leg| match percentiles(&l.delays) {
            Some((m, p, _)) => format!("{m:.1} / {p:.1}"),
            None => "-".into(),
        };
        println!(
            "| {} of {} | {cpu} | {mem} | {} | {} | {} | {} |",
            self.up,
            self.calls,
            leg(&up),
            leg(&down),
            med95(&up),
            med95(&down),
        );
    }
}
