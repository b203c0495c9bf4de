import { describe, expect, it } from "vitest";
import { colorbarTitle, convertThreshold, provenanceLine } from "../src/units";

describe("units and provenance", () => {
  it("names the colour bar's unit for both scales", () => {
    expect(colorbarTitle("share", "logprob")).toBe("Importance (share of task)");
    expect(colorbarTitle("raw", "logprob")).toBe("Importance (log-prob drop)");
    expect(colorbarTitle("raw", "")).toBe("Importance (raw score)");
  });
  it("writes the provenance line from what is known", () => {
    const p = { model: "SmolLM2", method: "attribution", metric: "logprob", ablation: "mean", examples: { a: 24, b: 40 }, date: "2026-12-02", known: true };
    expect(provenanceLine(p)).toBe("SmolLM2 · attribution (mean ablation) · metric logprob · 24–40 examples per task · 2026-12-02");
    expect(provenanceLine({ ...p, examples: { a: 8 }, ablation: "", metric: "", date: "" })).toBe("SmolLM2 · attribution · 8 examples per task");
    expect(provenanceLine({ ...p, known: false })).toBe("");
  });
  it("converts the threshold between scales so that as many heads pass", () => {
    // task a sums to 10, task b to 100: share and raw order the heads differently
    const values = Float32Array.from([1, 9, 30, 70]);
    const shape = [2, 1, 2];
    // share: a = [0.1, 0.9], b = [0.3, 0.7]; >= 0.5 lets 2 heads pass (0.9, 0.7)
    const raw = convertThreshold(values, shape, 0.5, "share", "raw");
    expect(raw).toBe(30); // raw sorted 70, 30, 9, 1: the 2nd
    expect(convertThreshold(values, shape, 30, "raw", "share")).toBeCloseTo(0.7, 6); // 70 and 30 pass: 0.9, 0.7
    expect(convertThreshold(values, shape, 0.5, "share", "share")).toBe(0.5);
    expect(convertThreshold(values, shape, 5, "share", "raw")).toBeGreaterThan(70); // none passed, none pass
  });
});
