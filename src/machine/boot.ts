/**
 * Boot loaders: multiboot v1 (32-bit protected-mode entry, as QEMU's -kernel and GRUB boot) and
 * nestlab's direct 64-bit entry (long mode at the ELF note's entry point, RSI = boot-info), laid
 * out in docs/boot.md. Loaders need no CPU: each returns a boot state (the pages it wrote and the
 * boot CPU's entry state) that the bare machine loads into its CPU and a hypervisor into a VMCS.
 */
import type { Cpu } from "../cpu/cpu.js";
import { PhysicalMemory } from "../mmu/phys.js";
import { type BootState, loadBootState, resetBootState, writtenPages } from "./boot-state.js";
import { type ElfImage, ImageError, isElf, PT_LOAD, parseElf } from "./elf.js";
import { longModeRegisters, writeLongModeTables } from "./longmode.js";
import { PC_RAM_HOLE_START } from "./pc-layout.js";

export const MULTIBOOT_HEADER_MAGIC = 0x1badb002;
export const MULTIBOOT_BOOTLOADER_MAGIC = 0x2badb002;
export const NLBI_MAGIC = 0x49424c4e; // "NLBI"
export const NESTLAB_NOTE_ENTRY64 = 1;

/** Where the loaders put their structures (all below the 1 MiB kernel load floor). */
const GDT_ADDR = 0x500;
const PAGE_TABLES = 0x1000; // PML4, PDPT, 4 page directories: 0x1000–0x6fff
const INFO_ADDR = 0x8000; // boot-info / multiboot info
const MMAP_ADDR = 0x8100;
const CMDLINE_ADDR = 0x8800; // up to 0x8fff
const MAX_CMDLINE = 0x7ff;
const MODS_ADDR = 0x9000; // multiboot module list, then the modules' command lines, up to 0x9fff
const MODS_END = 0xa000;
const LOW_MEM_END = 0x9fc00; // conventional memory (640 KiB less the EBDA)
/** RAM above this is hidden: the MMIO windows (virtio, LAPIC) live there and above (pc-layout.ts). */
export const RAM_HOLE_START = PC_RAM_HOLE_START;

export type BootProtocol = "multiboot" | "direct64";

export interface BootResult {
  protocol: BootProtocol;
  entry: number;
  /** Highest physical byte the image occupies, +1. */
  imageEnd: number;
}

/** A multiboot module (Multiboot 0.6.96 §3.3, "mods"): its bytes and its command line. */
export interface BootModule {
  bytes: Uint8Array;
  cmdline: string;
}

/**
 * Load multiboot modules page-aligned after the image (as QEMU's -initrd and GRUB place them)
 * and write the module list at MODS_ADDR: per module mod_start, mod_end, the address of its
 * zero-terminated command line, and a reserved 0 (§3.3). Returns the module count.
 */
function loadModules(mem: PhysicalMemory, modules: readonly BootModule[], imageEnd: number): number {
  const top = Math.min(mem.size, RAM_HOLE_START);
  let at = Math.ceil(imageEnd / 4096) * 4096;
  let str = MODS_ADDR + modules.length * 16;
  modules.forEach((m, k) => {
    if (at + m.bytes.length > top) {
      throw new ImageError(
        `module ${k + 1} (${m.bytes.length} bytes at 0x${at.toString(16)}) does not fit in guest RAM (ends at 0x${top.toString(16)})`,
      );
    }
    const name = new TextEncoder().encode(m.cmdline);
    if (str + name.length + 1 > MODS_END) throw new ImageError("module list and command lines exceed 4 KiB");
    mem.writeBytes(at, m.bytes);
    mem.writeBytes(str, name);
    mem.write(str + name.length, 1, 0);
    const e = MODS_ADDR + k * 16;
    mem.write(e, 4, at);
    mem.write(e + 4, 4, at + m.bytes.length);
    mem.write(e + 8, 4, str);
    mem.write(e + 12, 4, 0);
    str += name.length + 1;
    at = Math.ceil((at + m.bytes.length) / 4096) * 4096;
  });
  return modules.length;
}

