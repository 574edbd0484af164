"""pem.parse with real keys and certificates: every accepted shape, every rejection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from portway.certificates import pem
from portway.certificates.pem import PemError
from portway.certificates.services import SERVER_META_KEYS
from portway.testing import certs

NAMES = ["club.example", "*.club.example"]


@pytest.fixture(scope="module")
def rsa_leaf() -> certs.Issued:
    return certs.make_chain(NAMES, key_type="rsa")


@pytest.fixture(scope="module")
def ec_leaf() -> certs.Issued:
    return certs.make_chain(NAMES, key_type="ec", ca_key_type="ec", prefix="Portway EC")


def leaf_of(parsed: pem.ParsedCertificate) -> x509.Certificate:
    return x509.load_pem_x509_certificates(parsed.fullchain_pem)[0]


def assert_normalised(parsed: pem.ParsedCertificate, issued: certs.Issued) -> None:
    """Fullchain = leaf then intermediates; key = plain PKCS#8; LF only; trailing newline."""
    chain = x509.load_pem_x509_certificates(parsed.fullchain_pem)
    assert chain == [issued.cert, *issued.chain]
    for blob in (parsed.fullchain_pem, parsed.key_pem):
        assert b"\r" not in blob
        assert blob.endswith(b"\n") and not blob.endswith(b"\n\n")
    assert parsed.key_pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    key = serialization.load_pem_private_key(parsed.key_pem, password=None)
    assert key.private_numbers() == issued.key.private_numbers()
    assert parsed.sans == NAMES


# --------------------------------------------------------------------------- accepted


@pytest.mark.parametrize("fmt", ["pkcs1", "pkcs8"])
def test_rsa_key_formats(rsa_leaf: certs.Issued, fmt: str) -> None:
    key = rsa_leaf.key_pem(fmt)
    assert (b"BEGIN RSA PRIVATE KEY" in key) == (fmt == "pkcs1")
    parsed = pem.parse(rsa_leaf.cert_pem, key, rsa_leaf.chain_pem)
    assert_normalised(parsed, rsa_leaf)
    assert (parsed.key_type, parsed.key_size, parsed.curve) == ("rsa", 2048, "")


@pytest.mark.parametrize("fmt", ["sec1", "pkcs8"])
def test_ec_key_formats(ec_leaf: certs.Issued, fmt: str) -> None:
    key = ec_leaf.key_pem(fmt)
    assert (b"BEGIN EC PRIVATE KEY" in key) == (fmt == "sec1")
    parsed = pem.parse(ec_leaf.cert_pem, key, ec_leaf.chain_pem)
    assert_normalised(parsed, ec_leaf)
    assert (parsed.key_type, parsed.curve) == ("ecdsa", "secp256r1")


def test_ec_key_with_ec_parameters_block(ec_leaf: certs.Issued) -> None:
    """`openssl ecparam -genkey` writes an EC PARAMETERS block before the key."""
    params = b"-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"
    parsed = pem.parse(ec_leaf.fullchain_pem, params + ec_leaf.key_pem("sec1"))
    assert_normalised(parsed, ec_leaf)


def test_crlf_line_endings(rsa_leaf: certs.Issued) -> None:
    crlf = lambda b: b.replace(b"\n", b"\r\n")  # noqa: E731
    parsed = pem.parse(
        crlf(rsa_leaf.cert_pem), crlf(rsa_leaf.key_pem("pkcs1")), crlf(rsa_leaf.chain_pem)
    )
    assert_normalised(parsed, rsa_leaf)


def test_missing_trailing_newline(rsa_leaf: certs.Issued) -> None:
    parsed = pem.parse(
        rsa_leaf.cert_pem.rstrip(), rsa_leaf.key_pem().rstrip(), rsa_leaf.chain_pem.rstrip()
    )
    assert_normalised(parsed, rsa_leaf)


