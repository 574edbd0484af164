"""Real keys and certificates for tests, made with `cryptography` (no network, no openssl).

    root = make_ca("Portway Test Root")
    inter = make_intermediate(root, "Portway Test Intermediate")
    leaf = make_leaf(inter, ["club.example", "*.club.example"], key_type="ec")
    leaf.cert_pem, leaf.key_pem("pkcs1"), leaf.chain_pem, leaf.fullchain_pem
    origin = cloudflare_origin(["example.com", "*.example.com"])  # Cloudflare Origin-like

Keys are cached per label (RSA generation is slow), so ask for a fresh `label` when a
test needs a key that nothing else uses (e.g. a mismatching key).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@functools.cache
def make_key(key_type: str = "rsa", label: str = "default", bits: int = 2048) -> PrivateKey:
    """A private key, cached per (key_type, label, bits). key_type: "rsa" or "ec" (P-256)."""
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=bits)
    if key_type in ("ec", "ecdsa"):
        return ec.generate_private_key(ec.SECP256R1() if bits == 2048 else _curve(bits))
    raise ValueError(f"unknown key type {key_type!r}")


def _curve(bits: int) -> ec.EllipticCurve:
    return {256: ec.SECP256R1(), 384: ec.SECP384R1(), 521: ec.SECP521R1()}[bits]


def key_pem(key: PrivateKey, fmt: str = "pkcs8", password: bytes | None = None) -> bytes:
    """PEM of a private key.

    fmt: "pkcs8" (BEGIN PRIVATE KEY), "pkcs1" (BEGIN RSA PRIVATE KEY; for an EC key this is
    SEC1, BEGIN EC PRIVATE KEY), "sec1" (same as pkcs1), "traditional" (same).
    password: encrypt the key (PKCS#8 → BEGIN ENCRYPTED PRIVATE KEY; traditional →
    Proc-Type: 4,ENCRYPTED headers).
    """
    private_format = (
        serialization.PrivateFormat.PKCS8
        if fmt == "pkcs8"
        else serialization.PrivateFormat.TraditionalOpenSSL
    )
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, private_format, encryption)


def cert_pem(*certs: x509.Certificate) -> bytes:
    """PEM of one or more certificates, concatenated in the given order."""
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def cert_der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


@dataclass
class Issued:
    """A certificate with its key and the chain above it (nearest issuer first).

    `chain` holds intermediates only; `root` is the self-signed CA at the top (None for a
    self-signed certificate, whose own `cert` is its root).
    """

    cert: x509.Certificate
    key: PrivateKey
    chain: list[x509.Certificate] = field(default_factory=list)
    root: x509.Certificate | None = None

    @property
    def cert_pem(self) -> bytes:
        return cert_pem(self.cert)

    def key_pem(self, fmt: str = "pkcs8", password: bytes | None = None) -> bytes:
        return key_pem(self.key, fmt, password)

    @property
    def chain_pem(self) -> bytes:
        """The intermediates, nearest issuer first (b"" when issued by a root directly)."""
        return cert_pem(*self.chain)

    @property
    def fullchain_pem(self) -> bytes:
        """Leaf and intermediates, as nginx's ssl_certificate wants them."""
        return cert_pem(self.cert, *self.chain)

    @property
    def root_pem(self) -> bytes:
        return cert_pem(self.root or self.cert)

    def pkcs12(self, password: bytes | None = b"secret") -> bytes:
        """The pair and chain as a PKCS#12/PFX bundle (as Windows/IIS exports it)."""
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password)
            if password
            else serialization.NoEncryption()
        )
        return pkcs12.serialize_key_and_certificates(
            b"portway-test", self.key, self.cert, self.chain or None, encryption
        )

    def write(self, directory: Path) -> tuple[Path, Path]:
        """Write fullchain.pem and privkey.pem (0600) into `directory`; returns both paths."""
        directory.mkdir(parents=True, exist_ok=True)
        chain_path, key_path = directory / "fullchain.pem", directory / "privkey.pem"
        chain_path.write_bytes(self.fullchain_pem)
        key_path.write_bytes(self.key_pem())
        key_path.chmod(0o600)
        return chain_path, key_path


def _name(cn: str | None, **attrs: str) -> x509.Name:
    oids = {
        "C": NameOID.COUNTRY_NAME,
        "ST": NameOID.STATE_OR_PROVINCE_NAME,
        "L": NameOID.LOCALITY_NAME,
        "O": NameOID.ORGANIZATION_NAME,
        "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    }
    parts = [x509.NameAttribute(oids[k], v) for k, v in attrs.items()]
    if cn is not None:
        parts.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(parts)


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: object,
    not_before: datetime | None,
    not_after: datetime | None,
    days: int,
) -> x509.CertificateBuilder:
    now = datetime.now(UTC)
    start = not_before or now - timedelta(days=1)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(not_after or start + timedelta(days=days))
    )


def _ski(key: PrivateKey) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(key.public_key())


def _aki(key: PrivateKey) -> x509.AuthorityKeyIdentifier:
    return x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key())


def _ca_extensions(builder: x509.CertificateBuilder, path_length: int | None):
    return builder.add_extension(
        x509.BasicConstraints(ca=True, path_length=path_length), critical=True
    ).add_extension(
        x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=True,
            crl_sign=True,
            encipher_only=False,
            decipher_only=False,
        ),
        critical=True,
    )


