"""Parse and check uploaded certificates and private keys (with `cryptography` only).

`parse(certificate, key, intermediate)` takes the bytes people actually have and returns
a `ParsedCertificate` with normalised PEM ready for nginx, or raises `PemError` (a
`FieldError`, so the API answers 400 naming the field) with a message that says what is
wrong and how to fix it.

Accepted:
    * RSA and EC keys as PKCS#1 (`BEGIN RSA PRIVATE KEY`), SEC1 (`BEGIN EC PRIVATE KEY`,
      with or without a leading `EC PARAMETERS` block) or PKCS#8 (`BEGIN PRIVATE KEY`);
    * CRLF or CR line endings, a missing trailing newline, indentation and blank lines,
      text around the PEM blocks (`openssl x509 -text` output, PKCS#12 "Bag Attributes"),
      a UTF-8 BOM or a UTF-16 file saved by Windows editors, blocks glued together by `cat`;
    * a certificate file that already holds the chain, intermediates in any order (in
      either field), a root certificate, cross-signed duplicates.
    * expired or not-yet-valid certificates (flagged: `expired`, `not_yet_valid`).

Rejected, each with its own message: encrypted keys, binary DER / PKCS#12 (PFX) files,
text that holds no certificate or key (CSRs, public keys, OpenSSH keys get named), several
private keys, DSA/Ed25519 keys, RSA keys under 2048 bits, a key that does not match any of
the certificates, files over `MAX_FILE_BYTES`, chains over `MAX_CERTIFICATES`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import re
import textwrap
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from portway.core import fields
from portway.core.errors import FieldError

MAX_FILE_BYTES = 1024 * 1024  # 1 MiB per uploaded file
MAX_CERTIFICATES = 20  # certificates across the certificate and intermediate fields
MIN_RSA_BITS = 2048

CERTIFICATE_FIELD = "certificate"
KEY_FIELD = "certificate_key"
INTERMEDIATE_FIELD = "intermediate_certificate"

ENCRYPTED_KEY = (
    "the private key is encrypted; upload it without a passphrase, "
    "e.g. `openssl pkey -in key.pem -out plain.pem`"
)
KEY_MISMATCH = "the private key does not match the certificate"
_BINARY = "is a binary DER/PKCS#12 file"
_PKCS12_HINT = (
    "convert it to PEM with `openssl pkcs12 -in bundle.pfx -nokeys -out cert.pem` "
    "(certificate and chain) and `openssl pkcs12 -in bundle.pfx -nocerts -nodes -out key.pem` "
    "(private key)"
)

_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
_BEGIN = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----")
_KEY_LABELS = {"PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"}
_CERT_LABELS = {"CERTIFICATE", "X509 CERTIFICATE"}
_ENCRYPTED_LABELS = {"ENCRYPTED PRIVATE KEY"}
# Blocks that are harmless beside the expected ones and are skipped silently.
_SKIPPED_LABELS = {"EC PARAMETERS"}
_SHORT_NAMES = {NameOID.EMAIL_ADDRESS: "emailAddress"}

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class PemError(FieldError):
    """An uploaded file is unusable. `field` is the upload field, `reason` the fix."""


@dataclass(frozen=True)
class CertificateInfo:
    """What a person wants to know about one certificate of a chain."""

    subject: str
    cn: str
    issuer: str
    not_before: datetime
    not_after: datetime
    serial: str
    fingerprint: str
    self_signed: bool

    def as_meta(self) -> dict:
        """JSON-safe form (ISO timestamps)."""
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "not_before": _iso(self.not_before),
            "not_after": _iso(self.not_after),
            "serial": self.serial,
            "fingerprint": self.fingerprint,
        }


@dataclass(frozen=True)
class ParsedCertificate:
    """A checked certificate/key pair.

    Attributes:
        cn: the leaf's subject common name (first SAN when it has no CN).
        issuer: the leaf's issuer, one line, as `openssl x509 -issuer` prints it.
        sans: normalised DNS names from the SAN extension (the CN when there is none):
            the certificate's `domain_names`.
        not_before / not_after: validity of the leaf (aware, UTC).
        serial: the leaf's serial number, uppercase hex.
        fingerprint: SHA-256 of the leaf's DER, `AB:CD:...` as `openssl x509 -fingerprint
            -sha256` prints it.
        key_type: "rsa" or "ecdsa" (NPM's `meta.key_type` values); key_size: bits.
        curve: the EC curve name ("secp256r1"), "" for RSA.
        expired / not_yet_valid: the leaf is outside its validity at parse time.
        chain: the intermediates (and root, if given) after the leaf, in issuing order.
        ignored: subjects of uploaded certificates that are not in the leaf's chain.
        fullchain_pem: leaf then each issuer, PEM, LF endings, trailing newline.
        key_pem: the private key as unencrypted PKCS#8 PEM, LF endings, trailing newline.
    """

    cn: str
    issuer: str
    sans: list[str]
    not_before: datetime
    not_after: datetime
    serial: str
    fingerprint: str
    key_type: str
    key_size: int
    curve: str
    expired: bool
    not_yet_valid: bool
    self_signed: bool
    leaf: CertificateInfo
    chain: list[CertificateInfo] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    fullchain_pem: bytes = field(default=b"", repr=False)
    key_pem: bytes = field(default=b"", repr=False)

    @property
    def domain_names(self) -> list[str]:
        """Alias of `sans`: the names this certificate serves."""
        return self.sans

    @property
    def leaf_pem(self) -> bytes:
        """The leaf certificate alone (first block of `fullchain_pem`)."""
        end = b"-----END CERTIFICATE-----\n"
        return self.fullchain_pem[: self.fullchain_pem.index(end) + len(end)]

    @property
    def chain_pem(self) -> bytes:
        """The certificates after the leaf (b"" when the leaf stands alone)."""
        return self.fullchain_pem[len(self.leaf_pem) :]

    def npm_info(self) -> dict:
        """NPM's certificate description: `{"cn", "issuer", "dates": {"from", "to"}}`.

        Dates are Unix seconds, as NPM's /validate answers.
        """
        return _npm_info(self.cn, self.issuer, self.not_before, self.not_after)

    def as_meta(self) -> dict:
        """The server-owned `meta` keys describing this pair; never any key material."""
        return {
            "certificate": True,
            "certificate_key": True,
            "intermediate_certificate": bool(self.chain),
            "cn": self.cn,
            "issuer": self.issuer,
            "serial": self.serial,
            "fingerprint": self.fingerprint,
            "not_before": _iso(self.not_before),
            "not_after": _iso(self.not_after),
            "key_type": self.key_type,
            "key_size": self.key_size,
            "curve": self.curve or None,
            "self_signed": self.self_signed,
            "expired": self.expired,
            "not_yet_valid": self.not_yet_valid,
            "chain": [info.as_meta() for info in self.chain],
            "ignored_certificates": list(self.ignored),
        }


# --------------------------------------------------------------------------- public API


def parse(
    certificate: bytes | str,
    key: bytes | str,
    intermediate: bytes | str | None = None,
    *,
    now: datetime | None = None,
) -> ParsedCertificate:
    """Check a certificate (optionally with its chain) and its private key.

    Args:
        certificate: the `certificate` upload; may already contain the chain.
        key: the `certificate_key` upload.
        intermediate: the optional `intermediate_certificate` upload (any order).
        now: the time to judge expiry against (default: the current time).

    Returns:
        ParsedCertificate with normalised `fullchain_pem` (leaf first) and `key_pem`.

    Raises:
        PemError: naming `certificate`, `certificate_key` or `intermediate_certificate`.
    """
    certs = load_certificates(certificate, CERTIFICATE_FIELD)
    extra = load_certificates(intermediate, INTERMEDIATE_FIELD) if _present(intermediate) else []
    private_key = load_private_key(key)
    pool = _dedupe(certs + extra)
    if len(pool) > MAX_CERTIFICATES:
        raise PemError(
            CERTIFICATE_FIELD,
            f"holds {len(pool)} certificates with the intermediate file; at most "
            f"{MAX_CERTIFICATES} are accepted (upload the leaf and its chain only)",
        )
    leaf = _find_leaf(pool, private_key)
    if leaf is None:
        raise PemError(KEY_FIELD, KEY_MISMATCH)
    chain, ignored = _build_chain(leaf, [c for c in pool if c is not leaf])
    return _result(leaf, chain, ignored, private_key, now or datetime.now(UTC))


def describe(certificate: bytes | str, field_name: str = CERTIFICATE_FIELD) -> dict:
    """NPM's description of the first certificate in a file, without a key.

    Returns `{"cn", "issuer", "dates": {"from", "to"}}` (dates in Unix seconds).

    Raises:
        PemError: the file holds no readable certificate.
    """
    cert = load_certificates(certificate, field_name)[0]
    names = _dns_names(cert)
    cn = _common_name(cert.subject) or (names[0] if names else "")
    return _npm_info(cn, _one_line(cert.issuer), _not_before(cert), _not_after(cert))


def load_certificates(data: bytes | str | None, field_name: str) -> list[x509.Certificate]:
    """Every certificate in a PEM upload, in file order (at least one).

    Raises:
        PemError: empty, too large, binary, no certificate block, or a damaged block.
    """
    text = _text(data, field_name, kind="certificate")
    blocks = _blocks(text, field_name)
    certs: list[x509.Certificate] = []
    labels = []
    for label, body in blocks:
        labels.append(label)
        if label not in _CERT_LABELS:
            continue
        der = _decode(body, label, field_name)
        try:
            certs.append(x509.load_der_x509_certificate(der))
        except ValueError as exc:
            raise PemError(
                field_name, f"contains a CERTIFICATE block that cannot be read ({exc})"
            ) from exc
    if not certs:
        raise PemError(field_name, _not_a_certificate(labels))
    return certs


def load_private_key(data: bytes | str | None) -> PrivateKey:
    """The single RSA or EC private key in a PEM upload (PKCS#1, SEC1 or PKCS#8).

    Raises:
        PemError (field `certificate_key`): empty, binary, encrypted, no key, several keys,
            an unsupported key type or an RSA key under 2048 bits.
    """
    text = _text(data, KEY_FIELD, kind="key")
    blocks = _blocks(text, KEY_FIELD)
    labels = [label for label, _ in blocks]
    if any(label in _ENCRYPTED_LABELS for label in labels):
        raise PemError(KEY_FIELD, ENCRYPTED_KEY)
    keys = [(label, body) for label, body in blocks if label in _KEY_LABELS]
    if not keys:
        raise PemError(KEY_FIELD, _not_a_key(labels))
    if len(keys) > 1:
        raise PemError(
            KEY_FIELD,
            f"contains {len(keys)} private keys; upload only the key of this certificate",
        )
    label, body = keys[0]
    if _is_encrypted_legacy(body):
        raise PemError(KEY_FIELD, ENCRYPTED_KEY)
    pem = _pem(label, _decode(body, label, KEY_FIELD))
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError as exc:  # "Password was not given but private key is encrypted"
        raise PemError(KEY_FIELD, ENCRYPTED_KEY) from exc
    except UnsupportedAlgorithm as exc:
        raise PemError(
            KEY_FIELD, "uses a key algorithm this server cannot read; use an RSA or EC key"
        ) from exc
    except ValueError as exc:
        raise PemError(
            KEY_FIELD, f"contains a {label} block that cannot be read as a private key ({exc})"
        ) from exc
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise PemError(
                KEY_FIELD,
                f"is a {key.key_size}-bit RSA key; browsers and nginx's OpenSSL refuse RSA "
                f"keys under {MIN_RSA_BITS} bits",
            )
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key
    kind = type(key).__name__.removeprefix("_").replace("PrivateKey", "") or "this"
    raise PemError(
        KEY_FIELD,
        f"is a {kind} key; TLS certificates served by nginx here must use an RSA or ECDSA key",
    )


# --------------------------------------------------------------------------- input text


def _present(data: bytes | str | None) -> bool:
    if data is None:
        return False
    return bool(data.strip()) if isinstance(data, str | bytes) else True


def _text(data: bytes | str | None, field_name: str, *, kind: str) -> str:
    """The upload as text with LF line endings, or a PemError for empty/huge/binary data."""
    if data is None:
        raise PemError(field_name, "is required")
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if len(raw) > MAX_FILE_BYTES:
        raise PemError(
            field_name, f"is too large ({len(raw)} bytes); at most {MAX_FILE_BYTES} are accepted"
        )
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with BOM (Windows Notepad)
        with contextlib.suppress(UnicodeDecodeError):
            raw = raw.decode("utf-16").encode("utf-8")
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if not raw.strip():
        raise PemError(field_name, "is empty")
    if b"-----BEGIN" not in raw and _looks_binary(raw):
        raise PemError(field_name, _binary_reason(raw, kind))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # only the PEM blocks matter; they are ASCII
    return text.replace("\r\n", "\n").replace("\r", "\n")


_CONTROL = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")


def _looks_binary(raw: bytes) -> bool:
    """DER and PKCS#12 carry control bytes and invalid UTF-8; text files do not."""
    sample = raw[:4096]
    if _CONTROL.search(sample):
        return True
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start < len(sample) - 4  # not just a multibyte char cut at the sample end
    return False


def _binary_reason(raw: bytes, kind: str) -> str:
    """Name the binary format and give the openssl command that converts it."""
    try:
        x509.load_der_x509_certificate(raw)
    except ValueError:
        pass
    else:
        return (
            f"{_BINARY} (a DER-encoded certificate); convert it to PEM with "
            "`openssl x509 -inform der -in cert.der -out cert.pem`"
        )
    try:
        serialization.load_der_private_key(raw, password=None)
    except TypeError:
        return (
            f"{_BINARY} (an encrypted DER-encoded private key); convert it to unencrypted "
            "PEM with `openssl pkey -inform der -in key.der -out key.pem`"
        )
    except (ValueError, UnsupportedAlgorithm):
        pass
    else:
        return (
            f"{_BINARY} (a DER-encoded private key); convert it to PEM with "
            "`openssl pkey -inform der -in key.der -out key.pem`"
        )
    return f"{_BINARY} (PKCS#12/PFX or other binary data); {_PKCS12_HINT}"


def _blocks(text: str, field_name: str) -> list[tuple[str, str]]:
    """(label, body) of each PEM block; text outside blocks is ignored.

    Each line is stripped first, so indentation and trailing blanks do not matter.
    """
    text = "\n".join(line.strip() for line in text.split("\n"))
    blocks = [(m.group(1), m.group(2)) for m in _BLOCK.finditer(text)]
    begins = _BEGIN.findall(text)
    if len(begins) > len(blocks):
        matched = [label for label, _ in blocks]
        for label in begins:
            if label in matched:
                matched.remove(label)
                continue
            raise PemError(
                field_name,
                f"has a '-----BEGIN {label}-----' line without its '-----END {label}-----' "
                "line; is the file cut short?",
            )
    return blocks


def _is_encrypted_legacy(body: str) -> bool:
    """OpenSSL's traditional encrypted PEM carries `Proc-Type: 4,ENCRYPTED` headers."""
    return any(
        line.upper().startswith("PROC-TYPE:") and "ENCRYPTED" in line.upper()
        for line in body.split("\n")
    )


def _decode(body: str, label: str, field_name: str) -> bytes:
    lines = [line for line in body.split("\n") if line and ":" not in line]
    data = "".join("".join(lines).split())
    try:
        der = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PemError(
            field_name, f"contains a damaged {label} block (its base64 text is invalid)"
        ) from exc
    if not der:
        raise PemError(field_name, f"contains an empty {label} block")
    return der


def _pem(label: str, der: bytes) -> bytes:
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode("ascii"), 64))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n".encode("ascii")


def _not_a_certificate(labels: list[str]) -> str:
    if any(label in _KEY_LABELS | _ENCRYPTED_LABELS for label in labels):
        return "contains a private key, not a certificate; upload the key as certificate_key"
    if any("CERTIFICATE REQUEST" in label for label in labels):
        return (
            "is a certificate signing request (CSR), not a certificate; upload the certificate "
            "your certificate authority issued for it"
        )
    if labels:
        shown = ", ".join(sorted(set(labels)))
        return (
            f"contains no certificate (found {shown}); "
            "expected a '-----BEGIN CERTIFICATE-----' block"
        )
    return "is not a PEM certificate: expected a '-----BEGIN CERTIFICATE-----' block"


def _not_a_key(labels: list[str]) -> str:
    if "OPENSSH PRIVATE KEY" in labels:
        return (
            "is an OpenSSH key, not a TLS private key; upload the key that was used to "
            "request the certificate"
        )
    if any(label.endswith("PUBLIC KEY") for label in labels):
        return "is a public key; upload the private key that belongs to the certificate"
    if "DSA PRIVATE KEY" in labels:
        return "is a DSA key; TLS certificates served by nginx here must use an RSA or ECDSA key"
    if any(label in _CERT_LABELS for label in labels):
        return "contains a certificate, not a private key; upload the private key file"
    if any("CERTIFICATE REQUEST" in label for label in labels):
        return "is a certificate signing request (CSR), not a private key"
    known = [label for label in labels if label not in _SKIPPED_LABELS]
    if known:
        shown = ", ".join(sorted(set(known)))
        return (
            f"contains no private key (found {shown}); "
            "expected a '-----BEGIN PRIVATE KEY-----' block"
        )
    return (
        "is not a PEM private key: expected '-----BEGIN PRIVATE KEY-----', "
        "'-----BEGIN RSA PRIVATE KEY-----' or '-----BEGIN EC PRIVATE KEY-----'"
    )


# --------------------------------------------------------------------------- chain


def _fingerprint(cert: x509.Certificate) -> str:
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _dedupe(certs: list[x509.Certificate]) -> list[x509.Certificate]:
    seen: set[bytes] = set()
    unique = []
    for cert in certs:
        der = cert.public_bytes(serialization.Encoding.DER)
        if der not in seen:
            seen.add(der)
            unique.append(cert)
    return unique


def _spki(public_key: object) -> bytes | None:
    try:
        return public_key.public_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    except (AttributeError, ValueError, UnsupportedAlgorithm):
        return None


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _find_leaf(pool: list[x509.Certificate], key: PrivateKey) -> x509.Certificate | None:
    """The certificate whose public key is the key's; a non-CA one first, file order next."""
    wanted = _spki(key.public_key())
    matches = []
    for cert in pool:
        try:
            public = cert.public_key()
        except (ValueError, UnsupportedAlgorithm):
            continue
        if _spki(public) == wanted:
            matches.append(cert)
    matches.sort(key=_is_ca)  # stable: keeps upload order among equals
    return matches[0] if matches else None


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except Exception:  # InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm
        return False
    return True


def _self_signed(cert: x509.Certificate) -> bool:
    return _issued_by(cert, cert)


def _build_chain(
    leaf: x509.Certificate, others: list[x509.Certificate]
) -> tuple[list[x509.Certificate], list[str]]:
    """Order the issuers after the leaf; report certificates that are not in its chain.

    Alternatives for a link already in the chain (cross-signed copies of an intermediate
    or root) are dropped quietly; they are listed in `ignored` like unrelated ones.
    """
    chain: list[x509.Certificate] = []
    pool = list(others)
    current = leaf
    while pool and not _self_signed(current):
        issuer = next((c for c in pool if _issued_by(current, c)), None)
        if issuer is None:
            break
        chain.append(issuer)
        pool.remove(issuer)
        current = issuer
    return chain, [_one_line(c.subject) for c in pool]


# --------------------------------------------------------------------------- result


def _attr_name(attribute: x509.NameAttribute) -> str:
    return _SHORT_NAMES.get(attribute.oid, attribute.rfc4514_attribute_name)


def _one_line(name: x509.Name) -> str:
    """`C = US, O = Let's Encrypt, CN = R3`: openssl's one-line form (as NPM shows it)."""
    return ", ".join(
        f"{_attr_name(attribute)} = {attribute.value}" for rdn in name.rdns for attribute in rdn
    )


def _common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else ""


def _dns_names(cert: x509.Certificate) -> list[str]:
    """SAN DNS names, normalised like host names; the CN when there is no SAN DNS name."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        raw = san.get_values_for_type(x509.DNSName)
    except (x509.ExtensionNotFound, ValueError):
        raw = []
    if not raw:
        cn = _common_name(cert.subject)
        raw = [cn] if cn else []
    names: list[str] = []
    for value in raw:
        try:
            name = fields.domain_name(value)
        except ValueError:
            continue  # e.g. a CN such as "CloudFlare Origin Certificate"
        if name not in names:
            names.append(name)
    return names


