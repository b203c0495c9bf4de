// @vitest-environment happy-dom
// How sure each map is: the sem / significant traits, the tooltip's interval, the titles'
// reliability and noisy mark, the "significant" threshold mode, the not-significant marks' key
// and toggle, categories from reliable maps only, and the export (the category rule itself is
// checked against the Python twin in categories.test.ts).
import { afterEach, describe, expect, it, vi } from "vitest";
import { wrapNote } from "../src/panels";
import { cellPasses, countText, deriveThreshold, readData } from "../src/state";
import { tooltipLines } from "../src/tooltip";
import { countedTasks, intervalText, panelUnmarked, reliabilityNote, reliabilityTip, SIGNIFICANT, UNTESTED } from "../src/uncertainty";
import { exportSvg, renderView, standInModel, traitState, unmountViews } from "./fake-model";

const f32 = (xs: number[]) => new DataView(Float32Array.from(xs).buffer);
const u8 = (xs: number[]) => new DataView(Uint8Array.from(xs).buffer);
const task = (name: string, category: string | null, extra: Record<string, unknown> = {}) => ({
  name,
  category,
  description: "",
  baseline: null,
  accuracy: null,
  reliability: null,
  examplesNeeded: null,
  ...extra,
});

describe("reading sem and significance", () => {
  const tasks = [task("a", "Algorithmic"), task("b", null)];
  it("keeps them only with one entry per cell, and none when nothing was tested", () => {
    const d = readData([2, 1, 2], f32([1, 3, 2, 2]), tasks, "raw", null, false, { sem: f32([0.1, 0.2, NaN, 0.4]), significant: u8([1, 0, 2, 1]) });
    expect(Array.from(d.sem!)).toEqual([Math.fround(0.1), Math.fround(0.2), NaN, Math.fround(0.4)]);
    expect(Array.from(d.sig!)).toEqual([1, 0, 2, 1]);
    const wrong = readData([2, 1, 2], f32([1, 3, 2, 2]), tasks, "raw", null, false, { sem: f32([0.1]), significant: u8([2, 2, 2, 2]) });
    expect(wrong.sem).toBeNull();
    expect(wrong.sig).toBeNull();
    expect(readData([2, 1, 2], f32([1, 3, 2, 2]), tasks, "raw").sem).toBeNull();
  });

  it("significant mode: a head passes when its cell is significant and at or above the threshold", () => {
    const d = readData([2, 1, 2], f32([1, 3, 2, 2]), tasks, "raw", null, false, { significant: u8([1, 0, 2, 1]) });
    const th = deriveThreshold(d, "significant", 2, 5);
    expect(Array.from(th.classes!.passes)).toEqual([0, 1]);
    expect([0, 1, 2, 3].map((k) => cellPasses(d, th, k < 2 ? 0 : 1, k))).toEqual([false, false, false, true]);
    expect(countText(1, "significant", 2, 5, 2)).toBe("1 significant head ≥ 2.00");
    // without a test no head passes
    const none = readData([2, 1, 2], f32([1, 3, 2, 2]), tasks, "raw");
    expect(Array.from(deriveThreshold(none, "significant", 0, 5).classes!.passes)).toEqual([0, 0]);
    // value mode ignores the codes
    expect(Array.from(deriveThreshold(d, "value", 2, 5).classes!.passes)).toEqual([1, 2]);
  });

  it("leaves the tasks not counted out of the categories, but still counts their heads", () => {
    const two = [task("a", "Knowledge", { reliability: 0.4 }), task("b", "Knowledge", { accuracy: 0.1 }), task("c", "Linguistic")];
    const d = readData([3, 1, 2], f32([1, 0, 0, 1, 1, 1]), two, "raw");
    const counted = countedTasks(d.tasks, "reliable", 0.7, 0.2);
    expect(counted).toEqual([false, false, true]);
    const th = deriveThreshold(d, "value", 0.5, 5, false, counted);
    expect(Array.from(th.classes!.passes)).toEqual([1, 1, 2]);
    expect(Array.from(th.classes!.membership[0])).toEqual([0, 0]);
    expect(Array.from(deriveThreshold(d, "value", 0.5, 5).classes!.membership[0])).toEqual([1, 1]);
  });
});

