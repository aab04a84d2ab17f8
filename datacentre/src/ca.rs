//! A small certificate authority for the broker's TLS: `motcua-dc ca`.
//!
//! The DC runs its own CA: counters trust only it (`dc.ca_file`), and the
//! broker trusts only certificates it issued. Certificates and keys are
//! ECDSA P-256: OpenSSL 3.0 (Mosquitto's TLS) cannot read the PKCS#8 v2
//! files in which Ed25519 keys are written, and P-256 is what every broker
//! and TLS stack supports. (Records and receipts are signed with Ed25519,
//! independently of TLS.)
//!
//! Layout of a CA directory: `ca.pem` (the certificate every counter and the
//! broker are given) and `ca.key` (mode 0600, never leaves the operator's
//! machine). Serial numbers are random.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use motcua_common::atomic::{self, AtomicWriteError, Overwrite};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, DnValue, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

/// The CA certificate file in a CA directory.
pub const CA_CERT: &str = "ca.pem";
/// The CA key file in a CA directory.
pub const CA_KEY: &str = "ca.key";
/// Whose certificates a CA directory issues: `counters` (and the broker's
/// own) or `receivers`. A directory without it is a counters' CA.
pub const CA_ROLE: &str = "ca.role";

/// Whose client certificates a CA issues. The broker's access list goes by
/// certificate name on every listener, so a name starting with
/// `motcua-dc` (a receiver's) must never come from the counters' CA, nor
/// a device id from the receivers'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaRole {
    /// Counters' certificates, and the broker's.
    Counters,
    /// Receivers' certificates (names starting with `motcua-dc`).
    Receivers,
}

impl CaRole {
    fn word(self) -> &'static str {
        match self {
            CaRole::Counters => "counters",
            CaRole::Receivers => "receivers",
        }
    }
}

/// The role of the CA in `dir` (counters' when unmarked).
pub fn role(dir: &Path) -> Result<CaRole> {
    let path = dir.join(CA_ROLE);
    match std::fs::read_to_string(&path) {
        Ok(t) if t.trim() == "receivers" => Ok(CaRole::Receivers),
        Ok(t) if t.trim() == "counters" => Ok(CaRole::Counters),
        Ok(t) => bail!(
            "{}: {:?} is neither counters nor receivers",
            path.display(),
            t.trim()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CaRole::Counters),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Refuses a client certificate name this CA must not issue.
fn check_client_name(dir: &Path, cn: &str) -> Result<()> {
    let receiver = crate::is_receiver_name(cn);
    match role(dir)? {
        CaRole::Counters if receiver => bail!(
            "{cn:?} is a receiver's name: the counters' CA never issues it (the broker would give it the receivers' rights); issue it from the receivers' CA (motcua-dc ca init --receivers)"
        ),
        CaRole::Receivers if !receiver => bail!(
            "{cn:?} is not a receiver's name: the receivers' CA issues only names starting with {}",
            crate::RECEIVER_IDENTITY
        ),
        _ => Ok(()),
    }
}

/// What a certificate is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// A broker: the names and addresses clients connect to.
    Server {
        /// DNS names or IP addresses.
        hosts: Vec<String>,
    },
    /// A client (a counter, or `motcua-dc`): the broker takes its identity
    /// (user name) from the common name.
    Client,
}

/// Files written by [`issue`].
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate.
    pub cert: PathBuf,
    /// Its private key (mode 0600).
    pub key: PathBuf,
}

fn write(path: &Path, contents: &str, mode: u32, overwrite: Overwrite) -> Result<()> {
    match atomic::write(path, contents.as_bytes(), mode, overwrite) {
        Err(AtomicWriteError::Exists(p)) => bail!(
            "{} already exists; refusing to replace it (pass --force to replace it on purpose)",
            p.display()
        ),
        other => other.with_context(|| format!("writing {}", path.display())),
    }
}

fn serial() -> Result<SerialNumber> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("no randomness for a serial: {e}"))?;
    b[0] &= 0x7f; // a positive integer
    Ok(SerialNumber::from_slice(&b))
}

fn base(cn: &str, days: u32) -> Result<CertificateParams> {
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    let now = OffsetDateTime::now_utc();
    // A little slack for clocks slightly behind the CA's.
    p.not_before = now - Duration::hours(1);
    p.not_after = now + Duration::days(i64::from(days));
    p.serial_number = Some(serial()?);
    Ok(p)
}

