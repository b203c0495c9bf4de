// Derived state as pure functions of the traits: decoded data, colour scales, threshold classes.
import { categoryColors, classify, UNCLASSIFIED, UNCLASSIFIED_CODE, type Classification } from "./categories";
import { lutIndex, parseColor } from "./colormap";
import { colorScales, computeStats, normalize, taskSums, toFloat32, toTasks, toUint8, type ColorScale, type Normalization, type Stats, type TaskInfo } from "./data";
import { decimalsFor, formatPercent, formatSig, niceStep } from "./scale";
import { sliderRange, taskCutoffs, type SliderRange, type ThresholdMode } from "./threshold";
import type { ColorRange } from "./traits";
import { UNTESTED } from "./uncertainty";

/** The decoded scores: what the `values`, `shape` and `tasks` traits hold. */
export interface DataState {
  shape: [number, number, number];
  values: Float32Array<ArrayBufferLike>;
  tasks: TaskInfo[];
  /** values under the current normalization */
  norm: Float32Array<ArrayBufferLike>;
  stats: Stats | null;
  /** why nothing can be shown ("" when the data is fine) */
  error: string;
  /** 1 where a cell's value is exact, 0 where approximate; null when all are exact */
  exact: Uint8Array | null;
  /** cells with a value that is approximate */
  approximate: number;
  /** approximate values hidden (shown as "no value"; exact_only) */
  exactOnly: boolean;
  /** sum of |raw values| of each task: share = raw / sum */
  sums: number[];
  /** standard error of each cell's mean over examples, raw metric units (NaN unknown); null: none */
  sem: Float32Array<ArrayBufferLike> | null;
  /** significance code of each cell (uncertainty.ts: 1 significant, 0 not, 2 untested); null: none tested */
  sig: Uint8Array | null;
}

export const EMPTY_DATA: DataState = {
  shape: [0, 0, 0],
  values: new Float32Array(0),
  tasks: [],
  norm: new Float32Array(0),
  stats: null,
  error: "",
  exact: null,
  approximate: 0,
  exactOnly: false,
  sums: [],
  sem: null,
  sig: null,
};

/** The `sem` and `significant` traits (float32 / uint8 bytes, empty when unknown). */
export interface RawUncertainty {
  sem?: unknown;
  significant?: unknown;
}

/**
 * Decode the scores. `rawExact` is one byte per cell (1 exact) or empty (all exact); with
 * `exactOnly` approximate cells count as having no value (after normalization, so shares stay
 * shares of the whole task). `uncertainty` holds the standard errors and significance codes,
 * each used only when it has one entry per cell.
 */
export function readData(
  rawShape: unknown,
  rawValues: unknown,
  rawTasks: unknown,
  normalization: Normalization,
  rawExact: unknown = null,
  exactOnly = false,
  uncertainty: RawUncertainty = {},
): DataState {
  let error = "";
  let shape: [number, number, number] =
    Array.isArray(rawShape) && rawShape.length === 3
      ? (rawShape.map((v) => Math.max(0, Math.floor(Number(v) || 0))) as [number, number, number])
      : [0, 0, 0];
  let values: Float32Array<ArrayBufferLike>;
  try {
    values = toFloat32(rawValues);
  } catch (e) {
    values = new Float32Array(0);
    error = String((e as Error).message ?? e);
  }
  const need = shape[0] * shape[1] * shape[2];
  if (!error && values.length !== need) {
    error = `values holds ${values.length} numbers but shape [${shape.join(", ")}] needs ${need}; send float32 bytes in C order [n_tasks, n_layers, n_heads]`;
  }
  if (!error && need === 0) error = "No scores to show yet.";
  if (error) {
    shape = [0, 0, 0];
    values = new Float32Array(0);
  }
  const tasks = toTasks(rawTasks, shape[0]);
  let norm = normalize(values, shape, normalization);
  const mask = toUint8(rawExact);
  let exact: Uint8Array | null = null;
  let approximate = 0;
  if (mask.length === values.length && values.length) {
    for (let i = 0; i < mask.length; i++) if (!mask[i] && values[i] === values[i]) approximate++;
    if (mask.some((b) => !b)) exact = mask;
  }
  if (exact && exactOnly) {
    norm = norm === values ? Float32Array.from(values) : norm; // never write into the trait's bytes
    for (let i = 0; i < exact.length; i++) if (!exact[i]) norm[i] = NaN;
  }
  let sem: Float32Array<ArrayBufferLike> | null = null;
  try {
    sem = toFloat32(uncertainty.sem);
  } catch {
    sem = null;
  }
  if (!sem || sem.length !== values.length || !values.length) sem = null;
  let sig: Uint8Array | null = toUint8(uncertainty.significant);
  if (sig.length !== values.length || !values.length || sig.every((c) => c === UNTESTED)) sig = null;
  return { shape, values, tasks, norm, stats: computeStats(norm, shape), error, exact, approximate, exactOnly, sums: taskSums(values, shape), sem, sig };
}

