// Drawing the panels: cell colours into each panel's buffer, then axes, hover and selection.
import { UNCLASSIFIED_CODE } from "./categories";
import { dimmedLut, lut } from "./colormap";
import type { Panel, View } from "./context";
import { drawColorbar, drawMiniBar } from "./legend";
import { axisNames, cellRect, gridShape, headToCell, rowOfTick, type CellWindow } from "./layout";
import { drawMarks, fillApprox, fillInsignificant } from "./overlays";
import { categoryPanelTasks } from "./panels";
import { drawArrows } from "./path-draw";
import { drawGlyphs, drawRolePassing, fillRoleBuffer } from "./role-draw";
import { intTicks, intTicksRange } from "./scale";
import { codeRgbIndex } from "./state";

/** Share of a dimmed (below-threshold) head's colour that is kept; the rest is the background. */
export const DIM_ALPHA = 0.28;

const dimCache = new Map<string, Uint8Array>();
function dimLut(name: string, bg: [number, number, number]): Uint8Array {
  const key = `${name}|${bg.join(",")}`;
  let d = dimCache.get(key);
  if (!d) {
    d = dimmedLut(lut(name), bg, DIM_ALPHA);
    dimCache.set(key, d);
  }
  return d;
}

const hatches = new WeakMap<Document, { key: string; pattern: CanvasPattern | null }>();
/** Diagonal hatching (cells without a value), or the muted colour where patterns are missing. */
function hatchPattern(v: View, ctx: CanvasRenderingContext2D): CanvasPattern | string {
  const { theme, dpr, doc } = v;
  const key = `${theme.bg}|${theme.muted}|${dpr}`;
  let hatch = hatches.get(doc);
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
    hatches.set(doc, hatch);
  }
  return hatch.pattern ?? theme.muted;
}

/** Tasks whose values a panel shows (a task, a category's tasks, or every categorised task). */
function panelTasks(v: View, p: Panel): number[] {
  return p.kind === "task" ? [p.task] : categoryPanelTasks(v, p);
}

/** A colour table (r, g, b per entry) as one RGBA word per entry, alpha 255, in the byte order
 * of an ImageData's pixels: a cell is then one 32-bit store. */
const lutWordCache = new WeakMap<Uint8Array, Uint32Array>();
export function lutWords(table: Uint8Array): Uint32Array {
  let words = lutWordCache.get(table);
  if (!words) {
    const n = Math.floor(table.length / 3);
    words = new Uint32Array(n);
    const bytes = new Uint8Array(words.buffer); // the same memory: no byte-order assumption
    for (let k = 0; k < n; k++) {
      bytes[k * 4] = table[k * 3];
      bytes[k * 4 + 1] = table[k * 3 + 1];
      bytes[k * 4 + 2] = table[k * 3 + 2];
      bytes[k * 4 + 3] = 255;
    }
    lutWordCache.set(table, words);
  }
  return words;
}

/** What a panel's buffer was last filled from: a slider move that changes none of it (true
 * colours: a task panel does not depend on the threshold) leaves the buffer as it is. */
const filledFrom = new WeakMap<Panel, unknown[]>();
function fillInputs(v: View, p: Panel): unknown[] {
  const fade = v.traits.fadeBelow;
  const thresh = p.kind === "task" ? (fade ? v.thresh.cutoffs[p.task] : null) : v.thresh;
  const gate = p.kind === "task" && fade ? v.thresh.gate : null;
  return [v.data, v.scale, v.traits.colormap, v.traits.orientation, fade, v.theme.bgRgb.join(","), thresh, gate, v.traits.markInsignificant, v.roles.keep];
}

/** Colour every cell of a panel into its buffer (one pixel per head), unless its inputs are
 * those of the last fill. */
