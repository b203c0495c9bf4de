// Per-task cutoffs, pass counts and ranks (pure). Same rule as headwidget/categories.py.
import { lowerBound, upperBound } from "./scale";

export type ThresholdMode = "value" | "top_percent";

/** Heads in the top `topPercent` % of `nValid`: max(1, ceil(p * n / 100)), multiplying first. */
export function topK(topPercent: number, nValid: number): number {
  return Math.max(1, Math.ceil((topPercent * nValid) / 100));
}

/**
 * Cutoff of each task from its ascending non-NaN values: `threshold` in value mode, the k-th
 * largest value in top_percent mode (+Infinity for a task without any value).
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

/** Number of values >= cutoff (ties pass; NaN cutoff passes nothing). */
export function countPassing(sorted: Float32Array, cutoff: number): number {
  if (Number.isNaN(cutoff)) return 0;
  return sorted.length - lowerBound(sorted, cutoff);
}

/** 1 + number of strictly larger values: 1 = most important; 0 for NaN. */
export function rankOf(sorted: Float32Array, v: number): number {
  if (Number.isNaN(v)) return 0;
  return sorted.length - upperBound(sorted, v) + 1;
}
