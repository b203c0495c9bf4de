// Per-task cutoffs, pass counts and ranks (pure). Same rule as headwidget/views/categories.py.
import { upperBound } from "./scale";

/** "significant": heads whose cell is significant and at or above the value threshold. */
export type ThresholdMode = "value" | "top_percent" | "significant";

/** Heads in the top `topPercent` % of `nValid`: max(1, ceil(p * n / 100)), multiplying first. */
export function topK(topPercent: number, nValid: number): number {
  return Math.max(1, Math.ceil((topPercent * nValid) / 100));
}

/**
 * Cutoff of each task from its ascending non-NaN values: `threshold` in value (and significant)
 * mode, the k-th largest value in top_percent mode (+Infinity for a task without any value).
 */
export function taskCutoffs(
  sorted: readonly Float32Array[],
  mode: ThresholdMode,
  threshold: number,
  topPercent: number,
): Float64Array {
  const out = new Float64Array(sorted.length);
  for (let t = 0; t < sorted.length; t++) {
    const s = sorted[t];
    if (mode === "top_percent") {
      out[t] = s.length ? s[s.length - Math.min(s.length, topK(topPercent, s.length))] : Infinity;
    } else {
      out[t] = threshold;
    }
  }
  return out;
}

/** 1 + number of strictly larger values: 1 = most important; 0 for NaN. */
export function rankOf(sorted: Float32Array, v: number): number {
  if (Number.isNaN(v)) return 0;
  return sorted.length - upperBound(sorted, v) + 1;
}

// ---- value-mode slider scale --------------------------------------------------------------------
// Share-normalized scores have a few heads far above the useful thresholds (0.0005-0.01 when the
// top head is 0.1), so the slider is not linear in the threshold: its top is the colour scale's
// top (vmax, the same number the colour bar ends at) and its position follows the signed square
// root of the threshold, which spends half the travel on the lowest quarter of the range. The
// `threshold` trait always holds the threshold itself, never the slider position.

/** Slider positions run over the integers 0..SLIDER_STEPS (arrow keys move one step). */
export const SLIDER_STEPS = 1000;

export interface SliderRange {
  /** threshold at position 0: 0, or a negative value for signed scores (never below -hi) */
  lo: number;
  /** threshold at position SLIDER_STEPS: the colour scale's top */
  hi: number;
}

/**
 * The value-mode slider's range: top = the colour scale's `vmax` (falling back to the largest
 * |value|, then 1, when that is not positive); bottom = min(0, data min) but not below -top.
 */
export function sliderRange(vmax: number, dataMin: number, dataMaxAbs: number): SliderRange {
  let hi = vmax;
  if (!(hi > 0 && Number.isFinite(hi))) hi = dataMaxAbs > 0 && Number.isFinite(dataMaxAbs) ? dataMaxAbs : 1;
  const lo = Number.isFinite(dataMin) ? Math.max(-hi, Math.min(0, dataMin)) : 0;
  return { lo, hi };
}

/** Signed square root of t / hi: 0 -> 0, hi -> 1, monotonic. */
function warp(t: number, hi: number): number {
  return Math.sign(t) * Math.sqrt(Math.abs(t) / hi);
}

/** Slider position (0..SLIDER_STEPS, fractional, clamped) of a threshold. */
export function thresholdToPosition(t: number, r: SliderRange): number {
  if (Number.isNaN(t)) return 0;
  const a = warp(r.lo, r.hi);
  const f = (warp(Math.min(r.hi, Math.max(r.lo, t)), r.hi) - a) / (1 - a);
  return Math.min(SLIDER_STEPS, Math.max(0, f * SLIDER_STEPS));
}

/** Threshold at a slider position; the ends give exactly lo and hi. */
export function positionToThreshold(pos: number, r: SliderRange): number {
  if (!(pos > 0)) return r.lo;
  if (pos >= SLIDER_STEPS) return r.hi;
  const a = warp(r.lo, r.hi);
  const u = a + (pos / SLIDER_STEPS) * (1 - a);
  return Math.sign(u) * u * u * r.hi;
}

/** `v` to `digits` significant digits (monotonic), so that dragging gives readable thresholds. */
export function roundSignificant(v: number, digits = 3): number {
  if (v === 0 || !Number.isFinite(v)) return v;
  return Number(v.toPrecision(digits));
}

/** Threshold picked by dragging to `pos`: 3 significant digits inside, the exact ends. */
export function sliderThreshold(pos: number, r: SliderRange): number {
  const t = positionToThreshold(pos, r);
  return pos > 0 && pos < SLIDER_STEPS ? roundSignificant(t, 3) : t;
}

/** A number typed by the user ("0.001", "1e-3", ",5" with a decimal comma, "≥ 0.002", "5%"); null if invalid. */
export function parseTyped(text: string): number | null {
  let s = text.trim().replace(/^[≥>=\s]+/, "").replace(/%$/, "").trim();
  if (!s.includes(".")) s = s.replace(",", ".");
  if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(s)) return null;
  const v = Number(s);
  return Number.isFinite(v) ? v : null;
}

/** Text of a threshold in the number field: the value itself without float noise (0.1 + 0.2 -> "0.3"). */
export function formatExact(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  return String(Number(v.toPrecision(12)));
}
