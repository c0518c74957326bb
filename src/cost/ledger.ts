/**
 * Where simulated time goes. Every charge is attributed to (level, category, reason) — e.g.
 * (0, "handler", "cpuid") or (2, "guest", "instructions") — and to the clock. Attributions are
 * interned to small integers once, so charging on a hot path is two typed-array adds.
 */
export interface Attribution {
  level: number;
  category: string;
  reason: string;
}

export interface LedgerLine extends Attribution {
  cycles: number;
  count: number;
}

/**
 * Told of every charge as it is made (a timeline recorder, src/trace). Null when nothing
 * listens: then a charge costs one null check more.
 */
export interface ChargeObserver {
  charged(level: number, category: string, cycles: number): void;
}

export class CostLedger {
  /** Who hears of each charge (set once, before the run); null: nobody. */
  observer: ChargeObserver | null = null;
  private readonly keys: Attribution[] = [];
  private readonly index = new Map<string, number>();
  private cycles = new Float64Array(64);
  private counts = new Float64Array(64);

  /** Intern an attribution; call once at set-up, keep the id. */
  id(level: number, category: string, reason: string): number {
    const k = `${level}/${category}/${reason}`;
    let i = this.index.get(k);
    if (i === undefined) {
      i = this.keys.length;
      this.keys.push({ level, category, reason });
      this.index.set(k, i);
      if (i >= this.cycles.length) {
        const c = new Float64Array(this.cycles.length * 2);
        c.set(this.cycles);
        this.cycles = c;
        const n = new Float64Array(this.counts.length * 2);
        n.set(this.counts);
        this.counts = n;
      }
    }
    return i;
  }

  add(id: number, cycles: number): void {
    this.cycles[id] += cycles;
    this.counts[id] += 1;
    if (this.observer !== null) this.tell(id, cycles);
  }

  /** Add `cycles` in bulk with an explicit event count (e.g. instructions retired in a slice). */
  addMany(id: number, cycles: number, count: number): void {
    this.cycles[id] += cycles;
    this.counts[id] += count;
    if (this.observer !== null) this.tell(id, cycles);
  }

  private tell(id: number, cycles: number): void {
    const k = this.keys[id];
    (this.observer as ChargeObserver).charged(k.level, k.category, cycles);
  }

  lines(): LedgerLine[] {
    const out: LedgerLine[] = [];
    for (let i = 0; i < this.keys.length; i++) {
      if (this.counts[i] === 0 && this.cycles[i] === 0) continue;
      out.push({ ...this.keys[i], cycles: this.cycles[i], count: this.counts[i] });
    }
    return out.sort((a, b) => b.cycles - a.cycles);
  }

  total(): number {
    let t = 0;
    for (let i = 0; i < this.keys.length; i++) t += this.cycles[i];
    return t;
  }
}

/**
 * One attribution's ledger id at each level, interned on a level's first use and kept (a ledger's
 * ids never change), so a path that charges it often builds no string. Follows the ledger it is
 * given: a different ledger starts afresh.
 */
export class LevelIds {
  private ledger: CostLedger | null = null;
  private ids: number[] = [];

  constructor(
    private readonly category: string,
    private readonly reason: string,
  ) {}

  of(ledger: CostLedger, level: number): number {
    if (ledger !== this.ledger) {
      this.ledger = ledger;
      this.ids = [];
    }
    let id = this.ids[level];
    if (id === undefined) {
      id = ledger.id(level, this.category, this.reason);
      this.ids[level] = id;
    }
    return id;
  }
}