/** What a loader hands over: the boot state, and where the image went. */
export interface LoadedImage extends BootResult {
  state: BootState;
}

interface MemRange {
  base: number;
  length: number;
  type: number;
}

function memoryMap(ramSize: number): MemRange[] {
  const top = Math.min(ramSize, RAM_HOLE_START);
  const map: MemRange[] = [
    { base: 0, length: LOW_MEM_END, type: 1 },
    { base: LOW_MEM_END, length: 0x100000 - LOW_MEM_END, type: 2 },
  ];
  if (top > 0x100000) map.push({ base: 0x100000, length: top - 0x100000, type: 1 });
  return map;
}

function writeU64(mem: PhysicalMemory, addr: number, v: number): void {
  mem.write64(addr, v % 4294967296, Math.floor(v / 4294967296));
}

function loadSegments(mem: PhysicalMemory, bytes: Uint8Array, elf: ElfImage): number {
  let end = 0;
  let loaded = 0;
  for (const ph of elf.segments) {
    if (ph.type !== PT_LOAD || ph.memsz === 0) continue;
    if (ph.paddr < 0x1000 || ph.paddr + ph.memsz > Math.min(mem.size, RAM_HOLE_START)) {
      throw new ImageError(
        `segment at physical 0x${ph.paddr.toString(16)}–0x${(ph.paddr + ph.memsz).toString(16)} lies outside guest RAM (0x1000–0x${Math.min(mem.size, RAM_HOLE_START).toString(16)})`,
      );
    }
    if (ph.paddr < 0x9000 + 0x1000 && ph.paddr + ph.memsz > GDT_ADDR) {
      throw new ImageError(
        `segment at 0x${ph.paddr.toString(16)} overlaps the loader's low-memory structures (below 0xA000)`,
      );
    }
    mem.writeBytes(ph.paddr, bytes.subarray(ph.offset, ph.offset + ph.filesz));
    if (ph.memsz > ph.filesz) mem.writeBytes(ph.paddr + ph.filesz, new Uint8Array(ph.memsz - ph.filesz));
    end = Math.max(end, ph.paddr + ph.memsz);
    loaded++;
  }
  if (loaded === 0) throw new ImageError("ELF has no loadable segments");
  return end;
}

function writeCmdline(mem: PhysicalMemory, cmdline: string): number {
  const bytes = new TextEncoder().encode(cmdline);
  if (bytes.length > MAX_CMDLINE) throw new ImageError(`command line longer than ${MAX_CMDLINE} bytes`);
  mem.writeBytes(CMDLINE_ADDR, bytes);
  mem.write(CMDLINE_ADDR + bytes.length, 1, 0);
  return bytes.length;
}

/** Find the multiboot v1 header: in the first 8 KiB, 4-byte aligned, checksum valid. */
export function findMultibootHeader(bytes: Uint8Array): number {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const limit = Math.min(bytes.length - 12, 8192 - 12);
  for (let o = 0; o <= limit; o += 4) {
    if (dv.getUint32(o, true) !== MULTIBOOT_HEADER_MAGIC) continue;
    const flags = dv.getUint32(o + 4, true);
    const sum = (MULTIBOOT_HEADER_MAGIC + flags + dv.getUint32(o + 8, true)) >>> 0;
    if (sum === 0) return o;
  }
  return -1;
}

/**
 * Multiboot v1 (the Multiboot Specification 0.6.96 §3): load, build the information structure
 * (memory info, command line, memory map, modules if any), and leave the CPU in 32-bit protected
 * mode with EAX = 0x2BADB002, EBX = the structure, paging off, interrupts off. `ramSize`: guest
 * RAM bytes.
 */