def test_junk_whitespace_and_indentation(rsa_leaf: certs.Issued) -> None:
    def messy(blob: bytes) -> bytes:
        lines = [b"   " + line + b" \t" for line in blob.split(b"\n")]
        return b"\n\n  \t\n" + b"\n".join(lines) + b"\n\n   \n"

    parsed = pem.parse(
        messy(rsa_leaf.cert_pem), messy(rsa_leaf.key_pem()), messy(rsa_leaf.chain_pem)
    )
    assert_normalised(parsed, rsa_leaf)


def test_str_input_bom_and_text_around_blocks(rsa_leaf: certs.Issued) -> None:
    """`openssl pkcs12 -nodes` output: Bag Attributes lines around the blocks, UTF-8 BOM."""
    bag = b"Bag Attributes\n    localKeyID: 01 02 03\nsubject=CN = club.example\n"
    cert = b"\xef\xbb\xbf" + bag + rsa_leaf.cert_pem + b"issuer=whatever\n" + rsa_leaf.chain_pem
    key = "Bag Attributes\n    friendlyName: x\n" + rsa_leaf.key_pem().decode()
    assert_normalised(pem.parse(cert, key), rsa_leaf)


def test_utf16_file(rsa_leaf: certs.Issued) -> None:
    cert = rsa_leaf.fullchain_pem.decode().encode("utf-16")
    assert_normalised(pem.parse(cert, rsa_leaf.key_pem()), rsa_leaf)


def test_chain_inside_certificate_field(rsa_leaf: certs.Issued) -> None:
    assert_normalised(pem.parse(rsa_leaf.fullchain_pem, rsa_leaf.key_pem()), rsa_leaf)


def test_blocks_glued_without_newline(rsa_leaf: certs.Issued) -> None:
    """`cat cert.pem chain.pem` where cert.pem lacked its final newline."""
    glued = rsa_leaf.cert_pem.rstrip() + rsa_leaf.chain_pem
    assert_normalised(pem.parse(glued, rsa_leaf.key_pem()), rsa_leaf)


def two_level() -> tuple[certs.Issued, certs.Issued, certs.Issued, certs.Issued]:
    root = certs.make_ca("Deep Root")
    mid1 = certs.make_intermediate(root, "Deep Intermediate 1")
    mid2 = certs.make_intermediate(mid1, "Deep Intermediate 2")
    leaf = certs.make_leaf(mid2, NAMES, label="deep")
    return root, mid1, mid2, leaf


def test_chain_in_reverse_order_in_intermediate_field() -> None:
    root, mid1, mid2, leaf = two_level()
    assert leaf.chain == [mid2.cert, mid1.cert]
    reverse = certs.cert_pem(root.cert, mid1.cert, mid2.cert)
    parsed = pem.parse(leaf.cert_pem, leaf.key_pem(), reverse)
    chain = x509.load_pem_x509_certificates(parsed.fullchain_pem)
    assert chain == [leaf.cert, mid2.cert, mid1.cert, root.cert]  # leaf first, then issuers
    assert [c.subject for c in parsed.chain] == [
        "O = Portway Tests, CN = Deep Intermediate 2",
        "O = Portway Tests, CN = Deep Intermediate 1",
        "O = Portway Tests, CN = Deep Root",
    ]


def test_chain_in_reverse_order_inside_certificate_field() -> None:
    root, mid1, mid2, leaf = two_level()
    reverse = certs.cert_pem(mid1.cert, mid2.cert, leaf.cert)  # leaf last
    parsed = pem.parse(reverse, leaf.key_pem())
    assert x509.load_pem_x509_certificates(parsed.fullchain_pem) == [
        leaf.cert,
        mid2.cert,
        mid1.cert,
    ]


def test_leaf_in_intermediate_field_and_chain_in_certificate_field() -> None:
    _, _, _, leaf = two_level()
    parsed = pem.parse(leaf.chain_pem, leaf.key_pem(), leaf.cert_pem)
    assert x509.load_pem_x509_certificates(parsed.fullchain_pem) == [leaf.cert, *leaf.chain]


