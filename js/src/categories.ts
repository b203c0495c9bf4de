// Category rule (pure): the JS twin of headwidget/views/categories.py, checked on a shared fixture.

export const UNCLASSIFIED = "Unclassified";
export const UNCLASSIFIED_COLOR = "#d9d9d9";
/** Unclassified on a dark background: a light grey there outshines every category. */
export const UNCLASSIFIED_COLOR_DARK = "#3c3c3c";
// Maps, not objects: they are looked up with user-provided names ("__proto__", "constructor").
export const CATEGORY_COLORS: ReadonlyMap<string, string> = new Map([
  ["Algorithmic", "#1f77b4"],
  ["Knowledge", "#ff7f0e"],
  ["Linguistic", "#2ca02c"],
  ["Translation", "#d62728"],
]);
export const EXTRA_CATEGORY_COLORS = ["#17becf", "#bcbd22", "#7f7f7f"];
export const MULTI_CATEGORY_COLORS: ReadonlyMap<string, string> = new Map([
  ["2 categories", "#9467bd"],
  ["3 categories", "#8c564b"],
  ["4 categories", "#e377c2"],
  ["5+ categories", "#393b79"],
]);

/** Label of a head in `n` >= 2 categories. */
export function multiLabel(n: number): string {
  return n >= 5 ? "5+ categories" : `${n} categories`;
}

/** Categories in order of first appearance, without null. */
export function categoryNames(taskCategories: readonly (string | null)[]): string[] {
  const names: string[] = [];
  for (const c of taskCategories) if (c != null && !names.includes(c)) names.push(c);
  return names;
}

/** Legend entries as in figure B: multi-category labels (most first), categories reversed, Unclassified. */
export function legendLabels(names: readonly string[]): string[] {
  const multi: string[] = [];
  for (let n = Math.min(names.length, 5); n >= 2; n--) multi.push(multiLabel(n));
  return [...multi, ...[...names].reverse(), UNCLASSIFIED];
}

/** Colour of every label that can occur with these categories. */
export function categoryColors(names: readonly string[], dark = false): Map<string, string> {
  const colors = new Map<string, string>();
  let extra = 0;
  for (const name of names) {
    colors.set(name, CATEGORY_COLORS.get(name) ?? EXTRA_CATEGORY_COLORS[extra++ % EXTRA_CATEGORY_COLORS.length]);
  }
  for (const [label, color] of MULTI_CATEGORY_COLORS) colors.set(label, color);
  colors.set(UNCLASSIFIED, dark ? UNCLASSIFIED_COLOR_DARK : UNCLASSIFIED_COLOR);
  return colors;
}

/** Label codes: >= 0 a single category's index, UNCLASSIFIED_CODE, or -n for "n categories" (n capped at 5). */
export const UNCLASSIFIED_CODE = -1;

export interface Classification {
  names: string[];
  /** per category, 1 where the head belongs (flat [n_layers * n_heads]) */
  membership: Uint8Array[];
  /** number of categories of each head */
  counts: Uint8Array;
  /** label code of each head (see UNCLASSIFIED_CODE) */
  codes: Int8Array;
  /** heads passing each task */
  passes: Int32Array;
}

/** What else decides a head's passing and its categories (views/categories.py's keywords). */
export interface ClassifyOptions {
  /** "significant" mode: only cells whose code (one per cell, uncertainty.ts) is 1 pass */
  gate?: Uint8Array | null;
  /** per task, whether it counts for the categories (categories_from); all when absent */
  counted?: readonly boolean[] | null;
}

/**
 * Apply the rule: head (l, h) passes task t iff v >= cutoff[t] (NaN never passes) and, with a
 * `gate`, its cell is significant; it belongs to category C iff it passes a counted task of
 * category C.
 */
export function classify(
  values: ArrayLike<number>,
  shape: readonly number[],
  taskCategories: readonly (string | null)[],
  cutoffs: ArrayLike<number>,
  opts: ClassifyOptions = {},
): Classification {
  const [nT, nL, nH] = shape;
  const size = nL * nH;
  const names = categoryNames(taskCategories);
  const membership = names.map(() => new Uint8Array(size));
  const passes = new Int32Array(nT);
  const gate = opts.gate ?? null;
  for (let t = 0; t < nT; t++) {
    const c = cutoffs[t];
    const cat = taskCategories[t];
    const counts = !opts.counted || opts.counted[t] !== false;
    const mem = cat == null || !counts ? null : membership[names.indexOf(cat)];
    const base = t * size;
    let n = 0;
    for (let i = 0; i < size; i++) {
      // NaN >= c is false, so NaN cells never pass
      if (values[base + i] >= c && (gate === null || gate[base + i] === 1)) {
        n++;
        if (mem) mem[i] = 1;
      }
    }
    passes[t] = n;
  }
  const counts = new Uint8Array(size);
  const codes = new Int8Array(size).fill(UNCLASSIFIED_CODE);
  for (let k = 0; k < membership.length; k++) {
    const mem = membership[k];
    for (let i = 0; i < size; i++) {
      if (mem[i]) {
        counts[i] = Math.min(255, counts[i] + 1);
        codes[i] = counts[i] === 1 ? k : -Math.min(5, counts[i]);
      }
    }
  }
  return { names, membership, counts, codes, passes };
}

export function codeLabel(code: number, names: readonly string[]): string {
  if (code >= 0) return names[code];
  if (code === UNCLASSIFIED_CODE) return UNCLASSIFIED;
  return multiLabel(-code);
}

/** Categories a head belongs to, in order of appearance. */
export function headCategories(result: Classification, index: number): string[] {
  return result.names.filter((_, k) => result.membership[k][index] === 1);
}
