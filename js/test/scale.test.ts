import { describe, expect, it } from "vitest";
import {
  colorbarTicks,
  decimalsFor,
  formatFixed,
  formatPercent,
  formatSig,
  intTicks,
  intTicksRange,
  niceStep,
  percentileSorted,
  upperBound,
} from "../src/scale";

describe("colour bar ticks", () => {
  it("reproduces figure A: 0.0000 ... 0.0040+", () => {
    const { ticks, decimals } = colorbarTicks(0, 0.004, true);
    expect(decimals).toBe(4);
    expect(ticks.map((t) => t.label)).toEqual([
      "0.0000",
      "0.0005",
      "0.0010",
      "0.0015",
      "0.0020",
      "0.0025",
      "0.0030",
      "0.0035",
      "0.0040+",
    ]);
  });

  it("has no '+' when nothing is clipped", () => {
    const { ticks } = colorbarTicks(0, 0.004, false);
    expect(ticks[ticks.length - 1].label).toBe("0.0040");
  });

  it("always labels both ends and drops a tick crowding the top", () => {
    const { ticks } = colorbarTicks(0, 0.00412, true);
    expect(ticks[0].value).toBe(0);
    expect(ticks[ticks.length - 1].value).toBe(0.00412);
    expect(ticks[ticks.length - 1].label).toBe("0.0041+");
    // 0.0040 is within 0.4 steps of the top: dropped
    expect(ticks.map((t) => t.label)).not.toContain("0.0040");
    expect(ticks.map((t) => t.label)).toContain("0.0035");
  });

  it("keeps an inner tick that is far enough from the top", () => {
    const labels = colorbarTicks(0, 0.00437, true).ticks.map((t) => t.label);
    expect(labels.slice(-2)).toEqual(["0.0040", "0.0044+"]);
  });

  it("handles a symmetric diverging range", () => {
    const { ticks } = colorbarTicks(-2, 2, false, 5);
    expect(ticks.map((t) => t.label)).toEqual(["-2", "-1", "0", "1", "2"]);
  });

  it("keeps ticks increasing and inside the range", () => {
    for (const [lo, hi] of [
      [0, 1],
      [0, 0.0123],
      [-0.3, 0.7],
      [0, 250],
    ]) {
      const { ticks } = colorbarTicks(lo, hi, false);
      for (let i = 1; i < ticks.length; i++) expect(ticks[i].value).toBeGreaterThan(ticks[i - 1].value);
      expect(ticks[0].value).toBe(lo);
      expect(ticks[ticks.length - 1].value).toBe(hi);
      expect(ticks.length).toBeLessThanOrEqual(11);
    }
  });
});

describe("number formatting", () => {
  it("picks decimals from the step", () => {
    expect(decimalsFor(0.0005)).toBe(4);
    expect(decimalsFor(0.001)).toBe(3);
    expect(decimalsFor(0.25)).toBe(2);
    expect(decimalsFor(5)).toBe(0);
    expect(decimalsFor(20)).toBe(0);
  });

  it("nice steps are 1, 2, 2.5 or 5 times a power of ten", () => {
    expect(niceStep(0.004, 9)).toBeCloseTo(0.0005, 12);
    expect(niceStep(1, 5)).toBeCloseTo(0.2, 12);
    expect(niceStep(10, 4)).toBeCloseTo(2.5, 12);
    expect(niceStep(0, 5)).toBe(1);
  });

  it("never prints -0", () => {
    expect(formatFixed(-0.00001, 4)).toBe("0.0000");
    expect(formatFixed(-0.5, 1)).toBe("-0.5");
    expect(formatFixed(NaN, 2)).toBe("n/a");
  });

  it("keeps two significant digits for thresholds", () => {
    expect(formatSig(0.001, 3)).toBe("0.0010");
    expect(formatSig(0.0005, 3)).toBe("0.00050");
    expect(formatSig(0.0123456, 3)).toBe("0.012");
    expect(formatSig(0, 3)).toBe("0.000");
    expect(formatSig(2.5, 1)).toBe("2.5");
  });

  it("prints percentages compactly", () => {
    expect(formatPercent(5)).toBe("5");
    expect(formatPercent(0.5)).toBe("0.5");
    expect(formatPercent(12.3456)).toBe("12.35");
  });
});

describe("integer axis ticks", () => {
  it("uses every 6 for 32 (figure A)", () => {
    expect(intTicks(32)).toEqual([0, 6, 12, 18, 24, 30]);
  });
  it("uses every 12 for 64 heads and every 16 for 80 layers (figure B)", () => {
    expect(intTicks(64)).toEqual([0, 12, 24, 36, 48, 60]);
    // the 80-layer axis reaches its last layer
    expect(intTicks(80)).toEqual([0, 16, 32, 48, 64, 79]);
  });
  it("handles small and large axes", () => {
    expect(intTicks(1)).toEqual([0]);
    expect(intTicks(12)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(intTicks(0)).toEqual([]);
    const big = intTicks(1000);
    expect(big.length).toBeLessThanOrEqual(6);
    expect(big[0]).toBe(0);
  });
  it("ticks a zoomed range at multiples of a round step", () => {
    expect(intTicksRange(20, 59, 6)).toEqual([24, 32, 40, 48, 56]);
    expect(intTicksRange(3, 3)).toEqual([3]);
  });
  it("respects a smaller tick budget", () => {
    expect(intTicks(32, 4)).toEqual([0, 8, 16, 24, 31]);
  });
});

describe("sorted-array helpers", () => {
  const a = new Float32Array([1, 2, 2, 3, 5]);
  it("percentile interpolates like numpy", () => {
    expect(percentileSorted([1, 2, 3, 4], 50)).toBe(2.5);
    expect(percentileSorted([0, 10], 99.5)).toBeCloseTo(9.95, 12);
    expect(percentileSorted([7], 99.5)).toBe(7);
    expect(percentileSorted([], 50)).toBeNaN();
  });
  it("finds bounds", () => {
    expect(upperBound(a, 2)).toBe(3);
    expect(upperBound(a, 0)).toBe(0);
    expect(upperBound(a, 9)).toBe(5);
  });
});
