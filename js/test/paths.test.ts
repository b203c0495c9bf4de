// @vitest-environment happy-dom
// Paths between heads on the map: decoding the edges, arrow geometry in both orientations,
// width / colour / channel styles, hit testing and the tooltip, the arrows in an SVG export.
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Panel, View } from "../src/context";
import { drawArrows, edgeAt } from "../src/path-draw";
import { arrowEnds, CHANNEL_STYLES, clipToPlot, edgeColor, edgeLines, edgeWidth, logitsPoint, MAX_WIDTH, MIN_WIDTH, NEGATIVE, POSITIVE, readPaths, segmentDistance, touches } from "../src/paths";
import { SvgContext } from "../src/svg";
import { renderView, standInModel, traitState, unmountViews } from "./fake-model";

/** grid of 2 tasks x 3 layers x 4 heads; task 1: L0H1 -> L2H3 via k (+0.5), L1H0 -> L2H2 via q
 * (-0.2), L2H3 -> logits (+0.8), L0H0 -> L1H1 via v (NaN, never drawn); task 0: L0H2 -> L1H3 via v. */
const EDGES = Int32Array.from([1, 0, 1, 2, 3, 1, 1, 1, 0, 2, 2, 0, 1, 2, 3, -1, -1, 3, 1, 0, 0, 1, 1, 2, 0, 0, 2, 1, 3, 2]);
const EFFECT = Float32Array.from([0.5, -0.2, 0.8, NaN, 0.1]);
const SEM = Float32Array.from([0.05, NaN, 0.1, NaN, 0.02]);
const plot = { left: 10, top: 20, width: 80, height: 60 };
const whole = { r0: 0, c0: 0, rows: 3, cols: 4 };

