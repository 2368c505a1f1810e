"""Typed resource policy of one run, and its validation against the server's maxima."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from hyoka.rpc.errors import InvalidArgument

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What one run may use. Every field is a positive integer once resolved; 0 means "unset"
    (take the next layer's value) while requests are being merged."""

    wall_time_ms: int = 0
    cpu_time_ms: int = 0
    memory_bytes: int = 0
    max_processes: int = 0
    max_output_bytes: int = 0
    max_file_bytes: int = 0
    scratch_bytes: int = 0

    def over(self, base: Limits) -> Limits:
        """These limits with every unset (0) field taken from `base`."""
        return replace(self, **{f.name: getattr(self, f.name) or getattr(base, f.name) for f in fields(self)})

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


DEFAULT_LIMITS = Limits(
    wall_time_ms=10_000,
    cpu_time_ms=10_000,
    memory_bytes=512 * MIB,
    max_processes=32,
    max_output_bytes=1 * MIB,
    max_file_bytes=16 * MIB,
    scratch_bytes=32 * MIB,
)

MAX_LIMITS = Limits(
    wall_time_ms=60_000,
    cpu_time_ms=60_000,
    memory_bytes=2048 * MIB,
    max_processes=256,
    max_output_bytes=16 * MIB,
    max_file_bytes=256 * MIB,
    scratch_bytes=256 * MIB,
)

# The smallest values that still let a Python interpreter start inside the sandbox.
MIN_LIMITS = Limits(
    wall_time_ms=1,
    cpu_time_ms=1,
    memory_bytes=64 * MIB,
    max_processes=1,
    max_output_bytes=1,
    max_file_bytes=1,
    scratch_bytes=1 * MIB,
)


def violations(requested: Limits, maximum: Limits, prefix: str) -> list[tuple[str, str]]:
    """Field violations of requested limits (0 = unset is fine), named `<prefix>.<field>`."""
    found: list[tuple[str, str]] = []
    for f in fields(requested):
        value = getattr(requested, f.name)
        top = getattr(maximum, f.name)
        low = getattr(MIN_LIMITS, f.name)
        name = f"{prefix}.{f.name}"
        if value < 0:
            found.append((name, f"must not be negative (got {value}; 0 means the server default)"))
        elif value > top:
            found.append((name, f"{value} is above the server's maximum of {top}"))
        elif 0 < value < low:
            found.append((name, f"{value} is below the minimum of {low}"))
    return found


def check(requested: Limits, maximum: Limits, prefix: str) -> None:
    found = violations(requested, maximum, prefix)
    if found:
        raise InvalidArgument.of(found)