def make_ca(
    cn: str = "Portway Test Root CA",
    *,
    key_type: str = "rsa",
    org: str = "Portway Tests",
    days: int = 3650,
    **name_attrs: str,
) -> Issued:
    """A self-signed root CA (key cached by its CN)."""
    key = make_key(key_type, f"ca:{cn}")
    name = _name(cn, O=org, **name_attrs)
    builder = _builder(name, name, key.public_key(), None, None, days)
    builder = _ca_extensions(builder, None).add_extension(_ski(key), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    return Issued(cert=cert, key=key, chain=[], root=cert)


def make_intermediate(
    issuer: Issued,
    cn: str = "Portway Test Intermediate CA",
    *,
    key_type: str = "rsa",
    days: int = 1825,
) -> Issued:
    """An intermediate CA signed by `issuer` (a root or another intermediate)."""
    key = make_key(key_type, f"ca:{cn}")
    builder = _builder(
        _name(cn, O="Portway Tests"), issuer.cert.subject, key.public_key(), None, None, days
    )
    builder = (
        _ca_extensions(builder, 0)
        .add_extension(_ski(key), critical=False)
        .add_extension(_aki(issuer.key), critical=False)
    )
    cert = builder.sign(issuer.key, hashes.SHA256())
    return Issued(cert=cert, key=key, chain=_sent_by(issuer), root=issuer.root)


def make_leaf(
    issuer: Issued | None,
    names: Sequence[str],
    *,
    key_type: str = "rsa",
    key: PrivateKey | None = None,
    label: str | None = None,
    cn: str | None = "",
    subject: x509.Name | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    days: int = 90,
    ips: Sequence[str] = (),
) -> Issued:
    """A TLS server certificate for `names` (SAN DNS entries; "*.x" wildcards allowed).

    issuer: the CA that signs it, or None for a self-signed certificate.
    key / label: the leaf key; by default a cached key per (key_type, label or names).
    cn: subject CN; "" (default) uses the first name, None leaves the CN out.
    names empty: no SAN extension at all (old-style CN-only certificate).
    """
    key = key or make_key(key_type, label or "leaf:" + ",".join(names))
    if subject is None:
        subject = _name(names[0] if cn == "" and names else cn)
    issuer_name = issuer.cert.subject if issuer else subject
    signing_key = issuer.key if issuer else key
    builder = _builder(subject, issuer_name, key.public_key(), not_before, not_after, days)
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    builder = (
        builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(_ski(key), critical=False)
    )
    if issuer:
        builder = builder.add_extension(_aki(issuer.key), critical=False)
    cert = builder.sign(signing_key, hashes.SHA256())
    if issuer is None:
        return Issued(cert=cert, key=key, chain=[], root=None)
    return Issued(cert=cert, key=key, chain=_sent_by(issuer), root=issuer.root)


def _sent_by(issuer: Issued) -> list[x509.Certificate]:
    """The chain a certificate signed by `issuer` carries: the issuer unless it is a root."""
    return [] if issuer.cert is issuer.root else [issuer.cert, *issuer.chain]


def make_chain(
    names: Sequence[str] = ("club.example", "*.club.example"),
    *,
    key_type: str = "rsa",
    ca_key_type: str = "rsa",
    prefix: str = "Portway Test",
    **leaf_options: object,
) -> Issued:
    """Root → intermediate → leaf for `names`: the usual shape of a purchased certificate."""
    root = make_ca(f"{prefix} Root CA", key_type=ca_key_type)
    inter = make_intermediate(root, f"{prefix} Intermediate CA", key_type=ca_key_type)
    return make_leaf(inter, names, key_type=key_type, **leaf_options)  # type: ignore[arg-type]


def cloudflare_origin_ca(key_type: str = "rsa") -> Issued:
    """A stand-in for Cloudflare's Origin CA root, with the same subject fields."""
    return _cloudflare_root(key_type)


@functools.cache
def _cloudflare_root(key_type: str) -> Issued:
    key = make_key(key_type, "ca:cloudflare-origin")
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "CloudFlare, Inc."),
            x509.NameAttribute(
                NameOID.ORGANIZATIONAL_UNIT_NAME, "CloudFlare Origin SSL Certificate Authority"
            ),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "San Francisco"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "California"),
        ]
    )
    builder = _builder(name, name, key.public_key(), None, None, 3650)
    cert = _ca_extensions(builder, 2).add_extension(_ski(key), critical=False)
    signed = cert.sign(key, hashes.SHA256())
    return Issued(cert=signed, key=key, chain=[], root=signed)


def cloudflare_origin(
    names: Sequence[str] = ("example.com", "*.example.com"), *, key_type: str = "rsa"
) -> Issued:
    """A certificate shaped like a Cloudflare Origin certificate.

    Subject `O=CloudFlare, Inc., OU=CloudFlare Origin CA, CN=CloudFlare Origin Certificate`
    (the CN is not a host name: names come only from the SANs), 15-year validity, issued
    directly by an Origin-CA-like root that browsers do not trust. Cloudflare hands out the
    key as PKCS#8 (`BEGIN PRIVATE KEY`) and no intermediate.
    """
    root = _cloudflare_root(key_type)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "CloudFlare, Inc."),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "CloudFlare Origin CA"),
            x509.NameAttribute(NameOID.COMMON_NAME, "CloudFlare Origin Certificate"),
        ]
    )
    return make_leaf(
        root,
        names,
        key_type=key_type,
        label="cloudflare-origin:" + ",".join(names),
        subject=subject,
        days=15 * 365,
    )