def _not_before(cert: x509.Certificate) -> datetime:
    return cert.not_valid_before_utc


def _not_after(cert: x509.Certificate) -> datetime:
    return cert.not_valid_after_utc


def _serial(cert: x509.Certificate) -> str:
    text = format(cert.serial_number, "X")
    return text if len(text) % 2 == 0 else "0" + text


def _info(cert: x509.Certificate) -> CertificateInfo:
    return CertificateInfo(
        subject=_one_line(cert.subject),
        cn=_common_name(cert.subject),
        issuer=_one_line(cert.issuer),
        not_before=_not_before(cert),
        not_after=_not_after(cert),
        serial=_serial(cert),
        fingerprint=_fingerprint(cert),
        self_signed=_self_signed(cert),
    )


def _result(
    leaf: x509.Certificate,
    chain: list[x509.Certificate],
    ignored: list[str],
    key: PrivateKey,
    now: datetime,
) -> ParsedCertificate:
    info = _info(leaf)
    sans = _dns_names(leaf)
    if isinstance(key, rsa.RSAPrivateKey):
        key_type, curve = "rsa", ""
    else:
        key_type, curve = "ecdsa", key.curve.name
    fullchain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in [leaf, *chain])
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return ParsedCertificate(
        cn=info.cn or (sans[0] if sans else ""),
        issuer=info.issuer,
        sans=sans,
        not_before=info.not_before,
        not_after=info.not_after,
        serial=info.serial,
        fingerprint=info.fingerprint,
        key_type=key_type,
        key_size=key.key_size,
        curve=curve,
        expired=info.not_after < now,
        not_yet_valid=info.not_before > now,
        self_signed=info.self_signed,
        leaf=info,
        chain=[_info(c) for c in chain],
        ignored=ignored,
        fullchain_pem=_lf(fullchain),
        key_pem=_lf(key_pem),
    )


def _lf(pem: bytes) -> bytes:
    pem = pem.replace(b"\r\n", b"\n")
    return pem if pem.endswith(b"\n") else pem + b"\n"


def _npm_info(cn: str, issuer: str, not_before: datetime, not_after: datetime) -> dict:
    return {
        "cn": cn,
        "issuer": issuer,
        "dates": {"from": int(not_before.timestamp()), "to": int(not_after.timestamp())},
    }


def _iso(value: datetime) -> str:
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
