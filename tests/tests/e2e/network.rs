//! A bad SD-WAN link, for real: the agent runs in a network namespace of
//! its own, joined to the broker's host by a veth pair, and the link is
//! degraded with `tc` and cut for 30 seconds in the middle of a drain.
//! Nothing may be lost and nothing doubled.
//!
//! With the `netem` queueing discipline the link gets 20% loss and 300 ms
//! delay each way. Kernels built without `netem` (this project's CI
//! machine's, for one) get a token-bucket filter instead (`tbf`, 1
//! Mbit/s with a deep queue: a crawling link), and the test says so in its
//! output. Needs root (CI runs as root); `MOTCUA_SKIP_ROOT_TESTS=1` skips it.

use std::process::Command;
use std::time::{Duration, Instant};

use motcua_e2e::site::{Site, wait_until};

const DEVICE: &str = "H49.12.3-q07";

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

fn tc(netns: Option<&str>, args: &[&str]) -> bool {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "tc"]);
            c
        }
        None => Command::new("tc"),
    };
    cmd.args(args)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A namespace with a veth pair to the host: host end `10.201.N.1`, agent
/// end `10.201.N.2`. Removed when dropped.
struct Link {
    ns: String,
    host_if: String,
    ns_if: String,
    host_ip: String,
}

impl Link {
    fn create() -> Link {
        let n = std::process::id() % 250 + 1;
        let link = Link {
            ns: format!("motcua-t{n}"),
            host_if: format!("mch{n}"),
            ns_if: format!("mcn{n}"),
            host_ip: format!("10.201.{n}.1"),
        };
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
            &link.ns_if
        ]));
        assert!(ip(&["link", "set", &link.ns_if, "netns", &link.ns]));
        assert!(ip(&["addr", "add", &host_cidr, "dev", &link.host_if]));
        assert!(ip(&["link", "set", &link.host_if, "up"]));
        let in_ns = |args: &[&str]| {
            let mut a = vec!["netns", "exec", &link.ns, "ip"];
            a.extend(args);
            ip(&a)
        };
        assert!(in_ns(&["addr", "add", &agent_ip, "dev", &link.ns_if]));
        assert!(in_ns(&["link", "set", &link.ns_if, "up"]));
        assert!(in_ns(&["link", "set", "lo", "up"]));
        link
    }

    /// Degrades both directions; returns a description of what was applied.
    fn degrade(&self) -> &'static str {
        let netem = ["root", "netem", "loss", "20%", "delay", "300ms"];
        let host = ["qdisc", "add", "dev", &self.host_if];
        let ns = ["qdisc", "add", "dev", &self.ns_if];
        if tc(None, &[&host[..], &netem[..]].concat())
            && tc(Some(&self.ns), &[&ns[..], &netem[..]].concat())
        {
            return "netem: 20% loss and 300 ms delay each way";
        }
        let tbf = [
            "root", "tbf", "rate", "1mbit", "burst", "16kbit", "latency", "2s",
        ];
        assert!(
            tc(None, &[&host[..], &tbf[..]].concat()),
            "tc tbf on the host end"
        );
        assert!(
            tc(Some(&self.ns), &[&ns[..], &tbf[..]].concat()),
            "tc tbf in the namespace"
        );
        "tbf: 1 Mbit/s each way (this kernel has no netem: no loss or delay emulated)"
    }

    /// Takes the link down or up (from the host end).
    fn set(&self, up: bool) {
        assert!(ip(&[
            "link",
            "set",
            &self.host_if,
            if up { "up" } else { "down" }
        ]));
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        ip(&["link", "del", &self.host_if]);
        ip(&["netns", "del", &self.ns]);
    }
}

#[test]
fn a_degraded_link_and_a_30_second_cut_lose_and_double_nothing() {
    if std::env::var("MOTCUA_SKIP_ROOT_TESTS").is_ok_and(|v| v == "1")
        || !rustix::process::geteuid().is_root()
    {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let link = Link::create();
    let mut site = Site::build(true, None, &link.host_ip);
    site.broker.start();
    let shaping = link.degrade();
    eprintln!("link: {shaping}");
    let a = site.counter(DEVICE);
    a.receive(1000);
    let _dc = site.receiver();
    let _agent = a.run_in(&link.ns);
    let start = Instant::now();
    wait_until(
        "the first receipts over the bad link",
        Duration::from_secs(120),
        || a.receipted() > 0,
    );
    link.set(false);
    // Receipts already past the cut may still land for a moment.
    std::thread::sleep(Duration::from_secs(2));
    let at_cut = a.receipted();
    std::thread::sleep(Duration::from_secs(28));
    assert_eq!(
        a.receipted(),
        at_cut,
        "nothing is receipted while the link is cut"
    );
    link.set(true);
    wait_until(
        "the whole backlog receipted",
        Duration::from_secs(600),
        || a.receipted() == 1000,
    );
    eprintln!(
        "drained 1000 records in {:.0} s including the 30 s cut (receipted {at_cut} before it)",
        start.elapsed().as_secs_f64()
    );
    site.assert_chain(DEVICE, 1000);
    assert_eq!(site.totals().records, 1000);
    assert_eq!(site.alert_reasons(), Vec::<String>::new());
}
