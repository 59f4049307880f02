// A score curve on a <canvas>: the line, the threshold, shaded spans and a cursor.
// drawCurve(canvas, {xs, ys, threshold, spans: [[x0, x1]], cursor, label}); it sets
// canvas.dataset.points to the number of points drawn (what the tests read).
"use strict";

function drawCurve(canvas, curve) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const xs = curve.xs || [], ys = curve.ys || [];
  canvas.dataset.points = String(xs.length);
  canvas.dataset.spans = String((curve.spans || []).length);
  const left = 48, right = 8, top = 8, bottom = 20;
  const finite = ys.filter(Number.isFinite);
  const levels = curve.threshold == null ? finite : finite.concat([curve.threshold]);
  if (!xs.length || !levels.length) {
    ctx.fillStyle = "#666";
    ctx.fillText("no scores yet", left, height / 2);
    return;
  }
  let low = Math.min(...levels), high = Math.max(...levels);
  if (high - low < 1e-9) { low -= 0.5; high += 0.5; }
  const pad = (high - low) * 0.05;
  low -= pad; high += pad;
  const x0 = curve.xmin != null ? curve.xmin : xs[0];
  const x1 = Math.max(curve.xmax != null ? curve.xmax : xs[xs.length - 1], x0 + 1e-9);
  const px = (x) => left + ((x - x0) / (x1 - x0)) * (width - left - right);
  const py = (y) => top + (1 - (y - low) / (high - low)) * (height - top - bottom);

  ctx.fillStyle = "rgba(220, 50, 47, 0.18)";  // ground truth or alert spans
  for (const [a, b] of curve.spans || []) ctx.fillRect(px(a), top, Math.max(1, px(b) - px(a)), height - top - bottom);

  ctx.strokeStyle = "#bbb"; ctx.lineWidth = 1;
  ctx.strokeRect(left, top, width - left - right, height - top - bottom);
  ctx.fillStyle = "#333"; ctx.font = "11px sans-serif";
  ctx.fillText(high.toPrecision(3), 2, top + 10);
  ctx.fillText(low.toPrecision(3), 2, height - bottom);
  ctx.fillText(x0.toFixed(1) + " s", left, height - 5);
  ctx.fillText(x1.toFixed(1) + " s", width - right - 50, height - 5);

  if (curve.threshold != null) {
    ctx.strokeStyle = "#d33682"; ctx.setLineDash([5, 4]);
    ctx.beginPath(); ctx.moveTo(left, py(curve.threshold)); ctx.lineTo(width - right, py(curve.threshold)); ctx.stroke();
    ctx.setLineDash([]);
  }
  ctx.strokeStyle = "#268bd2"; ctx.lineWidth = 1.5; ctx.beginPath();
  let drawing = false;
  xs.forEach((x, i) => {
    if (!Number.isFinite(ys[i])) { drawing = false; return; }
    if (drawing) ctx.lineTo(px(x), py(ys[i])); else ctx.moveTo(px(x), py(ys[i]));
    drawing = true;
  });
  ctx.stroke();
  if (curve.cursor != null) {
    ctx.strokeStyle = "#111"; ctx.lineWidth = 1.5;
    ctx.beginPath(); ctx.moveTo(px(curve.cursor), top); ctx.lineTo(px(curve.cursor), height - bottom); ctx.stroke();
  }
}

function element(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, value);
  for (const child of children) node.append(child);
  return node;
}

function number(value, digits) {
  return value == null || !Number.isFinite(value) ? "–" : value.toFixed(digits);
}
