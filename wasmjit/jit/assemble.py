"""Assembly text -> machine code: one Keystone call per function, checked by a Capstone walk.

Keystone 0.9.2 encodes individual instructions accurately but can fail silently (jit-research.md
section 4): it drops a statement it cannot parse, wraps displacements, truncates immediates. So
:func:`assemble` always runs a cheap check after the one ``Ks.asm`` call: Keystone's statement
count must equal the number of lines sent, and a Capstone ``disasm_lite`` walk over the code part
must decode exactly the expected instructions (mnemonic by mnemonic) covering every byte, with
alignment padding made of NOPs and the data area where the layout puts it. The same walk recovers
every label's address, which Keystone does not report. ``full=True`` (tests, CI, ``Config.verify``)
also compares every operand of every instruction with what the :class:`~wasmjit.jit.x64.Masm`
recorded (registers, immediates, displacements, memory sizes, branch and rip-relative targets) and
every byte of the data area. Any failure raises :class:`AssemblyError` naming the instruction.
The walk also gives each relocatable immediate's offset (the last ``width`` bytes of its
instruction, checked to hold the value the Masm recorded).

Imports: keystone, capstone, x64, errors, jit.artifact.
"""

from __future__ import annotations

import ctypes
import re
import struct
import threading
from dataclasses import dataclass
from typing import Any, NamedTuple

import capstone
import keystone
from capstone import x86_const

from ..errors import WasmjitError
from .artifact import Relocation
from .x64.masm import DATA_ALIGN, Align, Bind, Insn, Listing, Masm, Operand
from .x64.operands import Gpr, Imm, Label, Mem, Xmm, fmt_int

MASK64 = (1 << 64) - 1


class AssemblyError(WasmjitError):
    """Keystone rejected the text, or the bytes it produced are not what the Masm recorded."""


@dataclass(frozen=True, slots=True)
class Assembled:
    """A function's bytes, valid only at ``address``: code, NOP padding, then the data area.

    ``labels`` maps every label name (code and data) to its absolute address; ``insn_addresses``
    holds each instruction's address, in emission order; ``relocations`` the Masm's relocatable
    immediates, at offsets from ``address``."""

    code: bytes
    address: int
    labels: dict[str, int]
    code_size: int
    insn_addresses: tuple[int, ...]
    relocations: tuple[Relocation, ...] = ()

    def address_of(self, label: Label) -> int:
        return self.labels[label.name]

    @property
    def end(self) -> int:
        return self.address + len(self.code)


# --- Keystone and Capstone handles (one per thread: neither is documented as thread-safe) ---

_local = threading.local()


def _keystone() -> keystone.Ks:
    ks = getattr(_local, "ks", None)
    if ks is None:
        ks = _local.ks = keystone.Ks(keystone.KS_ARCH_X86, keystone.KS_MODE_64)
    return ks


def _capstone(detail: bool) -> capstone.Cs:
    name = "cs_detail" if detail else "cs"
    cs = getattr(_local, name, None)
    if cs is None:
        cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
        cs.detail = detail
        setattr(_local, name, cs)
    return cs


def _keystone_asm(text: str, address: int) -> tuple[bytes, int]:
    """The one place Keystone is called: ``(machine code, statements assembled)``."""
    encoding, count = _keystone().asm(text, address, as_bytes=True)
    return (encoding or b""), count


# --- Assembling ---


def assemble(masm: Masm | Listing, address: int, *, full: bool = False) -> Assembled:
    """Assemble a function for execution at ``address`` and check the result (see module doc)."""
    listing = masm.listing() if isinstance(masm, Masm) else masm
    try:
        code, count = _keystone_asm(listing.text, address)
    except keystone.KsError as error:
        where = _locate_keystone_error(listing, address)
        raise AssemblyError(f"Keystone rejected the function: {error}{where}") from None
    if count != listing.line_count:
        try:  # the walk usually names the statement that went missing
            _walk(listing, code, address)
            where = ""
        except AssemblyError as walk_error:
            where = f"; first difference: {walk_error}"
        raise AssemblyError(f"Keystone assembled {count} of {listing.line_count} statements{where}")
    walk = _walk(listing, code, address)
    if full:
        _check_operands(listing, code, address, walk)
        _check_data(listing, code, address, walk.labels)
    return Assembled(code, address, walk.labels, walk.code_size, tuple(walk.addresses),
                     _relocations(listing, code, address, walk))


