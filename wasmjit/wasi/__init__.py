"""WASI preview1: ``WasiConfig`` (wasmtime-py's names) and the host functions it configures."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import BinaryIO

from ..errors import WasmjitError
from .preview1 import FUNCTIONS, ExitTrap, FileDesc, WasiContext, filetype_of, raw_host

MODULE_NAME = "wasi_snapshot_preview1"


class WasiConfig:
    """What a WASI program sees: arguments, environment and standard streams."""

    def __init__(self) -> None:
        self._argv: list[str] = []
        self._env: list[tuple[str, str]] = []
        # Per stream: None = closed/empty (wasmtime's default), "inherit", or a host path.
        self._stdio: dict[int, str | None] = {0: None, 1: None, 2: None}

    @property
    def argv(self) -> list[str]:
        return list(self._argv)

    @argv.setter
    def argv(self, argv: Iterable[str]) -> None:
        self._argv = [str(a) for a in argv]

    @property
    def env(self) -> list[tuple[str, str]]:
        return list(self._env)

    @env.setter
    def env(self, env: Iterable[tuple[str, str]]) -> None:
        self._env = [(str(k), str(v)) for k, v in env]

    def inherit_argv(self) -> None:
        self._argv = list(sys.argv)

    def inherit_env(self) -> None:
        self._env = list(os.environ.items())

    def inherit_stdin(self) -> None:
        self._stdio[0] = "inherit"

    def inherit_stdout(self) -> None:
        self._stdio[1] = "inherit"

    def inherit_stderr(self) -> None:
        self._stdio[2] = "inherit"

    @property
    def stdin_file(self) -> str | None:
        return self._stdio[0]

    @stdin_file.setter
    def stdin_file(self, path: str | os.PathLike) -> None:
        self._stdio[0] = os.fspath(path)

    @property
    def stdout_file(self) -> str | None:
        return self._stdio[1]

    @stdout_file.setter
    def stdout_file(self, path: str | os.PathLike) -> None:
        self._stdio[1] = os.fspath(path)

    @property
    def stderr_file(self) -> str | None:
        return self._stdio[2]

    @stderr_file.setter
    def stderr_file(self, path: str | os.PathLike) -> None:
        self._stdio[2] = os.fspath(path)

    def context(self) -> WasiContext:
        """Open the configured streams: a fresh WASI state for one store."""
        ctx = WasiContext([a.encode() for a in self._argv], [f"{k}={v}".encode() for k, v in self._env])
        for fd, setting in self._stdio.items():
            ctx.fds[fd] = _open_stdio(fd, setting)
        return ctx


def _open_stdio(fd: int, setting: str | None) -> FileDesc:
    writing = fd != 0
    if setting == "inherit":
        stream: BinaryIO = (sys.stdin, sys.stdout, sys.stderr)[fd].buffer
        return FileDesc(stream, filetype_of(stream), owned=False, seekable=False)
    path = os.devnull if setting is None else setting
    try:
        stream = open(path, "wb" if writing else "rb")  # noqa: SIM115 - owned by the descriptor
    except OSError as err:
        raise WasmjitError(f"cannot open {path!r} for WASI fd {fd}: {err.strerror}") from None
    return FileDesc(stream, filetype_of(stream), owned=True, seekable=False)


__all__ = ["FUNCTIONS", "MODULE_NAME", "ExitTrap", "WasiConfig", "WasiContext", "raw_host"]
