// Head roles on the map (pure): the twin of headwidget/views/roles.py. The role maps arrive as
// float32 bytes [roles, layers, heads] (role_values) with their names, glyph shapes and units
// (role_info); a head whose score for a role is at least role_threshold gets that role's glyph,
// for the roles of roles_shown; role_filter fades every head without one role.
import { toFloat32 } from "./data";
import type { TaskInfo } from "./data";
import { resolveTab } from "./state";
import { num } from "./traits";

/** The glyph shapes, in the order roles without a shape of their own take them (roles.py). */
export const GLYPH_SHAPES = ["triangle", "diamond", "square", "circle", "cross", "triangle_up", "plus", "star"] as const;
export type GlyphShape = (typeof GLYPH_SHAPES)[number];
/** The built-in roles' glyphs (roles.py BUILTIN_SHAPES). */
export const BUILTIN_SHAPES: Readonly<Record<string, GlyphShape>> = {
  "previous token": "triangle",
  induction: "diamond",
  "duplicate token": "square",
  "first token": "circle",
  "current token": "cross",
};
export const ROLE_THRESHOLD = 0.4;
/** Smallest cell (CSS px) the glyphs are drawn on, as the threshold outlines. */
export const MIN_GLYPH_CELL = 4;

/** The decoded role maps and what of them the view marks. */
export interface RoleState {
  names: string[];
  shapes: GlyphShape[];
  descriptions: string[];
  units: string;
  /** float32 [roles, layers, heads]; empty without roles */
  values: Float32Array;
  /** heads per map (layers x heads), and heads per layer */
  size: number;
  nHeads: number;
  threshold: number;
  /** per role: its glyph is drawn */
  shown: boolean[];
  /** index of the role_filter role, -1 for none */
  filter: number;
  /** per head (layer-major): 1 where it has the filter role; null without a filter */
  keep: Uint8Array | null;
  /** per head: bit r set when shown role r passes the threshold (roles past 32 are not marked;
   * with a filter, only on the heads it keeps) */
  glyphs: Uint32Array;
  /** some head has a glyph */
  any: boolean;
  /** heads passing the threshold, per role */
  counts: number[];
}

export const EMPTY_ROLES: RoleState = {
  names: [],
  shapes: [],
  descriptions: [],
  units: "",
  values: new Float32Array(0),
  size: 0,
  nHeads: 0,
  threshold: ROLE_THRESHOLD,
  shown: [],
  filter: -1,
  keep: null,
  glyphs: new Uint32Array(0),
  any: false,
  counts: [],
};

const isShape = (s: unknown): s is GlyphShape => typeof s === "string" && (GLYPH_SHAPES as readonly string[]).includes(s);

/** Shapes of `names` when role_info does not say: as roles.py glyph_shapes (the shapes of no
 * built-in role first, then those of the built-in roles not in `names`). */
export function glyphShapes(names: readonly string[]): GlyphShape[] {
  const builtin = new Set(Object.values(BUILTIN_SHAPES));
  const taken = new Set(names.map((n) => BUILTIN_SHAPES[n]).filter(Boolean));
  const free: GlyphShape[] = [...GLYPH_SHAPES.filter((s) => !builtin.has(s)), ...GLYPH_SHAPES.filter((s) => builtin.has(s) && !taken.has(s))];
  let k = 0;
  return names.map((n) => BUILTIN_SHAPES[n] ?? free[k++ % free.length]);
}

/**
 * Decode the role traits for a grid of `nLayers` x `nHeads`: role maps of another size are not
 * shown (an empty state).
 */
