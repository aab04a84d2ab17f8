//! MQTT connection set-up shared by the agent and the receiver: rumqttc
//! options from a validated [`BrokerConnection`], TLS with rustls (ring
//! provider only), and the reconnection backoff.
//!
//! TLS trusts exactly the configured CA (no system roots: a counter must not
//! sync to whoever a public CA vouches for) and always presents the client
//! certificate, which is how the broker knows the device.
//!
//! A box without a battery-backed clock can boot reading 2000-01-01, when
//! every certificate is "not yet valid"; it learns the time only from the
//! DC's receipts, which need TLS first. So the broker's certificate is
//! checked at the system time or, when that is earlier, at a floor the box
//! can vouch for: its own certificate's notBefore (the DC's CA issued it,
//! so the time was at least that) or the DC's last receipt's signing time,
//! whichever is later ([`options_with_floor`]).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{Broker, MqttOptions, TlsConfiguration, Transport};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};

use crate::config::{BrokerConnection, TlsFiles};

/// Largest MQTT packet either side sends or accepts: a full bundle of
/// submissions (`motcua_protocol::bundle::MAX_BUNDLE_BYTES`) with room for
/// the topic and headers.
pub const MAX_PACKET_BYTES: usize = motcua_protocol::bundle::MAX_BUNDLE_BYTES + 4096;

/// Why TLS could not be set up. Each names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// A file could not be read or holds no usable PEM.
    #[error("{path}: {problem}")]
    File {
        /// The file.
        path: String,
        /// What is wrong with it.
        problem: String,
    },
    /// rustls refused the combination (e.g. key does not match certificate).
    #[error("TLS set-up: {0}")]
    Rustls(#[from] rustls::Error),
}

fn file_err(path: &Path, problem: impl Into<String>) -> TlsSetupError {
    TlsSetupError::File {
        path: path.display().to_string(),
        problem: problem.into(),
    }
}

/// Reads every certificate of a PEM file.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_err(path, format!("cannot read certificates: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(path, format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(file_err(path, "holds no certificate"));
    }
    Ok(certs)
}

/// Reads a private key, refusing one that group or others can read.
pub fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| file_err(path, format!("cannot read: {e}")))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(file_err(
            path,
            format!(
                "private key is readable by group or others (mode {:o}); run: chmod 600 {}",
                mode & 0o777,
                path.display()
            ),
        ));
    }
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| file_err(path, format!("not a PEM private key: {e}")))
}

/// The rustls client configuration for `files`: only the configured CA is
/// trusted, and the client certificate is always presented.
pub fn client_tls(
    files: &TlsFiles,
    floor: Option<UnixTime>,
) -> Result<rustls::ClientConfig, TlsSetupError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_certs(files.ca_file.as_path())? {
        roots
            .add(cert)
            .map_err(|e| file_err(files.ca_file.as_path(), format!("unusable CA: {e}")))?;
    }
    let chain = read_certs(files.client_cert.as_path())?;
    let key = read_private_key(files.client_key.as_path())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // The floor: the later of our certificate's notBefore and the caller's.
    let own = chain.first().and_then(|c| {
        x509_parser::parse_x509_certificate(c.as_ref())
            .ok()
            .map(|(_, x)| x.validity().not_before.timestamp())
    });
    let floor = own
        .map(|s| u64::try_from(s).unwrap_or(0))
        .into_iter()
        .chain(floor.map(|t| t.as_secs()))
        .max()
        .map(|s| UnixTime::since_unix_epoch(Duration::from_secs(s)));
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| file_err(files.ca_file.as_path(), format!("unusable CA: {e}")))?;
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AtLeast {
            inner: verifier,
            floor,
        }))
        .with_client_auth_cert(chain, key)?)
}

/// WebPKI's verification of the server, at the system time or at `floor`
/// when the system clock reads earlier. Nothing else differs: the chain to
/// the configured CA, the name, expiry and the handshake signatures are all
/// checked by WebPKI as they would be.
#[derive(Debug)]
struct AtLeast {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    floor: Option<UnixTime>,
}

impl rustls::client::danger::ServerCertVerifier for AtLeast {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let now = match self.floor {
            Some(floor) if floor.as_secs() > now.as_secs() => floor,
            _ => now,
        };
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// rumqttc options for `conn`, MQTT 3.1.1 with a clean session: nothing
/// durable is left to the broker's session state.
pub fn options(
    conn: &BrokerConnection,
    client_id: &str,
    keep_alive: Duration,
) -> Result<MqttOptions, TlsSetupError> {
    options_with_floor(conn, client_id, keep_alive, None)
}

/// [`options`], checking the broker's certificate at no earlier a time than
/// `floor` (a time the caller can vouch for, such as a signed receipt's)
/// nor than the client certificate's notBefore.
pub fn options_with_floor(
    conn: &BrokerConnection,
    client_id: &str,
    keep_alive: Duration,
    floor: Option<UnixTime>,
) -> Result<MqttOptions, TlsSetupError> {
    let mut o = MqttOptions::new(client_id, Broker::tcp(conn.url.host.clone(), conn.url.port));
    o.set_keep_alive(keep_alive_secs(keep_alive));
    o.set_clean_session(true);
    o.set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES);
    if let Some(files) = &conn.tls {
        let tls = client_tls(files, floor)?;
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            Arc::new(tls),
        )));
    }
    Ok(o)
}

/// MQTT's keep-alive field is whole seconds (at most 65 535).
pub fn keep_alive_secs(d: Duration) -> u16 {
    u16::try_from(d.as_secs()).unwrap_or(u16::MAX)
}

/// Capped exponential backoff with full jitter: the n-th wait is uniform in
/// [base, min(max, base * 2^n)], so a fleet that lost the link together
/// spreads its reconnections out instead of stampeding the broker.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// A backoff from `base` up to `max`.
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff {
            base,
            max: max.max(base),
            attempt: 0,
        }
    }

    /// The next wait.
    pub fn next_wait(&mut self) -> Duration {
        let cap = self
            .base
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let span = cap.saturating_sub(self.base).as_millis() as u64;
        self.base + Duration::from_millis(random_u64() % (span + 1))
    }

    /// After a successful connection: start again from `base`.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// A random number for jitter and client ids.
pub fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // Without the OS's randomness, jitter degrades to none; nothing breaks.
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_with_jitter() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let waits: Vec<Duration> = (0..12).map(|_| b.next_wait()).collect();
        assert!(waits.iter().all(|w| *w >= Duration::from_secs(1)));
        assert!(waits.iter().all(|w| *w <= Duration::from_secs(60)));
        assert_eq!(waits[0], Duration::from_secs(1), "first cap is the base");
        assert!(waits[1] <= Duration::from_secs(2));
        // Jitter: later waits are not all equal.
        let mut later: Vec<_> = waits[8..].to_vec();
        later.dedup();
        assert!(later.len() > 1, "{waits:?}");
        b.reset();
        assert_eq!(b.next_wait(), Duration::from_secs(1));
    }
}
