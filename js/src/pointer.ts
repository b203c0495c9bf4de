// Pointer, tooltip and keyboard: hovering shows a head, clicking or arrow keys select one.
import type { Panel, View } from "./context";
import { h } from "./dom";
import { drawPanel } from "./draw";
import { boxWindow, cellAt, cellRect, cellSpanRect, cellToHead, clampedCell, gridShape, headToCell, windowShowing, zoomWindow } from "./layout";
import { edgeAt } from "./path-draw";
import { edgeLines, type PathEdge } from "./paths";
import { announcement, tooltipLines } from "./tooltip";
import { DRAW, HOVER } from "./traits";

/** Row and column step of each arrow key. */
const ARROW_MOVES: ReadonlyMap<string, [number, number]> = new Map<string, [number, number]>([
  ["ArrowUp", [-1, 0]],
  ["ArrowDown", [1, 0]],
  ["ArrowLeft", [0, -1]],
  ["ArrowRight", [0, 1]],
]);

/** The cell (of the whole grid) under the pointer, with the pointer's place in the plot. */
function panelCell(v: View, p: Panel, e: MouseEvent) {
  const r = p.canvas.getBoundingClientRect();
  const [, nL, nH] = v.data.shape;
  const full = gridShape(v.traits.orientation, nL, nH);
  const w = p.window ?? { r0: 0, c0: 0, rows: full.rows, cols: full.cols };
  const sx = r.width ? p.box.canvasWidth / r.width : 1;
  const sy = r.height ? p.box.canvasHeight / r.height : 1;
  const x = (e.clientX - r.left) * sx;
  const y = (e.clientY - r.top) * sy;
  const cell = cellAt(p.box.plot, w.rows, w.cols, x, y);
  if (!cell) return null;
  const { plot } = p.box;
  return { row: cell.row + w.r0, col: cell.col + w.c0, fy: (y - plot.top) / plot.height, fx: (x - plot.left) / plot.width };
}

/** Zoom an enlarged panel (its own tab) with the wheel, around the cell under the pointer. */
function wheelZoom(v: View, p: Panel, e: WheelEvent) {
  if (!v.activeTab.startsWith("task:") || !e.deltaY) return;
  const cell = panelCell(v, p, e);
  if (!cell) return;
  const [, nL, nH] = v.data.shape;
  const next = zoomWindow(p.window, gridShape(v.traits.orientation, nL, nH), cell.fy, cell.fx, e.deltaY < 0 ? 0.8 : 1.25);
  if (!next && !p.window) return; // all shown already: let the page scroll
  e.preventDefault();
  setWindow(v, p, next);
}

function setWindow(v: View, p: Panel, w: Panel["window"]) {
  p.window = w;
  if (w) p.canvas.dataset.window = `${w.r0},${w.c0},${w.rows},${w.cols}`;
  else delete p.canvas.dataset.window;
  const reset = p.wrap.querySelector<HTMLElement>(".hw-zoom-reset");
  if (reset) reset.hidden = !w;
  drawPanel(v, p);
}

/** A box-zoom drag on an enlarged panel: where it started (a cell of the full grid and the
 * pointer) and, once the pointer has moved a few pixels, the cell at its other corner. */
interface BoxDrag {
  start: { row: number; col: number };
  x: number;
  y: number;
  end: { row: number; col: number } | null;
}
const drags = new WeakMap<Panel, BoxDrag>();
/** when a panel's last box zoom ended (its click must not select a head) */
const dragEnded = new WeakMap<Panel, number>();

/** The cell of the full grid nearest the pointer, even outside the plot. */
function nearestCell(v: View, p: Panel, e: MouseEvent) {
  const r = p.canvas.getBoundingClientRect();
  const [, nL, nH] = v.data.shape;
  const full = gridShape(v.traits.orientation, nL, nH);
  const w = p.window ?? { r0: 0, c0: 0, rows: full.rows, cols: full.cols };
  const x = (e.clientX - r.left) * (r.width ? p.box.canvasWidth / r.width : 1);
  const y = (e.clientY - r.top) * (r.height ? p.box.canvasHeight / r.height : 1);
  const cell = clampedCell(p.box.plot, w.rows, w.cols, x, y);
  return { row: cell.row + w.r0, col: cell.col + w.c0 };
}

