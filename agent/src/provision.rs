//! `motcua provision`: turns a blank box into a counter that can be
//! enrolled, in one command.
//!
//! From the unit code, the counter number, the DC's broker URL, the DC's
//! public key and its CA certificate it writes:
//! - the configuration (the documented template with those values filled
//!   in; a different existing file is kept beside it as `.bak`);
//! - the device's Ed25519 signing key and a P-256 TLS key (mode 0600);
//! - a certificate signing request for the TLS key, for `motcua-dc ca
//!   sign`;
//! - the DC's CA certificate, where the configuration points.
//!
//! It never replaces an existing key (the device's identity) unless told
//! to with `--new-identity`; run again, it keeps both keys, rewrites the
//! configuration and request, and prints the same enrollment line. Run as
//! root, it gives the state directory and keys to the service user.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use motcua_common::atomic::{self, Overwrite};
use motcua_common::config::{BrokerUrl, PublicKey};
use motcua_common::keyfile;
use motcua_counter::state_dir::StateDir;
use motcua_protocol::{DeviceId, Enrollment, UnitCode};

use crate::config::AgentConfig;

/// The configuration template shipped in `firmware-config/`, every key
/// documented.
pub const TEMPLATE: &str = include_str!("../../firmware-config/agent.toml");

/// What the technician gives (the command line of `motcua provision`).
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// The receiving unit's code (QCVN 102:2016), e.g. H49.12.3.
    #[arg(long)]
    pub unit: UnitCode,
    /// The counter's number at the unit, from 1.
    #[arg(long)]
    pub counter: u16,
    /// The device id [default: <unit>-q<counter, two digits>, e.g. H49.12.3-q01].
    #[arg(long)]
    pub device: Option<DeviceId>,
    /// The DC's MQTT broker, e.g. mqtts://mqtt.dc.example.vn:8883.
    #[arg(long)]
    pub broker: String,
    /// The DC's receipt key: the line 'motcua-dc public-key' prints
    /// (public_key = "ed25519:..."  # kid ...), or its ed25519:... value.
    #[arg(long)]
    pub dc_key: String,
    /// The DC's CA certificate (PEM) to install and trust.
    #[arg(long)]
    pub ca: PathBuf,
    /// The state directory: store and keys.
    #[arg(long, default_value = "/var/lib/motcua")]
    pub state_dir: PathBuf,
    /// The service user that owns the state directory and keys (only
    /// when run as root and the user exists).
    #[arg(long, default_value = "motcua")]
    pub owner: String,
    /// Replace existing keys: a new identity the DC must enroll again.
    #[arg(long)]
    pub new_identity: bool,
}

/// What happened to each file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The device id.
    pub device: DeviceId,
    /// The line for `motcua-dc device add`.
    pub enrollment: Enrollment,
    /// One line per file: what was done.
    pub files: Vec<String>,
    /// The certificate signing request's path.
    pub csr: PathBuf,
    /// Where the signed certificate goes.
    pub client_cert: PathBuf,
}

/// Replaces `key`'s value in `[section]` of a TOML template, keeping every
/// comment. Fails when the template has no such key (a template edit that
/// would silently leave the example value in place).
fn set(text: &str, section: &str, key: &str, value: &str) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut current = String::new();
    let mut done = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') && t.ends_with(']') {
            current = t[1..t.len() - 1].to_owned();
        }
        if !done
            && current == section
            && t.split('=').next().map(str::trim) == Some(key)
            && !t.starts_with('#')
        {
            let _ = writeln!(out, "{key} = {value}");
            done = true;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !done {
        bail!("the configuration template has no {section}.{key}");
    }
    Ok(out)
}

fn quoted(s: &str) -> String {
    // TOML basic strings share JSON's escapes for everything a path or URL
    // holds.
    serde_json::Value::String(s.to_owned()).to_string()
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str()
        .with_context(|| format!("{} is not valid UTF-8", p.display()))
}

