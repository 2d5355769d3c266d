// The eBPF assembler's encodings against the kernel's documented instruction bytes; labels and operand checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Asm, ALU, JMP, SZ, R0, R1, R2, R3, R6, FP } from '../../src/fastpath/asm.ts';
import { buildTcProgram, TC_ACT } from '../../src/fastpath/tc-prog.ts';

const hex = (b: Uint8Array): string[] => [...Array(b.length / 8).keys()].map((i) => Buffer.from(b.subarray(i * 8, i * 8 + 8)).toString('hex'));

test('encodings: mov/alu/ldx/stx/st/atomic/end/call/exit match struct bpf_insn', () => {
  const a = new Asm()
    .movi(R0, 2) // BPF_ALU64|BPF_MOV|BPF_K = 0xb7
    .mov(R6, R1) // 0xbf, dst 6 src 1
    .addi(R1, -16) // 0x07, imm -16
    .alu32(ALU.AND, R2, 0xff3f) // 0x54
    .ldx(SZ.W, R2, R6, 76) // 0x61, off 76
    .ldx(SZ.B, R3, R2, 23) // 0x71
    .stx(SZ.W, FP, -4, R2) // 0x63, dst 10 src 2, off -4
    .st(SZ.W, FP, -8, 0x0445) // 0x62
    .atomicAdd64(R0, 40, R2) // 0xdb, imm BPF_ADD (0)
    .toBe(R3, 16) // 0xdc, imm 16
    .call(1) // 0x85
    .exit(); // 0x95
  assert.deepEqual(hex(a.bytes()), [
    'b700000002000000',
    'bf16000000000000',
    '07010000f0ffffff',
    '540200003fff0000',
    '61624c0000000000', // dst 2, src 6
    '7123170000000000',
    '632afcff00000000',
    '620af8ff45040000',
    'db20280000000000',
    'dc03000010000000',
    '8500000001000000',
    '9500000000000000',
  ]);
});

test('ld_imm64 and map references take two slots; jumps resolve forward and backward', () => {
  const a = new Asm().label('top').ldMap(R1, 5).ldImm64(R2, 0x1122334455667788n).jmp(JMP.JEQ, R0, 0, 'end').jmp32(JMP.JNE, R2, { reg: R3 }, 'top').ja('end').label('end').exit();
  assert.deepEqual(hex(a.bytes()), [
    '1811000005000000', // src_reg 1 = BPF_PSEUDO_MAP_FD
    '0000000000000000',
    '1802000088776655',
    '0000000044332211',
    '1500020000000000', // +2: over the next two
    '5e32faff00000000', // JMP32|JNE|X back to 0: -(5 + 1)
    '0500000000000000', // ja +0
    '9500000000000000',
  ]);
});

test('bad operands and unplaced labels are refused at assembly time', () => {
  assert.throws(() => new Asm().ldx(SZ.W, 11, 0, 0), /register/);
  assert.throws(() => new Asm().ldx(SZ.W, R0, R1, 0x8000), /offset/);
  assert.throws(() => new Asm().movi(R0, 2 ** 33), /immediate/);
  assert.throws(() => new Asm().ja('nowhere').exit().bytes(), /unplaced label nowhere/);
  assert.throws(() => new Asm().label('x').label('x'), /twice/);
});

test('the tcx program builds for any MAC and punt verdict, without root', () => {
  const p = buildTcProgram({ mapFd: 3, mac: Uint8Array.from([2, 0, 0, 0, 1, 1]), punt: TC_ACT.SHOT });
  assert.equal(p.length % 8, 0);
  assert.ok(p.length / 8 < 4096, 'well under the 4096-instruction limit of unprivileged-era verifiers');
  assert.throws(() => buildTcProgram({ mapFd: 3, mac: new Uint8Array(4), punt: 0 }), /6 bytes/);
});