export function fillBuffer(v: View, p: Panel): void {
  const img = p.image;
  if (!img) return;
  if (p.kind === "role") return fillRoleBuffer(v, p);
  const inputs = fillInputs(v, p);
  const last = filledFrom.get(p);
  if (last && last.length === inputs.length && last.every((x, i) => x === inputs[i])) return;
  filledFrom.set(p, inputs);
  const tasks = panelTasks(v, p);
  fillApprox(v, p, tasks);
  // a category panel marks by the tasks its categories count
  fillInsignificant(v, p, p.kind === "task" ? tasks : tasks.filter((t) => v.thresh.counted[t] !== false));
  const data = img.data;
  const px = new Uint32Array(data.buffer, data.byteOffset, data.length >> 2);
  const { norm } = v.data;
  const [, nL, nH] = v.data.shape;
  const { classes, catRgb, cutoffs, gate } = v.thresh;
  const size = nL * nH;
  const layerX = v.traits.orientation === "layer_x";
  const cols = layerX ? nL : nH;
  // role_filter: heads without the role faded toward the background, as fade_below fades
  const keep = v.roles.keep;
  if (p.kind === "task") {
    const t = p.task;
    const idx = v.scale.lutIdx[t];
    const full = lutWords(lut(v.traits.colormap));
    const base = t * size;
    if (v.traits.fadeBelow || keep) {
      // heads below the threshold faded toward the background (fade_below), and those
      // without the filter's role
      const dim = lutWords(dimLut(v.traits.colormap, v.theme.bgRgb));
      const cut = v.traits.fadeBelow ? cutoffs[t] : -Infinity;
      const g = v.traits.fadeBelow ? gate : null;
      for (let i = 0; i < size; i++) {
        const l = (i / nH) | 0;
        const o = layerX ? (nH - 1 - (i - l * nH)) * cols + l : i;
        const k = idx[i];
        px[o] = k < 0 ? 0 : norm[base + i] >= cut && (g === null || g[base + i] === 1) && (keep === null || keep[i] === 1) ? full[k] : dim[k];
      }
    } else if (!layerX) {
      // true colours: every cell its colour map colour (NaN: transparent, the hatch shows)
      for (let i = 0; i < size; i++) {
        const k = idx[i];
        px[i] = k < 0 ? 0 : full[k];
      }
    } else {
      for (let i = 0; i < size; i++) {
        const l = (i / nH) | 0;
        const k = idx[i];
        px[(nH - 1 - (i - l * nH)) * cols + l] = k < 0 ? 0 : full[k];
      }
    }
  } else if (classes) {
    const n = classes.names.length;
    const codes = classes.codes;
    const mem = p.kind === "category" ? classes.membership[p.category] : null;
    const colors = lutWords(catRgb);
    const dimmed = keep ? lutWords(dimmedLut(catRgb, v.theme.bgRgb, DIM_ALPHA)) : colors;
    const grey = codeRgbIndex(UNCLASSIFIED_CODE, n);
    for (let i = 0; i < size; i++) {
      const l = (i / nH) | 0;
      const o = layerX ? (nH - 1 - (i - l * nH)) * cols + l : i;
      const c = mem ? (mem[i] ? p.category : grey) : codeRgbIndex(codes[i], n);
      px[o] = keep && !keep[i] ? dimmed[c] : colors[c];
    }
  }
  p.bctx!.putImageData(img, 0, 0);
}

/** Where an export draws a panel: a 2D context (a canvas, or svg.ts's), scale and offset. */
export interface PanelTarget {
  ctx: CanvasRenderingContext2D;
  scale: number;
  x: number;
  y: number;
}

/**
 * Draw a panel from its buffer: cells, frame, ticks, axis titles, marks; on its own canvas with
 * the hovered and selected heads, or into an export `target` without them.
 */
