//! The collector's own certificate authority: created at `init`, it signs the server certificate
//! and each agent's client certificate (from the agent's CSR, so agent keys never leave agents).

use std::net::IpAddr;
use std::path::Path;

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use time::{Duration, OffsetDateTime};

pub const CA_CERT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
pub const SERVER_CERT: &str = "server.crt";
pub const SERVER_KEY: &str = "server.key";

const CA_VALIDITY_DAYS: i64 = 3650;
const SERVER_VALIDITY_DAYS: i64 = 825;
// Agent certificates: `[agents] cert_validity` (397 days by default: short enough to limit a
// stolen key's life, long enough that an agent offline for months still gets back in); agents
// renew theirs once two thirds have passed.

/// A PEM certificate and its PEM private key.
#[derive(Debug)]
pub struct Pem {
    pub cert: String,
    pub key: String,
}

/// Creates a self-signed CA.
pub fn create_ca(name: &str) -> Result<Pem> {
    let key = KeyPair::generate().context("cannot generate the CA key")?;
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(&format!("Steward collector CA ({name})"));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut params, CA_VALIDITY_DAYS);
    let cert = params
        .self_signed(&key)
        .context("cannot self-sign the CA")?;
    Ok(Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// The CA, loaded for signing.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pub cert_pem: String,
    pub cert_der: CertificateDer<'static>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl Ca {
    pub fn load(data_dir: &Path) -> Result<Ca> {
        let cert_path = data_dir.join(CA_CERT);
        let key_path = data_dir.join(CA_KEY);
        let cert_pem = std::fs::read_to_string(&cert_path)
            .with_context(|| format!("cannot read {}", cert_path.display()))?;
        let key_pem = std::fs::read_to_string(&key_path)
            .with_context(|| format!("cannot read {}", key_path.display()))?;
        Ca::from_pem(&cert_pem, &key_pem)
            .with_context(|| format!("invalid CA in {}", data_dir.display()))
    }

    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Ca> {
        let key = KeyPair::from_pem(key_pem).context("invalid CA key")?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key).context("invalid CA certificate")?;
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .context("invalid CA certificate")?;
        Ok(Ca {
            issuer,
            cert_pem: cert_pem.to_string(),
            cert_der,
        })
    }

    /// `sha256:<hex>` of the CA certificate: what agents pin at enrollment.
    pub fn fingerprint(&self) -> String {
        steward_agent::fingerprint(&self.cert_der)
    }

    /// A server certificate valid for `names` (DNS names or IP addresses).
    pub fn server_cert(&self, names: &[String]) -> Result<Pem> {
        let key = KeyPair::generate().context("cannot generate the server key")?;
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(names
            .first()
            .map(String::as_str)
            .unwrap_or("steward-collector"));
        params.subject_alt_names = names
            .iter()
            .map(|name| match name.parse::<IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => name.clone().try_into().map(SanType::DnsName),
            })
            .collect::<Result<_, _>>()
            .context("invalid server name")?;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.serial_number = Some(random_serial()?);
        validity(&mut params, SERVER_VALIDITY_DAYS);
        let cert = params
            .signed_by(&key, &self.issuer)
            .context("cannot sign the server certificate")?;
        Ok(Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }

    /// Signs an agent's CSR. Only the CSR's public key is used: the subject is the agent id and
    /// the certificate is good for client authentication only, whatever the CSR asked for.
    pub fn sign_agent_csr(
        &self,
        csr_pem: &str,
        agent_id: &str,
        validity: std::time::Duration,
    ) -> Result<SignedAgent, rcgen::Error> {
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem)?;
        let serial = random_serial().map_err(|_| rcgen::Error::RingUnspecified)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(agent_id);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.serial_number = Some(serial.clone());
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        // The configured validity is at most 10 years (Config::parse): no overflow here.
        params.not_after =
            now + Duration::seconds(i64::try_from(validity.as_secs()).unwrap_or(i64::MAX / 2));
        let not_after_ms =
            i64::try_from(params.not_after.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
        csr.params = params;
        let cert = csr.signed_by(&self.issuer)?;
        Ok(SignedAgent {
            cert_pem: cert.pem(),
            serial: hex::encode(serial.as_ref()),
            not_after_ms,
        })
    }
}

#[derive(Debug)]
pub struct SignedAgent {
    pub cert_pem: String,
    pub serial: String,
    /// When the certificate expires (Unix ms).
    pub not_after_ms: i64,
}

/// Checks that a CSR parses and its signature verifies, before any token is spent on it.
pub fn check_csr(csr_pem: &str) -> Result<(), rcgen::Error> {
    CertificateSigningRequestParams::from_pem(csr_pem).map(|_| ())
}

fn dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "Steward");
    dn
}

fn validity(params: &mut CertificateParams, days: i64) {
    let now = OffsetDateTime::now_utc();
    // Backdated a little so a host whose clock runs slightly behind still accepts it.
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(days);
}

fn random_serial() -> Result<SerialNumber> {
    let mut bytes = crate::random_bytes::<16>()?;
    bytes[0] &= 0x7f; // positive INTEGER
    Ok(SerialNumber::from_slice(&bytes))
}

/// The Common Name of a DER certificate: for certificates this CA issued to agents, the agent id.
/// The certificate's serial number as lowercase hex without leading zero bytes, the form
/// [`same_serial`] compares.
pub fn serial_hex(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(normalize_serial(&hex::encode(
        cert.tbs_certificate.raw_serial(),
    )))
}

/// Whether two hex serials are the same number (DER drops a leading zero byte that the issued
/// serial may have had).
pub fn same_serial(a: &str, b: &str) -> bool {
    normalize_serial(a) == normalize_serial(b)
}

fn normalize_serial(hex: &str) -> String {
    let mut hex = hex.to_ascii_lowercase();
    while hex.len() > 2 && hex.starts_with("00") {
        hex.drain(..2);
    }
    hex
}

pub fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    cert.subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn agent_certificates_carry_the_agent_id_whatever_the_csr_says() {
        let ca_pem = create_ca("test").unwrap();
        let ca = Ca::from_pem(&ca_pem.cert, &ca_pem.key).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "i-want-to-be-admin");
        let csr = params.serialize_request(&key).unwrap().pem().unwrap();
        check_csr(&csr).unwrap();
        let signed = ca
            .sign_agent_csr(
                &csr,
                "a-0011223344556677",
                std::time::Duration::from_secs(86_400),
            )
            .unwrap();
        let der = CertificateDer::from_pem_slice(signed.cert_pem.as_bytes()).unwrap();
        assert_eq!(common_name(&der).as_deref(), Some("a-0011223344556677"));
        assert!(same_serial(&serial_hex(&der).unwrap(), &signed.serial));
        assert!(same_serial("00ab", "AB") && !same_serial("ab", "ac"));
        let expected = crate::now_ms() + 86_400_000;
        assert!(
            (signed.not_after_ms - expected).abs() < 5_000,
            "{}",
            signed.not_after_ms
        );
        assert!(ca.fingerprint().starts_with("sha256:") && ca.fingerprint().len() == 7 + 64);
    }

    #[test]
    fn a_garbage_csr_is_rejected() {
        assert!(
            check_csr(
                "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
            )
            .is_err()
        );
        assert!(check_csr("hello").is_err());
    }
}
