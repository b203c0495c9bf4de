// Paths between heads (headwidget/views/grid_paths.py): the edges of HeadPaths as int32 bytes
// [n_edges, 6] (grid task index, sender layer / head, receiver layer / head or -1 -1 for the
// logits, channel index into q k v logits) with float32 effects and standard errors; each task's
// `path_edges` strongest by |effect| are drawn as arrows (path-draw.ts). The styles are those of
// headwidget/views/path_marks.py.
import { toFloat32 } from "./data";
import { headToCell, type CellWindow, type Orientation, type Rect } from "./layout";

export const VIA = ["q", "k", "v", "logits"] as const;
/** an edge that helps (effect > 0) and one that hurts, each over a dark halo */
export const POSITIVE = "#ff9f1c";
export const NEGATIVE = "#2ec4ff";
export const HALO = "rgba(0, 0, 0, 0.8)";
/** per channel: dash (CSS px, [] solid) and head */
export const CHANNEL_STYLES: Readonly<Record<(typeof VIA)[number], { dash: number[]; head: "filled" | "open" }>> = {
  q: { dash: [], head: "filled" },
  k: { dash: [6, 3], head: "filled" },
  v: { dash: [2, 2.5], head: "filled" },
  logits: { dash: [], head: "open" },
};
export const MIN_WIDTH = 1;
export const MAX_WIDTH = 5;

export interface PathEdge {
  /** row in the trait's arrays */
  row: number;
  task: number;
  sender: [number, number];
  /** null: the logits */
  receiver: [number, number] | null;
  via: (typeof VIA)[number];
  effect: number;
  /** NaN where unknown */
  sem: number;
}

export interface PathState {
  /** per grid task, its drawn edges, strongest first */
  byTask: Map<number, PathEdge[]>;
  count: number;
  /** the most edges any task has (the slider's end) */
  available: number;
}

export const EMPTY_PATHS: PathState = { byTask: new Map(), count: 0, available: 0 };

function toInt32(raw: unknown): Int32Array {
  if (raw instanceof Int32Array) return raw;
  if (Array.isArray(raw)) return Int32Array.from(raw, Number);
  if (raw instanceof ArrayBuffer) return new Int32Array(raw.slice(0, raw.byteLength - (raw.byteLength % 4)));
  if (ArrayBuffer.isView(raw)) {
    const n = Math.floor(raw.byteLength / 4);
    return new Int32Array(new Uint8Array(raw.buffer, raw.byteOffset, n * 4).slice().buffer);
  }
  return new Int32Array(0);
}

/** The edges drawn: each task's `perTask` strongest (|effect|, NaN never) of the traits. */
export function readPaths(rawEdges: unknown, rawEffect: unknown, rawSem: unknown, perTask: unknown, nTasks: number, nLayers: number, nHeads: number): PathState {
  const edges = toInt32(rawEdges);
  let effect: Float32Array;
  let sem: Float32Array;
  try {
    effect = toFloat32(rawEffect);
    sem = toFloat32(rawSem);
  } catch {
    return EMPTY_PATHS;
  }
  const n = Math.floor(edges.length / 6);
  const k = typeof perTask === "number" && Number.isFinite(perTask) ? Math.max(0, Math.floor(perTask)) : 10;
  if (!n || effect.length !== n) return EMPTY_PATHS;
  const all = new Map<number, PathEdge[]>();
  for (let r = 0; r < n; r++) {
    const [task, sl, sh, rl, rh, via] = edges.subarray(r * 6, r * 6 + 6);
    const ok = task >= 0 && task < nTasks && sl >= 0 && sl < nLayers && sh >= 0 && sh < nHeads && via >= 0 && via < 4;
    const toLogits = via === 3;
    if (!ok || !Number.isFinite(effect[r]) || (!toLogits && !(rl > sl && rl < nLayers && rh >= 0 && rh < nHeads))) continue;
    const edge: PathEdge = { row: r, task, sender: [sl, sh], receiver: toLogits ? null : [rl, rh], via: VIA[via], effect: effect[r], sem: sem.length === n ? sem[r] : NaN };
    if (!all.has(task)) all.set(task, []);
    all.get(task)!.push(edge);
  }
  let count = 0;
  let available = 0;
  for (const [task, list] of all) {
    available = Math.max(available, list.length);
    list.sort((a, b) => Math.abs(b.effect) - Math.abs(a.effect) || a.row - b.row);
    all.set(task, list.slice(0, k));
    count += Math.min(k, list.length);
  }
  return { byTask: all, count, available };
}

/** The centre of head (layer, head)'s cell in a plot showing window `w` (outside the plot when
 * the head is outside the window). */
export function cellCentre(orient: Orientation, plot: Rect, w: CellWindow, nHeads: number, layer: number, head: number): { x: number; y: number } {
  const { row, col } = headToCell(orient, layer, head, nHeads);
  return { x: plot.left + ((col - w.c0 + 0.5) * plot.width) / w.cols, y: plot.top + ((row - w.r0 + 0.5) * plot.height) / w.rows };
}

/** Where the logits' marker sits: the middle of the plot's edge past the last layer (below it
 * with layers down, right of it with layers along x). Given the window `w` and the number of
 * layers, a window that ends before the last layer puts it one layer past the last, outside the
 * plot, with `shown` false (no marker: the arrows leave the view towards it). */
