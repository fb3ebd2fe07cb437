// Export the whole board, cropped to its content: PNG through the same painter as the
// screen, SVG written from the model (a real vector file: paths, shapes and text).
import { bounds, FONT_FAMILY, LINE_HEIGHT, SvgPath, textLines, trace, union } from "./geometry.js";
import { readShape } from "./model.js";

const MARGIN = 24; // board units around the content
const MAX_PIXELS = 8192; // per side: browsers refuse larger canvases

export function exportPNG(renderer, filename) {
  const b = renderer.contentBounds();
  if (!b) return false;
  const w = b.x1 - b.x0 + 2 * MARGIN;
  const h = b.y1 - b.y0 + 2 * MARGIN;
  const scale = Math.min(2, MAX_PIXELS / w, MAX_PIXELS / h); // sharp on high-DPI screens
  const canvas = document.createElement("canvas");
  canvas.width = Math.ceil(w * scale);
  canvas.height = Math.ceil(h * scale);
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.setTransform(scale, 0, 0, scale, (MARGIN - b.x0) * scale, (MARGIN - b.y0) * scale);
  renderer.paint(ctx, scale, null);
  canvas.toBlob((blob) => download(blob, filename + ".png"), "image/png");
  return true;
}

// A small picture of the whole drawing for the board list (a data: URL, a few KB), or null
// for an empty board. WebP where the browser writes it, else PNG.
export function thumbnail(renderer, width = 240, height = 150) {
  const b = renderer.contentBounds();
  if (!b) return null;
  const w = b.x1 - b.x0 + 2 * MARGIN;
  const h = b.y1 - b.y0 + 2 * MARGIN;
  const scale = Math.min(width / w, height / h, 1);
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, width, height);
  const x = (width - w * scale) / 2 + (MARGIN - b.x0) * scale;
  const y = (height - h * scale) / 2 + (MARGIN - b.y0) * scale;
  ctx.setTransform(scale, 0, 0, scale, x, y);
  renderer.paint(ctx, scale, null);
  const webp = canvas.toDataURL("image/webp", 0.7);
  return webp.startsWith("data:image/webp") ? webp : canvas.toDataURL("image/png");
}

// The board as an SVG document (a string), built from the shapes map itself.
export function boardSVG(shapes) {
  const list = [];
  shapes.forEach((shape, id) => {
    const s = readShape(shape);
    if (s) list.push({ id, s, b: bounds(s) });
  });
  if (!list.length) return null;
  list.sort((a, b) => a.s.z - b.s.z || (a.id < b.id ? -1 : 1));
  const b = list.reduce((acc, item) => union(acc, item.b), null);
  const x = b.x0 - MARGIN;
  const y = b.y0 - MARGIN;
  const w = b.x1 - b.x0 + 2 * MARGIN;
  const h = b.y1 - b.y0 + 2 * MARGIN;
  const body = list.map(({ s }) => svgShape(s)).join("\n");
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="${r(x)} ${r(y)} ${r(w)} ${r(h)}" width="${Math.ceil(w)}" height="${Math.ceil(h)}">`,
    `<rect x="${r(x)}" y="${r(y)}" width="${r(w)}" height="${r(h)}" fill="#fff"/>`,
    body,
    "</svg>",
  ].join("\n");
}

function svgShape(s) {
  const move = s.dx || s.dy ? ` transform="translate(${r(s.dx)} ${r(s.dy)})"` : "";
  const color = attr(s.color);
  if (s.type === "text") {
    const lh = s.size * LINE_HEIGHT;
    const lines = textLines(s)
      .map((line, i) => `<tspan x="${r(s.x)}" y="${r(s.y + (i + 0.5) * lh)}">${xml(line)}</tspan>`)
      .join("");
    return (
      `<text${move} font-family="${attr(FONT_FAMILY)}" font-size="${s.size}" fill="${color}" ` +
      `dominant-baseline="central" xml:space="preserve">${lines}</text>`
    );
  }
  const path = new SvgPath();
  trace(s, path);
  return (
    `<path${move} d="${path}" fill="none" stroke="${color}" stroke-width="${s.width}" ` +
    `stroke-linecap="round" stroke-linejoin="round"/>`
  );
}

export function exportSVG(shapes, filename) {
  const svg = boardSVG(shapes);
  if (!svg) return false;
  download(new Blob([svg], { type: "image/svg+xml" }), filename + ".svg");
  return true;
}

function download(blob, filename) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

function r(v) {
  return Math.round(v * 100) / 100;
}

function xml(text) {
  return text.replace(/[&<>]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;" })[c]);
}

function attr(text) {
  return xml(String(text)).replace(/"/g, "&quot;");
}