export function readRoles(rawInfo: unknown, rawValues: unknown, nLayers: number, nHeads: number, opts: { threshold: unknown; shown: unknown; filter: unknown }): RoleState {
  const info = (rawInfo && typeof rawInfo === "object" ? rawInfo : {}) as Record<string, unknown>;
  const names = Array.isArray(info.names) ? info.names.map(String) : [];
  let values: Float32Array;
  try {
    values = toFloat32(rawValues);
  } catch {
    values = new Float32Array(0);
  }
  const size = nLayers * nHeads;
  if (!names.length || !size || values.length !== names.length * size) return EMPTY_ROLES;
  const given = Array.isArray(info.shapes) ? info.shapes : [];
  const fallback = glyphShapes(names);
  const shapes = names.map((_, r) => (isShape(given[r]) ? given[r] : fallback[r]));
  const descriptions = names.map((_, r) => (Array.isArray(info.descriptions) && info.descriptions[r] ? String(info.descriptions[r]) : ""));
  const threshold = num(opts.threshold, ROLE_THRESHOLD);
  const wanted = Array.isArray(opts.shown) ? opts.shown.map(String) : names;
  const shown = names.map((n) => wanted.includes(n));
  const filter = typeof opts.filter === "string" ? names.indexOf(opts.filter) : -1;
  const glyphs = new Uint32Array(size);
  const counts = names.map(() => 0);
  let any = false;
  for (let r = 0; r < names.length; r++) {
    const bit = r < 32 && shown[r] ? 1 << r : 0;
    const base = r * size;
    for (let i = 0; i < size; i++) {
      if (values[base + i] >= threshold) {
        counts[r]++;
        if (bit) {
          glyphs[i] |= bit;
          any = true;
        }
      }
    }
  }
  let keep: Uint8Array | null = null;
  if (filter >= 0) {
    // only the heads with the filter's role keep their colours and glyphs
    keep = new Uint8Array(size);
    any = false;
    for (let i = 0; i < size; i++) {
      keep[i] = values[filter * size + i] >= threshold ? 1 : 0;
      if (!keep[i]) glyphs[i] = 0;
      any ||= glyphs[i] !== 0;
    }
  }
  const units = typeof info.units === "string" && info.units ? info.units : "role score";
  return { names, shapes, descriptions, units, values, size, nHeads, threshold, shown, filter, keep, glyphs, any, counts };
}

/** The roles whose glyphs head i carries, in role order (the order they are drawn, left to right). */
export function headGlyphs(roles: RoleState, i: number): number[] {
  const bits = roles.glyphs[i];
  const out: number[] = [];
  for (let r = 0; bits && r < Math.min(32, roles.names.length); r++) if (bits & (1 << r)) out.push(r);
  return out;
}

/** Where k glyphs sit in a cell: their centres' x offsets from its centre and their radius, in
 * cells (roles.py glyph_slots). */
export function glyphSlots(k: number): { offsets: number[]; radius: number } {
  const radius = Math.min(0.4, 0.46 / k);
  return { offsets: Array.from({ length: k }, (_, j) => (j - (k - 1) / 2) / k), radius };
}

const angles = (n: number, start: number) => Array.from({ length: n }, (_, i) => start + (2 * Math.PI * i) / n);

/** A glyph's outline in a unit box (x right, y up, within ±1): roles.py glyph_polygon. */
export function glyphPolygon(shape: GlyphShape): [number, number][] {
  switch (shape) {
    case "triangle":
      return [
        [-1, 0],
        [0.85, 0.95],
        [0.85, -0.95],
      ];
    case "triangle_up":
      return [
        [0, 1],
        [0.95, -0.85],
        [-0.95, -0.85],
      ];
    case "diamond":
      return [
        [0, 1],
        [1, 0],
        [0, -1],
        [-1, 0],
      ];
    case "square":
      return [
        [-0.8, -0.8],
        [0.8, -0.8],
        [0.8, 0.8],
        [-0.8, 0.8],
      ];
    case "circle":
      return angles(16, 0).map((a) => [0.9 * Math.cos(a), 0.9 * Math.sin(a)]);
    case "star":
      return angles(10, Math.PI / 2).map((a, i) => {
        const r = i % 2 === 0 ? 1 : 0.45;
        return [r * Math.cos(a), r * Math.sin(a)];
      });
    default: {
      const a = 0.32;
      const plus: [number, number][] = [
        [-a, 1], [a, 1], [a, a], [1, a], [1, -a], [a, -a], [a, -1], [-a, -1], [-a, -a], [-1, -a], [-1, a], [-a, a],
      ]; // prettier-ignore
      if (shape === "plus") return plus;
      return plus.map(([x, y]) => [(x - y) * 0.75, (x + y) * 0.75]);
    }
  }
}