@dataclass(slots=True)
class _Walk:
    labels: dict[str, int]
    addresses: list[int]
    ends: list[int]  # where each instruction ends
    segments: list[tuple[int, int, int]]  # (offset, first instruction, instruction count)
    code_size: int


def _describe(index: int, insn: Insn, address: int) -> str:
    return f"instruction {index} `{insn.text}` at {address:#x}"


def _walk(listing: Listing, code: bytes, address: int) -> _Walk:
    """The cheap check: decode the code part and compare mnemonics, coverage and layout."""
    insns = [stmt for stmt in listing.stmts if isinstance(stmt, Insn)]
    cs = _capstone(detail=False)
    labels: dict[str, int] = {}
    addresses: list[int] = []
    ends: list[int] = []
    segments: list[tuple[int, int, int]] = []
    pending: list[tuple[str, int]] = []  # labels bound before instruction number N
    offset = 0
    first = 0

    def decode_segment(end: int) -> None:
        nonlocal offset, first
        if end > first:
            segments.append((offset, first, end - first))
            for pc, size, mnemonic, _ in cs.disasm_lite(code[offset:], address + offset, end - first):
                index = len(addresses)
                if mnemonic != insns[index].mnemonic:
                    raise AssemblyError(f"{_describe(index, insns[index], pc)} decodes as {mnemonic!r}")
                addresses.append(pc)
                ends.append(pc + size)
                offset = pc + size - address
            if len(addresses) != end:
                index = len(addresses)
                what = _describe(index, insns[index], address + offset)
                raise AssemblyError(f"Capstone cannot decode {what} (bytes {code[offset:offset + 16].hex()})")
        for name, before in pending:
            labels[name] = addresses[before] if before < end else address + offset
        pending.clear()
        first = end

    count = 0
    for stmt in listing.stmts:
        if isinstance(stmt, Insn):
            count += 1
        elif isinstance(stmt, Bind):
            pending.append((stmt.label.name, count))
        elif isinstance(stmt, Align):
            decode_segment(count)
            offset = _skip_padding(code, address, offset, stmt.boundary)
    decode_segment(count)
    code_size = offset
    expected_size = offset
    if listing.data:
        data_start = _skip_padding(code, address, offset, DATA_ALIGN)
        for datum in listing.data:
            labels[datum.label.name] = address + data_start + datum.offset
        expected_size = data_start + listing.data_size
    if len(code) != expected_size:
        raise AssemblyError(f"the function is {len(code)} bytes, the walk expects {expected_size}"
                            f" (code part {code_size} bytes)")
    return _Walk(labels, addresses, ends, segments, code_size)


def _relocations(listing: Listing, code: bytes, address: int, walk: _Walk) -> tuple[Relocation, ...]:
    """Where each relocatable immediate is: the last ``width`` bytes of its instruction (x86
    encodes the immediate last), which must hold the value the instruction was emitted with."""
    if not listing.relocs:
        return ()
    insns = [stmt for stmt in listing.stmts if isinstance(stmt, Insn)]
    out = []
    for index, width, target in listing.relocs:
        offset = walk.ends[index] - width - address
        imm = insns[index].operands[-1]
        if not isinstance(imm, Imm) or code[offset:offset + width] != imm.value.to_bytes(width, "little"):
            raise AssemblyError(f"{_describe(index, insns[index], walk.addresses[index])} does not end "
                                f"with its {width}-byte relocatable immediate")
        out.append(Relocation(offset, width, target))
    return tuple(out)


