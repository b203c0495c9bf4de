// Small DOM helpers. User strings only ever go through textContent.

const FOCUSABLE = new Set(["button", "select", "input", "textarea"]);

/**
 * A new element with attributes and text. Every element that can take focus gets
 * `data-lm-suppress-shortcuts`: JupyterLab and Notebook 7 (Lumino) look for it from the focused
 * element upward, and the notebook's command-mode bindings (arrows, "d d", "a", "b") match the
 * focused element itself, so the attribute on the widget's root alone is not enough.
 */
export function h<K extends keyof HTMLElementTagNameMap>(
  doc: Document,
  tag: K,
  attrs: Record<string, string> = {},
  text?: string,
): HTMLElementTagNameMap[K] {
  const el = doc.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") el.className = v;
    else el.setAttribute(k, v);
  }
  if (FOCUSABLE.has(tag) || "tabindex" in attrs) el.setAttribute("data-lm-suppress-shortcuts", "true");
  if (text !== undefined) el.textContent = text;
  return el;
}

export function option(doc: Document, value: string, label: string): HTMLOptionElement {
  const o = doc.createElement("option");
  o.value = value;
  o.textContent = label;
  return o;
}

/** Calls `fn` at most every `ms` milliseconds, always ending with a trailing call. */
export function throttle(fn: () => void, ms: number): { call: () => void; flush: () => void; cancel: () => void } {
  let last = 0;
  let timer: ReturnType<typeof setTimeout> | null = null;
  const run = () => {
    timer = null;
    last = Date.now();
    fn();
  };
  return {
    call() {
      const wait = ms - (Date.now() - last);
      if (wait <= 0 && timer === null) run();
      else if (timer === null) timer = setTimeout(run, Math.max(0, wait));
    },
    flush() {
      if (timer !== null) {
        clearTimeout(timer);
        run();
      }
    },
    cancel() {
      if (timer !== null) clearTimeout(timer);
      timer = null;
    },
  };
}

/** A file-name-safe version of a tab id ("task:Copying words" -> "task-Copying_words"). */
export function fileSlug(tab: string): string {
  return tab.replace(/^task:/, "task-").replace(/[^A-Za-z0-9_.-]+/g, "_").slice(0, 80) || "view";
}

/** Text width for a CSS font, from canvas metrics (an estimate where there is no canvas). */
export function measurer(doc: Document, font: string, charWidth: number): (s: string) => number {
  const ctx = doc.createElement("canvas").getContext?.("2d") as CanvasRenderingContext2D | null;
  if (!ctx) return (s) => s.length * charWidth;
  ctx.font = font;
  // a little slack: DOM text and canvas metrics can differ by a pixel or two
  return (s) => ctx.measureText(s).width * 1.04 + 1;
}

/** A CSS colour as the canvas resolves it (e.g. a var() fallback chain's result), or `fallback`. */
export function resolveColor(doc: Document, text: string, fallback: string): string {
  const probe = doc.createElement("canvas").getContext?.("2d") as CanvasRenderingContext2D | null;
  if (!probe) return text || fallback;
  probe.fillStyle = fallback;
  probe.fillStyle = text;
  return String(probe.fillStyle);
}
