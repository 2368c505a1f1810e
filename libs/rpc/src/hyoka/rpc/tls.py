"""Optional transport security for hyoka's servers and clients: TLS, and mutual TLS when the
server is given a client CA.

A server with `ServerTLS(cert, key)` speaks TLS only (plaintext connections fail the handshake);
with `client_ca` too it requires every client to present a certificate signed by that CA (mTLS).
Client certificates are checked during the handshake, for the whole connection: health checks on
that port need one as well. Probes that cannot do TLS (Kubernetes' built-in gRPC probe) use the
server's plaintext health-only port (`ServerConfig.health_port`). The bearer token, when set, is
checked on top of TLS for every method but health.

Flags and environment variables are the same for every hyoka server (`hyoka serve`,
`hyoka-metrics serve`, `hyoka-sandbox serve`): SERVER_ENV below; clients (`hyoka eval`, and
`hyoka serve` for its runs' services) read CLIENT_ENV. The typer options: hyoka.rpc.cli_options.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc

#: Server settings: PEM certificate chain, its private key, and the CA that client certificates
#: must chain to (set: clients must present one), plus the plaintext health-only port.
SERVER_ENV = {
    "cert": "HYOKA_TLS_CERT",
    "key": "HYOKA_TLS_KEY",
    "client_ca": "HYOKA_TLS_CLIENT_CA",
    "health_port": "HYOKA_HEALTH_PORT",
}
#: Client settings: the CA that server certificates must chain to (unset: the system's roots), the
#: client's own certificate and key (for servers that require one), and a name to check the server
#: certificate against instead of the target's host (tests, or an address that is not in the cert).
CLIENT_ENV = {
    "ca": "HYOKA_TLS_CA",
    "cert": "HYOKA_TLS_CLIENT_CERT",
    "key": "HYOKA_TLS_CLIENT_KEY",
    "server_name": "HYOKA_TLS_SERVER_NAME",
}


class TLSConfigError(ValueError):
    """Inconsistent or unreadable TLS settings (the message names the flag-like setting)."""


def _read(path: Path, what: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise TLSConfigError(f"{what} {path}: cannot be read ({error.strerror or error})") from None
    if b"-----BEGIN " not in data:
        raise TLSConfigError(f"{what} {path}: not a PEM file")
    return data


def _path(value: str | os.PathLike[str] | None) -> Path | None:
    return Path(value) if value else None


@dataclass(frozen=True)
class ServerTLS:
    """A server's certificate chain and key (PEM files); `client_ca` set: mutual TLS."""

    cert: Path
    key: Path
    client_ca: Path | None = None

    @classmethod
    def from_paths(
        cls,
        cert: str | os.PathLike[str] | None,
        key: str | os.PathLike[str] | None,
        client_ca: str | os.PathLike[str] | None = None,
    ) -> ServerTLS | None:
        """The settings of `--tls-cert/--tls-key/--tls-client-ca`: None when none is given (a
        plaintext server); certificate and key come together; a client CA needs both."""
        cert_path, key_path, ca_path = _path(cert), _path(key), _path(client_ca)
        if cert_path is None and key_path is None:
            if ca_path is not None:
                raise TLSConfigError("--tls-client-ca needs --tls-cert and --tls-key (mutual TLS is TLS first)")
            return None
        if cert_path is None or key_path is None:
            raise TLSConfigError("--tls-cert and --tls-key go together")
        return cls(cert_path, key_path, ca_path)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServerTLS | None:
        env = os.environ if environ is None else environ
        return cls.from_paths(*(env.get(SERVER_ENV[name]) for name in ("cert", "key", "client_ca")))

    @property
    def mutual(self) -> bool:
        return self.client_ca is not None

    def check(self) -> ServerTLS:
        """Read the files now (TLSConfigError naming the flag if one is missing or not PEM), so
        that a CLI can report a bad path as a usage error before it starts anything."""
        self.credentials()
        return self

    def credentials(self) -> grpc.ServerCredentials:
        """Server credentials; the files are read now, so a bad path fails at start-up."""
        pair = (_read(self.key, "--tls-key"), _read(self.cert, "--tls-cert"))
        client_ca = _read(self.client_ca, "--tls-client-ca") if self.client_ca is not None else None
        return grpc.ssl_server_credentials([pair], root_certificates=client_ca, require_client_auth=self.mutual)


@dataclass(frozen=True)
class ClientTLS:
    """A client's TLS settings. `ClientTLS()`: TLS checked against the system's roots, no client
    certificate; `ca` for a private CA; `cert` + `key` for servers that require client certs."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    server_name: str | None = None

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise TLSConfigError("--tls-client-cert and --tls-client-key go together")

    @classmethod
    def from_paths(
        cls,
        ca: str | os.PathLike[str] | None = None,
        cert: str | os.PathLike[str] | None = None,
        key: str | os.PathLike[str] | None = None,
        server_name: str | None = None,
        *,
        enabled: bool = False,
    ) -> ClientTLS | None:
        """None (plaintext) unless `enabled` or any setting is given."""
        if not (enabled or ca or cert or key or server_name):
            return None
        return cls(_path(ca), _path(cert), _path(key), server_name or None)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ClientTLS | None:
        env = os.environ if environ is None else environ
        return cls.from_paths(*(env.get(CLIENT_ENV[name]) for name in ("ca", "cert", "key", "server_name")))

    def check(self) -> ClientTLS:
        """Read the files now (TLSConfigError naming the flag if one is missing or not PEM)."""
        self.credentials()
        return self

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.ca, "--tls-ca") if self.ca is not None else None,
            private_key=_read(self.key, "--tls-client-key") if self.key is not None else None,
            certificate_chain=_read(self.cert, "--tls-client-cert") if self.cert is not None else None,
        )

    def options(self) -> list[tuple[str, str]]:
        return [("grpc.ssl_target_name_override", self.server_name)] if self.server_name else []
