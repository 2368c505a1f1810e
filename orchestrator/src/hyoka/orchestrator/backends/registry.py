"""Backends by name: `@register_backend("tgi")` on a class, `create_backend("tgi", ...)` from
config. Modules are imported lazily so that, e.g., torch is loaded only for `hf-local`."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, TypeVar

from hyoka.orchestrator.backends.base import ModelBackend

B = TypeVar("B", bound=type[ModelBackend])

# name -> module that defines (and registers) it; imported on first use.
BACKEND_MODULES: dict[str, str] = {
    "tgi": "hyoka.orchestrator.backends.tgi",
    "openai-completions": "hyoka.orchestrator.backends.openai",
    "openai-chat": "hyoka.orchestrator.backends.openai",
    "hf-local": "hyoka.orchestrator.backends.hf_local",
    "scripted": "hyoka.orchestrator.backends.scripted",
}

_REGISTRY: dict[str, type[ModelBackend]] = {}


def register_backend(name: str) -> Callable[[B], B]:
    def decorate(cls: B) -> B:
        _REGISTRY[name] = cls
        return cls

    return decorate


class UnknownBackendError(ValueError):
    pass


def backend_class(name: str) -> type[ModelBackend]:
    if name not in _REGISTRY:
        module = BACKEND_MODULES.get(name)
        if module is None:
            known = ", ".join(sorted(BACKEND_MODULES))
            raise UnknownBackendError(f"unknown backend {name!r}; known backends: {known}")
        importlib.import_module(module)
    return _REGISTRY[name]


def create_backend(name: str, **options: Any) -> ModelBackend:
    return backend_class(name)(**options)