describe("paths", () => {
  it("decodes the edges and keeps each task's strongest", () => {
    const paths = readPaths(new DataView(EDGES.buffer), new DataView(EFFECT.buffer), new DataView(SEM.buffer), 10, 2, 3, 4);
    expect(paths.count).toBe(4);
    expect(paths.byTask.get(1)!.map((e) => e.effect.toFixed(1))).toEqual(["0.8", "0.5", "-0.2"]);
    expect(paths.byTask.get(1)![0].receiver).toBeNull();
    expect(paths.byTask.get(1)![1]).toMatchObject({ sender: [0, 1], receiver: [2, 3], via: "k" });
    const two = readPaths(EDGES, EFFECT, SEM, 2, 2, 3, 4);
    expect(two.byTask.get(1)!.length).toBe(2);
    expect(readPaths(EDGES, EFFECT, SEM, 0, 2, 3, 4).count).toBe(0);
    // another grid's shape: the out-of-range edges are dropped (2 layers: only task 0's is left)
    expect(readPaths(EDGES, EFFECT, SEM, 10, 2, 2, 4).count).toBe(1);
    expect(readPaths(new Uint8Array(0), new Uint8Array(0), new Uint8Array(0), 10, 2, 3, 4).count).toBe(0);
  });

  it("goes from the sender's cell centre to the receiver's, in both orientations", () => {
    const e = readPaths(EDGES, EFFECT, SEM, 10, 2, 3, 4).byTask.get(1)![1]; // L0H1 -> L2H3
    // layers down: cells 20 x 20; L0H1 at col 1 row 0, L2H3 at col 3 row 2
    expect(arrowEnds("layer_y", plot, whole, 4, e)).toEqual({ x0: 40, y0: 30, x1: 80, y1: 70, head: true });
    // layers along x (3 cols x 4 rows, head 0 at the bottom): cells 80/3 x 15
    const ends = arrowEnds("layer_x", plot, { r0: 0, c0: 0, rows: 4, cols: 3 }, 4, e)!;
    expect(ends.x0).toBeCloseTo(10 + 0.5 * (80 / 3));
    expect(ends.y0).toBeCloseTo(20 + 2.5 * 15); // head 1: row 2
    expect(ends.x1).toBeCloseTo(10 + 2.5 * (80 / 3));
    expect(ends.y1).toBeCloseTo(20 + 0.5 * 15); // head 3: row 0
    // the logits: below the last layer, or right of it
    expect(logitsPoint("layer_y", plot)).toEqual({ x: 50, y: 80, shown: true });
    expect(logitsPoint("layer_x", plot)).toEqual({ x: 90, y: 50, shown: true });
    expect(logitsPoint("layer_y", plot, whole, 3)).toEqual({ x: 50, y: 80, shown: true });
    // a view zoomed to layers 0-1 of 3: one layer past the last, outside the plot, no marker
    expect(logitsPoint("layer_y", plot, { r0: 0, c0: 0, rows: 2, cols: 4 }, 3)).toEqual({ x: 50, y: 110, shown: false });
    expect(logitsPoint("layer_x", plot, { r0: 0, c0: 0, rows: 4, cols: 2 }, 3)).toEqual({ x: 130, y: 50, shown: false });
    // L0H1 -> logits in that view leaves it at the bottom, headless, towards the marker
    const direct = { ...e, receiver: null, via: "logits" as const };
    const leaving = arrowEnds("layer_y", plot, { r0: 0, c0: 0, rows: 2, cols: 4 }, 4, direct, 3)!;
    expect(leaving.head).toBe(false);
    expect(leaving.y1).toBeCloseTo(80);
    expect(leaving.x1).toBeCloseTo(46);
    expect(arrowEnds("layer_y", plot, whole, 4, direct, 3)).toMatchObject({ x1: 50, y1: 80, head: true });
    // zoomed to layers 1-2 (cells 20 x 30): the sender L0H1 is above the view, at (40, 5); the
    // arrow enters at the top, (50, 20), and keeps its head at the receiver
    expect(arrowEnds("layer_y", plot, { r0: 1, c0: 0, rows: 2, cols: 4 }, 4, e)).toEqual({ x0: 50, y0: 20, x1: 80, y1: 65, head: true });
    // zoomed to layers 0-1: it leaves at the bottom, (60, 80), without a head
    const out = arrowEnds("layer_y", plot, { r0: 0, c0: 0, rows: 2, cols: 4 }, 4, e)!;
    expect(out.head).toBe(false);
    expect(out.x0).toBeCloseTo(40);
    expect(out.y0).toBeCloseTo(35);
    expect(out.y1).toBeCloseTo(80);
    expect(out.x1).toBeCloseTo(70);
    // zoomed to head 0 of layer 0 only: the arrow passes nowhere near, not drawn
    expect(arrowEnds("layer_y", plot, { r0: 0, c0: 0, rows: 1, cols: 1 }, 4, e)).toBeNull();
    expect(clipToPlot(0, 0, 5, 5, plot)).toBeNull();
    expect(clipToPlot(20, 30, 30, 40, plot)).toEqual([0, 1]);
  });

  it("maps |effect| to width, sign to colour and the channel to a style", () => {
    expect(edgeWidth(0.8, 0.8)).toBe(MAX_WIDTH);
    expect(edgeWidth(-0.4, 0.8)).toBeCloseTo((MIN_WIDTH + MAX_WIDTH) / 2);
    expect(edgeWidth(0, 0.8)).toBe(MIN_WIDTH);
    expect(edgeColor(0.1)).toBe(POSITIVE);
    expect(edgeColor(-0.1)).toBe(NEGATIVE);
    expect(CHANNEL_STYLES.q.dash).toEqual([]);
    expect(CHANNEL_STYLES.k.dash.length).toBe(2);
    expect(CHANNEL_STYLES.v.dash[0]).toBeLessThan(CHANNEL_STYLES.k.dash[0]);
    expect(CHANNEL_STYLES.logits.head).toBe("open");
  });

  it("says an edge's values and finds the edge under the pointer", () => {
    const paths = readPaths(EDGES, EFFECT, SEM, 10, 2, 3, 4);
    const [logits, k, q] = paths.byTask.get(1)!;
    expect(edgeLines(k)).toEqual(["L0H1 → L2H3 via k", "path effect +0.500 ± 0.098 (95 %)", "the path helps"]);
    expect(edgeLines(logits)[0]).toBe("L2H3 → logits");
    expect(edgeLines(q)[1]).toBe("path effect -0.200");
    expect(touches(k, 2, 3) && touches(k, 0, 1) && !touches(k, 1, 0)).toBe(true);
    expect(segmentDistance(5, 5, { x0: 0, y0: 0, x1: 10, y1: 0 })).toBe(5);
    const v = { paths, data: { shape: [2, 3, 4] }, traits: { orientation: "layer_y", selection: () => null, selectedTask: "" } } as unknown as View;
    const p = { kind: "task", task: 1, name: "b", box: { plot }, window: null } as unknown as Panel;
    expect(edgeAt(v, p, 60, 50)).toBe(k); // the middle of (40, 30)-(80, 70)
    expect(edgeAt(v, p, 12, 78)).toBeNull();
  });

  it("draws the arrows as vector paths into an export, the selection's edges unfaded", () => {
    const paths = readPaths(EDGES, EFFECT, SEM, 10, 2, 3, 4);
    const base = { paths, data: { shape: [2, 3, 4] } };
    const v = { ...base, traits: { orientation: "layer_y", selection: () => null, selectedTask: "" } } as unknown as View;
    const p = { kind: "task", task: 1, name: "b", box: { plot }, window: null } as unknown as Panel;
    const svg = new SvgContext(100, 100);
    expect(drawArrows(v, p, svg as unknown as CanvasRenderingContext2D)).toBe(3);
    const text = svg.toString();
    // L0H1 -> L2H3 starts at (40, 30); each edge in its colour over a halo; the logits marker
    expect(text).toContain("M40 30L");
    expect((text.match(new RegExp(POSITIVE, "g")) ?? []).length).toBeGreaterThanOrEqual(2);
    expect(text).toContain(NEGATIVE);
    expect(text).toContain("stroke-dasharray");
    expect(text).toContain("M50 75L55 80L50 85L45 80");
    // zoomed to layers 0-1: both head-to-head arrows leave at the bottom, drawn without heads;
    // L2H3 -> logits (outside but for a point on the border) is not drawn
    const zoomed = new SvgContext(100, 100);
    expect(drawArrows(v, { ...p, window: { r0: 0, c0: 0, rows: 2, cols: 4 } } as Panel, zoomed as unknown as CanvasRenderingContext2D)).toBe(2);
    expect(zoomed.toString()).not.toContain("Z"); // no closed arrowhead, no logits marker
    const selected = { ...base, traits: { orientation: "layer_y", selection: () => ({ layer: 1, head: 0 }), selectedTask: "" } } as unknown as View;
    const faded = new SvgContext(100, 100);
    drawArrows(selected, p, faded as unknown as CanvasRenderingContext2D);
    expect(faded.toString()).toContain('opacity="0.18"');
  });
});