/** The panel with the box being dragged over it: the layers x heads it will zoom to. */
function drawBand(v: View, p: Panel, d: BoxDrag) {
  const ctx = p.ctx;
  if (!ctx || !d.end) return;
  const [, nL, nH] = v.data.shape;
  const full = gridShape(v.traits.orientation, nL, nH);
  const r = cellSpanRect(p.box.plot, p.window ?? { r0: 0, c0: 0, rows: full.rows, cols: full.cols }, d.start, d.end);
  ctx.save();
  ctx.setTransform(v.dpr, 0, 0, v.dpr, 0, 0);
  ctx.fillStyle = v.theme.fg;
  ctx.globalAlpha = 0.12;
  ctx.fillRect(r.left, r.top, r.width, r.height);
  ctx.globalAlpha = 1;
  ctx.strokeStyle = v.theme.bg; // a solid line under the dashes: seen on dark and light cells
  ctx.lineWidth = 2;
  ctx.strokeRect(r.left + 0.5, r.top + 0.5, r.width - 1, r.height - 1);
  ctx.lineWidth = 1;
  ctx.strokeStyle = v.theme.fg;
  ctx.setLineDash([4, 3]);
  ctx.strokeRect(r.left + 0.5, r.top + 0.5, r.width - 1, r.height - 1);
  ctx.restore();
}

/** Drag a box over an enlarged panel: zoom to those layers x heads (double click or the
 * "whole map" button goes back). */
function attachBoxZoom(v: View, p: Panel) {
  const c = p.canvas;
  c.classList.add("hw-zoomable");
  const reset = h(v.doc, "button", { class: "hw-zoom-reset", type: "button", title: "Show the whole map (or double click it)" }, "⤢ whole map");
  reset.hidden = !p.window;
  // over the plot's top-right corner (the title above may be as wide as the panel)
  reset.style.top = `${p.box.titleHeight + p.box.plot.top + 4}px`;
  reset.style.right = `${p.box.canvasWidth - p.box.plot.left - p.box.plot.width + 4}px`;
  reset.addEventListener("click", () => setWindow(v, p, null));
  p.wrap.append(reset);
  c.addEventListener("pointerdown", (e: PointerEvent) => {
    if (e.button !== 0 || !panelCell(v, p, e)) return;
    drags.set(p, { start: nearestCell(v, p, e), x: e.clientX, y: e.clientY, end: null });
    c.setPointerCapture?.(e.pointerId);
  });
  const end = (e: PointerEvent, zoom: boolean) => {
    const d = drags.get(p);
    drags.delete(p);
    c.releasePointerCapture?.(e.pointerId);
    if (!d?.end) return;
    dragEnded.set(p, Date.now());
    const [, nL, nH] = v.data.shape;
    const next = zoom ? boxWindow(d.start, d.end, gridShape(v.traits.orientation, nL, nH)) : p.window;
    setWindow(v, p, next);
  };
  c.addEventListener("pointerup", (e: PointerEvent) => end(e, true));
  c.addEventListener("pointercancel", (e: PointerEvent) => end(e, false));
}

/** A box-zoom drag's move: true when the drag (not hover) takes it. */
function dragMove(v: View, p: Panel, e: PointerEvent): boolean {
  const d = drags.get(p);
  if (!d) return false;
  if (!d.end && Math.hypot(e.clientX - d.x, e.clientY - d.y) < 4) return false; // a click, so far
  d.end = nearestCell(v, p, e);
  v.hover = null;
  hideTooltip(v);
  drawPanel(v, p);
  drawBand(v, p, d);
  return true;
}

/** The arrow under the pointer on a task panel, if any. */
function pointerEdge(v: View, p: Panel, e: MouseEvent): PathEdge | null {
  if (!v.paths.count || p.kind !== "task") return null;
  const r = p.canvas.getBoundingClientRect();
  const sx = r.width ? p.box.canvasWidth / r.width : 1;
  const sy = r.height ? p.box.canvasHeight / r.height : 1;
  return edgeAt(v, p, (e.clientX - r.left) * sx, (e.clientY - r.top) * sy);
}

function showTooltip(v: View, p: Panel, layer: number, head: number, x: number, y: number) {
  const { metric, method } = v.traits.provenance;
  const lines = tooltipLines(v.data, v.thresh.classes, p, layer, head, { metric, method, minAccuracy: v.traits.minAccuracy, normalization: v.traits.normalization, roles: v.roles });
  showLines(v, lines, x, y);
}

