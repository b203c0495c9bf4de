import { describe, expect, it } from "vitest";
import {
  boxWindow,
  cellSpanRect,
  clampedCell,
  autoColumns,
  axisNames,
  cellAt,
  cellRect,
  cellToHead,
  ellipsize,
  gridLayout,
  gridShape,
  headToCell,
  rowOfTick,
  windowShowing,
  wrapLines,
  wrapText,
  zoomWindow,
} from "../src/layout";

describe("small-multiples grid", () => {
  const lay = gridLayout({ width: 1000, nPanels: 8, columns: autoColumns(8, 0), rows: 32, cols: 32, sideWidth: 92 });

  it("puts 8 tasks in 2 rows x 4 columns", () => {
    expect(lay.columns).toBe(4);
    expect(lay.gridRows).toBe(2);
    expect(lay.panels.map((p) => [p.gridRow, p.gridCol])).toEqual([
      [0, 0],
      [0, 1],
      [0, 2],
      [0, 3],
      [1, 0],
      [1, 1],
      [1, 2],
      [1, 3],
    ]);
  });

  it("labels Layer on the left column and Head on the bottom row only", () => {
    expect(lay.panels.map((p) => p.showRowLabel)).toEqual([true, false, false, false, true, false, false, false]);
    expect(lay.panels.map((p) => p.showColLabel)).toEqual([false, false, false, false, true, true, true, true]);
  });

  it("gives every plot the same square cells, inside the width", () => {
    const sizes = new Set(lay.panels.map((p) => `${p.plot.width}x${p.plot.height}`));
    expect(sizes.size).toBe(1);
    expect(lay.panels[0].plot.width).toBe(lay.panels[0].plot.height);
    expect(lay.panels[0].plot.width).toBe(lay.cell * 32);
    expect(lay.width).toBeLessThanOrEqual(1000);
    expect(lay.cell).toBeGreaterThanOrEqual(4);
  });

  it("places panels left to right, top to bottom, without overlap", () => {
    const [a, b, , , e] = lay.panels;
    expect(b.x).toBeGreaterThanOrEqual(a.x + a.canvasWidth);
    expect(e.y).toBeGreaterThanOrEqual(a.y + a.titleHeight + a.canvasHeight);
    expect(e.x).toBe(a.x);
    // plots line up in columns even though the first column has a wider margin
    expect(a.x + a.plot.left).toBeLessThan(b.x + b.plot.left);
    expect(lay.panels[1].x + lay.panels[1].plot.left).toBe(lay.panels[5].x + lay.panels[5].plot.left);
  });

  it("reserves the colour bar column spanning all plots", () => {
    const s = lay.side!;
    const last = lay.panels[7];
    expect(s.left).toBeGreaterThanOrEqual(last.x + last.canvasWidth);
    expect(s.top).toBe(lay.panels[0].titleHeight + lay.panels[0].plot.top);
    expect(s.top + s.height).toBe(last.y + last.titleHeight + last.plot.top + last.plot.height);
  });

  it("uses the grid_columns trait, and fewer columns than panels", () => {
    expect(autoColumns(8, 3)).toBe(3);
    expect(autoColumns(2, 0)).toBe(2);
    expect(autoColumns(0, 0)).toBe(1);
    const l3 = gridLayout({ width: 900, nPanels: 5, columns: 3, rows: 8, cols: 8 });
    expect(l3.gridRows).toBe(2);
    // the third column has no panel below it: it carries the Head label
    expect(l3.panels.map((p) => p.showColLabel)).toEqual([false, false, true, true, true]);
  });

  it("leaves a gutter after the first column for the category legend", () => {
    const l = gridLayout({ width: 1000, nPanels: 5, columns: 5, rows: 32, cols: 32, gutterWidth: 128 });
    const g = l.gutter!;
    expect(g.left).toBeGreaterThanOrEqual(l.panels[0].x + l.panels[0].canvasWidth);
    expect(l.panels[1].x).toBeGreaterThanOrEqual(g.left + g.width);
  });

  it("caps the cell size and plot height", () => {
    const l = gridLayout({ width: 3000, nPanels: 1, columns: 1, rows: 12, cols: 12, maxCell: 20 });
    expect(l.cell).toBe(20);
    const t = gridLayout({ width: 3000, nPanels: 1, columns: 1, rows: 80, cols: 64, maxPlotHeight: 400 });
    expect(t.panels[0].plot.height).toBeLessThanOrEqual(400);
  });
});

