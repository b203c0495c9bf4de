// @vitest-environment happy-dom
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import widget from "../src/index";
import { standInModel, traitState } from "./fake-model";


/** A stand-in for anywidget's model: traits in a plain object, change events on set. */
function fakeModel(overrides: Record<string, unknown> = {}) {
  const nT = 3;
  const nL = 4;
  const nH = 5;
  const values = new Float32Array(nT * nL * nH);
  for (let i = 0; i < values.length; i++) values[i] = ((i * 37) % 11) / 10;
  values[2] = NaN;
  const state = traitState({
    values: new DataView(values.buffer),
    shape: [nT, nL, nH],
    tasks: [
      { name: "copying", category: "Algorithmic", description: "copy a word", baseline: 0.9 },
      { name: "<img src=x onerror=alert(1)>", category: "Knowledge", description: "<b>bold</b>", baseline: null },
      { name: "plain", category: null, description: "", baseline: null },
    ],
    threshold: 0.03,
    title: "tiny <model>",
    ...overrides,
  });
  return { state, ...standInModel(state) };
}

const tick = () => new Promise((r) => setTimeout(r, 40));
let cleanup: (() => void) | null = null;

function mount(overrides: Record<string, unknown> = {}) {
  const el = document.createElement("div");
  document.body.append(el);
  const m = fakeModel(overrides);
  const render = widget.render as (p: { model: unknown; el: HTMLElement }) => () => void;
  cleanup = render({ model: m.model, el });
  const root = el.querySelector<HTMLElement>(".headwidget")!;
  return { el, root, ...m };
}

afterEach(() => {
  cleanup?.();
  cleanup = null;
  document.body.replaceChildren();
});

