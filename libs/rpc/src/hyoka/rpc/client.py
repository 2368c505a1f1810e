"""Client channels for hyoka services: retries on UNAVAILABLE (from the channel's service
config, as gRPC recommends), message limits matching the servers, an optional bearer token
added to every call's metadata, and optional TLS (`ClientTLS`: a CA, a client certificate for
servers that require one). Callers still pass a deadline (`timeout=`) on every call."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

from hyoka.rpc.server import DEFAULT_MAX_MESSAGE_BYTES
from hyoka.rpc.tls import ClientTLS

RETRY_SERVICE_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{}],  # every method of every service
                "retryPolicy": {
                    "maxAttempts": 4,
                    "initialBackoff": "0.1s",
                    "maxBackoff": "2s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)


@dataclass(frozen=True)
class ChannelConfig:
    target: str
    auth_token: str | None = None
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    #: None: plaintext; else TLS with these settings (ClientTLS(): the system's roots, no client cert).
    tls: ClientTLS | None = None

    def options(self) -> list[tuple[str, Any]]:
        return [
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.max_send_message_length", self.max_message_bytes),
            ("grpc.enable_retries", 1),
            ("grpc.service_config", RETRY_SERVICE_CONFIG),
            *(self.tls.options() if self.tls is not None else ()),
        ]


def _with_token(metadata: Any, token: str) -> tuple[tuple[str, str | bytes], ...]:
    return (*(metadata or ()), ("authorization", f"Bearer {token}"))


def _aio_with_token(metadata: grpc.aio.Metadata | None, token: str) -> grpc.aio.Metadata:
    # aio streaming calls need a Metadata object; a plain tuple is silently dropped there.
    return grpc.aio.Metadata(*_with_token(metadata, token))


class _AioTokenMixin:
    def __init__(self, token: str) -> None:
        self._token = token

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        return grpc.aio.ClientCallDetails(
            details.method,
            details.timeout,
            _aio_with_token(details.metadata, self._token),
            details.credentials,
            details.wait_for_ready,
        )


# grpc.aio files each interceptor under the first call shape it matches (an if/elif chain), so one
# class implementing all four shapes would only ever see unary-unary calls: one class per shape.
class _AioUnaryUnaryToken(_AioTokenMixin, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _AioUnaryStreamToken(_AioTokenMixin, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _AioStreamUnaryToken(_AioTokenMixin, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation: Callable[..., Any], details: Any, requests: Any) -> Any:
        return await continuation(self._details(details), requests)


class _AioStreamStreamToken(_AioTokenMixin, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation: Callable[..., Any], details: Any, requests: Any) -> Any:
        return await continuation(self._details(details), requests)


class _SyncTokenInterceptor(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    def __init__(self, token: str) -> None:
        self._token = token

    def _details(self, details: Any) -> Any:
        return _SyncCallDetails(
            details.method,
            details.timeout,
            _with_token(details.metadata, self._token),
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)


@dataclass(frozen=True)
class _SyncCallDetails(grpc.ClientCallDetails):
    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: bool | None
    compression: Any


def aio_channel(config: ChannelConfig) -> grpc.aio.Channel:
    interceptors = None
    if config.auth_token:
        shapes = (_AioUnaryUnaryToken, _AioUnaryStreamToken, _AioStreamUnaryToken, _AioStreamStreamToken)
        interceptors = [shape(config.auth_token) for shape in shapes]
    if config.tls is not None:
        return grpc.aio.secure_channel(
            config.target, config.tls.credentials(), options=config.options(), interceptors=interceptors
        )
    return grpc.aio.insecure_channel(config.target, options=config.options(), interceptors=interceptors)


def sync_channel(config: ChannelConfig) -> grpc.Channel:
    if config.tls is not None:
        channel = grpc.secure_channel(config.target, config.tls.credentials(), options=config.options())
    else:
        channel = grpc.insecure_channel(config.target, options=config.options())
    if config.auth_token:
        return grpc.intercept_channel(channel, _SyncTokenInterceptor(config.auth_token))
    return channel