describe("cells and pixels", () => {
  const plot = { left: 30, top: 5, width: 160, height: 320 };

  it("maps layer_y: layer = row (0 at top), head = col", () => {
    expect(gridShape("layer_y", 80, 64)).toEqual({ rows: 80, cols: 64 });
    expect(headToCell("layer_y", 3, 5, 64)).toEqual({ row: 3, col: 5 });
    expect(cellToHead("layer_y", 3, 5, 64)).toEqual({ layer: 3, head: 5 });
    expect(rowOfTick("layer_y", 6, 80)).toBe(6);
    expect(axisNames("layer_y")).toEqual({ row: "Layer", col: "Head" });
  });

  it("maps layer_x like figure B: layer = col (0 at left), head 0 in the BOTTOM row", () => {
    expect(gridShape("layer_x", 80, 64)).toEqual({ rows: 64, cols: 80 });
    // row 0 is the top row = the highest head
    expect(headToCell("layer_x", 0, 0, 64)).toEqual({ row: 63, col: 0 });
    expect(headToCell("layer_x", 3, 5, 64)).toEqual({ row: 58, col: 3 });
    expect(headToCell("layer_x", 79, 63, 64)).toEqual({ row: 0, col: 79 });
    expect(cellToHead("layer_x", 58, 3, 64)).toEqual({ layer: 3, head: 5 });
    expect(cellToHead("layer_x", 0, 0, 64)).toEqual({ layer: 0, head: 63 });
    // tick "head 0" at the bottom row, "head 60" near the top
    expect(rowOfTick("layer_x", 0, 64)).toBe(63);
    expect(rowOfTick("layer_x", 60, 64)).toBe(3);
    expect(axisNames("layer_x")).toEqual({ row: "head", col: "layer" });
  });

  it("layer_x: the pixel of layer 0 / head 0 is the bottom-left cell; moving up raises the head", () => {
    const { rows, cols } = gridShape("layer_x", 6, 5);
    const { row, col } = headToCell("layer_x", 0, 0, 5);
    const r = cellRect(plot, rows, cols, row, col);
    expect(r.left).toBe(plot.left);
    expect(r.top + r.height).toBeCloseTo(plot.top + plot.height, 9);
    // one row up (ArrowUp) from head 2 is head 3
    const cell = headToCell("layer_x", 1, 2, 5);
    expect(cellToHead("layer_x", cell.row - 1, cell.col, 5)).toEqual({ layer: 1, head: 3 });
  });

  it("round-trips every head in both orientations", () => {
    for (const o of ["layer_y", "layer_x"] as const) {
      for (let l = 0; l < 7; l++) {
        for (let hd = 0; hd < 5; hd++) {
          const { row, col } = headToCell(o, l, hd, 5);
          const { rows, cols } = gridShape(o, 7, 5);
          expect(row >= 0 && row < rows && col >= 0 && col < cols).toBe(true);
          expect(cellToHead(o, row, col, 5)).toEqual({ layer: l, head: hd });
        }
      }
    }
  });

  it("round-trips every cell centre", () => {
    const rows = 32;
    const cols = 16;
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const rect = cellRect(plot, rows, cols, r, c);
        expect(cellAt(plot, rows, cols, rect.left + rect.width / 2, rect.top + rect.height / 2)).toEqual({ row: r, col: c });
      }
    }
  });

  it("gives exact cell rectangles and nothing outside the plot", () => {
    expect(cellRect(plot, 32, 16, 0, 0)).toEqual({ left: 30, top: 5, width: 10, height: 10 });
    expect(cellRect(plot, 32, 16, 31, 15)).toEqual({ left: 180, top: 315, width: 10, height: 10 });
    expect(cellAt(plot, 32, 16, 29.9, 10)).toBeNull();
    expect(cellAt(plot, 32, 16, 190, 10)).toBeNull();
    expect(cellAt(plot, 32, 16, 189.9, 324.9)).toEqual({ row: 31, col: 15 });
  });
});