/** Colour scales of the tasks and each cell's look-up-table index under them. */
export interface ScaleState {
  scales: ColorScale[];
  /** per task, the LUT index of every cell (-1: NaN) */
  lutIdx: Int16Array[];
  /** the threshold slider's range: up to the colour bar's top */
  range: SliderRange;
  /** decimals the slider's threshold is shown with */
  sliderDecimals: number;
}

export const EMPTY_SCALE: ScaleState = { scales: [], lutIdx: [], range: { lo: 0, hi: 1 }, sliderDecimals: 4 };

export function deriveScale(
  data: DataState,
  opts: { colorRange: ColorRange; diverging: boolean; vmin: number | null; vmax: number | null },
): ScaleState {
  const { stats, shape, norm } = data;
  if (!stats) return EMPTY_SCALE;
  const scales = colorScales(stats, opts);
  const size = shape[1] * shape[2];
  const lutIdx = scales.map((s, t) => {
    const out = new Int16Array(size);
    const base = t * size;
    for (let i = 0; i < size; i++) out[i] = lutIndex(norm[base + i], s.vmin, s.vmax);
    return out;
  });
  // the slider ends where the colour bar ends (per-task bars: the highest of their tops)
  const maxAbs = Math.max(Math.abs(stats.max), Math.abs(stats.min));
  const range = sliderRange(Math.max(...scales.map((sc) => sc.vmax)), stats.min, maxAbs);
  const span = range.hi - range.lo;
  return { scales, lutIdx, range, sliderDecimals: decimalsFor(niceStep(span > 0 ? span : 1, 8)) + 1 };
}

/** Which heads pass the threshold, and the colours of the category labels. */
export interface ThresholdState {
  cutoffs: Float64Array<ArrayBufferLike>;
  classes: Classification | null;
  /** rgb per label code, indexed by `codeRgbIndex` */
  catRgb: Uint8Array;
  /** "significant" mode: the significance codes a head must have 1 in to pass (all 0 when none
   * was tested); null in the other modes */
  gate: Uint8Array | null;
  /** per task, whether the category overlay counts it (categories_from) */
  counted: boolean[];
}

export const EMPTY_THRESHOLD: ThresholdState = { cutoffs: new Float64Array(0), classes: null, catRgb: new Uint8Array(0), gate: null, counted: [] };

/** Does cell `k` (of task `t`) pass? The one rule the panels, outlines and counts use. */
export function cellPasses(data: DataState, th: ThresholdState, t: number, k: number): boolean {
  return data.norm[k] >= th.cutoffs[t] && (th.gate === null || th.gate[k] === 1);
}

export function deriveThreshold(
  data: DataState,
  mode: ThresholdMode,
  threshold: number,
  topPercent: number,
  dark = false,
  counted: readonly boolean[] | null = null,
): ThresholdState {
  if (!data.stats) return EMPTY_THRESHOLD;
  const cutoffs = taskCutoffs(data.stats.sorted, mode, threshold, topPercent);
  const gate = mode === "significant" ? (data.sig ?? new Uint8Array(data.values.length)) : null;
  const counts = counted && counted.length === data.tasks.length ? [...counted] : data.tasks.map(() => true);
  const classes = classify(data.norm, data.shape, data.tasks.map((t) => t.category), cutoffs, { gate, counted: counts });
  const colors = categoryColors(classes.names, dark);
  // rgb per code: index k for categories, then 2..5 categories, then unclassified
  const entries = [...classes.names, "2 categories", "3 categories", "4 categories", "5+ categories", UNCLASSIFIED];
  const catRgb = new Uint8Array(entries.length * 3);
  entries.forEach((label, i) => catRgb.set(parseColor(colors.get(label) ?? "") ?? [200, 200, 200], i * 3));
  return { cutoffs, classes, catRgb, gate, counted: counts };
}

/** Index into `catRgb` (in triples) of a label code. */
export function codeRgbIndex(code: number, nCategories: number): number {
  if (code >= 0) return code;
  if (code === UNCLASSIFIED_CODE) return nCategories + 4;
  return nCategories + (-code - 2);
}

/** Tasks the model fails: clean accuracy measured and below `minAccuracy`. */
export function failing(tasks: readonly TaskInfo[], minAccuracy: number): boolean[] {
  return tasks.map((t) => t.accuracy != null && t.accuracy < minAccuracy);
}

export function hasCategories(tasks: readonly TaskInfo[]): boolean {
  return tasks.some((t) => t.category != null);
}

/** The tab to show: the requested one when it exists, else "all". */
export function resolveTab(tab: string, tasks: readonly TaskInfo[]): string {
  if (tab === "categories" && hasCategories(tasks)) return tab;
  if (tab.startsWith("task:") && tasks.some((t) => `task:${t.name}` === tab)) return tab;
  return "all";
}

/** "12 heads ≥ 0.0030" / "3 heads in top 5%" / "4 significant heads ≥ 0.0030": the count line
 * under a task's title. */
export function countText(passes: number, mode: ThresholdMode, threshold: number, topPercent: number, decimals: number): string {
  const heads = passes === 1 ? "head" : "heads";
  if (mode === "top_percent") return `${passes} ${heads} in top ${formatPercent(topPercent)}%`;
  return `${passes} ${mode === "significant" ? `significant ${heads}` : heads} ≥ ${formatSig(threshold, decimals)}`;
}