describe("tooltip interval and significance", () => {
  // task a: raw 1, 3 (sum 4); sem 0.1, 0.2; cell 1 approximate
  const tasks = [task("a", "Algorithmic")];
  const d = readData([1, 1, 2], f32([1, 3]), tasks, "share", u8([1, 0]), false, { sem: f32([0.1, 0.2]), significant: u8([0, 1]) });
  const spec = { kind: "task" as const, name: "a", task: 0, category: -1 };
  const ctx = { metric: "logprob", method: "attribution", minAccuracy: 0.2 };

  it("gives value ± 1.96 sem in the units shown: share divides by the task's sum", () => {
    const th = deriveThreshold(d, "value", 0.5, 5);
    const share = tooltipLines(d, th.classes, spec, 0, 1, { ...ctx, normalization: "share" });
    expect(share[2]).toBe("importance 0.75 ± 0.098 (95 %)"); // 1.96 * 0.2 / 4
    expect(share).toContain("± from per-example estimates (approximate cell)");
    expect(share).toContain("significant (Wilcoxon signed-rank, FDR 5%)");
    const rawD = readData([1, 1, 2], f32([1, 3]), tasks, "raw", u8([1, 0]), false, { sem: f32([0.1, 0.2]), significant: u8([0, 1]) });
    const raw = tooltipLines(rawD, th.classes, spec, 0, 0, { ...ctx, normalization: "raw" });
    expect(raw[2]).toBe("importance 1 ± 0.196 (95 %)");
    expect(raw).toContain("not significant (Wilcoxon signed-rank, FDR 5%)");
    expect(raw.some((l) => l.includes("per-example estimates"))).toBe(false); // exact cell
  });

  it("says nothing of an interval where the standard error is unknown", () => {
    const noSem = readData([1, 1, 2], f32([1, 3]), tasks, "raw");
    const lines = tooltipLines(noSem, null, spec, 0, 0, { ...ctx, normalization: "raw" });
    expect(lines[2]).toBe("importance 1");
    expect(lines.some((l) => l.includes("significant"))).toBe(false);
    expect(intervalText(NaN, 1)).toBe("");
  });
});

describe("notes and marks (pure)", () => {
  it("writes the reliability line and marks noisy maps", () => {
    expect(reliabilityNote(0.823, 0.7)).toEqual({ text: "r = 0.82", noisy: false });
    expect(reliabilityNote(0.52, 0.7)).toEqual({ text: "noisy: add examples · r = 0.52", noisy: true });
    expect(reliabilityNote(null, 0.7).text).toBe("");
    expect(reliabilityTip({ reliability: 0.52, examplesNeeded: 160 }, 40, 0.7)).toBe(
      "split-half reliability r = 0.52 over 40 examples; below 0.7: the map is mostly noise; about 160 examples for r = 0.9",
    );
  });

  it("wraps a title's note between its parts, never inside 'r = 0.41–0.97'", () => {
    const m = (t: string) => t.length * 6;
    expect(wrapNote("noisy: 14 of 20 maps · r = 0.41–0.97", 140, m)).toEqual(["noisy: 14 of 20 maps ·", "r = 0.41–0.97"]);
    expect(wrapNote("r = 0.82", 140, m)).toEqual(["r = 0.82"]);
    expect(wrapNote("noisy: add examples · r = 0.52", 400, m)).toEqual(["noisy: add examples · r = 0.52"]);
  });

  it("marks a head of a panel not significant when tested somewhere and significant nowhere", () => {
    const sig = Uint8Array.from([0, SIGNIFICANT, UNTESTED, 0, 0, UNTESTED]); // 2 tasks x 3 heads
    const out = new Uint8Array(3);
    expect(panelUnmarked(sig, 3, [0, 1], out)).toBe(true);
    expect(Array.from(out)).toEqual([1, 0, 0]);
    panelUnmarked(sig, 3, [1], out);
    expect(Array.from(out)).toEqual([1, 1, 0]);
  });
});

afterEach(() => {
  unmountViews();
  vi.restoreAllMocks();
});
const tick = () => new Promise((r) => setTimeout(r, 40));
const keyTexts = (root: HTMLElement) => Array.from(root.querySelectorAll(".hw-key-item")).map((i) => i.textContent ?? "");

/** 3 tasks x 3 layers x 4 heads with standard errors, significance and reliability. */
function mount(overrides: Record<string, unknown> = {}) {
  const n = 3 * 3 * 4;
  const values = Float32Array.from({ length: n }, (_, i) => ((i * 7) % 10) / 10);
  const state = traitState({
    values: new DataView(values.buffer),
    exact: new DataView(new ArrayBuffer(0)),
    sem: f32(Array.from({ length: n }, () => 0.05)),
    significant: u8(Array.from({ length: n }, (_, i) => (i % 2 ? 1 : 0))),
    shape: [3, 3, 4],
    tasks: [
      { name: "copying", category: "Algorithmic", description: "", baseline: null, accuracy: 0.9, reliability: 0.91, examples_needed: 12 },
      { name: "noisy task", category: "Knowledge", description: "", baseline: null, accuracy: 0.8, reliability: 0.41, examples_needed: 200 },
      { name: "counting", category: "Knowledge", description: "", baseline: null, accuracy: 0.7, reliability: null, examples_needed: null },
    ],
    provenance: { method: "ablation", metric: "logprob", examples: { copying: 20, "noisy task": 20, counting: 20 } },
    mark_insignificant: false,
    min_reliability: 0.7,
    categories_from: "all",
    ...overrides,
  });
  const { model } = standInModel(state);
  return { root: renderView(model).root, state, model };
}

