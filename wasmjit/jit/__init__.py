"""The JIT tier: wasm functions compiled to x86-64 machine code, run natively or under Unicorn.

The pipeline, one module per stage, each talking only to the next:

1. ``lower``: a validated wasm function -> linear IR over virtual registers (``ir``), one
   Liftoff-style pass with latent constants and comparisons.
2. ``regalloc``: a greedy allocator over live intervals gives every virtual register a physical
   register or a frame slot.
3. ``x64``: the code generator turns the allocated IR into calls on the macro-assembler
   ``x64.Masm``, the only producer of assembly text; it enforces the Keystone 0.9.2 emitter rules
   and records what every instruction must assemble to, and which immediates are relocations
   (a store's addresses and numbers, ``codegen.TARGETS``).
4. ``assemble``: one Keystone call per function (at offset 0: the code is position-independent),
   then a Capstone walk that checks the bytes (statement count and coverage always; every operand
   with ``full=True``) and recovers label addresses and relocation offsets.
5. ``artifact``: the result, relocatable code a module keeps for all its instances (and
   ``serialize`` stores with the wasm bytes: ``Module.serialize``/``deserialize``).
6. ``codemem``: executable memory, W^X: reserve an address, stage the code (relocations patched
   for the store), commit (write, then read+execute); also the host CPU feature check.
7. ``native`` / ``tier`` / ``emulate``: installing and calling compiled code through ctypes, the
   tier-up policy (entry and back-edge budgets, loop OSR), and running the same bytes under Unicorn.
"""
