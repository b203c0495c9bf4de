// Units and provenance in words: the colour bar's unit, the provenance line, the threshold in
// the other scale's units (pure).
import { normalize, type Normalization } from "./data";
import type { Provenance } from "./traits";

/** What one unit of a raw score is: the drop in the metric when the head is ablated. */
const METRIC_UNITS: ReadonlyMap<string, string> = new Map([
  ["logprob", "log-prob drop"],
  ["prob", "prob drop"],
  ["accuracy", "accuracy drop"],
  ["logit_diff", "logit-diff drop"],
]);

/** The unit of the values shown: a share of the task's total, or the metric's drop. */
export function unitText(normalization: Normalization, metric: string): string {
  if (normalization === "share") return "share of task";
  return METRIC_UNITS.get(metric) ?? (metric ? `${metric} drop` : "raw score");
}

export function colorbarTitle(normalization: Normalization, metric: string): string {
  return `Importance (${unitText(normalization, metric)})`;
}

/** Percent text of an accuracy in [0, 1]: 0.923 -> "92%". */
export function percentText(a: number): string {
  return `${Math.round(a * 100)}%`;
}

/** "SmolLM2 · ablation (mean) · metric logprob · 40 examples per task · 2026-12-02"; "" when
 * nothing is known. */
export function provenanceLine(p: Provenance): string {
  if (!p.known) return "";
  const parts: string[] = [];
  if (p.model) parts.push(p.model);
  parts.push(p.ablation ? `${p.method} (${p.ablation} ablation)` : p.method);
  if (p.metric) parts.push(`metric ${p.metric}`);
  const counts = Object.values(p.examples);
  if (counts.length) {
    const lo = Math.min(...counts);
    const hi = Math.max(...counts);
    parts.push(`${lo === hi ? lo : `${lo}–${hi}`} examples per task`);
  }
  if (p.date) parts.push(p.date);
  return parts.join(" · ");
}

/**
 * The threshold in `to` units that lets as many heads pass (over all tasks) as `threshold` does
 * in `from` units, so that switching the scale keeps the picture instead of the number. The
 * model side applies it (headwidget/views/widget.py `_convert_threshold`, and the saved page's model).
 */
export function convertThreshold(values: Float32Array, shape: readonly number[], threshold: number, from: Normalization, to: Normalization): number {
  if (from === to) return threshold;
  const before = normalize(values, shape, from);
  const after = normalize(values, shape, to);
  let passing = 0;
  const valid: number[] = [];
  for (let i = 0; i < before.length; i++) {
    if (before[i] >= threshold) passing++;
    if (after[i] === after[i]) valid.push(after[i]);
  }
  if (!valid.length) return threshold;
  valid.sort((a, b) => b - a);
  if (passing === 0) return valid[0] + Math.max(Math.abs(valid[0]) * 1e-3, 1e-12);
  return valid[Math.min(passing, valid.length) - 1];
}
