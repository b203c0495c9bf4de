import { describe, expect, it } from "vitest";
import { dimmedLut, lut, lutIndex, LUT_SIZE, parseColor } from "../src/colormap";

/** `#rrggbb` of one value through the view's path (lutIndex, then lut), or null for NaN. */
function colorHex(name: string, v: number, vmin: number, vmax: number): string | null {
  const i = lutIndex(v, vmin, vmax);
  if (i < 0) return null;
  return "#" + Array.from(lut(name).subarray(i * 3, i * 3 + 3), (c) => c.toString(16).padStart(2, "0")).join("");
}

describe("colour look-up tables", () => {
  it("has 256 RGB entries per map", () => {
    for (const name of ["viridis", "magma", "cividis", "diverging"]) expect(lut(name).length).toBe(LUT_SIZE * 3);
  });

  it("matches matplotlib's viridis at both ends", () => {
    expect(colorHex("viridis", 0, 0, 1)).toBe("#440154");
    expect(colorHex("viridis", 1, 0, 1)).toBe("#fde725");
  });

  it("matches magma and cividis ends", () => {
    expect(colorHex("magma", 0, 0, 1)).toBe("#000004");
    expect(colorHex("magma", 1, 0, 1)).toBe("#fcfdbf");
    expect(colorHex("cividis", 0, 0, 1)).toBe("#00224e");
  });

  it("clips values outside [vmin, vmax] to the end colours", () => {
    expect(colorHex("viridis", 0.05, 0, 0.004)).toBe("#fde725");
    expect(colorHex("viridis", -3, 0, 0.004)).toBe("#440154");
    expect(lutIndex(Infinity, 0, 1)).toBe(255);
    expect(lutIndex(-Infinity, 0, 1)).toBe(0);
  });

  it("uses matplotlib's floor(x * 256) bins", () => {
    expect(lutIndex(0.5, 0, 1)).toBe(128);
    expect(lutIndex(0.999, 0, 1)).toBe(255);
    expect(lutIndex(1 / 256 - 1e-9, 0, 1)).toBe(0);
    expect(lutIndex(1 / 256, 0, 1)).toBe(1);
    expect(lutIndex(0.002, 0, 0.004)).toBe(128);
  });

  it("returns no colour for NaN", () => {
    expect(lutIndex(NaN, 0, 1)).toBe(-1);
    expect(colorHex("viridis", NaN, 0, 1)).toBeNull();
  });

  it("diverging map is blue below, white-ish at 0 and red above", () => {
    const [r0, g0, b0] = parseColor(colorHex("diverging", 0, -1, 1)!)!;
    expect(Math.min(r0, g0, b0)).toBeGreaterThan(235);
    const [rl, , bl] = parseColor(colorHex("diverging", -1, -1, 1)!)!;
    expect(bl).toBeGreaterThan(rl);
    const [rh, , bh] = parseColor(colorHex("diverging", 1, -1, 1)!)!;
    expect(rh).toBeGreaterThan(bh);
  });

  it("handles a degenerate scale", () => {
    expect(lutIndex(1, 1, 1)).toBe(255);
    expect(lutIndex(0.5, 1, 1)).toBe(0);
  });

  it("falls back to viridis for an unknown name", () => {
    expect(lut("nope")).toBe(lut("viridis"));
  });
});

describe("colour helpers", () => {
  it("parses hex and rgb() colours", () => {
    expect(parseColor("#fff")).toEqual([255, 255, 255]);
    expect(parseColor("#1f77b4")).toEqual([31, 119, 180]);
    expect(parseColor("rgb(10, 20, 30)")).toEqual([10, 20, 30]);
    expect(parseColor("rgba(10 20 30 / 0.5)")).toEqual([10, 20, 30]);
    expect(parseColor("white")).toBeNull();
    expect(parseColor("#440154")).toEqual(Array.from(lut("viridis").subarray(0, 3)));
  });

  it("dims toward the background, keeping `alpha` of the colour", () => {
    const table = new Uint8Array([200, 100, 0]);
    expect(Array.from(dimmedLut(table, [0, 0, 0], 0.25))).toEqual([50, 25, 0]);
    expect(Array.from(dimmedLut(table, [255, 255, 255], 0.25))).toEqual([241, 216, 191]);
    expect(Array.from(dimmedLut(table, [10, 20, 30], 1))).toEqual([200, 100, 0]);
  });
});

describe("colour tables as pixel words", () => {
  it("hold each entry's r, g, b and alpha 255 in ImageData byte order", async () => {
    const { lutWords } = await import("../src/draw");
    const table = lut("viridis");
    const words = lutWords(table);
    expect(words.length).toBe(table.length / 3);
    const bytes = new Uint8Array(words.buffer);
    for (const k of [0, 1, 127, 255]) {
      expect([...bytes.subarray(k * 4, k * 4 + 4)]).toEqual([table[k * 3], table[k * 3 + 1], table[k * 3 + 2], 255]);
    }
    expect(lutWords(table)).toBe(words); // made once per table
  });
});