afterEach(() => {
  unmountViews();
  vi.restoreAllMocks();
});
const tick = () => new Promise((r) => setTimeout(r, 30));

describe("the widget with paths", () => {
  it("shows the arrows' key, gone with path_edges = 0", async () => {
    const values = Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => ((i * 7) % 10) / 10);
    const state = traitState({
      values: new DataView(values.buffer),
      exact: new DataView(new ArrayBuffer(0)),
      shape: [2, 3, 4],
      tasks: [
        { name: "a", category: "Algorithmic", description: "", baseline: null },
        { name: "b", category: "Knowledge", description: "", baseline: null },
      ],
      path_data: new DataView(EDGES.buffer),
      path_effect: new DataView(EFFECT.buffer),
      path_sem: new DataView(SEM.buffer),
      path_edges: 10,
    });
    const { model } = standInModel(state);
    const { root } = renderView(model);
    await tick();
    const keys = Array.from(root.querySelectorAll(".hw-key-item")).map((i) => i.textContent);
    expect(keys.some((t) => t!.startsWith("paths: orange helps, blue hurts"))).toBe(true);
    // (happy-dom has no 2d context: the panels' arrows in an export are checked above and in
    // tests/browser/test_paths_browser.py)
    // the paths bar: a slider to the most edges a task has, setting path_edges
    const slider = root.querySelector<HTMLInputElement>("input.hw-path-edges")!;
    expect(root.querySelector<HTMLElement>(".hw-paths")!.hidden).toBe(false);
    expect(slider.max).toBe("3");
    expect(slider.value).toBe("3");
    slider.value = "1";
    slider.dispatchEvent(new Event("input"));
    slider.dispatchEvent(new Event("change"));
    expect(state.path_edges).toBe(1);
    model.set("path_edges", 0);
    await tick();
    expect(Array.from(root.querySelectorAll(".hw-key-item")).some((i) => i.textContent!.startsWith("paths:"))).toBe(false);
  });
});