describe("the view", () => {
  it("gives each title its reliability, marks noisy maps like failing ones and explains it", async () => {
    const { root, model } = mount();
    const panels = Array.from(root.querySelectorAll<HTMLElement>(".hw-panel"));
    const lines = panels.map((p) => p.querySelector(".hw-reliability")?.textContent?.replace(/\n/g, " ") ?? null);
    expect(lines).toEqual(["r = 0.91", "noisy: add examples · r = 0.41", null]);
    expect(panels[1].querySelector(".hw-reliability")!.classList.contains("hw-noisy-badge")).toBe(true);
    expect(panels[1].querySelector<HTMLElement>(".hw-panel-title")!.title).toContain("about 200 examples for r = 0.9");
    expect(keyTexts(root).some((t) => t.startsWith("noisy: 1 map with split-half reliability below 0.7"))).toBe(true);
    model.set("min_reliability", 0.3);
    await tick();
    expect(root.querySelectorAll(".hw-noisy-badge").length).toBe(0);
  });

  it("offers the not-significant marks in the key, off by default, and the significant mode", async () => {
    const { root, state, model } = mount();
    expect(keyTexts(root).some((t) => t.startsWith("significance tested per head"))).toBe(true);
    const box = root.querySelector<HTMLInputElement>("input.hw-mark-insignificant")!;
    expect(box.checked).toBe(false);
    box.checked = true;
    box.dispatchEvent(new Event("change"));
    expect(state.mark_insignificant).toBe(true);
    await tick();
    expect(keyTexts(root).some((t) => t.startsWith("striped: not significant (Wilcoxon signed-rank over examples"))).toBe(true);
    const counts = () => Array.from(root.querySelectorAll(".hw-count")).map((c) => c.textContent);
    const mode = root.querySelector<HTMLSelectElement>("select.hw-threshold-mode")!;
    expect(mode.querySelector<HTMLOptionElement>('option[value="significant"]')!.disabled).toBe(false);
    model.set("threshold_mode", "significant");
    model.set("threshold", 0.0);
    await tick();
    expect(counts().every((c) => /^\d+ significant heads? ≥ 0/.test(c ?? ""))).toBe(true);
    expect(keyTexts(root).some((t) => t.startsWith("outlined: head is significant and at or above the threshold"))).toBe(true);
  });

  it("without per-example effects: no significance entry, the mode is disabled", () => {
    const { root } = mount({ sem: new DataView(new ArrayBuffer(0)), significant: new DataView(new ArrayBuffer(0)) });
    expect(keyTexts(root).some((t) => t.includes("significan"))).toBe(false);
    expect(root.querySelector<HTMLOptionElement>('select.hw-threshold-mode option[value="significant"]')!.disabled).toBe(true);
  });

  it("counts only reliable maps for the categories when asked, and says so", async () => {
    const { root, state, model } = mount({ tab: "categories", threshold: 0.5 });
    const notes = () => Array.from(root.querySelectorAll(".hw-panel")).map((p) => p.querySelector(".hw-reliability")?.textContent?.replace(/\n/g, " ") ?? "");
    expect(notes()).toEqual(["noisy: 1 of 3 maps · r = 0.41–0.91", "r = 0.91", "noisy: 1 of 2 maps · r = 0.41"]);
    const toggle = root.querySelector<HTMLInputElement>("input.hw-categories-from")!;
    expect(keyTexts(root).some((t) => t.startsWith("categories from all tasks, 1 noisy or failing"))).toBe(true);
    toggle.checked = true;
    toggle.dispatchEvent(new Event("change"));
    expect(state.categories_from).toBe("reliable");
    await tick();
    expect(notes()).toEqual(["r = 0.91 · 1 of 3 left out", "r = 0.91", "1 of 2 left out"]);
    expect(keyTexts(root).some((t) => t.startsWith("categories from reliable maps: 1 noisy or failing task left out"))).toBe(true);
    model.set("categories_from", "all");
    await tick();
    expect(root.querySelector<HTMLInputElement>("input.hw-categories-from")!.checked).toBe(false);
  });

  it("exports the titles' reliability and the key's marks", async () => {
    const { root } = mount({ mark_insignificant: true });
    const svg = await exportSvg(root);
    const texts = Array.from(svg.querySelectorAll("text")).map((t) => t.textContent ?? "");
    expect(texts).toContain("r = 0.91");
    expect(texts.join(" ")).toContain("noisy: add examples");
    expect(texts.join(" ")).toContain("striped: not significant");
  });
});
