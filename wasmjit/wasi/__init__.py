"""WASI preview1: ``WasiConfig`` (wasmtime-py's names) and the host functions it configures."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import BinaryIO

from ..errors import WasmjitError
from . import abi
from .preview1 import FUNCTIONS, Dir, ExitTrap, Stdio, WasiContext, raw_host, std_stream

MODULE_NAME = "wasi_snapshot_preview1"


class WasiConfig:
    """What a WASI program sees: arguments, environment, standard streams and preopened directories."""

    def __init__(self) -> None:
        self._preopens: list[tuple[str, str]] = []  # (host path, guest path)
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

    def preopen_dir(self, path: str | os.PathLike, guest_path: str) -> None:
        """Let the guest use the host directory ``path`` (and only what is below it) under the name
        ``guest_path``. Preopens get descriptors 3, 4, ... in the order they are added."""
        self._preopens.append((os.fspath(path), str(guest_path)))

    def context(self) -> WasiContext:
        """Open the configured streams and directories: a fresh WASI state for one store."""
        ctx = WasiContext([a.encode() for a in self._argv], [f"{k}={v}".encode() for k, v in self._env])
        try:
            for fd, setting in self._stdio.items():
                ctx.add(_open_stdio(fd, setting))
            for host, guest in self._preopens:
                try:
                    handle = os.open(host, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                except OSError as err:
                    raise WasmjitError(f"cannot preopen directory {host!r}: {err.strerror}") from None
                ctx.add(Dir(handle, abi.PREOPEN_RIGHTS, abi.RIGHTS_ALL, guest))
        except WasmjitError:
            ctx.close_all()
            raise
        return ctx


def _open_stdio(fd: int, setting: str | None) -> Stdio:
    output = fd != 0
    if setting is None:
        return Stdio(None, output, owned=False)
    if setting == "inherit":
        return Stdio(std_stream(fd), output, owned=False)
    try:
        stream: BinaryIO = open(setting, "wb" if output else "rb")  # noqa: SIM115 - owned by the descriptor
    except OSError as err:
        raise WasmjitError(f"cannot open {setting!r} for WASI fd {fd}: {err.strerror}") from None
    return Stdio(stream, output, owned=True)


__all__ = ["FUNCTIONS", "MODULE_NAME", "ExitTrap", "WasiConfig", "WasiContext", "raw_host"]
