import { describe, expect, it } from "vitest";
import { classify } from "../src/categories";
import {
  formatExact,
  parseTyped,
  positionToThreshold,
  rankOf,
  roundSignificant,
  SLIDER_STEPS,
  sliderRange,
  sliderThreshold,
  taskCutoffs,
  thresholdToPosition,
  topK,
} from "../src/threshold";

const asc = (...xs: number[]) => new Float32Array(xs).sort();

/** Heads of one task (1 layer, all values) that pass `cutoff`, counted by the view's rule (classify). */
const passing = (values: Float32Array, cutoff: number) => classify(values, [1, 1, values.length], [null], [cutoff]).passes[0];

describe("top_percent", () => {
  it("k = max(1, ceil(p * n / 100)), multiplying first", () => {
    expect(topK(5, 1024)).toBe(52);
    expect(topK(10, 30)).toBe(3);
    expect(topK(0.01, 8)).toBe(1);
    expect(topK(100, 7)).toBe(7);
  });

  it("cutoff is the k-th largest value and ties at the cutoff all pass", () => {
    const s = asc(0.1, 0.2, 0.2, 0.3, 0.2, 0.05);
    const [c] = taskCutoffs([s], "top_percent", 0, 50);
    expect(c).toBeCloseTo(0.2, 6);
    expect(passing(s, c)).toBe(4);
  });

  it("a task without values gets an infinite cutoff", () => {
    const [c] = taskCutoffs([new Float32Array(0)], "top_percent", 0, 50);
    expect(c).toBe(Infinity);
    expect(passing(new Float32Array(0), c)).toBe(0);
  });
});

describe("value threshold", () => {
  it("every task uses the threshold; >= passes", () => {
    const s = asc(0.1, 0.2, 0.3);
    const cut = taskCutoffs([s, s], "value", 0.2, 5);
    expect(Array.from(cut)).toEqual([0.2, 0.2]);
    // float32(0.2) > 0.2 in float64, so the stored 0.2 passes
    expect(passing(s, 0.2)).toBe(2);
    expect(passing(s, 10)).toBe(0);
    expect(passing(s, -10)).toBe(3);
    expect(passing(s, NaN)).toBe(0);
  });
});

describe("rank", () => {
  it("1 = most important; ties share a rank; NaN has none", () => {
    const s = asc(0.5, 0.1, 0.5, 0.3);
    expect(rankOf(s, Math.fround(0.5))).toBe(1);
    expect(rankOf(s, Math.fround(0.3))).toBe(3);
    expect(rankOf(s, Math.fround(0.1))).toBe(4);
    expect(rankOf(s, NaN)).toBe(0);
  });
});

describe("value-mode slider scale", () => {
  const share = sliderRange(0.004, 0, 0.09); // figure A: colour bar 0 .. 0.0040+, one head at 0.09
  const signed = sliderRange(0.004, -0.001, 0.09);

  it("tops out at the colour scale's vmax, bottom at min(0, data min) but not below -vmax", () => {
    expect(share).toEqual({ lo: 0, hi: 0.004 });
    expect(signed).toEqual({ lo: -0.001, hi: 0.004 });
    expect(sliderRange(0.004, -1, 1)).toEqual({ lo: -0.004, hi: 0.004 });
    expect(sliderRange(NaN, 0.2, 0.7).hi).toBe(0.7); // no usable vmax: the largest |value|
    expect(sliderRange(-1, NaN, NaN)).toEqual({ lo: 0, hi: 1 });
  });

  it("maps the ends exactly", () => {
    for (const r of [share, signed]) {
      expect(positionToThreshold(0, r)).toBe(r.lo);
      expect(positionToThreshold(SLIDER_STEPS, r)).toBe(r.hi);
      expect(sliderThreshold(0, r)).toBe(r.lo);
      expect(sliderThreshold(SLIDER_STEPS, r)).toBe(r.hi);
      expect(thresholdToPosition(r.lo, r)).toBe(0);
      expect(thresholdToPosition(r.hi, r)).toBe(SLIDER_STEPS);
    }
  });

  it("is strictly monotonic and round-trips position -> threshold -> position", () => {
    for (const r of [share, signed]) {
      let prev = -Infinity;
      for (let p = 0; p <= SLIDER_STEPS; p++) {
        const t = positionToThreshold(p, r);
        expect(t).toBeGreaterThan(prev);
        prev = t;
        expect(thresholdToPosition(t, r)).toBeCloseTo(p, 6);
      }
    }
  });

  it("round-trips threshold -> position -> threshold", () => {
    for (const t of [0, 1e-6, 0.0005, 0.001, 0.0025, 0.004]) {
      expect(positionToThreshold(thresholdToPosition(t, share), share)).toBeCloseTo(t, 12);
    }
    expect(positionToThreshold(thresholdToPosition(-0.0004, signed), signed)).toBeCloseTo(-0.0004, 12);
  });

  it("gives the useful low thresholds most of the travel", () => {
    // 0.0005 .. 0.001 (1/8 .. 1/4 of the range) span ~15% of the travel, not 12.5%;
    // 0 .. 0.001 is half of it
    expect(thresholdToPosition(0.001, share)).toBeCloseTo(SLIDER_STEPS / 2, 6);
    expect(thresholdToPosition(0.0005, share)).toBeCloseTo(SLIDER_STEPS * Math.sqrt(1 / 8), 6);
    // the zero threshold sits where the sign changes, not at an end
    const zero = thresholdToPosition(0, signed);
    expect(zero).toBeGreaterThan(0);
    expect(positionToThreshold(zero, signed)).toBeCloseTo(0, 15);
  });

  it("clamps thresholds outside the range to the ends (typed values may go past the slider)", () => {
    expect(thresholdToPosition(0.09, share)).toBe(SLIDER_STEPS);
    expect(thresholdToPosition(-5, share)).toBe(0);
    expect(thresholdToPosition(NaN, share)).toBe(0);
  });

  it("rounds dragged thresholds to 3 significant digits, monotonically", () => {
    expect(roundSignificant(0.00123456)).toBe(0.00123);
    expect(roundSignificant(-0.000987654)).toBe(-0.000988);
    expect(roundSignificant(0)).toBe(0);
    let prev = -Infinity;
    for (let p = 0; p <= SLIDER_STEPS; p++) {
      const t = sliderThreshold(p, signed);
      expect(t).toBeGreaterThanOrEqual(prev);
      prev = t;
      if (p > 0 && p < SLIDER_STEPS) expect(Number(t.toPrecision(3))).toBe(t);
    }
  });
});

describe("typed thresholds", () => {
  it("parses plain, exponent, decimal-comma, prefixed and percent text", () => {
    expect(parseTyped("0.001")).toBe(0.001);
    expect(parseTyped(" 1e-3 ")).toBe(0.001);
    expect(parseTyped(".5")).toBe(0.5);
    expect(parseTyped("0,25")).toBe(0.25);
    expect(parseTyped("≥ 0.002")).toBe(0.002);
    expect(parseTyped("-0.01")).toBe(-0.01);
    expect(parseTyped("5%")).toBe(5);
    expect(parseTyped("12")).toBe(12);
  });

  it("rejects text that is not a number", () => {
    for (const bad of ["", "abc", "0.0.1", "1e", "NaN", "Infinity", "1,000.5", "0x10", "--1"]) {
      expect(parseTyped(bad)).toBeNull();
    }
  });

  it("shows the value without float noise", () => {
    expect(formatExact(0.1 + 0.2)).toBe("0.3");
    expect(formatExact(0.0005)).toBe("0.0005");
    expect(formatExact(0.00123)).toBe("0.00123");
  });
});