def _skip_padding(code: bytes, address: int, offset: int, boundary: int) -> int:
    """The offset after alignment padding, which must decode as NOPs."""
    end = offset + (-(address + offset)) % boundary
    if end > offset:
        covered = offset
        for pc, size, mnemonic, _ in _capstone(detail=False).disasm_lite(code[offset:end], address + offset):
            if mnemonic != "nop":
                raise AssemblyError(f"alignment padding at {pc:#x} decodes as {mnemonic!r}")
            covered = pc + size - address
        if covered != end:
            raise AssemblyError(f"padding {address + offset:#x}..{address + end:#x} is not all NOPs")
    return end


# --- The full check ---

# A decoded operand: a register name, an immediate, or a memory operand.
DecodedOperand = str | int | tuple[str | None, str | None, int, int, int, str | None]


class _Decoded(NamedTuple):
    address: int
    size: int
    mnemonic: str
    op_str: str
    operands: list[DecodedOperand]  # memory: (base, index, scale, disp, size, segment)


# Reading Capstone's detail structs in place is ~3x faster than building CsInsn objects, but uses
# the binding's private ctypes layer; without it (another capstone version) the public API is used.
_RAW_CAPSTONE = hasattr(capstone, "_cs") and hasattr(capstone, "_cs_insn")
_REG_NAMES: dict[int, str | None] = {0: None}


def _reg_name(cs: capstone.Cs, reg_id: int) -> str | None:
    name = _REG_NAMES.get(reg_id, "")
    if name == "":
        name = _REG_NAMES[reg_id] = cs.reg_name(reg_id)
    return name


def _decode_full(code: bytes, address: int, count: int) -> list[_Decoded]:
    cs = _capstone(detail=True)
    if not _RAW_CAPSTONE:
        return [_Decoded(insn.address, insn.size, insn.mnemonic, insn.op_str,
                         [_operand(cs, op, op.value) for op in insn.operands])
                for insn in cs.disasm(code, address, count)]
    lib: Any = capstone._cs  # type: ignore[attr-defined]
    insns = ctypes.POINTER(capstone._cs_insn)()  # type: ignore[attr-defined]
    decoded = lib.cs_disasm(cs.csh, code, len(code), address, count, ctypes.byref(insns))
    try:
        result = []
        for i in range(decoded):
            insn = insns[i]
            x86 = insn.detail.contents.arch.x86
            operands = [_operand(cs, op, op.value) for op in x86.operands[:x86.op_count]]
            result.append(_Decoded(insn.address, insn.size, insn.mnemonic.decode(), insn.op_str.decode(),
                                   operands))
        return result
    finally:
        lib.cs_free(insns, decoded)


def _operand(cs: capstone.Cs, op: Any, value: Any) -> DecodedOperand:
    kind = op.type
    if kind == x86_const.X86_OP_REG:
        return _reg_name(cs, value.reg) or "?"
    if kind == x86_const.X86_OP_IMM:
        return int(value.imm)
    mem = value.mem
    return (_reg_name(cs, mem.base), _reg_name(cs, mem.index), mem.scale, mem.disp, op.size,
            _reg_name(cs, mem.segment))


def _check_operands(listing: Listing, code: bytes, address: int, walk: _Walk) -> None:
    insns = [stmt for stmt in listing.stmts if isinstance(stmt, Insn)]
    for offset, first, count in walk.segments:
        for index, got in enumerate(_decode_full(code[offset:], address + offset, count), first):
            problem = _compare(insns[index], got, walk.labels)
            if problem:
                raise AssemblyError(f"{_describe(index, insns[index], got.address)} assembled as"
                                    f" `{got.mnemonic} {got.op_str}`: {problem}")


