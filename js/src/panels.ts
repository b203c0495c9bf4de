// The panels of the active tab: which panels, their layout, and their DOM (title block + canvas).
import type { Panel, PanelSpec, View } from "./context";
import { h, measurer } from "./dom";
import { autoColumns, gridLayout, gridShape, wrapLines, wrapText, type GridLayout } from "./layout";
import { legendLabels } from "./categories";
import { formatFixed } from "./scale";
import { failing } from "./state";
import { groupReliabilityNote, reliabilityNote, reliabilityTip } from "./uncertainty";
import { percentText } from "./units";
import { roleCountText } from "./roles";

export const ALL_CATEGORIES = "All Categories";
const SIDE_WIDTH = 92;
const LEGEND_WIDTH = 128;
const PER_TASK_BAR = 46;
/** Line heights of a panel's title and count (CSS .hw-panel-title / .hw-count). */
export const TITLE_LINE = 17;
export const COUNT_LINE = 15;
/** Height of one legend row (CSS .hw-legend-item height + gap), also used by the export. */
export const LEGEND_ROW = 20;
export const TITLE_FONT = "600 13px";
export const COUNT_FONT = "11px";
/** Narrowest plot (CSS px) the automatic column count allows, and fewest pixels per head. */
const MIN_PLOT_WIDTH = 110;
const MIN_HEAD_PX = 2;

/** The accuracy line under a task's title ("" when the accuracy was not measured). */
export function accuracyText(v: View, task: number): string {
  const t = v.data.tasks[task];
  if (t.accuracy == null) return "";
  return failing([t], v.traits.minAccuracy)[0] ? `fails · acc ${percentText(t.accuracy)}` : `acc ${percentText(t.accuracy)}`;
}

/** Tasks a category panel stands for: every categorised task ("All Categories") or its own. */
export function categoryPanelTasks(v: View, spec: PanelSpec): number[] {
  const names = v.thresh.classes?.names ?? [];
  const out: number[] = [];
  v.data.tasks.forEach((t, i) => {
    if (t.category != null && (spec.kind === "allcats" || t.category === names[spec.category])) out.push(i);
  });
  return out;
}

/** The reliability line of a panel's title ("r = 0.82", "noisy: add examples · r = 0.52"; a
 * category panel's over its tasks), and whether it is marked; "" when unknown. */
export function reliabilityText(v: View, spec: PanelSpec): { text: string; noisy: boolean } {
  const minR = v.traits.minReliability;
  if (spec.kind === "task") return reliabilityNote(v.data.tasks[spec.task].reliability, minR);
  const tasks = categoryPanelTasks(v, spec);
  const counted = v.thresh.counted;
  return groupReliabilityNote(
    tasks.map((t) => v.data.tasks[t].reliability),
    tasks.map((t) => counted[t] !== false),
    minR,
    v.traits.categoriesFrom,
  );
}

/** A note's lines in `width`: its " · " parts kept whole where they fit ("r = 0.41–0.97" is not
 * cut after "r ="), each line but the last ending in "·"; a part too wide wraps at spaces. */
export function wrapNote(text: string, width: number, measure: (s: string) => number): string[] {
  const lines: string[] = [];
  for (const part of text.split(" · ")) {
    const last = lines.length - 1;
    if (last >= 0 && measure(`${lines[last]} · ${part}`) <= width) {
      lines[last] = `${lines[last]} · ${part}`;
      continue;
    }
    if (last >= 0) lines[last] += " ·";
    lines.push(...wrapText(part, width, measure));
  }
  return lines;
}

/** The panels a tab shows. */
export function panelSpecs(v: View): PanelSpec[] {
  const { tasks } = v.data;
  if (v.activeTab === "categories") {
    const names = v.thresh.classes?.names ?? [];
    return [
      { kind: "allcats", name: ALL_CATEGORIES, task: -1, category: -1 },
      ...names.map((name, k) => ({ kind: "category" as const, name, task: -1, category: k })),
    ];
  }
  if (v.activeTab === "roles") return v.roles.names.map((name, r) => ({ kind: "role" as const, name, task: -1, category: -1, role: r }));
  if (v.activeTab.startsWith("task:")) {
    const t = tasks.findIndex((x) => `task:${x.name}` === v.activeTab);
    return [{ kind: "task", name: tasks[t].name, task: t, category: -1 }];
  }
  return tasks.map((t, i) => ({ kind: "task" as const, name: t.name, task: i, category: -1 }));
}

/** The grid's height, including a category legend taller than the plots beside it. */
export function gridHeight(v: View): number {
  const layout = v.layout;
  if (!layout) return 0;
  const legend = layout.gutter ? layout.gutter.top + legendLabels(v.thresh.classes?.names ?? []).length * LEGEND_ROW : 0;
  return Math.ceil(Math.max(layout.height, legend));
}

