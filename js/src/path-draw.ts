// Drawing the paths between heads on a task's panel after its cells: one stroke per edge (no
// DOM node per edge), a dark halo under each, the strongest on top; with a head selected, the
// edges that do not touch it faded. The same code draws into an export (PNG or SVG).
import type { Panel, View } from "./context";
import { gridShape, type CellWindow } from "./layout";
import { arrowEnds, CHANNEL_STYLES, edgeColor, edgeWidth, HALO, logitsPoint, segmentDistance, touches, type ArrowEnds, type PathEdge } from "./paths";

const FADED = 0.18;

function arrowHead(ctx: CanvasRenderingContext2D, x0: number, y0: number, x1: number, y1: number, size: number): void {
  const a = Math.atan2(y1 - y0, x1 - x0);
  ctx.beginPath();
  ctx.moveTo(x1, y1);
  ctx.lineTo(x1 - size * Math.cos(a - 0.45), y1 - size * Math.sin(a - 0.45));
  ctx.lineTo(x1 - size * Math.cos(a + 0.45), y1 - size * Math.sin(a + 0.45));
  ctx.closePath();
}

function windowOf(v: View, p: Panel): CellWindow {
  const [, nL, nH] = v.data.shape;
  const full = gridShape(v.traits.orientation, nL, nH);
  return p.window ?? { r0: 0, c0: 0, rows: full.rows, cols: full.cols };
}

/** The panel's drawn edges with their arrows, strongest first (in a zoomed view, those with a
 * part inside it, cut at its border). */
export function panelArrows(v: View, p: Panel): { edge: PathEdge; ends: ArrowEnds; width: number }[] {
  if (p.kind !== "task") return [];
  const edges = v.paths.byTask.get(p.task);
  if (!edges?.length) return [];
  const w = windowOf(v, p);
  const [, nL, nH] = v.data.shape;
  const largest = Math.max(...edges.map((e) => Math.abs(e.effect)));
  const out = [];
  for (const edge of edges) {
    const ends = arrowEnds(v.traits.orientation, p.box.plot, w, nH, edge, nL);
    if (ends) out.push({ edge, ends, width: edgeWidth(edge.effect, largest) });
  }
  return out;
}

/** Draw a task panel's arrows (and the logits' marker) over its cells. */
export function drawArrows(v: View, p: Panel, ctx: CanvasRenderingContext2D): number {
  const arrows = panelArrows(v, p);
  if (!arrows.length) return 0;
  const sel = p.kind === "task" && (!v.traits.selectedTask || v.traits.selectedTask === p.name) ? v.traits.selection(v.data.shape[1], v.data.shape[2]) : null;
  const cell = Math.min(p.box.plot.width / windowOf(v, p).cols, p.box.plot.height / windowOf(v, p).rows);
  let logits = false;
  for (let k = arrows.length - 1; k >= 0; k--) {
    const { edge, ends, width } = arrows[k];
    const { x0, y0, x1, y1 } = ends;
    const style = CHANNEL_STYLES[edge.via];
    const head = Math.max(5, Math.min(cell * 0.45, 4 + 2 * width));
    // stop the line at the head's base, the head's tip at the receiver's centre; an arrow
    // leaving a zoomed view ends at its border without a head
    const len = Math.hypot(x1 - x0, y1 - y0) || 1;
    const back = ends.head ? Math.min(head * 0.8, len) : 0;
    const bx = x1 - ((x1 - x0) * back) / len;
    const by = y1 - ((y1 - y0) * back) / len;
    ctx.globalAlpha = sel && !touches(edge, sel.layer, sel.head) ? FADED : 1;
    for (const [color, lw] of [[HALO, width + 2], [edgeColor(edge.effect), width]] as const) {
      ctx.strokeStyle = color;
      ctx.lineWidth = lw;
      ctx.setLineDash(style.dash.map((d) => d * Math.max(1, width / 2)));
      ctx.beginPath();
      ctx.moveTo(x0, y0);
      ctx.lineTo(bx, by);
      ctx.stroke();
      ctx.setLineDash([]);
      if (!ends.head) continue;
      arrowHead(ctx, x0, y0, x1, y1, head);
      if (style.head === "filled" || color === HALO) {
        ctx.fillStyle = color;
        ctx.fill();
      }
      ctx.lineWidth = color === HALO ? 3 : 1.5;
      ctx.stroke();
    }
    logits ||= edge.receiver === null && ends.head; // the marker only where the view shows it
  }
  ctx.globalAlpha = 1;
  if (logits) {
    const { x, y } = logitsPoint(v.traits.orientation, p.box.plot);
    ctx.beginPath();
    ctx.moveTo(x, y - 5);
    ctx.lineTo(x + 5, y);
    ctx.lineTo(x, y + 5);
    ctx.lineTo(x - 5, y);
    ctx.closePath();
    ctx.fillStyle = "#ffffff";
    ctx.fill();
    ctx.strokeStyle = "#000000";
    ctx.lineWidth = 1.2;
    ctx.stroke();
  }
  ctx.lineWidth = 1;
  return arrows.length;
}

/** The edge under (x, y) (CSS px in the panel's canvas), the strongest when several are. */
export function edgeAt(v: View, p: Panel, x: number, y: number): PathEdge | null {
  for (const { edge, ends, width } of panelArrows(v, p)) if (segmentDistance(x, y, ends) <= Math.max(4, width / 2 + 2)) return edge;
  return null;
}
