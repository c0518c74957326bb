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
