//! What the gateway process costs, read from Linux `/proc` (proc(5)): CPU time of the
//! process and of each of its threads, its resident memory, and the datagrams the kernel
//! dropped on its UDP sockets and on the others.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

/// CPU times of one process or thread, in clock ticks (`sysconf(_SC_CLK_TCK)`, usually 100 Hz).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// `comm`: the executable or thread name (at most 15 bytes).
    pub comm: String,
    /// User-mode time (field 14), ticks.
    pub utime: u64,
    /// Kernel-mode time (field 15), ticks.
    pub stime: u64,
}

/// Parses `/proc/PID/stat` or `/proc/PID/task/TID/stat`. The name may hold spaces and
/// parentheses, so fields are counted from the last `)`.
///
/// Errors: a line that is not in that shape.
pub fn parse_stat(line: &str) -> Result<Stat, String> {
    let open = line.find('(').ok_or("no '(' in stat")?;
    let close = line.rfind(')').ok_or("no ')' in stat")?;
    let comm = line.get(open + 1..close).ok_or("bad comm")?.to_string();
    // After ")": field 3 (state) is index 0, so field N is index N - 3.
    let rest: Vec<&str> = line[close + 1..].split_whitespace().collect();
    let field = |n: usize| -> Result<u64, String> {
        rest.get(n - 3)
            .ok_or(format!("stat has no field {n}"))?
            .parse()
            .map_err(|e| format!("stat field {n}: {e}"))
    };
    Ok(Stat {
        comm,
        utime: field(14)?,
        stime: field(15)?,
    })
}

/// `VmRSS` of `/proc/PID/status`, in KiB.
pub fn parse_vm_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Busy and total clock ticks of the whole machine, all cores, from the `cpu` line of
/// `/proc/stat` (busy = total - idle - iowait).
///
/// Errors: no `cpu` line, or a field that is not a number.
pub fn parse_machine_ticks(stat: &str) -> Result<(u64, u64), String> {
    let line = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .ok_or("no cpu line in /proc/stat")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse::<u64>().map_err(|e| format!("/proc/stat: {e}")))
        .collect::<Result<_, _>>()?;
    if v.len() < 5 {
        return Err("short cpu line in /proc/stat".into());
    }
    // user nice system idle iowait irq softirq steal (guest times are inside user/nice).
    let total = v.iter().take(8).fold(0u64, |a, b| a.saturating_add(*b));
    Ok((total.saturating_sub(v[3]).saturating_sub(v[4]), total))
}

/// [`parse_machine_ticks`] of this machine now. Errors: as there.
pub fn machine_ticks() -> Result<(u64, u64), String> {
    parse_machine_ticks(&std::fs::read_to_string("/proc/stat").map_err(|e| e.to_string())?)
}

/// The 1-minute load average (`/proc/loadavg`), if readable.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Clock ticks per second of the times in [`Stat`].
pub fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// CPU ticks (user + system) of process `pid`. Errors: the process is gone.
pub fn process_ticks(pid: u32) -> Result<u64, String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
    let st = parse_stat(&s)?;
    Ok(st.utime + st.stime)
}

/// Resident memory of process `pid`, KiB. Errors: the process is gone.
pub fn rss_kib(pid: u32) -> Result<u64, String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    parse_vm_rss_kib(&s).ok_or_else(|| "no VmRSS".into())
}

/// CPU ticks of every thread of `pid`, summed by thread name (tokio's workers all share one).
pub fn thread_ticks(pid: u32) -> BTreeMap<String, u64> {
    let mut by_name = BTreeMap::new();
    let dir = format!("/proc/{pid}/task");
    let Ok(entries) = std::fs::read_dir(Path::new(&dir)) else {
        return by_name;
    };
    for e in entries.flatten() {
        let Ok(s) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        if let Ok(st) = parse_stat(&s) {
            *by_name.entry(st.comm).or_insert(0) += st.utime + st.stime;
        }
    }
    by_name
}

/// Datagrams the kernel dropped on UDP sockets (receive buffer full, RFC-less: Linux's
/// `drops` column of `/proc/net/udp` and `udp6`, cumulative per socket), summed over the
/// sockets whose inode is in `ours` and over the others: `(ours, others)`. Lines that are not
/// in that shape (the header) are skipped.
pub fn parse_udp_drops(table: &str, ours: &HashSet<u64>) -> (u64, u64) {
    let mut drops = (0u64, 0u64);
    for line in table.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
        let (Some(inode), Some(dropped)) = (fields.get(9), fields.get(12)) else {
            continue;
        };
        let (Ok(inode), Ok(dropped)) = (inode.parse::<u64>(), dropped.parse::<u64>()) else {
            continue;
        };
        if ours.contains(&inode) {
            drops.0 += dropped;
        } else {
            drops.1 += dropped;
        }
    }
    drops
}

