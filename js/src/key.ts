// The key above the panels: what the marks on the heatmaps mean (threshold outline, fading,
// approximate cells, tasks the model fails, cells without a value), with their toggles.
import type { View } from "./context";
import { h } from "./dom";
import { MIN_OUTLINE_CELL } from "./draw";
import { failing } from "./state";
import { percentText } from "./units";

export interface KeyItem {
  /** swatch class: outline, colour, faded, dotted, zoom (no swatch), fails, hatched */
  mark: string;
  text: string;
  /** a checkbox after the text: the boolean trait it sets and its label */
  toggle?: { trait: "fade_below" | "exact_only"; label: string };
}

/** The key's entries for the view as it is now (pure apart from reading `v`). */
export function keyItems(v: View): KeyItem[] {
  const { data, traits } = v;
  const items: KeyItem[] = [];
  if (!data.stats) return items;
  const taskPanels = v.activeTab !== "categories";
  if (taskPanels) {
    const small = (v.layout?.cell ?? 0) < MIN_OUTLINE_CELL;
    const what = traits.mode === "top_percent" ? `is in the top ${traits.topPercent}% of its task` : "passes the threshold";
    items.push({
      mark: "outline",
      text: `outlined: head ${what}${small ? ` (drawn on cells of ${MIN_OUTLINE_CELL} px or more: zoom in)` : ""}`,
    });
    items.push({
      mark: traits.fadeBelow ? "faded" : "colour",
      text: traits.fadeBelow ? "faded: below the threshold" : "true colours: every cell in its colour map colour",
      toggle: { trait: "fade_below", label: "fade heads below the threshold" },
    });
  }
  if (data.exact) {
    const method = traits.provenance.method;
    const total = data.values.length;
    items.push({
      mark: "dotted",
      text: data.exactOnly
        ? `exact cells only: ${data.approximate} approximate (${method}) cells hidden`
        : `dotted: approximate (${method}), ${data.approximate} of ${total} cells`,
      toggle: { trait: "exact_only", label: "exact only" },
    });
  }
  if (v.activeTab.startsWith("task:")) {
    items.push({ mark: "zoom", text: "wheel over the map: zoom in and out; drag a box: zoom to those layers × heads; double click: the whole map" });
  }
  const fails = failing(data.tasks, traits.minAccuracy);
  if (taskPanels && fails.some(Boolean)) {
    items.push({ mark: "fails", text: `model fails: clean accuracy below ${percentText(traits.minAccuracy)} (its map says little)` });
  }
  const shown = data.stats.sorted.reduce((n, s) => n + s.length, 0);
  if (shown < data.norm.length) items.push({ mark: "hatched", text: data.exactOnly ? "hatched: no exact value" : "hatched: no value (not scored yet)" });
  return items;
}

/** The key element and its sync (rebuilt only when its entries change). */
export function buildKey(v: View): { el: HTMLElement; sync(): void } {
  const el = h(v.doc, "div", { class: "hw-key", role: "note", "aria-label": "Key" });
  let shown = "";
  const sync = () => {
    const items = keyItems(v);
    const sig = JSON.stringify([items, v.traits.fadeBelow, v.traits.exactOnly]);
    if (sig === shown) return;
    shown = sig;
    el.hidden = !items.length;
    el.replaceChildren(
      ...items.map((item) => {
        const row = h(v.doc, "span", { class: "hw-key-item" });
        row.dataset.mark = item.mark;
        row.append(h(v.doc, "span", { class: `hw-key-swatch hw-key-${item.mark}`, "aria-hidden": "true" }), h(v.doc, "span", {}, item.text));
        if (item.toggle) {
          const label = h(v.doc, "label", { class: "hw-key-toggle" });
          const box = h(v.doc, "input", { type: "checkbox", class: `hw-${item.toggle.trait.replace("_", "-")}` }) as HTMLInputElement;
          const trait = item.toggle.trait;
          box.checked = v.model.get(trait) === true;
          box.addEventListener("change", () => v.setTrait(trait, box.checked));
          label.append(box, h(v.doc, "span", {}, item.toggle.label));
          row.append(label);
        }
        return row;
      }),
    );
  };
  return { el, sync };
}
