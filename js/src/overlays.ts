// Marks drawn over the cells' colours, each from a one-pixel-per-head mask: dots on approximate
// cells, back-slash stripes on cells that are not significant (mark_insignificant). The cells
// keep their colour-bar colour under the marks' gaps; the marked area of each panel is made once
// per mask, window and size and then copied, so a redraw costs one drawImage per mark.
import type { Panel, View } from "./context";
import { panelUnmarked } from "./uncertainty";

/** A cols x rows alpha mask of a panel's marked cells (255 marked, 0 not). */
export interface CellMask {
  canvas: HTMLCanvasElement;
  image: ImageData;
  any: boolean;
  /** bumped at every refill, so that a copy made from an older fill is not reused */
  version: number;
}

export type MarkKind = "approx" | "insig";

/** Refill (or make) a panel's mask: head index i (layer-major) is marked when `marked(i)`. */
function fillMask(v: View, mask: CellMask | null, marked: (i: number) => boolean): CellMask | null {
  const [, nL, nH] = v.data.shape;
  const layerX = v.traits.orientation === "layer_x";
  const cols = layerX ? nL : nH;
  const rows = layerX ? nH : nL;
  if (!mask || mask.canvas.width !== cols || mask.canvas.height !== rows) {
    const canvas = v.doc.createElement("canvas");
    canvas.width = cols;
    canvas.height = rows;
    const cx = canvas.getContext?.("2d") as CanvasRenderingContext2D | null;
    if (!cx) return null;
    mask = { canvas, image: cx.createImageData(cols, rows), any: false, version: 0 };
  }
  const data = mask.image.data;
  let any = false;
  for (let i = 0; i < nL * nH; i++) {
    const m = marked(i);
    const l = (i / nH) | 0;
    data[(layerX ? (nH - 1 - (i - l * nH)) * cols + l : i) * 4 + 3] = m ? 255 : 0;
    any ||= m;
  }
  mask.any = any;
  mask.version++;
  (mask.canvas.getContext("2d") as CanvasRenderingContext2D).putImageData(mask.image, 0, 0);
  return mask;
}

/** Mark the heads still approximate in any of the panel's `tasks`. */
export function fillApprox(v: View, p: Panel, tasks: readonly number[]): void {
  const { exact, shape, exactOnly, values } = v.data;
  if (!exact || exactOnly) {
    if (p.approx) p.approx.any = false;
    return;
  }
  const size = shape[1] * shape[2];
  p.approx = fillMask(v, p.approx, (i) => {
    for (const t of tasks) {
      const k = t * size + i;
      if (!exact[k] && values[k] === values[k]) return true;
    }
    return false;
  });
}

/** What a panel's not-significant mask was last filled from: a threshold move (which refills a
 * category panel's colours) leaves it as it is. */
const insigFrom = new WeakMap<Panel, unknown[]>();

/** Mark the heads that are not significant in the panel's `tasks` (tested in some, significant in
 * none), when mark_insignificant is on and some cell was tested. */
export function fillInsignificant(v: View, p: Panel, tasks: readonly number[]): void {
  const { sig, shape } = v.data;
  const inputs = [sig, v.traits.markInsignificant, v.traits.orientation, tasks.join(",")];
  const last = insigFrom.get(p);
  if (last && p.insig && last.every((x, i) => x === inputs[i])) return;
  insigFrom.set(p, inputs);
  if (!sig || !v.traits.markInsignificant) {
    if (p.insig) p.insig.any = false;
    return;
  }
  const size = shape[1] * shape[2];
  const out = new Uint8Array(size);
  panelUnmarked(sig, size, tasks, out);
  p.insig = fillMask(v, p.insig, (i) => out[i] === 1);
}

