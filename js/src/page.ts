// The page grid.save("x.html") writes (headwidget/views/files.py): a minimal in-page model
// (get/set/on/off/save_changes/send) stands in for the Jupyter widget manager, and the widget
// bundle, inlined as base64 beside the scores, is imported from a blob: URL. Bundled on its own
// (headwidget/static/page.js, not minified) and inlined into the page's module script.
import type { AnyModel } from "@anywidget/types";
import type { Normalization } from "./data";
import type * as Widget from "./index";

type Callback = (...args: any[]) => void;
/** a threshold in one normalization's units -> the one that lets as many heads pass in another */
type Convert = (threshold: number, from: Normalization, to: Normalization) => number;
/** the automatic threshold per normalization (files.py writes them when it was automatic) */
type Defaults = Partial<Record<string, number>>;
/** what the page calls of the widget module (js/src/index.ts), or of any anywidget module */
interface PageWidget {
  initialize?(props: { model: Model; experimental: object }): unknown;
  render(props: { model: Model; el: HTMLElement; experimental: object }): unknown;
}
type WidgetModule = Pick<typeof Widget, "convertThreshold" | "toFloat32"> & {
  default?: PageWidget | (() => PageWidget | Promise<PageWidget>);
};

const bytes = (id: string): Uint8Array<ArrayBuffer> =>
  Uint8Array.from(atob(document.getElementById(id)!.textContent!.trim()), (c) => c.charCodeAt(0));

class Model implements AnyModel<Record<string, any>> {
  state: Record<string, any>;
  defaults: Defaults | null;
  listeners: Map<string, Callback[]>;
  convert?: Convert;
  // no widget manager on a page (the widget does not use it)
  declare widget_manager: AnyModel["widget_manager"];

  // defaults: the automatic thresholds per normalization, when the threshold was automatic
  constructor(state: Record<string, any>, defaults: Defaults | null | undefined) {
    this.state = state;
    this.defaults = defaults || null;
    this.listeners = new Map();
  }
  get(name: string): any {
    return this.state[name];
  }
  set(name: string, value: any): void {
    const changed = [name];
    const d = this.defaults;
    const before = this.state.normalization;
    // as in Python: a threshold still at its automatic value follows the new units, one
    // the user chose is converted so that as many heads pass
    if (name === "normalization" && value !== before) {
      if (d && typeof d[value] === "number" && this.state.threshold === d[before]) {
        this.state.threshold = d[value];
        changed.push("threshold");
      } else if (this.convert) {
        this.state.threshold = this.convert(this.state.threshold, before, value);
        changed.push("threshold");
      }
    }
    this.state[name] = value;
    for (const key of changed) this.emit(`change:${key}`, this, this.state[key]);
    this.emit("change", this);
  }
  on(event: string, callback: Callback): void {
    for (const name of String(event).split(/\s+/)) {
      if (!this.listeners.has(name)) this.listeners.set(name, []);
      this.listeners.get(name)!.push(callback);
    }
  }
  off(event?: string | null, callback?: Callback | null): void {
    if (event == null) {
      this.listeners.clear();
      return;
    }
    for (const name of String(event).split(/\s+/)) {
      const kept = (this.listeners.get(name) || []).filter((cb) => callback && cb !== callback);
      this.listeners.set(name, kept);
    }
  }
  emit(name: string, ...args: unknown[]): void {
    for (const callback of [...(this.listeners.get(name) || [])]) callback(...args);
  }
  save_changes(): void {}
  send(): void {}
}

const state = JSON.parse(document.getElementById("headwidget-state")!.textContent!);
const defaults = state._default_thresholds;
delete state._default_thresholds;
// the binary traits (headwidget/views/files.py BINARY_TRAITS); a page saved before sem,
// significant and role_values existed has no element for them
for (const name of ["values", "exact", "sem", "significant", "role_values", "path_data", "path_effect", "path_sem"]) {
  state[name] = new DataView(document.getElementById(`headwidget-${name}`) ? bytes(`headwidget-${name}`).buffer : new ArrayBuffer(0));
}
const model = new Model(state, defaults);
const code = new Blob([bytes("headwidget-bundle")], { type: "text/javascript" });
const module: WidgetModule = await import(URL.createObjectURL(code));
model.convert = (threshold, from, to) =>
  module.convertThreshold(module.toFloat32(state.values), state.shape, threshold, from, to);
let widget: any = module.default ?? module;
if (typeof widget === "function") widget = await widget();
const loaded: PageWidget = widget;
if (loaded.initialize) await loaded.initialize({ model, experimental: {} });
const el = document.getElementById("headwidget-root")!;
await loaded.render({ model, el, experimental: {} });
