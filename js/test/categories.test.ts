import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  categoryColors,
  categoryNames,
  classify,
  codeLabel,
  headCategories,
  legendLabels,
  type Classification,
} from "../src/categories";
import { computeStats } from "../src/data";
import { taskCutoffs } from "../src/threshold";
import { countedTasks, groupReliabilityNote, reliabilityNote, type CategoriesFrom } from "../src/uncertainty";

interface Case {
  name: string;
  shape: [number, number, number];
  values: (number | null)[];
  categories: (string | null)[];
  threshold_mode: "value" | "top_percent" | "significant";
  threshold: number;
  top_percent: number;
  significant?: number[];
  reliability?: (number | null)[];
  accuracy?: (number | null)[];
  min_reliability?: number;
  min_accuracy?: number;
  categories_from?: CategoriesFrom;
  expected: {
    counted: boolean[];
    task_notes: string[];
    panel_notes: Record<string, string>;
    cutoffs: (number | null)[];
    passes_per_task: number[];
    labels: string[];
    membership: Record<string, number[]>;
    category_order: string[];
    legend: string[];
    colors: Record<string, string>;
  };
}

const here = dirname(fileURLToPath(import.meta.url));
const fixturePath = resolve(here, "../../tests/fixtures/categories_cases.json");
const fixture = JSON.parse(readFileSync(fixturePath, "utf-8")) as { cases: Case[] } | Case[];
const cases: Case[] = Array.isArray(fixture) ? fixture : fixture.cases;

/** Label of every head, as the view shows them (tooltips of the All Categories panel). */
const labels = (r: Classification) => Array.from(r.codes, (c) => codeLabel(c, r.names));

/** The case's tasks as the view reads them (reliability, accuracy; null unknown). */
function taskInfo(c: Case) {
  return c.categories.map((_, t) => ({ reliability: c.reliability?.[t] ?? null, accuracy: c.accuracy?.[t] ?? null }));
}

/** Run the whole JS pipeline the view uses: float32 values -> sorted stats -> cutoffs -> which
 * tasks count -> classify (significant mode: gated by the codes, all 0 without any). */
function run(c: Case) {
  const values = Float32Array.from(c.values, (v) => (v === null ? NaN : v));
  const stats = computeStats(values, c.shape);
  const cutoffs = taskCutoffs(stats.sorted, c.threshold_mode, c.threshold, c.top_percent);
  const counted = countedTasks(taskInfo(c), c.categories_from ?? "all", c.min_reliability ?? 0.7, c.min_accuracy ?? 0.2);
  const gate = c.threshold_mode === "significant" ? Uint8Array.from(c.significant ?? new Array(values.length).fill(0)) : null;
  return { cutoffs, counted, result: classify(values, c.shape, c.categories, cutoffs, { gate, counted }) };
}

describe("category rule matches headwidget/views/categories.py (tests/fixtures/categories_cases.json)", () => {
  it("has cases", () => {
    expect(cases.length).toBeGreaterThanOrEqual(10);
  });

  for (const c of cases) {
    describe(c.name, () => {
      const { cutoffs, counted, result } = run(c);
      it("cutoffs", () => {
        expect(Array.from(cutoffs, (x) => (Number.isFinite(x) ? x : null))).toEqual(c.expected.cutoffs);
      });
      it("passes per task", () => {
        expect(Array.from(result.passes)).toEqual(c.expected.passes_per_task);
      });
      it("labels", () => {
        expect(labels(result)).toEqual(c.expected.labels);
      });
      it("membership and category order", () => {
        expect(result.names).toEqual(c.expected.category_order);
        const membership = Object.fromEntries(result.names.map((n, k) => [n, Array.from(result.membership[k])]));
        expect(membership).toEqual(c.expected.membership);
      });
      it("tasks counted and the titles' reliability lines", () => {
        expect(counted).toEqual(c.expected.counted);
        const minR = c.min_reliability ?? 0.7;
        const rel = taskInfo(c).map((t) => t.reliability);
        expect(rel.map((r) => reliabilityNote(r, minR).text)).toEqual(c.expected.task_notes);
        const panels: Record<string, number[]> = { "All Categories": c.categories.flatMap((cat, t) => (cat != null ? [t] : [])) };
        for (const name of result.names) panels[name] = c.categories.flatMap((cat, t) => (cat === name ? [t] : []));
        const notes = Object.fromEntries(
          Object.entries(panels).map(([name, tasks]) => [
            name,
            groupReliabilityNote(
              tasks.map((t) => rel[t]),
              tasks.map((t) => counted[t]),
              minR,
              c.categories_from ?? "all",
            ).text,
          ]),
        );
        expect(notes).toEqual(c.expected.panel_notes);
      });
      it("legend and colours", () => {
        expect(legendLabels(result.names)).toEqual(c.expected.legend);
        expect(Object.fromEntries(categoryColors(result.names))).toEqual(c.expected.colors);
      });
    });
  }
});

