"""The one table of every WebAssembly 2.0 instruction: encoding, name, immediates, type signature.

Every stage reads this table: the decoder reads immediates by ``Op.imm``, the validator types
every simple instruction from ``Op.params``/``Op.results``, the interpreter builds its handlers
from ``Op.ident``, and the JIT looks up ``visit_<ident>``. Imports: stdlib only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# --- Immediate kinds -------------------------------------------------------------------------
# Each instruction names one immediate kind; the decoder has one reader per kind.
IMM_NONE = ""
IMM_BLOCK = "block"  # blocktype: empty, one value type, or a type index (s33)
IMM_LABEL = "label"  # relative label depth
IMM_BR_TABLE = "br_table"  # vec(label) label
IMM_FUNC = "func"  # function index
IMM_CALL_INDIRECT = "call_indirect"  # type index, table index
IMM_LOCAL = "local"
IMM_GLOBAL = "global"
IMM_TABLE = "table"  # table index
IMM_MEMARG = "memarg"  # align (log2), offset
IMM_MEM = "mem"  # a memory index that must be the byte 0x00 in 2.0
IMM_I32 = "i32"
IMM_I64 = "i64"
IMM_F32 = "f32"
IMM_F64 = "f64"
IMM_SELECT_T = "select_t"  # vec(valtype)
IMM_REFTYPE = "reftype"
IMM_DATA_MEM = "data_mem"  # memory.init: data index, memory byte
IMM_DATA = "data"  # data.drop
IMM_MEM_MEM = "mem_mem"  # memory.copy: two memory bytes
IMM_ELEM_TABLE = "elem_table"  # table.init: elem index, table index
IMM_ELEM = "elem"  # elem.drop
IMM_TABLE_TABLE = "table_table"  # table.copy: dst, src
IMM_V128 = "v128"  # 16 literal bytes
IMM_SHUFFLE = "shuffle"  # 16 lane indices
IMM_LANE = "lane"  # one lane index byte
IMM_MEMARG_LANE = "memarg_lane"

# Value types are the spec's names; every stage uses these strings.
I32, I64, F32, F64, V128, FUNCREF, EXTERNREF = "i32", "i64", "f32", "f64", "v128", "funcref", "externref"
NUM_TYPES = (I32, I64, F32, F64)
REF_TYPES = (FUNCREF, EXTERNREF)

# Binary encodings of value types (spec 5.3.4).
VALTYPE_BYTES = {0x7F: I32, 0x7E: I64, 0x7D: F32, 0x7C: F64, 0x7B: V128, 0x70: FUNCREF, 0x6F: EXTERNREF}
VALTYPE_CODES = {name: code for code, name in VALTYPE_BYTES.items()}

# Fuel: free instructions, and those that end a run of instructions charged together. On top,
# wasmtime charges one unit at every function entry.
FUEL_FREE = frozenset({"nop", "drop", "block", "loop", "unreachable", "return", "else", "end"})
FUEL_BLOCK_ENDS = frozenset({"loop", "if", "else", "end", "br", "br_if", "br_table", "call",
                             "call_indirect", "return", "unreachable"})
# Instructions that also charge one unit per byte, element or page they handle (their last
# operand). When an ``i32.const`` right before gives that count, it is charged with the other
# instructions; otherwise the instruction ends a run, and after it succeeds (a grow: if it grew)
# its count is charged and the fuel checked. See ``constant_items``.
FUEL_PER_ITEM = frozenset({"memory.grow", "memory.fill", "memory.copy", "memory.init", "table.grow",
                           "table.fill", "table.copy", "table.init"})
FUEL_PER_CALL = 1

PREFIX_FC = 0xFC
PREFIX_FD = 0xFD


def prefixed(prefix: int, sub: int) -> int:
    """The table key of a prefixed instruction (``0xFC 0x08`` -> 0xFC0008)."""
    return (prefix << 16) | sub


@dataclass(frozen=True, slots=True)
class Op:
    """One instruction: its key (``code``), text name, immediate kind and signature.

    ``params``/``results`` are ``None`` for instructions whose typing the validator does by
    hand (control, calls, locals, globals, tables, parametric ops). ``width`` is the number of
    bytes a memory access touches (0 for other instructions).
    """

    code: int
    name: str
    imm: str
    params: tuple[str, ...] | None
    results: tuple[str, ...] | None
    width: int = 0
    ident: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ident", self.name.replace(".", "_"))

    @property
    def prefix(self) -> int:
        """0 for one-byte opcodes, else 0xFC or 0xFD."""
        return self.code >> 16

    @property
    def fuel(self) -> int:
        """Fuel units this instruction costs (Config.consume_fuel), as in wasmtime: one, except
        instructions that generate no code or only move control."""
        return 0 if self.name in FUEL_FREE else 1

    @property
    def fuel_per_item(self) -> bool:
        return self.name in FUEL_PER_ITEM

    @property
    def ends_fuel_block(self) -> bool:
        """Whether wasmtime adds the fuel counted so far to the store's counter here (the end of
        a basic block); every tier charges the instructions between two such points together."""
        return self.name in FUEL_BLOCK_ENDS

    @property
    def is_simd(self) -> bool:
        """True for the 0xFD (SIMD) instructions."""
        return self.prefix == PREFIX_FD

    @property
    def encoding(self) -> bytes:
        """The opcode bytes as they appear in a binary module."""
        if not self.prefix:
            return bytes([self.code])
        sub, out = self.code & 0xFFFF, bytearray([self.prefix])
        while True:
            byte = sub & 0x7F
            sub >>= 7
            if sub:
                out.append(byte | 0x80)
            else:
                out.append(byte)
                return bytes(out)


_SHORT = {"i": I32, "I": I64, "f": F32, "F": F64, "v": V128}

# --- The table -------------------------------------------------------------------------------
# code  name  immediate  signature ("params:results" using i=i32 I=i64 f=f32 F=f64 v=v128,
# "*" = typed by hand in the validator). Memory instructions carry their access width after
# the signature.
_TABLE = """
00 unreachable - *
01 nop - :
02 block block *
03 loop block *
04 if block *
05 else - *
0B end - *
0C br label *
0D br_if label *
0E br_table br_table *
0F return - *
10 call func *
11 call_indirect call_indirect *
1A drop - *
1B select - *
1C select_t select_t *
20 local.get local *
21 local.set local *
22 local.tee local *
23 global.get global *
24 global.set global *
25 table.get table *
26 table.set table *
28 i32.load memarg i:i 4
29 i64.load memarg i:I 8
2A f32.load memarg i:f 4
2B f64.load memarg i:F 8
2C i32.load8_s memarg i:i 1
2D i32.load8_u memarg i:i 1
2E i32.load16_s memarg i:i 2
2F i32.load16_u memarg i:i 2
30 i64.load8_s memarg i:I 1
31 i64.load8_u memarg i:I 1
32 i64.load16_s memarg i:I 2
33 i64.load16_u memarg i:I 2
34 i64.load32_s memarg i:I 4
35 i64.load32_u memarg i:I 4
36 i32.store memarg ii: 4
37 i64.store memarg iI: 8
38 f32.store memarg if: 4
39 f64.store memarg iF: 8
3A i32.store8 memarg ii: 1
3B i32.store16 memarg ii: 2
3C i64.store8 memarg iI: 1
3D i64.store16 memarg iI: 2
3E i64.store32 memarg iI: 4
3F memory.size mem :i
40 memory.grow mem i:i
41 i32.const i32 :i
42 i64.const i64 :I
43 f32.const f32 :f
44 f64.const f64 :F
45 i32.eqz - i:i
46 i32.eq - ii:i
47 i32.ne - ii:i
48 i32.lt_s - ii:i
49 i32.lt_u - ii:i
4A i32.gt_s - ii:i
4B i32.gt_u - ii:i
4C i32.le_s - ii:i
4D i32.le_u - ii:i
4E i32.ge_s - ii:i
4F i32.ge_u - ii:i
50 i64.eqz - I:i
51 i64.eq - II:i
52 i64.ne - II:i
53 i64.lt_s - II:i
54 i64.lt_u - II:i
55 i64.gt_s - II:i
56 i64.gt_u - II:i
57 i64.le_s - II:i
58 i64.le_u - II:i
59 i64.ge_s - II:i
5A i64.ge_u - II:i
5B f32.eq - ff:i
5C f32.ne - ff:i
5D f32.lt - ff:i
5E f32.gt - ff:i
5F f32.le - ff:i
60 f32.ge - ff:i
61 f64.eq - FF:i
62 f64.ne - FF:i
63 f64.lt - FF:i
64 f64.gt - FF:i
65 f64.le - FF:i
66 f64.ge - FF:i
67 i32.clz - i:i
68 i32.ctz - i:i
69 i32.popcnt - i:i
6A i32.add - ii:i
6B i32.sub - ii:i
6C i32.mul - ii:i
6D i32.div_s - ii:i
6E i32.div_u - ii:i
6F i32.rem_s - ii:i
70 i32.rem_u - ii:i
71 i32.and - ii:i
72 i32.or - ii:i
73 i32.xor - ii:i
74 i32.shl - ii:i
75 i32.shr_s - ii:i
76 i32.shr_u - ii:i
77 i32.rotl - ii:i
78 i32.rotr - ii:i
79 i64.clz - I:I
7A i64.ctz - I:I
7B i64.popcnt - I:I
7C i64.add - II:I
7D i64.sub - II:I
7E i64.mul - II:I
7F i64.div_s - II:I
80 i64.div_u - II:I
81 i64.rem_s - II:I
82 i64.rem_u - II:I
83 i64.and - II:I
84 i64.or - II:I
85 i64.xor - II:I
86 i64.shl - II:I
87 i64.shr_s - II:I
88 i64.shr_u - II:I
89 i64.rotl - II:I
8A i64.rotr - II:I
8B f32.abs - f:f
8C f32.neg - f:f
8D f32.ceil - f:f
8E f32.floor - f:f
8F f32.trunc - f:f
90 f32.nearest - f:f
91 f32.sqrt - f:f
92 f32.add - ff:f
93 f32.sub - ff:f
94 f32.mul - ff:f
95 f32.div - ff:f
96 f32.min - ff:f
97 f32.max - ff:f
98 f32.copysign - ff:f
99 f64.abs - F:F
9A f64.neg - F:F
9B f64.ceil - F:F
9C f64.floor - F:F
9D f64.trunc - F:F
9E f64.nearest - F:F
9F f64.sqrt - F:F
A0 f64.add - FF:F
A1 f64.sub - FF:F
A2 f64.mul - FF:F
A3 f64.div - FF:F
A4 f64.min - FF:F
A5 f64.max - FF:F
A6 f64.copysign - FF:F
A7 i32.wrap_i64 - I:i
A8 i32.trunc_f32_s - f:i
A9 i32.trunc_f32_u - f:i
AA i32.trunc_f64_s - F:i
AB i32.trunc_f64_u - F:i
AC i64.extend_i32_s - i:I
AD i64.extend_i32_u - i:I
AE i64.trunc_f32_s - f:I
AF i64.trunc_f32_u - f:I
B0 i64.trunc_f64_s - F:I
B1 i64.trunc_f64_u - F:I
B2 f32.convert_i32_s - i:f
B3 f32.convert_i32_u - i:f
B4 f32.convert_i64_s - I:f
B5 f32.convert_i64_u - I:f
B6 f32.demote_f64 - F:f
B7 f64.convert_i32_s - i:F
B8 f64.convert_i32_u - i:F
B9 f64.convert_i64_s - I:F
BA f64.convert_i64_u - I:F
BB f64.promote_f32 - f:F
BC i32.reinterpret_f32 - f:i
BD i64.reinterpret_f64 - F:I
BE f32.reinterpret_i32 - i:f
BF f64.reinterpret_i64 - I:F
C0 i32.extend8_s - i:i
C1 i32.extend16_s - i:i
C2 i64.extend8_s - I:I
C3 i64.extend16_s - I:I
C4 i64.extend32_s - I:I
D0 ref.null reftype *
D1 ref.is_null - *
D2 ref.func func *
FC00 i32.trunc_sat_f32_s - f:i
FC01 i32.trunc_sat_f32_u - f:i
FC02 i32.trunc_sat_f64_s - F:i
FC03 i32.trunc_sat_f64_u - F:i
FC04 i64.trunc_sat_f32_s - f:I
FC05 i64.trunc_sat_f32_u - f:I
FC06 i64.trunc_sat_f64_s - F:I
FC07 i64.trunc_sat_f64_u - F:I
FC08 memory.init data_mem iii:
FC09 data.drop data :
FC0A memory.copy mem_mem iii:
FC0B memory.fill mem iii:
FC0C table.init elem_table iii:
FC0D elem.drop elem :
FC0E table.copy table_table iii:
FC0F table.grow table *
FC10 table.size table *
FC11 table.fill table *
FD00 v128.load memarg i:v 16
FD01 v128.load8x8_s memarg i:v 8
FD02 v128.load8x8_u memarg i:v 8
FD03 v128.load16x4_s memarg i:v 8
FD04 v128.load16x4_u memarg i:v 8
FD05 v128.load32x2_s memarg i:v 8
FD06 v128.load32x2_u memarg i:v 8
FD07 v128.load8_splat memarg i:v 1
FD08 v128.load16_splat memarg i:v 2
FD09 v128.load32_splat memarg i:v 4
FD0A v128.load64_splat memarg i:v 8
FD0B v128.store memarg iv: 16
FD0C v128.const v128 :v
FD0D i8x16.shuffle shuffle vv:v
FD0E i8x16.swizzle - vv:v
FD0F i8x16.splat - i:v
FD10 i16x8.splat - i:v
FD11 i32x4.splat - i:v
FD12 i64x2.splat - I:v
FD13 f32x4.splat - f:v
FD14 f64x2.splat - F:v
FD15 i8x16.extract_lane_s lane v:i
FD16 i8x16.extract_lane_u lane v:i
FD17 i8x16.replace_lane lane vi:v
FD18 i16x8.extract_lane_s lane v:i
FD19 i16x8.extract_lane_u lane v:i
FD1A i16x8.replace_lane lane vi:v
FD1B i32x4.extract_lane lane v:i
FD1C i32x4.replace_lane lane vi:v
FD1D i64x2.extract_lane lane v:I
FD1E i64x2.replace_lane lane vI:v
FD1F f32x4.extract_lane lane v:f
FD20 f32x4.replace_lane lane vf:v
FD21 f64x2.extract_lane lane v:F
FD22 f64x2.replace_lane lane vF:v
FD23 i8x16.eq - vv:v
FD24 i8x16.ne - vv:v
FD25 i8x16.lt_s - vv:v
FD26 i8x16.lt_u - vv:v
FD27 i8x16.gt_s - vv:v
FD28 i8x16.gt_u - vv:v
FD29 i8x16.le_s - vv:v
FD2A i8x16.le_u - vv:v
FD2B i8x16.ge_s - vv:v
FD2C i8x16.ge_u - vv:v
FD2D i16x8.eq - vv:v
FD2E i16x8.ne - vv:v
FD2F i16x8.lt_s - vv:v
FD30 i16x8.lt_u - vv:v
FD31 i16x8.gt_s - vv:v
FD32 i16x8.gt_u - vv:v
FD33 i16x8.le_s - vv:v
FD34 i16x8.le_u - vv:v
FD35 i16x8.ge_s - vv:v
FD36 i16x8.ge_u - vv:v
FD37 i32x4.eq - vv:v
FD38 i32x4.ne - vv:v
FD39 i32x4.lt_s - vv:v
FD3A i32x4.lt_u - vv:v
FD3B i32x4.gt_s - vv:v
FD3C i32x4.gt_u - vv:v
FD3D i32x4.le_s - vv:v
FD3E i32x4.le_u - vv:v
FD3F i32x4.ge_s - vv:v
FD40 i32x4.ge_u - vv:v
FD41 f32x4.eq - vv:v
FD42 f32x4.ne - vv:v
FD43 f32x4.lt - vv:v
FD44 f32x4.gt - vv:v
FD45 f32x4.le - vv:v
FD46 f32x4.ge - vv:v
FD47 f64x2.eq - vv:v
FD48 f64x2.ne - vv:v
FD49 f64x2.lt - vv:v
FD4A f64x2.gt - vv:v
FD4B f64x2.le - vv:v
FD4C f64x2.ge - vv:v
FD4D v128.not - v:v
FD4E v128.and - vv:v
FD4F v128.andnot - vv:v
FD50 v128.or - vv:v
FD51 v128.xor - vv:v
FD52 v128.bitselect - vvv:v
FD53 v128.any_true - v:i
FD54 v128.load8_lane memarg_lane iv:v 1
FD55 v128.load16_lane memarg_lane iv:v 2
FD56 v128.load32_lane memarg_lane iv:v 4
FD57 v128.load64_lane memarg_lane iv:v 8
FD58 v128.store8_lane memarg_lane iv: 1
FD59 v128.store16_lane memarg_lane iv: 2
FD5A v128.store32_lane memarg_lane iv: 4
FD5B v128.store64_lane memarg_lane iv: 8
FD5C v128.load32_zero memarg i:v 4
FD5D v128.load64_zero memarg i:v 8
FD5E f32x4.demote_f64x2_zero - v:v
FD5F f64x2.promote_low_f32x4 - v:v
FD60 i8x16.abs - v:v
FD61 i8x16.neg - v:v
FD62 i8x16.popcnt - v:v
FD63 i8x16.all_true - v:i
FD64 i8x16.bitmask - v:i
FD65 i8x16.narrow_i16x8_s - vv:v
FD66 i8x16.narrow_i16x8_u - vv:v
FD67 f32x4.ceil - v:v
FD68 f32x4.floor - v:v
FD69 f32x4.trunc - v:v
FD6A f32x4.nearest - v:v
FD6B i8x16.shl - vi:v
FD6C i8x16.shr_s - vi:v
FD6D i8x16.shr_u - vi:v
FD6E i8x16.add - vv:v
FD6F i8x16.add_sat_s - vv:v
FD70 i8x16.add_sat_u - vv:v
FD71 i8x16.sub - vv:v
FD72 i8x16.sub_sat_s - vv:v
FD73 i8x16.sub_sat_u - vv:v
FD74 f64x2.ceil - v:v
FD75 f64x2.floor - v:v
FD76 i8x16.min_s - vv:v
FD77 i8x16.min_u - vv:v
FD78 i8x16.max_s - vv:v
FD79 i8x16.max_u - vv:v
FD7A f64x2.trunc - v:v
FD7B i8x16.avgr_u - vv:v
FD7C i16x8.extadd_pairwise_i8x16_s - v:v
FD7D i16x8.extadd_pairwise_i8x16_u - v:v
FD7E i32x4.extadd_pairwise_i16x8_s - v:v
FD7F i32x4.extadd_pairwise_i16x8_u - v:v
FD80 i16x8.abs - v:v
FD81 i16x8.neg - v:v
FD82 i16x8.q15mulr_sat_s - vv:v
FD83 i16x8.all_true - v:i
FD84 i16x8.bitmask - v:i
FD85 i16x8.narrow_i32x4_s - vv:v
FD86 i16x8.narrow_i32x4_u - vv:v
FD87 i16x8.extend_low_i8x16_s - v:v
FD88 i16x8.extend_high_i8x16_s - v:v
FD89 i16x8.extend_low_i8x16_u - v:v
FD8A i16x8.extend_high_i8x16_u - v:v
FD8B i16x8.shl - vi:v
FD8C i16x8.shr_s - vi:v
FD8D i16x8.shr_u - vi:v
FD8E i16x8.add - vv:v
FD8F i16x8.add_sat_s - vv:v
FD90 i16x8.add_sat_u - vv:v
FD91 i16x8.sub - vv:v
FD92 i16x8.sub_sat_s - vv:v
FD93 i16x8.sub_sat_u - vv:v
FD94 f64x2.nearest - v:v
FD95 i16x8.mul - vv:v
FD96 i16x8.min_s - vv:v
FD97 i16x8.min_u - vv:v
FD98 i16x8.max_s - vv:v
FD99 i16x8.max_u - vv:v
FD9B i16x8.avgr_u - vv:v
FD9C i16x8.extmul_low_i8x16_s - vv:v
FD9D i16x8.extmul_high_i8x16_s - vv:v
FD9E i16x8.extmul_low_i8x16_u - vv:v
FD9F i16x8.extmul_high_i8x16_u - vv:v
FDA0 i32x4.abs - v:v
FDA1 i32x4.neg - v:v
FDA3 i32x4.all_true - v:i
FDA4 i32x4.bitmask - v:i
FDA7 i32x4.extend_low_i16x8_s - v:v
FDA8 i32x4.extend_high_i16x8_s - v:v
FDA9 i32x4.extend_low_i16x8_u - v:v
FDAA i32x4.extend_high_i16x8_u - v:v
FDAB i32x4.shl - vi:v
FDAC i32x4.shr_s - vi:v
FDAD i32x4.shr_u - vi:v
FDAE i32x4.add - vv:v
FDB1 i32x4.sub - vv:v
FDB5 i32x4.mul - vv:v
FDB6 i32x4.min_s - vv:v
FDB7 i32x4.min_u - vv:v
FDB8 i32x4.max_s - vv:v
FDB9 i32x4.max_u - vv:v
FDBA i32x4.dot_i16x8_s - vv:v
FDBC i32x4.extmul_low_i16x8_s - vv:v
FDBD i32x4.extmul_high_i16x8_s - vv:v
FDBE i32x4.extmul_low_i16x8_u - vv:v
FDBF i32x4.extmul_high_i16x8_u - vv:v
FDC0 i64x2.abs - v:v
FDC1 i64x2.neg - v:v
FDC3 i64x2.all_true - v:i
FDC4 i64x2.bitmask - v:i
FDC7 i64x2.extend_low_i32x4_s - v:v
FDC8 i64x2.extend_high_i32x4_s - v:v
FDC9 i64x2.extend_low_i32x4_u - v:v
FDCA i64x2.extend_high_i32x4_u - v:v
FDCB i64x2.shl - vi:v
FDCC i64x2.shr_s - vi:v
FDCD i64x2.shr_u - vi:v
FDCE i64x2.add - vv:v
FDD1 i64x2.sub - vv:v
FDD5 i64x2.mul - vv:v
FDD6 i64x2.eq - vv:v
FDD7 i64x2.ne - vv:v
FDD8 i64x2.lt_s - vv:v
FDD9 i64x2.gt_s - vv:v
FDDA i64x2.le_s - vv:v
FDDB i64x2.ge_s - vv:v
FDDC i64x2.extmul_low_i32x4_s - vv:v
FDDD i64x2.extmul_high_i32x4_s - vv:v
FDDE i64x2.extmul_low_i32x4_u - vv:v
FDDF i64x2.extmul_high_i32x4_u - vv:v
FDE0 f32x4.abs - v:v
FDE1 f32x4.neg - v:v
FDE3 f32x4.sqrt - v:v
FDE4 f32x4.add - vv:v
FDE5 f32x4.sub - vv:v
FDE6 f32x4.mul - vv:v
FDE7 f32x4.div - vv:v
FDE8 f32x4.min - vv:v
FDE9 f32x4.max - vv:v
FDEA f32x4.pmin - vv:v
FDEB f32x4.pmax - vv:v
FDEC f64x2.abs - v:v
FDED f64x2.neg - v:v
FDEF f64x2.sqrt - v:v
FDF0 f64x2.add - vv:v
FDF1 f64x2.sub - vv:v
FDF2 f64x2.mul - vv:v
FDF3 f64x2.div - vv:v
FDF4 f64x2.min - vv:v
FDF5 f64x2.max - vv:v
FDF6 f64x2.pmin - vv:v
FDF7 f64x2.pmax - vv:v
FDF8 i32x4.trunc_sat_f32x4_s - v:v
FDF9 i32x4.trunc_sat_f32x4_u - v:v
FDFA f32x4.convert_i32x4_s - v:v
FDFB f32x4.convert_i32x4_u - v:v
FDFC i32x4.trunc_sat_f64x2_s_zero - v:v
FDFD i32x4.trunc_sat_f64x2_u_zero - v:v
FDFE f64x2.convert_low_i32x4_s - v:v
FDFF f64x2.convert_low_i32x4_u - v:v
"""


def _parse_sig(text: str) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
    if text == "*":
        return None, None
    params, results = text.split(":")
    return tuple(_SHORT[c] for c in params), tuple(_SHORT[c] for c in results)


def _build() -> tuple[Op, ...]:
    ops = []
    for line in _TABLE.strip().splitlines():
        parts = line.split()
        code_text, name, imm, sig = parts[:4]
        width = int(parts[4]) if len(parts) > 4 else 0
        code = int(code_text, 16)
        if len(code_text) == 4:
            code = prefixed(code >> 8, code & 0xFF)
        params, results = _parse_sig(sig)
        ops.append(Op(code, name, "" if imm == "-" else imm, params, results, width))
    return tuple(ops)


OPS: tuple[Op, ...] = _build()
BY_CODE: dict[int, Op] = {op.code: op for op in OPS}
BY_NAME: dict[str, Op] = {op.name: op for op in OPS}
# One-byte opcodes indexed directly, for the decoder's hot loop (None = illegal opcode).
SINGLE_BYTE: list[Op | None] = [BY_CODE.get(b) for b in range(256)]


def fuel_step(body: list, i: int, module: Any) -> tuple[int, bool, bool]:
    """The fuel ``body[i]`` of a function of ``module`` (a structure.Module) adds to its run of
    instructions charged together; whether the run ends after it (a per-item instruction with a
    count known only at run time ends it); and whether the fuel charged so far is saved before
    it: a load or store whose offset puts it past the memory's declared maximum always traps,
    and wasmtime saves the fuel before such an access as before ``unreachable``."""
    op, imm, _ = body[i]
    cost, ends = op.fuel, op.ends_fuel_block
    if op.fuel_per_item:
        items = constant_items(body, i)
        if items is None:
            ends = True
        elif not _never_grows(op, imm, items, module):
            cost += items
    if op.width and not op.is_simd and imm[1] + op.width > module.memory_max_bytes():
        return cost, True, True
    return cost, ends, False


def _never_grows(op: Op, imm: Any, delta: int, module: Any) -> bool:
    """A grow by a constant ``delta`` past the largest size any memory (65536 pages) or table
    (2^32 - 1 elements) can have from its minimum: it always fails and costs nothing more."""
    if op.name == "memory.grow":
        return delta > 65536 - module.memory_types()[0].limits.min
    if op.name == "table.grow":
        return delta > 0xFFFFFFFF - module.table_types()[imm].limits.min
    return False


def runtime_items(body: list, i: int) -> bool:
    """Whether ``body[i]`` is a per-item instruction whose count is known only at run time: it is
    charged and checked after it ran (``fuel_per_item`` in the interpreter and the JIT)."""
    return body[i][0].fuel_per_item and constant_items(body, i) is None


def constant_items(body: list, i: int) -> int | None:
    """For the per-item instruction at ``body[i]`` (decoded ``(op, imm, offset)`` entries): the
    count it handles when an ``i32.const`` pushes it right before, else None (known at run time)."""
    if i > 0 and body[i - 1][0].name == "i32.const":
        return body[i - 1][1] & 0xFFFFFFFF
    return None
