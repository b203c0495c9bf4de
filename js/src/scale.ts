// Number formatting, "nice" ticks and percentiles (pure).

/** A 1-2-2.5-5 x 10^k step giving at most about `maxTicks` ticks over `span`. */
export function niceStep(span: number, maxTicks: number): number {
  if (!(span > 0) || !Number.isFinite(span)) return 1;
  const raw = span / Math.max(1, maxTicks);
  const mag = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) {
    if (m * mag >= raw * (1 - 1e-9)) return m * mag;
  }
  return 10 * mag;
}

/** Decimals needed to print multiples of `step` exactly (0.0005 -> 4, 0.25 -> 2, 5 -> 0). */
export function decimalsFor(step: number): number {
  if (!(step > 0) || !Number.isFinite(step)) return 2;
  let d = Math.max(0, Math.ceil(-Math.log10(step) - 1e-9));
  while (d < 10 && Math.abs(step * 10 ** d - Math.round(step * 10 ** d)) > 1e-6) d++;
  return d;
}

/** Fixed-point text without a "-0.000". */
export function formatFixed(v: number, decimals: number): string {
  if (Number.isNaN(v)) return "n/a";
  const s = v.toFixed(Math.max(0, Math.min(20, decimals)));
  return /^-0(\.0*)?$/.test(s) ? s.slice(1) : s;
}

/**
 * A threshold-like value with at least `minDecimals` decimals and at least two significant
 * digits, so that 0.0005 never prints as "0.001" (0.001 -> "0.0010" with minDecimals 3).
 */
export function formatSig(v: number, minDecimals: number): string {
  if (!Number.isFinite(v)) return String(v);
  const sig = v === 0 ? 0 : 1 - Math.floor(Math.log10(Math.abs(v)));
  return formatFixed(v, Math.min(10, Math.max(minDecimals, sig)));
}

/** A value with 4 significant digits and no trailing zeros (0.00183153 -> "0.001832"). */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "n/a";
  if (v === 0 || !Number.isFinite(v)) return String(v === 0 ? 0 : v);
  return String(Number(v.toPrecision(4)));
}

/** Percentage text: 5 -> "5", 0.5 -> "0.5", 12.25 -> "12.25". */
export function formatPercent(p: number): string {
  return String(Number(p.toFixed(2)));
}

export interface Tick {
  value: number;
  label: string;
}

/**
 * Ticks of a colour bar over [vmin, vmax]: multiples of a nice step, ending exactly at both
 * ends; the top label gets a "+" when values above vmax were clipped (figure A's "0.0040+").
 */
export function colorbarTicks(
  vmin: number,
  vmax: number,
  clippedTop: boolean,
  maxTicks = 9,
): { ticks: Tick[]; decimals: number } {
  const span = vmax - vmin;
  const step = niceStep(span, maxTicks);
  const decimals = decimalsFor(step);
  const eps = step * 1e-6;
  const values: number[] = [];
  const first = Math.ceil((vmin - eps) / step);
  const last = Math.floor((vmax + eps) / step);
  for (let i = first; i <= last && values.length < 200; i++) values.push(i * step);
  // the ends are always labelled; drop an inner tick that would crowd an end label
  const near = 0.4 * step;
  const inner = values.filter((v) => v - vmin > near && vmax - v > near);
  const all = [vmin, ...inner, vmax];
  const ticks = all.map((value) => ({ value, label: formatFixed(value, decimals) }));
  if (clippedTop) ticks[ticks.length - 1].label += "+";
  if (span <= 0) return { ticks: ticks.slice(-1), decimals };
  return { ticks, decimals };
}

/**
 * Tick positions for an integer axis of `n` cells: the smallest step from a list of round
 * numbers that gives at most `maxTicks` ticks (32 -> every 6, 64 -> every 12, 80 -> every 16),
 * plus the last cell when it lies at least 3/4 of a step past the last tick (80 -> ..., 64, 79).
 */
export function intTicks(n: number, maxTicks = 6): number[] {
  if (n <= 0) return [];
  const steps = [1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 25, 32, 40, 48, 50, 64, 80, 100];
  let step = steps.find((s) => Math.floor((n - 1) / s) + 1 <= Math.max(1, maxTicks));
  if (step === undefined) {
    step = 100;
    while (Math.floor((n - 1) / step) + 1 > maxTicks) step *= 2;
  }
  const out: number[] = [];
  for (let i = 0; i < n; i += step) out.push(i);
  // the axis reaches its last cell (80 layers: ... 64, 79) unless that would crowd a tick
  if (n - 1 - out[out.length - 1] >= 0.75 * step) out.push(n - 1);
  return out;
}

/** numpy.percentile (linear interpolation) of an ascending-sorted array; NaN when empty. */
export function percentileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const pos = (Math.min(100, Math.max(0, q)) / 100) * (n - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, n - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** Index of the first element > x in an ascending array. */
export function upperBound(sorted: ArrayLike<number>, x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Ticks for the integer values lo..hi of a zoomed axis: multiples of a round step. */
export function intTicksRange(lo: number, hi: number, maxTicks = 6): number[] {
  if (hi < lo) return [];
  const step = intTicks(hi - lo + 1, maxTicks)[1] ?? 1;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi; v += step) out.push(v);
  return out.length ? out : [lo];
}
