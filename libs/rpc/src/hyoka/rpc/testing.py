"""Test certificates for TLS and mTLS tests: a throw-away CA, a server certificate for localhost
and 127.0.0.1, and client certificates, written as PEM files. Needs `cryptography` (a test
dependency, requirements/dev.txt); nothing in the services imports this module.

    pki = make_test_pki(tmp_path)
    ServerConfig(tls=pki.server_tls())                     # mutual TLS
    ChannelConfig(target, tls=pki.client_tls())            # a client with a certificate
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hyoka.rpc.tls import ClientTLS, ServerTLS

SERVER_NAME = "localhost"


@dataclass(frozen=True)
class TestPKI:
    """PEM files: `ca` signed the server and `client` certificates; `rogue_ca` signed
    `rogue_client` (a well-formed client certificate the server must not accept)."""

    __test__ = False  # not a pytest test class

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_ca: Path
    rogue_client_cert: Path
    rogue_client_key: Path

    def server_tls(self, *, mutual: bool = True) -> ServerTLS:
        return ServerTLS(self.server_cert, self.server_key, self.ca if mutual else None)

    def client_tls(self, *, with_cert: bool = True, rogue: bool = False) -> ClientTLS:
        if rogue:
            return ClientTLS(self.ca, self.rogue_client_cert, self.rogue_client_key)
        if with_cert:
            return ClientTLS(self.ca, self.client_cert, self.client_key)
        return ClientTLS(self.ca)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _builder(subject: str, issuer: x509.Name, key: ec.EllipticCurvePrivateKey) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )


def _ca(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    cert = (
        _builder(common_name, _name(common_name), key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
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
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(
    common_name: str,
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    usage: x509.ObjectIdentifier,
    names: list[x509.GeneralName],
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    builder = (
        _builder(common_name, ca[0].subject, key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca[1], hashes.SHA256()), key


def _write(directory: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey | None) -> Path:
    cert_path = directory / f"{stem}.crt"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        key_path = directory / f"{stem}.key"
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        key_path.chmod(0o600)
    return cert_path


def make_test_pki(directory: Path, server_names: Sequence[str] = ()) -> TestPKI:
    """Write a CA, a server certificate (localhost, 127.0.0.1, ::1, and `server_names`: e.g. the
    service names of a compose stack) and client certificates into `directory`, valid for a day."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = _ca("hyoka test CA")
    server = _leaf(
        SERVER_NAME,
        ca,
        ExtendedKeyUsageOID.SERVER_AUTH,
        [
            x509.DNSName(SERVER_NAME),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
            *(x509.DNSName(name) for name in server_names),
        ],
    )
    client = _leaf("hyoka test client", ca, ExtendedKeyUsageOID.CLIENT_AUTH, [])
    rogue_ca = _ca("someone else's CA")
    rogue = _leaf("hyoka test client", rogue_ca, ExtendedKeyUsageOID.CLIENT_AUTH, [])
    return TestPKI(
        ca=_write(directory, "ca", ca[0], None),
        server_cert=_write(directory, "server", *server),
        server_key=directory / "server.key",
        client_cert=_write(directory, "client", *client),
        client_key=directory / "client.key",
        rogue_ca=_write(directory, "rogue-ca", rogue_ca[0], None),
        rogue_client_cert=_write(directory, "rogue-client", *rogue),
        rogue_client_key=directory / "rogue-client.key",
    )