/// The common names a certificate may carry: the broker uses them as user
/// names in ACL patterns, so they follow the device id rule (and `+`, `#`,
/// `/` are never allowed).
fn check_name(cn: &str) -> Result<()> {
    if cn.parse::<motcua_protocol::DeviceId>().is_err() {
        bail!(
            "{cn:?} cannot be a certificate name: use 3 to 64 characters from A-Z a-z 0-9 . _ - \
             (a device id, or motcua-dc for the receivers)"
        );
    }
    Ok(())
}

/// Creates a CA in `dir`: `ca.pem`, `ca.key` and `ca.role`.
pub fn init(dir: &Path, name: &str, role: CaRole, days: u32, force: bool) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut p = base(name, days)?;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = p.self_signed(&key)?;
    let overwrite = if force {
        Overwrite::Allow
    } else {
        Overwrite::Refuse
    };
    // The key first: a certificate without its key is useless, a key
    // without its certificate is merely incomplete.
    write(&dir.join(CA_KEY), &key.serialize_pem(), 0o600, overwrite)?;
    write(&dir.join(CA_CERT), &cert.pem(), 0o644, overwrite)?;
    write(
        &dir.join(CA_ROLE),
        &format!("{}\n", role.word()),
        0o644,
        Overwrite::Allow,
    )?;
    Ok(dir.join(CA_CERT))
}

fn load(dir: &Path) -> Result<Issuer<'static, KeyPair>> {
    let read = |f: &str| {
        let path = dir.join(f);
        std::fs::read_to_string(&path).with_context(|| {
            format!(
                "reading {} (create the CA with 'motcua-dc ca init --dir {}')",
                path.display(),
                dir.display()
            )
        })
    };
    let key_path = dir.join(CA_KEY);
    motcua_common::mqtt::read_private_key(&key_path)?;
    let key = KeyPair::from_pem(&read(CA_KEY)?)
        .with_context(|| format!("{} is not a PKCS#8 private key", key_path.display()))?;
    Issuer::from_ca_cert_pem(&read(CA_CERT)?, key).context("reading the CA certificate")
}

fn leaf_params(cn: &str, role: &Role, days: u32) -> Result<CertificateParams> {
    let mut p = base(cn, days)?;
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.use_authority_key_identifier_extension = true;
    match role {
        Role::Server { hosts } => {
            if hosts.is_empty() {
                bail!("a server certificate needs at least one --host (DNS name or IP address)");
            }
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            for h in hosts {
                p.subject_alt_names.push(match h.parse::<IpAddr>() {
                    Ok(ip) => SanType::IpAddress(ip),
                    Err(_) => SanType::DnsName(
                        h.clone()
                            .try_into()
                            .with_context(|| format!("{h:?} is not a DNS name"))?,
                    ),
                });
            }
        }
        Role::Client => {
            check_name(cn)?;
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
    }
    Ok(p)
}

/// Issues a certificate and a new key for `cn`, signed by the CA in `dir`,
/// written to `out/{cn}.pem` and `out/{cn}.key`.
pub fn issue(
    dir: &Path,
    cn: &str,
    role: &Role,
    days: u32,
    out: &Path,
    force: bool,
) -> Result<Issued> {
    let issuer = load(dir)?;
    if *role == Role::Client {
        check_client_name(dir, cn)?;
    }
    let p = leaf_params(cn, role, days)?;
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let cert = p.signed_by(&key, &issuer)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let overwrite = if force {
        Overwrite::Allow
    } else {
        Overwrite::Refuse
    };
    let issued = Issued {
        cert: out.join(format!("{cn}.pem")),
        key: out.join(format!("{cn}.key")),
    };
    write(&issued.key, &key.serialize_pem(), 0o600, overwrite)?;
    write(&issued.cert, &cert.pem(), 0o644, overwrite)?;
    Ok(issued)
}

/// Signs a counter's certificate signing request (from `motcua provision`):
/// only its public key and common name are taken; everything else (client
/// use only, validity, no CA) is set here. Returns the certificate PEM.
pub fn sign_csr(dir: &Path, csr_pem: &str, days: u32) -> Result<(String, String)> {
    let issuer = load(dir)?;
    let mut csr = CertificateSigningRequestParams::from_pem(csr_pem)
        .context("not a valid certificate signing request (or its signature does not verify)")?;
    let cn = match csr.params.distinguished_name.get(&DnType::CommonName) {
        Some(DnValue::Utf8String(s)) => s.clone(),
        Some(DnValue::PrintableString(s)) => s.as_str().to_owned(),
        _ => bail!("the request carries no common name (the device id)"),
    };
    check_client_name(dir, &cn)?;
    csr.params = leaf_params(&cn, &Role::Client, days)?;
    Ok((cn, csr.signed_by(&issuer)?.pem()))
}

/// A certificate signing request for `cn` with a new P-256 key: the key PEM
/// and the request PEM.
pub fn request(cn: &str) -> Result<(String, String)> {
    check_name(cn)?;
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    let csr = p.serialize_request(&key)?.pem()?;
    Ok((key.serialize_pem(), csr))
}

/// The certificates a CA directory has revoked: one line each, the
/// serial in hex, the revocation time (Unix seconds) and the name.
pub const REVOKED: &str = "revoked.tsv";
/// The number of the last CRL written (CRL numbers only grow).
pub const CRL_NUMBER: &str = "crlnumber";

/// One revoked certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    /// Its serial number.
    pub serial: Vec<u8>,
    /// When it was revoked.
    pub at: OffsetDateTime,
    /// Its common name.
    pub name: String,
}

