// How sure each map is (pure): the twin of headwidget/views/uncertainty.py. Significance codes,
// which tasks the category overlay counts, the reliability notes of panel titles, the tooltip's
// interval.
import type { TaskInfo } from "./data";
import { formatValue } from "./scale";

/** Significance codes, one uint8 per cell (the `significant` trait). */
export const NOT_SIGNIFICANT = 0;
export const SIGNIFICANT = 1;
export const UNTESTED = 2;
/** The false discovery rate of the significance marks, per task (views/uncertainty.py ALPHA). */
export const ALPHA = 0.05;
/** A 95 % interval is the value ± this many standard errors. */
export const INTERVAL_Z = 1.96;
export const MIN_RELIABILITY = 0.7;

export type CategoriesFrom = "all" | "reliable";

const known = (x: number | null | undefined): x is number => typeof x === "number" && Number.isFinite(x);

/**
 * Which tasks the category overlay counts: all, or with "reliable" all but those whose reliability
 * is below `minReliability` (marked noisy) or whose clean accuracy is below `minAccuracy` (marked
 * fails). Unknown reliability or accuracy counts.
 */
export function countedTasks(
  tasks: readonly Pick<TaskInfo, "reliability" | "accuracy">[],
  from: CategoriesFrom,
  minReliability: number,
  minAccuracy: number,
): boolean[] {
  if (from === "all") return tasks.map(() => true);
  return tasks.map((t) => !(known(t.reliability) && t.reliability < minReliability) && !(known(t.accuracy) && t.accuracy < minAccuracy));
}

/** The reliability line of a task panel's title, and whether it is marked noisy. */
export function reliabilityNote(reliability: number | null, minReliability: number): { text: string; noisy: boolean } {
  if (!known(reliability)) return { text: "", noisy: false };
  const r = reliability.toFixed(2);
  return reliability < minReliability ? { text: `noisy: add examples · r = ${r}`, noisy: true } : { text: `r = ${r}`, noisy: false };
}

function span(reliability: readonly (number | null)[]): string {
  const rs = reliability.filter(known).sort((a, b) => a - b).map((r) => r.toFixed(2));
  if (!rs.length) return "";
  return rs[0] === rs[rs.length - 1] ? `r = ${rs[0]}` : `r = ${rs[0]}–${rs[rs.length - 1]}`;
}

/**
 * The reliability line of a category panel over its tasks: "r = 0.71–0.93"; "noisy: 1 of 3 maps ·
 * r = …" (marked) when some map is below `minReliability`; with "reliable", "r = … · 1 of 3 left
 * out" over the counted tasks ("all 3 maps left out", marked, when none is counted).
 */
export function groupReliabilityNote(
  reliability: readonly (number | null)[],
  counted: readonly boolean[],
  minReliability: number,
  from: CategoriesFrom,
): { text: string; noisy: boolean } {
  const n = reliability.length;
  if (!reliability.some(known)) return { text: "", noisy: false };
  const maps = n === 1 ? "map" : "maps";
  if (from === "reliable") {
    const left = counted.filter((c) => !c).length;
    if (left === n) return { text: `${n === 1 ? "its map" : `all ${n} maps`} left out`, noisy: true };
    const s = span(reliability.filter((_, i) => counted[i]));
    if (!left) return { text: s, noisy: false };
    return { text: [s, `${left} of ${n} left out`].filter(Boolean).join(" · "), noisy: false };
  }
  const s = span(reliability);
  const noisy = reliability.filter((r) => known(r) && r < minReliability).length;
  return noisy ? { text: `noisy: ${noisy} of ${n} ${maps} · ${s}`, noisy: true } : { text: s, noisy: false };
}

/** "± 0.0012" for a standard error in raw units, shown in the units of the scale (share: divided by
 * the task's sum of |values|, `divisor`); "" when unknown. */
export function intervalText(sem: number, divisor: number): string {
  if (!Number.isFinite(sem)) return "";
  return `± ${formatValue((INTERVAL_Z * sem) / divisor)}`;
}

/** The title tooltip's reliability line: what r means and how many examples 0.9 needs. */
export function reliabilityTip(t: Pick<TaskInfo, "reliability" | "examplesNeeded">, nExamples: number | undefined, minReliability: number): string {
  if (!known(t.reliability)) return "";
  const bits = [`split-half reliability r = ${t.reliability.toFixed(2)}${nExamples ? ` over ${nExamples} examples` : ""}`];
  if (t.reliability < minReliability) bits.push(`below ${minReliability}: the map is mostly noise`);
  if (t.examplesNeeded != null) bits.push(`about ${t.examplesNeeded} examples for r = 0.9`);
  return bits.join("; ");
}

/** Heads of a panel of `tasks` marked "not significant": tested in some and significant in none
 * (1 per head, flat [n_layers * n_heads]); `any` says whether some head is marked. */
export function panelUnmarked(sig: Uint8Array, size: number, tasks: readonly number[], out: Uint8Array): boolean {
  let any = false;
  for (let i = 0; i < size; i++) {
    let tested = false;
    let significant = false;
    for (const t of tasks) {
      const c = sig[t * size + i];
      if (c !== UNTESTED) tested = true;
      if (c === SIGNIFICANT) significant = true;
    }
    const marked = tested && !significant;
    out[i] = marked ? 1 : 0;
    any ||= marked;
  }
  return any;
}
