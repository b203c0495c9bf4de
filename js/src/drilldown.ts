// Drill-down for the selected head, below the grid: its importance in every task (bars on one
// scale, with rank, approximate values and tasks the model fails marked).
import type { View } from "./context";
import { h } from "./dom";
import { formatValue } from "./scale";
import { failing } from "./state";
import { rankOf } from "./threshold";
import { unitText } from "./units";

export interface DrillRow {
  task: string;
  value: number;
  rank: number;
  of: number;
  approximate: boolean;
  fails: boolean;
  passes: boolean;
}

/** One row per task for head (layer, head), in the current normalization (pure apart from `v`). */
export function drillRows(v: View, layer: number, head: number): DrillRow[] {
  const { data, thresh } = v;
  const [, nL, nH] = data.shape;
  const size = nL * nH;
  const i = layer * nH + head;
  const fails = failing(data.tasks, v.traits.minAccuracy);
  return data.tasks.map((task, t) => {
    const value = data.norm[t * size + i];
    const sorted = data.stats!.sorted[t];
    return {
      task: task.name,
      value,
      rank: Number.isNaN(value) ? 0 : rankOf(sorted, value),
      of: sorted.length,
      approximate: !!data.exact && !data.exact[t * size + i],
      fails: fails[t],
      passes: value >= thresh.cutoffs[t],
    };
  });
}

/** The drill-down element and its sync (runs when the selection or the data change). */
export function buildDrilldown(v: View): { el: HTMLElement; sync(): void } {
  const el = h(v.doc, "section", { class: "hw-drill", "aria-label": "Selected head" });
  el.hidden = true;
  let shown = "";
  const sync = () => {
    const [, nL, nH] = v.data.shape;
    const sel = v.data.stats ? v.traits.selection(nL, nH) : null;
    if (!sel || v.data.tasks.length < 2) {
      el.hidden = true;
      shown = "";
      return;
    }
    const rows = drillRows(v, sel.layer, sel.head);
    const unit = unitText(v.traits.normalization, v.traits.provenance.metric);
    const sig = JSON.stringify([sel, rows, unit, v.traits.selectedTask]);
    if (sig === shown) return;
    shown = sig;
    el.hidden = false;
    const top = Math.max(...rows.map((r) => Math.abs(r.value)).filter((x) => x === x), 0) || 1;
    const head = h(v.doc, "div", { class: "hw-drill-title" }, `Layer ${sel.layer} · Head ${sel.head} in every task`);
    const note = h(v.doc, "div", { class: "hw-drill-note" }, `importance (${unit}); bars on one scale; outlined: passes the threshold`);
    const list = h(v.doc, "div", { class: "hw-drill-rows", role: "table" });
    for (const r of rows) {
      const row = h(v.doc, "div", { class: "hw-drill-row", role: "row" });
      row.classList.toggle("hw-fails", r.fails);
      row.classList.toggle("hw-drill-selected", r.task === v.traits.selectedTask);
      row.dataset.task = r.task;
      const name = h(v.doc, "span", { class: "hw-drill-task", role: "cell", title: r.task }, r.task);
      const track = h(v.doc, "span", { class: "hw-drill-track", role: "cell" });
      const bar = h(v.doc, "span", { class: "hw-drill-bar" });
      bar.style.width = `${Number.isNaN(r.value) ? 0 : Math.round((100 * Math.max(0, r.value)) / top)}%`;
      bar.classList.toggle("hw-drill-pass", r.passes);
      bar.classList.toggle("hw-drill-approx", r.approximate);
      track.append(bar);
      const bits = [Number.isNaN(r.value) ? "n/a" : formatValue(r.value), Number.isNaN(r.value) ? "" : `rank ${r.rank}/${r.of}`];
      if (r.approximate) bits.push("approximate");
      if (r.fails) bits.push("model fails");
      const text = h(v.doc, "span", { class: "hw-drill-value", role: "cell" }, bits.filter(Boolean).join(" · "));
      row.append(name, track, text);
      list.append(row);
    }
    el.replaceChildren(head, note, list);
  };
  return { el, sync };
}