function showLines(v: View, lines: string[], x: number, y: number) {
  const { tooltip, root, doc } = v;
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

export function hideTooltip(v: View): void {
  v.tooltip.hidden = true;
  v.tooltip.style.display = "none";
}

function select(v: View, p: Panel, layer: number, head: number) {
  v.model.set("selected_head", [layer, head]);
  v.model.set("selected_task", p.kind === "task" ? p.name : "");
  v.model.save_changes();
  v.live.textContent = announcement(v.data, v.thresh.classes, p, layer, head);
  v.schedule(DRAW);
}

/** Hover, click, keyboard and blur handlers of a panel's canvas (gone with the canvas). */
export function attachPanelEvents(v: View, p: Panel): void {
  const c = p.canvas;
  const leave = () => {
    const prev = v.hover;
    v.hover = null;
    hideTooltip(v);
    if (prev) v.schedule(HOVER);
  };
  if (p.kind === "task" && v.activeTab.startsWith("task:")) attachBoxZoom(v, p);
  c.addEventListener("pointermove", (e: PointerEvent) => {
    if (dragMove(v, p, e)) return;
    const edge = pointerEdge(v, p, e);
    if (edge) {
      showLines(v, edgeLines(edge), e.clientX, e.clientY);
      return;
    }
    const cell = panelCell(v, p, e);
    if (!cell) {
      if (v.hover?.panel === p) leave();
      else hideTooltip(v); // off an arrow that ends outside the cells (the logits' marker)
      return;
    }
    const prev = v.hover;
    v.hover = { panel: p, row: cell.row, col: cell.col };
    const { layer, head } = cellToHead(v.traits.orientation, cell.row, cell.col, v.data.shape[2]);
    showTooltip(v, p, layer, head, e.clientX, e.clientY);
    // the same head is marked in every panel: redraw them all (on the next frame)
    if (!prev || prev.panel !== p || prev.row !== cell.row || prev.col !== cell.col) v.schedule(HOVER);
  });
  c.addEventListener("dblclick", () => {
    if (p.window) setWindow(v, p, null); // zoomed in: back to the whole map
    else if (p.kind === "task" && v.data.tasks.length > 1 && !v.activeTab.startsWith("task:")) v.zoom(p);
  });
  c.addEventListener("wheel", (e: WheelEvent) => wheelZoom(v, p, e), { passive: false });
  c.addEventListener("pointerleave", leave);
  c.addEventListener("click", (e: MouseEvent) => {
    if (Date.now() - (dragEnded.get(p) ?? -1e9) < 500) return; // the end of a box zoom
    const cell = panelCell(v, p, e);
    if (!cell) return;
    const { layer, head } = cellToHead(v.traits.orientation, cell.row, cell.col, v.data.shape[2]);
    select(v, p, layer, head);
  });
  c.addEventListener("keydown", (e: KeyboardEvent) => {
    const orient = v.traits.orientation;
    const [, nL, nH] = v.data.shape;
    const { rows, cols } = gridShape(orient, nL, nH);
    if (e.key === "Escape") {
      e.stopPropagation();
      v.model.set("selected_head", null);
      v.model.set("selected_task", "");
      v.model.save_changes();
      v.live.textContent = "Selection cleared";
      hideTooltip(v);
      v.schedule(DRAW);
      e.preventDefault();
      return;
    }
    const mv = ARROW_MOVES.get(e.key);
    if (!mv) return;
    // the notebook must not also move to another cell
    e.preventDefault();
    e.stopPropagation();
    const sel = v.traits.selection(nL, nH);
    let row = 0;
    let col = 0;
    if (sel) {
      ({ row, col } = headToCell(orient, sel.layer, sel.head, nH));
      row = Math.min(rows - 1, Math.max(0, row + mv[0]));
      col = Math.min(cols - 1, Math.max(0, col + mv[1]));
    }
    const { layer, head } = cellToHead(orient, row, col, nH);
    // zoomed in: the view follows the selection
    if (p.window) setWindow(v, p, windowShowing(p.window, row, col));
    select(v, p, layer, head);
    const w = p.window ?? { r0: 0, c0: 0, rows, cols };
    const r = p.canvas.getBoundingClientRect();
    const cr = cellRect(p.box.plot, w.rows, w.cols, row - w.r0, col - w.c0);
    showTooltip(v, p, layer, head, r.left + cr.left + cr.width, r.top + cr.top + cr.height);
  });
  c.addEventListener("blur", () => {
    if (!v.hover) hideTooltip(v);
  });
}
