/**
 * System instructions. (Being extended: see the system-instructions work.)
 */
import { GP } from "../../x86/exceptions.js";
import type { Cpu } from "../cpu.js";
import type { Insn } from "../insn.js";
import type { OpDef } from "../opdef.js";

/** HLT: privileged; stops fetching until an interrupt (or forever with IF=0). */
function hlt(c: Cpu, _i: Insn): void {
  if (c.cpl !== 0) c.raise(GP, 0);
  c.halt();
}

export const SYSTEM_OPS: readonly OpDef[] = [{ name: "hlt", map: 0, code: 0xf4, modrm: false, size: "v", exec: hlt }];