export function loadMultiboot(
  bytes: Uint8Array,
  cmdline: string,
  ramSize: number,
  modules: readonly BootModule[] = [],
): LoadedImage {
  const mem = new PhysicalMemory(ramSize);
  const hdr = findMultibootHeader(bytes);
  if (hdr < 0) throw new ImageError("no multiboot header in the first 8 KiB of the image");
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const flags = dv.getUint32(hdr + 4, true);
  if ((flags & 0x4) !== 0) {
    // Video mode requests are accepted and ignored (we have no framebuffer).
  }
  let entry: number;
  let imageEnd: number;
  if ((flags & 0x10000) !== 0 && !isElf(bytes)) {
    // a.out kludge: header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr.
    if (hdr + 32 > bytes.length) throw new ImageError("multiboot address fields truncated");
    const headerAddr = dv.getUint32(hdr + 12, true);
    const loadAddr = dv.getUint32(hdr + 16, true);
    const loadEnd = dv.getUint32(hdr + 20, true);
    const bssEnd = dv.getUint32(hdr + 24, true);
    entry = dv.getUint32(hdr + 28, true);
    const fileOff = hdr - (headerAddr - loadAddr);
    const size = loadEnd === 0 ? bytes.length - fileOff : loadEnd - loadAddr;
    if (fileOff < 0 || fileOff + size > bytes.length)
      throw new ImageError("multiboot load range lies outside the file");
    if (loadAddr < 0x100000 || loadAddr + size > Math.min(mem.size, RAM_HOLE_START))
      throw new ImageError("multiboot load range lies outside guest RAM");
    mem.writeBytes(loadAddr, bytes.subarray(fileOff, fileOff + size));
    imageEnd = Math.max(loadAddr + size, bssEnd);
    if (bssEnd > loadAddr + size) mem.writeBytes(loadAddr + size, new Uint8Array(bssEnd - loadAddr - size));
  } else {
    const elf = parseElf(bytes);
    imageEnd = loadSegments(mem, bytes, elf);
    entry = elf.entry;
    if (entry >= 4294967296) throw new ImageError("multiboot entry point must be a 32-bit physical address");
  }
  // Multiboot information structure.
  const map = memoryMap(mem.size);
  let mo = MMAP_ADDR;
  for (const r of map) {
    mem.write(mo, 4, 20); // size of the entry, not counting this field
    writeU64(mem, mo + 4, r.base);
    writeU64(mem, mo + 12, r.length);
    mem.write(mo + 20, 4, r.type);
    mo += 24;
  }
  writeCmdline(mem, cmdline);
  const upperKiB = Math.floor((Math.min(mem.size, RAM_HOLE_START) - 0x100000) / 1024);
  const info = new Uint8Array(88);
  mem.writeBytes(INFO_ADDR, info);
  mem.write(INFO_ADDR, 4, 0x1 | 0x4 | 0x40); // MEM, CMDLINE, MMAP
  mem.write(INFO_ADDR + 4, 4, LOW_MEM_END / 1024);
  mem.write(INFO_ADDR + 8, 4, upperKiB);
  mem.write(INFO_ADDR + 16, 4, CMDLINE_ADDR);
  mem.write(INFO_ADDR + 44, 4, mo - MMAP_ADDR);
  mem.write(INFO_ADDR + 48, 4, MMAP_ADDR);
  if (modules.length > 0) {
    mem.write(INFO_ADDR, 4, mem.read(INFO_ADDR, 4) | 0x8); // flags[3]: mods_count, mods_addr valid
    mem.write(INFO_ADDR + 20, 4, loadModules(mem, modules, imageEnd));
    mem.write(INFO_ADDR + 24, 4, MODS_ADDR);
  }
  // CPU: 32-bit protected mode, flat segments (the reset state), as the spec requires.
  const s = resetBootState();
  s.gprLo[0] = MULTIBOOT_BOOTLOADER_MAGIC | 0; // EAX
  s.gprLo[3] = INFO_ADDR; // EBX
  s.ripLo = entry | 0;
  s.ripHi = 0;
  s.rflags = 0x2;
  s.pages = writtenPages(mem);
  return { protocol: "multiboot", entry, imageEnd, state: s };
}

/** The 64-bit entry from the "nestlab" ELF note, or undefined. */
export function entry64FromNote(elf: ElfImage): number | undefined {
  for (const n of elf.notes) {
    if (n.name === "nestlab" && n.type === NESTLAB_NOTE_ENTRY64 && n.desc.length >= 8) {
      const dv = new DataView(n.desc.buffer, n.desc.byteOffset, n.desc.byteLength);
      return dv.getUint32(4, true) * 4294967296 + dv.getUint32(0, true);
    }
  }
  return undefined;
}

