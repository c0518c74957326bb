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

/** The ELF64 file header of an x86-64 executable with `phnum` program headers right after it. */
function elfHeader(out: Uint8Array, entry: number, phnum: number): void {
  const v = new DataView(out.buffer, out.byteOffset);
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  v.setUint16(16, 2, true); // ET_EXEC
  v.setUint16(18, 0x3e, true); // EM_X86_64
  v.setUint32(20, 1, true);
  v.setUint32(24, entry, true);
  v.setUint32(32, 64, true); // e_phoff
  v.setUint16(52, 64, true); // e_ehsize
  v.setUint16(54, 56, true); // e_phentsize
  v.setUint16(56, phnum, true);
}

/** A minimal ELF64 image: one PT_LOAD of `code` at physical 0x100000, entry at its start. */
export function elf64At1M(code: Uint8Array): Uint8Array {
  const off = 0x78; // after the 64-byte header and one 56-byte program header
  const b = new Uint8Array(off + code.length);
  const dv = new DataView(b.buffer);
  elfHeader(b, 0x100000 + off, 1);
  dv.setUint32(64, 1, true); // PT_LOAD
  dv.setUint32(68, 7, true);
  dv.setUint32(64 + 16, 0x100000, true); // vaddr
  dv.setUint32(64 + 24, 0x100000, true); // paddr
  dv.setUint32(64 + 32, b.length, true); // filesz
  dv.setUint32(64 + 40, b.length, true); // memsz
  b.set(code, off);
  return b;
}

/**
 * ELF64 with one PT_LOAD of `code` at base and a PT_NOTE "nestlab" type 1 (NL_NOTE_ENTRY64) naming
 * base as the direct 64-bit entry, as guests/kernel/boot.S publishes entry64: bootable as L2 by l1hv.
 */
export function imageWithEntryNote(code: Uint8Array, base = 0x100000): Uint8Array {
  const noteOff = 0xb0;
  const codeOff = 0x1000;
  const out = new Uint8Array(codeOff + code.length);
  const v = new DataView(out.buffer);
  elfHeader(out, base, 2);
  const ph = (i: number, type: number, flags: number, off: number, addr: number, size: number, align: number) => {
    const o = 64 + 56 * i;
    v.setUint32(o, type, true);
    v.setUint32(o + 4, flags, true);
    v.setUint32(o + 8, off, true);
    v.setUint32(o + 16, addr, true);
    v.setUint32(o + 24, addr, true);
    v.setUint32(o + 32, size, true);
    v.setUint32(o + 40, size, true);
    v.setUint32(o + 48, align, true);
  };
  ph(0, 1, 7, codeOff, base, code.length, 0x1000); // PT_LOAD RWX
  ph(1, 4, 4, noteOff, 0, 24, 4); // PT_NOTE
  v.setUint32(noteOff, 8, true); // namesz
  v.setUint32(noteOff + 4, 8, true); // descsz
  v.setUint32(noteOff + 8, 1, true); // NL_NOTE_ENTRY64
  out.set(new TextEncoder().encode("nestlab\0"), noteOff + 12);
  v.setUint32(noteOff + 20, base, true);
  out.set(code, codeOff);
  return out;
}
