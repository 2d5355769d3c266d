// A small eBPF assembler: named registers, labels and map references, encoded as the kernel's struct bpf_insn.

/** Registers: R0 return value, R1–R5 arguments (clobbered by calls), R6–R9 callee-saved, R10 frame pointer. */
export const R0 = 0, R1 = 1, R2 = 2, R3 = 3, R4 = 4, R5 = 5, R6 = 6, R7 = 7, R8 = 8, R9 = 9, FP = 10;
export type Reg = number;

/** Instruction classes and fields (linux/bpf_common.h, linux/bpf.h). */
const CLS = { LD: 0x00, LDX: 0x01, ST: 0x02, STX: 0x03, ALU: 0x04, JMP: 0x05, JMP32: 0x06, ALU64: 0x07 } as const;
const SRC_K = 0x00;
const SRC_X = 0x08;
const MODE_IMM = 0x00;
const MODE_MEM = 0x60;
const MODE_ATOMIC = 0xc0;

/** Access sizes. */
export const SZ = { W: 0x00, H: 0x08, B: 0x10, DW: 0x18 } as const;
export type Size = (typeof SZ)[keyof typeof SZ];

/** ALU operations. */
export const ALU = {
  ADD: 0x00, SUB: 0x10, MUL: 0x20, DIV: 0x30, OR: 0x40, AND: 0x50, LSH: 0x60, RSH: 0x70,
  NEG: 0x80, MOD: 0x90, XOR: 0xa0, MOV: 0xb0, ARSH: 0xc0, END: 0xd0,
} as const;
export type AluOp = (typeof ALU)[keyof typeof ALU];

/** Conditional jumps (unsigned unless S). */
export const JMP = {
  JEQ: 0x10, JGT: 0x20, JGE: 0x30, JSET: 0x40, JNE: 0x50, JSGT: 0x60, JSGE: 0x70, JLT: 0xa0, JLE: 0xb0, JSLT: 0xc0, JSLE: 0xd0,
} as const;
export type JmpOp = (typeof JMP)[keyof typeof JMP];
const OP_JA = 0x00;
const OP_CALL = 0x80;
const OP_EXIT = 0x90;
/** BPF_END source bit: to big-endian. */
const END_TO_BE = 0x08;
/** src_reg of a ld_imm64 whose immediate is a map fd. */
const PSEUDO_MAP_FD = 1;

interface Insn {
  code: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
}

/**
 * Builds a program instruction by instruction. Jumps name a label, resolved by `bytes()`; a label
 * may be placed before or after the jumps to it. Every operand is range-checked at emit time, so a
 * program the assembler accepts is at least well-formed (the verifier judges the rest).
 */
export class Asm {
  private readonly insns: Insn[] = [];
  private readonly labels = new Map<string, number>();
  private readonly fixups: { at: number; label: string }[] = [];

  /** Instructions so far (a ld_imm64 counts two). */
  get length(): number {
    return this.insns.length;
  }

  private emit(code: number, dst: Reg, src: Reg, off: number, imm: number): this {
    if (!Number.isInteger(dst) || dst < 0 || dst > 10 || !Number.isInteger(src) || src < 0 || src > 10) throw new RangeError(`bad register ${dst}/${src}`);
    if (!Number.isInteger(off) || off < -0x8000 || off > 0x7fff) throw new RangeError(`offset ${off} out of 16 bits`);
    if (!Number.isInteger(imm) || imm < -0x80000000 || imm > 0xffffffff) throw new RangeError(`immediate ${imm} out of 32 bits`);
    this.insns.push({ code, dst, src, off, imm: imm | 0 });
    return this;
  }

  /** Places a label at the next instruction. */
  label(name: string): this {
    if (this.labels.has(name)) throw new Error(`label ${name} placed twice`);
    this.labels.set(name, this.insns.length);
    return this;
  }

  /** 64-bit ALU: `dst op= src` (register) or `dst op= imm` (number, sign-extended from 32 bits). */
  alu64(op: AluOp, dst: Reg, src: { reg: Reg } | number): this {
    return typeof src === 'number' ? this.emit(CLS.ALU64 | op | SRC_K, dst, 0, 0, src) : this.emit(CLS.ALU64 | op | SRC_X, dst, src.reg, 0, 0);
  }

  /** 32-bit ALU (the upper half of dst is zeroed). */
  alu32(op: AluOp, dst: Reg, src: { reg: Reg } | number): this {
    return typeof src === 'number' ? this.emit(CLS.ALU | op | SRC_K, dst, 0, 0, src) : this.emit(CLS.ALU | op | SRC_X, dst, src.reg, 0, 0);
  }

  /** `dst = src` (64-bit). */
  mov(dst: Reg, src: Reg): this {
    return this.alu64(ALU.MOV, dst, { reg: src });
  }