describe("category rule, hand-computed", () => {
  // 2 tasks x 1 layer x 3 heads
  const values = new Float32Array([0.5, 0.1, 0.3, 0.2, 0.6, 0.35]);
  it("assigns single and multiple categories", () => {
    const r = classify(values, [2, 1, 3], ["Knowledge", "Linguistic"], [0.25, 0.25]);
    expect(labels(r)).toEqual(["Knowledge", "Linguistic", "2 categories"]);
    expect(Array.from(r.passes)).toEqual([2, 2]);
    expect(headCategories(r, 2)).toEqual(["Knowledge", "Linguistic"]);
    expect(headCategories(r, 0)).toEqual(["Knowledge"]);
  });

  it("tasks without a category pass but never classify", () => {
    const r = classify(values, [2, 1, 3], [null, "Linguistic"], [0.25, 0.25]);
    expect(labels(r)).toEqual(["Unclassified", "Linguistic", "Linguistic"]);
    expect(Array.from(r.passes)).toEqual([2, 2]);
  });

  it("two tasks of one category still give one category", () => {
    const r = classify(values, [2, 1, 3], ["Knowledge", "Knowledge"], [0.25, 0.25]);
    expect(labels(r)).toEqual(["Knowledge", "Knowledge", "Knowledge"]);
  });

  it("category order and legend follow figure B", () => {
    const names = categoryNames(["Algorithmic", null, "Knowledge", "Linguistic", "Algorithmic", "Translation"]);
    expect(names).toEqual(["Algorithmic", "Knowledge", "Linguistic", "Translation"]);
    expect(legendLabels(names)).toEqual([
      "4 categories",
      "3 categories",
      "2 categories",
      "Translation",
      "Linguistic",
      "Knowledge",
      "Algorithmic",
      "Unclassified",
    ]);
    const colors = categoryColors([...names, "Syntax", "Memory", "Math", "Other"]);
    expect(colors.get("Algorithmic")).toBe("#1f77b4");
    expect(colors.get("Translation")).toBe("#d62728");
    expect(["Syntax", "Memory", "Math", "Other"].map((n) => colors.get(n))).toEqual(["#17becf", "#bcbd22", "#7f7f7f", "#17becf"]);
    expect(colors.get("Unclassified")).toBe("#d9d9d9");
  });
});

describe("category names that are Object.prototype keys", () => {
  const names = ["__proto__", "constructor", "toString"];

  it("get their own colours, legend entries and labels", () => {
    const colors = categoryColors(names);
    expect(names.map((n) => colors.get(n))).toEqual(["#17becf", "#bcbd22", "#7f7f7f"]);
    expect(colors.get("hasOwnProperty")).toBeUndefined();
    for (const label of legendLabels(names)) expect(colors.get(label)).toMatch(/^#[0-9a-f]{6}$/);
    // 3 tasks x 1 layer x 3 heads: head 0 passes task 0 only, head 1 tasks 1 and 2, head 2 none
    const values = new Float32Array([0.9, 0, 0, 0, 0.9, 0, 0, 0.9, 0]);
    const r = classify(values, [3, 1, 3], names, [0.5, 0.5, 0.5]);
    expect(r.names).toEqual(names);
    expect(labels(r)).toEqual(["__proto__", "2 categories", "Unclassified"]);
    expect(headCategories(r, 1)).toEqual(["constructor", "toString"]);
    expect(categoryNames(["toString", null, "toString", "__proto__"])).toEqual(["toString", "__proto__"]);
  });

  it("do not change the colours of other categories", () => {
    const colors = categoryColors(["__proto__", "Knowledge", "constructor"]);
    expect(colors.get("Knowledge")).toBe("#ff7f0e");
    expect([colors.get("__proto__"), colors.get("constructor")]).toEqual(["#17becf", "#bcbd22"]);
    expect(Object.getPrototypeOf(Object.fromEntries(colors))).toBe(Object.prototype);
  });
});