/** Describe the single task of a task tab (category, baseline, description) above its panel. */
function taskInfo(v: View, task: number) {
  const t = v.data.tasks[task];
  const bits: string[] = [];
  if (t.category) bits.push(`category: ${t.category}`);
  if (t.baseline != null) bits.push(`baseline ${formatFixed(t.baseline, 4)}`);
  if (bits.length) v.info.append(h(v.doc, "div", { class: "hw-task-meta" }, bits.join(" · ")));
  if (t.description) v.info.append(h(v.doc, "div", { class: "hw-task-description" }, t.description));
}

/**
 * Lay out the panels of `specs` in `width` px and build their DOM into the grid; `countText`
 * gives a task panel's count line. Sets v.layout, v.panels and v.dpr.
 */
export function buildPanels(v: View, specs: PanelSpec[], width: number, countText: (task: number) => string): void {
  const { doc, theme } = v;
  const [, nL, nH] = v.data.shape;
  const { rows, cols } = gridShape(v.traits.orientation, nL, nH);
  const tickDigits = String(Math.max(nL, nH) - 1).length;
  // the Roles tab has one colour scale, role scores from 0 to 1
  const perTask = v.traits.colorRange === "per_task" && v.activeTab !== "roles";
  const tab = v.activeTab;
  let sideWidth = perTask ? 0 : SIDE_WIDTH;
  let gutterWidth = 0;
  let columns: number;
  let maxPlotHeight = 340;
  let maxCell = 14;
  let minPlot = 150;
  if (tab === "categories") {
    sideWidth = 0;
    gutterWidth = LEGEND_WIDTH;
    columns = autoColumns(specs.length, v.traits.gridColumns, Math.min(5, specs.length));
  } else if (tab.startsWith("task:")) {
    columns = 1;
    maxPlotHeight = 620;
    maxCell = 22;
    minPlot = 320;
    taskInfo(v, specs[0].task);
  } else {
    columns = autoColumns(specs.length, v.traits.gridColumns);
  }
  v.info.hidden = v.info.childElementCount === 0;
  const layoutFor = (titleHeight: number, nColumns = columns): GridLayout =>
    gridLayout({
      width,
      nPanels: specs.length,
      columns: nColumns,
      rows,
      cols,
      sideWidth,
      gutterWidth,
      panelRight: perTask && tab !== "categories" ? PER_TASK_BAR : 0,
      maxCell,
      minPlot,
      maxPlotHeight,
      tickDigits,
      titleHeight,
    });
  // columns from the width: fewer when panels would be narrower than MIN_PLOT_WIDTH (or than
  // what one column gets, for tiny models) or a head narrower than MIN_HEAD_PX
  if (v.traits.gridColumns <= 0 && columns > 1) {
    const one = layoutFor(0, 1);
    const fits = (c: number) => {
      const l = layoutFor(0, c);
      return l.panels[0].plot.width >= Math.min(MIN_PLOT_WIDTH, one.panels[0].plot.width) && l.cell >= Math.min(MIN_HEAD_PX, one.cell);
    };
    while (columns > 1 && !fits(columns)) columns--;
  }
  let layout = layoutFor(TITLE_LINE + COUNT_LINE + 4);
  // names and counts wrap (at spaces) rather than being cut off: make room for the longest
  const plotWidth = layout.panels[0]?.plot.width ?? 100;
  const titleW = measurer(doc, `${TITLE_FONT} ${theme.font}`, 7.6);
  const countW = measurer(doc, `${COUNT_FONT} ${theme.font}`, 6.2);
  const digits = "8".repeat(String(nL * nH).length);
  const countLines = Math.max(
    wrapLines(`${digits} heads in top 88.88%`, plotWidth, countW),
    wrapLines(`${digits} heads ≥ 0.000088`, plotWidth, countW),
  );
  const accLines = (sp: PanelSpec) => {
    const text = sp.kind === "task" ? accuracyText(v, sp.task) : "";
    return text ? wrapLines(text, plotWidth, countW) : 0;
  };
  const relLines = (sp: PanelSpec) => {
    const { text } = reliabilityText(v, sp);
    return text ? wrapNote(text, plotWidth, countW).length : 0;
  };
  const needed =
    Math.max(
      ...specs.map(
        (sp) =>
          TITLE_LINE * wrapLines(sp.name, plotWidth, titleW) +
          COUNT_LINE * ((sp.kind === "task" ? countLines + accLines(sp) : sp.kind === "role" ? 1 : 0) + relLines(sp)),
      ),
    ) + 4;
  if (needed > layout.panels[0].titleHeight) layout = layoutFor(needed);
  v.layout = layout;
  v.grid.style.height = `${gridHeight(v)}px`;
  v.grid.style.width = `${layout.width}px`;
  v.dpr = Math.max(1, Math.min(4, v.win?.devicePixelRatio || 1));
  v.panels = specs.map((spec, i) => buildPanel(v, spec, layout.panels[i], rows, cols, countText, titleW, countW));
}

