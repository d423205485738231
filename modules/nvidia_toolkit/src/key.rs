//! The repository's signing key: parsed and checked with sequoia-openpgp before anything trusts it.
//!
//! A key is accepted when it is exactly one public certificate whose primary fingerprint is the one the user
//! asked for, that is neither revoked nor expired. Expired subkeys are allowed (NVIDIA's own key carries one)
//! and reported as warnings with their expiry date. What is written to the node is the certificate in binary
//! form, which is what apt's `signed-by` (gpgv) reads.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _, Result};
use openpgp::cert::prelude::*;
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::serialize::Serialize;
use openpgp::types::RevocationStatus;
use sequoia_openpgp as openpgp;

/// A certificate that passed every check, with what the module reports about it.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedKey {
    /// The primary key's fingerprint, 40 upper-case hex digits.
    pub fingerprint: String,
    /// When the certificate expires (`YYYY-MM-DDTHH:MM:SSZ`), `None` when it does not.
    pub expires: Option<String>,
    /// The certificate, public parts only, in binary OpenPGP form.
    pub binary: Vec<u8>,
    /// One line per expired or revoked subkey.
    pub warnings: Vec<String>,
}

/// Normalises a fingerprint as users write it (spaces, lower case, `0x`) to 40 upper-case hex digits.
pub fn normalize_fingerprint(text: &str) -> Result<String> {
    let compact: String = text
        .trim()
        .trim_start_matches("0x")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    if compact.len() != 40 || !compact.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!(
            "fingerprint must be a primary key's full fingerprint (40 hex digits), got '{}'",
            text
        );
    }
    Ok(compact)
}

/// Whether any certificate that parses from `bytes` carries secret key material (unparsable input: no).
pub fn has_secret_parts(bytes: &[u8]) -> bool {
    CertParser::from_bytes(bytes)
        .map(|certs| certs.flatten().any(|c| c.is_tsk()))
        .unwrap_or(false)
}

