// A small SVG recorder with the part of the canvas 2D API the panels, colour bar and export
// draw with, so the same drawing code gives vector text, axes and marks; images (the heatmap
// cells) are embedded as PNG.

type Matrix = [number, number, number, number, number, number];

interface State {
  m: Matrix;
  fillStyle: unknown;
  strokeStyle: unknown;
  lineWidth: number;
  font: string;
  textAlign: CanvasTextAlign;
  textBaseline: CanvasTextBaseline;
  globalAlpha: number;
  dash: number[];
}

const ANCHOR: Record<string, string> = { left: "start", start: "start", center: "middle", right: "end", end: "end" };
const BASELINE: Record<string, string> = { top: "text-before-edge", hanging: "hanging", middle: "central", bottom: "text-after-edge", ideographic: "ideographic" };

export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&#39;" })[c]!);
}

const n = (x: number) => String(Math.round(x * 100) / 100);

export class SvgContext {
  private parts: string[] = [];
  private stack: State[] = [];
  private path: string[] = [];
  private s: State = {
    m: [1, 0, 0, 1, 0, 0],
    fillStyle: "#000",
    strokeStyle: "#000",
    lineWidth: 1,
    font: "10px sans-serif",
    textAlign: "start",
    textBaseline: "alphabetic",
    globalAlpha: 1,
    dash: [],
  };
  imageSmoothingEnabled = true;
  globalCompositeOperation = "source-over";

  constructor(
    readonly width: number,
    readonly height: number,
  ) {}

  get fillStyle(): unknown {
    return this.s.fillStyle;
  }
  set fillStyle(v: unknown) {
    this.s.fillStyle = v;
  }
  get strokeStyle(): unknown {
    return this.s.strokeStyle;
  }
  set strokeStyle(v: unknown) {
    this.s.strokeStyle = v;
  }
  get lineWidth(): number {
    return this.s.lineWidth;
  }
  set lineWidth(v: number) {
    this.s.lineWidth = v;
  }
  get font(): string {
    return this.s.font;
  }
  set font(v: string) {
    this.s.font = v;
  }
  get textAlign(): CanvasTextAlign {
    return this.s.textAlign;
  }
  set textAlign(v: CanvasTextAlign) {
    this.s.textAlign = v;
  }
  get textBaseline(): CanvasTextBaseline {
    return this.s.textBaseline;
  }
  set textBaseline(v: CanvasTextBaseline) {
    this.s.textBaseline = v;
  }
  get globalAlpha(): number {
    return this.s.globalAlpha;
  }
  set globalAlpha(v: number) {
    this.s.globalAlpha = v;
  }

  save(): void {
    this.stack.push({ ...this.s, m: [...this.s.m] as Matrix, dash: [...this.s.dash] });
  }
  restore(): void {
    const s = this.stack.pop();
    if (s) this.s = s;
  }
  setTransform(a: number, b: number, c: number, d: number, e: number, f: number): void {
    this.s.m = [a, b, c, d, e, f];
  }
  private multiply(a: number, b: number, c: number, d: number, e: number, f: number): void {
    const [A, B, C, D, E, F] = this.s.m;
    this.s.m = [A * a + C * b, B * a + D * b, A * c + C * d, B * c + D * d, A * e + C * f + E, B * e + D * f + F];
  }
  translate(x: number, y: number): void {
    this.multiply(1, 0, 0, 1, x, y);
  }
  rotate(t: number): void {
    this.multiply(Math.cos(t), Math.sin(t), -Math.sin(t), Math.cos(t), 0, 0);
  }
  scale(x: number, y: number): void {
    this.multiply(x, 0, 0, y, 0, 0);
  }
  setLineDash(d: number[]): void {
    this.s.dash = [...d];
  }
  createPattern(): null {
    return null;
  }
  clearRect(): void {}