export function drawPanel(v: View, p: Panel, target?: PanelTarget): void {
  const ctx = target ? target.ctx : p.ctx;
  if (!ctx || !p.bctx) return;
  const { theme, dpr } = v;
  const { plot } = p.box;
  const [, nL, nH] = v.data.shape;
  const orient = v.traits.orientation;
  const full = gridShape(orient, nL, nH);
  // the cells shown: all, or the zoomed window; rows / cols count the shown cells
  const w: CellWindow = p.window ?? { r0: 0, c0: 0, rows: full.rows, cols: full.cols };
  const { rows, cols } = w;
  if (target) {
    const s = target.scale;
    ctx.setTransform(s, 0, 0, s, target.x * s, target.y * s);
    drawFrame(v, p, ctx, w);
  } else {
    // the hatch, frame, ticks and axis titles change only with the layout, window and theme:
    // drawn once into an offscreen canvas and copied
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, p.canvas.width, p.canvas.height);
    const frame = frameLayer(v, p, w);
    if (frame) ctx.drawImage(frame, 0, 0);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    if (!frame) drawFrame(v, p, ctx, w);
  }
  // one pixel per head in the buffer, scaled up without smoothing: every cell is its colour
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(p.buffer, w.c0, w.r0, cols, rows, plot.left, plot.top, plot.width, plot.height);
  if (p.kind === "task" && v.traits.colorRange === "per_task") drawMiniBar(v, p, ctx);
  drawMarks(v, p, "approx", ctx, target ? target.scale : dpr);
  drawMarks(v, p, "insig", ctx, target ? target.scale : dpr);
  if (p.kind === "task") drawPassing(v, p, ctx, w);
  if (p.kind === "role") drawRolePassing(v, p, ctx, w);
  drawGlyphs(v, p, ctx, target ? target.scale : null);
  if (p.kind === "task") drawArrows(v, p, ctx);
  if (target) return;

  // the hovered head, in every panel (the hovered panel's mark is the stronger)
  const hover = v.hover;
  const shown = (row: number, col: number) => row >= w.r0 && row < w.r0 + rows && col >= w.c0 && col < w.c0 + cols;
  if (hover && shown(hover.row, hover.col)) {
    const r = cellRect(plot, rows, cols, hover.row - w.r0, hover.col - w.c0);
    ctx.strokeStyle = theme.fg;
    if (hover.panel === p) {
      // a cross-hair through the hovered head, to read its layer and head off the axes
      ctx.globalAlpha = 0.3;
      ctx.beginPath();
      const cx = Math.round(r.left + r.width / 2) + 0.5;
      const cy = Math.round(r.top + r.height / 2) + 0.5;
      ctx.moveTo(plot.left, cy);
      ctx.lineTo(r.left - 2, cy);
      ctx.moveTo(r.left + r.width + 2, cy);
      ctx.lineTo(plot.left + plot.width, cy);
      ctx.moveTo(cx, plot.top);
      ctx.lineTo(cx, r.top - 2);
      ctx.moveTo(cx, r.top + r.height + 2);
      ctx.lineTo(cx, plot.top + plot.height);
      ctx.stroke();
    }
    ctx.globalAlpha = hover.panel === p ? 0.8 : 0.55;
    if (hover.panel !== p) ctx.setLineDash([2, 2]);
    ctx.strokeRect(r.left - 1.5, r.top - 1.5, r.width + 3, r.height + 3);
    ctx.setLineDash([]);
    ctx.globalAlpha = 1;
  }
  const sel = v.traits.selection(nL, nH);
  const at = sel ? headToCell(orient, sel.layer, sel.head, nH) : null;
  if (at && shown(at.row, at.col)) {
    const r = cellRect(plot, rows, cols, at.row - w.r0, at.col - w.c0);
    const selectedTask = v.traits.selectedTask;
    const mine = p.kind !== "task" || selectedTask === "" || selectedTask === p.name;
    ctx.lineWidth = mine ? 2 : 1;
    ctx.strokeStyle = theme.bg;
    ctx.strokeRect(r.left - 2, r.top - 2, r.width + 4, r.height + 4);
    ctx.strokeStyle = mine ? theme.fg : theme.muted;
    ctx.strokeRect(r.left - 1, r.top - 1, r.width + 2, r.height + 2);
    ctx.lineWidth = 1;
  }
}

