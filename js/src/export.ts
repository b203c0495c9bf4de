// Export of the current view: PNG at 1x-3x or SVG (vector text, axes and marks), drawn by the
// same code as the panels, without the hover and selection marks, with the provenance line.
import { categoryColors, legendLabels } from "./categories";
import { LUT_SIZE } from "./colormap";
import type { View } from "./context";
import { fileSlug, h, measurer } from "./dom";
import { drawPanel } from "./draw";
import { keyItems } from "./key";
import { wrapText } from "./layout";
import { colorbarScale, lutStrip, tickY } from "./legend";
import { drawRoleLegend, LEGEND_LINE } from "./role-draw";
import { COUNT_FONT, COUNT_LINE, gridHeight, LEGEND_ROW, TITLE_FONT, TITLE_LINE } from "./panels";
import { SvgContext } from "./svg";
import { provenanceLine } from "./units";

export type ExportFormat = "png" | "svg";

const PAD = 12;
const NOTE_LINE = 15;

/** Lines above the grid: title, provenance, key (wrapped to the export's width). */
function headerLines(v: View, width: number): { title: string; notes: string[] } {
  const measure = measurer(v.doc, `11.5px ${v.theme.font}`, 6.4);
  const notes = [provenanceLine(v.traits.provenance), ...keyItems(v).map((k) => k.text)].filter(Boolean).flatMap((line) => wrapText(line, width, measure, 2));
  return { title: v.traits.title, notes };
}

/** Size in CSS px of the exported view. */
export function exportSize(v: View): { width: number; height: number } | null {
  if (!v.layout) return null;
  const width = v.layout.width + 2 * PAD;
  const { title, notes } = headerLines(v, v.layout.width);
  const roles = v.roles.shown.some(Boolean) ? LEGEND_LINE : 0;
  return { width, height: gridHeight(v) + 2 * PAD + (title ? 24 : 0) + notes.length * NOTE_LINE + roles + 8 };
}

