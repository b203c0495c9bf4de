// Reading the synced traits into typed arrays, normalization and per-data statistics (pure).
import { percentileSorted } from "./scale";

export type Normalization = "share" | "raw";

export interface TaskInfo {
  name: string;
  category: string | null;
  description: string;
  baseline: number | null;
  /** clean accuracy of the model on the task (0..1), where measured */
  accuracy: number | null;
  /** split-half reliability of the task's map, where per-example effects were kept */
  reliability: number | null;
  /** examples a reliability of 0.9 needs (Spearman-Brown), where projectable */
  examplesNeeded: number | null;
}

/** float32 view of the `values` trait (a DataView in anywidget; buffers/arrays accepted too). */
export function toFloat32(raw: unknown): Float32Array {
  if (raw == null) return new Float32Array(0);
  if (raw instanceof Float32Array) return raw;
  if (Array.isArray(raw)) return Float32Array.from(raw, (v) => (v == null ? NaN : Number(v)));
  let buffer: ArrayBufferLike;
  let offset = 0;
  let length: number;
  if (raw instanceof ArrayBuffer) {
    buffer = raw;
    length = raw.byteLength;
  } else if (ArrayBuffer.isView(raw)) {
    buffer = raw.buffer;
    offset = raw.byteOffset;
    length = raw.byteLength;
  } else {
    throw new TypeError("values must be bytes (little-endian float32)");
  }
  const n = Math.floor(length / 4);
  if (offset % 4 === 0) return new Float32Array(buffer, offset, n);
  // a Float32Array needs 4-byte alignment: copy the bytes when the view is not aligned
  return new Float32Array(new Uint8Array(buffer, offset, n * 4).slice().buffer);
}

/** uint8 view of a bytes trait (a DataView in anywidget); empty for anything else. */
export function toUint8(raw: unknown): Uint8Array {
  if (raw instanceof Uint8Array) return raw;
  if (raw instanceof ArrayBuffer) return new Uint8Array(raw);
  if (ArrayBuffer.isView(raw)) return new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
  if (Array.isArray(raw)) return Uint8Array.from(raw, (v) => (v ? 1 : 0));
  return new Uint8Array(0);
}

/** Sum of |values| of each task (NaN ignored): what "share" divides by. */
export function taskSums(values: Float32Array, shape: readonly number[]): number[] {
  const [nT, nL, nH] = shape;
  const size = nL * nH;
  const sums: number[] = [];
  for (let t = 0; t < nT; t++) {
    let total = 0;
    for (let i = t * size; i < (t + 1) * size; i++) {
      const v = values[i];
      if (v === v) total += Math.abs(v);
    }
    sums.push(total);
  }
  return sums;
}

export function toTasks(raw: unknown, nTasks: number): TaskInfo[] {
  const list = Array.isArray(raw) ? raw : [];
  const out: TaskInfo[] = [];
  for (let t = 0; t < nTasks; t++) {
    const item = (list[t] ?? {}) as Record<string, unknown>;
    const name = item.name == null ? `task ${t}` : String(item.name);
    const category = item.category == null || item.category === "" ? null : String(item.category);
    const baseline = typeof item.baseline === "number" ? item.baseline : null;
    const finite = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : null);
    out.push({
      name,
      category,
      description: item.description == null ? "" : String(item.description),
      baseline,
      accuracy: finite(item.accuracy),
      reliability: finite(item.reliability),
      examplesNeeded: finite(item.examples_needed),
    });
  }
  return out;
}

/**
 * "share": each task divided by the sum of its |values| (NaN ignored; a task summing to 0 is left
 * unchanged), so an average head of a 1024-head model scores about 0.001. "raw": unchanged.
 */
export function normalize(values: Float32Array, shape: readonly number[], how: Normalization): Float32Array {
  if (how !== "share") return values;
  const [nT, nL, nH] = shape;
  const size = nL * nH;
  const out = new Float32Array(values.length);
  for (let t = 0; t < nT; t++) {
    const start = t * size;
    let total = 0;
    for (let i = start; i < start + size; i++) {
      const v = values[i];
      if (v === v) total += Math.abs(v);
    }
    const d = total > 0 ? total : 1;
    for (let i = start; i < start + size; i++) out[i] = values[i] / d;
  }
  return out;
}

