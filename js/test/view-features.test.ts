// @vitest-environment happy-dom
// The view's marks and controls added for approximate cells, accuracy, provenance, zoom and
// export, against a stand-in anywidget model (as render.test.ts).
import { afterEach, describe, expect, it, vi } from "vitest";
import { exportSvg, renderView, standInModel, traitState, unmountViews } from "./fake-model";


function mount(overrides: Record<string, unknown> = {}) {
  const values = Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => ((i * 7) % 10) / 10);
  const exact = Uint8Array.from({ length: 24 }, (_, i) => (i % 3 ? 1 : 0));
  const state = traitState({
    values: new DataView(values.buffer),
    exact: new DataView(exact.buffer),
    shape: [2, 3, 4],
    tasks: [
      { name: "copying", category: "Algorithmic", description: "", baseline: null, accuracy: 0.9 },
      { name: "hard task", category: "Knowledge", description: "", baseline: null, accuracy: 0.05 },
    ],
    provenance: { model: "tiny", method: "attribution", metric: "logprob", ablation: "mean", examples: { copying: 4, "hard task": 6 }, date: "2026-12-02" },
    ...overrides,
  });
  const { model } = standInModel(state);
  return { root: renderView(model).root, state, model };
}

const tick = () => new Promise((r) => setTimeout(r, 40));
afterEach(() => {
  unmountViews();
  vi.restoreAllMocks();
});

const keyTexts = (root: HTMLElement) => Array.from(root.querySelectorAll(".hw-key-item")).map((i) => i.textContent);

describe("approximate cells, accuracy and provenance", () => {
  it("counts approximate cells in the key, and its toggle shows only exact ones", async () => {
    const { root, state } = mount();
    expect(keyTexts(root).some((t) => t!.includes("dotted: approximate (attribution), 8 of 24 cells"))).toBe(true);
    const counts = () => Array.from(root.querySelectorAll(".hw-count")).map((c) => Number(c.textContent!.split(" ")[0]));
    const before = counts();
    const toggle = root.querySelector<HTMLInputElement>("input.hw-exact-only")!;
    toggle.checked = true;
    toggle.dispatchEvent(new Event("change"));
    expect(state.exact_only).toBe(true);
    await tick();
    expect(keyTexts(root).some((t) => t!.startsWith("exact cells only: 8 approximate (attribution) cells hidden"))).toBe(true);
    expect(keyTexts(root).some((t) => t!.startsWith("hatched: no exact value"))).toBe(true);
    const after = counts();
    expect(after.reduce((a, b) => a + b)).toBeLessThan(before.reduce((a, b) => a + b));
  });

  it("greys the title of a task the model fails and says why", () => {
    const { root } = mount();
    const panels = Array.from(root.querySelectorAll<HTMLElement>(".hw-panel"));
    expect(panels.map((p) => p.classList.contains("hw-fails"))).toEqual([false, true]);
    expect(panels.map((p) => p.querySelector(".hw-accuracy")!.textContent)).toEqual(["acc 90%", "fails · acc 5%"]);
    expect(panels[1].querySelector<HTMLElement>(".hw-panel-title")!.title).toContain("model fails this task: clean accuracy 5% < 20%");
    expect(keyTexts(root).some((t) => t!.includes("model fails: clean accuracy below 20%"))).toBe(true);
  });

  it("follows min_accuracy", async () => {
    const { root, model } = mount();
    model.set("min_accuracy", 0.01);
    await tick();
    expect(root.querySelectorAll(".hw-panel.hw-fails").length).toBe(0);
    expect(keyTexts(root).some((t) => t!.includes("model fails"))).toBe(false);
  });

  it("shows the provenance line and the colour bar's unit", async () => {
    const { root, model } = mount();
    expect(root.querySelector(".hw-provenance")!.textContent).toBe("tiny · attribution (mean ablation) · metric logprob · 4–6 examples per task · 2026-12-02");
    expect(root.querySelector(".hw-colorbar-title")!.textContent).toBe("Importance (share of task)");
    model.set("normalization", "raw");
    await tick();
    expect(root.querySelector(".hw-colorbar-title")!.textContent).toBe("Importance (log-prob drop)");
  });

  it("leaves converting the threshold to the model when the scale changes", () => {
    const { root, state } = mount();
    const sel = root.querySelector<HTMLSelectElement>("select.hw-normalization")!;
    sel.value = "raw";
    sel.dispatchEvent(new Event("change"));
    expect(state.normalization).toBe("raw");
    expect(state.threshold).toBe(0.05); // Python (or the saved page's model) converts it
  });

  it("names fading in the key only as an option", async () => {
    const { root, state } = mount();
    expect(keyTexts(root).some((t) => t!.startsWith("true colours"))).toBe(true);
    const fade = root.querySelector<HTMLInputElement>("input.hw-fade-below")!;
    fade.checked = true;
    fade.dispatchEvent(new Event("change"));
    expect(state.fade_below).toBe(true);
    await tick();
    expect(keyTexts(root).some((t) => t!.startsWith("faded: below the threshold"))).toBe(true);
  });
});

