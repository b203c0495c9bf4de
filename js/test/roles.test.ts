// @vitest-environment happy-dom
// Head roles on the map: decoding the role maps, where the glyphs go, the filter, the texts, the
// glyphs drawn as vectors, the roles bar, the Roles tab, and the drill-down "what a head writes".
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Panel, View } from "../src/context";
import { drawGlyphs } from "../src/role-draw";
import {
  EMPTY_ROLES,
  glyphPolygon,
  GLYPH_SHAPES,
  glyphShapes,
  glyphSlots,
  headGlyphs,
  readRoles,
  resolveViewTab,
  roleCountText,
  roleKeyItems,
  roleLine,
  roleScale,
  roleTooltip,
} from "../src/roles";
import { SvgContext } from "../src/svg";
import { fractionText, pairText, precomputed } from "../src/writes";
import { exportSvg, renderView, standInModel, traitState, unmountViews } from "./fake-model";

const NAMES = ["previous token", "induction", "first token"];
const INFO = { names: NAMES, shapes: ["triangle", "diamond", "circle"], descriptions: ["", "", ""], units: "attention share" };

/** 3 roles x 2 layers x 3 heads: (0, 1) previous token, (1, 2) induction and previous token,
 * layer 0 all first token. */
function roleValues(): Float32Array {
  const v = new Float32Array(3 * 6).fill(0.1);
  v[0 * 6 + 1] = 0.8;
  v[0 * 6 + 5] = 0.5;
  v[1 * 6 + 5] = 0.9;
  for (let h = 0; h < 3; h++) v[2 * 6 + h] = 0.7;
  return v;
}

const read = (opts: { threshold?: unknown; shown?: unknown; filter?: unknown } = {}) =>
  readRoles(INFO, new DataView(roleValues().buffer), 2, 3, { threshold: 0.4, shown: ["previous token", "induction"], filter: "", ...opts });

