"""Sandbox runtimes: an interpreter plus a read-only package prefix that every sandbox of that
runtime sees.

A runtime is a directory `<runtimes dir>/<name>/` holding `runtime.json` (its manifest) and
`site-packages/` (the prefix, installed from a hash-checked lock with `pip install --no-deps
--target`, byte-compiled with unchecked-hash .pyc files so that imports never need to write).
Inside a sandbox the directory is bind-mounted read-only at /opt/hyoka-runtime and its
site-packages is appended to sys.path; the interpreter is the host's (under /usr, which every
sandbox sees read-only). `minimal` is built in: the interpreter and its standard library only.

The prefix's checksum (`tree_sha256`) is the sha256 of the listing "<sha256 of file>  <path>\\n"
of every file under site-packages, paths relative to it, sorted bytewise; the same value as
`cd site-packages && find . -type f -printf '%P\\0' | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum`.
The service computes it when it starts and reports it in GetSandboxInfo, every result and every
pass@k signature.

Standard library only: the sandbox image runs this file as a script, before hyoka is installed,
to build its runtimes in a layer of their own:
    python3 runtimes.py build requirements/sandbox-runtime-bigcode.txt --into /opt/hyoka-runtimes
(`hyoka-sandbox build-runtime` is the same command.)
"""

from __future__ import annotations

import argparse
import contextlib
import email.parser
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

FORMAT = 1
MANIFEST = "runtime.json"
SITE = "site-packages"
#: Where a runtime's directory appears inside every sandbox (read-only).
SANDBOX_ROOT = "/opt/hyoka-runtime"
SANDBOX_SITE = f"{SANDBOX_ROOT}/{SITE}"
MINIMAL = "minimal"
DEFAULT_RUNTIME = "bigcode-v202407"
RUNTIMES_ENV = "HYOKA_SANDBOX_RUNTIMES"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
PROBE_TIMEOUT_S = 30


class RuntimeUnavailable(Exception):
    """A runtime cannot be loaded or built."""


def default_python() -> str:
    """The interpreter run inside the sandbox: it must live under /usr, the only host tree the
    sandbox sees (read-only). /usr/local first (python:*-slim images), then Debian's."""
    for candidate in ("/usr/local/bin/python3", "/usr/bin/python3"):
        if Path(candidate).exists():
            return candidate
    return "/usr/bin/python3"


def default_runtimes_dir() -> Path:
    """$HYOKA_SANDBOX_RUNTIMES (the image sets /opt/hyoka-runtimes), else beside the service's
    own environment: `<venv>/hyoka-runtimes`, where scripts/setup.sh builds them."""
    env = os.environ.get(RUNTIMES_ENV)
    return Path(env) if env else Path(sys.prefix) / "hyoka-runtimes"


@dataclass(frozen=True)
class Runtime:
    name: str
    #: The interpreter, a path under /usr (the same inside the sandbox and on the host).
    python: str
    #: Its version as it reports it (platform.python_version()).
    python_version: str
    #: The runtime's directory on the host (runtime.json, site-packages/); None for `minimal`.
    root: Path | None = None
    #: tree_sha256 of site-packages as found when loaded (of nothing for `minimal`).
    sha256: str = hashlib.sha256(b"").hexdigest()
    packages: tuple[tuple[str, str], ...] = ()
    description: str = ""
    #: Where the package list comes from.
    source: str = ""
    #: How it differs from the environment it reproduces.
    deviation: str = ""
    lock_sha256: str = ""
    warnings: tuple[str, ...] = field(default=())

    @property
    def site(self) -> Path | None:
        return self.root / SITE if self.root is not None else None


def file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def tree_sha256(top: Path) -> str:
    """sha256 of the listing of every file under `top` with its own sha256 (see the module doc);
    a symbolic link is listed as "symlink:<target>"."""
    paths: list[str] = []
    for dirpath, dirnames, filenames in os.walk(top):
        names = filenames + [d for d in dirnames if Path(dirpath, d).is_symlink()]
        paths += [os.path.relpath(Path(dirpath, name), top) for name in names]
    listing = hashlib.sha256()
    for rel in sorted(paths, key=os.fsencode):
        path = top / rel
        digest = f"symlink:{path.readlink()}" if path.is_symlink() else file_sha256(path)
        listing.update(f"{digest}  {rel}\n".encode())
    return listing.hexdigest()


