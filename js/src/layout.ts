// Geometry of the panel grids and cell <-> pixel mapping (pure; CSS pixels).

export type Orientation = "layer_y" | "layer_x";

/** Cells vertically (rows) and horizontally (cols) of a panel. */
export function gridShape(orientation: Orientation, nLayers: number, nHeads: number): { rows: number; cols: number } {
  return orientation === "layer_x" ? { rows: nHeads, cols: nLayers } : { rows: nLayers, cols: nHeads };
}

/**
 * Cell of a head. layer_y (figure A): row = layer with layer 0 the TOP row, col = head.
 * layer_x (figure B, a scatter-style axis): col = layer with layer 0 at the left, and the head
 * axis points UP, so head 0 is the BOTTOM row: row = nHeads - 1 - head (row 0 = highest head).
 */
export function headToCell(orientation: Orientation, layer: number, head: number, nHeads: number): { row: number; col: number } {
  return orientation === "layer_x" ? { row: nHeads - 1 - head, col: layer } : { row: layer, col: head };
}

/** Inverse of `headToCell`. */
export function cellToHead(orientation: Orientation, row: number, col: number, nHeads: number): { layer: number; head: number } {
  return orientation === "layer_x" ? { layer: col, head: nHeads - 1 - row } : { layer: row, head: col };
}

/** Row of the row-axis tick labelled `value` (a layer in layer_y, a head in layer_x). */
export function rowOfTick(orientation: Orientation, value: number, rows: number): number {
  return orientation === "layer_x" ? rows - 1 - value : value;
}

/** Axis titles (row axis, column axis): figure A's "Layer"/"Head", figure B's "head"/"layer". */
export function axisNames(orientation: Orientation): { row: string; col: string } {
  return orientation === "layer_x" ? { row: "head", col: "layer" } : { row: "Layer", col: "Head" };
}