describe("text wrapping for panel titles", () => {
  const mono = (s: string) => s.length * 10;
  it("keeps a short title on one line", () => {
    expect(wrapText("Retrieval", 200, mono)).toEqual(["Retrieval"]);
    expect(wrapLines("", 200, mono)).toBe(1);
  });
  it("wraps at spaces", () => {
    expect(wrapText("Semantic Understanding", 130, mono)).toEqual(["Semantic", "Understanding"]);
    expect(wrapText("country → capital city", 140, mono)).toEqual(["country →", "capital city"]);
  });
  it("never breaks inside a word: a word longer than a line is cut with an ellipsis", () => {
    const lines = wrapText("<img src=x onerror=alert(1)>", 80, mono);
    expect(lines.every((l) => mono(l) <= 80)).toBe(true);
    expect(lines).toEqual(["<img", "src=x", "onerror…"]);
    expect(wrapText("All Categories", 60, mono)).toEqual(["All", "Categ…"]);
  });
  it("ends the last allowed line with an ellipsis when the text needs more lines", () => {
    expect(wrapText("a b c d e f", 30, mono, 2)).toEqual(["a b", "c…"]);
  });
});

describe("long names lay out in bounded time", () => {
  // a measure that costs as much as the text is long, as canvas measureText does
  let measured = 0;
  const linear = (s: string) => {
    measured += s.length;
    let w = 0;
    for (let i = 0; i < s.length; i++) w += s.charCodeAt(i) === 0x20 ? 4 : 7;
    return w;
  };
  const timed = <T,>(f: () => T) => {
    measured = 0;
    const t0 = performance.now();
    const out = f();
    return { out, ms: performance.now() - t0, measured };
  };
  it("cuts a 100k-character word in well under a second, measuring a bounded amount of text", () => {
    const word = "x".repeat(100_000);
    const r = timed(() => wrapText(word, 300, linear));
    expect(r.ms).toBeLessThan(500);
    expect(r.measured).toBeLessThan(50_000);
    expect(r.out).toEqual([`${"x".repeat(41)}…`]);
    const e = timed(() => ellipsize(word, 300, linear));
    expect(e.ms).toBeLessThan(500);
    expect(e.measured).toBeLessThan(50_000);
    expect(e.out).toBe(`${"x".repeat(41)}…`);
  });
  it("wraps a 100k-character name of many words in well under a second", () => {
    const name = "ab ".repeat(33_334);
    const r = timed(() => wrapText(name, 300, linear));
    expect(r.ms).toBeLessThan(500);
    expect(r.measured).toBeLessThan(100_000);
    expect(r.out.length).toBe(3);
    expect(r.out[2].endsWith("…")).toBe(true);
    // past MAX_LAYOUT_CHARS the name is cut before layout: the word after a 100k one is not shown
    const lines = timed(() => wrapText(`${"y".repeat(100_000)} ${"z".repeat(50)}`, 300, linear));
    expect(lines.ms).toBeLessThan(500);
    expect(lines.out).toEqual([`${"y".repeat(41)}…`]);
    expect(wrapText(`${"y".repeat(10)} ${"z".repeat(10)}`, 300, linear)).toEqual([`${"y".repeat(10)} ${"z".repeat(10)}`]);
  });
  it("cuts what fits exactly as before, never inside a surrogate pair", () => {
    const mono = (s: string) => s.length * 10;
    expect(ellipsize("abcdefghij", 100, mono)).toBe("abcdefghij");
    expect(ellipsize("abcdefghijk", 100, mono)).toBe("abcdefghi…");
    expect(ellipsize("abc", 5, mono)).toBe("…");
    const emoji = "😀".repeat(10); // two UTF-16 units each
    const cut = ellipsize(emoji, 60, mono);
    expect(cut).toBe("😀😀…");
    expect(ellipsize(`a${emoji}`, 60, mono)).toBe("a😀😀…");
  });
});

describe("tiny models", () => {
  it("grow cells past maxCell up to minPlot so panels stay readable", () => {
    const l = gridLayout({ width: 1000, nPanels: 3, columns: 3, rows: 6, cols: 5, maxCell: 14, minPlot: 150 });
    expect(l.cell).toBe(25);
    expect(l.panels[0].plot.height).toBe(150);
    const big = gridLayout({ width: 1000, nPanels: 3, columns: 3, rows: 32, cols: 32, maxCell: 14, minPlot: 150 });
    expect(big.cell).toBeLessThanOrEqual(14);
  });
});

