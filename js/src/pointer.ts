// Pointer, tooltip and keyboard: hovering shows a head, clicking or arrow keys select one.
import type { Panel, View } from "./context";
import { h } from "./dom";
import { drawPanel } from "./draw";
import { cellAt, cellRect, cellToHead, gridShape, headToCell, windowShowing, zoomWindow } from "./layout";
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
  drawPanel(v, p);
}

function showTooltip(v: View, p: Panel, layer: number, head: number, x: number, y: number) {
  const { tooltip, root, doc } = v;
  const { metric, method } = v.traits.provenance;
  const lines = tooltipLines(v.data, v.thresh.classes, p, layer, head, { metric, method, minAccuracy: v.traits.minAccuracy });
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
  c.addEventListener("pointermove", (e: PointerEvent) => {
    const cell = panelCell(v, p, e);
    if (!cell) {
      if (v.hover?.panel === p) leave();
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
