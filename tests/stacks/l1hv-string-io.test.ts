/**
 * String I/O under the executed L1's vmx back end (guests/l1hv/vmx_exits.c, string_io): an L2
 * REP OUTSB to COM1 and a REP INSB from fw_cfg's data port, one exit per element (the element's
 * address from GUEST_LINEAR_ADDRESS, the address size from the VM-exit instruction information).
 * L2 is a small 64-bit program (direct-64 note); it checks the fw_cfg signature it read ("QEMU")
 * and writes 0 to the debug-exit port when it matches, 1 otherwise.
 */
import { describe, expect, it } from "vitest";
import { bareL1Stack } from "../../src/stacks/bare-l1.js";
import { nvmxStack } from "../../src/stacks/nvmx.js";
import type { Stack } from "../../src/stacks/stack.js";
import { asm, HAVE_AS } from "../helpers/asm.js";
import { imageWithEntryNote } from "../helpers/elf.js";

const MESSAGE = "rep outsb\n";

const SOURCE = `
  cld
  lea rsi, [rip + msg]
  mov ecx, ${MESSAGE.length}
  mov dx, 0x3f8
  rep outsb
  mov dx, 0x510
  xor eax, eax
  out dx, ax
  mov dx, 0x511
  lea rdi, [rip + buf]
  mov ecx, 4
  rep insb
  xor eax, eax
  cmp dword ptr [rip + buf], 0x554d4551
  setne al
  cmp ecx, 0
  jne bad
  lea rdx, [rip + buf + 4]
  cmp rdi, rdx
  jne bad
  out 0xf4, al
  hlt
bad:
  mov al, 2
  out 0xf4, al
  hlt
msg: .ascii "${MESSAGE.replace("\n", "\\n")}"
  .align 4
buf: .long 0, 0
`;

function run(stack: Stack) {
  const image = imageWithEntryNote(asm(SOURCE));
  return stack.run({ image, cmdline: "", memory: 16 * 1024 * 1024, maxInstructions: 50_000_000 });
}

describe.skipIf(!HAVE_AS)("string I/O through L1 (INS/OUTS, REP)", () => {
  for (const stack of [bareL1Stack, nvmxStack]) {
    it(`${stack.name}: REP OUTSB prints, REP INSB reads fw_cfg's signature, one exit per element`, () => {
      const r = run(stack);
      expect(r.outcome.kind, `${r.outcome.message}\n${r.serial}`).toBe("debug-exit");
      expect(r.serial).toContain(MESSAGE);
      // status 0: "QEMU" read, RCX counted to 0, RDI stepped by 4 (nestlab's exit code 1 = guest wrote 0)
      expect(r.exitStatus).toBe(1);
      // one per OUTSB element, the selector write, one per INSB element, the debug exit
      expect(r.counters["exits.L1.io_instruction"]).toBe(MESSAGE.length + 1 + 4 + 1);
    });
  }
});
