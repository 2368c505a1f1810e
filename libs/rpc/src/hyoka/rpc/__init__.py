"""gRPC plumbing shared by every hyoka service: server bootstrap (health, reflection, auth,
limits, optional TLS/mTLS), client channels (deadlines, retries on UNAVAILABLE, bearer token,
optional TLS) and the error convention (google.rpc.BadRequest details naming the offending field)."""

from hyoka.rpc.client import ChannelConfig, aio_channel, sync_channel
from hyoka.rpc.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    ServiceError,
    field_violations,
    handle_errors,
)
from hyoka.rpc.server import (
    RunningServer,
    ServerConfig,
    ServiceRegistration,
    free_port,
    serve_forever,
    start_server,
)
from hyoka.rpc.tls import ClientTLS, ServerTLS, TLSConfigError

__all__ = [
    "ChannelConfig",
    "ClientTLS",
    "FailedPrecondition",
    "InvalidArgument",
    "NotFound",
    "ResourceExhausted",
    "RunningServer",
    "ServerConfig",
    "ServerTLS",
    "ServiceError",
    "ServiceRegistration",
    "TLSConfigError",
    "aio_channel",
    "field_violations",
    "free_port",
    "handle_errors",
    "serve_forever",
    "start_server",
    "sync_channel",
]