/// The revoked certificates recorded in `dir`.
pub fn revoked(dir: &Path) -> Result<Vec<Revoked>> {
    let path = dir.join(REVOKED);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut out = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let bad = || anyhow::anyhow!("{} line {}: not serial, time, name", path.display(), i + 1);
        let mut f = line.split('\t');
        let serial = hex::decode(f.next().ok_or_else(bad)?).map_err(|_| bad())?;
        let at = f
            .next()
            .and_then(|t| t.parse::<i64>().ok())
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
            .ok_or_else(bad)?;
        let name = f.next().ok_or_else(bad)?.to_owned();
        out.push(Revoked { serial, at, name });
    }
    Ok(out)
}

/// Records the certificate `cert_pem` as revoked in `dir` (the CA that
/// issued it). Returns its name, and false when it already was.
pub fn revoke(dir: &Path, cert_pem: &str) -> Result<(String, bool)> {
    load(dir)?;
    let ca_pem = std::fs::read(dir.join(CA_CERT))
        .with_context(|| format!("reading {}", dir.join(CA_CERT).display()))?;
    let (_, ca) = x509_parser::pem::parse_x509_pem(&ca_pem).context("the CA certificate")?;
    let ca = ca.parse_x509().context("the CA certificate")?;
    let (_, pem) =
        x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).context("not a PEM certificate")?;
    let cert = pem.parse_x509().context("not an X.509 certificate")?;
    if cert.issuer().as_raw() != ca.subject().as_raw() {
        bail!(
            "issued by {}, not by this CA ({}): revoke it with the CA that issued it",
            cert.issuer(),
            ca.subject()
        );
    }
    let serial = cert.raw_serial().to_vec();
    let name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|n| n.as_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut list = revoked(dir)?;
    if list.iter().any(|r| r.serial == serial) {
        return Ok((name, false));
    }
    list.push(Revoked {
        serial,
        at: OffsetDateTime::now_utc(),
        name: name.clone(),
    });
    let text: String = list
        .iter()
        .map(|r| {
            format!(
                "{}\t{}\t{}\n",
                hex::encode(&r.serial),
                r.at.unix_timestamp(),
                r.name
            )
        })
        .collect();
    write(&dir.join(REVOKED), &text, 0o644, Overwrite::Allow)?;
    Ok((name, true))
}

