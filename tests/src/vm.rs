//! A counter box in a virtual machine, for the box lab (`scripts/box`,
//! `tests/tests/e2e/boxlab.rs`): the Debian image `scripts/box image`
//! builds, booted by qemu with systemd as PID 1, driven over ssh as a
//! technician drives a box. Each box writes to its own copy-on-write layer
//! over the image. Killing qemu is the lab's power cut: whatever the guest
//! held in its own memory (its page cache, writes not yet issued to the
//! disk) is gone, as at a power cut; what it had issued to the virtual
//! disk survives, so a disk that loses its own volatile write cache is not
//! modelled.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Run;
use crate::site::free_port;

/// The image `scripts/box image` made: `MOTCUA_BOX_IMAGE`.
pub fn image_dir() -> PathBuf {
    PathBuf::from(
        std::env::var_os("MOTCUA_BOX_IMAGE")
            .expect("MOTCUA_BOX_IMAGE: run the lab with scripts/box test"),
    )
}

/// The guest's Debian architecture: `MOTCUA_BOX_ARCH` (amd64 or arm64).
pub fn arch() -> String {
    std::env::var("MOTCUA_BOX_ARCH").unwrap_or_else(|_| "amd64".into())
}

/// The host as the guest sees it (qemu's user-mode network).
pub const HOST: &str = "10.0.2.2";

/// A box: its disk layer, and qemu while it runs.
pub struct BoxVm {
    dir: tempfile::TempDir,
    image: PathBuf,
    qemu: Option<Child>,
    /// The host's loopback port forwarded to the guest's sshd.
    pub ssh_port: u16,
    boots: u32,
    /// How many days ahead of the host the box's clock (its RTC) starts
    /// at the next boot: a counter hands out 999 dossier codes a day, and
    /// a long power-cut run receives more than that.
    pub days_ahead: u32,
    /// When set, the RTC starts at this time (qemu's `-rtc base=`, e.g.
    /// `2000-01-01T00:00:00`) at the next boot instead: a box without a
    /// battery-backed clock after a power cut.
    pub rtc_base: Option<String>,
}

impl BoxVm {
    /// A new box on a fresh layer over the image; not started.
    pub fn create() -> BoxVm {
        let image = image_dir();
        let dir = tempfile::tempdir().expect("tempdir");
        let disk = dir.path().join("disk.qcow2");
        let out = Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
            .arg(image.join("base.img"))
            .arg(&disk)
            .output()
            .expect("qemu-img runs");
        assert!(
            out.status.success(),
            "qemu-img: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        BoxVm {
            dir,
            image,
            qemu: None,
            ssh_port: free_port(),
            boots: 0,
            days_ahead: 0,
            rtc_base: None,
        }
    }

    /// The serial console's output file of the current boot.
    pub fn console(&self) -> PathBuf {
        self.dir.path().join(format!("console-{}.log", self.boots))
    }