  /** `dst = imm` (64-bit, sign-extended). */
  movi(dst: Reg, imm: number): this {
    return this.alu64(ALU.MOV, dst, imm);
  }

  /** `dst += imm` (64-bit). */
  addi(dst: Reg, imm: number): this {
    return this.alu64(ALU.ADD, dst, imm);
  }

  /** Byte-swaps the low `bits` (16, 32, 64) of dst to big-endian (a swap on a little-endian host). */
  toBe(dst: Reg, bits: 16 | 32 | 64): this {
    return this.emit(CLS.ALU | ALU.END | END_TO_BE, dst, 0, 0, bits);
  }

  /** `dst = *(size *)(src + off)`, zero-extended. */
  ldx(size: Size, dst: Reg, src: Reg, off: number): this {
    return this.emit(CLS.LDX | MODE_MEM | size, dst, src, off, 0);
  }

  /** `*(size *)(dst + off) = src`. */
  stx(size: Size, dst: Reg, off: number, src: Reg): this {
    return this.emit(CLS.STX | MODE_MEM | size, dst, src, off, 0);
  }

  /** `*(size *)(dst + off) = imm`. */
  st(size: Size, dst: Reg, off: number, imm: number): this {
    return this.emit(CLS.ST | MODE_MEM | size, dst, 0, off, imm);
  }

  /** `lock *(u64 *)(dst + off) += src` (BPF_ATOMIC BPF_ADD). */
  atomicAdd64(dst: Reg, off: number, src: Reg): this {
    return this.emit(CLS.STX | MODE_ATOMIC | SZ.DW, dst, src, off, ALU.ADD);
  }

  /** Two-slot load of a 64-bit immediate. */
  ldImm64(dst: Reg, v: bigint): this {
    const u = BigInt.asUintN(64, v);
    this.emit(CLS.LD | MODE_IMM | SZ.DW, dst, 0, 0, Number(u & 0xffffffffn));
    return this.emit(0, 0, 0, 0, Number(u >> 32n));
  }

  /** `dst = map` by fd (BPF_PSEUDO_MAP_FD: the kernel swaps the fd for the map's address at load). */
  ldMap(dst: Reg, fd: number): this {
    this.emit(CLS.LD | MODE_IMM | SZ.DW, dst, PSEUDO_MAP_FD, 0, fd);
    return this.emit(0, 0, 0, 0, 0);
  }

  /** Conditional jump, 64-bit compare: `if dst op src goto label`. */
  jmp(op: JmpOp, dst: Reg, src: { reg: Reg } | number, label: string): this {
    return this.jump(CLS.JMP, op, dst, src, label);
  }

  /** Conditional jump on the low 32 bits (an immediate is compared as 32 bits, not sign-extended to 64). */
  jmp32(op: JmpOp, dst: Reg, src: { reg: Reg } | number, label: string): this {
    return this.jump(CLS.JMP32, op, dst, src, label);
  }

  private jump(cls: number, op: JmpOp, dst: Reg, src: { reg: Reg } | number, label: string): this {
    this.fixups.push({ at: this.insns.length, label });
    return typeof src === 'number' ? this.emit(cls | op | SRC_K, dst, 0, 0, src) : this.emit(cls | op | SRC_X, dst, src.reg, 0, 0);
  }

  /** Unconditional jump. */
  ja(label: string): this {
    this.fixups.push({ at: this.insns.length, label });
    return this.emit(CLS.JMP | OP_JA, 0, 0, 0, 0);
  }

  /** Calls helper number `id` (BPF_FUNC_*); arguments in R1–R5, result in R0. */
  call(id: number): this {
    return this.emit(CLS.JMP | OP_CALL, 0, 0, 0, id);
  }

  exit(): this {
    return this.emit(CLS.JMP | OP_EXIT, 0, 0, 0, 0);
  }

  /** The program as struct bpf_insn array bytes (little-endian host, as the kernel reads them). */
  bytes(): Uint8Array {
    for (const f of this.fixups) {
      const to = this.labels.get(f.label);
      if (to === undefined) throw new Error(`jump to unplaced label ${f.label}`);
      const off = to - f.at - 1;
      if (off < -0x8000 || off > 0x7fff) throw new RangeError(`jump to ${f.label} too far`);
      this.insns[f.at]!.off = off;
    }
    const out = new Uint8Array(this.insns.length * 8);
    const dv = new DataView(out.buffer);
    this.insns.forEach((x, i) => {
      dv.setUint8(i * 8, x.code);
      dv.setUint8(i * 8 + 1, (x.src << 4) | x.dst);
      dv.setInt16(i * 8 + 2, x.off, true);
      dv.setInt32(i * 8 + 4, x.imm, true);
    });
    return out;
  }
}
