// Drill-down "what a head writes", below the across-tasks one: the selected head's role scores
// (from the role maps the browser has) and, for a task, its OV circuit read in vocabulary space
// (headwidget/views/writes.py): the MAPS mapping of the task's sources ("France → Paris
// (rank 1)") with the share in its top k, the tokens it promotes and suppresses for a chosen
// source, and a copying task's copying score. The kernel computes them on demand ("hw:writes");
// a saved page shows what grid.precompute_writes() kept in the `writes` trait.
import type { View } from "./context";
import { h, option } from "./dom";
import { chooseTask, shorten } from "./examples";
import { glyphIcon } from "./role-draw";
import { headRoleScores } from "./roles";
import { formatValue } from "./scale";

export interface MappedPair {
  source: string;
  target: string;
  rank: number;
  top: string;
}

/** What a head writes for one task (writes.py head_writes), or why not. */
export interface WritesRecord {
  task?: string;
  layer?: number;
  head?: number;
  reason?: string;
  error?: string;
  sources?: string[];
  mapping?: { k: number; fraction: number | null; in_top: number; n_pairs: number; skipped: number; pairs: MappedPair[] };
  /** per source: the tokens its row raises and lowers most (a `note` where it is not one token) */
  tokens?: Record<string, { promoted: [string, number | null][]; suppressed: [string, number | null][]; note?: string }>;
  copying?: number | null;
}

export interface WritesReply extends WritesRecord {
  type: "hw:writes";
  request?: number;
}

/** "France → Paris (rank 1)", "Italy → Rome (rank 59; top: Italy)". */
export function pairText(p: MappedPair): string {
  const top = p.rank === 1 ? "" : `; top: ${p.top.trim()}`;
  return `${p.source} → ${p.target} (rank ${p.rank}${top})`;
}

/** "28 of 32 pairs in its top 10 (0.875)" and the skipped ones. */
export function fractionText(m: NonNullable<WritesRecord["mapping"]>): string {
  if (!m.n_pairs) return `no pair of single tokens${m.skipped ? ` (${m.skipped} skipped)` : ""}`;
  const share = m.fraction === null ? "n/a" : formatValue(m.fraction);
  const skipped = m.skipped ? `; ${m.skipped} not single tokens, skipped` : "";
  return `${m.in_top} of ${m.n_pairs} pairs in its top ${m.k} (${share}, its projection score)${skipped}`;
}

/** A token as text: quotes keep its spaces visible, control characters escaped. */
export function tokenText(t: string): string {
  return shorten(JSON.stringify(t), 24);
}

/** The precomputed record of head (layer, head) for `task`, if the `writes` trait has one. */
export function precomputed(writes: unknown, layer: number, head: number, task: string): WritesRecord | null {
  if (!writes || typeof writes !== "object") return null;
  const byTask = (writes as Record<string, unknown>)[`${layer},${head}`];
  if (!byTask || typeof byTask !== "object") return null;
  const record = (byTask as Record<string, unknown>)[task];
  return record && typeof record === "object" ? (record as WritesRecord) : null;
}

