import { describe, expect, it } from "vitest";
import { colorScales, computeStats, normalize, toFloat32, toTasks } from "../src/data";

describe("reading the values trait", () => {
  it("reads a DataView of little-endian float32", () => {
    const src = new Float32Array([1.5, NaN, -2]);
    const out = toFloat32(new DataView(src.buffer));
    expect(Array.from(out.slice(0, 1))).toEqual([1.5]);
    expect(out[1]).toBeNaN();
    expect(out.length).toBe(3);
  });

  it("respects the view's offset, copying when it is not 4-byte aligned", () => {
    const bytes = new Uint8Array(4 * 3 + 1);
    new DataView(bytes.buffer).setFloat32(1, 0.25, true);
    new DataView(bytes.buffer).setFloat32(5, 4, true);
    const out = toFloat32(new DataView(bytes.buffer, 1, 8));
    expect(Array.from(out)).toEqual([0.25, 4]);
    const aligned = new Float32Array([9, 8, 7]);
    expect(Array.from(toFloat32(new DataView(aligned.buffer, 4, 8)))).toEqual([8, 7]);
  });

  it("accepts buffers, plain arrays and null", () => {
    expect(Array.from(toFloat32(new Float32Array([3]).buffer))).toEqual([3]);
    expect(toFloat32([1, null])[1]).toBeNaN();
    expect(toFloat32(null).length).toBe(0);
    expect(() => toFloat32("abc")).toThrow(/float32/);
  });

  it("fills missing task fields", () => {
    const tasks = toTasks([{ name: "a", category: "Knowledge", baseline: 0.5 }, { name: "b", category: null }], 3);
    expect(tasks.map((t) => t.name)).toEqual(["a", "b", "task 2"]);
    expect(tasks[0]).toEqual({ name: "a", category: "Knowledge", description: "", baseline: 0.5, accuracy: null, reliability: null, examplesNeeded: null });
    expect(tasks[1].category).toBeNull();
  });
});

describe("share normalization", () => {
  it("divides each task by the sum of its |values|, ignoring NaN", () => {
    const v = new Float32Array([1, -3, NaN, 4, 2, 2, 0, 0]);
    const out = normalize(v, [2, 2, 2], "share");
    expect(out[0]).toBeCloseTo(0.125, 7);
    expect(out[1]).toBeCloseTo(-0.375, 7);
    expect(out[2]).toBeNaN();
    expect(out[3]).toBeCloseTo(0.5, 7);
    expect(Array.from(out.slice(4))).toEqual([0.5, 0.5, 0, 0]);
  });

  it("leaves a task summing to 0 unchanged and raw untouched", () => {
    const v = new Float32Array([0, 0, NaN, 0]);
    const out = normalize(v, [1, 2, 2], "share");
    expect(Array.from(out.slice(0, 2))).toEqual([0, 0]);
    expect(normalize(v, [1, 2, 2], "raw")).toBe(v);
  });

  it("sums to 1 per task for a share map", () => {
    const v = Float32Array.from({ length: 2 * 4 * 8 }, (_, i) => ((i * 7) % 11) / 10);
    const out = normalize(v, [2, 4, 8], "share");
    for (let t = 0; t < 2; t++) {
      let s = 0;
      for (let i = 0; i < 32; i++) s += Math.abs(out[t * 32 + i]);
      expect(s).toBeCloseTo(1, 5);
    }
  });
});

describe("statistics and colour scales", () => {
  const v = new Float32Array([0.1, 0.2, NaN, 0.7, -0.4, 0, 0.3, 0.1]);
  const stats = computeStats(v, [2, 2, 2]);

  it("sorts each task's valid values", () => {
    expect(Array.from(stats.sorted[0])).toEqual(Array.from(new Float32Array([0.1, 0.2, 0.7])));
    expect(stats.sorted[1].length).toBe(4);
    expect(stats.max).toBeCloseTo(0.7, 6);
    expect(stats.min).toBeCloseTo(-0.4, 6);
    expect(stats.taskMaxAbs[1]).toBeCloseTo(0.4, 6);
  });

  it("auto vmax is the 99.5th percentile of |values| and marks clipping", () => {
    const [s] = colorScales(stats, { colorRange: "shared", diverging: false, vmin: null, vmax: null });
    expect(s.vmin).toBe(0);
    expect(s.vmax).toBeGreaterThan(0.6);
    expect(s.vmax).toBeLessThan(0.7);
    expect(s.clippedTop).toBe(true);
  });

  it("uses the given vmax and vmin; diverging is symmetric", () => {
    const [s] = colorScales(stats, { colorRange: "shared", diverging: false, vmin: null, vmax: 0.004 });
    expect(s).toEqual({ vmin: 0, vmax: 0.004, clippedTop: true });
    const [d] = colorScales(stats, { colorRange: "shared", diverging: true, vmin: null, vmax: 1 });
    expect(d).toEqual({ vmin: -1, vmax: 1, clippedTop: false });
    const [m] = colorScales(stats, { colorRange: "shared", diverging: false, vmin: 0.1, vmax: 2 });
    expect(m).toEqual({ vmin: 0.1, vmax: 2, clippedTop: false });
  });

  it("per-task ranges follow each task", () => {
    const scales = colorScales(stats, { colorRange: "per_task", diverging: false, vmin: null, vmax: null });
    expect(scales[0].vmax).toBeGreaterThan(scales[1].vmax);
    expect(scales[1].vmax).toBeLessThanOrEqual(0.4 + 1e-6);
  });

  it("never gives an empty range", () => {
    const zero = computeStats(new Float32Array([0, 0, NaN, NaN]), [1, 2, 2]);
    const [s] = colorScales(zero, { colorRange: "shared", diverging: false, vmin: null, vmax: null });
    expect(s.vmax).toBeGreaterThan(s.vmin);
    const empty = computeStats(new Float32Array([NaN, NaN]), [1, 1, 2]);
    const [e] = colorScales(empty, { colorRange: "shared", diverging: true, vmin: null, vmax: null });
    expect(e.vmax).toBeGreaterThan(e.vmin);
  });
});
