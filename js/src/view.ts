// The widget view: DOM skeleton, canvases, controls and model synchronisation.
import type { AnyModel } from "@anywidget/types";
import {
  categoryColors,
  classify,
  codeLabel,
  headCategories,
  legendLabels,
  UNCLASSIFIED,
  UNCLASSIFIED_CODE,
  type Classification,
} from "./categories";
import { dimmedLut, isColormap, lut, lutIndex, LUT_SIZE, parseColor, type ColormapName } from "./colormap";
import {
  colorScales,
  computeStats,
  normalize,
  toFloat32,
  toTasks,
  type ColorScale,
  type Normalization,
  type Stats,
  type TaskInfo,
} from "./data";
import { fileSlug, h, option, throttle } from "./dom";
import {
  autoColumns,
  cellAt,
  wrapLines,
  wrapText,
  cellRect,
  cellToHead,
  gridLayout,
  gridShape,
  headToCell,
  axisNames,
  rowOfTick,
  type GridLayout,
  type Orientation,
  type PanelBox,
} from "./layout";
import { colorbarTicks, decimalsFor, formatFixed, formatPercent, formatSig, formatValue, intTicks, niceStep, type Tick } from "./scale";
import { detectDark, readTheme, type Theme } from "./theme";
import {
  formatExact,
  parseTyped,
  rankOf,
  SLIDER_STEPS,
  sliderRange,
  sliderThreshold,
  taskCutoffs,
  thresholdToPosition,
  type SliderRange,
  type ThresholdMode,
} from "./threshold";

/** Row and column step of each arrow key. */
const ARROW_MOVES: ReadonlyMap<string, [number, number]> = new Map<string, [number, number]>([
  ["ArrowUp", [-1, 0]],
  ["ArrowDown", [1, 0]],
  ["ArrowLeft", [0, -1]],
  ["ArrowRight", [0, 1]],
]);

/** Share of a dimmed (below-threshold) head's colour that is kept; the rest is the background. */
export const DIM_ALPHA = 0.28;
const ALL_CATEGORIES = "All Categories";
const SIDE_WIDTH = 92;
const LEGEND_WIDTH = 128;
const PER_TASK_BAR = 46;
const TITLE_LINE = 17;
const COUNT_LINE = 15;
/** Height of one legend row (CSS .hw-legend-item height + gap), also used by the PNG export. */
const LEGEND_ROW = 20;

const DATA = 1;
const SCALE = 2;
const THRESH = 4;
const STRUCT = 8;
const DRAW = 16;
const CONTROLS = 32;

type PanelKind = "task" | "allcats" | "category";

interface Panel {
  kind: PanelKind;
  name: string;
  task: number;
  category: number;
  box: PanelBox;
  wrap: HTMLElement;
  canvas: HTMLCanvasElement;
  ctx: CanvasRenderingContext2D | null;
  buffer: HTMLCanvasElement;
  bctx: CanvasRenderingContext2D | null;
  image: ImageData | null;
  countEl: HTMLElement | null;
}

interface Selection {
  layer: number;
  head: number;
}

type Model = AnyModel<Record<string, any>>;

function num(v: unknown, fallback: number): number {
  return typeof v === "number" && Number.isFinite(v) ? v : fallback;
}

