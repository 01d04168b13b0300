"""Module decoding: preamble, section order and sizes, one reader per section (spec 5.5).

Imports: decode.reader, decode.code, structure, errors.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import structure as S
from ..errors import DecodeError
from ..opcodes import BY_NAME, FUNCREF
from .code import read_code, read_expr
from .reader import Reader

MAGIC = b"\0asm"
VERSION = b"\x01\0\0\0"

# Section ids in their required order; the data count section (12) sits between 9 and 10.
_ORDER = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 7, 8: 8, 9: 9, 12: 10, 10: 11, 11: 12}
_KINDS = {0: S.FUNC, 1: S.TABLE, 2: S.MEMORY, 3: S.GLOBAL}
_REF_FUNC = BY_NAME["ref.func"]
_END = BY_NAME["end"]


def decode_module(data: bytes) -> S.Module:
    """Decode a binary module; raises DecodeError (with a byte offset) if it is malformed."""
    data = bytes(data)
    if data[:4] != MAGIC:
        truncated = len(data) < 4 and MAGIC.startswith(data)
        raise DecodeError("unexpected end" if truncated else "magic header not detected", 0)
    if data[4:8] != VERSION:
        truncated = len(data) < 8 and VERSION.startswith(data[4:])
        raise DecodeError("unexpected end" if truncated else "unknown binary version", 4)
    r = Reader(data, 8)
    r.in_section = False
    module = S.Module()
    func_type_indices: list[int] = []
    last = 0
    saw_code = False
    while not r.at_end:
        id_offset = r.pos
        section_id = r.u8()
        size = r.u32()
        start = r.pos
        if size > len(data) - start:
            raise r.error("length out of bounds", id_offset)  # the section runs past the end
        r.end = start + size
        r.in_section = True
        if section_id == 0:
            _custom(r, module)
        else:
            rank = _ORDER.get(section_id)
            if rank is None:
                raise r.error("malformed section id", id_offset)
            if rank <= last:
                raise r.error("unexpected content after last section", id_offset)
            last = rank
            if section_id == 3:
                func_type_indices = [r.u32() for _ in range(r.vec_len())]
            elif section_id == 10:
                saw_code = True
                _code(r, module, func_type_indices)
            else:
                _SECTIONS[section_id](r, module)
        if r.pos != r.end:
            raise r.error("section size mismatch")
        r.end = len(data)
        r.in_section = False
    if func_type_indices and not saw_code:
        raise DecodeError("function and code section have inconsistent lengths", len(data))
    if module.data_count is not None and module.data_count != len(module.datas):
        raise DecodeError("data count and data section have inconsistent lengths", len(data))
    module.uses_simd = r.saw_simd
    return module


# --- Sections -----------------------------------------------------------------------------


def _custom(r: Reader, module: S.Module) -> None:
    name = r.name()
    content = r.bytes(r.end - r.pos)
    module.customs.append((name, content))
    if name == "name":
        module.names = _names(content)


def _names(content: bytes) -> S.Names:
    """Parse the `name` section; a malformed one is ignored, as engines do (spec 7.4)."""
    names = S.Names()
    r = Reader(content)
    try:
        while not r.at_end:
            sub_id = r.u8()
            size = r.u32()
            end = r.pos + size
            if end > len(content):  # a subsection running past the section: ignore the rest
                break
            sub = Reader(content, r.pos, end)
            if sub_id == 0:
                names.module = sub.name()
            elif sub_id == 1:
                for _ in range(sub.vec_len()):
                    index = sub.u32()
                    names.funcs[index] = sub.name()
            elif sub_id == 2:
                for _ in range(sub.vec_len()):
                    func = sub.u32()
                    names.locals[func] = {sub.u32(): sub.name() for _ in range(sub.vec_len())}
            r.pos = end
    except DecodeError:
        pass
    return names


def _types(r: Reader, module: S.Module) -> None:
    for _ in range(r.vec_len()):
        start = r.pos
        form = r.u8()
        if form != 0x60:
            # The reference interpreter reads the form as a signed LEB128 byte.
            raise r.error("integer representation too long" if form & 0x80 else "malformed functype", start)
        params = tuple(r.valtype() for _ in range(r.vec_len()))
        results = tuple(r.valtype() for _ in range(r.vec_len()))
        module.types.append(S.FuncType(params, results))


def _limits(r: Reader) -> S.Limits:
    start = r.pos
    flag = r.u8()
    if flag == 0:
        return S.Limits(r.u32())
    if flag == 1:
        low = r.u32()
        return S.Limits(low, r.u32())
    raise r.error("integer representation too long" if flag & 0x80 else "integer too large", start)


def _table_type(r: Reader) -> S.TableType:
    elem = r.reftype()
    return S.TableType(elem, _limits(r))


def _global_type(r: Reader) -> S.GlobalType:
    valtype = r.valtype()
    start = r.pos
    mut = r.u8()
    if mut > 1:
        raise r.error("malformed mutability", start)
    return S.GlobalType(valtype, bool(mut))


def _imports(r: Reader, module: S.Module) -> None:
    for _ in range(r.vec_len()):
        mod_name = r.name()
        name = r.name()
        start = r.pos
        kind = _KINDS.get(r.u8())
        if kind == S.FUNC:
            desc: object = r.u32()
        elif kind == S.TABLE:
            desc = _table_type(r)
        elif kind == S.MEMORY:
            desc = S.MemoryType(_limits(r))
        elif kind == S.GLOBAL:
            desc = _global_type(r)
        else:
            raise r.error("malformed import kind", start)
        module.imports.append(S.Import(mod_name, name, kind, desc))


def _tables(r: Reader, module: S.Module) -> None:
    module.tables.extend(_table_type(r) for _ in range(r.vec_len()))


def _mems(r: Reader, module: S.Module) -> None:
    module.mems.extend(S.MemoryType(_limits(r)) for _ in range(r.vec_len()))


def _globals(r: Reader, module: S.Module) -> None:
    for _ in range(r.vec_len()):
        gtype = _global_type(r)
        module.globals.append(S.Global(gtype, read_expr(r)))


def _exports(r: Reader, module: S.Module) -> None:
    for _ in range(r.vec_len()):
        name = r.name()
        start = r.pos
        kind = _KINDS.get(r.u8())
        if kind is None:
            raise r.error("malformed export kind", start)
        module.exports.append(S.Export(name, kind, r.u32()))


def _start(r: Reader, module: S.Module) -> None:
    module.start = r.u32()


def _elemkind(r: Reader) -> str:
    start = r.pos
    if r.u8() != 0x00:
        raise r.error("malformed elements segment kind", start)
    return FUNCREF


def _func_index_exprs(r: Reader) -> list[list[S.Instr]]:
    exprs = []
    for _ in range(r.vec_len()):
        offset = r.pos
        exprs.append([(_REF_FUNC, r.u32(), offset), (_END, None, r.pos)])
    return exprs


def _elems(r: Reader, module: S.Module) -> None:
    for _ in range(r.vec_len()):
        start = r.pos
        flags = r.u32()
        if flags > 7:
            raise r.error("malformed elements segment kind", start)
        table = 0
        offset: list[S.Instr] | None = None
        if flags & 1 == 0:  # active
            if flags & 2:
                table = r.u32()
            offset = read_expr(r)
            mode = S.ACTIVE
        else:
            mode = S.DECLARATIVE if flags & 2 else S.PASSIVE
        if flags & 4:  # element expressions
            etype = r.reftype() if flags & 3 else FUNCREF
            init = [read_expr(r) for _ in range(r.vec_len())]
        else:  # function indices
            etype = _elemkind(r) if flags & 3 else FUNCREF
            init = _func_index_exprs(r)
        module.elems.append(S.Elem(etype, init, mode, table, offset))


def _datacount(r: Reader, module: S.Module) -> None:
    module.data_count = r.u32()


def _code(r: Reader, module: S.Module, type_indices: list[int]) -> None:
    start = r.pos
    count = r.vec_len()
    if count != len(type_indices):
        raise r.error("function and code section have inconsistent lengths", start)
    for type_index in type_indices:
        module.funcs.append(S.Func(type_index, read_code(r, module.data_count)))


def _datas(r: Reader, module: S.Module) -> None:
    for _ in range(r.vec_len()):
        start = r.pos
        flags = r.u32()
        if flags == 1:
            module.datas.append(S.Data(r.bytes(r.vec_len()), S.PASSIVE))
            continue
        if flags not in (0, 2):
            raise r.error("malformed data segment kind", start)
        memory = r.u32() if flags == 2 else 0
        offset = read_expr(r)
        module.datas.append(S.Data(r.bytes(r.vec_len()), S.ACTIVE, memory, offset))


_SECTIONS: dict[int, Callable[[Reader, S.Module], None]] = {
    1: _types,
    2: _imports,
    4: _tables,
    5: _mems,
    6: _globals,
    7: _exports,
    8: _start,
    9: _elems,
    11: _datas,
    12: _datacount,
}