export interface Rect {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** Cell under the point (x, y) relative to the canvas, or null outside the plot. */
export function cellAt(plot: Rect, rows: number, cols: number, x: number, y: number): { row: number; col: number } | null {
  const fx = (x - plot.left) / plot.width;
  const fy = (y - plot.top) / plot.height;
  if (!(fx >= 0 && fx < 1 && fy >= 0 && fy < 1)) return null;
  return { row: Math.min(rows - 1, Math.floor(fy * rows)), col: Math.min(cols - 1, Math.floor(fx * cols)) };
}

/** Rectangle of a cell relative to the canvas. */
export function cellRect(plot: Rect, rows: number, cols: number, row: number, col: number): Rect {
  const w = plot.width / cols;
  const h = plot.height / rows;
  return { left: plot.left + col * w, top: plot.top + row * h, width: w, height: h };
}

/** Columns of the small-multiples grid: the trait when > 0, else 4 (fewer when there are fewer panels). */
export function autoColumns(nPanels: number, gridColumns: number, auto = 4): number {
  const c = gridColumns > 0 ? Math.floor(gridColumns) : auto;
  return Math.max(1, Math.min(c, Math.max(1, nPanels)));
}

export interface PanelBox {
  index: number;
  gridRow: number;
  gridCol: number;
  /** top-left of the panel (title + canvas) in the grid container */
  x: number;
  y: number;
  /** title block height above the canvas */
  titleHeight: number;
  canvasWidth: number;
  canvasHeight: number;
  /** cell area relative to the canvas */
  plot: Rect;
  showRowLabel: boolean;
  showColLabel: boolean;
}

export interface GridLayout {
  width: number;
  height: number;
  columns: number;
  gridRows: number;
  cell: number;
  panels: PanelBox[];
  /** space reserved after column 0 of the first row (category legend), in container px */
  gutter: Rect | null;
  /** column at the right (shared colour bar), spanning the plots of all rows */
  side: Rect | null;
}

export interface GridOptions {
  /** available width in CSS px */
  width: number;
  nPanels: number;
  columns: number;
  rows: number;
  cols: number;
  /** width of the right column (colour bar); 0 for none */
  sideWidth?: number;
  /** width of a gutter after the first column (legend); 0 for none */
  gutterWidth?: number;
  /** extra right margin inside every canvas (per-task colour bar) */
  panelRight?: number;
  titleHeight?: number;
  maxCell?: number;
  /** the longer side of a plot may grow to this even past maxCell (tiny models stay readable) */
  minPlot?: number;
  maxPlotHeight?: number;
  /** digits of the largest tick label (sizes the left margin) */
  tickDigits?: number;
}

export const GAP_X = 14;
export const GAP_Y = 10;
const TICK_FONT_W = 6.6; // width of one digit at the 11px tick font
const AXIS_LABEL = 16; // room for a "Layer"/"Head" axis title

/** Margins of a panel canvas around its plot. */
export function panelMargins(showRowLabel: boolean, showColLabel: boolean, tickDigits: number, panelRight = 0) {
  return {
    left: Math.round(4 + tickDigits * TICK_FONT_W + 6) + (showRowLabel ? AXIS_LABEL : 0),
    right: 6 + panelRight,
    top: 5,
    bottom: 4 + 14 + (showColLabel ? AXIS_LABEL : 0),
  };
}

/**
 * Lay out `nPanels` square-celled heatmaps in `columns` columns. Only the first column carries the
 * row-axis title and only the bottom row the column-axis title (as in figure A); every plot has
 * the same size and cell size.
 */
export function gridLayout(o: GridOptions): GridLayout {
  const columns = Math.max(1, Math.min(o.columns, Math.max(1, o.nPanels)));
  const gridRows = Math.max(1, Math.ceil(o.nPanels / columns));
  const sideWidth = o.sideWidth ?? 0;
  const gutterWidth = o.gutterWidth ?? 0;
  const titleHeight = o.titleHeight ?? 34;
  const digits = o.tickDigits ?? 2;
  const inner = panelMargins(false, false, digits, o.panelRight ?? 0);
  const first = panelMargins(true, false, digits, o.panelRight ?? 0);
  const labelExtra = first.left - inner.left;
  const fixed =
    columns * (inner.left + inner.right) + labelExtra + (columns - 1) * GAP_X + (sideWidth ? sideWidth + GAP_X : 0) + (gutterWidth ? gutterWidth + GAP_X : 0);
  const avail = Math.max(o.cols * 2, o.width - fixed);
  let cell = avail / columns / o.cols;
  cell = Math.min(cell, Math.max(o.maxCell ?? 22, (o.minPlot ?? 0) / Math.max(o.rows, o.cols)));
  if (o.maxPlotHeight) cell = Math.min(cell, o.maxPlotHeight / o.rows);
  // whole (or half, i.e. whole device pixels at 2x) pixels keep cell edges crisp
  cell = cell >= 8 ? Math.floor(cell) : Math.floor(cell * 2) / 2;
  cell = Math.max(cell, 1);
  const plotW = cell * o.cols;
  const plotH = cell * o.rows;
  const panels: PanelBox[] = [];
  const colX: number[] = [];
  let x = 0;
  for (let c = 0; c < columns; c++) {
    colX.push(x);
    const m = panelMargins(c === 0, false, digits, o.panelRight ?? 0);
    x += m.left + plotW + m.right + GAP_X;
    if (c === 0 && gutterWidth) x += gutterWidth + GAP_X;
  }
  const gridWidth = x - GAP_X;
  let y = 0;
  const rowY: number[] = [];
  for (let r = 0; r < gridRows; r++) {
    rowY.push(y);
    const m = panelMargins(false, r === gridRows - 1, digits);
    y += titleHeight + m.top + plotH + m.bottom + GAP_Y;
  }
  const gridHeight = y - GAP_Y;
  for (let i = 0; i < o.nPanels; i++) {
    const r = Math.floor(i / columns);
    const c = i % columns;
    // the bottom row of each column carries the column-axis title
    const lastInColumn = i + columns >= o.nPanels;
    const m = panelMargins(c === 0, lastInColumn, digits, o.panelRight ?? 0);
    panels.push({
      index: i,
      gridRow: r,
      gridCol: c,
      x: colX[c],
      y: rowY[r],
      titleHeight,
      canvasWidth: m.left + plotW + m.right,
      canvasHeight: m.top + plotH + m.bottom,
      plot: { left: m.left, top: m.top, width: plotW, height: plotH },
      showRowLabel: c === 0,
      showColLabel: lastInColumn,
    });
  }
  const plotTop = titleHeight + inner.top;
  const gutter = gutterWidth
    ? { left: colX[0] + first.left + plotW + first.right + GAP_X, top: plotTop, width: gutterWidth, height: plotH }
    : null;
  const lastRowTop = rowY[gridRows - 1];
  const side = sideWidth
    ? { left: gridWidth + GAP_X, top: plotTop, width: sideWidth, height: lastRowTop + plotTop + plotH - plotTop }
    : null;
  return {
    width: gridWidth + (sideWidth ? sideWidth + GAP_X : 0),
    height: gridHeight,
    columns,
    gridRows,
    cell,
    panels,
    gutter,
    side,
  };
}

/** Most characters of a name that layout ever measures: no panel shows more, and a longer one
 * (a 100k-character task name) is cut to this first, with "…", so layout time stays bounded. */
export const MAX_LAYOUT_CHARS = 1000;

/** `text` cut to at most `max` UTF-16 units (never inside a surrogate pair), with "…" when cut. */
export function clipText(text: string, max = MAX_LAYOUT_CHARS): string {
  if (text.length <= max) return text;
  return `${text.slice(0, pairSafe(text, max))}…`;
}

/** `n`, or one less where the first `n` units of `text` would end inside a surrogate pair. */
function pairSafe(text: string, n: number): number {
  const c = text.charCodeAt(n - 1);
  return n > 0 && c >= 0xd800 && c <= 0xdbff ? n - 1 : n;
}

/**
 * `text` cut to fit `width`, ending in "…" when cut. O(log n) calls of `measure`, none on more
 * than twice the cut's length (plus one on the whole text when it may fit): the cut is found by
 * doubling a prefix until it overflows, then by bisection (widths grow with the prefix).
 */
export function ellipsize(text: string, width: number, measure: (s: string) => number): string {
  let hi = 64;
  while (hi < text.length && measure(text.slice(0, hi)) <= width) hi *= 2;
  if (hi >= text.length && measure(text) <= width) return text;
  // the longest prefix of at most min(hi, length - 1) units that fits with its "…" (0 if none)
  const fits = (n: number) => measure(`${text.slice(0, n)}…`) <= width;
  let lo = 0;
  hi = Math.min(hi, text.length - 1);
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fits(mid)) lo = mid;
    else hi = mid - 1;
  }
  return `${text.slice(0, pairSafe(text, lo)).trimEnd()}…`;
}

