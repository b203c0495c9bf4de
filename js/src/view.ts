// The widget view: the DOM skeleton, the redraw scheduler and model / environment events.
import { parseColor } from "./colormap";
import { buildControls } from "./controls";
import type { View } from "./context";
import { h, resolveColor, throttle } from "./dom";
import { drawAll, drawPanel } from "./draw";
import { buildDrilldown } from "./drilldown";
import { buildExamples } from "./examples";
import { buildPathControls } from "./path-controls";
import { buildRoleControls } from "./role-controls";
import { EMPTY_PATHS, readPaths } from "./paths";
import { EMPTY_ROLES, readRoles, resolveViewTab } from "./roles";
import { buildWrites } from "./writes";
import { buildKey } from "./key";
import { buildColorbar, buildLegend } from "./legend";
import { buildPanels, panelSpecs } from "./panels";
import { attachPanelEvents, hideTooltip } from "./pointer";
import { countText, deriveScale, deriveThreshold, EMPTY_DATA, EMPTY_SCALE, EMPTY_THRESHOLD, readData } from "./state";
import { detectDark, readTheme } from "./theme";
import { CONTROLS, DATA, DRAW, HOVER, PATHS, ROLES, SCALE, STRUCT, THRESH, TRAIT_FLAGS, Traits, type Model } from "./traits";
import { countedTasks } from "./uncertainty";

