/**
 * A small, defensive ELF reader (ELF32 and ELF64, little-endian, as the System V gABI gives the
 * layouts): program headers and notes, which is all the boot loaders need. Every offset is
 * bounds-checked; a malformed image gives an `ImageError` naming what is wrong.
 */

export class ImageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ImageError";
  }
}

export const PT_LOAD = 1;
export const PT_NOTE = 4;
export const EM_386 = 3;
export const EM_X86_64 = 62;

export interface ProgramHeader {
  type: number;
  offset: number;
  vaddr: number;
  paddr: number;
  filesz: number;
  memsz: number;
}

export interface ElfNote {
  name: string;
  type: number;
  desc: Uint8Array;
}

export interface ElfImage {
  class: 32 | 64;
  machine: number;
  entry: number;
  segments: ProgramHeader[];
  notes: ElfNote[];
}

export function isElf(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46;
}

export function parseElf(bytes: Uint8Array): ElfImage {
  if (!isElf(bytes)) throw new ImageError("not an ELF file (bad magic)");
  if (bytes.length < 52) throw new ImageError("ELF header truncated");
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const cls = bytes[4];
  if (cls !== 1 && cls !== 2) throw new ImageError(`unknown ELF class ${cls}`);
  if (bytes[5] !== 1) throw new ImageError("big-endian ELF is not an x86 image");
  const is64 = cls === 2;
  if (is64 && bytes.length < 64) throw new ImageError("ELF64 header truncated");
  const u64 = (o: number): number => {
    const lo = dv.getUint32(o, true);
    const hi = dv.getUint32(o + 4, true);
    if (hi >= 0x200000) throw new ImageError(`64-bit field at offset ${o} is too large`);
    return hi * 4294967296 + lo;
  };
  const machine = dv.getUint16(18, true);
  if (machine !== EM_386 && machine !== EM_X86_64) throw new ImageError(`ELF machine ${machine} is not x86`);
  const entry = is64 ? entryField(dv) : dv.getUint32(24, true);
  const phoff = is64 ? u64(32) : dv.getUint32(28, true);
  const phentsize = dv.getUint16(is64 ? 54 : 42, true);
  const phnum = dv.getUint16(is64 ? 56 : 44, true);
  const need = is64 ? 56 : 32;
  if (phnum === 0) throw new ImageError("ELF has no program headers");
  if (phentsize < need) throw new ImageError(`ELF program header size ${phentsize} too small`);
  if (phoff + phnum * phentsize > bytes.length) throw new ImageError("ELF program headers lie outside the file");
  const segments: ProgramHeader[] = [];
  for (let k = 0; k < phnum; k++) {
    const o = phoff + k * phentsize;
    const ph: ProgramHeader = is64
      ? {
          type: dv.getUint32(o, true),
          offset: u64(o + 8),
          vaddr: vaddr64(dv, o + 16),
          paddr: u64(o + 24),
          filesz: u64(o + 32),
          memsz: u64(o + 40),
        }
      : {
          type: dv.getUint32(o, true),
          offset: dv.getUint32(o + 4, true),
          vaddr: dv.getUint32(o + 8, true),
          paddr: dv.getUint32(o + 12, true),
          filesz: dv.getUint32(o + 16, true),
          memsz: dv.getUint32(o + 20, true),
        };
    if ((ph.type === PT_LOAD || ph.type === PT_NOTE) && ph.offset + ph.filesz > bytes.length) {
      throw new ImageError(
        `segment ${k} (offset 0x${ph.offset.toString(16)}, size 0x${ph.filesz.toString(16)}) lies outside the file`,
      );
    }
    if (ph.type === PT_LOAD && ph.memsz < ph.filesz) throw new ImageError(`segment ${k} has memsz < filesz`);
    segments.push(ph);
  }
  const notes: ElfNote[] = [];
  for (const ph of segments) {
    if (ph.type !== PT_NOTE) continue;
    let o = ph.offset;
    const end = ph.offset + ph.filesz;
    while (o + 12 <= end) {
      const namesz = dv.getUint32(o, true);
      const descsz = dv.getUint32(o + 4, true);
      const type = dv.getUint32(o + 8, true);
      const nameOff = o + 12;
      const descOff = nameOff + align4(namesz);
      const next = descOff + align4(descsz);
      if (next > end) throw new ImageError("ELF note runs past its segment");
      const name = new TextDecoder().decode(bytes.subarray(nameOff, nameOff + Math.max(0, namesz - 1)));
      notes.push({ name, type, desc: bytes.slice(descOff, descOff + descsz) });
      o = next;
    }
  }
  return { class: is64 ? 64 : 32, machine, entry, segments, notes };
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

/** e_entry of an ELF64 image; higher-half entries are kept as their low 32 bits + flag via number. */
function entryField(dv: DataView): number {
  const lo = dv.getUint32(24, true);
  const hi = dv.getUint32(28, true);
  return hi === 0 ? lo : hi * 4294967296 + lo;
}

/** Virtual addresses may be in the higher half (> 2^53 is not exact; only used for reporting). */
function vaddr64(dv: DataView, o: number): number {
  return dv.getUint32(o + 4, true) * 4294967296 + dv.getUint32(o, true);
}