/**
 * Greedy wrapping at spaces to `width`, never inside a word: a word wider than a line is cut
 * with "…", and text past `maxLines` lines ends the last line with "…" (the full text goes in a
 * tooltip). `measure` gives the width of a string. Text past MAX_LAYOUT_CHARS is cut first.
 */
export function wrapText(text: string, width: number, measure: (s: string) => number, maxLines = 3): string[] {
  const words = clipText(text).split(/\s+/).filter(Boolean);
  const lines: string[] = [];
  let line = "";
  let cut = false;
  for (const word of words) {
    const candidate = line ? `${line} ${word}` : word;
    if (measure(candidate) <= width) {
      line = candidate;
      continue;
    }
    if (line) lines.push(line);
    line = ellipsize(word, width, measure);
    if (lines.length >= maxLines) {
      cut = true;
      break;
    }
  }
  if (!cut && (line || !lines.length)) lines.push(line);
  if (lines.length > maxLines || cut) {
    lines.length = Math.min(lines.length, maxLines);
    lines[maxLines - 1] = ellipsize(`${lines[maxLines - 1]}…`, width, measure).replace(/……$/, "…");
  }
  return lines;
}

/** Number of lines `wrapText` gives. */
export function wrapLines(text: string, width: number, measure: (s: string) => number, maxLines = 3): number {
  return wrapText(text, width, measure, maxLines).length;
}

