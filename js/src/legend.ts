// The shared colour bar (and the per-task mini bars) and the category legend.
import { categoryColors, legendLabels } from "./categories";
import { lut, LUT_SIZE, type ColormapName } from "./colormap";
import type { Panel, View } from "./context";
import type { ColorScale } from "./data";
import { h } from "./dom";
import type { GridLayout } from "./layout";
import { colorbarTicks } from "./scale";
import { roleScale } from "./roles";
import { colorbarTitle } from "./units";

/** y of value `v` on a bar of height `H` for scale `s` (top = vmax), at a pixel centre. */
export function tickY(v: number, s: ColorScale, H: number): number {
  const f = (v - s.vmin) / (s.vmax - s.vmin || 1);
  return Math.round((1 - Math.min(1, Math.max(0, f))) * (H - 1)) + 0.5;
}

export function buildColorbar(v: View, lay: GridLayout): void {
  const { doc, dpr } = v;
  const side = lay.side!;
  const wrap = h(doc, "div", { class: "hw-side" });
  wrap.style.left = `${side.left}px`;
  wrap.style.top = `${side.top}px`;
  wrap.style.height = `${side.height}px`;
  wrap.style.width = `${side.width}px`;
  const canvas = h(doc, "canvas", { class: "hw-colorbar", role: "img" });
  canvas.width = Math.round(20 * dpr);
  canvas.height = Math.round(side.height * dpr);
  canvas.style.width = "20px";
  canvas.style.height = `${side.height}px`;
  const labels = h(doc, "div", { class: "hw-colorbar-labels" });
  const title = h(doc, "div", { class: "hw-colorbar-title" });
  wrap.append(canvas, labels, title);
  v.grid.append(wrap);
  v.colorbar = { canvas, labels, title, ticks: [] };
}

export function buildLegend(v: View, lay: GridLayout): void {
  const { doc } = v;
  const g = lay.gutter!;
  const names = v.thresh.classes?.names ?? [];
  const legend = h(doc, "div", { class: "hw-legend", role: "list", "aria-label": "Category colours" });
  legend.style.left = `${g.left}px`;
  legend.style.top = `${g.top}px`;
  legend.style.width = `${g.width}px`;
  const colors = categoryColors(names, v.theme.dark);
  for (const label of legendLabels(names)) {
    const item = h(doc, "div", { class: "hw-legend-item", role: "listitem" });
    const sw = h(doc, "span", { class: "hw-swatch", "aria-hidden": "true" });
    sw.style.background = colors.get(label) ?? "";
    item.append(sw, h(doc, "span", { class: "hw-legend-label" }, label));
    item.dataset.label = label;
    legend.append(item);
  }
  v.grid.append(legend);
}

/** 1 x LUT_SIZE canvases of the colormaps, high values at the top (drawImage scales them). */
const strips = new WeakMap<Document, Map<ColormapName, HTMLCanvasElement | null>>();
export function lutStrip(doc: Document, name: ColormapName): HTMLCanvasElement | null {
  let cache = strips.get(doc);
  if (!cache) strips.set(doc, (cache = new Map()));
  if (cache.has(name)) return cache.get(name)!;
  const c = doc.createElement("canvas");
  c.width = 1;
  c.height = LUT_SIZE;
  const cx = c.getContext?.("2d") as CanvasRenderingContext2D | null;
  let strip: HTMLCanvasElement | null = null;
  if (cx) {
    const img = cx.createImageData(1, LUT_SIZE);
    const t = lut(name);
    for (let i = 0; i < LUT_SIZE; i++) {
      const k = LUT_SIZE - 1 - i;
      img.data.set([t[k * 3], t[k * 3 + 1], t[k * 3 + 2], 255], i * 4);
    }
    cx.putImageData(img, 0, 0);
    strip = c;
  }
  cache.set(name, strip);
  return strip;
}

/** The scale the shared colour bar shows: the first task's, or on the Roles tab the roles'. */
export function colorbarScale(v: View): ColorScale | undefined {
  return v.activeTab === "roles" && v.roles.names.length ? roleScale(v.roles) : v.scale.scales[0];
}

export function drawColorbar(v: View): void {
  const { colorbar, dpr, theme } = v;
  const s = colorbarScale(v);
  if (!colorbar || !s) return;
  const { canvas, labels } = colorbar;
  const H = canvas.height / dpr;
  const { ticks } = colorbarTicks(s.vmin, s.vmax, s.clippedTop, Math.max(2, Math.min(9, Math.floor(H / 26))));
  colorbar.ticks = ticks;
  colorbar.title.textContent = v.activeTab === "roles" ? `Role score (${v.roles.units})` : colorbarTitle(v.traits.normalization, v.traits.provenance.metric);
  const ctx = canvas.getContext?.("2d") as CanvasRenderingContext2D | null;
  if (ctx) {
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const strip = lutStrip(v.doc, v.traits.colormap);
    ctx.imageSmoothingEnabled = false;
    if (strip) ctx.drawImage(strip, 0, 0, 1, LUT_SIZE, 0, 0, 14, H);
    ctx.strokeStyle = theme.border;
    ctx.lineWidth = 1;
    ctx.strokeRect(0.5, 0.5, 13, H - 1);
    ctx.strokeStyle = theme.fg;
    ctx.beginPath();
    for (const t of ticks) {
      const y = tickY(t.value, s, H);
      ctx.moveTo(14, y);
      ctx.lineTo(18, y);
    }
    ctx.stroke();
  }
  labels.replaceChildren(
    ...ticks.map((t) => {
      const span = h(v.doc, "span", { class: "hw-colorbar-label" }, t.label);
      span.style.top = `${tickY(t.value, s, H)}px`;
      return span;
    }),
  );
  canvas.setAttribute("aria-label", `colour scale from ${ticks[0]?.label} to ${ticks[ticks.length - 1]?.label}`);
}

/** The small colour bar at the right of a task panel (color_range "per_task"). */
export function drawMiniBar(v: View, p: Panel, ctx: CanvasRenderingContext2D): void {
  const { theme } = v;
  const s = v.scale.scales[p.task];
  const { plot } = p.box;
  const x = plot.left + plot.width + 8;
  const strip = lutStrip(v.doc, v.traits.colormap);
  if (strip) ctx.drawImage(strip, 0, 0, 1, LUT_SIZE, x, plot.top, 7, plot.height);
  ctx.strokeStyle = theme.border;
  ctx.strokeRect(x - 0.5, plot.top - 0.5, 8, plot.height + 1);
  const { ticks } = colorbarTicks(s.vmin, s.vmax, s.clippedTop, 2);
  ctx.fillStyle = theme.fg;
  ctx.font = `10px ${theme.font}`;
  ctx.textAlign = "left";
  ctx.textBaseline = "top";
  ctx.fillText(ticks[ticks.length - 1].label, x + 10, plot.top);
  ctx.textBaseline = "bottom";
  ctx.fillText(ticks[0].label, x + 10, plot.top + plot.height);
}