describe("zoom windows", () => {
  const full = { rows: 80, cols: 64 };
  it("zooms around the cell under the pointer, keeping it there, within the grid", () => {
    const w = zoomWindow(null, full, 0.5, 0.5, 0.5)!;
    expect(w).toEqual({ r0: 20, c0: 16, rows: 40, cols: 32 }); // the middle stays mid-plot
    // the pointer at the top-left corner keeps the grid's corner there
    expect(zoomWindow(null, full, 0, 0, 0.5)).toEqual({ r0: 0, c0: 0, rows: 40, cols: 32 });
    // at 3/4 down and 1/4 across: grid point (60, 16) stays under the pointer
    expect(zoomWindow(null, full, 0.75, 0.25, 0.5)).toEqual({ r0: 30, c0: 8, rows: 40, cols: 32 });
    // never below minCells a side; zooming out past the grid is the whole grid (null)
    let z: ReturnType<typeof zoomWindow> = w;
    for (let i = 0; i < 20; i++) z = zoomWindow(z, full, 0.5, 0.5, 0.5);
    expect(z!.rows).toBe(4);
    expect(z!.cols).toBe(4);
    expect(zoomWindow(w, full, 0.5, 0.5, 4)).toBeNull();
  });
  it("moves a window as little as possible to show a cell", () => {
    const w = { r0: 10, c0: 10, rows: 8, cols: 8 };
    expect(windowShowing(w, 12, 12)).toEqual(w);
    expect(windowShowing(w, 18, 9)).toEqual({ r0: 11, c0: 9, rows: 8, cols: 8 });
  });
});

describe("box zoom", () => {
  const full = { rows: 80, cols: 64 };
  it("zooms to the cells between the corners, in either order", () => {
    expect(boxWindow({ row: 10, col: 20 }, { row: 17, col: 27 }, full)).toEqual({ r0: 10, c0: 20, rows: 8, cols: 8 });
    expect(boxWindow({ row: 17, col: 27 }, { row: 10, col: 20 }, full)).toEqual({ r0: 10, c0: 20, rows: 8, cols: 8 });
    // a box of layers x heads need not be square
    expect(boxWindow({ row: 0, col: 0 }, { row: 39, col: 3 }, full)).toEqual({ r0: 0, c0: 0, rows: 40, cols: 4 });
  });
  it("grows a thin box to minCells a side around its middle, inside the grid", () => {
    expect(boxWindow({ row: 5, col: 5 }, { row: 5, col: 9 }, full, 4)).toEqual({ r0: 4, c0: 5, rows: 4, cols: 5 });
    expect(boxWindow({ row: 79, col: 63 }, { row: 79, col: 63 }, full, 4)).toEqual({ r0: 76, c0: 60, rows: 4, cols: 4 });
    expect(boxWindow({ row: 0, col: 0 }, { row: 0, col: 0 }, { rows: 3, cols: 2 }, 4)).toBeNull();
  });
  it("is the whole grid (null) when the box covers it", () => {
    expect(boxWindow({ row: 0, col: 0 }, { row: 79, col: 63 }, full)).toBeNull();
    expect(boxWindow({ row: -3, col: -1 }, { row: 99, col: 70 }, full)).toBeNull();
  });
  it("finds the nearest cell, inside or outside the plot", () => {
    const plot = { left: 40, top: 10, width: 640, height: 800 }; // 10 px cells of an 80 x 64 grid
    expect(clampedCell(plot, 80, 64, 45, 15)).toEqual({ row: 0, col: 0 });
    expect(clampedCell(plot, 80, 64, 40 + 125, 10 + 331)).toEqual({ row: 33, col: 12 });
    expect(clampedCell(plot, 80, 64, 0, 0)).toEqual({ row: 0, col: 0 });
    expect(clampedCell(plot, 80, 64, 2000, 2000)).toEqual({ row: 79, col: 63 });
    expect(clampedCell(plot, 80, 64, 680, 810)).toEqual({ row: 79, col: 63 }); // the far edge
  });
  it("draws the band over whole cells of the window shown", () => {
    const plot = { left: 0, top: 0, width: 200, height: 100 };
    const w = { r0: 10, c0: 20, rows: 10, cols: 20 }; // 10 px cells
    expect(cellSpanRect(plot, w, { row: 12, col: 25 }, { row: 11, col: 22 })).toEqual({ left: 20, top: 10, width: 40, height: 20 });
    expect(cellSpanRect(plot, w, { row: 10, col: 20 }, { row: 10, col: 20 })).toEqual({ left: 0, top: 0, width: 10, height: 10 });
  });
});
