import { PAGE_SIZE } from "../mmu/phys.js";
import type { Insn } from "./insn.js";

/** One physical page's decoded instructions, by byte offset of their first byte. */
export type CodePage = (Insn | undefined)[];

/**
 * The decoded-instruction cache: per physical page, the instructions the interpreter decoded
 * there, by byte offset (the block compiler builds its traces from them too). Keyed by physical
 * frame so that two linear mappings of one page share it. Only instructions that lie wholly in
 * one page are cached (the CPU's decodeAt): a page's entries then depend on its bytes alone, and
 * a write to the page or the one before it (an instruction may start there and end here) drops
 * them (`dropPage`). A mode switch that changes how bytes decode drops all (`clear`).
 *
 * The CPU keeps the page it executes from in fields of its own (`curCode*`), read on every
 * instruction; this class is what lies behind them.
 */
export class DecodedCodeCache {
  private readonly pages: (CodePage | undefined)[] = [];

  /** The page's decoded instructions, an empty array the first time it is executed. */
  page(pfn: number): CodePage {
    let p = this.pages[pfn];
    if (p === undefined) {
      p = new Array(PAGE_SIZE);
      this.pages[pfn] = p;
    }
    return p;
  }

  /** Drop what was decoded in page pfn and its predecessor (code that crosses into pfn). */
  dropPage(pfn: number): void {
    this.pages[pfn] = undefined;
    if (pfn > 0) this.pages[pfn - 1] = undefined;
  }

  /** Drop every page. */
  clear(): void {
    this.pages.length = 0;
  }
}
