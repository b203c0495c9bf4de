// @vitest-environment happy-dom
// The per-example drill-down (src/examples.ts): its pure helpers, and the panel against a
// stand-in model that answers the kernel's messages.
import { afterEach, describe, expect, it } from "vitest";
import { chooseTask, float32Of, histogram, shorten } from "../src/examples";
import { renderView, standInModel, traitState, unmountViews } from "./fake-model";

describe("helpers", () => {
  it("reads float32 from a DataView at an offset", () => {
    const raw = new Float32Array([9, 1.5, -2, 3]);
    const view = new DataView(raw.buffer, 4, 12);
    expect(Array.from(float32Of(view))).toEqual([1.5, -2, 3]);
    expect(float32Of(null).length).toBe(0);
  });

  it("bins finite values over a range that includes zero", () => {
    const hist = histogram([1, 2, 3, 4, Number.NaN], 3);
    expect([hist.lo, hist.hi, hist.n]).toEqual([0, 4, 4]);
    expect(hist.counts).toEqual([1, 1, 2]);
    expect(histogram([], 4).counts).toEqual([0, 0, 0, 0]);
  });

  it("asks about the selected task, else the open tab's, else the first kept", () => {
    const names = ["a", "b", "c"];
    expect(chooseTask("b", "task:c", ["a"], names)).toBe("b");
    expect(chooseTask("", "task:c", ["a"], names)).toBe("c");
    expect(chooseTask("", "all", ["b"], names)).toBe("b");
    expect(chooseTask("gone", "all", [], names)).toBe("a");
  });

  it("shortens with an ellipsis", () => {
    expect(shorten("abcdef", 4)).toBe("abc…");
    expect(shorten("abc", 4)).toBe("abc");
  });
});

afterEach(unmountViews);

function mount() {
  const values = Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => ((i * 7) % 10) / 10);
  const state = traitState({
    values: new DataView(values.buffer),
    exact: new DataView(new ArrayBuffer(0)),
    shape: [2, 3, 4],
    tasks: [
      { name: "copying", category: null, description: "", baseline: null, accuracy: 0.9 },
      { name: "counting", category: null, description: "", baseline: null, accuracy: 0.9 },
    ],
  });
  const { model, listeners } = standInModel(state);
  const sent: Record<string, any>[] = [];
  model.send = ((msg: Record<string, any>) => sent.push(msg)) as never;
  const { root } = renderView(model);
  const reply = (msg: unknown, buffers: unknown[] = []) => {
    for (const f of listeners.get("msg:custom") ?? []) (f as (m: unknown, b: unknown[]) => void)(msg, buffers);
  };
  return { root, model, sent, reply };
}

const tick = () => new Promise((r) => setTimeout(r, 40));