def test_duplicates_dropped_and_unrelated_certificates_reported(rsa_leaf: certs.Issued) -> None:
    stranger = certs.make_ca("Unrelated CA")
    upload = rsa_leaf.fullchain_pem + rsa_leaf.chain_pem + stranger.cert_pem
    parsed = pem.parse(upload, rsa_leaf.key_pem(), rsa_leaf.cert_pem)
    assert x509.load_pem_x509_certificates(parsed.fullchain_pem) == [
        rsa_leaf.cert,
        *rsa_leaf.chain,
    ]
    assert parsed.ignored == ["O = Portway Tests, CN = Unrelated CA"]


def test_self_signed_certificate() -> None:
    issued = certs.make_leaf(None, ["self.example"], label="self")
    parsed = pem.parse(issued.cert_pem, issued.key_pem())
    assert parsed.self_signed and parsed.chain == []
    assert parsed.sans == ["self.example"]


def test_cloudflare_origin_certificate() -> None:
    origin = certs.cloudflare_origin(["example.com", "*.example.com"])
    parsed = pem.parse(origin.cert_pem, origin.key_pem("pkcs8"))
    assert parsed.cn == "CloudFlare Origin Certificate"
    assert parsed.sans == ["example.com", "*.example.com"]  # CN is not a host name
    assert "OU = CloudFlare Origin SSL Certificate Authority" in parsed.issuer
    assert parsed.not_after - parsed.not_before > timedelta(days=14 * 365)


def test_common_name_fallback_without_san() -> None:
    issued = certs.make_leaf(certs.make_ca(), [], cn="Legacy.Example", label="legacy")
    parsed = pem.parse(issued.cert_pem, issued.key_pem())
    assert parsed.sans == ["legacy.example"]
    assert parsed.cn == "Legacy.Example"


def test_ip_sans_are_not_domain_names() -> None:
    issued = certs.make_leaf(certs.make_ca(), ["ip.example"], ips=["10.0.0.1"], label="ip")
    assert pem.parse(issued.cert_pem, issued.key_pem()).sans == ["ip.example"]


def test_expired_certificate_is_accepted_and_flagged() -> None:
    past = datetime.now(UTC) - timedelta(days=100)
    issued = certs.make_leaf(
        certs.make_ca(), NAMES, not_before=past, not_after=past + timedelta(days=90)
    )
    parsed = pem.parse(issued.cert_pem, issued.key_pem())
    assert parsed.expired and not parsed.not_yet_valid
    assert parsed.as_meta()["expired"] is True


def test_not_yet_valid_is_flagged() -> None:
    future = datetime.now(UTC) + timedelta(days=10)
    issued = certs.make_leaf(certs.make_ca(), NAMES, not_before=future)
    parsed = pem.parse(issued.cert_pem, issued.key_pem())
    assert parsed.not_yet_valid and not parsed.expired


def test_description_fields(rsa_leaf: certs.Issued) -> None:
    parsed = pem.parse(rsa_leaf.cert_pem, rsa_leaf.key_pem(), rsa_leaf.chain_pem)
    assert parsed.cn == "club.example"
    assert parsed.issuer == "O = Portway Tests, CN = Portway Test Intermediate CA"
    assert int(parsed.serial, 16) == rsa_leaf.cert.serial_number
    assert len(parsed.fingerprint.split(":")) == 32
    assert parsed.not_after == rsa_leaf.cert.not_valid_after_utc
    info = parsed.npm_info()
    assert info["dates"] == {
        "from": int(rsa_leaf.cert.not_valid_before_utc.timestamp()),
        "to": int(rsa_leaf.cert.not_valid_after_utc.timestamp()),
    }
    meta = parsed.as_meta()
    assert "PRIVATE KEY" not in repr(meta)
    assert set(meta) - {"key_type"} == SERVER_META_KEYS
    assert parsed.leaf_pem + parsed.chain_pem == parsed.fullchain_pem