/// The user's uid and gid from /etc/passwd, if it exists.
fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4 && f[0] == name).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

/// Runs the provisioning, writing the configuration file `config`.
pub fn provision(r: &Options, config: &Path) -> Result<Outcome> {
    let device = match &r.device {
        Some(d) => d.clone(),
        None => format!("{}-q{:02}", r.unit, r.counter)
            .parse()
            .context("the device id made of the unit code and counter number")?,
    };
    if r.counter == 0 {
        bail!("--counter: counters are numbered from 1");
    }
    r.broker
        .parse::<BrokerUrl>()
        .map_err(|e| anyhow::anyhow!("--broker: {e}"))?;
    let dc_key = PublicKey::from_line(&r.dc_key).map_err(|e| anyhow::anyhow!("--dc-key: {e}"))?;
    let ca_pem =
        std::fs::read(&r.ca).with_context(|| format!("reading --ca {}", r.ca.display()))?;
    motcua_common::mqtt::read_certs(&r.ca).context("--ca must be the DC's CA certificate (PEM)")?;
    if !r.state_dir.is_absolute() || !config.is_absolute() {
        bail!("--state-dir and --config must be absolute paths");
    }
    let etc = config
        .parent()
        .context("--config has no directory")?
        .to_owned();
    let state = StateDir::new(&r.state_dir);
    let key_file = state.device_key();
    let tls_key = state.tls_key();
    let csr = state.csr();
    let ca_file = etc.join("dc-ca.pem");
    let client_cert = etc.join("device.crt");
    let mut files = Vec::new();

    std::fs::create_dir_all(&r.state_dir)
        .with_context(|| format!("creating {}", r.state_dir.display()))?;
    std::fs::create_dir_all(&etc).with_context(|| format!("creating {}", etc.display()))?;

    // The device's signing key: its identity.
    let overwrite = if r.new_identity {
        Overwrite::Allow
    } else {
        Overwrite::Refuse
    };
    let signing = match keyfile::create(&key_file, overwrite) {
        Ok(k) => {
            files.push(format!(
                "created  {} (device signing key)",
                key_file.display()
            ));
            k
        }
        Err(keyfile::KeyFileError::Exists(_)) => {
            let k = keyfile::load(&key_file).with_context(|| {
                format!(
                    "{} exists but cannot be used; fix it, or pass --new-identity to replace it",
                    key_file.display()
                )
            })?;
            files.push(format!(
                "kept     {} (device signing key)",
                key_file.display()
            ));
            k
        }
        Err(e) => return Err(e.into()),
    };

    // The TLS key and its certificate request.
    let tls = if tls_key.exists() && !r.new_identity {
        motcua_common::mqtt::read_private_key(&tls_key)?;
        let pem = std::fs::read_to_string(&tls_key)
            .with_context(|| format!("reading {}", tls_key.display()))?;
        files.push(format!("kept     {} (TLS key)", tls_key.display()));
        rcgen::KeyPair::from_pem(&pem)
            .with_context(|| format!("{} is not a usable TLS key", tls_key.display()))?
    } else {
        let k = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        atomic::write(
            &tls_key,
            k.serialize_pem().as_bytes(),
            0o600,
            Overwrite::Allow,
        )?;
        files.push(format!("created  {} (TLS key)", tls_key.display()));
        k
    };
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, device.as_str());
    let request = params.serialize_request(&tls)?.pem()?;
    atomic::write(&csr, request.as_bytes(), 0o644, Overwrite::Allow)?;
    files.push(format!("wrote    {} (certificate request)", csr.display()));

    atomic::write(&ca_file, &ca_pem, 0o644, Overwrite::Allow)?;
    files.push(format!("wrote    {} (DC's CA)", ca_file.display()));

    // The configuration.
    let mut text = TEMPLATE.to_owned();
    for (section, key, value) in [
        ("device", "id", quoted(device.as_str())),
        ("device", "unit", quoted(r.unit.as_str())),
        ("device", "counter", r.counter.to_string()),
        ("device", "key_file", quoted(path_str(&key_file)?)),
        ("store", "state_dir", quoted(path_str(&r.state_dir)?)),
        ("dc", "broker", quoted(&r.broker)),
        ("dc", "ca_file", quoted(path_str(&ca_file)?)),
        ("dc", "client_cert", quoted(path_str(&client_cert)?)),
        ("dc", "client_key", quoted(path_str(&tls_key)?)),
        (
            "dc",
            "public_key",
            quoted(&format!("ed25519:{}", hex::encode(dc_key.0.as_bytes()))),
        ),
    ] {
        text = set(&text, section, key, &value)?;
    }
    match std::fs::read_to_string(config) {
        Ok(old) if old == text => {
            files.push(format!("kept     {} (unchanged)", config.display()));
        }
        Ok(old) => {
            let bak = config.with_extension("toml.bak");
            atomic::write(&bak, old.as_bytes(), 0o644, Overwrite::Allow)?;
            atomic::write(config, text.as_bytes(), 0o644, Overwrite::Allow)?;
            files.push(format!(
                "wrote    {} (the previous one is {})",
                config.display(),
                bak.display()
            ));
        }
        Err(_) => {
            atomic::write(config, text.as_bytes(), 0o644, Overwrite::Refuse)?;
            files.push(format!("created  {}", config.display()));
        }
    }
    // The certificate is not there yet; everything else must check out.
    AgentConfig::load(config)
        .map_err(anyhow::Error::new)
        .with_context(|| format!("the written {} does not check", config.display()))?;

    // Owners: the service user reads its keys and writes its state.
    if rustix::process::geteuid().is_root() {
        match lookup_user(&r.owner) {
            Some((uid, gid)) => {
                let (uid, gid) = (
                    rustix::fs::Uid::from_raw(uid),
                    rustix::fs::Gid::from_raw(gid),
                );
                for p in [&r.state_dir, &key_file, &tls_key, &csr] {
                    rustix::fs::chown(p.as_path(), Some(uid), Some(gid))
                        .with_context(|| format!("chown {} {}", r.owner, p.display()))?;
                }
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&r.state_dir, std::fs::Permissions::from_mode(0o750))?;
                files.push(format!(
                    "owner    {} and its keys belong to {}",
                    r.state_dir.display(),
                    r.owner
                ));
            }
            None => files.push(format!(
                "note     no user {:?} on this system (the package creates it); files stay root's",
                r.owner
            )),
        }
    }
    Ok(Outcome {
        enrollment: Enrollment {
            device: device.clone(),
            key: signing.verifying_key(),
        },
        device,
        files,
        csr,
        client_cert,
    })
}

/// The enrollment line as a QR code for a terminal (two rows per line).
pub fn qr_text(line: &str) -> Result<String> {
    let code = qrcode::QrCode::new(line.as_bytes())?;
    Ok(code
        .render::<qrcode::render::unicode::Dense1x2>()
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_replaces_only_the_key_in_its_section() {
        let t = "[a]\n# id = \"comment\"\nid = \"x\"\n[b]\nid = \"y\"\n";
        let out = set(t, "b", "id", "\"z\"").expect("sets");
        assert_eq!(
            out,
            "[a]\n# id = \"comment\"\nid = \"x\"\n[b]\nid = \"z\"\n"
        );
        assert!(set(t, "c", "id", "1").is_err());
    }

    #[test]
    fn the_template_has_every_key_provision_sets() {
        for (section, key) in [
            ("device", "id"),
            ("device", "unit"),
            ("device", "counter"),
            ("device", "key_file"),
            ("store", "state_dir"),
            ("dc", "broker"),
            ("dc", "ca_file"),
            ("dc", "client_cert"),
            ("dc", "client_key"),
            ("dc", "public_key"),
        ] {
            set(TEMPLATE, section, key, "1").expect(key);
        }
    }
}