export function logitsPoint(orient: Orientation, plot: Rect, w?: CellWindow, nLayers?: number): { x: number; y: number; shown: boolean } {
  const across = orient === "layer_x";
  // the window's layers: its columns with layers along x, its rows with layers down
  const [first, count] = !w ? [0, 1] : across ? [w.c0, w.cols] : [w.r0, w.rows];
  const cut = w !== undefined && nLayers !== undefined && first + count < nLayers;
  const past = cut ? (nLayers - first) / count : 1; // along the layer axis, in plot lengths
  if (across) return { x: plot.left + past * plot.width, y: plot.top + plot.height / 2, shown: !cut };
  return { x: plot.left + plot.width / 2, y: plot.top + past * plot.height, shown: !cut };
}

export interface ArrowEnds {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
  /** whether (x1, y1) is the receiver itself (draw the head), not where the arrow leaves the plot */
  head: boolean;
}

/** The part of the segment (x0, y0)-(x1, y1) inside `plot` as fractions [t0, t1] of it
 * (Liang-Barsky), or null when it misses the plot. */
export function clipToPlot(x0: number, y0: number, x1: number, y1: number, plot: Rect): [number, number] | null {
  const dx = x1 - x0;
  const dy = y1 - y0;
  let t0 = 0;
  let t1 = 1;
  const sides: [number, number][] = [[-dx, x0 - plot.left], [dx, plot.left + plot.width - x0], [-dy, y0 - plot.top], [dy, plot.top + plot.height - y0]];
  for (const [p, q] of sides) {
    if (p === 0) {
      if (q < 0) return null;
      continue;
    }
    const t = q / p;
    if (p < 0) t0 = Math.max(t0, t);
    else t1 = Math.min(t1, t);
    if (t0 > t1) return null;
  }
  return [t0, t1];
}

/** An edge's arrow: from the sender's cell centre to the receiver's (or the logits' marker;
 * `nLayers` places it past a zoomed view that ends before the last layer), cut to the plot where
 * a zoomed view shows only part of it; null when none of it shows. */
export function arrowEnds(orient: Orientation, plot: Rect, w: CellWindow, nHeads: number, e: PathEdge, nLayers?: number): ArrowEnds | null {
  const a = cellCentre(orient, plot, w, nHeads, e.sender[0], e.sender[1]);
  const logits = e.receiver ? null : logitsPoint(orient, plot, w, nLayers);
  const b = e.receiver ? cellCentre(orient, plot, w, nHeads, e.receiver[0], e.receiver[1]) : logits!;
  const cut = clipToPlot(a.x, a.y, b.x, b.y, plot);
  if (!cut) return null;
  const [t0, t1] = cut;
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  if ((t1 - t0) * Math.hypot(dx, dy) < 1) return null; // a corner or a point of it: nothing to see
  const head = t1 >= 1 - 1e-9 && (logits?.shown ?? true);
  return { x0: a.x + t0 * dx, y0: a.y + t0 * dy, x1: a.x + t1 * dx, y1: a.y + t1 * dy, head };
}

/** An edge's width (CSS px) from its |effect| over the largest drawn on its panel. */
export function edgeWidth(effect: number, largest: number): number {
  if (!(largest > 0) || !Number.isFinite(effect)) return MIN_WIDTH;
  return MIN_WIDTH + (MAX_WIDTH - MIN_WIDTH) * Math.min(1, Math.abs(effect) / largest);
}

export function edgeColor(effect: number): string {
  return effect >= 0 ? POSITIVE : NEGATIVE;
}

/** Whether an edge touches head (layer, head): the selection's edges stay, the others fade. */
export function touches(e: PathEdge, layer: number, head: number): boolean {
  return (e.sender[0] === layer && e.sender[1] === head) || (!!e.receiver && e.receiver[0] === layer && e.receiver[1] === head);
}

/** Distance from (px, py) to the segment (x0, y0)-(x1, y1). */
export function segmentDistance(px: number, py: number, s: { x0: number; y0: number; x1: number; y1: number }): number {
  const dx = s.x1 - s.x0;
  const dy = s.y1 - s.y0;
  const len2 = dx * dx + dy * dy;
  const t = len2 ? Math.max(0, Math.min(1, ((px - s.x0) * dx + (py - s.y0) * dy) / len2)) : 0;
  return Math.hypot(px - (s.x0 + t * dx), py - (s.y0 + t * dy));
}

/** The tooltip of an edge: what it joins and its effect ± 1.96·sem where known. */
export function edgeLines(e: PathEdge): string[] {
  const sender = `L${e.sender[0]}H${e.sender[1]}`;
  const title = e.receiver ? `${sender} → L${e.receiver[0]}H${e.receiver[1]} via ${e.via}` : `${sender} → logits`;
  const spread = Number.isFinite(e.sem) ? ` ± ${(1.96 * e.sem).toPrecision(2)} (95 %)` : "";
  return [title, `path effect ${e.effect >= 0 ? "+" : ""}${e.effect.toPrecision(3)}${spread}`, e.effect >= 0 ? "the path helps" : "the path hurts"];
}

/** The legend's words: the two colours and the four channels. */
export const PATH_LEGEND = "paths: orange helps, blue hurts; width |effect|; via q solid, k dashed, v dotted, → logits ◆ open head";
