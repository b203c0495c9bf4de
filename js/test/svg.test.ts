// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { escapeXml, SvgContext } from "../src/svg";

describe("the SVG recorder", () => {
  it("writes canvas calls as SVG elements with their transform and style", () => {
    const c = new SvgContext(100, 50);
    c.setTransform(2, 0, 0, 2, 10, 0);
    c.fillStyle = "#ff0000";
    c.fillRect(1, 2, 3, 4);
    c.strokeStyle = "#000";
    c.setLineDash([2, 2]);
    c.beginPath();
    c.moveTo(0, 0);
    c.lineTo(5, 5);
    c.stroke();
    c.font = "600 13px sans-serif";
    c.textAlign = "center";
    c.textBaseline = "top";
    c.save();
    c.rotate(Math.PI / 2);
    c.fillText("a <b> & c", 7, 8);
    c.restore();
    c.fillText("after", 0, 0);
    const doc = new DOMParser().parseFromString(c.toString(), "image/svg+xml");
    const rect = doc.querySelector("rect")!;
    expect(rect.getAttribute("transform")).toBe("matrix(2 0 0 2 10 0)");
    expect(rect.getAttribute("fill")).toBe("#ff0000");
    expect(doc.querySelector("path")!.getAttribute("d")).toBe("M0 0L5 5");
    expect(doc.querySelector("path")!.getAttribute("stroke-dasharray")).toBe("2 2");
    const [rotated, after] = Array.from(doc.querySelectorAll("text"));
    expect(rotated.textContent).toBe("a <b> & c");
    expect(rotated.getAttribute("text-anchor")).toBe("middle");
    expect(rotated.getAttribute("transform")).toBe("matrix(0 2 -2 0 10 0)");
    expect(after.getAttribute("transform")).toBe("matrix(2 0 0 2 10 0)"); // restore() undid the rotation
  });
  it("escapes markup", () => {
    expect(escapeXml(`<a href="x">'&'</a>`)).toBe("&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  });
});
