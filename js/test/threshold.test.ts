import { describe, expect, it } from "vitest";
import { countPassing, rankOf, taskCutoffs, topK } from "../src/threshold";

const asc = (...xs: number[]) => new Float32Array(xs).sort();

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
    expect(countPassing(s, c)).toBe(4);
  });

  it("a task without values gets an infinite cutoff", () => {
    const [c] = taskCutoffs([new Float32Array(0)], "top_percent", 0, 50);
    expect(c).toBe(Infinity);
    expect(countPassing(new Float32Array(0), c)).toBe(0);
  });
});

describe("value threshold", () => {
  it("every task uses the threshold; >= passes", () => {
    const s = asc(0.1, 0.2, 0.3);
    const cut = taskCutoffs([s, s], "value", 0.2, 5);
    expect(Array.from(cut)).toEqual([0.2, 0.2]);
    // float32(0.2) > 0.2 in float64, so the stored 0.2 passes
    expect(countPassing(s, 0.2)).toBe(2);
    expect(countPassing(s, 10)).toBe(0);
    expect(countPassing(s, -10)).toBe(3);
    expect(countPassing(s, NaN)).toBe(0);
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