/** Statistics computed once per data change so that slider moves only recolour. */
export interface Stats {
  nTasks: number;
  nLayers: number;
  nHeads: number;
  /** non-NaN values of each task, ascending */
  sorted: Float32Array[];
  /** |values| of each task, ascending (for per-task auto vmax) */
  absSorted: Float32Array[];
  /** |values| of all tasks, ascending (for the shared auto vmax) */
  absSortedAll: Float32Array;
  min: number;
  max: number;
  taskMin: number[];
  taskMax: number[];
  taskMaxAbs: number[];
}

export function computeStats(norm: Float32Array, shape: readonly number[]): Stats {
  const [nT, nL, nH] = shape;
  const size = nL * nH;
  const sorted: Float32Array[] = [];
  const absSorted: Float32Array[] = [];
  const taskMin: number[] = [];
  const taskMax: number[] = [];
  const taskMaxAbs: number[] = [];
  let total = 0;
  for (let t = 0; t < nT; t++) {
    const valid = new Float32Array(size);
    const abs = new Float32Array(size);
    let n = 0;
    for (let i = t * size; i < (t + 1) * size; i++) {
      const v = norm[i];
      if (v === v) {
        valid[n] = v;
        abs[n] = Math.abs(v);
        n++;
      }
    }
    const s = valid.subarray(0, n).sort();
    const a = abs.subarray(0, n).sort();
    sorted.push(s);
    absSorted.push(a);
    taskMin.push(n ? s[0] : NaN);
    taskMax.push(n ? s[n - 1] : NaN);
    taskMaxAbs.push(n ? a[n - 1] : NaN);
    total += n;
  }
  const all = new Float32Array(total);
  let o = 0;
  for (const a of absSorted) {
    all.set(a, o);
    o += a.length;
  }
  all.sort();
  const finite = (xs: number[]) => xs.filter((x) => !Number.isNaN(x));
  const mins = finite(taskMin);
  const maxs = finite(taskMax);
  return {
    nTasks: nT,
    nLayers: nL,
    nHeads: nH,
    sorted,
    absSorted,
    absSortedAll: all,
    min: mins.length ? Math.min(...mins) : NaN,
    max: maxs.length ? Math.max(...maxs) : NaN,
    taskMin,
    taskMax,
    taskMaxAbs,
  };
}

export interface ColorScale {
  vmin: number;
  vmax: number;
  /** some value of the scale's tasks lies above vmax (top label gets a "+") */
  clippedTop: boolean;
}

/**
 * Colour scale of each task. vmax None = 99.5th percentile of |values| over the tasks in range
 * (all tasks when shared, the task alone when per_task); vmin None = 0, or -vmax for diverging.
 */
export function colorScales(
  stats: Stats,
  opts: { colorRange: "shared" | "per_task"; diverging: boolean; vmin: number | null; vmax: number | null },
): ColorScale[] {
  const make = (absSorted: Float32Array, maxAbs: number, max: number): ColorScale => {
    let vmax = opts.vmax ?? percentileSorted(absSorted, 99.5);
    if (!Number.isFinite(vmax) || vmax <= 0) vmax = opts.vmax ?? (maxAbs > 0 ? maxAbs : 1);
    let vmin = opts.vmin ?? (opts.diverging ? -vmax : 0);
    if (!(vmax > vmin)) vmin = vmax - Math.max(Math.abs(vmax) * 1e-6, 1e-12);
    const top = opts.diverging ? maxAbs : max;
    return { vmin, vmax, clippedTop: top > vmax };
  };
  if (opts.colorRange === "per_task") {
    return stats.sorted.map((_, t) => make(stats.absSorted[t], stats.taskMaxAbs[t], stats.taskMax[t]));
  }
  const maxAbs = stats.absSortedAll.length ? stats.absSortedAll[stats.absSortedAll.length - 1] : NaN;
  const shared = make(stats.absSortedAll, maxAbs, stats.max);
  return stats.sorted.map(() => shared);
}
