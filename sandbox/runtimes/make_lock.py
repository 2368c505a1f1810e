"""Pin a sandbox runtime's package list into a hash-checked lock file.

    .venv/bin/python sandbox/runtimes/make_lock.py sandbox/runtimes/bigcode-v202407.in \
        requirements/sandbox-runtime-bigcode.txt

For every requirement of the list (one per line, `# why` comments kept), picks the newest final
release uploaded to PyPI on or before the list's `#: resolved-as-of:` date that satisfies the
requirement and has a wheel for CPython `#: python:` on manylinux x86_64 and aarch64 (or a pure
wheel), and writes `name==version` with the sha256 of each of those wheels. The list's `#: key:
value` lines are copied into the lock's header, where `hyoka-sandbox build-runtime` reads them.
Reads PyPI's JSON simple API (PEP 691 / PEP 700); run it only to change the list.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

INDEX = "https://pypi.org/simple/{}/"
ARCHES = ("x86_64", "aarch64")


@dataclass(frozen=True)
class Wheel:
    filename: str
    sha256: str
    uploaded: str


def fetch(name: str) -> list[dict[str, object]]:
    request = urllib.request.Request(INDEX.format(name), headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=120) as reply:
        files: list[dict[str, object]] = json.load(reply)["files"]
    return files


def fits(filename: str, python: tuple[int, int]) -> str | None:
    """'any' for a pure wheel, the architecture for a manylinux CPython wheel this Python can
    load, else None."""
    try:
        _, _, _, tags = parse_wheel_filename(filename)
    except ValueError:
        return None
    cp = f"cp{python[0]}{python[1]}"
    for tag in tags:
        if tag.platform == "any" and tag.abi == "none" and tag.interpreter in ("py3", f"py{python[0]}{python[1]}"):
            return "any"
        if not tag.platform.startswith("manylinux"):
            continue
        arch = next((a for a in ARCHES if tag.platform.endswith("_" + a)), None)
        if arch is None:
            continue
        if tag.interpreter == cp and tag.abi in (cp, "none"):
            return arch
        if tag.abi == "abi3" and re.fullmatch(r"cp3\d+", tag.interpreter) and int(tag.interpreter[3:]) <= python[1]:
            return arch
    return None


def pin(requirement: Requirement, cutoff: str, python: tuple[int, int]) -> tuple[Version, list[Wheel]]:
    by_version: dict[Version, list[tuple[str, Wheel]]] = {}
    for entry in fetch(canonicalize_name(requirement.name)):
        filename = str(entry["filename"])
        uploaded = str(entry.get("upload-time", ""))
        if not filename.endswith(".whl") or not uploaded or uploaded[:10] > cutoff or entry.get("yanked"):
            continue
        kind = fits(filename, python)
        if kind is None:
            continue
        try:
            version = parse_wheel_filename(filename)[1]
        except (ValueError, InvalidVersion):
            continue
        if version.is_prerelease or version not in requirement.specifier:
            continue
        digest = str(dict(entry["hashes"])["sha256"])  # type: ignore[call-overload]
        by_version.setdefault(version, []).append((kind, Wheel(filename, digest, uploaded)))
    for version in sorted(by_version, reverse=True):
        kinds = {kind for kind, _ in by_version[version]}
        if "any" in kinds or all(arch in kinds for arch in ARCHES):
            return version, sorted((w for _, w in by_version[version]), key=lambda w: w.filename)
    raise SystemExit(f"{requirement}: no release on or before {cutoff} with wheels for CPython {python}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("package_list", type=Path)
    parser.add_argument("lock", type=Path)
    args = parser.parse_args()
    lines = args.package_list.read_text(encoding="utf-8").splitlines()
    meta = dict(
        (key.strip(), value.strip())
        for key, _, value in (line[2:].partition(":") for line in lines if line.startswith("#:"))
    )
    cutoff = meta["resolved-as-of"]
    dt.date.fromisoformat(cutoff)
    major, minor = (int(x) for x in meta["python"].split("."))
    out = [
        f"# The sandbox runtime {meta['name']!r}: every package pinned, with the sha256 of its wheels for",
        f"# CPython {major}.{minor} (manylinux x86_64 and aarch64). Generated from {args.package_list.as_posix()}",
        "# (which says where the list comes from and what was left out) by sandbox/runtimes/make_lock.py;",
        "# built with `hyoka-sandbox build-runtime` (pip install --require-hashes --no-deps --target).",
        *[line for line in lines if line.startswith("#:")],
        "",
    ]
    for line in lines:
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        why = line.split("#", 1)[1].strip() if "#" in line else ""
        requirement = Requirement(text)
        version, wheels = pin(requirement, cutoff, (major, minor))
        released = min(w.uploaded for w in wheels)[:10]
        print(f"{requirement.name}=={version} ({released})", file=sys.stderr)
        out.append(f"# {requirement.name}: {why}; released {released}" if why else f"# released {released}")
        out.append(f"{canonicalize_name(requirement.name)}=={version} \\")
        hashes = sorted({w.sha256 for w in wheels})
        out += [f"    --hash=sha256:{h}" + (" \\" if i < len(hashes) - 1 else "") for i, h in enumerate(hashes)]
    args.lock.write_text("\n".join(out) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
