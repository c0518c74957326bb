/**
 * Declared counter lists, the schema of one engine's or one layer's events (the style of
 * mmu/counters.ts): the name list is the schema, a Float64Array holds the values, and an id —
 * interned once, when the list is declared — is a counter's index. Counting is an array bump:
 * `set.values[ID.shadow_syncs]++`, never a string built or a Map looked up per event.
 */

/** A declared list: its family (the flat-name prefix, "npv", "nvmx"…), its names and their ids. */
export interface CounterSchema<N extends string = string> {
  readonly family: string;
  readonly names: readonly N[];
  readonly id: Readonly<Record<N, number>>;
}

/** Declare a family's counters once (module level); `id.<name>` is each one's index. */
export function declareCounters<const N extends string>(family: string, names: readonly N[]): CounterSchema<N> {
  if (new Set(names).size !== names.length) throw new Error(`counter family ${family} declares a name twice`);
  const id = Object.freeze(Object.fromEntries(names.map((n, i) => [n, i]))) as Record<N, number>;
  return { family, names, id };
}

/** One set of values of a declared list (one per engine instance). */
export class CounterSet<N extends string = string> {
  readonly values: Float64Array;

  constructor(readonly schema: CounterSchema<N>) {
    this.values = new Float64Array(schema.names.length);
  }

  bump(id: number, n = 1): void {
    this.values[id] += n;
  }

  get(name: N): number {
    return this.values[this.schema.id[name]];
  }

  /** Add another set of the same list into this one (sums over engine instances). */
  addFrom(other: CounterSet<N>): void {
    for (let i = 0; i < this.values.length; i++) this.values[i] += other.values[i];
  }

  /** Every counter, zero or not, in declaration order. */
  all(): Array<{ name: N; count: number }> {
    return this.schema.names.map((name, i) => ({ name, count: this.values[i] }));
  }

  /** The counters that moved, in declaration order. */
  nonZero(): Array<{ name: N; count: number }> {
    const out: Array<{ name: N; count: number }> = [];
    this.schema.names.forEach((name, i) => {
      if (this.values[i] !== 0) out.push({ name, count: this.values[i] });
    });
    return out;
  }
}

/**
 * Events counted by a small numeric key (a hypercall number, a VMCS field encoding, a status):
 * a dense array over [first, first + size), one more slot for keys outside it. The key → name
 * function is the family's (hypercall names from the ABI, field encodings in hex).
 */
export class KeyedCounts {
  readonly values: Float64Array;

  constructor(
    readonly first: number,
    readonly size: number,
    readonly name: (key: number) => string,
    /** The name of the slot for keys outside the range. */
    readonly otherName = "other",
  ) {
    this.values = new Float64Array(size + 1);
  }

  bump(key: number, n = 1): void {
    const i = key - this.first;
    this.values[i >= 0 && i < this.size ? i : this.size] += n;
  }

  get(key: number): number {
    const i = key - this.first;
    return this.values[i >= 0 && i < this.size ? i : this.size];
  }

  /** Keys counted (ascending; the out-of-range slot last, with no key). */
  nonZero(): Array<{ key?: number; name: string; count: number }> {
    const out: Array<{ key?: number; name: string; count: number }> = [];
    for (let i = 0; i < this.size; i++) {
      if (this.values[i] !== 0)
        out.push({ key: this.first + i, name: this.name(this.first + i), count: this.values[i] });
    }
    if (this.values[this.size] !== 0) out.push({ name: this.otherName, count: this.values[this.size] });
    return out;
  }

  /** Add another set's counts (same range) into this one. */
  addFrom(o: KeyedCounts): void {
    for (let i = 0; i <= this.size; i++) this.values[i] += o.values[i];
  }
}
