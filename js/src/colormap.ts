// Colour look-up tables and value -> colour mapping (pure, no DOM).
import { COLORMAP_HEX } from "./colormap-data";

export const COLORMAP_NAMES = ["viridis", "magma", "cividis", "diverging"] as const;
export type ColormapName = (typeof COLORMAP_NAMES)[number];

/** Number of entries in every look-up table. */
export const LUT_SIZE = 256;

const cache = new Map<string, Uint8Array>();

export function isColormap(name: unknown): name is ColormapName {
  return typeof name === "string" && (COLORMAP_NAMES as readonly string[]).includes(name);
}

/** 256 RGB triples (flat, length 768), low to high. Unknown names fall back to viridis. */
export function lut(name: string): Uint8Array {
  const key = isColormap(name) ? name : "viridis";
  let table = cache.get(key);
  if (!table) {
    const hex = COLORMAP_HEX[key];
    table = new Uint8Array(LUT_SIZE * 3);
    for (let i = 0; i < LUT_SIZE * 3; i++) table[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
    cache.set(key, table);
  }
  return table;
}

/**
 * LUT index of `v` on the scale [vmin, vmax]: values outside are clipped to the end colours
 * (matplotlib's rule: floor(x * 256), with x = 1 mapping to the last entry). NaN gives -1.
 */
export function lutIndex(v: number, vmin: number, vmax: number): number {
  if (Number.isNaN(v)) return -1;
  const span = vmax - vmin;
  const x = span > 0 ? (v - vmin) / span : v >= vmax ? 1 : 0;
  if (!(x > 0)) return 0;
  if (x >= 1) return LUT_SIZE - 1;
  return Math.min(LUT_SIZE - 1, Math.floor(x * LUT_SIZE));
}

/** [r, g, b] of `#rgb` / `#rrggbb` / `rgb(a)(...)`; null when it cannot be parsed. */
export function parseColor(text: string): [number, number, number] | null {
  const s = text.trim().toLowerCase();
  let m = /^#([0-9a-f]{3})$/.exec(s);
  if (m) return [0, 1, 2].map((i) => parseInt(m![1][i] + m![1][i], 16)) as [number, number, number];
  m = /^#([0-9a-f]{6})([0-9a-f]{2})?$/.exec(s);
  if (m) return [0, 2, 4].map((i) => parseInt(m![1].slice(i, i + 2), 16)) as [number, number, number];
  m = /^rgba?\(\s*([\d.]+)[\s,]+([\d.]+)[\s,]+([\d.]+)/.exec(s);
  if (m) return [m[1], m[2], m[3]].map((c) => Math.round(Number(c))) as [number, number, number];
  return null;
}

/**
 * The LUT blended toward `bg` so that only `alpha` of the colour remains: used to dim heads
 * below the threshold while heads that pass keep their exact LUT colour.
 */
export function dimmedLut(table: Uint8Array, bg: [number, number, number], alpha: number): Uint8Array {
  const out = new Uint8Array(table.length);
  for (let i = 0; i < table.length; i++) {
    const b = bg[i % 3];
    out[i] = Math.round(b + (table[i] - b) * alpha);
  }
  return out;
}
