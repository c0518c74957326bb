/**
 * The guest's machine-readable output: `RESULT name=NAME iterations=N cycles=TOTAL
 * cycles_per_iter=X` lines (and `FAIL name=… reason=…`), parsed from the serial console.
 */
export interface GuestResult {
  name: string;
  /** Every key=value pair on the line; numbers where they parse as numbers. */
  fields: Record<string, number | string>;
}

export interface GuestOutput {
  results: GuestResult[];
  failures: GuestResult[];
}

function parseFields(rest: string): Record<string, number | string> {
  const fields: Record<string, number | string> = {};
  for (const m of rest.matchAll(/(\w+)=(\S+)/g)) {
    const n = Number(m[2]);
    fields[m[1]] = /^-?\d+(\.\d+)?$/.test(m[2]) && Number.isFinite(n) ? n : m[2];
  }
  return fields;
}

export function parseGuestOutput(serial: string): GuestOutput {
  const results: GuestResult[] = [];
  const failures: GuestResult[] = [];
  for (const line of serial.split(/\r?\n/)) {
    const m = /^(RESULT|FAIL)\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    const fields = parseFields(m[2]);
    const entry = { name: String(fields.name ?? "?"), fields };
    (m[1] === "RESULT" ? results : failures).push(entry);
  }
  return { results, failures };
}
