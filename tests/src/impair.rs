//! A lossy, slow link between a network namespace and the host, emulated
//! in user space, for kernels built without the `netem` queueing
//! discipline.
//!
//! Two TUN devices, one in the host's namespace and one in the test's
//! namespace, are joined by this process: every IP packet one side sends
//! is read here, dropped with the configured probability, and otherwise
//! written to the other side after the configured delay (a constant delay
//! keeps packets in order, as netem's does). Both kernels' TCP stacks see
//! real loss and real delay: retransmissions, backoff and stalls are
//! theirs, not simulated. A cut drops every packet both ways until it is
//! lifted.
//!
//! Needs root (TUN devices, `ip netns`). The devices vanish with the file
//! descriptors when the [`Impaired`] link is dropped.

use std::collections::VecDeque;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the link does to each packet, each way.
#[derive(Debug, Clone, Copy)]
pub struct Impairment {
    /// Probability that a packet is dropped, 0.0 to 1.0.
    pub loss: f64,
    /// Time a delivered packet spends on the link.
    pub delay: Duration,
}

/// Packets seen by the link since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Packets read from either side.
    pub seen: u64,
    /// Packets dropped at random.
    pub lost: u64,
    /// Packets dropped because the link was cut.
    pub cut: u64,
}

struct Shared {
    stop: AtomicBool,
    cut: AtomicBool,
    seen: AtomicU64,
    lost: AtomicU64,
    dropped_in_cut: AtomicU64,
}

/// A namespace joined to the host by an impaired point-to-point link:
/// host end [`Impaired::host_ip`], namespace end `.2` of the same /30.
/// Removed when dropped.
pub struct Impaired {
    /// The namespace's name (for `ip netns exec`).
    pub ns: String,
    /// The host's address on the link (bind the broker here).
    pub host_ip: String,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

/// Opens a new TUN device called `name` (IP packets, no extra header).
fn open_tun(name: &str) -> tun::Device {
    let mut config = tun::Configuration::default();
    // Layer 3, and (always, on Linux) no packet-information header.
    config.tun_name(name).layer(tun::Layer::L3);
    tun::create(&config).unwrap_or_else(|e| panic!("TUN device {name} (root?): {e}"))
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("run ip");
    assert!(status.success(), "ip {}", args.join(" "));
}

/// A small xorshift generator: the loss pattern needs no cryptography,
/// and a seed from the clock makes each run differ.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Impaired {
    /// Creates the namespace and the link, and starts carrying packets
    /// with `imp` applied each way.
    pub fn create(imp: Impairment) -> Impaired {
        let n = std::process::id() % 250 + 1;
        let ns = format!("motcua-i{n}");
        let host_if = format!("mci{n}");
        let ns_if = format!("mcj{n}");
        let host_ip = format!("10.202.{n}.1");
        let ns_ip = format!("10.202.{n}.2");
        let _ = Command::new("ip")
            .args(["netns", "del", &ns])
            .stderr(std::process::Stdio::null())
            .status();
        ip(&["netns", "add", &ns]);
        let host = open_tun(&host_if);
        let inner = open_tun(&ns_if);
        ip(&["link", "set", &ns_if, "netns", &ns]);
        ip(&["addr", "add", &host_ip, "peer", &ns_ip, "dev", &host_if]);
        ip(&["link", "set", &host_if, "up"]);
        let in_ns = |args: &[&str]| {
            let mut a = vec!["netns", "exec", &ns, "ip"];
            a.extend(args);
            ip(&a);
        };
        in_ns(&["addr", "add", &ns_ip, "peer", &host_ip, "dev", &ns_if]);
        in_ns(&["link", "set", &ns_if, "up"]);
        in_ns(&["link", "set", "lo", "up"]);
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            cut: AtomicBool::new(false),
            seen: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            dropped_in_cut: AtomicU64::new(0),
        });
        let host = Arc::new(host);
        let inner = Arc::new(inner);
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64);
        let mut threads = Vec::new();
        for (i, (from, to)) in [(host.clone(), inner.clone()), (inner, host)]
            .into_iter()
            .enumerate()
        {
            threads.extend(direction(
                from,
                to,
                imp,
                shared.clone(),
                seed.rotate_left(17 * i as u32) | 1,
            ));
        }
        Impaired {
            ns,
            host_ip,
            shared,
            threads,
        }
    }

    /// Cuts the link (every packet dropped, both ways) or restores it.
    pub fn set_cut(&self, cut: bool) {
        self.shared.cut.store(cut, Ordering::SeqCst);
    }

    /// What the link has done so far.
    pub fn counts(&self) -> Counts {
        Counts {
            seen: self.shared.seen.load(Ordering::Relaxed),
            lost: self.shared.lost.load(Ordering::Relaxed),
            cut: self.shared.dropped_in_cut.load(Ordering::Relaxed),
        }
    }
}

/// Packets on their way, each with the time it is due, and a signal
/// for the writer.
type DelayLine = (Mutex<VecDeque<(Instant, Vec<u8>)>>, Condvar);

/// The two threads of one direction: a reader that drops or timestamps
/// each packet, and a writer that delivers them when their delay is over.
fn direction(
    from: Arc<tun::Device>,
    to: Arc<tun::Device>,
    imp: Impairment,
    shared: Arc<Shared>,
    seed: u64,
) -> [JoinHandle<()>; 2] {
    let line: Arc<DelayLine> = Arc::default();
    let reader = {
        let line = line.clone();
        let shared = shared.clone();
        std::thread::spawn(move || {
            let mut rng = Rng(seed);
            let mut buf = vec![0u8; 65_536];
            while !shared.stop.load(Ordering::Relaxed) {
                let n = match from.recv_timeout(&mut buf, Duration::from_millis(100)) {
                    Ok(n) => n,
                    Err(_) => continue,
                };
                shared.seen.fetch_add(1, Ordering::Relaxed);
                if shared.cut.load(Ordering::SeqCst) {
                    shared.dropped_in_cut.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if rng.unit() < imp.loss {
                    shared.lost.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let (queue, ready) = &*line;
                queue
                    .lock()
                    .expect("delay line")
                    .push_back((Instant::now() + imp.delay, buf[..n].to_vec()));
                ready.notify_one();
            }
            line.1.notify_all();
        })
    };
    let writer = std::thread::spawn(move || {
        let (queue, ready) = &*line;
        let mut q = queue.lock().expect("delay line");
        loop {
            if shared.stop.load(Ordering::Relaxed) {
                return;
            }
            let Some(&(due, _)) = q.front() else {
                q = ready
                    .wait_timeout(q, Duration::from_millis(100))
                    .expect("delay line")
                    .0;
                continue;
            };
            let now = Instant::now();
            if due > now {
                q = ready.wait_timeout(q, due - now).expect("delay line").0;
                continue;
            }
            let (_, packet) = q.pop_front().expect("front exists");
            drop(q);
            // A packet the kernel refuses (the device going down) is lost
            // like any other.
            let _ = to.send(&packet);
            q = queue.lock().expect("delay line");
        }
    });
    [reader, writer]
}

impl Drop for Impaired {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        // Closing the descriptors removed both devices.
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}
