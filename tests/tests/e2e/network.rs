//! A bad SD-WAN link, for real: the agent runs in a network namespace of
//! its own, the link to the broker's host loses 20% of packets and delays
//! each by 300 ms each way, and it is cut for 30 seconds in the middle of
//! a drain. Nothing may be lost and nothing doubled.
//!
//! With the kernel's `netem` queueing discipline the link is a veth pair
//! shaped by `tc netem`. Kernels built without `netem` (this project's CI
//! machine's, for one) get the same loss, delay and cut from
//! [`motcua_e2e::impair`]: two TUN devices joined by the test process,
//! which drops and delays real IP packets. Either way both TCP stacks see
//! real loss. The test prints which was used. Needs root (CI runs as
//! root); `MOTCUA_SKIP_ROOT_TESTS=1` skips it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use motcua_e2e::impair::{Impaired, Impairment};
use motcua_e2e::site::{Proc, Site};

const DEVICE: &str = "H49.12.3-q07";
const RECORDS: u64 = 300;
const LOSS: f64 = 0.20;
const DELAY: Duration = Duration::from_millis(300);

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A namespace with a veth pair to the host shaped by `tc netem`: host end
/// `10.201.N.1`, agent end `10.201.N.2`. Removed when dropped.
struct Netem {
    ns: String,
    host_if: String,
    host_ip: String,
}

impl Netem {
    /// `None` when this kernel has no `netem`.
    fn create() -> Option<Netem> {
        let n = std::process::id() % 250 + 1;
        let link = Netem {
            ns: format!("motcua-t{n}"),
            host_if: format!("mch{n}"),
            host_ip: format!("10.201.{n}.1"),
        };
        let ns_if = format!("mcn{n}");
        let agent_ip = format!("10.201.{n}.2/30");
        let host_cidr = format!("{}/30", link.host_ip);
        assert!(ip(&["netns", "add", &link.ns]), "ip netns add (root?)");
        assert!(ip(&[
            "link",
            "add",
            &link.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &ns_if
        ]));
        assert!(ip(&["link", "set", &ns_if, "netns", &link.ns]));
        assert!(ip(&["addr", "add", &host_cidr, "dev", &link.host_if]));
        assert!(ip(&["link", "set", &link.host_if, "up"]));
        let in_ns = |args: &[&str]| {
            let mut a = vec!["netns", "exec", &link.ns];
            a.extend(args);
            ip(&a)
        };
        assert!(in_ns(&["ip", "addr", "add", &agent_ip, "dev", &ns_if]));
        assert!(in_ns(&["ip", "link", "set", &ns_if, "up"]));
        assert!(in_ns(&["ip", "link", "set", "lo", "up"]));
        let loss = format!("{}%", LOSS * 100.0);
        let delay = format!("{}ms", DELAY.as_millis());
        let netem = ["root", "netem", "loss", &loss, "delay", &delay];
        let host = [&["tc", "qdisc", "add", "dev", &link.host_if][..], &netem].concat();
        let inner = [&["tc", "qdisc", "add", "dev", &ns_if][..], &netem].concat();
        let shaped = Command::new(host[0])
            .args(&host[1..])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
            && in_ns(&inner);
        shaped.then_some(link)
    }

    /// Takes the link down or up (from the host end).
    fn set_cut(&self, cut: bool) {
        assert!(ip(&[
            "link",
            "set",
            &self.host_if,
            if cut { "down" } else { "up" }
        ]));
    }
}

impl Drop for Netem {
    fn drop(&mut self) {
        ip(&["link", "del", &self.host_if]);
        ip(&["netns", "del", &self.ns]);
    }
}

enum Link {
    Netem(Netem),
    User(Impaired),
}

impl Link {
    fn ns(&self) -> &str {
        match self {
            Link::Netem(l) => &l.ns,
            Link::User(l) => &l.ns,
        }
    }

    fn host_ip(&self) -> &str {
        match self {
            Link::Netem(l) => &l.host_ip,
            Link::User(l) => &l.host_ip,
        }
    }

    fn set_cut(&self, cut: bool) {
        match self {
            Link::Netem(l) => l.set_cut(cut),
            Link::User(l) => l.set_cut(cut),
        }
    }
}

/// `site::wait_until`, showing the agent's log when it times out.
fn wait_until_or(what: &str, within: Duration, done: impl Fn() -> bool, agent: &Proc) {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > within {
            panic!(
                "timed out after {within:?} waiting for {what}; agent log:\n{}",
                agent.log()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_lossy_slow_link_and_a_30_second_cut_lose_and_double_nothing() {
    if std::env::var("MOTCUA_SKIP_ROOT_TESTS").is_ok_and(|v| v == "1")
        || !rustix::process::geteuid().is_root()
    {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let link = match Netem::create() {
        Some(l) => {
            eprintln!("link: veth with tc netem, 20% loss and 300 ms delay each way");
            Link::Netem(l)
        }
        None => {
            eprintln!(
                "link: this kernel has no netem; TUN devices joined in user space, \
                 20% loss and 300 ms delay each way"
            );
            Link::User(Impaired::create(Impairment {
                loss: LOSS,
                delay: DELAY,
            }))
        }
    };
    let mut site = Site::build(true, None, link.host_ip());
    site.broker.start();
    let a = site.counter(DEVICE);
    a.receive(RECORDS);
    // A receipt takes seconds on this link: the product's default wait
    // before resending, not the site's quick one.
    a.set_dc("resend_after", "\"30s\"");
    let _dc = site.receiver();
    let agent = a.run_in(link.ns());
    let start = Instant::now();
    wait_until_or(
        "the first receipts over the bad link",
        Duration::from_secs(180),
        || a.receipted() > 0,
        &agent,
    );
    link.set_cut(true);
    // Receipts already past the cut may still land for a moment.
    std::thread::sleep(Duration::from_secs(2));
    let at_cut = a.receipted();
    std::thread::sleep(Duration::from_secs(28));
    assert_eq!(
        a.receipted(),
        at_cut,
        "nothing is receipted while the link is cut"
    );
    link.set_cut(false);
    wait_until_or(
        "the whole backlog receipted",
        Duration::from_secs(600),
        || a.receipted() == RECORDS,
        &agent,
    );
    eprintln!(
        "drained {RECORDS} records in {:.0} s including the 30 s cut (receipted {at_cut} before it)",
        start.elapsed().as_secs_f64()
    );
    if let Link::User(l) = &link {
        let c = l.counts();
        eprintln!(
            "packets: {} seen, {} lost at random, {} dropped during the cut",
            c.seen, c.lost, c.cut
        );
        assert!(c.lost > 0 && c.cut > 0, "the link did impair: {c:?}");
    }
    site.assert_chain(DEVICE, RECORDS);
    assert_eq!(site.totals().records, RECORDS);
    assert_eq!(site.alert_reasons(), Vec::<String>::new());
}