/** The repeating tile of a mark at `dpr` device px per CSS px. */
function markTile(doc: Document, kind: MarkKind, dpr: number): HTMLCanvasElement | null {
  const tile = doc.createElement("canvas");
  const n = Math.max(kind === "approx" ? 4 : 6, Math.round((kind === "approx" ? 4 : 6) * dpr));
  tile.width = tile.height = n;
  const tx = tile.getContext?.("2d") as CanvasRenderingContext2D | null;
  if (!tx) return null;
  const dot = Math.max(1, Math.round(dpr));
  if (kind === "approx") {
    // a dark and a light dot every 4 px
    tx.fillStyle = "rgba(0, 0, 0, 0.75)";
    tx.fillRect(0, 0, dot, dot);
    tx.fillStyle = "rgba(255, 255, 255, 0.85)";
    tx.fillRect(dot, dot, dot, dot);
    return tile;
  }
  // back-slash stripes every 6 px, a light line beside a faint dark one: seen on every colour,
  // and unlike the slashes of cells without a value
  const img = tx.createImageData(n, n);
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      const d = (((x - y) % n) + n) % n;
      const o = (y * n + x) * 4;
      if (d < dot) img.data.set([255, 255, 255, 170], o);
      else if (d < 2 * dot) img.data.set([0, 0, 0, 70], o);
    }
  }
  tx.putImageData(img, 0, 0);
  return tile;
}

const tiles = new WeakMap<Document, Map<string, HTMLCanvasElement | null>>();
function cachedTile(doc: Document, kind: MarkKind, dpr: number): HTMLCanvasElement | null {
  let cache = tiles.get(doc);
  if (!cache) tiles.set(doc, (cache = new Map()));
  const key = `${kind}|${dpr}`;
  if (!cache.has(key)) cache.set(key, markTile(doc, kind, dpr));
  return cache.get(key)!;
}

/** The marked area of a panel at its plot's size in device px, per panel and mark. */
const layers = new WeakMap<Panel, Map<MarkKind, { key: string; canvas: HTMLCanvasElement }>>();

/** Draw a panel's `kind` marks over its cells on `ctx` (its canvas or an export's, at `dpr`). */
export function drawMarks(v: View, p: Panel, kind: MarkKind, ctx: CanvasRenderingContext2D, dpr: number): void {
  const mask = kind === "approx" ? p.approx : p.insig;
  if (!mask?.any) return;
  const { plot } = p.box;
  const w = Math.max(1, Math.round(plot.width * dpr));
  const h = Math.max(1, Math.round(plot.height * dpr));
  const win = p.window;
  const key = `${mask.version}|${w}|${h}|${dpr}|${win ? `${win.r0},${win.c0},${win.rows},${win.cols}` : ""}`;
  let byKind = layers.get(p);
  if (!byKind) layers.set(p, (byKind = new Map()));
  let layer = byKind.get(kind);
  if (layer?.key !== key) {
    const canvas = layer?.canvas ?? v.doc.createElement("canvas");
    if (canvas.width !== w) canvas.width = w;
    if (canvas.height !== h) canvas.height = h;
    const sx = canvas.getContext?.("2d") as CanvasRenderingContext2D | null;
    const tile = cachedTile(v.doc, kind, dpr);
    const pattern = tile ? sx?.createPattern(tile, "repeat") : null;
    if (!sx || !pattern) return;
    // the tile everywhere, then kept only where the mask (scaled up, not smoothed) is opaque
    sx.globalCompositeOperation = "copy";
    sx.fillStyle = pattern;
    sx.fillRect(0, 0, w, h);
    sx.globalCompositeOperation = "destination-in";
    sx.imageSmoothingEnabled = false;
    if (win) sx.drawImage(mask.canvas, win.c0, win.r0, win.cols, win.rows, 0, 0, w, h);
    else sx.drawImage(mask.canvas, 0, 0, w, h);
    sx.globalCompositeOperation = "source-over";
    layer = { key, canvas };
    byKind.set(kind, layer);
  }
  ctx.drawImage(layer.canvas, plot.left, plot.top, plot.width, plot.height);
}