/** A panel's hatch (under NaN cells), frame, ticks and axis titles, for the cells of window `w`. */
function drawFrame(v: View, p: Panel, ctx: CanvasRenderingContext2D, w: CellWindow): void {
  const { theme } = v;
  const { plot } = p.box;
  const [, nL, nH] = v.data.shape;
  const orient = v.traits.orientation;
  const full = gridShape(orient, nL, nH);
  const { rows, cols } = w;
  // NaN cells are transparent in the buffer, so the hatch shows through them
  ctx.fillStyle = hatchPattern(v, ctx);
  ctx.fillRect(plot.left, plot.top, plot.width, plot.height);
  ctx.strokeStyle = theme.border;
  ctx.lineWidth = 1;
  ctx.strokeRect(plot.left - 0.5, plot.top - 0.5, plot.width + 1, plot.height + 1);

  // ticks at cell centres, like matplotlib's imshow
  ctx.fillStyle = theme.fg;
  ctx.strokeStyle = theme.fg;
  ctx.font = `11px ${theme.font}`;
  ctx.beginPath();
  const rowBudget = Math.max(2, Math.min(6, Math.floor(plot.height / 22)));
  const colBudget = Math.max(2, Math.min(6, Math.floor(plot.width / 26)));
  // tick values: layers / heads of the shown rows and columns (layer_x counts heads upward)
  const rowLo = orient === "layer_x" ? full.rows - w.r0 - rows : w.r0;
  const rowTicks = p.window ? intTicksRange(rowLo, rowLo + rows - 1, rowBudget) : intTicks(rows, rowBudget);
  const colTicks = p.window ? intTicksRange(w.c0, w.c0 + cols - 1, colBudget) : intTicks(cols, colBudget);
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const r of rowTicks) {
    // layer_x: the head axis points up (head 0 in the bottom row)
    const y = Math.round(plot.top + ((rowOfTick(orient, r, full.rows) - w.r0 + 0.5) * plot.height) / rows) + 0.5;
    ctx.moveTo(plot.left - 4, y);
    ctx.lineTo(plot.left - 1, y);
    ctx.fillText(String(r), plot.left - 6, y);
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  const bottom = plot.top + plot.height;
  for (const c of colTicks) {
    const x = Math.round(plot.left + ((c - w.c0 + 0.5) * plot.width) / cols) + 0.5;
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
}

const frameLayers = new WeakMap<Panel, { key: string; canvas: HTMLCanvasElement }>();
/** drawFrame's picture of a panel at its canvas's size, redrawn only when what it shows
 * changes; null where an offscreen canvas has no 2D context (then the caller draws it). */
function frameLayer(v: View, p: Panel, w: CellWindow): HTMLCanvasElement | null {
  const { theme, dpr } = v;
  const { width, height } = p.canvas;
  const key = JSON.stringify([
    width, height, dpr, w, v.traits.orientation, v.data.shape, p.box.plot, p.box.showRowLabel,
    p.box.showColLabel, theme.fg, theme.bg, theme.muted, theme.border, theme.font,
  ]);
  let layer = frameLayers.get(p);
  if (layer?.key === key) return layer.canvas;
  const canvas = layer?.canvas ?? v.doc.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const fctx = canvas.getContext?.("2d") as CanvasRenderingContext2D | null;
  if (!fctx) return null;
  fctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  drawFrame(v, p, fctx, w);
  layer = { key, canvas };
  frameLayers.set(p, layer);
  return canvas;
}

/** Outline colours of passing heads: dark on light cell colours, light on dark ones. */
export const OUTLINE_ON_LIGHT = "rgba(0, 0, 0, 0.9)";
export const OUTLINE_ON_DARK = "rgba(255, 255, 255, 0.95)";

/** Smallest cell (CSS px) on which the threshold outlines are drawn; smaller cells: zoom in. */
export const MIN_OUTLINE_CELL = 4;

/**
 * Outlines of cells cw x ch (CSS px), collected by the colour under each (its relative
 * luminance picks {@link OUTLINE_ON_LIGHT} or {@link OUTLINE_ON_DARK}), then stroked in one
 * path per colour: the threshold's passing heads and a role's.
 */
export class CellOutlines {
  readonly lw: number;
  private readonly cw: number;
  private readonly ch: number;
  // top-left corners, inset by half the line width, of the outlines on light and on dark colours
  private readonly onLight: number[] = [];
  private readonly onDark: number[] = [];

  constructor(cw: number, ch: number) {
    this.cw = cw;
    this.ch = ch;
    this.lw = Math.min(2, Math.max(1, Math.min(cw, ch) / 6));
  }

  /** Outline the cell at (left, top) whose colour starts at byte k of the colour table. */
  add(table: Uint8Array, k: number, left: number, top: number): void {
    const lum = (0.2126 * table[k] + 0.7152 * table[k + 1] + 0.0722 * table[k + 2]) / 255;
    (lum > 0.45 ? this.onLight : this.onDark).push(left + this.lw / 2, top + this.lw / 2);
  }

  stroke(ctx: CanvasRenderingContext2D): void {
    const { cw, ch, lw } = this;
    ctx.lineWidth = lw;
    for (const [corners, color] of [
      [this.onLight, OUTLINE_ON_LIGHT],
      [this.onDark, OUTLINE_ON_DARK],
    ] as const) {
      if (!corners.length) continue;
      ctx.strokeStyle = color;
      ctx.beginPath();
      for (let j = 0; j < corners.length; j += 2) ctx.rect(corners[j], corners[j + 1], cw - lw, ch - lw);
      ctx.stroke();
    }
    ctx.lineWidth = 1;
  }
}

/**
 * Outline the heads that pass the threshold, dark on light colours and light on dark ones, so
 * that the cells keep their colour map colour.
 */
function drawPassing(v: View, p: Panel, ctx: CanvasRenderingContext2D, w: CellWindow): void {
  const { plot } = p.box;
  const { rows, cols } = w;
  const cw = plot.width / cols;
  const ch = plot.height / rows;
  if (Math.min(cw, ch) < MIN_OUTLINE_CELL) return;
  const [, nL, nH] = v.data.shape;
  const size = nL * nH;
  const t = p.task;
  const cut = v.thresh.cutoffs[t];
  const gate = v.thresh.gate;
  const idx = v.scale.lutIdx[t];
  const table = lut(v.traits.colormap);
  const layerX = v.traits.orientation === "layer_x";
  const outlines = new CellOutlines(cw, ch);
  for (let i = 0; i < size; i++) {
    if (!(v.data.norm[t * size + i] >= cut) || (gate !== null && gate[t * size + i] !== 1)) continue;
    const l = (i / nH) | 0;
    const hh = i - l * nH;
    const row = (layerX ? nH - 1 - hh : l) - w.r0;
    const col = (layerX ? l : hh) - w.c0;
    if (row < 0 || row >= rows || col < 0 || col >= cols) continue;
    outlines.add(table, idx[i] * 3, plot.left + col * cw, plot.top + row * ch);
  }
  outlines.stroke(ctx);
}

export function drawAll(v: View): void {
  for (const p of v.panels) {
    fillBuffer(v, p);
    drawPanel(v, p);
  }
  drawColorbar(v);
}
