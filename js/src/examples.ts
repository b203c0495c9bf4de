// Per-example drill-down for the selected head, below the across-tasks one: the spread of its
// effects over a task's examples (a histogram on canvas), the examples it changes most (prompt,
// answer, clean and ablated metric) and, when the grid holds the model, its attention pattern
// on a chosen example (token x token canvas in the colour map). The numbers come from the
// kernel on demand (headwidget/views/drill.py): JSON plus little-endian float32 buffers.
import { lut, lutIndex } from "./colormap";
import type { View } from "./context";
import { h, option } from "./dom";
import { formatValue } from "./scale";

export interface ExampleRow {
  index: number;
  prompt: string;
  answer: string;
  /** null where the number is not finite (JSON has no NaN or infinity) */
  clean: number | null;
  ablated: number | null;
  effect: number | null;
}

export interface ExamplesReply {
  type: "hw:examples";
  request?: number;
  task?: string;
  layer?: number;
  head?: number;
  available?: boolean;
  reason?: string;
  error?: string;
  tasks?: string[];
  metric?: string;
  has_model?: boolean;
  n?: number;
  mean?: number | null;
  rows?: ExampleRow[];
}

export interface AttentionReply {
  type: "hw:attention";
  request?: number;
  example?: number;
  tokens?: string[];
  error?: string;
}

/** A float32 array over a buffer the kernel sent (DataView, ArrayBuffer or typed array). */
export function float32Of(buf: unknown): Float32Array {
  if (buf instanceof Float32Array) return buf;
  if (ArrayBuffer.isView(buf)) {
    const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength - (buf.byteLength % 4));
    return new Float32Array(bytes.slice().buffer);
  }
  if (buf instanceof ArrayBuffer) return new Float32Array(buf.slice(0, buf.byteLength - (buf.byteLength % 4)));
  return new Float32Array(0);
}

export interface Histogram {
  lo: number;
  hi: number;
  counts: number[];
  /** finite values counted */
  n: number;
}

/** `bins` equal bins over [min, max] of the finite values, widened to include 0. */
export function histogram(values: ArrayLike<number>, bins: number): Histogram {
  let lo = 0;
  let hi = 0;
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const x = values[i];
    if (!Number.isFinite(x)) continue;
    n++;
    if (x < lo) lo = x;
    if (x > hi) hi = x;
  }
  const counts = new Array<number>(Math.max(1, bins)).fill(0);
  if (hi === lo) hi = lo + 1;
  for (let i = 0; i < values.length; i++) {
    const x = values[i];
    if (!Number.isFinite(x)) continue;
    const b = Math.min(counts.length - 1, Math.floor(((x - lo) / (hi - lo)) * counts.length));
    counts[b]++;
  }
  return { lo, hi, counts, n };
}

/** The task to ask about: the selected one, else the open task tab's, else the first kept. */
export function chooseTask(selected: string, tab: string, kept: string[], names: string[]): string {
  if (selected && names.includes(selected)) return selected;
  const fromTab = tab.startsWith("task:") ? tab.slice(5) : "";
  if (fromTab && names.includes(fromTab)) return fromTab;
  return kept[0] ?? names[0] ?? "";
}

