// What the tooltip and the screen-reader announcement say about a head (pure).
import { codeLabel, headCategories, UNCLASSIFIED, type Classification } from "./categories";
import type { PanelSpec } from "./context";
import { formatValue } from "./scale";
import type { DataState } from "./state";
import { rankOf } from "./threshold";

/** Tooltip lines for head (layer, head) in a panel: title first. */
export function tooltipLines(data: DataState, classes: Classification | null, p: PanelSpec, layer: number, head: number): string[] {
  const { norm, shape, tasks, stats } = data;
  const nH = shape[2];
  const size = shape[1] * nH;
  const i = layer * nH + head;
  const cats = classes ? headCategories(classes, i) : [];
  const catLine = `categories: ${cats.length ? cats.join(", ") : "none"}`;
  const where = `Layer ${layer} · Head ${head}`;
  if (p.kind === "task") {
    const v = norm[p.task * size + i];
    const nValid = stats!.sorted[p.task].length;
    return [
      p.name,
      where,
      `importance ${Number.isNaN(v) ? "n/a" : formatValue(v)}`,
      Number.isNaN(v) ? `rank n/a of ${nValid}` : `rank ${rankOf(stats!.sorted[p.task], v)} of ${nValid}`,
      catLine,
    ];
  }
  // category panels: the head's most important task among the panel's tasks
  const names = classes?.names ?? [];
  let best = -1;
  let bestV = -Infinity;
  tasks.forEach((task, t) => {
    if (task.category == null) return;
    if (p.kind === "category" && task.category !== names[p.category]) return;
    const v = norm[t * size + i];
    if (v > bestV) {
      bestV = v;
      best = t;
    }
  });
  if (best < 0) return [p.name, where, "importance n/a", "rank n/a", catLine];
  const label = classes ? codeLabel(classes.codes[i], classes.names) : UNCLASSIFIED;
  return [
    p.name,
    where,
    `importance ${formatValue(bestV)} (${tasks[best].name})`,
    `rank ${rankOf(stats!.sorted[best], bestV)} of ${stats!.sorted[best].length}`,
    p.kind === "allcats" ? `${catLine} (${label})` : catLine,
  ];
}

/** What a screen reader hears when the keyboard moves the selection. */
export function announcement(data: DataState, classes: Classification | null, p: PanelSpec, layer: number, head: number): string {
  const size = data.shape[1] * data.shape[2];
  const i = layer * data.shape[2] + head;
  if (p.kind === "task") {
    const v = data.norm[p.task * size + i];
    return `Layer ${layer}, head ${head}, importance ${Number.isNaN(v) ? "n/a" : formatValue(v)}`;
  }
  const cats = classes ? headCategories(classes, i) : [];
  return `Layer ${layer}, head ${head}, categories: ${cats.length ? cats.join(", ") : "none"}`;
}
