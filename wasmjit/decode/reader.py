"""ByteReader: bounded reads of bytes, LEB128 integers, floats, names and value types.

Every failure is a :class:`DecodeError` carrying the byte offset. Messages follow the spec
test suite (``unexpected end``, ``integer representation too long``, ``integer too large``,
``length out of bounds``, ``malformed UTF-8 encoding``). Imports: errors, opcodes.
"""

from __future__ import annotations

import struct

from ..errors import DecodeError
from ..opcodes import V128, VALTYPE_BYTES

_F64 = struct.Struct("<d")


class Reader:
    """Reads from ``data[pos:end]``; ``end`` is narrowed to the current section or body."""

    __slots__ = ("data", "pos", "end", "saw_simd", "in_section")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else min(end, len(data))
        self.saw_simd = False
        self.in_section = True  # the module decoder clears it between sections

    def error(self, message: str, offset: int | None = None) -> DecodeError:
        """A DecodeError at ``offset`` (default: the current position)."""
        return DecodeError(message, self.pos if offset is None else offset)

    def _eof(self) -> DecodeError:
        if self.in_section:
            return self.error("unexpected end of section or function")
        return self.error("unexpected end")

    @property
    def at_end(self) -> bool:
        return self.pos >= self.end

    def u8(self) -> int:
        pos = self.pos
        if pos >= self.end:
            raise self._eof()
        self.pos = pos + 1
        return self.data[pos]

    def bytes(self, n: int) -> bytes:
        pos = self.pos
        if n > self.end - pos:
            raise self._eof()
        self.pos = pos + n
        return self.data[pos : pos + n]

    def u32(self) -> int:
        """Unsigned LEB128, at most 5 bytes, value < 2**32 (spec 5.2.2)."""
        data, pos, end = self.data, self.pos, self.end
        if pos < end and data[pos] < 0x80:  # fast path: one byte
            self.pos = pos + 1
            return data[pos]
        return self._uleb(32)

    def _uleb(self, bits: int) -> int:
        return self._leb(bits, signed=False)

    def sleb(self, bits: int) -> int:
        """Signed LEB128 of ``bits`` (32, 33 or 64), returned as a Python signed int."""
        return self._leb(bits, signed=True)

    def _leb(self, bits: int, signed: bool) -> int:
        """LEB128 of at most ceil(bits/7) bytes whose unused high bits are zero (unsigned) or
        copies of the sign bit (signed), as spec 5.2.2 requires."""
        result = shift = 0
        max_bytes = (bits + 6) // 7
        for i in range(max_bytes):
            byte = self.u8()
            if i == max_bytes - 1:
                if byte & 0x80:
                    raise self.error("integer representation too long", self.pos - 1)
                used = bits - 7 * i  # value bits carried by this last byte
                if signed:
                    rest = byte >> (used - 1) & (0x7F >> (used - 1))  # sign bit and above
                    bad = rest not in (0, 0x7F >> (used - 1))
                else:
                    bad = byte >> used != 0
                if bad:
                    raise self.error("integer too large", self.pos - 1)
            result |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                if signed and byte & 0x40:
                    result -= 1 << shift
                return result
        raise AssertionError("unreachable")  # the loop always returns or raises

    def f32_bits(self) -> int:
        return int.from_bytes(self.bytes(4), "little")

    def f64(self) -> float:
        return _F64.unpack(self.bytes(8))[0]

    def vec_len(self) -> int:
        """A vector length; rejects lengths that cannot fit in the remaining bytes."""
        start = self.pos
        n = self.u32()
        if n > self.end - self.pos:
            raise self.error("length out of bounds", start)
        return n

    def name(self) -> str:
        start = self.pos
        raw = self.bytes(self.vec_len())
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.error("malformed UTF-8 encoding", start) from None

    def valtype(self) -> str:
        start = self.pos
        code = self.u8()
        vt = VALTYPE_BYTES.get(code)
        if vt is None:
            raise self.error("malformed value type", start)
        if vt is V128:
            self.saw_simd = True
        return vt

    def reftype(self) -> str:
        start = self.pos
        code = self.u8()
        if code == 0x70:
            return "funcref"
        if code == 0x6F:
            return "externref"
        raise self.error("malformed reference type", start)
