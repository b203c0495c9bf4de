// The key above the panels: what the marks on the heatmaps mean (threshold outline, fading,
// approximate cells, not-significant cells, tasks the model fails, noisy maps, cells without a
// value), with their toggles.
import type { View } from "./context";
import { h } from "./dom";
import { MIN_OUTLINE_CELL } from "./draw";
import { MIN_GLYPH_CELL, roleKeyItems } from "./roles";
import { failing } from "./state";
import { ALPHA, countedTasks } from "./uncertainty";
import { percentText } from "./units";
import { PATH_LEGEND } from "./paths";

export interface KeyItem {
  /** swatch class: outline, colour, faded, dotted, striped, zoom (no swatch), fails, noisy, hatched */
  mark: string;
  text: string;
  /** a checkbox after the text: the trait it sets (to `on` when checked, `off` when not; by
   * default true / false) and its label */
  toggle?: { trait: "fade_below" | "exact_only" | "mark_insignificant" | "categories_from"; label: string; on?: string; off?: string };
}

const TEST = `Wilcoxon signed-rank over examples, false discovery rate ${Math.round(ALPHA * 100)}% per task`;

/** The key's entries about how sure the maps are: significance marks, noisy maps, categories
 * counted from reliable maps only. */
function uncertaintyItems(v: View, taskPanels: boolean): KeyItem[] {
  const { data, traits } = v;
  const items: KeyItem[] = [];
  if (traits.mode === "significant" && !data.sig) {
    items.push({ mark: "fails", text: "significant heads only: no significance test without per-example effects, so no head passes" });
  }
  if (data.sig) {
    items.push({
      mark: traits.markInsignificant ? "striped" : "colour",
      text: traits.markInsignificant ? `striped: not significant (${TEST})${taskPanels ? "" : "; a category panel: in none of its tasks"}` : `significance tested per head (${TEST})`,
      toggle: { trait: "mark_insignificant", label: "mark not significant" },
    });
  }
  const minR = traits.minReliability;
  const noisy = data.tasks.filter((t) => t.reliability != null && t.reliability < minR).length;
  if (noisy) items.push({ mark: "noisy", text: `noisy: ${noisy} map${noisy === 1 ? "" : "s"} with split-half reliability below ${minR} (add examples)` });
  if (v.activeTab === "categories") {
    const counted = countedTasks(data.tasks, "reliable", minR, traits.minAccuracy);
    const left = counted.filter((c) => !c).length;
    if (left || traits.categoriesFrom === "reliable") {
      items.push({
        mark: "zoom",
        text:
          traits.categoriesFrom === "reliable"
            ? `categories from reliable maps: ${left} noisy or failing task${left === 1 ? "" : "s"} left out`
            : `categories from all tasks, ${left} noisy or failing`,
        toggle: { trait: "categories_from", label: "reliable maps only", on: "reliable", off: "all" },
      });
    }
  }
  return items;
}

/** The key's entries for the view as it is now (pure apart from reading `v`). */
export function keyItems(v: View): KeyItem[] {
  const { data, traits } = v;
  const items: KeyItem[] = [];
  if (!data.stats) return items;
  const taskPanels = v.activeTab !== "categories";
  if (taskPanels) {
    const small = (v.layout?.cell ?? 0) < MIN_OUTLINE_CELL;
    const what =
      traits.mode === "top_percent"
        ? `is in the top ${traits.topPercent}% of its task`
        : traits.mode === "significant"
          ? "is significant and at or above the threshold"
          : "passes the threshold";
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
  items.push(...uncertaintyItems(v, taskPanels));
  items.push(...roleKeyItems(v.roles, (v.layout?.cell ?? 0) < MIN_GLYPH_CELL));
  if (v.paths.count && taskPanels) items.push({ mark: "paths", text: `${PATH_LEGEND} (top ${v.traits.pathEdges} per task)` });
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
    const sig = JSON.stringify([items, v.traits.fadeBelow, v.traits.exactOnly, v.traits.markInsignificant, v.traits.categoriesFrom]);
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
          const box = h(v.doc, "input", { type: "checkbox", class: `hw-${item.toggle.trait.replace(/_/g, "-")}` }) as HTMLInputElement;
          const { trait, on = true, off = false } = item.toggle;
          box.checked = v.model.get(trait) === on;
          box.addEventListener("change", () => v.setTrait(trait, box.checked ? on : off));
          label.append(box, h(v.doc, "span", {}, item.toggle.label));
          row.append(label);
        }
        return row;
      }),
    );
  };
  return { el, sync };
}