/// The inodes of the sockets process `pid` has open (`/proc/PID/fd/*` → `socket:[N]`).
pub fn socket_inodes(pid: u32) -> HashSet<u64> {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|target| {
            let target = target.to_str()?;
            target
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

/// [`parse_udp_drops`] of this network namespace now, with `pid`'s sockets as "ours".
pub fn udp_drops(pid: Option<u32>) -> (u64, u64) {
    let ours = pid.map(socket_inodes).unwrap_or_default();
    ["/proc/net/udp", "/proc/net/udp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .map(|table| parse_udp_drops(&table, &ours))
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_drops_are_split_by_socket_owner() {
        let table = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
  1: 0100007F:2710 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1111 2 0000000000000000 7\n\
  2: 0200007F:9C40 0100007F:2710 01 00000000:00000000 00:00000000 00000000     0        0 2222 2 0000000000000000 3\n\
  3: 0200007F:9C41 0100007F:2710 01 00000000:00000000 00:00000000 00000000     0        0 3333 2 0000000000000000 2\n";
        let ours = HashSet::from([1111]);
        assert_eq!(parse_udp_drops(table, &ours), (7, 5));
        assert_eq!(parse_udp_drops("garbage\n", &ours), (0, 0));
    }

    #[test]
    fn own_sockets_are_found() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(!socket_inodes(std::process::id()).is_empty());
        drop(socket);
        let _ = udp_drops(Some(std::process::id()));
    }

    #[test]
    fn stat_with_a_name_holding_spaces_and_parentheses() {
        let line = "4242 (tokio (rt) w) S 1 4242 4242 0 -1 4194560 1234 0 0 0 1500 250 0 0 20 0 9 0 \
                    100 123456789 2048 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0";
        let st = parse_stat(line).unwrap();
        assert_eq!(st.comm, "tokio (rt) w");
        assert_eq!((st.utime, st.stime), (1500, 250));
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_errs_without_panic(line in "\\PC*") {
            let _ = parse_stat(&line);
            let _ = parse_vm_rss_kib(&line);
            let _ = parse_machine_ticks(&line);
            let _ = parse_machine_ticks(&format!("cpu {line}"));
            let _ = parse_udp_drops(&line, &HashSet::new());
        }

        #[test]
        fn any_thread_name_and_times_round_trip(comm in "[ -~]{0,15}", u in 0u64..1 << 40, s in 0u64..1 << 40) {
            let line = format!("7 ({comm}) R 1 7 7 0 -1 0 0 0 0 0 {u} {s} 0 0 20 0 1 0 5 1000 10");
            let st = parse_stat(&line).unwrap();
            proptest::prop_assert_eq!(st, Stat { comm, utime: u, stime: s });
        }
    }

    #[test]
    fn truncated_stat_is_an_error() {
        assert!(parse_stat("1 (x) S 1 2 3").is_err());
        assert!(parse_stat("garbage").is_err());
    }

    #[test]
    fn vm_rss_from_status() {
        let status = "Name:\tbifrons\nVmPeak:\t  900000 kB\nVmRSS:\t   51234 kB\nThreads:\t9\n";
        assert_eq!(parse_vm_rss_kib(status), Some(51234));
        assert_eq!(parse_vm_rss_kib("Name: x\n"), None);
    }

    #[test]
    fn machine_ticks_leave_out_idle_and_iowait() {
        let stat = "cpu  100 5 50 1000 20 3 2 0 0 0\ncpu0 50 2 25 500 10 1 1 0 0 0\nintr 1\n";
        assert_eq!(parse_machine_ticks(stat), Ok((160, 1180)));
        assert!(parse_machine_ticks("intr 1\n").is_err());
    }

    #[test]
    fn own_process_is_readable() {
        let pid = std::process::id();
        assert!(rss_kib(pid).unwrap() > 0);
        process_ticks(pid).unwrap();
        assert!(!thread_ticks(pid).is_empty());
        assert!(clock_ticks() > 0);
        let (busy, total) = machine_ticks().unwrap();
        assert!(busy <= total);
    }
}
