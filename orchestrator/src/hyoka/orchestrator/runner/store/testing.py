"""A throwaway PostgreSQL server for tests: `initdb` in a temporary folder, `pg_ctl start` on a
free loopback port (trust authentication, user `postgres`), stopped and deleted on exit.

    with TempPostgres() as pg:
        url = pg.create_database("t1")  # postgresql://postgres@127.0.0.1:PORT/t1

The server binaries come from $HYOKA_PG_BIN, else the newest /usr/lib/postgresql/*/bin (Debian's
`postgresql` package), else PATH. PostgreSQL refuses to run as root: as root, the server runs as
the unprivileged user `nobody` (via setpriv) and owns its temporary folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self


class PostgresUnavailableError(RuntimeError):
    """No PostgreSQL server binaries, or the server did not start."""


def find_pg_bin() -> Path:
    env = os.environ.get("HYOKA_PG_BIN")
    if env:
        if (Path(env) / "initdb").is_file():
            return Path(env)
        raise PostgresUnavailableError(f"HYOKA_PG_BIN={env} holds no initdb")
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1].parent
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise PostgresUnavailableError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: install the `postgresql` package "
        "(apt-get install postgresql; scripts/setup.sh all does, as root) or set HYOKA_PG_BIN"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TempPostgres:
    def __init__(self, *, user: str = "postgres") -> None:
        self.bin = find_pg_bin()
        self.user = user
        self.port = 0
        self.host = "127.0.0.1"
        self._dir: Path | None = None
        self._prefix: list[str] = []
        self._started = False

    @property
    def data(self) -> Path:
        assert self._dir is not None
        return self._dir / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cmd = [*self._prefix, *args]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise PostgresUnavailableError(
                f"{' '.join(args[:2])} failed ({result.returncode}): {(result.stderr or result.stdout).strip()}"
            )
        return result

    def start(self) -> Self:
        self._dir = Path(tempfile.mkdtemp(prefix="hyoka-pg-"))
        self._dir.chmod(0o755)
        if os.geteuid() == 0:  # initdb and postgres refuse root
            import pwd

            account = pwd.getpwnam("nobody")
            os.chown(self._dir, account.pw_uid, account.pw_gid)
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                raise PostgresUnavailableError("running as root and setpriv (util-linux) is missing")
            self._prefix = [
                setpriv,
                f"--reuid={account.pw_uid}",
                f"--regid={account.pw_gid}",
                "--clear-groups",
                "--",
                "env",
                f"HOME={self._dir}",
            ]
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            self.user,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        for _attempt in range(5):
            self.port = _free_port()
            options = (
                f"-k {self._dir} -p {self.port} -c listen_addresses={self.host} -c fsync=off -c max_connections=200"
            )
            try:
                self._run(
                    str(self.bin / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-l",
                    str(self._dir / "server.log"),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    "60",
                    "start",
                )
            except PostgresUnavailableError as e:
                log = self._dir / "server.log"
                if log.exists() and "could not bind" in log.read_text(errors="replace"):
                    continue  # the port was taken meanwhile: another one
                self.stop()
                raise PostgresUnavailableError(f"{e}; log: {self._log_tail()}") from e
            self._started = True
            return self
        self.stop()
        raise PostgresUnavailableError(f"PostgreSQL did not start: {self._log_tail()}")

    def _log_tail(self) -> str:
        log = self._dir / "server.log" if self._dir else None
        if log is None or not log.exists():
            return "(no log)"
        return " | ".join(log.read_text(errors="replace").strip().splitlines()[-5:])

    def create_database(self, name: str) -> str:
        """Create database `name` (a fresh one per test); its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
        return self.url(name)

    def stop(self) -> None:
        if self._started:
            self._started = False
            with contextlib.suppress(PostgresUnavailableError, subprocess.TimeoutExpired):
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=60)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
