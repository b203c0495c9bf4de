import { describe, expect, it } from "vitest";
import { UNCLASSIFIED_CODE } from "../src/categories";
import { codeRgbIndex, countText, deriveScale, deriveThreshold, readData, resolveTab } from "../src/state";
import { tooltipLines } from "../src/tooltip";

const tasks = [
  { name: "a", category: "Algorithmic", description: "", baseline: null, accuracy: null, reliability: null, examplesNeeded: null },
  { name: "b", category: null, description: "", baseline: null, accuracy: null, reliability: null, examplesNeeded: null },
];
const bytes = (xs: number[]) => new DataView(Float32Array.from(xs).buffer);

describe("readData", () => {
  it("decodes values and normalizes each task by its sum of |values|", () => {
    const d = readData([2, 1, 2], bytes([1, 3, 2, 2]), tasks, "share");
    expect(d.error).toBe("");
    expect(Array.from(d.norm)).toEqual([0.25, 0.75, 0.5, 0.5]);
    expect(d.tasks.map((t) => t.name)).toEqual(["a", "b"]);
  });
  it("says what is wrong when values and shape disagree", () => {
    const d = readData([2, 1, 3], bytes([1, 2]), tasks, "raw");
    expect(d.error).toMatch(/values holds 2 numbers but shape \[2, 1, 3\] needs 6/);
    expect(d.shape).toEqual([0, 0, 0]);
  });
});

describe("approximate cells and accuracy", () => {
  const mask = new DataView(Uint8Array.from([1, 0, 1, 1]).buffer);
  const withAcc = [{ ...tasks[0], accuracy: 0.05 }, { ...tasks[1], accuracy: 0.9 }];
  const ctx = { metric: "prob", method: "attribution", minAccuracy: 0.2, normalization: "share" as const };
  it("reads the exact mask and counts the approximate cells", () => {
    const d = readData([2, 1, 2], bytes([1, 3, 2, 2]), withAcc, "share", mask);
    expect(d.approximate).toBe(1);
    expect(Array.from(d.exact!)).toEqual([1, 0, 1, 1]);
    expect(readData([2, 1, 2], bytes([1, 3, 2, 2]), withAcc, "share", new DataView(new ArrayBuffer(0))).exact).toBeNull();
  });
  it("hides approximate cells when only exact ones are asked for, keeping shares of the whole task", () => {
    const d = readData([2, 1, 2], bytes([1, 3, 2, 2]), withAcc, "share", mask, true);
    expect(Array.from(d.norm)).toEqual([0.25, NaN, 0.5, 0.5]);
    expect(d.stats!.sorted[0].length).toBe(1);
    const raw = readData([2, 1, 2], bytes([1, 3, 2, 2]), withAcc, "raw", mask, true);
    expect(Number.isNaN(raw.norm[1]) && raw.values[1] === 3).toBe(true); // the trait's bytes stay
  });
  it("says in the tooltip which values are approximate and which tasks the model fails", () => {
    const d = readData([2, 1, 2], bytes([1, 3, 2, 2]), withAcc, "share", mask);
    const th = deriveThreshold(d, "value", 0.3, 5);
    const a = tooltipLines(d, th.classes, { kind: "task", name: "a", task: 0, category: -1 }, 0, 1, ctx);
    expect(a.slice(-2)).toEqual(["approximate (attribution): not yet checked exactly", "model fails this task: clean accuracy 5% < 20%"]);
    const b = tooltipLines(d, th.classes, { kind: "task", name: "b", task: 1, category: -1 }, 0, 0, ctx);
    expect(b.slice(-2)).toEqual(["exact value", "clean accuracy 90%"]);
    expect(b[3]).toBe("raw 2 (prob drop) · share 0.5");
  });
});

describe("derived state", () => {
  const d = readData([2, 1, 2], bytes([1, 3, 2, 2]), tasks, "raw");
  it("thresholds each task and counts the heads that pass", () => {
    const th = deriveThreshold(d, "value", 2, 5);
    expect(Array.from(th.classes!.passes)).toEqual([1, 2]);
    expect(countText(1, "value", 2, 5, 2)).toBe("1 head ≥ 2.00");
    expect(countText(3, "top_percent", 2, 5, 2)).toBe("3 heads in top 5%");
  });
  it("maps label codes to colour rows: categories, multi-category labels, then unclassified", () => {
    expect(codeRgbIndex(1, 3)).toBe(1);
    expect(codeRgbIndex(-2, 3)).toBe(3);
    expect(codeRgbIndex(UNCLASSIFIED_CODE, 3)).toBe(7);
  });
  it("gives every cell a colour index on the shared scale", () => {
    const s = deriveScale(d, { colorRange: "shared", diverging: false, vmin: 0, vmax: 3 });
    expect(Array.from(s.lutIdx[0])).toEqual([85, 255]);
    expect(s.range.hi).toBeGreaterThan(0);
  });
  it("falls back to the all-tasks tab when the asked one does not exist", () => {
    expect(resolveTab("task:b", d.tasks)).toBe("task:b");
    expect(resolveTab("task:zzz", d.tasks)).toBe("all");
    expect(resolveTab("categories", d.tasks)).toBe("categories");
    expect(resolveTab("categories", [tasks[1]])).toBe("all");
  });
  it("describes a head in the tooltip with its value and rank", () => {
    const th = deriveThreshold(d, "value", 2, 5);
    const ctx = { metric: "logprob", method: "ablation", minAccuracy: 0.2, normalization: "raw" as const };
    const lines = tooltipLines(d, th.classes, { kind: "task", name: "a", task: 0, category: -1 }, 0, 1, ctx);
    expect(lines).toEqual(["a", "Layer 0 · Head 1", "importance 3", "raw 3 (log-prob drop) · share 0.75", "rank 1 of 2", "categories: Algorithmic"]);
  });
});