/** The tab to show, "roles" included when the grid has role maps. */
export function resolveViewTab(tab: string, tasks: readonly TaskInfo[], roles: RoleState): string {
  return tab === "roles" && roles.names.length ? "roles" : resolveTab(tab, tasks);
}

/** A head's score for every role, strongest first (NaN last). */
export function headRoleScores(roles: RoleState, i: number): { role: string; score: number; passes: boolean }[] {
  const out = roles.names.map((role, r) => {
    const score = roles.values[r * roles.size + i];
    return { role, score, passes: score >= roles.threshold };
  });
  return out.sort((a, b) => (Number.isNaN(b.score) ? -Infinity : b.score) - (Number.isNaN(a.score) ? -Infinity : a.score));
}

/** The tooltip's roles line: "roles: induction 0.84, previous token 0.52" (those passing the
 * threshold, strongest first), or "roles: none ≥ 0.4". */
export function roleLine(roles: RoleState, i: number): string {
  if (!roles.names.length) return "";
  const passing = headRoleScores(roles, i).filter((s) => s.passes);
  if (!passing.length) return `roles: none ≥ ${roles.threshold}`;
  return `roles: ${passing.map((s) => `${s.role} ${s.score.toFixed(2)}`).join(", ")}`;
}

/** The tooltip of a role panel's head: the role, the head, its score, then all its roles. */
export function roleTooltip(roles: RoleState, r: number, layer: number, head: number): string[] {
  const i = layer * roles.nHeads + head;
  const score = roles.values[r * roles.size + i];
  return [
    roles.names[r],
    `Layer ${layer} · Head ${head}`,
    `${roles.units} ${Number.isNaN(score) ? "n/a" : score.toFixed(3)}${score >= roles.threshold ? ` (≥ ${roles.threshold}: has the role)` : ""}`,
    roleLine(roles, i),
  ];
}

/** The colour limits of the Roles tab: 0 to 1, from -1 where some score is negative. */
export function roleScale(roles: RoleState): { vmin: number; vmax: number; clippedTop: boolean } {
  let negative = false;
  for (let i = 0; i < roles.values.length; i++) if (roles.values[i] < 0) negative = true;
  return { vmin: negative ? -1 : 0, vmax: 1, clippedTop: false };
}

/** "12 heads ≥ 0.4": the count line of a role's panel. */
export function roleCountText(roles: RoleState, r: number): string {
  const n = roles.counts[r] ?? 0;
  return `${n} ${n === 1 ? "head" : "heads"} ≥ ${roles.threshold}`;
}

/** The key's entries on the glyphs and the filter (the glyphs themselves are in the roles bar);
 * `small`: the cells are too small for glyphs. */
export function roleKeyItems(roles: RoleState, small: boolean): { mark: "glyph" | "faded"; text: string }[] {
  if (!roles.names.length) return [];
  const shown = roles.names.filter((_, r) => roles.shown[r]);
  const out: { mark: "glyph" | "faded"; text: string }[] = [];
  if (shown.length) {
    const where = small ? ` (drawn on cells of ${MIN_GLYPH_CELL} px or more: zoom in)` : "";
    out.push({ mark: "glyph", text: `glyphs: heads whose ${roles.units} is ≥ ${roles.threshold} for ${shown.join(", ")}${where}` });
  }
  if (roles.filter >= 0) out.push({ mark: "faded", text: `faded: heads without the role ${roles.names[roles.filter]} (${roles.units} < ${roles.threshold})` });
  return out;
}
