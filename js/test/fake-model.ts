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
