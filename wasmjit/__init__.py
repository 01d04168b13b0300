"""wasmjit: a WebAssembly engine in Python with wasmtime-py's embedding API.

``import wasmjit as wasmtime`` lets code written for wasmtime-py run here.
"""

from .api import (
                  Caller,
                  Config,
                  Engine,
                  ExportType,
                  Func,
                  FuncStats,
                  FuncType,
                  Global,
                  GlobalType,
                  ImportType,
                  Instance,
                  InstanceExports,
                  InstancePre,
                  Limits,
                  Linker,
                  Memory,
                  MemoryType,
                  Module,
                  Store,
                  Table,
                  TableType,
                  Val,
                  ValType,
)
from .errors import (
                  DecodeError,
                  Frame,
                  LinkError,
                  Trap,
                  TrapCode,
                  UnsupportedError,
                  ValidationError,
                  WasmjitError,
                  WasmjitTypeError,
                  WasmjitValueError,
                  WatError,
)
from .wasi import ExitTrap, WasiConfig
from .wat import wat2wasm

__all__ = [
    "Caller", "Config", "DecodeError", "Engine", "ExitTrap", "ExportType", "Frame", "Func", "FuncStats",
    "FuncType", "Global", "GlobalType", "ImportType", "Instance", "InstanceExports", "InstancePre", "Limits",
    "LinkError", "Linker", "Memory", "MemoryType", "Module", "Store", "Table", "TableType", "Trap",
    "TrapCode", "UnsupportedError", "Val", "ValType", "ValidationError", "WasiConfig", "WasmjitError",
    "WasmjitTypeError", "WasmjitValueError", "WatError", "wat2wasm",
]