function optNum(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

function pick<T extends string>(v: unknown, allowed: readonly T[], fallback: T): T {
  return typeof v === "string" && (allowed as readonly string[]).includes(v) ? (v as T) : fallback;
}

/** Render the widget into `el`; returns the cleanup function. */
export function createView(model: Model, el: HTMLElement): () => void {
  const doc = el.ownerDocument;
  const win = doc.defaultView;
  const cleanups: (() => void)[] = [];

  // ---- state -------------------------------------------------------------------------------
  let values: Float32Array<ArrayBufferLike> = new Float32Array(0);
  let shape: [number, number, number] = [0, 0, 0];
  let tasks: TaskInfo[] = [];
  let norm: Float32Array<ArrayBufferLike> = new Float32Array(0);
  let stats: Stats | null = null;
  let scales: ColorScale[] = [];
  let lutIdx: Int16Array[] = [];
  let cutoffs: Float64Array<ArrayBufferLike> = new Float64Array(0);
  let classes: Classification | null = null;
  let catRgb: Uint8Array = new Uint8Array(0);
  let error = "";
  let theme: Theme = readTheme(el, detectDark(doc, win));
  let dpr = 1;
  let panels: Panel[] = [];
  let layout: GridLayout | null = null;
  let activeTab = "all";
  let hover: { panel: Panel; row: number; col: number } | null = null;
  let dirty = 0;
  let frame: number | null = null;
  let lastWidth = -1;
  let destroyed = false;
  let sliderDecimals = 4;
  let range: SliderRange = { lo: 0, hi: 1 };

  const get = (k: string) => model.get(k);
  const normalization = (): Normalization => pick(get("normalization"), ["share", "raw"] as const, "share");
  const mode = (): ThresholdMode => pick(get("threshold_mode"), ["value", "top_percent"] as const, "value");
  const colormap = (): ColormapName => (isColormap(get("colormap")) ? get("colormap") : "viridis");
  const colorRange = () => pick(get("color_range"), ["shared", "per_task"] as const, "shared");
  const orientation = (): Orientation => pick(get("orientation"), ["layer_y", "layer_x"] as const, "layer_y");
  const threshold = () => num(get("threshold"), 0);
  const topPercent = () => Math.min(100, Math.max(1e-6, num(get("top_percent"), 5)));
  const selection = (): Selection | null => {
    const s = get("selected_head");
    if (!Array.isArray(s) || s.length < 2) return null;
    const [layer, head] = s.map(Number);
    if (!(layer >= 0 && layer < shape[1] && head >= 0 && head < shape[2])) return null;
    return { layer, head };
  };

  // ---- skeleton ----------------------------------------------------------------------------
  const root = h(doc, "div", { class: "headwidget", "data-testid": "headwidget" });
  const header = h(doc, "div", { class: "hw-header" });
  const titleEl = h(doc, "div", { class: "hw-title" });
  const progressEl = h(doc, "div", { class: "hw-progress", role: "status" });
  const progressText = h(doc, "span", { class: "hw-progress-text" });
  const progressBar = h(doc, "span", { class: "hw-progress-bar", "aria-hidden": "true" });
  const progressFill = h(doc, "span", { class: "hw-progress-fill" });
  progressBar.append(progressFill);
  progressEl.append(progressText, progressBar);
  header.append(titleEl, progressEl);

  const tablist = h(doc, "div", { class: "hw-tabs", role: "tablist", "aria-label": "Views" });

  const controls = h(doc, "div", { class: "hw-controls" });
  const control = (label: string, input: HTMLElement, cls = "") => {
    const wrap = h(doc, "label", { class: `hw-control ${cls}`.trim() });
    wrap.append(h(doc, "span", { class: "hw-control-label" }, label), input);
    controls.append(wrap);
    return wrap;
  };
  const modeSel = h(doc, "select", { class: "hw-threshold-mode", "aria-label": "Threshold mode" });
  modeSel.append(option(doc, "value", "value ≥"), option(doc, "top_percent", "top %"));
  const slider = h(doc, "input", {
    class: "hw-threshold",
    type: "range",
    "aria-label": "Threshold",
  }) as HTMLInputElement;
  // the exact threshold, editable: any value can be typed, also past the slider's ends
  const valueField = h(doc, "input", {
    class: "hw-threshold-value",
    type: "text",
    inputmode: "decimal",
    autocomplete: "off",
    spellcheck: "false",
    size: "9",
    "aria-label": "Threshold value",
  }) as HTMLInputElement;
  const valueUnit = h(doc, "span", { class: "hw-threshold-unit", "aria-hidden": "true" });
  const thresholdWrap = h(doc, "div", { class: "hw-control hw-control-threshold" });
  thresholdWrap.append(h(doc, "span", { class: "hw-control-label" }, "Threshold"), modeSel, slider, valueField, valueUnit);
  controls.append(thresholdWrap);
  const cmapSel = h(doc, "select", { class: "hw-colormap" });
  cmapSel.append(
    option(doc, "viridis", "viridis"),
    option(doc, "magma", "magma"),
    option(doc, "cividis", "cividis"),
    option(doc, "diverging", "diverging"),
  );
  control("Colours", cmapSel);
  const normSel = h(doc, "select", { class: "hw-normalization" });
  normSel.append(option(doc, "share", "share of task"), option(doc, "raw", "raw score"));
  control("Scale", normSel);
  const rangeSel = h(doc, "select", { class: "hw-color-range" });
  rangeSel.append(option(doc, "shared", "shared"), option(doc, "per_task", "per task"));
  control("Range", rangeSel);
  const orientSel = h(doc, "select", { class: "hw-orientation" });
  orientSel.append(option(doc, "layer_y", "layers ↓, heads →"), option(doc, "layer_x", "layers →, heads ↑"));
  control("Axes", orientSel);
  const exportBtn = h(doc, "button", { class: "hw-export", type: "button" }, "Export PNG");
  controls.append(exportBtn);

  const message = h(doc, "div", { class: "hw-message", role: "alert" });
  const info = h(doc, "div", { class: "hw-task-info" });
  const grid = h(doc, "div", { class: "hw-grid" });
  const tooltip = h(doc, "div", { class: "hw-tooltip", role: "tooltip" });
  tooltip.hidden = true;
  const live = h(doc, "div", { class: "hw-live hw-visually-hidden", "aria-live": "polite" });
  root.append(header, tablist, controls, message, info, grid, tooltip, live);
  // JupyterLab (Lumino) skips its command-mode shortcuts (arrows, "d d", "a", "b") for key
  // events from inside an element with this attribute, so arrow keys move the selected head
  // instead of the notebook's active cell.
  root.setAttribute("data-lm-suppress-shortcuts", "true");
  el.append(root);
  cleanups.push(() => root.remove());

  // ---- helpers -------------------------------------------------------------------------------
  const hasCategories = () => tasks.some((t) => t.category != null);
  const catNames = () => classes?.names ?? [];

  function resolveTab(): string {
    const tab = String(get("tab") ?? "all");
    if (tab === "categories" && hasCategories()) return tab;
    if (tab.startsWith("task:") && tasks.some((t) => `task:${t.name}` === tab)) return tab;
    return "all";
  }

  function countText(t: number): string {
    const n = classes ? classes.passes[t] : 0;
    const heads = n === 1 ? "head" : "heads";
    return mode() === "top_percent"
      ? `${n} ${heads} in top ${formatPercent(topPercent())}%`
      : `${n} ${heads} ≥ ${formatSig(threshold(), sliderDecimals)}`;
  }

  /** Text width for a CSS font, from canvas metrics (an estimate where there is no canvas). */
  function measurer(font: string, charWidth: number): (s: string) => number {
    const ctx = doc.createElement("canvas").getContext?.("2d") as CanvasRenderingContext2D | null;
    if (!ctx) return (s) => s.length * charWidth;
    ctx.font = font;
    // a little slack: DOM text and canvas metrics can differ by a pixel or two
    return (s) => ctx.measureText(s).width * 1.04 + 1;
  }

  function resolveColor(text: string, fallback: string): string {
    const probe = doc.createElement("canvas").getContext?.("2d") as CanvasRenderingContext2D | null;
    if (!probe) return text || fallback;
    probe.fillStyle = fallback;
    probe.fillStyle = text;
    return String(probe.fillStyle);
  }

  function refreshTheme() {
    const dark = detectDark(doc, win);
    root.classList.toggle("hw-dark", dark);
    root.classList.toggle("hw-light", !dark);
    theme = readTheme(root, dark);
    theme.bg = resolveColor(theme.bg, dark ? "#1e1e1e" : "#ffffff");
    theme.bgRgb = parseColor(theme.bg) ?? theme.bgRgb;
  }

  // ---- data ----------------------------------------------------------------------------------
  function refreshData() {
    error = "";
    const rawShape = get("shape");
    shape = Array.isArray(rawShape) && rawShape.length === 3 ? (rawShape.map((v) => Math.max(0, Math.floor(Number(v) || 0))) as [number, number, number]) : [0, 0, 0];
    try {
      values = toFloat32(get("values"));
    } catch (e) {
      values = new Float32Array(0);
      error = String((e as Error).message ?? e);
    }
    const need = shape[0] * shape[1] * shape[2];
    if (!error && values.length !== need) {
      error = `values holds ${values.length} numbers but shape [${shape.join(", ")}] needs ${need}; send float32 bytes in C order [n_tasks, n_layers, n_heads]`;
    }
    if (!error && need === 0) error = "No scores to show yet.";
    if (error) {
      shape = [0, 0, 0];
      values = new Float32Array(0);
    }
    tasks = toTasks(get("tasks"), shape[0]);
    norm = normalize(values, shape, normalization());
    stats = computeStats(norm, shape);
    message.textContent = error;
    message.hidden = !error;
  }

  function refreshScale() {
    if (!stats) return;
    const diverging = colormap() === "diverging";
    scales = colorScales(stats, {
      colorRange: colorRange(),
      diverging,
      vmin: optNum(get("vmin")),
      vmax: optNum(get("vmax")),
    });
    const size = shape[1] * shape[2];
    lutIdx = scales.map((s, t) => {
      const out = new Int16Array(size);
      const base = t * size;
      for (let i = 0; i < size; i++) out[i] = lutIndex(norm[base + i], s.vmin, s.vmax);
      return out;
    });
    // the slider ends where the colour bar ends (per-task bars: the highest of their tops)
    const maxAbs = Math.max(Math.abs(stats.max), Math.abs(stats.min));
    range = sliderRange(Math.max(...scales.map((sc) => sc.vmax)), stats.min, maxAbs);
    const span = range.hi - range.lo;
    sliderDecimals = decimalsFor(niceStep(span > 0 ? span : 1, 8)) + 1;
  }

  function refreshThreshold() {
    if (!stats) return;
    cutoffs = taskCutoffs(stats.sorted, mode(), threshold(), topPercent());
    classes = classify(norm, shape, tasks.map((t) => t.category), cutoffs);
    const colors = categoryColors(classes.names);
    // rgb per code: index k for categories, then 2..5 categories, then unclassified
    const entries = [...classes.names, "2 categories", "3 categories", "4 categories", "5+ categories", UNCLASSIFIED];
    catRgb = new Uint8Array(entries.length * 3);
    entries.forEach((label, i) => catRgb.set(parseColor(colors.get(label) ?? "") ?? [200, 200, 200], i * 3));
    for (const p of panels) if (p.countEl) p.countEl.textContent = countText(p.task);
  }

  function codeRgbIndex(code: number): number {
    const n = catNames().length;
    if (code >= 0) return code;
    if (code === UNCLASSIFIED_CODE) return n + 4;
    return n + (-code - 2);
  }

  // ---- structure -----------------------------------------------------------------------------
  function buildTabs() {
    const want = ["all", ...(hasCategories() ? ["categories"] : []), ...tasks.map((t) => `task:${t.name}`)];
    const have = Array.from(tablist.children).map((b) => (b as HTMLElement).dataset.tab);
    if (want.join("\u0000") !== have.join("\u0000")) {
      tablist.replaceChildren(
        ...want.map((id) => {
          const label = id === "all" ? "All tasks" : id === "categories" ? "Categories" : id.slice(5);
          const b = h(doc, "button", { class: "hw-tab", role: "tab", type: "button" }, label);
          b.dataset.tab = id;
          return b;
        }),
      );
    }
    for (const b of Array.from(tablist.children) as HTMLElement[]) {
      const on = b.dataset.tab === activeTab;
      b.setAttribute("aria-selected", String(on));
      b.tabIndex = on ? 0 : -1;
    }
  }

  function availableWidth(): number {
    const w = root.clientWidth || el.clientWidth || 0;
    return w > 100 ? w - 4 : 960;
  }

  let builtKey = "";

  /** Everything the DOM skeleton depends on: streamed values alone do not rebuild it. */
  function structureKey(): string {
    return JSON.stringify([
      resolveTab(),
      shape,
      tasks.map((t) => [t.name, t.category, t.description, t.baseline]),
      error,
      orientation(),
      colorRange(),
      normalization(),
      get("grid_columns"),
      availableWidth(),
      win?.devicePixelRatio ?? 1,
      theme.font,
    ]);
  }

  function rebuild() {
    const key = structureKey();
    if (key === builtKey && panels.length) return;
    builtKey = key;
    activeTab = resolveTab();
    buildTabs();
    root.dataset.tab = activeTab;
    hover = null;
    hideTooltip();
    grid.replaceChildren();
    info.replaceChildren();
    panels = [];
    layout = null;
    colorbar = null;
    if (error || !stats) {
      grid.style.height = "0px";
      return;
    }
    const [nT, nL, nH] = shape;
    const orient = orientation();
    const { rows, cols } = gridShape(orient, nL, nH);
    const tickDigits = String(Math.max(nL, nH) - 1).length;
    const perTask = colorRange() === "per_task";
    const width = availableWidth();
    let specs: { kind: PanelKind; name: string; task: number; category: number }[] = [];
    let sideWidth = perTask ? 0 : SIDE_WIDTH;
    let gutterWidth = 0;
    let columns: number;
    let maxPlotHeight = 340;
    let maxCell = 14;
    let minPlot = 150;
    if (activeTab === "categories") {
      const names = catNames();
      specs = [
        { kind: "allcats", name: ALL_CATEGORIES, task: -1, category: -1 },
        ...names.map((name, k) => ({ kind: "category" as const, name, task: -1, category: k })),
      ];
      sideWidth = 0;
      gutterWidth = LEGEND_WIDTH;
      columns = autoColumns(specs.length, num(get("grid_columns"), 0), Math.min(5, specs.length));
    } else if (activeTab.startsWith("task:")) {
      const t = tasks.findIndex((x) => `task:${x.name}` === activeTab);
      specs = [{ kind: "task", name: tasks[t].name, task: t, category: -1 }];
      columns = 1;
      maxPlotHeight = 620;
      maxCell = 22;
      minPlot = 320;
      const task = tasks[t];
      const bits: string[] = [];
      if (task.category) bits.push(`category: ${task.category}`);
      if (task.baseline != null) bits.push(`baseline ${formatFixed(task.baseline, 4)}`);
      if (bits.length) info.append(h(doc, "div", { class: "hw-task-meta" }, bits.join(" · ")));
      if (task.description) info.append(h(doc, "div", { class: "hw-task-description" }, task.description));
    } else {
      specs = tasks.map((t, i) => ({ kind: "task" as const, name: t.name, task: i, category: -1 }));
      columns = autoColumns(nT, num(get("grid_columns"), 0));
    }
    info.hidden = info.childElementCount === 0;
    const layoutFor = (titleHeight: number) =>
      gridLayout({
        width,
        nPanels: specs.length,
        columns,
        rows,
        cols,
        sideWidth,
        gutterWidth,
        panelRight: perTask && activeTab !== "categories" ? PER_TASK_BAR : 0,
        maxCell,
        minPlot,
        maxPlotHeight,
        tickDigits,
        titleHeight,
      });
    layout = layoutFor(TITLE_LINE + COUNT_LINE + 4);
    // names and counts wrap rather than being cut off: make room for the longest
    const plotWidth = layout.panels[0]?.plot.width ?? 100;
    const titleW = measurer(`600 13px ${theme.font}`, 7.6);
    const countW = measurer(`11px ${theme.font}`, 6.2);
    const digits = "8".repeat(String(nL * nH).length);
    const countLines = Math.max(
      wrapLines(`${digits} heads in top 88.88%`, plotWidth, countW),
      wrapLines(`${digits} heads ≥ 0.000088`, plotWidth, countW),
    );
    const needed =
      Math.max(...specs.map((sp) => TITLE_LINE * wrapLines(sp.name, plotWidth, titleW) + (sp.kind === "task" ? COUNT_LINE * countLines : 0))) + 4;
    if (needed > layout.panels[0].titleHeight) layout = layoutFor(needed);
    grid.style.height = `${gridHeight()}px`;
    grid.style.width = `${layout.width}px`;
    dpr = Math.max(1, Math.min(4, win?.devicePixelRatio || 1));
    specs.forEach((spec, i) => {
      const box = layout!.panels[i];
      const wrap = h(doc, "div", { class: "hw-panel" });
      wrap.style.left = `${box.x}px`;
      wrap.style.top = `${box.y}px`;
      wrap.style.width = `${box.canvasWidth}px`;
      const head = h(doc, "div", { class: "hw-panel-head" });
      head.style.height = `${box.titleHeight}px`;
      head.style.paddingLeft = `${box.plot.left}px`;
      head.style.paddingRight = `${box.canvasWidth - box.plot.left - box.plot.width}px`;
      const title = h(doc, "div", { class: "hw-panel-title" }, spec.name);
      title.title = spec.kind === "task" && tasks[spec.task].description ? `${spec.name}: ${tasks[spec.task].description}` : spec.name;
      head.append(title);
      let countEl: HTMLElement | null = null;
      if (spec.kind === "task") {
        countEl = h(doc, "div", { class: "hw-count" }, countText(spec.task));
        countEl.dataset.task = spec.name;
        head.append(countEl);
      }
      const canvas = h(doc, "canvas", { class: "hw-canvas", tabindex: "0", role: "img" });
      canvas.dataset.panel = spec.name;
      canvas.dataset.rows = String(rows);
      canvas.dataset.cols = String(cols);
      canvas.dataset.plotLeft = String(box.plot.left);
      canvas.dataset.plotTop = String(box.plot.top);
      canvas.dataset.plotWidth = String(box.plot.width);
      canvas.dataset.plotHeight = String(box.plot.height);
      canvas.setAttribute(
        "aria-label",
        `${spec.name}: ${nL} layers by ${nH} heads. Arrow keys move the selected head, Escape clears it.`,
      );
      canvas.width = Math.round(box.canvasWidth * dpr);
      canvas.height = Math.round(box.canvasHeight * dpr);
      canvas.style.width = `${box.canvasWidth}px`;
      canvas.style.height = `${box.canvasHeight}px`;
      wrap.append(head, canvas);
      grid.append(wrap);
      const buffer = doc.createElement("canvas");
      buffer.width = cols;
      buffer.height = rows;
      const bctx = (buffer.getContext?.("2d") as CanvasRenderingContext2D | null) ?? null;
      const panel: Panel = {
        ...spec,
        box,
        wrap,
        canvas,
        ctx: (canvas.getContext?.("2d") as CanvasRenderingContext2D | null) ?? null,
        buffer,
        bctx,
        image: bctx ? bctx.createImageData(cols, rows) : null,
        countEl,
      };
      attachPanelEvents(panel);
      panels.push(panel);
    });
    if (layout.side) buildColorbar(layout);
    if (layout.gutter) buildLegend(layout);
  }

  /** The grid's height, including a category legend taller than the plots beside it. */
  function gridHeight(): number {
    if (!layout) return 0;
    const legend = layout.gutter ? layout.gutter.top + legendLabels(catNames()).length * LEGEND_ROW : 0;
    return Math.ceil(Math.max(layout.height, legend));
  }

  // ---- colour bar and legend -----------------------------------------------------------------
  let colorbar: { canvas: HTMLCanvasElement; labels: HTMLElement; title: HTMLElement; ticks: Tick[] } | null = null;

  function buildColorbar(lay: GridLayout) {
    const side = lay.side!;
    const wrap = h(doc, "div", { class: "hw-side" });
    wrap.style.left = `${side.left}px`;
    wrap.style.top = `${side.top}px`;
    wrap.style.height = `${side.height}px`;
    wrap.style.width = `${side.width}px`;
    const canvas = h(doc, "canvas", { class: "hw-colorbar", role: "img" });
    canvas.width = Math.round(20 * dpr);
    canvas.height = Math.round(side.height * dpr);
    canvas.style.width = "20px";
    canvas.style.height = `${side.height}px`;
    const labels = h(doc, "div", { class: "hw-colorbar-labels" });
    const title = h(
      doc,
      "div",
      { class: "hw-colorbar-title" },
      normalization() === "share" ? "Heads Importance" : "Heads Importance (raw)",
    );
    wrap.append(canvas, labels, title);
    grid.append(wrap);
    colorbar = { canvas, labels, title, ticks: [] };
  }

  function buildLegend(lay: GridLayout) {
    const g = lay.gutter!;
    const legend = h(doc, "div", { class: "hw-legend", role: "list", "aria-label": "Category colours" });
    legend.style.left = `${g.left}px`;
    legend.style.top = `${g.top}px`;
    legend.style.width = `${g.width}px`;
    const colors = categoryColors(catNames());
    for (const label of legendLabels(catNames())) {
      const item = h(doc, "div", { class: "hw-legend-item", role: "listitem" });
      const sw = h(doc, "span", { class: "hw-swatch", "aria-hidden": "true" });
      sw.style.background = colors.get(label) ?? "";
      item.append(sw, h(doc, "span", { class: "hw-legend-label" }, label));
      item.dataset.label = label;
      legend.append(item);
    }
    grid.append(legend);
  }

  /** 1 x LUT_SIZE canvas of a colormap, high values at the top; made once per colormap (drawImage scales it). */
  const strips = new Map<ColormapName, HTMLCanvasElement | null>();
  function lutStrip(name: ColormapName): HTMLCanvasElement | null {
    if (strips.has(name)) return strips.get(name)!;
    const c = doc.createElement("canvas");
    c.width = 1;
    c.height = LUT_SIZE;
    const cx = c.getContext?.("2d") as CanvasRenderingContext2D | null;
    let strip: HTMLCanvasElement | null = null;
    if (cx) {
      const img = cx.createImageData(1, LUT_SIZE);
      const t = lut(name);
      for (let i = 0; i < LUT_SIZE; i++) {
        const k = LUT_SIZE - 1 - i;
        img.data.set([t[k * 3], t[k * 3 + 1], t[k * 3 + 2], 255], i * 4);
      }
      cx.putImageData(img, 0, 0);
      strip = c;
    }
    strips.set(name, strip);
    return strip;
  }

  function drawColorbar() {
    if (!colorbar || !scales.length) return;
    const s = scales[0];
    const { canvas, labels } = colorbar;
    const H = canvas.height / dpr;
    const { ticks } = colorbarTicks(s.vmin, s.vmax, s.clippedTop, Math.max(2, Math.min(9, Math.floor(H / 26))));
    colorbar.ticks = ticks;
    const ctx = canvas.getContext?.("2d") as CanvasRenderingContext2D | null;
    if (ctx) {
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      const strip = lutStrip(colormap());
      ctx.imageSmoothingEnabled = false;
      if (strip) ctx.drawImage(strip, 0, 0, 1, LUT_SIZE, 0, 0, 14, H);
      ctx.strokeStyle = theme.border;
      ctx.lineWidth = 1;
      ctx.strokeRect(0.5, 0.5, 13, H - 1);
      ctx.strokeStyle = theme.fg;
      ctx.beginPath();
      for (const t of ticks) {
        const y = tickY(t.value, s, H);
        ctx.moveTo(14, y);
        ctx.lineTo(18, y);
      }
      ctx.stroke();
    }
    labels.replaceChildren(
      ...ticks.map((t) => {
        const span = h(doc, "span", { class: "hw-colorbar-label" }, t.label);
        span.style.top = `${tickY(t.value, s, H)}px`;
        return span;
      }),
    );
    canvas.setAttribute("aria-label", `colour scale from ${ticks[0]?.label} to ${ticks[ticks.length - 1]?.label}`);
  }

  function tickY(v: number, s: ColorScale, H: number): number {
    const f = (v - s.vmin) / (s.vmax - s.vmin || 1);
    return Math.round((1 - Math.min(1, Math.max(0, f))) * (H - 1)) + 0.5;
  }

  // ---- drawing -------------------------------------------------------------------------------
  const dimCache = new Map<string, Uint8Array>();
  function dimLut(name: string): Uint8Array {
    const key = `${name}|${theme.bgRgb.join(",")}`;
    let d = dimCache.get(key);
    if (!d) {
      d = dimmedLut(lut(name), theme.bgRgb, DIM_ALPHA);
      dimCache.set(key, d);
    }
    return d;
  }

  let hatch: { key: string; pattern: CanvasPattern | null } | null = null;
  function hatchPattern(ctx: CanvasRenderingContext2D): CanvasPattern | string {
    const key = `${theme.bg}|${theme.muted}|${dpr}`;
    if (!hatch || hatch.key !== key) {
      const size = Math.round(6 * dpr);
      const c = doc.createElement("canvas");
      c.width = size;
      c.height = size;
      const cx = c.getContext?.("2d") as CanvasRenderingContext2D | null;
      let pattern: CanvasPattern | null = null;
      if (cx) {
        cx.fillStyle = theme.bg;
        cx.fillRect(0, 0, size, size);
        cx.strokeStyle = theme.muted;
        cx.lineWidth = Math.max(1, dpr * 0.9);
        cx.beginPath();
        // diagonal lines that tile seamlessly
        cx.moveTo(-1, size + 1);
        cx.lineTo(size + 1, -1);
        cx.moveTo(-1, 1);
        cx.lineTo(1, -1);
        cx.moveTo(size - 1, size + 1);
        cx.lineTo(size + 1, size - 1);
        cx.stroke();
        pattern = ctx.createPattern(c, "repeat");
        pattern?.setTransform?.(new DOMMatrix().scale(1 / dpr));
      }
      hatch = { key, pattern };
    }
    return hatch.pattern ?? theme.muted;
  }

  function fillBuffer(p: Panel) {
    const img = p.image;
    if (!img) return;
    const data = img.data;
    const [, nL, nH] = shape;
    const size = nL * nH;
    const layerX = orientation() === "layer_x";
    const cols = layerX ? nL : nH;
    if (p.kind === "task") {
      const t = p.task;
      const idx = lutIdx[t];
      const full = lut(colormap());
      const dim = dimLut(colormap());
      const cut = cutoffs[t];
      const base = t * size;
      for (let i = 0; i < size; i++) {
        const l = (i / nH) | 0;
        const hh = i - l * nH;
        const o = (layerX ? (nH - 1 - hh) * cols + l : i) * 4;
        const k = idx[i];
        if (k < 0) {
          data[o + 3] = 0;
          continue;
        }
        const table = norm[base + i] >= cut ? full : dim;
        data[o] = table[k * 3];
        data[o + 1] = table[k * 3 + 1];
        data[o + 2] = table[k * 3 + 2];
        data[o + 3] = 255;
      }
    } else if (classes) {
      const codes = classes.codes;
      const mem = p.kind === "category" ? classes.membership[p.category] : null;
      const grey = codeRgbIndex(UNCLASSIFIED_CODE) * 3;
      const own = p.kind === "category" ? p.category * 3 : 0;
      for (let i = 0; i < size; i++) {
        const l = (i / nH) | 0;
        const hh = i - l * nH;
        const o = (layerX ? (nH - 1 - hh) * cols + l : i) * 4;
        const c = mem ? (mem[i] ? own : grey) : codeRgbIndex(codes[i]) * 3;
        data[o] = catRgb[c];
        data[o + 1] = catRgb[c + 1];
        data[o + 2] = catRgb[c + 2];
        data[o + 3] = 255;
      }
    }
    p.bctx!.putImageData(img, 0, 0);
  }

  function drawPanel(p: Panel) {
    const ctx = p.ctx;
    if (!ctx || !p.bctx) return;
    const { plot } = p.box;
    const [, nL, nH] = shape;
    const orient = orientation();
    const { rows, cols } = gridShape(orient, nL, nH);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, p.canvas.width, p.canvas.height);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    // NaN cells are transparent in the buffer, so the hatch shows through them
    ctx.fillStyle = hatchPattern(ctx);
    ctx.fillRect(plot.left, plot.top, plot.width, plot.height);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(p.buffer, 0, 0, cols, rows, plot.left, plot.top, plot.width, plot.height);
    ctx.strokeStyle = theme.border;
    ctx.lineWidth = 1;
    ctx.strokeRect(plot.left - 0.5, plot.top - 0.5, plot.width + 1, plot.height + 1);

    // ticks at cell centres, like matplotlib's imshow
    ctx.fillStyle = theme.fg;
    ctx.strokeStyle = theme.fg;
    ctx.font = `11px ${theme.font}`;
    ctx.beginPath();
    const rowTicks = intTicks(rows, Math.max(2, Math.min(6, Math.floor(plot.height / 22))));
    const colTicks = intTicks(cols, Math.max(2, Math.min(6, Math.floor(plot.width / 26))));
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const r of rowTicks) {
      // layer_x: the head axis points up (head 0 in the bottom row)
      const y = Math.round(plot.top + ((rowOfTick(orient, r, rows) + 0.5) * plot.height) / rows) + 0.5;
      ctx.moveTo(plot.left - 4, y);
      ctx.lineTo(plot.left - 1, y);
      ctx.fillText(String(r), plot.left - 6, y);
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    const bottom = plot.top + plot.height;
    for (const c of colTicks) {
      const x = Math.round(plot.left + ((c + 0.5) * plot.width) / cols) + 0.5;
      ctx.moveTo(x, bottom + 1);
      ctx.lineTo(x, bottom + 4);
      ctx.fillText(String(c), x, bottom + 5);
    }
    ctx.lineWidth = 1;
    ctx.stroke();
    const { row: rowName, col: colName } = axisNames(orient);
    ctx.font = `12px ${theme.font}`;
    if (p.box.showRowLabel) {
      ctx.save();
      ctx.translate(9, plot.top + plot.height / 2);
      ctx.rotate(-Math.PI / 2);
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.fillText(rowName, 0, 0);
      ctx.restore();
    }
    if (p.box.showColLabel) {
      ctx.textAlign = "center";
      ctx.textBaseline = "top";
      ctx.fillText(colName, plot.left + plot.width / 2, bottom + 20);
    }
    if (p.kind === "task" && colorRange() === "per_task") drawMiniBar(p);

    // hovered and selected heads
    if (hover && hover.panel === p) {
      const r = cellRect(plot, rows, cols, hover.row, hover.col);
      ctx.strokeStyle = theme.fg;
      ctx.globalAlpha = 0.7;
      ctx.strokeRect(r.left + 0.5, r.top + 0.5, Math.max(1, r.width - 1), Math.max(1, r.height - 1));
      ctx.globalAlpha = 1;
    }
    const sel = selection();
    if (sel) {
      const { row, col } = headToCell(orient, sel.layer, sel.head, shape[2]);
      const r = cellRect(plot, rows, cols, row, col);
      const mine = p.kind !== "task" || get("selected_task") === "" || get("selected_task") === p.name;
      ctx.lineWidth = mine ? 2 : 1;
      ctx.strokeStyle = theme.bg;
      ctx.strokeRect(r.left - 2, r.top - 2, r.width + 4, r.height + 4);
      ctx.strokeStyle = mine ? theme.fg : theme.muted;
      ctx.strokeRect(r.left - 1, r.top - 1, r.width + 2, r.height + 2);
      ctx.lineWidth = 1;
    }
  }

  function drawMiniBar(p: Panel) {
    const ctx = p.ctx!;
    const s = scales[p.task];
    const { plot } = p.box;
    const x = plot.left + plot.width + 8;
    const strip = lutStrip(colormap());
    if (strip) ctx.drawImage(strip, 0, 0, 1, LUT_SIZE, x, plot.top, 7, plot.height);
    ctx.strokeStyle = theme.border;
    ctx.strokeRect(x - 0.5, plot.top - 0.5, 8, plot.height + 1);
    const { ticks } = colorbarTicks(s.vmin, s.vmax, s.clippedTop, 2);
    ctx.fillStyle = theme.fg;
    ctx.font = `10px ${theme.font}`;
    ctx.textAlign = "left";
    ctx.textBaseline = "top";
    ctx.fillText(ticks[ticks.length - 1].label, x + 10, plot.top);
    ctx.textBaseline = "bottom";
    ctx.fillText(ticks[0].label, x + 10, plot.top + plot.height);
  }

  function drawAll() {
    for (const p of panels) {
      fillBuffer(p);
      drawPanel(p);
    }
    drawColorbar();
  }

  // ---- scheduling ----------------------------------------------------------------------------
  function schedule(flags: number) {
    dirty |= flags;
    if (frame !== null || destroyed) return;
    const raf = win?.requestAnimationFrame?.bind(win);
    frame = raf ? raf(() => flush()) : (setTimeout(() => flush(), 16) as unknown as number);
  }

  function flush() {
    frame = null;
    if (destroyed) return;
    let f = dirty;
    dirty = 0;
    const t0 = performance.now();
    if (f & DATA) {
      refreshData();
      f |= SCALE | THRESH | STRUCT | CONTROLS;
    }
    if (f & SCALE) {
      refreshScale();
      f |= DRAW | CONTROLS;
    }
    if (f & THRESH) {
      refreshThreshold();
      f |= DRAW;
    }
    if (f & STRUCT) {
      rebuild();
      f |= DRAW;
    }
    if (f & CONTROLS) syncControls();
    if (f & DRAW) {
      drawAll();
      root.dataset.lastRedrawMs = (performance.now() - t0).toFixed(2);
      root.dataset.ready = "true";
    }
  }

  // ---- controls ------------------------------------------------------------------------------
  /** True while the user has typed into the value field and not yet committed it. */
  let editing = false;

  function setField(text: string, unit: string) {
    valueUnit.textContent = unit;
    // a model change (e.g. streamed progress) must not overwrite what is being typed
    if (editing && doc.activeElement === valueField) return;
    editing = false;
    if (valueField.value !== text) valueField.value = text;
  }

  /** Apply the typed value; invalid text (or a percentage outside (0, 100]) reverts. */
  function commitField() {
    if (!editing) return;
    editing = false;
    const v = parseTyped(valueField.value);
    const percent = mode() === "top_percent";
    if (v === null || (percent && !(v > 0 && v <= 100))) {
      syncControls();
      return;
    }
    setTrait(percent ? "top_percent" : "threshold", v);
    syncControls();
  }

  function syncControls() {
    titleEl.textContent = String(get("title") ?? "");
    titleEl.hidden = !titleEl.textContent;
    modeSel.value = mode();
    cmapSel.value = colormap();
    normSel.value = normalization();
    rangeSel.value = colorRange();
    orientSel.value = orientation();
    if (mode() === "top_percent") {
      slider.min = "0.1";
      slider.max = "100";
      slider.step = "0.1";
      slider.value = String(topPercent());
      setField(formatExact(topPercent()), "%");
      slider.setAttribute("aria-valuetext", `top ${formatPercent(topPercent())} percent of heads per task`);
    } else {
      // positions, not thresholds: see sliderRange / thresholdToPosition
      slider.min = "0";
      slider.max = String(SLIDER_STEPS);
      slider.step = "1";
      slider.value = String(thresholdToPosition(threshold(), range));
      slider.dataset.lo = String(range.lo);
      slider.dataset.hi = String(range.hi);
      setField(formatExact(threshold()), "");
      slider.setAttribute("aria-valuetext", `importance at least ${formatSig(threshold(), sliderDecimals)}`);
    }
    // {text, fraction, running, error?} (headwidget/widget.py): the text shows whenever there is
    // one ("waiting to score …" before, "error after …" / "interrupted after …" when scoring
    // stopped); the bar only while running
    const raw = get("progress");
    const prog = (raw && typeof raw === "object" ? raw : {}) as { text?: unknown; fraction?: unknown; running?: unknown; error?: unknown };
    const running = prog.running === true;
    const text = prog.text == null ? "" : String(prog.text);
    progressEl.hidden = !text && !running;
    progressEl.classList.toggle("hw-progress-error", !!prog.error);
    progressText.textContent = text;
    progressBar.hidden = !running;
    progressFill.style.width = `${Math.round(100 * Math.min(1, Math.max(0, num(prog.fraction, 0))))}%`;
  }

  const saver = throttle(() => model.save_changes(), 120);

  function setTrait(name: string, value: unknown, save: "now" | "throttled" = "now") {
    model.set(name, value);
    if (save === "now") {
      saver.cancel();
      model.save_changes();
    } else saver.call();
  }

  const on = <K extends keyof HTMLElementEventMap>(
    target: EventTarget,
    type: K | string,
    fn: (e: any) => void,
    opts?: AddEventListenerOptions,
  ) => {
    target.addEventListener(type, fn, opts);
    cleanups.push(() => target.removeEventListener(type, fn, opts));
  };

  on(slider, "input", () => {
    const v = Number(slider.value);
    if (!Number.isFinite(v)) return;
    if (mode() === "top_percent") setTrait("top_percent", v, "throttled");
    else setTrait("threshold", sliderThreshold(v, range), "throttled");
  });
  on(valueField, "input", () => {
    editing = true;
  });
  on(valueField, "change", () => commitField());
  on(valueField, "blur", () => commitField());
  on(valueField, "keydown", (e: KeyboardEvent) => {
    if (e.key === "Enter") {
      e.preventDefault();
      commitField();
    } else if (e.key === "Escape") {
      e.preventDefault();
      editing = false;
      syncControls();
    }
  });
  on(slider, "change", () => saver.flush());
  on(modeSel, "change", () => setTrait("threshold_mode", modeSel.value));
  on(cmapSel, "change", () => setTrait("colormap", cmapSel.value));
  on(normSel, "change", () => setTrait("normalization", normSel.value));
  on(rangeSel, "change", () => setTrait("color_range", rangeSel.value));
  on(orientSel, "change", () => setTrait("orientation", orientSel.value));
  on(exportBtn, "click", () => exportPng());
  on(tablist, "click", (e: MouseEvent) => {
    const b = (e.target as HTMLElement).closest?.("button[role=tab]") as HTMLElement | null;
    if (b?.dataset.tab) selectTab(b.dataset.tab);
  });
  on(tablist, "keydown", (e: KeyboardEvent) => {
    const buttons = Array.from(tablist.querySelectorAll<HTMLElement>("button[role=tab]"));
    const i = buttons.indexOf(doc.activeElement as HTMLElement);
    if (i < 0) return;
    let j = -1;
    if (e.key === "ArrowRight") j = (i + 1) % buttons.length;
    else if (e.key === "ArrowLeft") j = (i - 1 + buttons.length) % buttons.length;
    else if (e.key === "Home") j = 0;
    else if (e.key === "End") j = buttons.length - 1;
    if (j < 0) return;
    e.preventDefault();
    buttons[j].focus();
    selectTab(buttons[j].dataset.tab!);
  });

  function selectTab(tab: string) {
    if (tab === activeTab && tab === get("tab")) return;
    setTrait("tab", tab);
    // the change event redraws; call directly as well in case the model does not echo
    if (resolveTab() !== activeTab) schedule(STRUCT);
  }

  // ---- hover, selection, keyboard --------------------------------------------------------------
  function panelCell(p: Panel, e: MouseEvent) {
    const r = p.canvas.getBoundingClientRect();
    const [, nL, nH] = shape;
    const { rows, cols } = gridShape(orientation(), nL, nH);
    const sx = r.width ? p.box.canvasWidth / r.width : 1;
    const sy = r.height ? p.box.canvasHeight / r.height : 1;
    return cellAt(p.box.plot, rows, cols, (e.clientX - r.left) * sx, (e.clientY - r.top) * sy);
  }

  function tooltipLines(p: Panel, layer: number, head: number): string[] {
    const [, , nH] = shape;
    const size = shape[1] * nH;
    const i = layer * nH + head;
    const cats = classes ? headCategories(classes, i) : [];
    const catLine = `categories: ${cats.length ? cats.join(", ") : "none"}`;
    const where = `Layer ${layer} · Head ${head}`;
    if (p.kind === "task") {
      const v = norm[p.task * size + i];
      const nValid = stats!.sorted[p.task].length;
      return [
        p.name,
        where,
        `importance ${Number.isNaN(v) ? "n/a" : formatValue(v)}`,
        Number.isNaN(v) ? `rank n/a of ${nValid}` : `rank ${rankOf(stats!.sorted[p.task], v)} of ${nValid}`,
        catLine,
      ];
    }
    // category panels: the head's most important task among the panel's tasks
    let best = -1;
    let bestV = -Infinity;
    tasks.forEach((task, t) => {
      if (task.category == null) return;
      if (p.kind === "category" && task.category !== catNames()[p.category]) return;
      const v = norm[t * size + i];
      if (v > bestV) {
        bestV = v;
        best = t;
      }
    });
    if (best < 0) return [p.name, where, "importance n/a", "rank n/a", catLine];
    const label = classes ? codeLabel(classes.codes[i], classes.names) : UNCLASSIFIED;
    return [
      p.name,
      where,
      `importance ${formatValue(bestV)} (${tasks[best].name})`,
      `rank ${rankOf(stats!.sorted[best], bestV)} of ${stats!.sorted[best].length}`,
      p.kind === "allcats" ? `${catLine} (${label})` : catLine,
    ];
  }

  function showTooltip(p: Panel, layer: number, head: number, x: number, y: number) {
    const lines = tooltipLines(p, layer, head);
    tooltip.replaceChildren(...lines.map((line, k) => h(doc, "div", { class: k === 0 ? "hw-tooltip-title" : "" }, line)));
    tooltip.hidden = false;
    tooltip.style.display = "";
    const rr = root.getBoundingClientRect();
    let left = x - rr.left + 14;
    const top = y - rr.top + 14;
    const w = tooltip.offsetWidth || 180;
    if (left + w > root.clientWidth && root.clientWidth > 0) left = Math.max(0, x - rr.left - w - 14);
    tooltip.style.left = `${left}px`;
    tooltip.style.top = `${top}px`;
  }

  function hideTooltip() {
    tooltip.hidden = true;
    tooltip.style.display = "none";
  }

  function announce(p: Panel, layer: number, head: number) {
    const size = shape[1] * shape[2];
    const i = layer * shape[2] + head;
    if (p.kind === "task") {
      const v = norm[p.task * size + i];
      live.textContent = `Layer ${layer}, head ${head}, importance ${Number.isNaN(v) ? "n/a" : formatValue(v)}`;
    } else {
      const cats = classes ? headCategories(classes, i) : [];
      live.textContent = `Layer ${layer}, head ${head}, categories: ${cats.length ? cats.join(", ") : "none"}`;
    }
  }

  function select(p: Panel, layer: number, head: number) {
    model.set("selected_head", [layer, head]);
    model.set("selected_task", p.kind === "task" ? p.name : "");
    model.save_changes();
    announce(p, layer, head);
    schedule(DRAW);
  }

  function attachPanelEvents(p: Panel) {
    const c = p.canvas;
    c.addEventListener("pointermove", (e: PointerEvent) => {
      const cell = panelCell(p, e);
      if (!cell) {
        if (hover?.panel === p) leave();
        return;
      }
      const prev = hover;
      hover = { panel: p, ...cell };
      const { layer, head } = cellToHead(orientation(), cell.row, cell.col, shape[2]);
      showTooltip(p, layer, head, e.clientX, e.clientY);
      if (!prev || prev.panel !== p || prev.row !== cell.row || prev.col !== cell.col) {
        if (prev && prev.panel !== p) drawPanel(prev.panel);
        drawPanel(p);
      }
    });
    const leave = () => {
      const prev = hover;
      hover = null;
      hideTooltip();
      if (prev) drawPanel(prev.panel);
    };
    c.addEventListener("pointerleave", leave);
    c.addEventListener("click", (e: MouseEvent) => {
      const cell = panelCell(p, e);
      if (!cell) return;
      const { layer, head } = cellToHead(orientation(), cell.row, cell.col, shape[2]);
      select(p, layer, head);
    });
    c.addEventListener("keydown", (e: KeyboardEvent) => {
      const orient = orientation();
      const { rows, cols } = gridShape(orient, shape[1], shape[2]);
      if (e.key === "Escape") {
        model.set("selected_head", null);
        model.set("selected_task", "");
        model.save_changes();
        live.textContent = "Selection cleared";
        hideTooltip();
        schedule(DRAW);
        e.preventDefault();
        return;
      }
      const mv = ARROW_MOVES.get(e.key);
      if (!mv) return;
      e.preventDefault();
      const sel = selection();
      let row = 0;
      let col = 0;
      if (sel) {
        ({ row, col } = headToCell(orient, sel.layer, sel.head, shape[2]));
        row = Math.min(rows - 1, Math.max(0, row + mv[0]));
        col = Math.min(cols - 1, Math.max(0, col + mv[1]));
      }
      const { layer, head } = cellToHead(orient, row, col, shape[2]);
      select(p, layer, head);
      const r = p.canvas.getBoundingClientRect();
      const cr = cellRect(p.box.plot, rows, cols, row, col);
      showTooltip(p, layer, head, r.left + cr.left + cr.width, r.top + cr.top + cr.height);
    });
    c.addEventListener("blur", () => {
      if (!hover) hideTooltip();
    });
  }

  // ---- export --------------------------------------------------------------------------------
  function exportCanvas(): HTMLCanvasElement | null {
    if (!layout) return null;
    const pad = 12;
    const titleText = String(get("title") ?? "");
    const headH = titleText ? 26 : 0;
    const out = doc.createElement("canvas");
    const W = layout.width + 2 * pad;
    const H = gridHeight() + 2 * pad + headH;
    out.width = Math.round(W * dpr);
    out.height = Math.round(H * dpr);
    const ctx = out.getContext?.("2d") as CanvasRenderingContext2D | null;
    if (!ctx) return null;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = theme.bg;
    ctx.fillRect(0, 0, W, H);
    ctx.fillStyle = theme.fg;
    ctx.textBaseline = "top";
    if (titleText) {
      ctx.font = `600 15px ${theme.font}`;
      ctx.textAlign = "left";
      ctx.fillText(titleText, pad, pad);
    }
    const ox = pad;
    const oy = pad + headH;
    const titleW = measurer(`600 13px ${theme.font}`, 7.6);
    const countW = measurer(`11px ${theme.font}`, 6.2);
    for (const p of panels) {
      const { box } = p;
      const cx = ox + box.x + box.plot.left + box.plot.width / 2;
      const titleLines = wrapText(p.name, box.plot.width, titleW);
      const countLines = p.countEl ? wrapText(p.countEl.textContent ?? "", box.plot.width, countW) : [];
      // bottom-aligned like the DOM title block
      let y = oy + box.y + box.titleHeight - 2 - TITLE_LINE * titleLines.length - COUNT_LINE * countLines.length;
      ctx.textAlign = "center";
      ctx.textBaseline = "top";
      ctx.fillStyle = theme.fg;
      ctx.font = `600 13px ${theme.font}`;
      for (const line of titleLines) {
        ctx.fillText(line, cx, y + 2);
        y += TITLE_LINE;
      }
      ctx.fillStyle = theme.muted;
      ctx.font = `11px ${theme.font}`;
      for (const line of countLines) {
        ctx.fillText(line, cx, y + 2);
        y += COUNT_LINE;
      }
      ctx.drawImage(p.canvas, ox + box.x, oy + box.y + box.titleHeight, box.canvasWidth, box.canvasHeight);
    }
    if (layout.side && colorbar) {
      const s = layout.side;
      const Hs = s.height;
      ctx.drawImage(colorbar.canvas, ox + s.left, oy + s.top, 20, Hs);
      ctx.fillStyle = theme.fg;
      ctx.font = `11px ${theme.font}`;
      ctx.textAlign = "left";
      ctx.textBaseline = "middle";
      const sc = scales[0];
      for (const t of colorbar.ticks) ctx.fillText(t.label, ox + s.left + 22, oy + s.top + tickY(t.value, sc, Hs));
      ctx.save();
      ctx.translate(ox + s.left + s.width - 8, oy + s.top + Hs / 2);
      ctx.rotate(-Math.PI / 2);
      ctx.textAlign = "center";
      ctx.font = `12px ${theme.font}`;
      ctx.fillText(colorbar.title.textContent ?? "", 0, 0);
      ctx.restore();
    }
    if (layout.gutter) {
      const g = layout.gutter;
      const colors = categoryColors(catNames());
      ctx.font = `12px ${theme.font}`;
      ctx.textAlign = "left";
      ctx.textBaseline = "middle";
      legendLabels(catNames()).forEach((label, k) => {
        const y = oy + g.top + 2 + k * LEGEND_ROW;
        ctx.fillStyle = colors.get(label) ?? theme.muted;
        ctx.fillRect(ox + g.left, y, 12, 12);
        ctx.fillStyle = theme.fg;
        ctx.fillText(label, ox + g.left + 18, y + 6);
      });
    }
    return out;
  }

  function exportPng() {
    const out = exportCanvas();
    if (!out) return;
    const name = `headwidget-${fileSlug(activeTab)}.png`;
    const save = (url: string, revoke: boolean) => {
      const a = h(doc, "a", { download: name, href: url });
      a.style.display = "none";
      root.append(a);
      a.click();
      a.remove();
      if (revoke) setTimeout(() => URL.revokeObjectURL(url), 1000);
    };
    if (out.toBlob) out.toBlob((blob) => (blob ? save(URL.createObjectURL(blob), true) : save(out.toDataURL("image/png"), false)), "image/png");
    else save(out.toDataURL("image/png"), false);
  }

  // ---- model and environment events ----------------------------------------------------------
  const traitFlags: Record<string, number> = {
    values: DATA,
    shape: DATA,
    tasks: DATA,
    normalization: DATA,
    colormap: SCALE,
    color_range: SCALE | STRUCT,
    vmax: SCALE,
    vmin: SCALE,
    threshold_mode: THRESH | CONTROLS,
    threshold: THRESH | CONTROLS,
    top_percent: THRESH | CONTROLS,
    orientation: STRUCT | CONTROLS,
    tab: STRUCT,
    grid_columns: STRUCT,
    selected_head: DRAW,
    selected_task: DRAW,
    progress: CONTROLS,
    title: CONTROLS,
  };
  for (const [trait, flags] of Object.entries(traitFlags)) {
    const cb = () => schedule(flags);
    model.on(`change:${trait}`, cb);
    cleanups.push(() => model.off(`change:${trait}`, cb));
  }

  if (win && "MutationObserver" in win) {
    const mo = new win.MutationObserver(() => {
      refreshTheme();
      schedule(DRAW | STRUCT);
    });
    if (doc.body) mo.observe(doc.body, { attributes: true, attributeFilter: ["class", "data-jp-theme-light", "data-jp-theme-name"] });
    mo.observe(doc.documentElement, { attributes: true, attributeFilter: ["class", "theme"] });
    cleanups.push(() => mo.disconnect());
  }
  const mq = win?.matchMedia?.("(prefers-color-scheme: dark)");
  if (mq?.addEventListener) {
    const cb = () => {
      refreshTheme();
      schedule(DRAW);
    };
    mq.addEventListener("change", cb);
    cleanups.push(() => mq.removeEventListener("change", cb));
  }
  if (win && "ResizeObserver" in win) {
    const ro = new (win as any).ResizeObserver(() => {
      const w = root.clientWidth;
      const d = win.devicePixelRatio || 1;
      if (Math.abs(w - lastWidth) > 1 || d !== dpr) {
        lastWidth = w;
        schedule(STRUCT);
      }
    });
    ro.observe(root);
    cleanups.push(() => ro.disconnect());
  }

  // first draw, synchronously so that the widget is complete when render() returns
  refreshTheme();
  lastWidth = root.clientWidth;
  dirty = DATA | CONTROLS;
  flush();

  return () => {
    destroyed = true;
    saver.cancel();
    if (frame !== null) {
      win?.cancelAnimationFrame?.(frame);
      clearTimeout(frame);
    }
    for (const fn of cleanups.reverse()) fn();
  };
}