function buildPanel(
  v: View,
  spec: PanelSpec,
  box: GridLayout["panels"][number],
  rows: number,
  cols: number,
  countText: (task: number) => string,
  titleW: (s: string) => number,
  countW: (s: string) => number,
): Panel {
  const { doc, dpr } = v;
  const [, nL, nH] = v.data.shape;
  const wrap = h(doc, "div", { class: "hw-panel" });
  wrap.style.left = `${box.x}px`;
  wrap.style.top = `${box.y}px`;
  wrap.style.width = `${box.canvasWidth}px`;
  const head = h(doc, "div", { class: "hw-panel-head" });
  head.style.height = `${box.titleHeight}px`;
  head.style.paddingLeft = `${box.plot.left}px`;
  head.style.paddingRight = `${box.canvasWidth - box.plot.left - box.plot.width}px`;
  // wrapped at spaces here, as the export draws it; a cut name is whole in the tooltip
  const title = h(doc, "div", { class: "hw-panel-title" }, wrapText(spec.name, box.plot.width, titleW).join("\n"));
  const task = spec.kind === "task" ? v.data.tasks[spec.task] : null;
  const tip = [task?.description ? `${spec.name}: ${task.description}` : spec.name];
  head.append(title);
  let countEl: HTMLElement | null = null;
  if (spec.kind === "task") {
    countEl = h(doc, "div", { class: "hw-count" }, countText(spec.task));
    countEl.dataset.task = spec.name;
    head.append(countEl);
    const acc = accuracyText(v, spec.task);
    if (acc) {
      const fails = acc.startsWith("fails");
      const accEl = h(doc, "div", { class: fails ? "hw-accuracy hw-fails-badge" : "hw-accuracy" }, acc);
      head.append(accEl);
      wrap.classList.toggle("hw-fails", fails);
      tip.push(fails ? `model fails this task: clean accuracy ${percentText(task!.accuracy!)} < ${percentText(v.traits.minAccuracy)}` : `clean accuracy ${percentText(task!.accuracy!)}`);
    }
  }
  if (spec.kind === "role") {
    const count = h(doc, "div", { class: "hw-count hw-role-panel-count" }, roleCountText(v.roles, spec.role!));
    count.dataset.role = spec.name;
    head.append(count);
    if (v.roles.descriptions[spec.role!]) tip.push(v.roles.descriptions[spec.role!]);
  }
  const rel = reliabilityText(v, spec);
  if (rel.text) {
    // wrapped at spaces (the number is never cut off), as the export draws it
    const relEl = h(doc, "div", { class: rel.noisy ? "hw-reliability hw-noisy-badge" : "hw-reliability" }, wrapNote(rel.text, box.plot.width, countW).join("\n"));
    head.append(relEl);
    wrap.classList.toggle("hw-noisy", rel.noisy);
    if (task) tip.push(reliabilityTip(task, v.traits.provenance.examples[task.name], v.traits.minReliability));
    else tip.push(`split-half reliability of its tasks' maps: ${rel.text}`);
  }
  title.title = tip.join("\n");
  if (spec.kind === "task" && !v.activeTab.startsWith("task:") && v.data.tasks.length > 1) {
    // enlarge: the task's own tab (as does a double click on the map)
    const zoom = h(doc, "button", { class: "hw-zoom", type: "button", "aria-label": `Enlarge ${spec.name}`, title: `Enlarge ${spec.name}` }, "⤢");
    zoom.style.width = `${Math.max(14, Math.min(20, box.plot.left - 2))}px`;
    zoom.addEventListener("click", () => v.zoom(spec));
    wrap.append(zoom);
  }
  const canvas = h(doc, "canvas", { class: "hw-canvas", tabindex: "0", role: "img" });
  canvas.dataset.panel = spec.name;
  canvas.dataset.rows = String(rows);
  canvas.dataset.cols = String(cols);
  canvas.dataset.plotLeft = String(box.plot.left);
  canvas.dataset.plotTop = String(box.plot.top);
  canvas.dataset.plotWidth = String(box.plot.width);
  canvas.dataset.plotHeight = String(box.plot.height);
  canvas.setAttribute("aria-label", `${spec.name}: ${nL} layers by ${nH} heads. Arrow keys move the selected head, Escape clears it.`);
  canvas.width = Math.round(box.canvasWidth * dpr);
  canvas.height = Math.round(box.canvasHeight * dpr);
  canvas.style.width = `${box.canvasWidth}px`;
  canvas.style.height = `${box.canvasHeight}px`;
  wrap.append(head, canvas);
  v.grid.append(wrap);
  const buffer = doc.createElement("canvas");
  buffer.width = cols;
  buffer.height = rows;
  const bctx = (buffer.getContext?.("2d") as CanvasRenderingContext2D | null) ?? null;
  return {
    ...spec,
    box,
    wrap,
    canvas,
    ctx: (canvas.getContext?.("2d") as CanvasRenderingContext2D | null) ?? null,
    buffer,
    bctx,
    image: bctx ? bctx.createImageData(cols, rows) : null,
    countEl,
    window: null,
    approx: null,
    insig: null,
  };
}
