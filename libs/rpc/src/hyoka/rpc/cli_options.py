"""The TLS options of hyoka's command lines, declared once (typer; the `cli` extra of hyoka-rpc).

A server command takes

    tls_cert: ServerTLSCert = None, tls_key: ServerTLSKey = None,
    tls_client_ca: ServerTLSClientCA = None, health_port: HealthPort = None

and calls `server_tls_or_exit(tls_cert, tls_key, tls_client_ca)`; a client command takes
`ClientTLSCA`, `ClientTLSCert`, `ClientTLSKey`, `ClientTLSServerName` and calls
`client_tls_or_exit(...)`. Flags: --tls-cert, --tls-key, --tls-client-ca, --health-port (servers;
environment SERVER_ENV) and --tls-ca, --tls-client-cert, --tls-client-key, --tls-server-name
(clients; environment CLIENT_ENV).

`hyoka serve` and `hyoka eval` spell the same options out instead: importing this module imports
grpc (hyoka.rpc), which `hyoka --help` does not load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer

from hyoka.rpc.tls import CLIENT_ENV, SERVER_ENV, ClientTLS, ServerTLS, TLSConfigError

_PANEL = "Transport security"

ServerTLSCert = Annotated[
    Path | None,
    typer.Option(
        "--tls-cert", envvar=SERVER_ENV["cert"], help="PEM certificate chain: serve TLS only.", rich_help_panel=_PANEL
    ),
]
ServerTLSKey = Annotated[
    Path | None,
    typer.Option("--tls-key", envvar=SERVER_ENV["key"], help="PEM private key of --tls-cert.", rich_help_panel=_PANEL),
]
ServerTLSClientCA = Annotated[
    Path | None,
    typer.Option(
        "--tls-client-ca",
        envvar=SERVER_ENV["client_ca"],
        help="PEM CA bundle: require client certificates it signed (mTLS).",
        rich_help_panel=_PANEL,
    ),
]
HealthPort = Annotated[
    int | None,
    typer.Option(
        "--health-port",
        envvar=SERVER_ENV["health_port"],
        min=0,
        max=65535,
        help="Also serve health alone, in plaintext, here (for probes that cannot present a certificate).",
        rich_help_panel=_PANEL,
    ),
]

ClientTLSCA = Annotated[
    Path | None,
    typer.Option(
        "--tls-ca",
        envvar=CLIENT_ENV["ca"],
        help="PEM CA bundle the servers' certificates must chain to: connect with TLS.",
        rich_help_panel=_PANEL,
    ),
]
ClientTLSCert = Annotated[
    Path | None,
    typer.Option(
        "--tls-client-cert",
        envvar=CLIENT_ENV["cert"],
        help="PEM client certificate, for servers that require one (mTLS).",
        rich_help_panel=_PANEL,
    ),
]
ClientTLSKey = Annotated[
    Path | None,
    typer.Option(
        "--tls-client-key",
        envvar=CLIENT_ENV["key"],
        help="PEM private key of --tls-client-cert.",
        rich_help_panel=_PANEL,
    ),
]
ClientTLSServerName = Annotated[
    str | None,
    typer.Option(
        "--tls-server-name",
        envvar=CLIENT_ENV["server_name"],
        help="Check the servers' certificates against this name instead of the URL's host.",
        rich_help_panel=_PANEL,
    ),
]


def _exit(error: TLSConfigError) -> NoReturn:
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(2)


def server_tls_or_exit(cert: Path | None, key: Path | None, client_ca: Path | None) -> ServerTLS | None:
    """The server's TLS settings with their files read now; a bad combination or an unreadable
    file is a usage error (exit code 2, one line naming the flag), not a traceback."""
    try:
        tls = ServerTLS.from_paths(cert, key, client_ca)
        return tls.check() if tls is not None else None
    except TLSConfigError as error:
        _exit(error)


def client_tls_or_exit(
    ca: Path | None, cert: Path | None, key: Path | None, server_name: str | None
) -> ClientTLS | None:
    """The client's TLS settings (None: plaintext) with their files read now; errors as above."""
    try:
        tls = ClientTLS.from_paths(ca, cert, key, server_name)
        return tls.check() if tls is not None else None
    except TLSConfigError as error:
        _exit(error)
