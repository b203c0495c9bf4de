// What the view's parts share: the DOM skeleton, the derived state and the panels on screen.
import type { CellWindow, GridLayout, PanelBox } from "./layout";
import type { CellMask } from "./overlays";
import type { PathState } from "./paths";
import type { RoleState } from "./roles";
import type { Tick } from "./scale";
import type { DataState, ScaleState, ThresholdState } from "./state";
import type { Theme } from "./theme";
import type { Model, Traits } from "./traits";

export type PanelKind = "task" | "allcats" | "category" | "role";

/** What a panel shows: one task, every category ("allcats"), one category, or one role's map
 * (the Roles tab). */
export interface PanelSpec {
  kind: PanelKind;
  name: string;
  /** task index (kind "task"), else -1 */
  task: number;
  /** category index (kind "category"), else -1 */
  category: number;
  /** role index (kind "role") */
  role?: number;
}

/** A panel on screen: its box, title block and canvas, and a cols x rows pixel buffer. */
export interface Panel extends PanelSpec {
  box: PanelBox;
  wrap: HTMLElement;
  canvas: HTMLCanvasElement;
  ctx: CanvasRenderingContext2D | null;
  buffer: HTMLCanvasElement;
  bctx: CanvasRenderingContext2D | null;
  image: ImageData | null;
  countEl: HTMLElement | null;
  /** the cells shown when zoomed in (wheel over an enlarged panel); null: all of them */
  window: CellWindow | null;
  /** cols x rows alpha mask of the cells still approximate (made when some are) */
  approx: CellMask | null;
  /** cols x rows alpha mask of the cells not significant (made when mark_insignificant is on) */
  insig: CellMask | null;
}

export interface Hover {
  panel: Panel;
  row: number;
  col: number;
}

export interface Colorbar {
  canvas: HTMLCanvasElement;
  labels: HTMLElement;
  title: HTMLElement;
  ticks: Tick[];
}

/** The state of one rendered view, passed to the modules that build, draw and handle events. */
export interface View {
  readonly doc: Document;
  readonly win: Window | null;
  readonly model: Model;
  readonly traits: Traits;
  readonly root: HTMLElement;
  readonly grid: HTMLElement;
  readonly info: HTMLElement;
  readonly tooltip: HTMLElement;
  readonly live: HTMLElement;
  theme: Theme;
  /** device pixels per CSS pixel of the canvases (1..4) */
  dpr: number;
  data: DataState;
  scale: ScaleState;
  thresh: ThresholdState;
  /** the head roles (roles.ts): role maps, glyphs, filter */
  roles: RoleState;
  /** the paths between heads drawn as arrows (paths.ts) */
  paths: PathState;
  panels: Panel[];
  layout: GridLayout | null;
  activeTab: string;
  hover: Hover | null;
  colorbar: Colorbar | null;
  /** Mark redraw stages (traits.ts's DATA ... CONTROLS) dirty and redraw on the next frame. */
  schedule(flags: number): void;
  /** Set a trait and send it to the kernel now or throttled (slider drags). */
  setTrait(name: string, value: unknown, save?: "now" | "throttled"): void;
  /** Enlarge a task's panel: switch to its own tab. */
  zoom(p: PanelSpec): void;
  /** Send throttled trait changes now (the end of a slider drag). */
  flushSave(): void;
  /** addEventListener, removed again when the view is destroyed. */
  listen(target: EventTarget, type: string, fn: (e: any) => void, opts?: AddEventListenerOptions): void;
}
