// A stand-in for anywidget's model, shared by the view tests: traits in a plain object, change
// events on set, and a count of save_changes() calls; and the view rendered on it, unmounted
// after each test, and its SVG export.
import { expect, vi } from "vitest";
import widget from "../src/index";

type Listener = () => void;

export function standInModel(state: Record<string, unknown>) {
  const listeners = new Map<string, Set<Listener>>();
  let saves = 0;
  const model = {
    get: (k: string) => state[k],
    set: (k: string, v: unknown) => {
      state[k] = v;
      listeners.get(`change:${k}`)?.forEach((f) => f());
    },
    on: (e: string, f: Listener) => {
      if (!listeners.has(e)) listeners.set(e, new Set());
      listeners.get(e)!.add(f);
    },
    off: (e?: string | null, f?: Listener | null) => {
      if (e && f) listeners.get(e)?.delete(f);
    },
    save_changes: () => {
      saves++;
    },
    send: () => {},
    widget_manager: {} as never,
  };
  return { model, listeners, saves: () => saves };
}

/** The traits the Python side always sends, at the widget's defaults (the view tests' base
 * state); `data` adds the scores (values, exact, shape, tasks) and any trait to change. */
export function traitState(data: Record<string, unknown>): Record<string, unknown> {
  return {
    normalization: "share",
    threshold_mode: "value",
    threshold: 0.05,
    top_percent: 5,
    colormap: "viridis",
    color_range: "shared",
    vmax: null,
    vmin: null,
    orientation: "layer_y",
    tab: "all",
    grid_columns: 0,
    selected_head: null,
    selected_task: "",
    progress: {},
    title: "tiny",
    exact_only: false,
    provenance: {},
    min_accuracy: 0.2,
    fade_below: false,
    ...data,
  };
}

const unmounts: (() => void)[] = [];

/** Render the widget on `model` into a new element of the document: the element and the view's
 * root (`.headwidget`). {@link unmountViews} (in an `afterEach`) takes it down. */
export function renderView(model: unknown): { el: HTMLElement; root: HTMLElement } {
  const el = document.createElement("div");
  document.body.append(el);
  unmounts.push((widget.render as (p: { model: unknown; el: HTMLElement }) => () => void)({ model, el }));
  return { el, root: el.querySelector<HTMLElement>(".headwidget")! };
}

/** Clean up every view {@link renderView} rendered and empty the document. */
export function unmountViews(): void {
  for (const cleanup of unmounts.splice(0)) cleanup();
  document.body.replaceChildren();
}

/** The view's SVG export at 1x (its export control clicked, the download caught), parsed. */
export async function exportSvg(root: HTMLElement): Promise<Document> {
  let blob: Blob | null = null;
  vi.spyOn(URL, "createObjectURL").mockImplementation((b) => {
    blob = b as Blob;
    return "blob:x";
  });
  vi.spyOn(URL, "revokeObjectURL").mockImplementation(() => {});
  root.querySelector<HTMLSelectElement>("select.hw-export-format")!.value = "svg:1";
  root.querySelector<HTMLButtonElement>("button.hw-export")!.click();
  expect(blob).not.toBeNull();
  return new DOMParser().parseFromString(await blob!.text(), "image/svg+xml");
}
