// The header (title, progress), the tab bar and the control row, kept in sync with the traits.
import type { View } from "./context";
import { h, option } from "./dom";
import { exportView } from "./export";
import { formatPercent, formatSig } from "./scale";
import { hasCategories } from "./state";
import { provenanceLine } from "./units";
import { formatExact, parseTyped, SLIDER_STEPS, sliderThreshold, thresholdToPosition } from "./threshold";

export interface Controls {
  header: HTMLElement;
  /** the tabs and, when they overflow, a menu of them */
  tabbar: HTMLElement;
  row: HTMLElement;
  /** Show the traits' current values in the controls. */
  sync(): void;
  /** Make the tab buttons match the tasks and mark the active one. */
  syncTabs(): void;
}

/** Build the header, tabs and controls; `selectTab` switches the active tab. */
export function buildControls(v: View, selectTab: (tab: string) => void): Controls {
  const { doc, traits } = v;
  const header = h(doc, "div", { class: "hw-header" });
  const titleEl = h(doc, "div", { class: "hw-title" });
  const provenanceEl = h(doc, "div", { class: "hw-provenance" });
  const progressEl = h(doc, "div", { class: "hw-progress", role: "status" });
  const progressText = h(doc, "span", { class: "hw-progress-text" });
  const progressBar = h(doc, "span", { class: "hw-progress-bar", "aria-hidden": "true" });
  const progressFill = h(doc, "span", { class: "hw-progress-fill" });
  progressBar.append(progressFill);
  progressEl.append(progressText, progressBar);
  header.append(titleEl, progressEl, provenanceEl);

  const tablist = h(doc, "div", { class: "hw-tabs", role: "tablist", "aria-label": "Views" });
  // when the tabs do not fit one row they scroll, and this menu lists them all
  const tabMenu = h(doc, "select", { class: "hw-tab-menu", "aria-label": "Go to view" });
  const tabbar = h(doc, "div", { class: "hw-tabbar" });
  tabbar.append(tablist, tabMenu);

  const row = h(doc, "div", { class: "hw-controls" });
  const control = (label: string, input: HTMLElement) => {
    const wrap = h(doc, "label", { class: "hw-control" });
    wrap.append(h(doc, "span", { class: "hw-control-label" }, label), input);
    row.append(wrap);
    return wrap;
  };
  const modeSel = h(doc, "select", { class: "hw-threshold-mode", "aria-label": "Threshold mode" });
  // "significant": heads whose cell is significant and at or above the value threshold
  const sigOption = option(doc, "significant", "significant, ≥");
  sigOption.title = "heads that differ significantly from 0 (Wilcoxon signed-rank, FDR 5% per task) and pass the value threshold; needs per-example effects";
  modeSel.append(option(doc, "value", "value ≥"), option(doc, "top_percent", "top %"), sigOption);
  const slider = h(doc, "input", { class: "hw-threshold", type: "range", "aria-label": "Threshold" }) as HTMLInputElement;
  // the exact threshold, editable: any value can be typed, also past the slider's ends
  const valueField = h(doc, "input", {
    class: "hw-threshold-value",
    type: "text",
    inputmode: "decimal",
    autocomplete: "off",
    spellcheck: "false",
    size: "9",
    "aria-label": "Threshold value",
  }) as HTMLInputElement;
  const valueUnit = h(doc, "span", { class: "hw-threshold-unit", "aria-hidden": "true" });
  // why typed text was not taken (it is put back), until the next edit
  const fieldError = h(doc, "span", { class: "hw-field-error", role: "status" });
  const thresholdWrap = h(doc, "div", { class: "hw-control hw-control-threshold" });
  thresholdWrap.append(h(doc, "span", { class: "hw-control-label" }, "Threshold"), modeSel, slider, valueField, valueUnit, fieldError);
  row.append(thresholdWrap);
  const cmapSel = h(doc, "select", { class: "hw-colormap" });
  for (const name of ["viridis", "magma", "cividis", "diverging"]) cmapSel.append(option(doc, name, name));
  control("Colours", cmapSel);
  const normSel = h(doc, "select", { class: "hw-normalization" });
  normSel.append(option(doc, "share", "share of task"), option(doc, "raw", "raw score"));
  control("Scale", normSel);
  const rangeSel = h(doc, "select", { class: "hw-color-range" });
  rangeSel.append(option(doc, "shared", "shared"), option(doc, "per_task", "per task"));
  control("Range", rangeSel);
  const orientSel = h(doc, "select", { class: "hw-orientation" });
  orientSel.append(option(doc, "layer_y", "layers ↓, heads →"), option(doc, "layer_x", "layers →, heads ↑"));
  control("Axes", orientSel);
  const exportFormat = h(doc, "select", { class: "hw-export-format", "aria-label": "Export format" });
  exportFormat.append(option(doc, "png:2", "PNG 2×"), option(doc, "png:3", "PNG 3×"), option(doc, "png:1", "PNG 1×"), option(doc, "svg:1", "SVG"));
  const exportBtn = h(doc, "button", { class: "hw-export", type: "button", title: "Download the view (without the selection)" }, "Export");
  const exportWrap = h(doc, "div", { class: "hw-control" });
  exportWrap.append(exportFormat, exportBtn);
  row.append(exportWrap);

  /** True while the user has typed into the value field and not yet committed it. */
  let editing = false;

  function setField(text: string, unit: string) {
    valueUnit.textContent = unit;
    // a model change (e.g. streamed progress) must not overwrite what is being typed
    if (editing && doc.activeElement === valueField) return;
    editing = false;
    if (valueField.value !== text) valueField.value = text;
  }

  /** Apply the typed value; invalid text (or a percentage outside (0, 100]) reverts. */
  function commitField() {
    if (!editing) return;
    editing = false;
    const typed = valueField.value.trim();
    const value = parseTyped(valueField.value);
    const percent = traits.mode === "top_percent";
    if (value === null || (percent && !(value > 0 && value <= 100))) {
      fieldError.textContent = percent
        ? `"${typed}" is not a percentage in (0, 100]; type e.g. 5`
        : `"${typed}" is not a number; type e.g. 0.003 or 1e-3`;
      valueField.setAttribute("aria-invalid", "true");
      sync();
      return;
    }
    fieldError.textContent = "";
    valueField.removeAttribute("aria-invalid");
    v.setTrait(percent ? "top_percent" : "threshold", value);
    sync();
  }

  function sync() {
    titleEl.textContent = traits.title;
    titleEl.hidden = !titleEl.textContent;
    provenanceEl.textContent = v.data.stats ? provenanceLine(traits.provenance) : "";
    provenanceEl.hidden = !provenanceEl.textContent;
    const mode = traits.mode;
    sigOption.disabled = !v.data.sig && mode !== "significant";
    modeSel.value = mode;
    cmapSel.value = traits.colormap;
    normSel.value = traits.normalization;
    rangeSel.value = traits.colorRange;
    orientSel.value = traits.orientation;
    const { range, sliderDecimals } = v.scale;
    if (mode === "top_percent") {
      const top = traits.topPercent;
      slider.min = "0.1";
      slider.max = "100";
      slider.step = "0.1";
      slider.value = String(top);
      setField(formatExact(top), "%");
      slider.setAttribute("aria-valuetext", `top ${formatPercent(top)} percent of heads per task`);
    } else {
      // positions, not thresholds: see sliderRange / thresholdToPosition
      const threshold = traits.threshold;
      slider.min = "0";
      slider.max = String(SLIDER_STEPS);
      slider.step = "1";
      slider.value = String(thresholdToPosition(threshold, range));
      slider.dataset.lo = String(range.lo);
      slider.dataset.hi = String(range.hi);
      setField(formatExact(threshold), "");
      slider.setAttribute("aria-valuetext", `importance at least ${formatSig(threshold, sliderDecimals)}`);
    }
    // {text, fraction, running, error?} (headwidget/views/widget.py): the text shows whenever there is
    // one ("waiting to score …" before, "error after …" / "interrupted after …" when scoring
    // stopped); the bar only while running
    const prog = traits.progress;
    progressEl.hidden = !prog.text && !prog.running;
    progressEl.classList.toggle("hw-progress-error", prog.error);
    progressText.textContent = prog.text;
    progressBar.hidden = !prog.running;
    progressFill.style.width = `${Math.round(100 * prog.fraction)}%`;
  }

  function syncTabs() {
    const { tasks } = v.data;
    const roles = v.roles.names.length ? ["roles"] : [];
    const want = ["all", ...(hasCategories(tasks) ? ["categories"] : []), ...roles, ...tasks.map((t) => `task:${t.name}`)];
    const have = Array.from(tablist.children).map((b) => (b as HTMLElement).dataset.tab);
    const label = (id: string) => (id === "all" ? "All tasks" : id === "categories" ? "Categories" : id === "roles" ? "Roles" : id.slice(5));
    if (want.join("\u0000") !== have.join("\u0000")) {
      tablist.replaceChildren(
        ...want.map((id) => {
          const b = h(doc, "button", { class: "hw-tab", role: "tab", type: "button" }, label(id));
          b.title = label(id);
          b.dataset.tab = id;
          return b;
        }),
      );
      tabMenu.replaceChildren(...want.map((id) => option(doc, id, label(id))));
    }
    for (const b of Array.from(tablist.children) as HTMLElement[]) {
      const on = b.dataset.tab === v.activeTab;
      b.setAttribute("aria-selected", String(on));
      b.tabIndex = on ? 0 : -1;
      if (on && tablist.scrollWidth > tablist.clientWidth) {
        // keep the active tab in view without scrolling the page
        const left = b.offsetLeft - tablist.offsetLeft;
        if (left < tablist.scrollLeft || left + b.offsetWidth > tablist.scrollLeft + tablist.clientWidth) tablist.scrollLeft = Math.max(0, left - 24);
      }
    }
    tabMenu.value = v.activeTab;
    tabMenu.hidden = !(tablist.scrollWidth > tablist.clientWidth + 1);
  }

  v.listen(slider, "input", () => {
    const value = Number(slider.value);
    if (!Number.isFinite(value)) return;
    if (traits.mode === "top_percent") v.setTrait("top_percent", value, "throttled");
    else v.setTrait("threshold", sliderThreshold(value, v.scale.range), "throttled");
  });
  v.listen(valueField, "input", () => {
    editing = true;
    fieldError.textContent = "";
    valueField.removeAttribute("aria-invalid");
  });
  v.listen(valueField, "change", () => commitField());
  v.listen(valueField, "blur", () => commitField());
  v.listen(valueField, "keydown", (e: KeyboardEvent) => {
    if (e.key === "Enter") {
      e.preventDefault();
      commitField();
    } else if (e.key === "Escape") {
      e.preventDefault();
      editing = false;
      sync();
    }
  });
  v.listen(slider, "change", () => v.flushSave());
  v.listen(modeSel, "change", () => v.setTrait("threshold_mode", modeSel.value));
  v.listen(cmapSel, "change", () => v.setTrait("colormap", cmapSel.value));
  // the model converts the threshold into the new units (Python, or the saved page's model)
  v.listen(normSel, "change", () => v.setTrait("normalization", normSel.value));
  v.listen(rangeSel, "change", () => v.setTrait("color_range", rangeSel.value));
  v.listen(orientSel, "change", () => v.setTrait("orientation", orientSel.value));
  v.listen(exportBtn, "click", () => {
    const [format, scale] = exportFormat.value.split(":");
    exportView(v, format === "svg" ? "svg" : "png", Number(scale) || 2);
  });
  v.listen(tabMenu, "change", () => selectTab(tabMenu.value));
  v.listen(tablist, "click", (e: MouseEvent) => {
    const b = (e.target as HTMLElement).closest?.("button[role=tab]") as HTMLElement | null;
    if (b?.dataset.tab) selectTab(b.dataset.tab);
  });
  v.listen(tablist, "keydown", (e: KeyboardEvent) => {
    const buttons = Array.from(tablist.querySelectorAll<HTMLElement>("button[role=tab]"));
    const i = buttons.indexOf(doc.activeElement as HTMLElement);
    if (i < 0) return;
    let j = -1;
    if (e.key === "ArrowRight") j = (i + 1) % buttons.length;
    else if (e.key === "ArrowLeft") j = (i - 1 + buttons.length) % buttons.length;
    else if (e.key === "Home") j = 0;
    else if (e.key === "End") j = buttons.length - 1;
    if (j < 0) return;
    e.preventDefault();
    buttons[j].focus();
    selectTab(buttons[j].dataset.tab!);
  });
  return { header, tabbar, row, sync, syncTabs };
}
