// Drawing the head roles: the glyphs over every panel's cells, a role's own panel (its map in the
// colour map, heads at or above the role threshold outlined) and the glyph icons of the legend.
// On screen the glyphs of a panel are drawn once per plot size, window and role state into an
// offscreen canvas shared by every panel of that size (roles belong to heads, not tasks), then
// copied: a redraw costs one drawImage per panel. An export draws them as vectors.
import { dimmedLut, lut, lutIndex } from "./colormap";
import type { Panel, View } from "./context";
import { CellOutlines, DIM_ALPHA, lutWords } from "./draw";
import { cellRect, gridShape, headToCell, type CellWindow } from "./layout";
import { glyphPolygon, glyphSlots, headGlyphs, MIN_GLYPH_CELL, roleScale, type GlyphShape, type RoleState } from "./roles";

const GLYPH_FILL = "#ffffff";
const GLYPH_RIM = "rgba(0, 0, 0, 0.85)";

/** Draw one glyph centred at (cx, cy) with radius r (y down, as a canvas). */
export function drawGlyph(ctx: CanvasRenderingContext2D, shape: GlyphShape, cx: number, cy: number, r: number): void {
  const points = glyphPolygon(shape);
  ctx.beginPath();
  points.forEach(([x, y], k) => (k ? ctx.lineTo(cx + r * x, cy - r * y) : ctx.moveTo(cx + r * x, cy - r * y)));
  ctx.closePath();
  ctx.fillStyle = GLYPH_FILL;
  ctx.fill();
  ctx.strokeStyle = GLYPH_RIM;
  ctx.lineWidth = Math.max(0.6, Math.min(1.2, r * 0.22));
  ctx.stroke();
}

/** Draw the glyphs of the heads of window `w` in a plot of `width` x `height` at (x0, y0). */
function paintGlyphs(v: View, ctx: CanvasRenderingContext2D, w: CellWindow, x0: number, y0: number, width: number, height: number): void {
  const roles = v.roles;
  const [, nL, nH] = v.data.shape;
  const orient = v.traits.orientation;
  const cw = width / w.cols;
  const ch = height / w.rows;
  for (let i = 0; i < nL * nH; i++) {
    if (!roles.glyphs[i]) continue;
    const layer = (i / nH) | 0;
    const { row, col } = headToCell(orient, layer, i - layer * nH, nH);
    if (row < w.r0 || row >= w.r0 + w.rows || col < w.c0 || col >= w.c0 + w.cols) continue;
    const list = headGlyphs(roles, i);
    const { offsets, radius } = glyphSlots(list.length);
    const size = Math.min(cw, ch);
    const cx = x0 + (col - w.c0 + 0.5) * cw;
    const cy = y0 + (row - w.r0 + 0.5) * ch;
    list.forEach((r, j) => drawGlyph(ctx, roles.shapes[r], cx + offsets[j] * cw, cy, radius * size));
  }
}

const layers = new WeakMap<RoleState, Map<string, HTMLCanvasElement | null>>();

/** The glyphs of a panel over its cells: from the shared offscreen layer on screen, as vectors
 * into an export (`scale` given). Not drawn on cells smaller than MIN_GLYPH_CELL. */
export function drawGlyphs(v: View, p: Panel, ctx: CanvasRenderingContext2D, scale: number | null): void {
  const roles = v.roles;
  if (!roles.any || !p.bctx) return;
  const { plot } = p.box;
  const [, nL, nH] = v.data.shape;
  const full = gridShape(v.traits.orientation, nL, nH);
  const w: CellWindow = p.window ?? { r0: 0, c0: 0, rows: full.rows, cols: full.cols };
  if (Math.min(plot.width / w.cols, plot.height / w.rows) < MIN_GLYPH_CELL) return;
  if (scale !== null) {
    paintGlyphs(v, ctx, w, plot.left, plot.top, plot.width, plot.height);
    return;
  }
  const dpr = v.dpr;
  const W = Math.max(1, Math.round(plot.width * dpr));
  const H = Math.max(1, Math.round(plot.height * dpr));
  const key = `${W}|${H}|${dpr}|${v.traits.orientation}|${w.r0},${w.c0},${w.rows},${w.cols}`;
  let byKey = layers.get(roles);
  if (!byKey) layers.set(roles, (byKey = new Map()));
  if (!byKey.has(key)) {
    const canvas = v.doc.createElement("canvas");
    canvas.width = W;
    canvas.height = H;
    const gx = canvas.getContext?.("2d") as CanvasRenderingContext2D | null;
    if (gx) {
      gx.setTransform(dpr, 0, 0, dpr, 0, 0);
      paintGlyphs(v, gx, w, 0, 0, plot.width, plot.height);
    }
    byKey.set(key, gx ? canvas : null);
  }
  const layer = byKey.get(key);
  if (layer) ctx.drawImage(layer, plot.left, plot.top, plot.width, plot.height);
  else paintGlyphs(v, ctx, w, plot.left, plot.top, plot.width, plot.height);
}