/** Render the widget into `el`; returns the cleanup function. */
export function createView(model: Model, el: HTMLElement): () => void {
  const doc = el.ownerDocument;
  const win = doc.defaultView;
  const traits = new Traits(model);
  const cleanups: (() => void)[] = [];
  let dirty = 0;
  let frame: number | null = null;
  let lastWidth = -1;
  let destroyed = false;
  let builtKey = "";

  const root = h(doc, "div", { class: "headwidget", "data-testid": "headwidget" });
  const saver = throttle(() => model.save_changes(), 120);
  const v: View = {
    doc,
    win,
    model,
    traits,
    root,
    grid: h(doc, "div", { class: "hw-grid" }),
    info: h(doc, "div", { class: "hw-task-info" }),
    tooltip: h(doc, "div", { class: "hw-tooltip", role: "tooltip" }),
    live: h(doc, "div", { class: "hw-live hw-visually-hidden", "aria-live": "polite" }),
    theme: readTheme(el, detectDark(doc, win)),
    dpr: 1,
    data: EMPTY_DATA,
    scale: EMPTY_SCALE,
    thresh: EMPTY_THRESHOLD,
    roles: EMPTY_ROLES,
    paths: EMPTY_PATHS,
    panels: [],
    layout: null,
    activeTab: "all",
    hover: null,
    colorbar: null,
    schedule,
    setTrait(name, value, save = "now") {
      model.set(name, value);
      if (save === "now") {
        saver.cancel();
        model.save_changes();
      } else saver.call();
    },
    flushSave: () => saver.flush(),
    zoom: (p) => selectTab(`task:${p.name}`),
    listen(target, type, fn, opts) {
      target.addEventListener(type, fn, opts);
      cleanups.push(() => target.removeEventListener(type, fn, opts));
    },
  };
  const controls = buildControls(v, selectTab);
  const message = h(doc, "div", { class: "hw-message", role: "alert" });
  const key = buildKey(v);
  const drill = buildDrilldown(v);
  const examples = buildExamples(v);
  cleanups.push(examples.destroy);
  const roleControls = buildRoleControls(v);
  const pathControls = buildPathControls(v);
  const writes = buildWrites(v);
  cleanups.push(writes.destroy);
  v.tooltip.hidden = true;
  root.append(controls.header, controls.tabbar, controls.row, roleControls.el, pathControls.el, message, v.info, key.el, v.grid, drill.el, writes.el, examples.el, v.tooltip, v.live);
  // JupyterLab (Lumino) skips its command-mode shortcuts (arrows, "d d", "a", "b") for key
  // events from inside an element with this attribute, so arrow keys move the selected head
  // instead of the notebook's active cell.
  root.setAttribute("data-lm-suppress-shortcuts", "true");
  el.append(root);
  cleanups.push(() => root.remove());

  function refreshTheme() {
    const dark = detectDark(doc, win);
    root.classList.toggle("hw-dark", dark);
    root.classList.toggle("hw-light", !dark);
    const theme = readTheme(root, dark);
    theme.bg = resolveColor(doc, theme.bg, dark ? "#1e1e1e" : "#ffffff");
    theme.bgRgb = parseColor(theme.bg) ?? theme.bgRgb;
    v.theme = theme;
  }

  function availableWidth(): number {
    const w = root.clientWidth || el.clientWidth || 0;
    return w > 100 ? w - 4 : 960;
  }

  const panelCount = (t: number) =>
    countText(v.thresh.classes ? v.thresh.classes.passes[t] : 0, traits.mode, traits.threshold, traits.topPercent, v.scale.sliderDecimals);

  /** Everything the DOM skeleton depends on: streamed values alone do not rebuild it. */
  function structureKey(): string {
    const { tasks, shape, error } = v.data;
    return JSON.stringify([
      resolveViewTab(traits.tab, tasks, v.roles),
      shape,
      tasks.map((t) => [t.name, t.category, t.description, t.baseline]),
      error,
      traits.orientation,
      traits.colorRange,
      traits.normalization,
      traits.minAccuracy,
      tasks.map((t) => t.accuracy),
      tasks.map((t) => t.reliability),
      traits.minReliability,
      traits.categoriesFrom,
      model.get("grid_columns"),
      availableWidth(),
      win?.devicePixelRatio ?? 1,
      v.theme.font,
      v.theme.dark,
      v.roles.names,
      v.activeTab === "roles" ? v.roles.counts : null,
    ]);
  }

  function rebuild() {
    const key = structureKey();
    if (key === builtKey && v.panels.length) return;
    builtKey = key;
    v.activeTab = resolveViewTab(traits.tab, v.data.tasks, v.roles);
    controls.syncTabs();
    root.dataset.tab = v.activeTab;
    v.hover = null;
    hideTooltip(v);
    v.grid.replaceChildren();
    v.info.replaceChildren();
    v.panels = [];
    v.layout = null;
    v.colorbar = null;
    if (v.data.error || !v.data.stats) {
      v.grid.style.height = "0px";
      return;
    }
    buildPanels(v, panelSpecs(v), availableWidth(), panelCount);
    for (const p of v.panels) attachPanelEvents(v, p);
    if (v.layout!.side) buildColorbar(v, v.layout!);
    if (v.layout!.gutter) buildLegend(v, v.layout!);
  }

  function selectTab(tab: string) {
    if (tab === v.activeTab && tab === model.get("tab")) return;
    v.setTrait("tab", tab);
    // the change event redraws; call directly as well in case the model does not echo
    if (resolveViewTab(traits.tab, v.data.tasks, v.roles) !== v.activeTab) schedule(STRUCT);
  }

  function schedule(flags: number) {
    dirty |= flags;
    if (frame !== null || destroyed) return;
    const raf = win?.requestAnimationFrame?.bind(win);
    frame = raf ? raf(() => flush()) : (setTimeout(() => flush(), 16) as unknown as number);
  }

  function flush() {
    frame = null;
    if (destroyed) return;
    let f = dirty;
    dirty = 0;
    const t0 = performance.now();
    if (f & DATA) {
      v.data = readData(model.get("shape"), model.get("values"), model.get("tasks"), traits.normalization, model.get("exact"), traits.exactOnly, {
        sem: model.get("sem"),
        significant: model.get("significant"),
      });
      message.textContent = v.data.error;
      message.hidden = !v.data.error;
      f |= SCALE | THRESH | STRUCT | CONTROLS | ROLES | PATHS;
    }
    if (f & PATHS) {
      const [nT, nL, nH] = v.data.shape;
      v.paths = readPaths(model.get("path_data"), model.get("path_effect"), model.get("path_sem"), model.get("path_edges"), nT, nL, nH);
      f |= DRAW | CONTROLS;
    }
    if (f & ROLES) {
      const [, nL, nH] = v.data.shape;
      v.roles = readRoles(model.get("role_info"), model.get("role_values"), nL, nH, {
        threshold: model.get("role_threshold"),
        shown: model.get("roles_shown"),
        filter: model.get("role_filter"),
      });
      f |= DRAW | CONTROLS;
    }
    if (f & SCALE) {
      v.scale = deriveScale(v.data, {
        colorRange: traits.colorRange,
        diverging: traits.colormap === "diverging",
        vmin: traits.vmin,
        vmax: traits.vmax,
      });
      f |= DRAW | CONTROLS;
    }
    if (f & THRESH) {
      const counted = countedTasks(v.data.tasks, traits.categoriesFrom, traits.minReliability, traits.minAccuracy);
      v.thresh = deriveThreshold(v.data, traits.mode, traits.threshold, traits.topPercent, v.theme.dark, counted);
      for (const p of v.panels) if (p.countEl) p.countEl.textContent = panelCount(p.task);
      f |= DRAW;
    }
    if (f & STRUCT) {
      rebuild();
      f |= DRAW;
    }
    if (f & CONTROLS) {
      controls.sync();
      roleControls.sync();
      pathControls.sync();
    }
    if (f) key.sync();
    if (f & (DRAW | CONTROLS)) {
      drill.sync();
      writes.sync();
      examples.sync();
    }
    if (f & DRAW) {
      drawAll(v);
      root.dataset.lastRedrawMs = (performance.now() - t0).toFixed(2);
      root.dataset.ready = "true";
    } else if (f & HOVER) {
      for (const p of v.panels) drawPanel(v, p);
      root.dataset.lastHoverMs = (performance.now() - t0).toFixed(2);
    }
  }

  for (const [trait, flags] of Object.entries(TRAIT_FLAGS)) {
    const cb = () => schedule(flags);
    model.on(`change:${trait}`, cb);
    cleanups.push(() => model.off(`change:${trait}`, cb));
  }
  if (win && "MutationObserver" in win) {
    const mo = new win.MutationObserver(() => {
      refreshTheme();
      schedule(THRESH | DRAW | STRUCT);
    });
    if (doc.body) mo.observe(doc.body, { attributes: true, attributeFilter: ["class", "data-jp-theme-light", "data-jp-theme-name"] });
    mo.observe(doc.documentElement, { attributes: true, attributeFilter: ["class", "theme"] });
    cleanups.push(() => mo.disconnect());
  }
  const mq = win?.matchMedia?.("(prefers-color-scheme: dark)");
  if (mq?.addEventListener) {
    const cb = () => {
      refreshTheme();
      schedule(THRESH | STRUCT | DRAW);
    };
    mq.addEventListener("change", cb);
    cleanups.push(() => mq.removeEventListener("change", cb));
  }
  if (win && "ResizeObserver" in win) {
    const ro = new (win as any).ResizeObserver(() => {
      const w = root.clientWidth;
      const d = win.devicePixelRatio || 1;
      if (Math.abs(w - lastWidth) > 1 || d !== v.dpr) {
        lastWidth = w;
        schedule(STRUCT);
      }
    });
    ro.observe(root);
    cleanups.push(() => ro.disconnect());
  }

  // first draw, synchronously so that the widget is complete when render() returns
  refreshTheme();
  lastWidth = root.clientWidth;
  dirty = DATA | CONTROLS;
  flush();

  return () => {
    destroyed = true;
    saver.cancel();
    if (frame !== null) {
      win?.cancelAnimationFrame?.(frame);
      clearTimeout(frame);
    }
    for (const fn of cleanups.reverse()) fn();
  };
}
