// A stand-in for anywidget's model, shared by the view tests: traits in a plain object, change
// events on set, and a count of save_changes() calls.

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