/**
 * nestlab's direct 64-bit boot (docs/boot.md): load an ELF64 by physical addresses, build the
 * boot-info structure, identity-map 4 GiB with 2 MiB pages, and enter long mode at the entry
 * from the "nestlab" note (or e_entry when it has none) with RSI = boot-info.
 */
export function loadDirect64(bytes: Uint8Array, cmdline: string, ramSize: number): LoadedImage {
  const mem = new PhysicalMemory(ramSize);
  const elf = parseElf(bytes);
  if (elf.class !== 64) throw new ImageError("the direct 64-bit boot needs an ELF64 image");
  const imageEnd = loadSegments(mem, bytes, elf);
  const entry = entry64FromNote(elf) ?? elf.entry;
  if (entry >= 4294967296)
    throw new ImageError("64-bit entry must be a physical address below 4 GiB (identity-mapped)");
  const map = memoryMap(mem.size);
  let mo = MMAP_ADDR;
  for (const r of map) {
    writeU64(mem, mo, r.base);
    writeU64(mem, mo + 8, r.length);
    mem.write(mo + 16, 4, r.type);
    mem.write(mo + 20, 4, 0);
    mo += 24;
  }
  const len = writeCmdline(mem, cmdline);
  mem.write(INFO_ADDR, 4, NLBI_MAGIC);
  mem.write(INFO_ADDR + 4, 4, 1);
  mem.write(INFO_ADDR + 8, 4, 48);
  mem.write(INFO_ADDR + 12, 4, 0);
  writeU64(mem, INFO_ADDR + 16, CMDLINE_ADDR);
  writeU64(mem, INFO_ADDR + 24, len);
  writeU64(mem, INFO_ADDR + 32, MMAP_ADDR);
  mem.write(INFO_ADDR + 40, 4, map.length);
  mem.write(INFO_ADDR + 44, 4, 24);
  const layout = { pageTables: PAGE_TABLES, gdt: GDT_ADDR, identityGiB: 4 };
  writeLongModeTables(mem, layout);
  const s = resetBootState();
  longModeRegisters(s, layout);
  s.gprLo[6] = INFO_ADDR; // RSI
  s.gprLo[4] = LOW_MEM_END & ~0xf; // RSP: a usable stack, though the kernel sets its own
  s.ripLo = entry | 0;
  s.ripHi = 0;
  s.pages = writtenPages(mem);
  return { protocol: "direct64", entry, imageEnd, state: s };
}

/** Load an image with `protocol` for a guest of `ramSize` bytes. */
export function loadImage(
  protocol: BootProtocol,
  bytes: Uint8Array,
  cmdline: string,
  ramSize: number,
  modules: readonly BootModule[] = [],
): LoadedImage {
  return protocol === "direct64"
    ? loadDirect64(bytes, cmdline, ramSize)
    : loadMultiboot(bytes, cmdline, ramSize, modules);
}

/** Boot the bare machine's CPU with multiboot v1 (its RAM takes the loader's pages). */
export function bootMultiboot(
  c: Cpu,
  bytes: Uint8Array,
  cmdline: string,
  modules: readonly BootModule[] = [],
): BootResult {
  return bootWith(c, loadMultiboot(bytes, cmdline, c.mem.size, modules));
}

/** Boot the bare machine's CPU through the direct 64-bit entry. */
export function bootDirect64(c: Cpu, bytes: Uint8Array, cmdline: string): BootResult {
  return bootWith(c, loadDirect64(bytes, cmdline, c.mem.size));
}

function bootWith(c: Cpu, img: LoadedImage): BootResult {
  loadBootState(c, img.state);
  return { protocol: img.protocol, entry: img.entry, imageEnd: img.imageEnd };
}

/** Pick the protocol: direct64 for ELF64 images, multiboot otherwise. */
export function defaultProtocol(bytes: Uint8Array): BootProtocol {
  if (isElf(bytes) && bytes[4] === 2) return "direct64";
  return "multiboot";
}
