/**
 * Write tracking of backing frames, as KVM's mmu/page_track.c: a user (a nested engine keeping a
 * shadow of an L1's EPT12, say) registers a notifier for a frame; from then on every leaf that
 * maps the frame is read-only (existing ones are write-protected through the reverse map, new
 * ones are built without W), and a guest write to it exits, is emulated by L0, and is reported
 * to the notifiers with its address, size and value (KVM: kvm_page_track_write).
 */

/** A write the guest made to a tracked frame, after it reached memory. */
export interface TrackedWrite {
  /** Host-physical address written. */
  pa: number;
  /** The guest-physical address as the writing guest saw it. */
  gpa: number;
  size: number;
  /** The value written (low and high 32 bits; high is 0 below 8 bytes). */
  lo: number;
  hi: number;
}

export type WriteNotifier = (w: TrackedWrite) => void;

export class PageTracker {
  /** Host frame number → its notifiers (a frame is tracked while the list is non-empty). */
  private readonly frames = new Map<number, WriteNotifier[]>();
  /** Writes reported to notifiers. */
  writes = 0;

  /** Track the frame containing `pa`; returns true when it was not tracked before. */
  add(pa: number, notifier: WriteNotifier): boolean {
    const pfn = Math.floor(pa / 4096);
    const list = this.frames.get(pfn);
    if (list !== undefined) {
      list.push(notifier);
      return false;
    }
    this.frames.set(pfn, [notifier]);
    return true;
  }

  /** Stop one notifier; returns true when the frame is no longer tracked. */
  remove(pa: number, notifier: WriteNotifier): boolean {
    const pfn = Math.floor(pa / 4096);
    const list = this.frames.get(pfn);
    if (list === undefined) return false;
    const i = list.indexOf(notifier);
    if (i >= 0) list.splice(i, 1);
    if (list.length > 0) return false;
    this.frames.delete(pfn);
    return true;
  }

  /** True while any frame is tracked. */
  get active(): boolean {
    return this.frames.size > 0;
  }

  isTracked(pa: number): boolean {
    return this.frames.size > 0 && this.frames.has(Math.floor(pa / 4096));
  }

  /** True when a tracked frame lies in [pa, pa + size). */
  anyIn(pa: number, size: number): boolean {
    if (this.frames.size === 0) return false;
    if (size === 4096) return this.frames.has(pa / 4096);
    const first = pa / 4096;
    const last = first + size / 4096;
    for (const pfn of this.frames.keys()) if (pfn >= first && pfn < last) return true;
    return false;
  }

  /** Report a write that reached a tracked frame. */
  notify(w: TrackedWrite): void {
    const list = this.frames.get(Math.floor(w.pa / 4096));
    if (list === undefined) return;
    this.writes++;
    for (const n of [...list]) n(w);
  }
}