describe("render() with a fake model", () => {
  it("builds the DOM contract and marks itself ready", () => {
    const { root } = mount();
    expect(root.dataset.testid).toBe("headwidget");
    expect(root.getAttribute("data-lm-suppress-shortcuts")).toBe("true");
    expect(root.dataset.ready).toBe("true");
    expect(Number(root.dataset.lastRedrawMs)).toBeGreaterThanOrEqual(0);
    const tabs = Array.from(root.querySelectorAll('[role="tablist"] button[role="tab"]'));
    expect(tabs.map((t) => t.textContent)).toEqual(["All tasks", "Categories", "copying", "<img src=x onerror=alert(1)>", "plain"]);
    expect(tabs.map((t) => t.getAttribute("aria-selected"))).toEqual(["true", "false", "false", "false", "false"]);
    const canvases = Array.from(root.querySelectorAll<HTMLCanvasElement>("canvas.hw-canvas"));
    expect(canvases.map((c) => c.dataset.panel)).toEqual(["copying", "<img src=x onerror=alert(1)>", "plain"]);
    for (const c of canvases) {
      expect(c.dataset.rows).toBe("4");
      expect(c.dataset.cols).toBe("5");
      expect(Number(c.dataset.plotWidth) / 5).toBeCloseTo(Number(c.dataset.plotHeight) / 4, 6);
      expect(c.getAttribute("tabindex")).toBe("0");
      expect(c.getAttribute("aria-label")).toContain("4 layers by 5 heads");
    }
    expect(root.querySelector("canvas.hw-colorbar")).not.toBeNull();
    for (const cls of ["hw-threshold-mode", "hw-colormap", "hw-normalization", "hw-color-range", "hw-orientation"]) {
      expect(root.querySelector(`select.${cls}`)).not.toBeNull();
    }
    expect(root.querySelector('input[type="range"].hw-threshold')).not.toBeNull();
    expect(root.querySelector("button.hw-export")).not.toBeNull();
    expect(root.querySelector(".hw-live")?.getAttribute("aria-live")).toBe("polite");
    const tooltip = root.querySelector<HTMLElement>(".hw-tooltip")!;
    expect(tooltip.hidden).toBe(true);
    expect(root.querySelector<HTMLElement>(".hw-progress")!.hidden).toBe(true);
  });

  it("inserts user strings as text, never as HTML", () => {
    const { root } = mount();
    expect(root.querySelector("img")).toBeNull();
    expect(root.querySelector("b")).toBeNull();
    expect(root.querySelector(".hw-title")?.textContent).toBe("tiny <model>");
    const count = root.querySelector('.hw-count[data-task="<img src=x onerror=alert(1)>"]');
    expect(count).not.toBeNull();
  });

  it("shows per-task counts and updates them from the slider without a round trip", async () => {
    const { root, state, saves } = mount();
    const counts = () => Array.from(root.querySelectorAll(".hw-count")).map((c) => c.textContent);
    // values are (i*37 % 11)/10 per task, normalized by each task's sum
    expect(counts()[0]).toMatch(/^\d+ heads? ≥ 0\.030$/);
    const before = counts().map((c) => Number(c!.split(" ")[0]));
    const slider = root.querySelector<HTMLInputElement>("input.hw-threshold")!;
    const field = root.querySelector<HTMLInputElement>("input.hw-threshold-value")!;
    expect(field.value).toBe("0.03");
    // the slider's top is the colour bar's top (vmax, the 99.5th percentile), not the data max
    const top = root.querySelectorAll(".hw-colorbar-label");
    const topLabel = top[top.length - 1].textContent!;
    slider.value = slider.max;
    slider.dispatchEvent(new Event("input", { bubbles: true }));
    const vmax = Number(slider.dataset.hi);
    expect(state.threshold).toBe(vmax);
    expect(topLabel.replace("+", "")).toBe(vmax.toFixed(topLabel.replace("+", "").split(".")[1].length));
    await tick();
    expect(field.value).toBe(String(Number(vmax.toPrecision(12))));
    const after = counts().map((c) => Number(c!.split(" ")[0]));
    // only the heads at the top of the colour scale still pass
    expect(after.reduce((a, b) => a + b)).toBeGreaterThan(0);
    expect(after.every((n, t) => n < before[t])).toBe(true);
    expect(saves()).toBeGreaterThan(0);
  });

  it("maps the slider non-linearly: the trait is the threshold, the middle is a quarter of the top", async () => {
    const { root, state, model } = mount();
    const slider = root.querySelector<HTMLInputElement>("input.hw-threshold")!;
    expect([slider.min, slider.max, slider.dataset.lo]).toEqual(["0", "1000", "0"]);
    const hi = Number(slider.dataset.hi);
    slider.value = "500";
    slider.dispatchEvent(new Event("input", { bubbles: true }));
    expect(state.threshold).toBe(Number((hi / 4).toPrecision(3)));
    // Python sets a threshold: the thumb moves to its position, the field shows it exactly
    model.set("threshold", hi / 16);
    await tick();
    expect(Number(slider.value)).toBe(250);
    expect(root.querySelector<HTMLInputElement>("input.hw-threshold-value")!.value).toBe(String(Number((hi / 16).toPrecision(12))));
  });

  it("takes a typed threshold, also past the slider's top, and reverts invalid text", async () => {
    const { root, state } = mount();
    const slider = root.querySelector<HTMLInputElement>("input.hw-threshold")!;
    const field = root.querySelector<HTMLInputElement>("input.hw-threshold-value")!;
    const counts = () => Array.from(root.querySelectorAll(".hw-count")).map((c) => Number(c.textContent!.split(" ")[0]));
    const type = (text: string, key = "Enter") => {
      field.focus();
      field.value = text;
      field.dispatchEvent(new Event("input", { bubbles: true }));
      field.dispatchEvent(new KeyboardEvent("keydown", { key, bubbles: true }));
    };
    type("0.0123");
    expect(state.threshold).toBe(0.0123);
    await tick();
    expect(field.value).toBe("0.0123");
    // above every value: nothing passes, the thumb sits at the top
    type("5");
    expect(state.threshold).toBe(5);
    await tick();
    expect(counts()).toEqual([0, 0, 0]);
    expect(slider.value).toBe(slider.max);
    for (const bad of ["abc", "", "1..2"]) {
      type(bad);
      expect(state.threshold).toBe(5);
      expect(field.value).toBe("5");
    }
    // Escape drops the edit
    type("0.5", "Escape");
    expect(state.threshold).toBe(5);
    expect(field.value).toBe("5");
    // blur commits
    field.focus();
    field.value = "1e-3";
    field.dispatchEvent(new Event("input", { bubbles: true }));
    field.blur();
    expect(state.threshold).toBe(0.001);
  });

  it("takes a typed top percent in (0, 100]", async () => {
    const { root, state, model } = mount();
    model.set("threshold_mode", "top_percent");
    await tick();
    const field = root.querySelector<HTMLInputElement>("input.hw-threshold-value")!;
    expect(field.value).toBe("5");
    expect(root.querySelector(".hw-threshold-unit")!.textContent).toBe("%");
    const type = (text: string) => {
      field.focus();
      field.value = text;
      field.dispatchEvent(new Event("input", { bubbles: true }));
      field.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true }));
    };
    type("12.5%");
    expect(state.top_percent).toBe(12.5);
    for (const bad of ["0", "150", "-3", "x"]) {
      type(bad);
      expect(state.top_percent).toBe(12.5);
      expect(field.value).toBe("12.5");
    }
  });

  it("counts the top percent in top_percent mode", async () => {
    const { root, model } = mount();
    model.set("threshold_mode", "top_percent");
    model.set("top_percent", 10);
    await tick();
    // 20 heads per task, one NaN in the first: ceil(10 * 19 / 100) = 2 (ties may add more)
    const first = root.querySelector(".hw-count")!.textContent!;
    expect(first).toMatch(/^\d+ heads in top 10%$/);
    expect(Number(first.split(" ")[0])).toBeGreaterThanOrEqual(2);
    const slider = root.querySelector<HTMLInputElement>("input.hw-threshold")!;
    expect([slider.min, slider.max]).toEqual(["0.1", "100"]);
  });

  it("switches tabs through the model and shows the category legend", async () => {
    const { root, state } = mount();
    const tab = Array.from(root.querySelectorAll<HTMLButtonElement>("button[role=tab]")).find((b) => b.textContent === "Categories")!;
    tab.click();
    expect(state.tab).toBe("categories");
    await tick();
    expect(tab.getAttribute("aria-selected")).toBe("true");
    const panels = Array.from(root.querySelectorAll<HTMLCanvasElement>("canvas.hw-canvas")).map((c) => c.dataset.panel);
    expect(panels).toEqual(["All Categories", "Algorithmic", "Knowledge"]);
    const legend = Array.from(root.querySelectorAll(".hw-legend .hw-legend-item")).map((i) => i.textContent);
    expect(legend).toEqual(["2 categories", "Knowledge", "Algorithmic", "Unclassified"]);
    expect(root.querySelector("canvas.hw-colorbar")).toBeNull();
  });

  it("opens a task tab with its description as text", async () => {
    const { root, model } = mount();
    model.set("tab", "task:<img src=x onerror=alert(1)>");
    await tick();
    const panels = Array.from(root.querySelectorAll<HTMLCanvasElement>("canvas.hw-canvas")).map((c) => c.dataset.panel);
    expect(panels).toEqual(["<img src=x onerror=alert(1)>"]);
    expect(root.querySelector(".hw-task-description")?.textContent).toBe("<b>bold</b>");
    expect(root.querySelector("b")).toBeNull();
  });

  it("falls back to the All tasks tab for an unknown tab", () => {
    const { root } = mount({ tab: "task:nope" });
    expect(root.dataset.tab).toBe("all");
    expect(root.querySelectorAll("canvas.hw-canvas").length).toBe(3);
  });

  it("has no Categories tab when no task has a category", () => {
    const { root } = mount({
      tasks: [
        { name: "a", category: null },
        { name: "b", category: null },
        { name: "c", category: null },
      ],
    });
    const tabs = Array.from(root.querySelectorAll("button[role=tab]")).map((t) => t.textContent);
    expect(tabs).toEqual(["All tasks", "a", "b", "c"]);
  });

  it("swaps rows and columns in layer_x orientation", async () => {
    const { root, model } = mount();
    model.set("orientation", "layer_x");
    await tick();
    const c = root.querySelector<HTMLCanvasElement>("canvas.hw-canvas")!;
    expect([c.dataset.rows, c.dataset.cols]).toEqual(["5", "4"]);
    expect(root.querySelector<HTMLSelectElement>("select.hw-orientation")!.value).toBe("layer_x");
  });

  it("layer_x: arrow up moves to a higher head (head 0 is the bottom row), right to the next layer", async () => {
    const { root, model, state } = mount();
    model.set("orientation", "layer_x");
    await tick();
    const c = root.querySelector<HTMLCanvasElement>('canvas[data-panel="copying"]')!;
    model.set("selected_head", [1, 2]);
    const key = (k: string) => c.dispatchEvent(new KeyboardEvent("keydown", { key: k, bubbles: true }));
    key("ArrowUp");
    expect(state.selected_head).toEqual([1, 3]);
    key("ArrowRight");
    expect(state.selected_head).toEqual([2, 3]);
    key("ArrowDown");
    key("ArrowDown");
    expect(state.selected_head).toEqual([2, 1]);
    for (let i = 0; i < 10; i++) key("ArrowDown");
    expect(state.selected_head).toEqual([2, 0]);
    expect(root.querySelector(".hw-live")!.textContent).toMatch(/^Layer 2, head 0, /);
  });

  it("moves the selection with arrow keys, announces it and clears it with Escape", () => {
    const { root, state } = mount();
    const c = root.querySelector<HTMLCanvasElement>('canvas[data-panel="copying"]')!;
    c.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowRight", bubbles: true }));
    expect(state.selected_head).toEqual([0, 0]);
    expect(state.selected_task).toBe("copying");
    c.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowRight", bubbles: true }));
    c.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowDown", bubbles: true }));
    expect(state.selected_head).toEqual([1, 1]);
    expect(root.querySelector(".hw-live")!.textContent).toMatch(/^Layer 1, head 1, importance \d\.\d+$/);
    // stops at the edge
    for (let i = 0; i < 10; i++) c.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowDown", bubbles: true }));
    expect(state.selected_head).toEqual([3, 1]);
    c.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true }));
    expect(state.selected_head).toBeNull();
    expect(state.selected_task).toBe("");
  });

  it("shows streaming progress while running", async () => {
    const { root, model } = mount();
    model.set("progress", { text: "task 1/3 · layer 2/4", fraction: 0.2, running: true });
    await tick();
    const p = root.querySelector<HTMLElement>(".hw-progress")!;
    expect(p.hidden).toBe(false);
    expect(p.textContent).toBe("task 1/3 · layer 2/4");
    model.set("progress", {});
    await tick();
    expect(p.hidden).toBe(true);
  });

  it("shows the waiting text before scoring and an error when scoring stopped, without a bar", async () => {
    // the dicts headwidget/views/widget.py writes to `progress`
    const { root, model } = mount({ progress: { text: "waiting to score 3 tasks · 4 layers", fraction: 0, running: false } });
    const p = root.querySelector<HTMLElement>(".hw-progress")!;
    const bar = root.querySelector<HTMLElement>(".hw-progress-bar")!;
    expect(p.hidden).toBe(false);
    expect(p.textContent).toBe("waiting to score 3 tasks · 4 layers");
    expect(bar.hidden).toBe(true);
    expect(p.classList.contains("hw-progress-error")).toBe(false);
    model.set("progress", { text: "task 1/3 · layer 3/4 · ETA 2s", fraction: 0.25, running: true });
    await tick();
    expect(p.hidden).toBe(false);
    expect(bar.hidden).toBe(false);
    expect(p.classList.contains("hw-progress-error")).toBe(false);
    model.set("progress", { text: "error after 3/4 layers: out of memory", fraction: 0.75, running: false, error: true });
    await tick();
    expect(p.hidden).toBe(false);
    expect(p.textContent).toBe("error after 3/4 layers: out of memory");
    expect(p.classList.contains("hw-progress-error")).toBe(true);
    expect(bar.hidden).toBe(true);
    expect(p.getAttribute("role")).toBe("status");
    model.set("progress", { text: "interrupted after 1/4 layers", fraction: 0.25, running: false, error: true });
    await tick();
    expect(p.textContent).toBe("interrupted after 1/4 layers");
    expect(p.classList.contains("hw-progress-error")).toBe(true);
    // a new run clears the error style; scoring done clears everything
    model.set("progress", { text: "scoring 3 tasks…", fraction: 0, running: true });
    await tick();
    expect(p.classList.contains("hw-progress-error")).toBe(false);
    model.set("progress", {});
    await tick();
    expect(p.hidden).toBe(true);
  });

  it("styles the progress error with the error colour", async () => {
    const css = readFileSync(resolve(dirname(fileURLToPath(import.meta.url)), "../src/widget.css"), "utf-8");
    const style = document.createElement("style");
    style.textContent = css;
    document.head.append(style);
    try {
      const { root, model } = mount({ progress: { text: "error after 3/4 layers: out of memory", fraction: 0.75, running: false, error: true } });
      await tick();
      const p = root.querySelector<HTMLElement>(".hw-progress")!;
      const color = getComputedStyle(p).color;
      expect(color).toBe("#c62828"); // --hw-error outside JupyterLab and VS Code (light theme)
      model.set("progress", { text: "waiting to score 3 tasks · 4 layers", fraction: 0, running: false });
      await tick();
      expect(color).not.toBe(getComputedStyle(p).color);
      expect(getComputedStyle(p).display).not.toBe("none");
    } finally {
      style.remove();
    }
  });

  it("handles tasks and categories named like Object.prototype keys", async () => {
    const names = ["__proto__", "constructor", "toString"];
    const { root, model } = mount({ tasks: names.map((name) => ({ name, category: name, description: "", baseline: null })) });
    expect(root.dataset.ready).toBe("true");
    expect(Array.from(root.querySelectorAll("button[role=tab]")).map((t) => t.textContent)).toEqual([
      "All tasks",
      "Categories",
      ...names,
    ]);
    expect(Array.from(root.querySelectorAll<HTMLCanvasElement>("canvas.hw-canvas")).map((c) => c.dataset.panel)).toEqual(names);
    model.set("tab", "categories");
    await tick();
    expect(root.querySelector(".hw-message")!.textContent).toBe("");
    expect(Array.from(root.querySelectorAll<HTMLCanvasElement>("canvas.hw-canvas")).map((c) => c.dataset.panel)).toEqual([
      "All Categories",
      ...names,
    ]);
    const swatches = Array.from(root.querySelectorAll<HTMLElement>(".hw-legend-item")).map((i) => [
      i.dataset.label,
      i.querySelector<HTMLElement>(".hw-swatch")!.style.background,
    ]);
    expect(swatches.map(([label]) => label)).toEqual(["3 categories", "2 categories", "toString", "constructor", "__proto__", "Unclassified"]);
    for (const [, bg] of swatches) expect(bg).not.toBe("");
    model.set("tab", "task:__proto__");
    await tick();
    expect(root.dataset.tab).toBe("task:__proto__");
    expect(root.querySelector(".hw-task-meta")!.textContent).toBe("category: __proto__");
  });

  it("makes the colour-bar strip once per colormap", async () => {
    // happy-dom has no 2D context: stand one in so that the drawing code runs
    const proto = HTMLCanvasElement.prototype as unknown as { getContext: unknown };
    const original = proto.getContext;
    const noop = () => {};
    proto.getContext = function () {
      const state: Record<string | symbol, unknown> = {
        createImageData: (w: number, hgt: number) => ({ width: w, height: hgt, data: new Uint8ClampedArray(w * hgt * 4) }),
        measureText: (text: string) => ({ width: text.length * 6 }),
        createPattern: () => null,
        fillStyle: "#000000",
      };
      return new Proxy(state, { get: (t, k) => (k in t ? t[k] : noop), set: (t, k, v) => ((t[k] = v), true) });
    };
    const created = { canvases: 0 };
    const createElement = document.createElement.bind(document);
    const spy = (tag: string, opts?: ElementCreationOptions) => {
      if (tag.toLowerCase() === "canvas") created.canvases++;
      return createElement(tag, opts);
    };
    (document as { createElement: unknown }).createElement = spy;
    try {
      const { root, model } = mount();
      expect(root.querySelector("canvas.hw-colorbar")).not.toBeNull();
      const redraw = async (trait: string, value: unknown) => {
        created.canvases = 0;
        model.set(trait, value);
        await tick();
        return created.canvases;
      };
      // redraws that only recolour (selection, threshold) make no canvas at all
      expect(await redraw("selected_head", [1, 1])).toBe(0);
      expect(await redraw("threshold", 0.05)).toBe(0);
      // a new colormap: one strip; back to the first one: cached
      expect(await redraw("colormap", "magma")).toBe(1);
      expect(await redraw("colormap", "viridis")).toBe(0);
      // per-task bars (one per panel) share the cached strip
      await redraw("color_range", "per_task");
      expect(root.querySelector("canvas.hw-colorbar")).toBeNull();
      expect(await redraw("threshold", 0.06)).toBe(0);
      expect(await redraw("colormap", "cividis")).toBe(1);
    } finally {
      delete (document as { createElement?: unknown }).createElement;
      proto.getContext = original;
    }
  });

  it("redraws when streamed values arrive", async () => {
    const { root, model } = mount({ values: new DataView(new Float32Array(60).fill(NaN).buffer) });
    expect(root.querySelector(".hw-count")!.textContent).toMatch(/^0 heads/);
    const canvas = root.querySelector("canvas.hw-canvas");
    const full = new Float32Array(60).fill(1);
    model.set("values", new DataView(full.buffer));
    await tick();
    expect(root.querySelector(".hw-count")!.textContent).toMatch(/^20 heads/);
    // same canvases: a streamed update does not rebuild the DOM (focus and hover survive)
    expect(root.querySelector("canvas.hw-canvas")).toBe(canvas);
  });

  it("explains a values/shape mismatch", () => {
    const { root } = mount({ shape: [3, 4, 6] });
    const msg = root.querySelector<HTMLElement>(".hw-message")!;
    expect(msg.hidden).toBe(false);
    expect(msg.textContent).toContain("shape [3, 4, 6] needs 72");
    expect(root.querySelectorAll("canvas.hw-canvas").length).toBe(0);
  });

  it("cleans up: removes its DOM and model listeners", () => {
    const { el, listeners } = mount();
    const before = Array.from(listeners.values()).reduce((n, s) => n + s.size, 0);
    expect(before).toBeGreaterThan(10);
    cleanup!();
    cleanup = null;
    expect(el.querySelector(".headwidget")).toBeNull();
    expect(Array.from(listeners.values()).reduce((n, s) => n + s.size, 0)).toBe(0);
  });
});