describe("role maps", () => {
  it("decodes the maps and marks the heads of the shown roles", () => {
    const roles = read();
    expect(roles.names).toEqual(NAMES);
    expect(roles.shapes).toEqual(["triangle", "diamond", "circle"]);
    expect(Array.from(roles.glyphs).map((b, i) => [i, headGlyphs(roles, i)]).filter(([, g]) => (g as number[]).length)).toEqual([
      [1, [0]],
      [5, [0, 1]],
    ]);
    expect(roles.counts).toEqual([2, 1, 3]);
    expect(roles.any).toBe(true);
    expect(roles.keep).toBeNull();
    const all = read({ shown: NAMES });
    expect(headGlyphs(all, 0)).toEqual([2]);
    const higher = read({ threshold: 0.6 });
    expect(headGlyphs(higher, 5)).toEqual([1]);
    expect(higher.counts).toEqual([1, 1, 3]);
  });

  it("the filter keeps the heads with its role, and only they keep glyphs", () => {
    const roles = read({ filter: "induction" });
    expect(roles.filter).toBe(1);
    expect(Array.from(roles.keep!)).toEqual([0, 0, 0, 0, 0, 1]);
    expect(headGlyphs(roles, 1)).toEqual([]);
    expect(headGlyphs(roles, 5)).toEqual([0, 1]);
  });

  it("shows nothing for maps of another size or no roles", () => {
    expect(readRoles(INFO, new DataView(roleValues().buffer), 3, 3, { threshold: 0.4, shown: [], filter: "" })).toBe(EMPTY_ROLES);
    expect(readRoles({}, new DataView(new ArrayBuffer(0)), 2, 3, { threshold: 0.4, shown: [], filter: "" })).toBe(EMPTY_ROLES);
  });

  it("gives every role a shape as roles.py does, and fits the glyphs in a cell", () => {
    expect(glyphShapes(["induction", "two back", "previous token", "x"])).toEqual(["diamond", "triangle_up", "triangle", "plus"]);
    for (const shape of GLYPH_SHAPES) {
      const points = glyphPolygon(shape);
      expect(points.length).toBeGreaterThanOrEqual(3);
      expect(Math.max(...points.flat().map(Math.abs))).toBeLessThanOrEqual(1 + 1e-9);
    }
    expect(glyphSlots(1)).toEqual({ offsets: [0], radius: 0.4 });
    const two = glyphSlots(2);
    expect(two.offsets).toEqual([-0.25, 0.25]);
    expect(two.radius).toBeCloseTo(0.23);
  });

  it("says what a head's roles are", () => {
    const roles = read();
    expect(roleLine(roles, 5)).toBe("roles: induction 0.90, previous token 0.50");
    expect(roleLine(roles, 3)).toBe("roles: none ≥ 0.4");
    expect(roleLine(EMPTY_ROLES, 0)).toBe("");
    expect(roleTooltip(roles, 1, 1, 2)).toEqual(["induction", "Layer 1 · Head 2", "attention share 0.900 (≥ 0.4: has the role)", "roles: induction 0.90, previous token 0.50"]);
    expect(roleCountText(roles, 2)).toBe("3 heads ≥ 0.4");
    expect(roleScale(roles)).toEqual({ vmin: 0, vmax: 1, clippedTop: false });
    const keys = roleKeyItems(read({ filter: "induction" }), true);
    expect(keys.map((k) => k.mark)).toEqual(["glyph", "faded"]);
    expect(keys[0].text).toContain("previous token, induction (drawn on cells of 4 px or more");
    expect(keys[1].text).toBe("faded: heads without the role induction (attention share < 0.4)");
    expect(resolveViewTab("roles", [], roles)).toBe("roles");
    expect(resolveViewTab("roles", [], EMPTY_ROLES)).toBe("all");
  });

  it("draws the glyphs as vector paths into an export, on the right cells", () => {
    const roles = read();
    const v = { roles, data: { shape: [1, 2, 3] }, traits: { orientation: "layer_y" }, dpr: 1 } as unknown as View;
    const p = { box: { plot: { left: 10, top: 20, width: 60, height: 40 } }, window: null, bctx: {} } as unknown as Panel;
    const svg = new SvgContext(100, 100);
    drawGlyphs(v, p, svg as unknown as CanvasRenderingContext2D, 1);
    const text = svg.toString();
    // 3 glyphs (one on head (0, 1), two on (1, 2)), each filled then stroked
    const filled = text.match(/<path [^>]*fill="#ffffff"/g) ?? [];
    expect(filled.length).toBe(3);
    // head (0, 1): the cell centred at x = 10 + 1.5 * 20 = 40, y = 20 + 0.5 * 20 = 30; its triangle
    // points left from x = 40 - 0.4 * 20 = 32
    expect(text).toContain("M32 30L");
    // too small cells: none
    const tiny = { ...p, box: { plot: { left: 0, top: 0, width: 6, height: 4 } } } as unknown as Panel;
    const none = new SvgContext(10, 10);
    drawGlyphs(v, tiny, none as unknown as CanvasRenderingContext2D, 1);
    expect(none.toString()).not.toContain("<path");
  });
});

describe("what a head writes", () => {
  it("writes pairs, fractions and finds precomputed records", () => {
    expect(pairText({ source: "France", target: "Paris", rank: 1, top: " Paris" })).toBe("France → Paris (rank 1)");
    expect(pairText({ source: "Italy", target: "Rome", rank: 59, top: " Italy" })).toBe("Italy → Rome (rank 59; top: Italy)");
    expect(fractionText({ k: 10, fraction: 0.875, in_top: 28, n_pairs: 32, skipped: 1, pairs: [] })).toBe(
      "28 of 32 pairs in its top 10 (0.875, its projection score); 1 not single tokens, skipped",
    );
    const writes = { "1,2": { capital: { task: "capital" } } };
    expect(precomputed(writes, 1, 2, "capital")).toEqual({ task: "capital" });
    expect(precomputed(writes, 1, 2, "other")).toBeNull();
    expect(precomputed(null, 1, 2, "capital")).toBeNull();
  });
});

// -- the widget with roles ------------------------------------------------------------------

const tick = () => new Promise((r) => setTimeout(r, 40));
afterEach(() => {
  unmountViews();
  vi.restoreAllMocks();
});