describe("the per-example panel", () => {
  it("asks the kernel about a clicked head and lists its top examples", async () => {
    const { root, model, sent, reply } = mount();
    const panel = root.querySelector<HTMLElement>(".hw-examples")!;
    expect(panel.hidden).toBe(true);
    model.set("selected_head", [1, 2]);
    model.set("selected_task", "counting");
    await tick();
    const ask = sent.at(-1)!;
    expect(ask).toMatchObject({ type: "hw:examples", task: "counting", layer: 1, head: 2 });
    const effects = new Float32Array([0.5, -1.25, 2]);
    const rows = [
      { index: 2, prompt: "one two three four five six seven eight nine ten eleven twelve thirteen", answer: " four", clean: -0.5, ablated: -2.5, effect: 2 },
      { index: 1, prompt: "a b", answer: " c", clean: -1, ablated: 0.25, effect: -1.25 },
    ];
    reply({ type: "hw:examples", request: ask.request + 1, task: "counting", available: true, rows }, []); // stale: ignored
    expect(panel.hidden).toBe(true);
    reply(
      { type: "hw:examples", request: ask.request, task: "counting", layer: 1, head: 2, available: true, tasks: ["copying", "counting"], metric: "logprob", has_model: true, n: 3, mean: 0.4167, rows },
      [new DataView(effects.buffer)],
    );
    expect(panel.hidden).toBe(false);
    const cells = Array.from(panel.querySelectorAll("tbody tr")).map((tr) => Array.from(tr.querySelectorAll("td")).map((td) => td.textContent));
    expect(cells[0]).toEqual(["2", expect.stringMatching(/^one two .*…$/), " four", "-0.5", "-2.5", "2"]);
    expect(panel.querySelector("td.hw-ex-prompt")!.getAttribute("title")).toBe(rows[0].prompt);
    expect(panel.querySelector(".hw-spread")).not.toBeNull();
    // choose the second example, then ask for its attention pattern
    panel.querySelectorAll<HTMLElement>("tbody tr")[1].click();
    panel.querySelector<HTMLButtonElement>(".hw-attn-button")!.click();
    const attn = sent.at(-1)!;
    expect(attn).toMatchObject({ type: "hw:attention", task: "counting", layer: 1, head: 2, example: 1 });
    const weights = new Float32Array([1, 0, 0.5, 0.5]);
    reply({ type: "hw:attention", request: attn.request, example: 1, tokens: ["<s>", "a"] }, [new DataView(weights.buffer)]);
    expect(panel.querySelector(".hw-attn-canvas")!.getAttribute("aria-label")).toContain("2 tokens");
    // another task from the menu asks again
    const pick = panel.querySelector<HTMLSelectElement>(".hw-examples-task")!;
    pick.value = "copying";
    pick.dispatchEvent(new Event("change"));
    expect(sent.at(-1)).toMatchObject({ type: "hw:examples", task: "copying", layer: 1, head: 2 });
  });

  it("shows numbers that are not finite (null from the kernel, or an old kernel's strings) as n/a", async () => {
    const { root, model, sent, reply } = mount();
    model.set("selected_head", [0, 1]);
    await tick();
    const rows = [
      { index: 0, prompt: "p", answer: " a", clean: null, ablated: null, effect: null },
      { index: 1, prompt: "q", answer: " b", clean: "nan", ablated: "-inf", effect: "inf" },
      { index: 2, prompt: "r", answer: " c", clean: 1.5, ablated: null, effect: 0.25 },
    ];
    const effects = new Float32Array([Number.NaN, Number.POSITIVE_INFINITY, 0.25]);
    reply(
      { type: "hw:examples", request: sent.at(-1)!.request, task: "copying", layer: 0, head: 1, available: true, tasks: ["copying"], n: 3, mean: null, rows },
      [new DataView(effects.buffer)],
    );
    const panel = root.querySelector<HTMLElement>(".hw-examples")!;
    const cells = Array.from(panel.querySelectorAll("tbody tr")).map((tr) => Array.from(tr.querySelectorAll("td")).map((td) => td.textContent).slice(3));
    expect(cells).toEqual([
      ["n/a", "n/a", "n/a"],
      ["n/a", "n/a", "n/a"],
      ["1.5", "n/a", "0.25"],
    ]);
    expect(panel.querySelector(".hw-examples-note")!.textContent).toContain("mean n/a");
    expect(panel.textContent).not.toMatch(/nan|inf|null/i);
  });

  it("says why when a head has no per-example effects", async () => {
    const { root, model, sent, reply } = mount();
    model.set("selected_head", [0, 0]);
    await tick();
    reply({ type: "hw:examples", request: sent.at(-1)!.request, task: "copying", layer: 0, head: 0, available: false, reason: "projection scores from the weights alone" });
    const panel = root.querySelector<HTMLElement>(".hw-examples")!;
    expect(panel.textContent).toContain("projection scores from the weights alone");
    expect(panel.querySelector(".hw-attn-button")).toBeNull();
    model.set("selected_head", null);
    await tick();
    expect(panel.hidden).toBe(true);
  });
});