describe("threshold field and dark mode", () => {
  it("says why typed text was not taken, until the next edit", () => {
    const { root, state } = mount();
    const field = root.querySelector<HTMLInputElement>("input.hw-threshold-value")!;
    const error = root.querySelector(".hw-field-error")!;
    field.focus();
    field.value = "abc";
    field.dispatchEvent(new Event("input", { bubbles: true }));
    field.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true }));
    expect(state.threshold).toBe(0.05);
    expect(field.value).toBe("0.05");
    expect(error.textContent).toBe('"abc" is not a number; type e.g. 0.003 or 1e-3');
    expect(field.getAttribute("aria-invalid")).toBe("true");
    field.dispatchEvent(new Event("input", { bubbles: true }));
    expect(error.textContent).toBe("");
  });

  it("draws Unclassified dark in a dark theme, where light grey would outshine the categories", async () => {
    const { root, model } = mount();
    document.body.dataset.jpThemeLight = "false";
    model.set("tab", "categories");
    await tick();
    const swatch = root.querySelector<HTMLElement>('.hw-legend-item[data-label="Unclassified"] .hw-swatch')!;
    expect(swatch.style.background).toMatch(/#3c3c3c|rgb\(60, 60, 60\)/);
    delete document.body.dataset.jpThemeLight;
  });
});

describe("drill-down", () => {
  it("lists the selected head's importance in every task, with rank and marks", async () => {
    const { root, model } = mount();
    const drill = root.querySelector<HTMLElement>(".hw-drill")!;
    expect(drill.hidden).toBe(true);
    model.set("selected_head", [1, 2]);
    model.set("selected_task", "copying");
    await tick();
    expect(drill.hidden).toBe(false);
    expect(drill.querySelector(".hw-drill-title")!.textContent).toBe("Layer 1 · Head 2 in every task");
    const rows = Array.from(drill.querySelectorAll<HTMLElement>(".hw-drill-row"));
    expect(rows.map((r) => r.dataset.task)).toEqual(["copying", "hard task"]);
    // head (1, 2) is cell 6 of each task (cells 6 and 18): both approximate (i % 3 == 0)
    const texts = rows.map((r) => r.querySelector(".hw-drill-value")!.textContent!);
    expect(texts[0]).toMatch(/^0\.\d+ · rank \d+\/12 · approximate$/);
    expect(texts[1]).toMatch(/^0\.\d+ · rank \d+\/12 · approximate · model fails$/);
    expect(rows[0].classList.contains("hw-drill-selected")).toBe(true);
    expect(rows[1].classList.contains("hw-fails")).toBe(true);
    model.set("selected_head", null);
    await tick();
    expect(drill.hidden).toBe(true);
  });
});

describe("keyboard, zoom and export", () => {
  it("keeps notebook shortcuts off every focusable element and the arrow keys in the widget", () => {
    const { root } = mount();
    for (const e of Array.from(root.querySelectorAll("button, select, input, canvas.hw-canvas"))) {
      expect(e.getAttribute("data-lm-suppress-shortcuts"), e.outerHTML.slice(0, 60)).toBe("true");
    }
    const canvas = root.querySelector<HTMLCanvasElement>("canvas.hw-canvas")!;
    const outside = vi.fn();
    document.body.addEventListener("keydown", outside);
    canvas.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowDown", bubbles: true, cancelable: true }));
    expect(outside).not.toHaveBeenCalled();
  });

  it("enlarges a task's panel from its zoom button", async () => {
    const { root, state } = mount();
    const zoom = root.querySelectorAll<HTMLButtonElement>("button.hw-zoom");
    expect(zoom.length).toBe(2);
    zoom[1].click();
    expect(state.tab).toBe("task:hard task");
    await tick();
    expect(root.querySelectorAll("canvas.hw-canvas").length).toBe(1);
    expect(root.querySelector("button.hw-zoom")).toBeNull();
  });

  it("exports an SVG that parses and holds every panel title and the provenance", async () => {
    const { root } = mount();
    const svg = await exportSvg(root);
    const texts = Array.from(svg.querySelectorAll("text")).map((t) => t.textContent);
    expect(texts).toContain("copying");
    expect(texts).toContain("hard task");
    // the provenance line, wrapped to the export's width
    expect(texts.join(" ")).toContain("attribution (mean ablation) · metric logprob");
    expect(texts).toContain("fails · acc 5%");
  });
});