def _compare(insn: Insn, got: _Decoded, labels: dict[str, int]) -> str | None:
    """What differs between the recorded instruction and the decoded one, or None."""
    if got.mnemonic != insn.mnemonic:
        return f"mnemonic {got.mnemonic!r}, expected {insn.mnemonic!r}"
    if len(got.operands) != len(insn.operands):
        return f"{len(got.operands)} operands, expected {len(insn.operands)}"
    if insn.mnemonic == "xchg":  # Capstone may print the two registers in either order
        names = sorted(str(op) for op in got.operands)
        return None if names == sorted(str(op) for op in insn.operands) else f"registers {names}"
    for position, (want, op) in enumerate(zip(insn.operands, got.operands, strict=True), 1):
        problem = _compare_operand(insn, want, op, got, labels)
        if problem:
            return f"operand {position}: {problem}"
    return None


def _compare_operand(insn: Insn, want: Operand, op: DecodedOperand, got: _Decoded,
                     labels: dict[str, int]) -> str | None:
    if isinstance(want, Gpr | Xmm):
        return None if op == want.name else f"{op!r}, expected register {want.name}"
    if isinstance(want, Imm | Label):
        if not isinstance(op, int):
            return f"{op!r}, expected immediate {want}"
        if isinstance(want, Label):
            op &= MASK64  # Capstone reports targets above 2**63 as negative numbers
            target = labels[want.name]
            return None if op == target else f"target {op:#x}, expected {want.name} = {target:#x}"
        op &= (1 << (8 * want.size)) - 1
        return None if op == want.value else f"immediate {op:#x}, expected {want.value:#x}"
    if not isinstance(want, Mem):
        raise TypeError(f"unexpected recorded operand {want!r}")
    if not isinstance(op, tuple):
        return f"{op!r}, expected memory operand {want}"
    base, index, scale, disp, size, segment = op
    if segment is not None:
        return f"segment {segment}"
    if isinstance(want.base, Label):
        if base != "rip" or index is not None:
            return f"base {base} index {index}, expected rip-relative"
        target = (got.address + got.size + disp) & MASK64
        expected = labels[want.base.name] + want.disp
        if target != expected:
            return f"rip-relative target {target:#x}, expected {want.base.name}{want.disp:+#x}={expected:#x}"
    else:
        want_index = want.index.name if want.index else None
        if (base, index) != (want.base.name, want_index):
            return f"base {base} index {index}, expected base {want.base.name} index {want_index}"
        if want.index is not None and scale != want.scale:
            return f"scale {scale}, expected {want.scale}"
        if disp != want.disp:
            return f"displacement {fmt_int(disp)}, expected {fmt_int(want.disp)}"
    if insn.mnemonic != "lea" and size != want.size:
        return f"memory size {size}, expected {want.size}"
    return None


def _check_data(listing: Listing, code: bytes, address: int, labels: dict[str, int]) -> None:
    for datum in listing.data:
        start = labels[datum.label.name] - address
        got = code[start:start + datum.size]
        if datum.payload is not None:
            expected = datum.payload
        else:
            table = labels[datum.label.name]
            entries = [labels[target.name] - table for target in datum.targets]
            expected = struct.pack(f"<{len(entries)}i", *entries)
        if got != expected:
            raise AssemblyError(f"data {datum.label.name} at {address + start:#x} is {got.hex()},"
                                f" expected {expected.hex()}")


# --- Naming the statement Keystone rejected ---

_LABEL_REF = re.compile(r"\bwj_[a-z]+[0-9]+\b")


def _locate_keystone_error(listing: Listing, address: int) -> str:
    """Assemble the lines one by one (with stand-ins for the labels they name) to find the culprit.
    Only runs after an error, so its cost does not matter."""
    for number, line in enumerate(listing.text.split("\n"), 1):
        if line.endswith(":"):
            continue
        stubs = "".join(f"\n{name}:" for name in dict.fromkeys(_LABEL_REF.findall(line)))
        try:
            _keystone_asm(line + stubs, address)
        except keystone.KsError as error:
            return f" at line {number} `{line}`: {error}"
    return ""