# --------------------------------------------------------------------------- rejected


def reject(field: str, *args: bytes | None) -> str:
    with pytest.raises(PemError) as info:
        pem.parse(*args)  # type: ignore[arg-type]
    assert info.value.field == field, info.value.message
    assert info.value.message.startswith(f"data/{field} ")
    return info.value.reason


@pytest.mark.parametrize("fmt", ["pkcs8", "pkcs1"])
def test_encrypted_key(rsa_leaf: certs.Issued, fmt: str) -> None:
    key = rsa_leaf.key_pem(fmt, password=b"hunter2")
    assert (b"ENCRYPTED PRIVATE KEY" in key) or (b"Proc-Type: 4,ENCRYPTED" in key)
    reason = reject("certificate_key", rsa_leaf.cert_pem, key)
    assert reason == pem.ENCRYPTED_KEY
    assert "openssl pkey -in key.pem -out plain.pem" in reason


def test_der_certificate(rsa_leaf: certs.Issued) -> None:
    reason = reject("certificate", certs.cert_der(rsa_leaf.cert), rsa_leaf.key_pem())
    assert reason.startswith("is a binary DER/PKCS#12 file (a DER-encoded certificate)")
    assert "openssl x509 -inform der" in reason


def test_der_key(rsa_leaf: certs.Issued) -> None:
    der = rsa_leaf.key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    reason = reject("certificate_key", rsa_leaf.cert_pem, der)
    assert reason.startswith("is a binary DER/PKCS#12 file (a DER-encoded private key)")


def test_der_intermediate(rsa_leaf: certs.Issued) -> None:
    reason = reject(
        "intermediate_certificate",
        rsa_leaf.cert_pem,
        rsa_leaf.key_pem(),
        certs.cert_der(rsa_leaf.chain[0]),
    )
    assert reason.startswith("is a binary DER/PKCS#12 file")


@pytest.mark.parametrize("password", [b"secret", None])
@pytest.mark.parametrize("field", ["certificate", "certificate_key"])
def test_pkcs12(rsa_leaf: certs.Issued, field: str, password: bytes | None) -> None:
    pfx = rsa_leaf.pkcs12(password)
    args = [rsa_leaf.cert_pem, rsa_leaf.key_pem()]
    args[0 if field == "certificate" else 1] = pfx
    reason = reject(field, *args)
    assert reason.startswith("is a binary DER/PKCS#12 file")
    assert "openssl pkcs12" in reason


def test_mismatched_key(rsa_leaf: certs.Issued) -> None:
    other = certs.make_key("rsa", "someone-else")
    reason = reject("certificate_key", rsa_leaf.cert_pem, certs.key_pem(other))
    assert reason == pem.KEY_MISMATCH


def test_mismatched_key_type(rsa_leaf: certs.Issued, ec_leaf: certs.Issued) -> None:
    assert reject("certificate_key", rsa_leaf.cert_pem, ec_leaf.key_pem()) == pem.KEY_MISMATCH


@pytest.mark.parametrize(
    ("cert", "key", "field", "expected"),
    [
        (b"hello world\n", None, "certificate", "is not a PEM certificate"),
        (None, b"not a key at all", "certificate_key", "is not a PEM private key"),
        (b"", None, "certificate", "is empty"),
        (None, b"  \r\n ", "certificate_key", "is empty"),
        (b"\x00\x01\x02garbage\xff\xfe", None, "certificate", "is a binary DER/PKCS#12 file"),
    ],
)
def test_garbage(
    rsa_leaf: certs.Issued, cert: bytes | None, key: bytes | None, field: str, expected: str
) -> None:
    reason = reject(
        field,
        rsa_leaf.cert_pem if cert is None else cert,
        rsa_leaf.key_pem() if key is None else key,
    )
    assert reason.startswith(expected), reason