def python_version(python: str) -> str:
    """What `python` reports as its version; RuntimeUnavailable if it does not run."""
    try:
        done = subprocess.run(
            [python, "-I", "-S", "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            timeout=PROBE_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise RuntimeUnavailable(f"interpreter {python} does not run: {error}") from error
    version = done.stdout.decode().strip()
    if done.returncode != 0 or not version:
        raise RuntimeUnavailable(f"interpreter {python} does not run: {done.stderr.decode(errors='replace')[-300:]}")
    return version


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def check_interpreter(python: str) -> None:
    """A sandbox sees the host's /usr only: the interpreter must be there, links resolved."""
    resolved = Path(python).resolve()
    if not python.startswith("/usr/") or not str(resolved).startswith("/usr/"):
        raise RuntimeUnavailable(
            f"interpreter {python} ({resolved}) is not under /usr, the only host tree a sandbox sees"
        )


def minimal_runtime(python: str) -> Runtime:
    check_interpreter(python)
    return Runtime(
        name=MINIMAL,
        python=python,
        python_version=python_version(python),
        description="the sandbox's interpreter and its standard library, nothing else",
        source="the interpreter's standard library",
    )


def load_runtime(root: Path) -> Runtime:
    """Read a built runtime's manifest, check its interpreter and checksum its prefix."""
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise RuntimeUnavailable(f"{root / MANIFEST}: {error}") from error
    if manifest.get("format") != FORMAT:
        raise RuntimeUnavailable(f"{root / MANIFEST}: format {manifest.get('format')!r}, expected {FORMAT}; rebuild it")
    name = str(manifest["name"])
    python = str(manifest["python"])
    check_interpreter(python)
    version = python_version(python)
    if _minor(version) != _minor(str(manifest["python_version"])):
        raise RuntimeUnavailable(
            f"runtime {name} was built for Python {manifest['python_version']} but {python} is {version}; rebuild it"
        )
    site = root / SITE
    if not site.is_dir():
        raise RuntimeUnavailable(f"runtime {name}: {site} is missing")
    checksum = tree_sha256(site)
    warnings = []
    if checksum != manifest.get("sha256"):
        warnings.append(
            f"runtime {name}: {site} differs from what was built (sha256 {checksum}, built {manifest.get('sha256')}); "
            "results and signatures carry the sha256 found"
        )
    return Runtime(
        name=name,
        python=python,
        python_version=version,
        root=root,
        sha256=checksum,
        packages=tuple((str(n), str(v)) for n, v in manifest.get("packages", [])),
        description=str(manifest.get("description", "")),
        source=str(manifest.get("source", "")),
        deviation=str(manifest.get("deviation", "")),
        lock_sha256=str(manifest.get("lock_sha256", "")),
        warnings=tuple(warnings),
    )


def load_runtimes(directory: Path | None, python: str) -> dict[str, Runtime]:
    """`minimal` (on `python`) and every runtime built under `directory`, by name."""
    runtimes = {MINIMAL: minimal_runtime(python)}
    if directory is None or not directory.is_dir():
        return runtimes
    for manifest in sorted(directory.glob(f"*/{MANIFEST}")):
        if manifest.parent.name.startswith("."):
            continue  # a build in progress or an old copy being removed
        runtime = load_runtime(manifest.parent)
        if runtime.name in runtimes:
            raise RuntimeUnavailable(f"two runtimes named {runtime.name} (one in {manifest.parent})")
        runtimes[runtime.name] = runtime
    return runtimes


# --------------------------------------------------------------------------------------- build
def read_lock_meta(lock: Path) -> dict[str, str]:
    """The `#: key: value` lines of a runtime lock."""
    meta = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        if line.startswith("#:"):
            key, _, value = line[2:].partition(":")
            meta[key.strip()] = value.strip()
    return meta


def _installed(site: Path) -> list[tuple[str, str]]:
    found = []
    for metadata in site.glob("*.dist-info/METADATA"):
        headers = email.parser.HeaderParser().parsestr(metadata.read_text(encoding="utf-8", errors="replace"))
        found.append((str(headers["Name"]), str(headers["Version"])))
    return sorted(found, key=lambda item: item[0].lower())


def _open_up(top: Path) -> None:
    """Readable by everyone (sandboxes run as another uid), writable by the owner only."""
    for dirpath, dirnames, filenames in os.walk(top):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath, name)
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                continue
            wanted = (stat.S_IMODE(mode) | 0o444 | (0o111 if stat.S_ISDIR(mode) or mode & 0o100 else 0)) & ~0o022
            path.chmod(wanted)
    top.chmod(0o755)


def build_runtime(
    lock: Path, into: Path, python: str, *, force: bool = False, say: Callable[[str], None] = print
) -> Path:
    """Build the runtime a lock describes into `into/<name>/` (pip from this interpreter's
    environment, .pyc files compiled by `python`). Does nothing when the runtime there was built
    from the same lock for the same interpreter, unless `force`."""
    meta = read_lock_meta(lock)
    name = meta.get("name", "")
    if not NAME_PATTERN.match(name) or name == MINIMAL:
        raise RuntimeUnavailable(f"{lock}: '#: name:' must be a runtime name other than {MINIMAL!r}, got {name!r}")
    check_interpreter(python)
    version = python_version(python)
    wanted = meta.get("python", "")
    if wanted and _minor(version) != wanted:
        raise RuntimeUnavailable(f"{lock} pins packages for Python {wanted}; {python} is {version}")
    lock_sha256 = file_sha256(lock)
    dest = into / name
    with contextlib.suppress(OSError, ValueError):
        built = json.loads((dest / MANIFEST).read_text(encoding="utf-8"))
        same = (built.get("format"), built.get("lock_sha256"), built.get("python"), built.get("python_version"))
        if not force and same == (FORMAT, lock_sha256, python, version) and (dest / SITE).is_dir():
            say(f"runtime {name} is up to date in {dest}")
            return dest
    into.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}.build-", dir=into))
    try:
        site = work / SITE
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input"]
        pip += ["--no-deps", "--only-binary=:all:", "--require-hashes", "--no-compile", "--target", str(site)]
        if _minor(version) != _minor(".".join(map(str, sys.version_info[:3]))):
            tag = _minor(version).replace(".", "")
            pip += ["--python-version", _minor(version), "--implementation", "cp", "--abi", f"cp{tag}"]
        say(f"runtime {name}: installing {lock} into {site}")
        subprocess.run([*pip, "-r", str(lock)], check=True)
        # Console scripts go: their #! names this builder's interpreter. So do their lines in the
        # RECORD files (paths outside the prefix), which would make the checksum the builder's.
        shutil.rmtree(site / "bin", ignore_errors=True)
        for record in site.glob("*.dist-info/RECORD"):
            lines = record.read_text(encoding="utf-8").splitlines(keepends=True)
            record.write_text("".join(line for line in lines if not line.startswith("../")), encoding="utf-8")
        for cache in sorted(site.rglob("__pycache__"), reverse=True):
            shutil.rmtree(cache)
        # The prefix is read-only in the sandbox: every module is compiled here, with .pyc files
        # the interpreter trusts without reading the source (unchecked-hash), naming the source
        # by its path in the sandbox, and reproducibly (a fixed hash seed keeps set constants in
        # one order): the same lock and interpreter give the same checksum.
        say(f"runtime {name}: compiling with {python}")
        compileall = [python, "-s", "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash"]
        subprocess.run(
            [*compileall, "-s", str(site), "-p", SANDBOX_SITE, str(site)],
            check=False,
            env={"PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "0", "LANG": "C.UTF-8"},
            stdout=subprocess.DEVNULL,
        )
        _open_up(work)
        checksum = tree_sha256(site)
        packages = _installed(site)
        manifest = {
            "format": FORMAT,
            "name": name,
            "description": meta.get("description", ""),
            "source": meta.get("source", ""),
            "deviation": meta.get("deviation", ""),
            "python": python,
            "python_version": version,
            "lock": lock.name,
            "lock_sha256": lock_sha256,
            "sha256": checksum,
            "packages": packages,
        }
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        (work / MANIFEST).chmod(0o644)
        old = into / f".{name}.old-{os.getpid()}"
        if dest.exists():
            dest.rename(old)
        work.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    say(f"runtime {name}: built in {dest} ({len(packages)} packages, sha256 {checksum})")
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="runtimes.py", description="Build a sandbox runtime from its lock.")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build (or check up to date) the runtime a lock describes")
    build.add_argument("lock", type=Path)
    build.add_argument(
        "--into", type=Path, default=None, help=f"runtimes directory (default ${RUNTIMES_ENV} or <venv>/hyoka-runtimes)"
    )
    build.add_argument("--python", default=None, help="the sandbox's interpreter (default: as the service picks it)")
    build.add_argument("--force", action="store_true", help="rebuild even when up to date")
    args = parser.parse_args(argv)
    try:
        build_runtime(args.lock, args.into or default_runtimes_dir(), args.python or default_python(), force=args.force)
    except (RuntimeUnavailable, subprocess.CalledProcessError, OSError) as error:
        print(f"build-runtime: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