const filled = new WeakMap<Panel, unknown[]>();
/** Colour a role panel's buffer from its role map (one pixel per head, the Roles tab's scale);
 * with a role filter, heads without the role faded. */
export function fillRoleBuffer(v: View, p: Panel): void {
  const img = p.image;
  const r = p.role ?? -1;
  const roles = v.roles;
  if (!img || r < 0 || r >= roles.names.length) return;
  const inputs = [roles, v.traits.colormap, v.traits.orientation, v.theme.bgRgb.join(",")];
  const last = filled.get(p);
  if (last && last.every((x, k) => x === inputs[k])) return;
  filled.set(p, inputs);
  const px = new Uint32Array(img.data.buffer, img.data.byteOffset, img.data.length >> 2);
  const [, nL, nH] = v.data.shape;
  const layerX = v.traits.orientation === "layer_x";
  const { vmin, vmax } = roleScale(roles);
  const full = lutWords(lut(v.traits.colormap));
  const dim = roles.keep ? lutWords(dimmedLut(lut(v.traits.colormap), v.theme.bgRgb, DIM_ALPHA)) : full;
  const base = r * roles.size;
  for (let i = 0; i < nL * nH; i++) {
    const l = (i / nH) | 0;
    const o = layerX ? (nH - 1 - (i - l * nH)) * nL + l : i;
    const k = lutIndex(roles.values[base + i], vmin, vmax);
    px[o] = k < 0 ? 0 : roles.keep && !roles.keep[i] ? dim[k] : full[k];
  }
  p.bctx!.putImageData(img, 0, 0);
}

/** Outline the heads of a role panel at or above the role threshold (dark on light colours,
 * light on dark ones), as a task panel outlines the heads that pass its threshold. */
export function drawRolePassing(v: View, p: Panel, ctx: CanvasRenderingContext2D, w: CellWindow): void {
  const roles = v.roles;
  const r = p.role ?? -1;
  const { plot } = p.box;
  const cw = plot.width / w.cols;
  const ch = plot.height / w.rows;
  if (r < 0 || Math.min(cw, ch) < MIN_GLYPH_CELL) return;
  const [, nL, nH] = v.data.shape;
  const table = lut(v.traits.colormap);
  const { vmin, vmax } = roleScale(roles);
  const outlines = new CellOutlines(cw, ch);
  for (let i = 0; i < nL * nH; i++) {
    const value = roles.values[r * roles.size + i];
    if (!(value >= roles.threshold)) continue;
    const layer = (i / nH) | 0;
    const { row, col } = headToCell(v.traits.orientation, layer, i - layer * nH, nH);
    if (row < w.r0 || row >= w.r0 + w.rows || col < w.c0 || col >= w.c0 + w.cols) continue;
    const rect = cellRect(plot, w.rows, w.cols, row - w.r0, col - w.c0);
    outlines.add(table, Math.max(0, lutIndex(value, vmin, vmax)) * 3, rect.left, rect.top);
  }
  outlines.stroke(ctx);
}

/** A small canvas with a role's glyph on a neutral cell, for the roles bar and legend. */
export function glyphIcon(doc: Document, shape: GlyphShape, size = 14, dpr = 1): HTMLCanvasElement {
  const c = doc.createElement("canvas");
  c.width = Math.round(size * dpr);
  c.height = Math.round(size * dpr);
  c.style.width = `${size}px`;
  c.style.height = `${size}px`;
  const ctx = c.getContext?.("2d") as CanvasRenderingContext2D | null;
  if (ctx) {
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#3b528b";
    ctx.fillRect(0, 0, size, size);
    drawGlyph(ctx, shape, size / 2, size / 2, size * 0.36);
  }
  return c;
}

/** Height (CSS px) of the roles legend an export draws above the panels. */
export const LEGEND_LINE = 18;

/** The roles legend of an export: each shown role's glyph and name in one line at (x, y);
 * returns the height used (0 without glyphs). */
export function drawRoleLegend(v: View, ctx: CanvasRenderingContext2D, x: number, y: number): number {
  const roles = v.roles;
  const shown = roles.names.map((_, r) => r).filter((r) => roles.shown[r]);
  if (!shown.length) return 0;
  ctx.font = `11.5px ${v.theme.font}`;
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  let cx = x;
  for (const r of shown) {
    ctx.fillStyle = "#3b528b";
    ctx.fillRect(cx, y + 2, 13, 13);
    drawGlyph(ctx, roles.shapes[r], cx + 6.5, y + 8.5, 4.7);
    ctx.fillStyle = v.theme.fg;
    const label = `${roles.names[r]} (${roles.counts[r]})`;
    ctx.fillText(label, cx + 17, y + 9);
    cx += 17 + ctx.measureText(label).width + 14;
  }
  return LEGEND_LINE;
}