    /// The last lines of the console, for failure messages.
    pub fn console_tail(&self) -> String {
        let text = std::fs::read_to_string(self.console()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Powers the box on and waits until sshd answers.
    pub fn boot(&mut self) {
        assert!(self.qemu.is_none(), "already running");
        self.boots += 1;
        // A port of its own for each boot: the last one may be taken by now.
        self.ssh_port = free_port();
        let disk = self.dir.path().join("disk.qcow2");
        let (qemu, machine, console) = match arch().as_str() {
            "arm64" => (
                "qemu-system-aarch64",
                vec!["-M", "virt", "-cpu", "cortex-a72"],
                "ttyAMA0",
            ),
            _ => (
                "qemu-system-x86_64",
                vec!["-M", "q35", "-cpu", "max"],
                "ttyS0",
            ),
        };
        let accel = std::env::var("MOTCUA_BOX_ACCEL").unwrap_or_else(|_| "tcg".into());
        let rtc = if let Some(base) = &self.rtc_base {
            format!("base={base}")
        } else {
            let at = time::OffsetDateTime::now_utc() + time::Duration::days(self.days_ahead.into());
            format!(
                "base={:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                at.year(),
                u8::from(at.month()),
                at.day(),
                at.hour(),
                at.minute(),
                at.second()
            )
        };
        let child = Command::new(qemu)
            .args(&machine)
            .args(["-accel", &accel, "-smp", "2", "-m", "1024", "-rtc", &rtc])
            .args(["-nographic", "-nodefaults", "-no-user-config"])
            .arg("-serial")
            .arg(format!("file:{}", self.console().display()))
            .arg("-kernel")
            .arg(self.image.join("vmlinuz"))
            .arg("-initrd")
            .arg(self.image.join("initrd.img"))
            .args([
                "-append",
                &format!("root=/dev/vda ro console={console} panic=-1"),
            ])
            .arg("-drive")
            .arg(format!(
                "file={},if=virtio,format=qcow2,cache=writeback",
                disk.display()
            ))
            .args([
                "-netdev",
                &format!("user,id=net0,hostfwd=tcp:127.0.0.1:{}-:22", self.ssh_port),
                "-device",
                "virtio-net-pci,netdev=net0",
                "-device",
                "virtio-rng-pci",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(self.dir.path().join(format!("qemu-{}.log", self.boots)))
                    .expect("qemu's log"),
            )
            .spawn()
            .expect("qemu starts (apt-get install qemu-system-x86 / qemu-system-arm)");
        self.qemu = Some(child);
        self.wait_for_ssh(Duration::from_secs(600));
    }

    fn wait_for_ssh(&mut self, limit: Duration) {
        let start = Instant::now();
        loop {
            if let Some(q) = self.qemu.as_mut()
                && let Ok(Some(status)) = q.try_wait()
            {
                let err = std::fs::read_to_string(
                    self.dir.path().join(format!("qemu-{}.log", self.boots)),
                )
                .unwrap_or_default();
                panic!(
                    "qemu exited ({status}): {err}\nconsole:\n{}",
                    self.console_tail()
                );
            }
            if self.ssh("true").ok {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "the box did not answer ssh within {limit:?}; console:\n{}",
                self.console_tail()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn ssh_base(&self) -> Command {
        self.ssh_base_args(&[])
    }

    /// Runs a shell command on the box as root.
    pub fn ssh(&self, command: &str) -> Run {
        self.ssh_base()
            .arg(command)
            .stdin(Stdio::null())
            .output()
            .expect("ssh runs")
            .into()
    }

    /// Runs a command on the box that must succeed; its standard output.
    pub fn sh(&self, command: &str) -> String {
        let r = self.ssh(command);
        assert!(r.ok, "on the box: {command}\n{}{}", r.stdout, r.stderr);
        r.stdout
    }

    /// Copies a file onto the box.
    pub fn put(&self, local: &Path, remote: &str) {
        self.scp(
            local.as_os_str(),
            format!("root@127.0.0.1:{remote}").as_ref(),
        );
    }

    /// Copies a file off the box.
    pub fn get(&self, remote: &str, local: &Path) {
        self.scp(
            format!("root@127.0.0.1:{remote}").as_ref(),
            local.as_os_str(),
        );
    }

    fn scp(&self, from: &std::ffi::OsStr, to: &std::ffi::OsStr) {
        let out = Command::new("scp")
            .arg("-i")
            .arg(self.image.join("id_ed25519"))
            .args(["-P", &self.ssh_port.to_string()])
            .args(ssh_options())
            .arg(from)
            .arg(to)
            .output()
            .expect("scp runs");
        assert!(
            out.status.success(),
            "scp {} {}: {}",
            from.to_string_lossy(),
            to.to_string_lossy(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The ssh options for `scripts/deploy` (`-o` each).
    pub fn deploy_options(&self) -> Vec<String> {
        let mut o = vec![
            "--port".to_owned(),
            self.ssh_port.to_string(),
            "-o".to_owned(),
            format!("IdentityFile={}", self.image.join("id_ed25519").display()),
        ];
        for opt in ssh_options().chunks(2) {
            o.push("-o".into());
            o.push(opt[1].to_owned());
        }
        o
    }

    /// A tunnel from a loopback port of the host to `port` on the box's
    /// loopback (`ssh -L`), as a technician reaches the kiosk; it ends
    /// with the box or when dropped.
    pub fn tunnel(&self, port: u16) -> Tunnel {
        let local = free_port();
        // Without the forward (its port taken since), ssh exits instead of
        // running on while the wait below reaches someone else's listener.
        let child = self
            .ssh_base_args(&[
                "-N",
                "-o",
                "ExitOnForwardFailure=yes",
                "-L",
                &format!("127.0.0.1:{local}:127.0.0.1:{port}"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh -L starts");
        let mut t = Tunnel { child, port: local };
        crate::site::wait_until("the ssh tunnel", Duration::from_secs(60), || {
            if let Ok(Some(status)) = t.child.try_wait() {
                panic!("ssh -L to the box exited: {status}");
            }
            std::net::TcpStream::connect(("127.0.0.1", local)).is_ok()
        });
        t
    }

    fn ssh_base_args(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ssh");
        c.arg("-i")
            .arg(self.image.join("id_ed25519"))
            .args(["-p", &self.ssh_port.to_string()])
            .args(ssh_options())
            .args(args)
            .arg("root@127.0.0.1");
        c
    }

    /// The guest's boot id.
    pub fn boot_id(&self) -> String {
        self.sh("cat /proc/sys/kernel/random/boot_id")
            .trim()
            .to_owned()
    }

    /// Cuts the power: kills qemu. Whatever the guest had not flushed to
    /// its disk is lost.
    pub fn cut(&mut self) {
        if let Some(mut q) = self.qemu.take() {
            let _ = q.kill();
            let _ = q.wait();
        }
    }

    /// `systemctl reboot` on the box, then waits for the new boot to answer.
    pub fn reboot(&mut self) {
        let before = self.boot_id();
        // The connection may drop before ssh reports back.
        let _ = self.ssh("systemctl reboot");
        let start = Instant::now();
        loop {
            std::thread::sleep(Duration::from_secs(1));
            let r = self.ssh("cat /proc/sys/kernel/random/boot_id");
            if r.ok && r.stdout.trim() != before {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(600),
                "no new boot within 10 minutes; console:\n{}",
                self.console_tail()
            );
        }
    }

    /// Waits until systemd has finished starting the box: `running`, or
    /// `degraded` with the failed units named.
    pub fn settled(&self) -> String {
        // Bounded: a unit that never finishes starting must fail the
        // lab, not hang it.
        let r = self.ssh("timeout 600 systemctl is-system-running --wait");
        let state = r.stdout.trim().to_owned();
        if state != "running" {
            let failed = self.ssh("systemctl --failed --no-legend --plain");
            return format!("{state}: {}", failed.stdout.trim());
        }
        state
    }
}

impl Drop for BoxVm {
    fn drop(&mut self) {
        self.cut();
    }
}

/// An `ssh -L` tunnel to the box.
pub struct Tunnel {
    child: Child,
    /// Its port on the host's loopback.
    pub port: u16,
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// ssh's options for a lab box: its host key changes with every disk.
fn ssh_options() -> [&'static str; 12] {
    [
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=10",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "ServerAliveInterval=5",
    ]
}
