// Typed reading of the synced traits (the Python side: headwidget/views/widget.py), and which redraw
// stages a change of each trait invalidates.
import type { AnyModel } from "@anywidget/types";
import { isColormap, type ColormapName } from "./colormap";
import type { Normalization } from "./data";
import type { Orientation } from "./layout";
import type { ThresholdMode } from "./threshold";
import { MIN_RELIABILITY, type CategoriesFrom } from "./uncertainty";

export type Model = AnyModel<Record<string, any>>;
export type ColorRange = "shared" | "per_task";

export interface Selection {
  layer: number;
  head: number;
}

/** Redraw stages, in the order `flush` runs them; a stage implies the later ones it needs. */
export const DATA = 1;
export const SCALE = 2;
export const THRESH = 4;
export const STRUCT = 8;
export const DRAW = 16;
export const CONTROLS = 32;
/** only the hover marks changed: redraw the panels from their buffers */
export const HOVER = 64;
/** the role maps or what of them is shown changed (roles.ts) */
export const ROLES = 128;
/** the paths between heads or how many are drawn changed (paths.ts) */
export const PATHS = 256;

/** The stages each trait's change invalidates. */
export const TRAIT_FLAGS: Readonly<Record<string, number>> = {
  values: DATA,
  shape: DATA,
  tasks: DATA,
  normalization: DATA,
  colormap: SCALE,
  color_range: SCALE | STRUCT,
  vmax: SCALE,
  vmin: SCALE,
  threshold_mode: THRESH | CONTROLS,
  threshold: THRESH | CONTROLS,
  top_percent: THRESH | CONTROLS,
  orientation: STRUCT | CONTROLS,
  tab: STRUCT,
  grid_columns: STRUCT,
  selected_head: DRAW,
  selected_task: DRAW,
  progress: CONTROLS,
  title: CONTROLS,
  exact: DATA,
  exact_only: DATA,
  provenance: CONTROLS | SCALE,
  min_accuracy: STRUCT | CONTROLS | THRESH,
  fade_below: DRAW | CONTROLS,
  sem: DATA,
  significant: DATA,
  mark_insignificant: DRAW | CONTROLS,
  // the titles' marks and (categories_from "reliable") which tasks the categories count
  min_reliability: STRUCT | CONTROLS | THRESH,
  categories_from: STRUCT | CONTROLS | THRESH,
  // head roles: the Roles tab and the roles bar follow the maps, the glyphs the rest
  role_values: ROLES | STRUCT | CONTROLS,
  role_info: ROLES | STRUCT | CONTROLS,
  roles_shown: ROLES | DRAW | CONTROLS,
  role_threshold: ROLES | STRUCT | CONTROLS,
  role_filter: ROLES | DRAW | CONTROLS,
  writes: CONTROLS,
  // paths between heads: the arrows
  path_data: PATHS | DRAW,
  path_effect: PATHS | DRAW,
  path_sem: PATHS | DRAW,
  path_edges: PATHS | DRAW,
};

export function num(v: unknown, fallback: number): number {
  return typeof v === "number" && Number.isFinite(v) ? v : fallback;
}

export function optNum(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

export function pick<T extends string>(v: unknown, allowed: readonly T[], fallback: T): T {
  return typeof v === "string" && (allowed as readonly string[]).includes(v) ? (v as T) : fallback;
}

/** The progress trait: {text, fraction, running, error?}. */
export interface Progress {
  text: string;
  fraction: number;
  running: boolean;
  error: boolean;
}

/** What produced the scores (headwidget/views/widget.py `_provenance`); each field where known. */
export interface Provenance {
  model: string;
  method: string;
  metric: string;
  ablation: string;
  /** examples per task */
  examples: Record<string, number>;
  date: string;
  /** the trait said anything at all */
  known: boolean;
}

/** Typed, validated reads of the model's traits (anything malformed falls back to its default). */
export class Traits {
  constructor(readonly model: Model) {}

  raw(name: string): unknown {
    return this.model.get(name);
  }
  get normalization(): Normalization {
    return pick(this.raw("normalization"), ["share", "raw"] as const, "share");
  }
  get mode(): ThresholdMode {
    return pick(this.raw("threshold_mode"), ["value", "top_percent", "significant"] as const, "value");
  }
  get colormap(): ColormapName {
    const c = this.raw("colormap");
    return isColormap(c) ? c : "viridis";
  }
  get colorRange(): ColorRange {
    return pick(this.raw("color_range"), ["shared", "per_task"] as const, "shared");
  }
  get orientation(): Orientation {
    return pick(this.raw("orientation"), ["layer_y", "layer_x"] as const, "layer_y");
  }
  get threshold(): number {
    return num(this.raw("threshold"), 0);
  }
  get topPercent(): number {
    return Math.min(100, Math.max(1e-6, num(this.raw("top_percent"), 5)));
  }
  get vmin(): number | null {
    return optNum(this.raw("vmin"));
  }
  get vmax(): number | null {
    return optNum(this.raw("vmax"));
  }
  get gridColumns(): number {
    return num(this.raw("grid_columns"), 0);
  }
  get tab(): string {
    return String(this.raw("tab") ?? "all");
  }
  get title(): string {
    return String(this.raw("title") ?? "");
  }
  /** edges drawn per task (path_edges) */
  get pathEdges(): number {
    return Math.max(0, Math.floor(num(this.raw("path_edges"), 10)));
  }
  get selectedTask(): string {
    return String(this.raw("selected_task") ?? "");
  }
  /** The selected head when it lies inside a grid of `nLayers` x `nHeads`, else null. */
  selection(nLayers: number, nHeads: number): Selection | null {
    const s = this.raw("selected_head");
    if (!Array.isArray(s) || s.length < 2) return null;
    const [layer, head] = s.map(Number);
    if (!(layer >= 0 && layer < nLayers && head >= 0 && head < nHeads)) return null;
    return { layer, head };
  }
  get exactOnly(): boolean {
    return this.raw("exact_only") === true;
  }
  get fadeBelow(): boolean {
    return this.raw("fade_below") === true;
  }
  get minAccuracy(): number {
    return num(this.raw("min_accuracy"), 0.2);
  }
  get markInsignificant(): boolean {
    return this.raw("mark_insignificant") === true;
  }
  get minReliability(): number {
    return num(this.raw("min_reliability"), MIN_RELIABILITY);
  }
  get categoriesFrom(): CategoriesFrom {
    return pick(this.raw("categories_from"), ["all", "reliable"] as const, "all");
  }
  get provenance(): Provenance {
    const raw = this.raw("provenance");
    const p = (raw && typeof raw === "object" ? raw : {}) as Record<string, unknown>;
    const text = (k: string) => (p[k] == null ? "" : String(p[k]));
    const examples: Record<string, number> = {};
    if (p.examples && typeof p.examples === "object") {
      for (const [k, n] of Object.entries(p.examples as Record<string, unknown>)) if (typeof n === "number") examples[k] = n;
    }
    return {
      model: text("model"),
      method: text("method") || "ablation",
      metric: text("metric"),
      ablation: text("ablation"),
      examples,
      date: text("date"),
      known: Object.keys(p).length > 0,
    };
  }
  get progress(): Progress {
    const raw = this.raw("progress");
    const p = (raw && typeof raw === "object" ? raw : {}) as Record<string, unknown>;
    return {
      text: p.text == null ? "" : String(p.text),
      fraction: Math.min(1, Math.max(0, num(p.fraction, 0))),
      running: p.running === true,
      error: !!p.error,
    };
  }
}
