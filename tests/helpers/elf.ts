/** A minimal ELF64 (one PT_LOAD at `addr`, entry at its start) around raw code. */
export function elf64(code: ArrayLike<number>, addr = 0x100000): Uint8Array {
  const off = 0x1000;
  const out = new Uint8Array(off + code.length);
  const v = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]);
  v.setUint16(16, 2, true); // ET_EXEC
  v.setUint16(18, 0x3e, true); // EM_X86_64
  v.setUint32(20, 1, true);
  v.setUint32(24, addr, true); // e_entry
  v.setUint32(32, 64, true); // e_phoff
  v.setUint16(52, 64, true); // e_ehsize
  v.setUint16(54, 56, true); // e_phentsize
  v.setUint16(56, 1, true); // e_phnum
  v.setUint32(64, 1, true); // PT_LOAD
  v.setUint32(68, 5, true); // R X
  v.setUint32(72, off, true); // p_offset
  v.setUint32(80, addr, true); // p_vaddr
  v.setUint32(88, addr, true); // p_paddr
  v.setUint32(96, code.length, true); // p_filesz
  v.setUint32(104, code.length, true); // p_memsz
  v.setUint32(112, 0x1000, true); // p_align
  out.set(code, off);
  return out;
}

/** A minimal ELF64 image: one PT_LOAD of `code` at physical 0x100000, entry at its start. */
export function elf64At1M(code: Uint8Array): Uint8Array {
  const off = 0x78; // after the 64-byte header and one 56-byte program header
  const b = new Uint8Array(off + code.length);
  const dv = new DataView(b.buffer);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  dv.setUint16(16, 2, true); // ET_EXEC
  dv.setUint16(18, 0x3e, true); // EM_X86_64
  dv.setUint32(20, 1, true);
  dv.setUint32(24, 0x100000 + off, true); // entry
  dv.setUint32(32, 64, true); // phoff
  dv.setUint16(52, 64, true);
  dv.setUint16(54, 56, true);
  dv.setUint16(56, 1, true);
  dv.setUint32(64, 1, true); // PT_LOAD
  dv.setUint32(68, 7, true);
  dv.setUint32(64 + 16, 0x100000, true); // vaddr
  dv.setUint32(64 + 24, 0x100000, true); // paddr
  dv.setUint32(64 + 32, b.length, true); // filesz
  dv.setUint32(64 + 40, b.length, true); // memsz
  b.set(code, off);
  return b;
}
