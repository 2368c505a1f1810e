"""Backends by name: `@register_backend("tgi")` on a class, `create_backend("tgi", ...)` from
config, `parse_model_spec("hf-local:smollm2")` from a command line. Modules are imported lazily so
that, e.g., torch is loaded only for `hf-local`."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import ValidationError

from hyoka.orchestrator.backends.base import BackendConfigError, ModelBackend

B = TypeVar("B", bound=type[ModelBackend])

# name -> module that defines (and registers) it; imported on first use.
BACKEND_MODULES: dict[str, str] = {
    "tgi": "hyoka.orchestrator.backends.tgi",
    "openai-completions": "hyoka.orchestrator.backends.openai",
    "openai-chat": "hyoka.orchestrator.backends.openai",
    "hf-local": "hyoka.orchestrator.backends.hf_local",
    "scripted": "hyoka.orchestrator.backends.scripted",
}

# name -> the option that a model spec's target (`BACKEND:TARGET`) sets.
TARGET_OPTIONS: dict[str, str] = {
    "tgi": "base_url",
    "openai-completions": "base_url",
    "openai-chat": "base_url",
    "hf-local": "model",
    "scripted": "path",
}

_REGISTRY: dict[str, type[ModelBackend]] = {}


def register_backend(name: str) -> Callable[[B], B]:
    def decorate(cls: B) -> B:
        _REGISTRY[name] = cls
        return cls

    return decorate


class UnknownBackendError(BackendConfigError):
    pass


def backend_class(name: str) -> type[ModelBackend]:
    if name not in _REGISTRY:
        module = BACKEND_MODULES.get(name)
        if module is None:
            known = ", ".join(sorted(BACKEND_MODULES))
            raise UnknownBackendError(f"unknown backend {name!r}; known backends: {known}")
        importlib.import_module(module)
    return _REGISTRY[name]


#: Separates the URLs of replicas in a `base_url` (`tgi:http://gpu-1:8080+http://gpu-2:8080`).
REPLICA_SEPARATOR = "+"


def create_backend(name: str, **options: Any) -> ModelBackend:
    """Build backend `name` from its options; bad options raise BackendConfigError naming the option.
    A `base_url` listing several URLs joined by `+` gives a `ReplicaSet` of one backend per URL."""
    base_url = options.get("base_url")
    if isinstance(base_url, str) and REPLICA_SEPARATOR in base_url:
        from hyoka.orchestrator.backends.replicas import ReplicaSet

        urls = [u.strip() for u in base_url.split(REPLICA_SEPARATOR)]
        if any(not u for u in urls):
            raise BackendConfigError(
                f"backend {name!r}: base_url {base_url!r}: empty replica URL (join URLs with "
                f"{REPLICA_SEPARATOR!r}, e.g. http://gpu-1:8080{REPLICA_SEPARATOR}http://gpu-2:8080)"
            )
        if len(set(urls)) != len(urls):
            raise BackendConfigError(f"backend {name!r}: base_url {base_url!r}: a replica URL is given twice")
        return ReplicaSet([create_backend(name, **(options | {"base_url": u})) for u in urls], names=urls)
    cls = backend_class(name)
    try:
        return cls(**options)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(options)'}: {err['msg']}" for err in e.errors()
        )
        raise BackendConfigError(f"backend {name!r}: invalid options: {problems}") from e


def parse_model_spec(spec: str) -> tuple[str, dict[str, str]]:
    """`BACKEND[:TARGET][,KEY=VALUE...]` -> (backend name, options), e.g.

    - `hf-local:smollm2` (the default CPU model), `hf-local:/models/my-llama`
    - `tgi:http://gpu-1:8080`, `openai-completions:http://gpu-2:8000,model=llm-jp-3-13b,tokenizer=/tok`
    - `tgi:http://gpu-1:8080+http://gpu-2:8080` (replicas of one model; requests spread over them)
    - `scripted:answers.json`

    TARGET sets the backend's main option (`TARGET_OPTIONS`); values stay strings and are
    converted by the backend's typed config. The backend name is checked here, options by
    `create_backend`.
    """
    head, *pairs = spec.split(",")
    name, sep, target = head.partition(":")
    name = name.strip()
    if not name:
        raise BackendConfigError(f"model spec {spec!r}: expected BACKEND[:TARGET][,KEY=VALUE...]")
    if name not in BACKEND_MODULES:
        known = ", ".join(sorted(BACKEND_MODULES))
        raise UnknownBackendError(f"model spec {spec!r}: unknown backend {name!r}; known backends: {known}")
    options: dict[str, str] = {}
    if sep:
        if not target:
            raise BackendConfigError(f"model spec {spec!r}: empty target after {name + ':'!r}")
        options[TARGET_OPTIONS[name]] = target
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise BackendConfigError(f"model spec {spec!r}: expected KEY=VALUE, got {pair!r}")
        options[key.strip()] = value.strip()
    return name, options