  private transform(): string {
    return `matrix(${this.s.m.map(n).join(" ")})`;
  }
  private paint(style: unknown): string {
    // patterns (the hatching of cells without a value) become a light grey
    return typeof style === "string" ? style : "rgba(128,128,128,0.35)";
  }
  private alpha(): string {
    return this.s.globalAlpha < 1 ? ` opacity="${n(this.s.globalAlpha)}"` : "";
  }
  private strokeAttrs(): string {
    const dash = this.s.dash.length ? ` stroke-dasharray="${this.s.dash.join(" ")}"` : "";
    return `fill="none" stroke="${escapeXml(this.paint(this.s.strokeStyle))}" stroke-width="${n(this.s.lineWidth)}"${dash}${this.alpha()}`;
  }

  fillRect(x: number, y: number, w: number, h: number): void {
    this.parts.push(`<rect transform="${this.transform()}" x="${n(x)}" y="${n(y)}" width="${n(w)}" height="${n(h)}" fill="${escapeXml(this.paint(this.s.fillStyle))}"${this.alpha()}/>`);
  }
  strokeRect(x: number, y: number, w: number, h: number): void {
    this.parts.push(`<rect transform="${this.transform()}" x="${n(x)}" y="${n(y)}" width="${n(w)}" height="${n(h)}" ${this.strokeAttrs()}/>`);
  }
  beginPath(): void {
    this.path = [];
  }
  moveTo(x: number, y: number): void {
    this.path.push(`M${n(x)} ${n(y)}`);
  }
  lineTo(x: number, y: number): void {
    this.path.push(`L${n(x)} ${n(y)}`);
  }
  rect(x: number, y: number, w: number, h: number): void {
    this.path.push(`M${n(x)} ${n(y)}h${n(w)}v${n(h)}h${n(-w)}Z`);
  }
  closePath(): void {
    this.path.push("Z");
  }
  fill(): void {
    if (this.path.length) this.parts.push(`<path transform="${this.transform()}" d="${this.path.join("")}" fill="${escapeXml(this.paint(this.s.fillStyle))}"${this.alpha()}/>`);
  }
  stroke(): void {
    if (this.path.length) this.parts.push(`<path transform="${this.transform()}" d="${this.path.join("")}" ${this.strokeAttrs()}/>`);
  }
  fillText(text: string, x: number, y: number): void {
    const anchor = ANCHOR[this.s.textAlign] ?? "start";
    const base = BASELINE[this.s.textBaseline];
    this.parts.push(
      `<text transform="${this.transform()}" x="${n(x)}" y="${n(y)}" style="font: ${escapeXml(this.s.font)}" text-anchor="${anchor}"${base ? ` dominant-baseline="${base}"` : ""} fill="${escapeXml(this.paint(this.s.fillStyle))}"${this.alpha()} xml:space="preserve">${escapeXml(text)}</text>`,
    );
  }
  measureText(text: string): { width: number } {
    const size = Number(/(\d+(?:\.\d+)?)px/.exec(this.s.font)?.[1] ?? 10);
    return { width: text.length * size * 0.55 };
  }
  /** drawImage(image, dx, dy, dw, dh) or (image, sx, sy, sw, sh, dx, dy, dw, dh), as a PNG. */
  drawImage(img: HTMLCanvasElement, ...a: number[]): void {
    let url: string;
    try {
      url = img.toDataURL("image/png");
    } catch {
      return;
    }
    const pixelated = this.imageSmoothingEnabled ? "" : ` style="image-rendering: pixelated" image-rendering="pixelated"`;
    const [sx, sy, sw, sh, dx, dy, dw, dh] = a.length >= 8 ? a : [0, 0, img.width, img.height, a[0], a[1], a[2] ?? img.width, a[3] ?? img.height];
    this.parts.push(
      `<g transform="${this.transform()}"${this.alpha()}><svg x="${n(dx)}" y="${n(dy)}" width="${n(dw)}" height="${n(dh)}" viewBox="${n(sx)} ${n(sy)} ${n(sw)} ${n(sh)}" preserveAspectRatio="none" overflow="hidden"><image href="${url}" width="${img.width}" height="${img.height}"${pixelated}/></svg></g>`,
    );
  }

  /** The SVG document drawn so far. */
  toString(): string {
    return `<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="${n(this.width)}" height="${n(this.height)}" viewBox="0 0 ${n(this.width)} ${n(this.height)}">\n${this.parts.join("\n")}\n</svg>\n`;
  }
}
