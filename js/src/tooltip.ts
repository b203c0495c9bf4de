// What the tooltip and the screen-reader announcement say about a head (pure).
import { codeLabel, headCategories, UNCLASSIFIED, type Classification } from "./categories";
import type { PanelSpec } from "./context";
import type { Normalization } from "./data";
import { formatValue } from "./scale";
import type { DataState } from "./state";
import { roleLine, roleTooltip, type RoleState } from "./roles";
import { rankOf } from "./threshold";
import { ALPHA, intervalText, NOT_SIGNIFICANT, SIGNIFICANT } from "./uncertainty";
import { percentText, unitText } from "./units";

/** What the tooltip needs beyond the data: the metric (for units), method, failing limit and
 * the scale shown (the interval is converted into it). */
export interface TooltipContext {
  metric: string;
  method: string;
  minAccuracy: number;
  normalization: Normalization;
  /** the head roles, for the roles line (none: no line) */
  roles?: RoleState;
}

/** " ± 0.0012 (95 %)" for cell `k` of task `t` in the units shown; "" where its standard error is
 * unknown. */
function interval(data: DataState, t: number, k: number, c: TooltipContext): string {
  if (!data.sem) return "";
  const sum = data.sums[t];
  const text = intervalText(data.sem[k], c.normalization === "share" && sum > 0 ? sum : 1);
  return text ? ` ${text} (95 %)` : "";
}

/** What the uncertainty of cell `k` adds to the tooltip: where its interval comes from, and
 * whether it is significant. */
function uncertaintyLines(data: DataState, k: number): string[] {
  const lines: string[] = [];
  const raw = data.values[k];
  if (data.sem && Number.isFinite(data.sem[k]) && data.exact && !data.exact[k] && raw === raw) {
    lines.push("± from per-example estimates (approximate cell)");
  }
  const code = data.sig ? data.sig[k] : -1;
  const test = `Wilcoxon signed-rank, FDR ${Math.round(ALPHA * 100)}%`;
  if (code === SIGNIFICANT) lines.push(`significant (${test})`);
  else if (code === NOT_SIGNIFICANT) lines.push(`not significant (${test})`);
  return lines;
}

/**
 * Tooltip lines for head (layer, head) in a panel: title, position, importance in the current
 * units, then (task panels) raw and share values, rank, categories, whether the value is
 * approximate, and the task's clean accuracy.
 */
export function tooltipLines(data: DataState, classes: Classification | null, p: PanelSpec, layer: number, head: number, c: TooltipContext): string[] {
  const i = layer * data.shape[2] + head;
  if (p.kind === "role" && c.roles) return roleTooltip(c.roles, p.role ?? 0, layer, head);
  const lines = panelLines(data, classes, p, layer, head, c);
  const roles = c.roles ? roleLine(c.roles, i) : "";
  return roles ? [...lines, roles] : lines;
}

function panelLines(data: DataState, classes: Classification | null, p: PanelSpec, layer: number, head: number, c: TooltipContext): string[] {
  const { norm, shape, tasks, stats } = data;
  const nH = shape[2];
  const size = shape[1] * nH;
  const i = layer * nH + head;
  const cats = classes ? headCategories(classes, i) : [];
  const catLine = `categories: ${cats.length ? cats.join(", ") : "none"}`;
  const where = `Layer ${layer} · Head ${head}`;
  if (p.kind === "task") {
    const k = p.task * size + i;
    const v = norm[k];
    const nValid = stats!.sorted[p.task].length;
    const raw = data.values[k];
    const sum = data.sums[p.task];
    const lines = [
      p.name,
      where,
      `importance ${Number.isNaN(v) ? "n/a" : `${formatValue(v)}${interval(data, p.task, k, c)}`}`,
      Number.isNaN(raw) ? "raw n/a" : `raw ${formatValue(raw)}${c.metric ? ` (${unitText("raw", c.metric)})` : ""} · share ${formatValue(sum > 0 ? raw / sum : raw)}`,
      Number.isNaN(v) ? `rank n/a of ${nValid}` : `rank ${rankOf(stats!.sorted[p.task], v)} of ${nValid}`,
      catLine,
    ];
    if (data.exact && raw === raw) lines.push(data.exact[k] ? "exact value" : `approximate (${c.method}): not yet checked exactly`);
    if (raw === raw) lines.push(...uncertaintyLines(data, k));
    const acc = tasks[p.task].accuracy;
    if (acc != null) lines.push(acc < c.minAccuracy ? `model fails this task: clean accuracy ${percentText(acc)} < ${percentText(c.minAccuracy)}` : `clean accuracy ${percentText(acc)}`);
    return lines;
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
    `importance ${formatValue(bestV)} (${tasks[best].name})${interval(data, best, best * size + i, c)}`,
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
