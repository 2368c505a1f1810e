"""The service's bearer token, kept out of /proc/<pid>/environ.

`os.environ.pop` is not enough: it changes the interpreter's copy, but /proc/<pid>/environ shows
the environment block the process was started with, for its whole life, to anything of the same
uid (or root) on the node. So a token given in the environment is handed to a fresh image of
the same process (execve, same pid) through a pipe, with an environment without it; a token
given as a file (--auth-token-file, $HYOKA_SANDBOX_TOKEN_FILE) never enters the environment."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)

#: Set only by the re-exec: the fd of the pipe holding the token. Its presence also marks the
#: second image, which never re-executes again.
PASSED_FD_ENV = "HYOKA_SANDBOX_TOKEN_PASSED_FD"


def load_token(env_name: str, token_file: Path | None) -> str | None:
    """The token (None: no auth): from `token_file` if given, else from the environment variable
    `env_name`. When that variable is in this process's initial environment, re-executes the
    process without it first (this call then returns in the new image)."""
    passed = _take_passed()
    if passed is None and os.environ.get(env_name):  # set and not empty
        _reexec_without(env_name)  # returns only when execve failed
    os.environ.pop(env_name, None)
    if token_file is not None:
        return token_file.read_text().strip() or None
    return passed or None


def _take_passed() -> str | None:
    fd_text = os.environ.pop(PASSED_FD_ENV, None)
    if fd_text is None:
        return None
    fd = int(fd_text)
    chunks = []
    try:
        while chunk := os.read(fd, 4096):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode()


def _reexec_without(env_name: str) -> None:
    token = os.environ.get(env_name, "")
    env = {name: value for name, value in os.environ.items() if name != env_name}
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, token.encode())  # a token is far below a pipe's buffer
    finally:
        os.close(write_fd)
    env[PASSED_FD_ENV] = str(read_fd)
    os.set_inheritable(read_fd, True)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, sys.orig_argv, env)
    except OSError as error:
        os.close(read_fd)
        log.warning("could not re-execute without $%s (%s): it stays in /proc/%d/environ", env_name, error, os.getpid())
