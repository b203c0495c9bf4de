// Host theme detection (JupyterLab, VS Code, Colab, OS preference) and the colours canvases use.
import { parseColor } from "./colormap";

export interface Theme {
  dark: boolean;
  bg: string;
  bgRgb: [number, number, number];
  fg: string;
  muted: string;
  border: string;
  accent: string;
  /** errors, and the "fails" badge of a task the model fails */
  error: string;
  font: string;
}

/** true / false when the host says which theme it uses, null when it does not. */
export function hostSaysDark(doc: Document): boolean | null {
  const body = doc.body;
  if (body) {
    const jp = body.dataset.jpThemeLight;
    if (jp === "false") return true;
    if (jp === "true") return false;
    const cls = body.classList;
    if (cls.contains("vscode-dark") || cls.contains("vscode-high-contrast")) return !cls.contains("vscode-high-contrast-light");
    if (cls.contains("vscode-light")) return false;
  }
  const html = doc.documentElement;
  const colab = html?.getAttribute("theme");
  if (colab === "dark") return true;
  if (colab === "light") return false;
  return null;
}

export function detectDark(doc: Document, win: Window | null): boolean {
  const host = hostSaysDark(doc);
  if (host !== null) return host;
  try {
    return !!win?.matchMedia?.("(prefers-color-scheme: dark)").matches;
  } catch {
    return false;
  }
}

const LIGHT = { bg: "#ffffff", fg: "#1f1f1f", muted: "#6b6b6b", border: "#c8c8c8", accent: "#1a73e8", error: "#c62828" };
const DARK = { bg: "#1e1e1e", fg: "#e6e6e6", muted: "#a0a0a0", border: "#4a4a4a", accent: "#8ab4f8", error: "#f28b82" };

/** Colours resolved from the widget root's CSS custom properties (set in widget.css). */
export function readTheme(root: HTMLElement, dark: boolean): Theme {
  const fallback = dark ? DARK : LIGHT;
  let style: CSSStyleDeclaration | null = null;
  try {
    style = root.ownerDocument.defaultView?.getComputedStyle(root) ?? null;
  } catch {
    style = null;
  }
  const prop = (name: string, def: string) => {
    const v = style?.getPropertyValue(name).trim();
    return v ? v : def;
  };
  const bg = prop("--hw-bg", fallback.bg);
  const bgRgb = parseColor(bg) ?? parseColor(fallback.bg)!;
  const font = prop("--hw-font", "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif");
  return {
    dark,
    bg,
    bgRgb,
    fg: prop("--hw-fg", fallback.fg),
    muted: prop("--hw-muted", fallback.muted),
    border: prop("--hw-border", fallback.border),
    accent: prop("--hw-accent", fallback.accent),
    error: prop("--hw-error", fallback.error),
    font,
  };
}