function mount(overrides: Record<string, unknown> = {}) {
  const values = Float32Array.from({ length: 2 * 2 * 3 }, (_, i) => ((i * 7) % 10) / 10);
  const state = traitState({
    values: new DataView(values.buffer),
    exact: new DataView(new ArrayBuffer(0)),
    shape: [2, 2, 3],
    tasks: [
      { name: "copying", category: "Algorithmic", description: "", baseline: null },
      { name: "capital", category: "Knowledge", description: "", baseline: null },
    ],
    role_info: INFO,
    role_values: new DataView(roleValues().buffer),
    roles_shown: ["previous token", "induction"],
    role_threshold: 0.4,
    role_filter: "",
    writes: {},
    ...overrides,
  });
  const { model } = standInModel(state);
  const sent: unknown[] = [];
  (model as { send: (content: unknown) => void }).send = (content) => void sent.push(content);
  const handlers: ((msg: unknown) => void)[] = [];
  const on = model.on;
  model.on = ((e: string, f: () => void) => (e === "msg:custom" ? handlers.push(f as never) : on(e, f))) as typeof model.on;
  const { root } = renderView(model);
  const reply = (msg: unknown) => handlers.forEach((f) => f(msg));
  return { root, state, model, sent, reply };
}

describe("the widget with role maps", () => {
  it("has a roles bar whose controls set the role traits", async () => {
    const { root, state } = mount();
    const toggles = Array.from(root.querySelectorAll<HTMLElement>(".hw-role-toggle"));
    expect(toggles.map((t) => t.dataset.role)).toEqual(NAMES);
    expect(toggles.map((t) => t.querySelector("input")!.checked)).toEqual([true, true, false]);
    expect(toggles.map((t) => t.querySelector(".hw-role-count")!.textContent)).toEqual(["(2)", "(1)", "(3)"]);
    const box = toggles[2].querySelector("input")!;
    box.checked = true;
    box.dispatchEvent(new Event("change"));
    expect(state.roles_shown).toEqual(NAMES);
    const filter = root.querySelector<HTMLSelectElement>("select.hw-role-filter")!;
    filter.value = "induction";
    filter.dispatchEvent(new Event("change"));
    expect(state.role_filter).toBe("induction");
    await tick();
    const keys = Array.from(root.querySelectorAll(".hw-key-item")).map((i) => i.textContent);
    expect(keys.some((t) => t!.startsWith("faded: heads without the role induction"))).toBe(true);
    const threshold = root.querySelector<HTMLInputElement>("input.hw-role-threshold")!;
    threshold.value = "0.6";
    threshold.dispatchEvent(new Event("change"));
    expect(state.role_threshold).toBe(0.6);
    await tick();
    expect(root.querySelectorAll<HTMLElement>(".hw-role-count")[0].textContent).toBe("(1)");
  });

  it("shows each role's map on the Roles tab, and no roles bar without roles", async () => {
    const { root, state } = mount();
    const tabs = Array.from(root.querySelectorAll<HTMLElement>("button.hw-tab")).map((b) => b.dataset.tab);
    expect(tabs).toEqual(["all", "categories", "roles", "task:copying", "task:capital"]);
    root.querySelector<HTMLElement>('button.hw-tab[data-tab="roles"]')!.click();
    expect(state.tab).toBe("roles");
    await tick();
    expect(Array.from(root.querySelectorAll<HTMLCanvasElement>("canvas.hw-canvas")).map((c) => c.dataset.panel)).toEqual(NAMES);
    expect(Array.from(root.querySelectorAll(".hw-role-panel-count")).map((c) => c.textContent)).toEqual(["2 heads ≥ 0.4", "1 head ≥ 0.4", "3 heads ≥ 0.4"]);
    expect(root.querySelector(".hw-colorbar-title")!.textContent).toBe("Role score (attention share)");
    const plain = mount({ role_info: {}, role_values: new DataView(new ArrayBuffer(0)), tab: "roles" });
    expect(plain.root.querySelector<HTMLElement>(".hw-roles")!.hidden).toBe(true);
    expect(plain.root.querySelector('button.hw-tab[data-tab="roles"]')).toBeNull();
    expect(plain.root.dataset.tab).toBe("all");
  });

  it("puts the glyphs' legend and the filter into the SVG export", async () => {
    const { root, model } = mount();
    model.set("role_filter", "induction");
    await tick();
    const svg = await exportSvg(root);
    const texts = Array.from(svg.querySelectorAll("text")).map((t) => t.textContent);
    expect(texts).toContain("previous token (2)");
    expect(texts).toContain("induction (1)");
    expect(texts).not.toContain("first token (3)");
    expect(texts.join(" ")).toContain("faded: heads without the role induction");
    // each legend entry's glyph, white with its rim
    expect(svg.querySelectorAll('path[fill="#ffffff"]').length).toBeGreaterThanOrEqual(2);
  });

  it("asks the kernel what the selected head writes and shows the answer", async () => {
    const { root, model, sent, reply } = mount();
    model.set("selected_head", [1, 2]);
    model.set("selected_task", "capital");
    await tick();
    const section = root.querySelector<HTMLElement>(".hw-writes")!;
    expect(section.hidden).toBe(false);
    // its role scores, from the maps the browser has
    const roles = Array.from(section.querySelectorAll<HTMLElement>(".hw-writes-role"));
    expect(roles.map((r) => r.dataset.role)).toEqual(["induction", "previous token", "first token"]);
    expect(roles.map((r) => r.classList.contains("hw-role-passes"))).toEqual([true, true, false]);
    expect(sent).toContainEqual({ type: "hw:writes", request: 1, task: "capital", layer: 1, head: 2 });
    expect(section.textContent).toContain("computing what it writes");
    reply({
      type: "hw:writes",
      request: 1,
      task: "capital",
      layer: 1,
      head: 2,
      sources: ["France", "Japan"],
      mapping: { k: 10, fraction: 0.5, in_top: 1, n_pairs: 2, skipped: 0, pairs: [{ source: "France", target: "Paris", rank: 1, top: " Paris" }, { source: "Japan", target: "Tokyo", rank: 30, top: " Japan" }] },
      tokens: { France: { promoted: [[" Paris", 12.5]], suppressed: [[" Berlin", -3]] } },
      copying: null,
    });
    await tick();
    expect(Array.from(section.querySelectorAll(".hw-writes-pair")).map((p) => p.textContent)).toEqual(["France → Paris (rank 1)", "Japan → Tokyo (rank 30; top: Japan)"]);
    expect(section.querySelector(".hw-writes-fraction")!.textContent).toContain("1 of 2 pairs in its top 10 (0.5");
    expect(section.querySelector(".hw-writes-promoted")!.textContent).toContain('" Paris"');
    // another source: asked for, as the kernel computes it on demand
    const pick = section.querySelector<HTMLSelectElement>("select.hw-writes-source")!;
    pick.value = "Japan";
    pick.dispatchEvent(new Event("change"));
    expect(sent[sent.length - 1]).toMatchObject({ type: "hw:writes", task: "capital", layer: 1, head: 2, source: "Japan" });
  });

  it("a saved page shows what was precomputed and asks nothing", async () => {
    const record = {
      task: "copying",
      layer: 0,
      head: 1,
      sources: ["cat"],
      mapping: { k: 1, fraction: 1, in_top: 1, n_pairs: 1, skipped: 0, pairs: [{ source: "cat", target: "cat", rank: 1, top: " cat" }] },
      tokens: { cat: { promoted: [[" cat", 3]], suppressed: [[" dog", -1]] } },
      copying: 0.86,
    };
    const { root, model, sent } = mount({ _saved_page: true, writes: { "0,1": { copying: record } } });
    model.set("selected_head", [0, 1]);
    model.set("selected_task", "copying");
    await tick();
    const section = root.querySelector<HTMLElement>(".hw-writes")!;
    expect(section.querySelector(".hw-writes-pair")!.textContent).toBe("cat → cat (rank 1)");
    expect(section.querySelector(".hw-writes-copying")!.textContent).toContain("copying score 0.86");
    model.set("selected_task", "capital");
    await tick();
    expect(section.textContent).toContain("a saved page shows what grid.precompute_writes(...) kept");
    expect(sent.filter((m) => (m as { type: string }).type === "hw:writes")).toEqual([]);
  });
});