def test_key_in_certificate_field_and_certificate_in_key_field(rsa_leaf: certs.Issued) -> None:
    assert "contains a private key, not a certificate" in reject(
        "certificate", rsa_leaf.key_pem(), rsa_leaf.key_pem()
    )
    assert "contains a certificate, not a private key" in reject(
        "certificate_key", rsa_leaf.cert_pem, rsa_leaf.cert_pem
    )


def test_public_key_csr_and_openssh(rsa_leaf: certs.Issued) -> None:
    public = rsa_leaf.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert reject("certificate_key", rsa_leaf.cert_pem, public).startswith("is a public key")
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(rsa_leaf.cert.subject)
        .sign(rsa_leaf.key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )
    assert "certificate signing request" in reject("certificate", csr, rsa_leaf.key_pem())
    ssh = rsa_leaf.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    assert "OpenSSH key" in reject("certificate_key", rsa_leaf.cert_pem, ssh)


def test_two_keys(rsa_leaf: certs.Issued) -> None:
    two = rsa_leaf.key_pem() + certs.key_pem(certs.make_key("rsa", "someone-else"))
    assert "contains 2 private keys" in reject("certificate_key", rsa_leaf.cert_pem, two)


def test_small_rsa_key() -> None:
    small = certs.make_key("rsa", "small", bits=1024)
    issued = certs.make_leaf(certs.make_ca(), NAMES, key=small)
    assert "1024-bit RSA key" in reject("certificate_key", issued.cert_pem, issued.key_pem())


def test_ed25519_key() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    issued = certs.make_leaf(certs.make_ca(), NAMES, key=key)  # type: ignore[arg-type]
    assert "RSA or ECDSA" in reject("certificate_key", issued.cert_pem, certs.key_pem(key))  # type: ignore[arg-type]


def test_truncated_and_damaged_blocks(rsa_leaf: certs.Issued) -> None:
    cut = rsa_leaf.cert_pem[: len(rsa_leaf.cert_pem) // 2]
    assert "without its '-----END CERTIFICATE-----'" in reject(
        "certificate", cut, rsa_leaf.key_pem()
    )
    damaged = rsa_leaf.cert_pem.replace(b"\n", b"\n!!", 2)
    assert "damaged CERTIFICATE block" in reject("certificate", damaged, rsa_leaf.key_pem())
    bad_der = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    assert "cannot be read" in reject("certificate", bad_der, rsa_leaf.key_pem())


def test_too_large(rsa_leaf: certs.Issued) -> None:
    huge = rsa_leaf.cert_pem + b" " * pem.MAX_FILE_BYTES
    assert reject("certificate", huge, rsa_leaf.key_pem()).startswith("is too large")


def test_too_many_certificates(rsa_leaf: certs.Issued) -> None:
    many = b"".join(
        certs.make_leaf(None, [f"n{i}.example"], key=rsa_leaf.key).cert_pem
        for i in range(pem.MAX_CERTIFICATES + 1)
    )
    assert "at most 20" in reject("certificate", many, rsa_leaf.key_pem())


def test_describe_and_missing_certificate(rsa_leaf: certs.Issued) -> None:
    assert pem.describe(rsa_leaf.chain_pem, "intermediate_certificate")["cn"] == (
        "Portway Test Intermediate CA"
    )
    with pytest.raises(PemError) as info:
        pem.parse(None, rsa_leaf.key_pem())  # type: ignore[arg-type]
    assert info.value.message == "data/certificate is required"


def test_combined_pem_in_both_fields(rsa_leaf: certs.Issued) -> None:
    """HAProxy-style bundles: key and certificates in one file, uploaded as both fields."""
    combined = rsa_leaf.key_pem("pkcs1") + rsa_leaf.fullchain_pem
    assert_normalised(pem.parse(combined, combined), rsa_leaf)
