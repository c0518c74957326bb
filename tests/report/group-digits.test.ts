import { describe, expect, it } from "vitest";
import { groupDigits } from "../../src/report/group-digits.js";

describe("groupDigits", () => {
  it("prints what toLocaleString('en-US') prints, for integers and for everything else", () => {
    const values = [
      0,
      -0,
      1,
      7,
      12,
      999,
      1000,
      1001,
      9999,
      10000,
      99999,
      100000,
      123456,
      999999,
      1000000,
      1234567,
      12345678,
      123456789,
      2 ** 31,
      2 ** 32 - 1,
      10 ** 15,
      Number.MAX_SAFE_INTEGER,
      Number.MAX_SAFE_INTEGER + 1,
      2 ** 60,
      0.5,
      1234.5678,
      1e-7,
      12345.0005,
      Number.NaN,
      Number.POSITIVE_INFINITY,
    ];
    let x = 12345; // a fixed pseudo-random walk through every magnitude up to 2^53
    for (let k = 0; k < 2000; k++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      values.push(Math.floor((x / 2 ** 32) * 2 ** (k % 54)));
    }
    for (const v of [...values, ...values.map((v) => -v)])
      expect(groupDigits(v), String(v)).toBe(v.toLocaleString("en-US"));
  });

  it("groups by threes from the right", () => {
    expect(groupDigits(1234567)).toBe("1,234,567");
    expect(groupDigits(-1000)).toBe("-1,000");
    expect(groupDigits(999)).toBe("999");
  });
});