/// A CRL of every certificate revoked in `dir`, signed by its CA, valid for
/// `days`, numbered one above the last. Returns the PEM, its number and
/// how many certificates it lists.
pub fn crl(dir: &Path, days: u32) -> Result<(String, u64, usize)> {
    use rcgen::{
        CertificateRevocationListParams, KeyIdMethod, RevocationReason, RevokedCertParams,
    };
    let issuer = load(dir)?;
    let list = revoked(dir)?;
    let number_path = dir.join(CRL_NUMBER);
    let last = match std::fs::read_to_string(&number_path) {
        Ok(t) => t
            .trim()
            .parse::<u64>()
            .with_context(|| format!("{} is not a number", number_path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(e).with_context(|| format!("reading {}", number_path.display())),
    };
    let number = last + 1;
    let now = OffsetDateTime::now_utc();
    let params = CertificateRevocationListParams {
        this_update: now - Duration::hours(1),
        next_update: now + Duration::days(i64::from(days)),
        crl_number: SerialNumber::from(number),
        issuing_distribution_point: None,
        revoked_certs: list
            .iter()
            .map(|r| RevokedCertParams {
                serial_number: SerialNumber::from_slice(&r.serial),
                revocation_time: r.at,
                reason_code: Some(RevocationReason::CessationOfOperation),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    let pem = params.signed_by(&issuer)?.pem()?;
    write(
        &number_path,
        &format!("{number}\n"),
        0o644,
        Overwrite::Allow,
    )?;
    Ok((pem, number, list.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_issues_and_signs_requests() {
        let t = tempfile::tempdir().expect("tempdir");
        let dir = t.path().join("ca");
        init(&dir, "motcua test CA", CaRole::Counters, 30, false).expect("init");
        assert!(
            init(&dir, "again", CaRole::Counters, 30, false).is_err(),
            "never replaces a CA"
        );
        let issued = issue(
            &dir,
            "broker",
            &Role::Server {
                hosts: vec!["localhost".into(), "127.0.0.1".into()],
            },
            10,
            t.path(),
            false,
        )
        .expect("issues");
        let pem = std::fs::read_to_string(&issued.cert).expect("reads");
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&issued.key)
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(issue(&dir, "bad/name", &Role::Client, 10, t.path(), false).is_err());
        let (_key, csr) = request("H49.12.3-q01").expect("csr");
        let (cn, cert) = sign_csr(&dir, &csr, 365).expect("signs");
        assert_eq!(cn, "H49.12.3-q01");
        assert!(cert.contains("BEGIN CERTIFICATE"));
        assert!(sign_csr(&dir, "garbage", 1).is_err());
    }

    #[test]
    fn receivers_names_come_only_from_the_receivers_ca_and_device_ids_only_from_the_counters() {
        let t = tempfile::tempdir().expect("tempdir");
        let (counters, receivers) = (t.path().join("ca"), t.path().join("rca"));
        init(&counters, "counters", CaRole::Counters, 30, false).expect("init");
        init(&receivers, "receivers", CaRole::Receivers, 30, false).expect("init");
        let out = t.path().join("out");
        let e = issue(&counters, "motcua-dc", &Role::Client, 10, &out, false)
            .expect_err("a receiver's name from the counters' CA");
        assert!(e.to_string().contains("receivers' CA"), "{e}");
        let (_key, csr) = request("motcua-dc-2").expect("csr");
        assert!(sign_csr(&counters, &csr, 10).is_err());
        assert!(issue(&receivers, "H49.12.3-q01", &Role::Client, 10, &out, false).is_err());
        issue(&receivers, "motcua-dc", &Role::Client, 10, &out, false).expect("a receiver");
        issue(&counters, "H49.12.3-q01", &Role::Client, 10, &out, false).expect("a counter");
        assert_eq!(role(&receivers).expect("role"), CaRole::Receivers);
    }

    #[test]
    fn a_revoked_certificate_is_in_the_next_crl_and_numbers_grow() {
        use x509_parser::prelude::FromDer;
        let t = tempfile::tempdir().expect("tempdir");
        let (dir, other) = (t.path().join("ca"), t.path().join("other"));
        init(&dir, "counters", CaRole::Counters, 30, false).expect("init");
        init(&other, "another CA", CaRole::Counters, 30, false).expect("init");
        let out = t.path().join("out");
        let issued = issue(&dir, "H49.12.3-q01", &Role::Client, 10, &out, false).expect("issues");
        let pem = std::fs::read_to_string(&issued.cert).expect("reads");
        let (_, first, none) = crl(&dir, 30).expect("an empty CRL");
        assert_eq!(none, 0);
        assert!(revoke(&other, &pem).is_err(), "another CA's certificate");
        assert_eq!(
            revoke(&dir, &pem).expect("revokes"),
            ("H49.12.3-q01".into(), true)
        );
        assert!(!revoke(&dir, &pem).expect("again").1, "already revoked");
        let (crl_pem, second, listed) = crl(&dir, 30).expect("a CRL");
        assert_eq!((second, listed), (first + 1, 1));
        let (_, der) = x509_parser::pem::parse_x509_pem(crl_pem.as_bytes()).expect("PEM");
        let (_, parsed) =
            x509_parser::revocation_list::CertificateRevocationList::from_der(&der.contents)
                .expect("a CRL");
        let (_, cert) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("PEM");
        let cert = cert.parse_x509().expect("X.509");
        assert!(
            parsed
                .iter_revoked_certificates()
                .any(|r| r.raw_serial() == cert.raw_serial())
        );
    }
}