/** The cells a zoomed panel shows: rows r0.. and columns c0.. of the full grid. */
export interface CellWindow {
  r0: number;
  c0: number;
  rows: number;
  cols: number;
}

/**
 * `w` zoomed by `factor` (< 1 in, > 1 out) around the pointer at fractions (fy, fx) of the
 * plot, whose point of the grid stays under it; rows and columns scale alike, so cells stay
 * about square; never fewer than `minCells` a side, never past the grid. Null: the whole grid.
 */
export function zoomWindow(
  w: CellWindow | null,
  full: { rows: number; cols: number },
  fy: number,
  fx: number,
  factor: number,
  minCells = 4,
): CellWindow | null {
  const cur = w ?? { r0: 0, c0: 0, rows: full.rows, cols: full.cols };
  const size = (n: number, total: number) => Math.min(total, Math.max(Math.min(minCells, total), Math.round(n * factor)));
  const rows = size(cur.rows, full.rows);
  const cols = size(cur.cols, full.cols);
  if (rows >= full.rows && cols >= full.cols) return null;
  // the pointer's place in grid cells, before and after
  const start = (s0: number, n0: number, f: number, n: number, total: number) => Math.min(total - n, Math.max(0, Math.round(s0 + f * n0 - f * n)));
  return { r0: start(cur.r0, cur.rows, fy, rows, full.rows), c0: start(cur.c0, cur.cols, fx, cols, full.cols), rows, cols };
}

/** `w` moved as little as possible so that cell (row, col) is inside it. */
export function windowShowing(w: CellWindow, row: number, col: number): CellWindow {
  const shift = (start: number, n: number, cell: number) => (cell < start ? cell : cell >= start + n ? cell - n + 1 : start);
  return { ...w, r0: shift(w.r0, w.rows, row), c0: shift(w.c0, w.cols, col) };
}

/** The cell (of a plot showing rows x cols cells) nearest to (x, y): inside the plot, the cell
 * under it; outside, the cell on the edge (a box-zoom drag may leave the plot). */
export function clampedCell(plot: Rect, rows: number, cols: number, x: number, y: number): { row: number; col: number } {
  const at = (f: number, n: number) => Math.min(n - 1, Math.max(0, Math.floor(f * n)));
  return { row: at((y - plot.top) / plot.height, rows), col: at((x - plot.left) / plot.width, cols) };
}

/**
 * Box zoom: the window showing the cells from `a` to `b` (corners, either order, in cells of
 * the full grid), at least `minCells` a side (grown around the box's middle, within the grid).
 * Null when that is the whole grid.
 */
export function boxWindow(
  a: { row: number; col: number },
  b: { row: number; col: number },
  full: { rows: number; cols: number },
  minCells = 2,
): CellWindow | null {
  const side = (p: number, q: number, total: number): [number, number] => {
    let lo = Math.max(0, Math.min(p, q));
    let n = Math.min(total, Math.max(p, q)) - lo + 1;
    const want = Math.min(total, minCells);
    if (n < want) {
      lo = Math.min(total - want, Math.max(0, Math.round(lo + n / 2 - want / 2)));
      n = want;
    }
    return [lo, n];
  };
  const [r0, rows] = side(a.row, b.row, full.rows);
  const [c0, cols] = side(a.col, b.col, full.cols);
  if (rows >= full.rows && cols >= full.cols) return null;
  return { r0, c0, rows, cols };
}

/** The rectangle (canvas px) covering the cells from `a` to `b` (cells of the full grid) in a
 * plot showing window `w`; the box-zoom band. */
export function cellSpanRect(plot: Rect, w: CellWindow, a: { row: number; col: number }, b: { row: number; col: number }): Rect {
  const top = cellRect(plot, w.rows, w.cols, Math.min(a.row, b.row) - w.r0, Math.min(a.col, b.col) - w.c0);
  const end = cellRect(plot, w.rows, w.cols, Math.max(a.row, b.row) - w.r0, Math.max(a.col, b.col) - w.c0);
  return { left: top.left, top: top.top, width: end.left + end.width - top.left, height: end.top + end.height - top.top };
}