export function buildWrites(v: View): { el: HTMLElement; sync(): void; destroy(): void } {
  const doc = v.doc;
  const el = h(doc, "section", { class: "hw-writes", "aria-label": "What the selected head writes" });
  el.hidden = true;
  let request = 0;
  let shownKey = "";
  let chosenTask = "";
  let lastSelected = "";
  let source = "";
  /** records by "layer,head|task", tokens merged as sources are asked for */
  const cache = new Map<string, WritesRecord>();
  /** the keys asked for (a reply fills the cache whatever was asked after it) */
  const asked = new Set<string>();
  const offline = () => v.model.get("_saved_page") === true;

  const rolesPart = (layer: number, head: number): HTMLElement => {
    const roles = v.roles;
    const part = h(doc, "div", { class: "hw-writes-roles" });
    if (!roles.names.length) {
      part.append(h(doc, "span", { class: "hw-examples-note" }, "roles: not detected (HeadImportanceGrid(..., roles=detect_heads(model, tokenizer)) or grid.detect_roles())"));
      return part;
    }
    part.append(h(doc, "span", { class: "hw-control-label" }, `roles (${roles.units}, ≥ ${roles.threshold}):`));
    for (const s of headRoleScores(roles, layer * v.data.shape[2] + head)) {
      const item = h(doc, "span", { class: s.passes ? "hw-writes-role hw-role-passes" : "hw-writes-role" });
      item.dataset.role = s.role;
      const r = roles.names.indexOf(s.role);
      if (s.passes) item.append(glyphIcon(doc, roles.shapes[r], 12, v.dpr));
      item.append(h(doc, "span", {}, `${s.role} ${Number.isNaN(s.score) ? "n/a" : s.score.toFixed(2)}`));
      part.append(item);
    }
    return part;
  };

  const ask = (layer: number, head: number, task: string, src: string) => {
    request++;
    v.model.send({ type: "hw:writes", request, task, layer, head, ...(src ? { source: src } : {}) });
  };

  const writesPart = (layer: number, head: number, task: string): HTMLElement[] => {
    const record = cache.get(`${layer},${head}|${task}`) ?? precomputed(v.model.get("writes"), layer, head, task);
    if (!record) {
      const text = offline()
        ? "not computed for this head and task: a saved page shows what grid.precompute_writes(...) kept before saving"
        : "computing what it writes… (needs the model the grid scored)";
      return [h(doc, "div", { class: "hw-examples-note hw-writes-pending" }, text)];
    }
    if (record.error || record.reason) return [h(doc, "div", { class: `hw-examples-note${record.error ? " hw-error" : ""}` }, record.error ?? record.reason!)];
    const parts: HTMLElement[] = [];
    const m = record.mapping;
    if (m) {
      parts.push(h(doc, "div", { class: "hw-writes-fraction" }, fractionText(m)));
      const list = h(doc, "div", { class: "hw-writes-pairs" });
      for (const p of m.pairs.slice(0, 16)) list.append(h(doc, "span", { class: p.rank <= m.k ? "hw-writes-pair hw-in-top" : "hw-writes-pair" }, pairText(p)));
      if (m.pairs.length > 16 || m.n_pairs > m.pairs.length) list.append(h(doc, "span", { class: "hw-examples-note" }, `… ${m.n_pairs - 16} more`));
      parts.push(list);
    }
    if (record.copying != null) parts.push(h(doc, "div", { class: "hw-writes-copying" }, `copying score ${formatValue(record.copying)} (1: writes back the token it reads; −1: suppresses it)`));
    const known = Object.keys(record.tokens ?? {});
    const sources = offline() ? known : (record.sources ?? known);
    if (!sources.length) return parts;
    if (!sources.includes(source)) source = known[0] ?? sources[0];
    const pick = h(doc, "select", { class: "hw-writes-source", "aria-label": "Source token" });
    pick.append(...sources.map((s) => option(doc, s, s)));
    pick.value = source;
    pick.addEventListener("change", () => {
      source = pick.value;
      if (!record.tokens?.[source] && !offline()) ask(layer, head, task, source);
      shownKey = "";
      sync();
    });
    const line = h(doc, "div", { class: "hw-writes-source-line" });
    line.append(h(doc, "span", {}, "when it attends to "), pick);
    parts.push(line);
    const tokens = record.tokens?.[source];
    if (!tokens) {
      parts.push(h(doc, "div", { class: "hw-examples-note" }, offline() ? "not precomputed for this source" : "computing…"));
      return parts;
    }
    if (tokens.note) {
      parts.push(h(doc, "div", { class: "hw-examples-note" }, tokens.note));
      return parts;
    }
    for (const kind of ["promoted", "suppressed"] as const) {
      const row = h(doc, "div", { class: `hw-writes-tokens hw-writes-${kind}` });
      row.append(h(doc, "span", { class: "hw-control-label" }, `${kind}:`));
      for (const [t, logit] of tokens[kind]) row.append(h(doc, "span", { class: "hw-writes-token", title: logit === null ? "n/a" : `logit ${formatValue(logit)}` }, tokenText(t)));
      parts.push(row);
    }
    return parts;
  };

  const render = (layer: number, head: number, task: string) => {
    const names = v.data.tasks.map((t) => t.name);
    const title = h(doc, "div", { class: "hw-drill-title" }, `Layer ${layer} · Head ${head}: its roles and what it writes for `);
    const pickTask = h(doc, "select", { class: "hw-writes-task", "aria-label": "Task whose sources are read" });
    pickTask.append(...names.map((n) => option(doc, n, n)));
    pickTask.value = task;
    pickTask.addEventListener("change", () => {
      chosenTask = pickTask.value;
      shownKey = "";
      sync();
    });
    title.append(pickTask);
    const note = h(doc, "div", { class: "hw-drill-note" }, "its OV circuit read in vocabulary space: each source's target rank in the head's output (1: its top token)");
    el.replaceChildren(title, rolesPart(layer, head), note, ...writesPart(layer, head, task));
  };

  const onMessage = (msg: unknown) => {
    const m = msg as WritesReply;
    if (!m || typeof m !== "object" || m.type !== "hw:writes" || m.layer == null || m.head == null) return;
    const key = `${m.layer},${m.head}|${m.task}`;
    const before = cache.get(key);
    cache.set(key, before && !m.error ? { ...before, ...m, tokens: { ...before.tokens, ...m.tokens } } : m);
    shownKey = "";
    sync();
  };
  v.model.on("msg:custom", onMessage as never);

  function sync() {
    const [, nL, nH] = v.data.shape;
    const sel = v.data.stats ? v.traits.selection(nL, nH) : null;
    if (!sel) {
      el.hidden = true;
      shownKey = "";
      return;
    }
    el.hidden = false;
    const names = v.data.tasks.map((t) => t.name);
    if (v.traits.selectedTask !== lastSelected) {
      lastSelected = v.traits.selectedTask;
      chosenTask = "";
    }
    const task = chooseTask(chosenTask || v.traits.selectedTask, v.traits.tab, [], names);
    const key = JSON.stringify([sel, task, source, v.roles.names, v.roles.threshold, v.roles.values.length, cache.size]);
    if (key === shownKey) return;
    shownKey = key;
    const wanted = `${sel.layer},${sel.head}|${task}`;
    if (!cache.has(wanted) && !asked.has(wanted) && !precomputed(v.model.get("writes"), sel.layer, sel.head, task) && !offline()) {
      asked.add(wanted);
      ask(sel.layer, sel.head, task, "");
    }
    render(sel.layer, sel.head, task);
  }
  const destroy = () => v.model.off("msg:custom", onMessage as never);
  return { el, sync, destroy };
}
