// Export of the current view as an image file.
import { categoryColors, legendLabels } from "./categories";
import type { View } from "./context";
import { fileSlug, h, measurer } from "./dom";
import { wrapText } from "./layout";
import { tickY } from "./legend";
import { COUNT_FONT, COUNT_LINE, gridHeight, LEGEND_ROW, TITLE_FONT, TITLE_LINE } from "./panels";

/** The view drawn onto one canvas: title, panels with their titles and counts, colour bar, legend. */
export function exportCanvas(v: View): HTMLCanvasElement | null {
  const { layout, doc, dpr, theme, colorbar } = v;
  if (!layout) return null;
  const pad = 12;
  const titleText = v.traits.title;
  const headH = titleText ? 26 : 0;
  const out = doc.createElement("canvas");
  const W = layout.width + 2 * pad;
  const H = gridHeight(v) + 2 * pad + headH;
  out.width = Math.round(W * dpr);
  out.height = Math.round(H * dpr);
  const ctx = out.getContext?.("2d") as CanvasRenderingContext2D | null;
  if (!ctx) return null;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.fillStyle = theme.bg;
  ctx.fillRect(0, 0, W, H);
  ctx.fillStyle = theme.fg;
  ctx.textBaseline = "top";
  if (titleText) {
    ctx.font = `600 15px ${theme.font}`;
    ctx.textAlign = "left";
    ctx.fillText(titleText, pad, pad);
  }
  const ox = pad;
  const oy = pad + headH;
  const titleW = measurer(doc, `${TITLE_FONT} ${theme.font}`, 7.6);
  const countW = measurer(doc, `${COUNT_FONT} ${theme.font}`, 6.2);
  for (const p of v.panels) {
    const { box } = p;
    const cx = ox + box.x + box.plot.left + box.plot.width / 2;
    const titleLines = wrapText(p.name, box.plot.width, titleW);
    const countLines = p.countEl ? wrapText(p.countEl.textContent ?? "", box.plot.width, countW) : [];
    // bottom-aligned like the DOM title block
    let y = oy + box.y + box.titleHeight - 2 - TITLE_LINE * titleLines.length - COUNT_LINE * countLines.length;
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    ctx.fillStyle = theme.fg;
    ctx.font = `${TITLE_FONT} ${theme.font}`;
    for (const line of titleLines) {
      ctx.fillText(line, cx, y + 2);
      y += TITLE_LINE;
    }
    ctx.fillStyle = theme.muted;
    ctx.font = `${COUNT_FONT} ${theme.font}`;
    for (const line of countLines) {
      ctx.fillText(line, cx, y + 2);
      y += COUNT_LINE;
    }
    ctx.drawImage(p.canvas, ox + box.x, oy + box.y + box.titleHeight, box.canvasWidth, box.canvasHeight);
  }
  if (layout.side && colorbar) {
    const s = layout.side;
    const Hs = s.height;
    ctx.drawImage(colorbar.canvas, ox + s.left, oy + s.top, 20, Hs);
    ctx.fillStyle = theme.fg;
    ctx.font = `11px ${theme.font}`;
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    const sc = v.scale.scales[0];
    for (const t of colorbar.ticks) ctx.fillText(t.label, ox + s.left + 22, oy + s.top + tickY(t.value, sc, Hs));
    ctx.save();
    ctx.translate(ox + s.left + s.width - 8, oy + s.top + Hs / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textAlign = "center";
    ctx.font = `12px ${theme.font}`;
    ctx.fillText(colorbar.title.textContent ?? "", 0, 0);
    ctx.restore();
  }
  if (layout.gutter) {
    const g = layout.gutter;
    const names = v.thresh.classes?.names ?? [];
    const colors = categoryColors(names);
    ctx.font = `12px ${theme.font}`;
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    legendLabels(names).forEach((label, k) => {
      const y = oy + g.top + 2 + k * LEGEND_ROW;
      ctx.fillStyle = colors.get(label) ?? theme.muted;
      ctx.fillRect(ox + g.left, y, 12, 12);
      ctx.fillStyle = theme.fg;
      ctx.fillText(label, ox + g.left + 18, y + 6);
    });
  }
  return out;
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

export function exportPng(v: View): void {
  const out = exportCanvas(v);
  if (!out) return;
  const name = `headwidget-${fileSlug(v.activeTab)}.png`;
  if (out.toBlob) out.toBlob((blob) => (blob ? download(v, name, URL.createObjectURL(blob), true) : download(v, name, out.toDataURL("image/png"), false)), "image/png");
  else download(v, name, out.toDataURL("image/png"), false);
}