/// Checks `bytes` (armored or binary) against `want_fingerprint` (already normalised); `source` names the
/// input in messages. `now` is the time the checks use.
pub fn verify(
    bytes: &[u8],
    want_fingerprint: &str,
    source: &str,
    now: SystemTime,
) -> Result<VerifiedKey> {
    let policy = StandardPolicy::new();
    let certs: Vec<Cert> = CertParser::from_bytes(bytes)
        .with_context(|| format!("{} is not an OpenPGP key", source))?
        .collect::<openpgp::Result<Vec<Cert>>>()
        .with_context(|| format!("{} is not a valid OpenPGP key", source))?;
    let cert = match certs.as_slice() {
        [one] => one,
        [] => bail!("{} holds no OpenPGP certificate", source),
        many => bail!(
            "{} holds {} certificates ({}); give exactly the repository's one",
            source,
            many.len(),
            many.iter()
                .map(|c| c.fingerprint().to_hex())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let fingerprint = cert.fingerprint().to_hex();
    if fingerprint != want_fingerprint {
        bail!(
            "{} has the primary fingerprint {}, not the expected {}; refusing to trust it",
            source,
            fingerprint,
            want_fingerprint
        );
    }
    if cert.is_tsk() {
        bail!(
            "{} contains secret key material; give the public key only (never put a private key on nodes)",
            source
        );
    }
    if let RevocationStatus::Revoked(_) = cert.revocation_status(&policy, now) {
        bail!("the key {} is revoked; refusing to trust it", fingerprint);
    }
    let valid = cert.with_policy(&policy, now).with_context(|| {
        format!(
            "the key {} has no self-signature valid now under the standard policy",
            fingerprint
        )
    })?;
    let expires = valid.primary_key().key_expiration_time();
    if valid.alive().is_err() {
        let when = expires
            .map(|t| format!(" on {}", iso_time(t)))
            .unwrap_or_default();
        bail!(
            "the key {} expired{}; get the repository's current key (EXPKEYSIG otherwise)",
            fingerprint,
            when
        );
    }
    let mut warnings = Vec::new();
    for sub in cert.keys().subkeys() {
        let id = sub.key().keyid().to_hex();
        match sub.with_policy(&policy, now) {
            Ok(vk) => {
                if let RevocationStatus::Revoked(_) = vk.revocation_status() {
                    warnings.push(format!("subkey {} of key {} is revoked", id, fingerprint));
                } else if vk.alive().is_err() {
                    let when = vk
                        .key_expiration_time()
                        .map(|t| format!(" on {}", iso_time(t)))
                        .unwrap_or_default();
                    warnings.push(format!(
                        "subkey {} of key {} expired{}; apt can use only the key's other, valid keys",
                        id, fingerprint, when
                    ));
                }
            }
            Err(e) => warnings.push(format!(
                "subkey {} of key {} is not usable: {}",
                id, fingerprint, e
            )),
        }
    }
    // Serialising a Cert writes public parts only: exactly what belongs in a keyring.
    let mut binary = Vec::new();
    cert.serialize(&mut binary)
        .context("cannot serialise the key")?;
    Ok(VerifiedKey {
        fingerprint,
        expires: expires.map(iso_time),
        binary,
        warnings,
    })
}

/// Whether the `key` option is the key's text itself rather than a path to it.
pub fn is_inline(key: &str) -> bool {
    key.trim_start().starts_with("-----BEGIN PGP")
}

/// `YYYY-MM-DDTHH:MM:SSZ` in UTC.
pub fn iso_time(t: SystemTime) -> String {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        y,
        m,
        d,
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (the well-known era-based conversion).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openpgp::serialize::SerializeInto;
    use openpgp::types::{KeyFlags, ReasonForRevocation};
    use std::time::Duration;

    const DAY: Duration = Duration::from_secs(86_400);

    fn now() -> SystemTime {
        SystemTime::now()
    }

    fn builder() -> CertBuilder<'static> {
        CertBuilder::new()
            .set_cipher_suite(CipherSuite::Cv25519)
            .add_userid("Test Repository <repo@example.invalid>")
            .set_primary_key_flags(KeyFlags::empty().set_certification().set_signing())
    }

    fn public_armored(cert: &Cert) -> Vec<u8> {
        cert.armored().to_vec().unwrap()
    }

    #[test]
    fn accepts_the_right_key_armored_and_binary_and_writes_public_binary() {
        let (cert, _) = builder().generate().unwrap();
        let fpr = cert.fingerprint().to_hex();
        let k = verify(&public_armored(&cert), &fpr, "key", now()).unwrap();
        assert_eq!(k.fingerprint, fpr);
        assert_eq!(k.expires, None);
        assert!(k.warnings.is_empty());
        let reparsed = Cert::from_bytes(&k.binary).unwrap();
        assert_eq!(reparsed.fingerprint(), cert.fingerprint());
        assert!(!reparsed.is_tsk());
        assert_ne!(k.binary.first(), Some(&b'-'), "keyring must be binary");
        // The binary form verifies too and serialises to the same bytes (stable keyring, idempotent writes).
        let again = verify(&k.binary, &fpr, "keyring", now()).unwrap();
        assert_eq!(again.binary, k.binary);
    }

    #[test]
    fn refuses_a_wrong_fingerprint_naming_both() {
        let (cert, _) = builder().generate().unwrap();
        let want = "C95B321B61E88C1809C4F759DDCAE044F796ECB0";
        let err = verify(&public_armored(&cert), want, "key", now())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(want) && err.contains(&cert.fingerprint().to_hex()),
            "{err}"
        );
    }

    #[test]
    fn refuses_secret_key_material() {
        let (cert, _) = builder().generate().unwrap();
        let tsk = cert.as_tsk().armored().to_vec().unwrap();
        let err = verify(&tsk, &cert.fingerprint().to_hex(), "key", now())
            .unwrap_err()
            .to_string();
        assert!(err.contains("secret key material"), "{err}");
    }

    #[test]
    fn refuses_two_certificates_and_none() {
        let (a, _) = builder().generate().unwrap();
        let (b, _) = builder().generate().unwrap();
        let mut both = a.to_vec().unwrap();
        both.extend(b.to_vec().unwrap());
        let err = verify(&both, &a.fingerprint().to_hex(), "key", now())
            .unwrap_err()
            .to_string();
        assert!(err.contains("2 certificates"), "{err}");
        let err = verify(b"hello", &a.fingerprint().to_hex(), "key", now()).unwrap_err();
        assert!(format!("{:#}", err).contains("key"), "{err:#}");
    }

    #[test]
    fn refuses_a_revoked_key() {
        let (cert, rev) = builder().generate().unwrap();
        let _ = rev;
        let mut signer = cert
            .primary_key()
            .key()
            .clone()
            .parts_into_secret()
            .unwrap()
            .into_keypair()
            .unwrap();
        let sig = cert
            .revoke(&mut signer, ReasonForRevocation::KeyCompromised, b"test")
            .unwrap();
        let revoked = cert.insert_packets(sig).unwrap().0;
        let public = revoked.armored().to_vec().unwrap();
        let err = verify(&public, &revoked.fingerprint().to_hex(), "key", now())
            .unwrap_err()
            .to_string();
        assert!(err.contains("revoked"), "{err}");
    }

    #[test]
    fn refuses_an_expired_certificate_with_its_date() {
        let created = now() - 30 * DAY;
        let (cert, _) = builder()
            .set_creation_time(created)
            .set_validity_period(DAY)
            .generate()
            .unwrap();
        let err = verify(
            &public_armored(&cert),
            &cert.fingerprint().to_hex(),
            "key",
            now(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("expired on "), "{err}");
        assert!(err.contains(&iso_time(created + DAY)[..10]), "{err}");
    }

    #[test]
    fn warns_about_an_expired_subkey_with_its_date() {
        let created = now() - 30 * DAY;
        let (cert, _) = builder()
            .set_creation_time(created)
            .add_subkey(KeyFlags::empty().set_signing(), Some(2 * DAY), None)
            .generate()
            .unwrap();
        let k = verify(
            &public_armored(&cert),
            &cert.fingerprint().to_hex(),
            "key",
            now(),
        )
        .unwrap();
        assert_eq!(k.warnings.len(), 1, "{:?}", k.warnings);
        assert!(k.warnings[0].contains("expired on "), "{:?}", k.warnings);
        assert!(k.warnings[0].contains(&iso_time(created + 2 * DAY)[..10]));
    }

    #[test]
    fn normalizes_fingerprints() {
        assert_eq!(
            normalize_fingerprint("c95b 321b 61e8 8c18 09c4  f759 ddca e044 f796 ecb0").unwrap(),
            "C95B321B61E88C1809C4F759DDCAE044F796ECB0"
        );
        assert!(normalize_fingerprint("DDCAE044F796ECB0").is_err());
        assert!(normalize_fingerprint("Z95B321B61E88C1809C4F759DDCAE044F796ECB0").is_err());
    }

    #[test]
    fn formats_utc_times() {
        assert_eq!(iso_time(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            iso_time(UNIX_EPOCH + Duration::from_secs(1_795_769_884)),
            "2026-11-27T08:58:04Z"
        );
        assert_eq!(
            iso_time(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
    }
}