/** Draw the export onto `ctx` (a canvas's or an SvgContext) at `scale` device px per CSS px. */
export function paintExport(v: View, ctx: CanvasRenderingContext2D, scale: number): void {
  const { layout, theme, colorbar } = v;
  const size = exportSize(v);
  if (!layout || !size) return;
  const reset = () => ctx.setTransform(scale, 0, 0, scale, 0, 0);
  reset();
  ctx.fillStyle = theme.bg;
  ctx.fillRect(0, 0, size.width, size.height);
  ctx.textBaseline = "top";
  ctx.textAlign = "left";
  let y = PAD;
  const { title, notes } = headerLines(v, layout.width);
  if (title) {
    ctx.fillStyle = theme.fg;
    ctx.font = `600 15px ${theme.font}`;
    ctx.fillText(title, PAD, y);
    y += 24;
  }
  ctx.fillStyle = theme.muted;
  ctx.font = `11.5px ${theme.font}`;
  for (const line of notes) {
    ctx.fillText(line, PAD, y);
    y += NOTE_LINE;
  }
  // the role glyphs' legend (the glyphs drawn, not only named)
  y += drawRoleLegend(v, ctx, PAD, y);
  reset();
  const ox = PAD;
  const oy = y + 8;
  for (const p of v.panels) {
    const { box } = p;
    reset();
    const cx = ox + box.x + box.plot.left + box.plot.width / 2;
    const titleLines = (p.wrap.querySelector(".hw-panel-title")?.textContent ?? p.name).split("\n");
    const small = Array.from(p.wrap.querySelectorAll<HTMLElement>(".hw-count, .hw-accuracy, .hw-reliability")).flatMap((e) =>
      (e.textContent ?? "").split("\n").map((line) => [line, e.classList.contains("hw-fails-badge") || e.classList.contains("hw-noisy-badge")] as const),
    );
    // bottom-aligned like the DOM title block
    let ty = oy + box.y + box.titleHeight - 2 - TITLE_LINE * titleLines.length - COUNT_LINE * small.length;
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    ctx.fillStyle = p.wrap.classList.contains("hw-fails") ? theme.muted : theme.fg;
    ctx.font = `${TITLE_FONT} ${theme.font}`;
    for (const line of titleLines) {
      ctx.fillText(line, cx, ty + 2);
      ty += TITLE_LINE;
    }
    ctx.font = `${COUNT_FONT} ${theme.font}`;
    for (const [line, fails] of small) {
      ctx.fillStyle = fails ? theme.error : theme.muted;
      ctx.fillText(line, cx, ty + 2);
      ty += COUNT_LINE;
    }
    drawPanel(v, p, { ctx, scale, x: ox + box.x, y: oy + box.y + box.titleHeight });
  }
  reset();
  const sc = colorbarScale(v);
  if (layout.side && colorbar && sc) {
    const s = layout.side;
    const x = ox + s.left;
    const top = oy + s.top;
    const strip = lutStrip(v.doc, v.traits.colormap);
    ctx.imageSmoothingEnabled = false;
    if (strip) ctx.drawImage(strip, 0, 0, 1, LUT_SIZE, x, top, 14, s.height);
    ctx.strokeStyle = theme.border;
    ctx.lineWidth = 1;
    ctx.strokeRect(x + 0.5, top + 0.5, 13, s.height - 1);
    ctx.fillStyle = theme.fg;
    ctx.strokeStyle = theme.fg;
    ctx.font = `11px ${theme.font}`;
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    ctx.beginPath();
    for (const t of colorbar.ticks) {
      const ty = top + tickY(t.value, sc, s.height);
      ctx.moveTo(x + 14, ty);
      ctx.lineTo(x + 18, ty);
      ctx.fillText(t.label, x + 22, ty);
    }
    ctx.stroke();
    ctx.save();
    ctx.translate(x + s.width - 8, top + s.height / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textAlign = "center";
    ctx.font = `12px ${theme.font}`;
    ctx.fillText(colorbar.title.textContent ?? "", 0, 0);
    ctx.restore();
  }
  if (layout.gutter) {
    const g = layout.gutter;
    const names = v.thresh.classes?.names ?? [];
    const colors = categoryColors(names, theme.dark);
    ctx.font = `12px ${theme.font}`;
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    legendLabels(names).forEach((label, k) => {
      const ly = oy + g.top + 2 + k * LEGEND_ROW;
      ctx.fillStyle = colors.get(label) ?? theme.muted;
      ctx.fillRect(ox + g.left, ly, 12, 12);
      ctx.fillStyle = theme.fg;
      ctx.fillText(label, ox + g.left + 18, ly + 6);
    });
  }
}

/** The view on a canvas at `scale` (2 or 3 for print), or null when nothing is shown. */
export function exportCanvas(v: View, scale: number): HTMLCanvasElement | null {
  const size = exportSize(v);
  if (!size) return null;
  const out = v.doc.createElement("canvas");
  out.width = Math.round(size.width * scale);
  out.height = Math.round(size.height * scale);
  const ctx = out.getContext?.("2d") as CanvasRenderingContext2D | null;
  if (!ctx) return null;
  paintExport(v, ctx, scale);
  return out;
}

/** The view as an SVG document (text, axes and marks as vectors; cells as embedded images). */
export function exportSvg(v: View): string | null {
  const size = exportSize(v);
  if (!size) return null;
  const svg = new SvgContext(size.width, size.height);
  paintExport(v, svg as unknown as CanvasRenderingContext2D, 1);
  return svg.toString();
}

/** Offer `url` as a download named `name`. */
function download(v: View, name: string, url: string, revoke: boolean) {
  const a = h(v.doc, "a", { download: name, href: url });
  a.style.display = "none";
  v.root.append(a);
  a.click();
  a.remove();
  if (revoke) setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** Download the view as headwidget-<tab>.png (at `scale`) or .svg. */
export function exportView(v: View, format: ExportFormat, scale = 2): void {
  const name = `headwidget-${fileSlug(v.activeTab)}.${format}`;
  if (format === "svg") {
    const text = exportSvg(v);
    if (text) download(v, name, URL.createObjectURL(new Blob([text], { type: "image/svg+xml" })), true);
    return;
  }
  const out = exportCanvas(v, scale);
  if (!out) return;
  if (out.toBlob) out.toBlob((blob) => (blob ? download(v, name, URL.createObjectURL(blob), true) : download(v, name, out.toDataURL("image/png"), false)), "image/png");
  else download(v, name, out.toDataURL("image/png"), false);
}
