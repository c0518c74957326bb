/**
 * `n.toLocaleString("en-US")` without ICU for the integers reports print: a process's first
 * Intl call sets up ICU's number formatting, 20-40 ms of a short `nestlab run` (measured with
 * --cpu-prof). Integers get their thousands grouped here; anything else (a fraction, -0, an
 * unsafe integer, a non-finite number) goes to one Intl.NumberFormat made on first use, which
 * formats exactly as toLocaleString does (ECMA-402: both are NumberFormat("en-US").format).
 */
let intl: Intl.NumberFormat | undefined;

export function groupDigits(n: number): string {
  if (!Number.isSafeInteger(n) || Object.is(n, -0)) {
    intl ??= new Intl.NumberFormat("en-US");
    return intl.format(n);
  }
  const digits = String(Math.abs(n));
  let out = digits.slice(0, ((digits.length - 1) % 3) + 1);
  for (let k = out.length; k < digits.length; k += 3) out += `,${digits.slice(k, k + 3)}`;
  return n < 0 ? `-${out}` : out;
}