/** `text` cut to `max` characters with an ellipsis. */
export function shorten(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(1, max - 1))}…`;
}

/** A number of the reply as text: "n/a" for null (not finite) and for anything but a finite
 * number (an older kernel sent NaN and infinities as the strings "nan", "inf", "-inf"). */
function fmt(x: unknown): string {
  return typeof x === "number" && Number.isFinite(x) ? formatValue(x) : "n/a";
}

/** Size `canvas` to `width` x `height` CSS pixels at the view's pixel ratio; its cleared 2-d
 * context, drawing in CSS pixels (null without a 2-d context). */
function sizedContext(v: View, canvas: HTMLCanvasElement, width: number, height: number): CanvasRenderingContext2D | null {
  const dpr = v.dpr || 1;
  canvas.width = Math.round(width * dpr);
  canvas.height = Math.round(height * dpr);
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  const ctx = canvas.getContext?.("2d") as CanvasRenderingContext2D | null;
  if (!ctx) return null;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);
  return ctx;
}

/** Draw the histogram of effects into `canvas`, 320 x 56 CSS pixels. */
function drawSpread(v: View, canvas: HTMLCanvasElement, values: Float32Array, mean: number | null): void {
  const width = 320;
  const height = 56;
  const ctx = sizedContext(v, canvas, width, height);
  if (!ctx) return;
  const hist = histogram(values, 24);
  const plotH = height - 14;
  const top = Math.max(1, ...hist.counts);
  const bw = width / hist.counts.length;
  const x = (value: number) => ((value - hist.lo) / (hist.hi - hist.lo)) * width;
  ctx.fillStyle = v.theme.accent;
  hist.counts.forEach((c, i) => {
    const bh = (c / top) * (plotH - 2);
    if (c) ctx.fillRect(i * bw + 0.5, plotH - bh, Math.max(1, bw - 1), bh);
  });
  ctx.fillStyle = v.theme.fg;
  ctx.fillRect(Math.round(x(0)), 0, 1, plotH); // zero: no effect
  if (mean !== null && Number.isFinite(mean)) {
    ctx.fillStyle = v.theme.error;
    ctx.fillRect(Math.round(x(mean)) - 1, 0, 2, plotH);
  }
  ctx.font = `10px ${v.theme.font}`;
  ctx.fillStyle = v.theme.muted;
  ctx.textBaseline = "bottom";
  ctx.textAlign = "left";
  ctx.fillText(formatValue(hist.lo), 0, height);
  ctx.textAlign = "right";
  ctx.fillText(formatValue(hist.hi), width, height);
}

/** Draw head attention `weights` ([n x n], rows: queries) with token labels, in the colour map. */
function drawAttention(v: View, canvas: HTMLCanvasElement, tokens: string[], weights: Float32Array): void {
  const n = tokens.length;
  const cell = Math.max(4, Math.min(18, Math.floor(360 / Math.max(1, n))));
  const labels = tokens.map((t) => shorten(JSON.stringify(t).slice(1, -1), 12));
  const font = `${Math.min(11, cell)}px ${v.theme.font}`;
  const probe = canvas.getContext?.("2d") as CanvasRenderingContext2D | null;
  if (probe) probe.font = font;
  const widest = Math.max(0, ...labels.map((t) => (probe ? probe.measureText(t).width : 6 * t.length)));
  // room for the token labels (left: queries, top: keys), none when the cells are too small
  const label = cell >= 8 ? Math.min(80, Math.ceil(widest) + 6) : 0;
  const size = label + n * cell + 2;
  const ctx = sizedContext(v, canvas, size, size);
  if (!ctx) return;
  const table = lut(v.traits.colormap);
  for (let q = 0; q < n; q++) {
    for (let k = 0; k < n; k++) {
      const w = weights[q * n + k];
      const j = lutIndex(w, 0, 1);
      if (j < 0) continue;
      ctx.fillStyle = `rgb(${table[3 * j]},${table[3 * j + 1]},${table[3 * j + 2]})`;
      ctx.fillRect(label + k * cell, label + q * cell, cell, cell);
    }
  }
  if (!label) return;
  ctx.font = font;
  ctx.fillStyle = v.theme.fg;
  ctx.textBaseline = "middle";
  ctx.textAlign = "right";
  labels.forEach((t, i) => ctx.fillText(t, label - 3, label + (i + 0.5) * cell));
  ctx.save();
  ctx.rotate(-Math.PI / 2);
  ctx.textAlign = "left";
  labels.forEach((t, i) => ctx.fillText(t, -label + 3, label + (i + 0.5) * cell));
  ctx.restore();
}

/** The per-example element and its sync (runs when the selection or the data change). */
export function buildExamples(v: View): { el: HTMLElement; sync(): void; destroy(): void } {
  const doc = v.doc;
  const el = h(doc, "section", { class: "hw-examples", "aria-label": "Selected head on each example" });
  el.hidden = true;
  let asked = "";
  let request = 0;
  let kept: string[] = [];
  let chosenTask = "";
  let last: ExamplesReply | null = null;
  let example = -1;
  let lastSelected = "";

  const ask = (task: string, layer: number, head: number) => {
    request++;
    v.model.send({ type: "hw:examples", request, task, layer, head });
  };

  const renderAttention = (reply: AttentionReply, buffers: unknown[]) => {
    const slot = el.querySelector(".hw-attn");
    if (!slot) return;
    if (reply.error || !reply.tokens) {
      slot.replaceChildren(h(doc, "div", { class: "hw-examples-note hw-error" }, reply.error ?? "no attention weights"));
      return;
    }
    const weights = float32Of(buffers[0]);
    const n = reply.tokens.length;
    if (weights.length !== n * n) return;
    const canvas = h(doc, "canvas", {
      class: "hw-attn-canvas",
      role: "img",
      "aria-label": `attention of the head on example ${reply.example}: ${n} tokens`,
    });
    drawAttention(v, canvas, reply.tokens, weights);
    const note = h(doc, "div", { class: "hw-examples-note" }, `attention weights of example #${reply.example}: rows query, columns key; colour map from 0 to 1`);
    slot.replaceChildren(note, canvas);
  };

  const render = (reply: ExamplesReply, buffers: unknown[]) => {
    el.hidden = false;
    last = reply;
    kept = reply.tasks ?? kept;
    const title = h(doc, "div", { class: "hw-drill-title" }, `Layer ${reply.layer} · Head ${reply.head} on each example of `);
    const pick = h(doc, "select", { class: "hw-examples-task", "aria-label": "Task of the examples" });
    for (const name of kept.length ? kept : [reply.task ?? ""]) pick.append(option(doc, name, name));
    if (reply.task && !kept.includes(reply.task)) pick.append(option(doc, reply.task, reply.task));
    pick.value = reply.task ?? "";
    pick.addEventListener("change", () => {
      chosenTask = pick.value;
      asked = "";
      sync();
    });
    title.append(pick);
    if (reply.error || !reply.available) {
      const why = reply.error ?? reply.reason ?? "no per-example effects";
      el.replaceChildren(title, h(doc, "div", { class: "hw-examples-note" }, `Per-example effects: ${why}.`));
      return;
    }
    const effects = float32Of(buffers[0]);
    const metric = reply.metric ?? "metric";
    const note = h(
      doc,
      "div",
      { class: "hw-examples-note" },
      `drop in ${metric} (clean − ablated, raw units) on each of ${reply.n} examples; mean ${fmt(reply.mean)} (red), 0 (line)`,
    );
    const spread = h(doc, "canvas", { class: "hw-spread", role: "img", "aria-label": `histogram of ${reply.n} per-example effects` });
    drawSpread(v, spread, effects, reply.mean ?? null);
    const table = h(doc, "table", { class: "hw-examples-table" });
    const headRow = h(doc, "tr");
    for (const c of ["#", "prompt", "answer", `clean`, `ablated`, "drop"]) headRow.append(h(doc, "th", {}, c));
    table.append(h(doc, "thead", {}), h(doc, "tbody", {}));
    table.tHead!.append(headRow);
    const rows = reply.rows ?? [];
    if (example < 0 || !rows.some((r) => r.index === example)) example = rows[0]?.index ?? -1;
    for (const r of rows) {
      const tr = h(doc, "tr", { "data-example": String(r.index) });
      tr.classList.toggle("hw-chosen", r.index === example);
      tr.append(
        h(doc, "td", {}, String(r.index)),
        h(doc, "td", { class: "hw-ex-prompt", title: r.prompt }, shorten(r.prompt, 60)),
        h(doc, "td", { class: "hw-ex-answer", title: r.answer }, shorten(r.answer, 24)),
        h(doc, "td", { class: "hw-num" }, fmt(r.clean)),
        h(doc, "td", { class: "hw-num" }, fmt(r.ablated)),
        h(doc, "td", { class: "hw-num" }, fmt(r.effect)),
      );
      tr.addEventListener("click", () => {
        example = r.index;
        for (const other of table.querySelectorAll("tr[data-example]")) other.classList.toggle("hw-chosen", other === tr);
      });
      table.tBodies[0].append(tr);
    }
    const caption = h(doc, "div", { class: "hw-examples-note" }, `the ${rows.length} examples it changes most (largest |drop|; click a row to choose it)`);
    const parts: HTMLElement[] = [title, note, spread, caption, table];
    const attn = h(doc, "div", { class: "hw-attn" });
    if (reply.has_model) {
      const button = h(doc, "button", { class: "hw-attn-button", type: "button", title: "Compute this head's attention on the chosen example (runs the model once)" }, "attention pattern");
      button.addEventListener("click", () => {
        if (example < 0 || !last) return;
        request++;
        attn.replaceChildren(h(doc, "div", { class: "hw-examples-note" }, "computing…"));
        v.model.send({ type: "hw:attention", request, task: last.task, layer: last.layer, head: last.head, example });
      });
      parts.push(button);
    }
    parts.push(attn);
    el.replaceChildren(...parts);
  };

  const onMessage = (msg: unknown, buffers: unknown[] = []) => {
    const m = msg as ExamplesReply | AttentionReply;
    if (!m || typeof m !== "object" || m.request !== request) return;
    if (m.type === "hw:examples") render(m, buffers);
    else if (m.type === "hw:attention") renderAttention(m, buffers);
  };
  v.model.on("msg:custom", onMessage as never);

  const sync = () => {
    const [, nL, nH] = v.data.shape;
    const sel = v.data.stats ? v.traits.selection(nL, nH) : null;
    if (!sel) {
      el.hidden = true;
      asked = "";
      return;
    }
    const names = v.data.tasks.map((t) => t.name);
    if (v.traits.selectedTask !== lastSelected) {
      lastSelected = v.traits.selectedTask;
      chosenTask = ""; // a head clicked in another task's panel: that task
    }
    const task = chooseTask(chosenTask || v.traits.selectedTask, v.traits.tab, kept, names);
    const sig = JSON.stringify([sel, task, v.traits.progress.running]);
    if (sig === asked) return;
    asked = sig;
    ask(task, sel.layer, sel.head);
  };
  const destroy = () => v.model.off("msg:custom", onMessage as never);
  return { el, sync, destroy };
}
