// The live page: state from /api/stream (server-sent events), one section per camera.
"use strict";

const cameras = {};  // name -> {info, recent, status, events: Map(number -> {record, curve}), stopped, dom}
let pending = false;

function cameraState(name) {
  if (!cameras[name]) cameras[name] = {info: {}, recent: [], status: {}, events: new Map(), stopped: null};
  return cameras[name];
}

function apply(message) {
  if (message.type === "snapshot") {
    for (const [name, state] of Object.entries(message.cameras)) setCamera(name, state);
  } else if (message.type === "camera") {
    setCamera(message.camera, message.state);
  } else if (message.type === "point") {
    const camera = cameraState(message.camera);
    camera.recent.push(message.point);
    const open = message.point[3];
    if (open && camera.events.has(open)) camera.events.get(open).curve.push(message.point);
  } else if (message.type === "event") {
    cameraState(message.camera).events.set(message.record.event, {record: message.record, curve: message.curve});
  } else if (message.type === "status") {
    cameraState(message.camera).status = message.status;
  } else if (message.type === "stopped") {
    cameraState(message.camera).stopped = message.summary;
  }
  if (!pending) { pending = true; requestAnimationFrame(render); }
}

function setCamera(name, state) {
  const camera = cameraState(name);
  camera.info = state.info; camera.recent = state.recent; camera.status = state.status; camera.stopped = state.stopped;
  camera.events = new Map(state.events.map((e) => [e.record.event, e]));
}

function alertSpans(points) {
  const spans = [];
  let start = null;
  points.forEach(([end, , , alert], i) => {
    if (alert && start == null) start = i > 0 ? points[i - 1][0] : end;
    if (!alert && start != null) { spans.push([start, points[i - 1][0]]); start = null; }
  });
  if (start != null) spans.push([start, points[points.length - 1][0]]);
  return spans;
}

function curveOf(points, threshold) {
  return {xs: points.map((p) => p[0]), ys: points.map((p) => (p[2] != null ? p[2] : p[1])), threshold, spans: alertSpans(points)};
}

function cameraDom(name) {
  const camera = cameras[name];
  if (camera.dom) return camera.dom;
  const dom = {
    title: element("h2"), status: element("p", {class: "status"}), alert: element("p"),
    curve: element("canvas", {class: "curve live-curve", "data-camera": name}),
    events: element("div", {class: "events"}), eventNodes: new Map(),
  };
  dom.section = element("section", {class: "camera", "data-camera": name},
    dom.title, dom.status, dom.alert, dom.curve, element("h3", {}, "Events"), dom.events);
  document.getElementById("cameras").append(dom.section);
  camera.dom = dom;
  return dom;
}

function statusText(status, stopped) {
  const parts = [
    `in ${number(status.fps_in, 1)} fps`, `latency ${number(status.latency_s, 2)} s`,
    `dropped ${status.dropped_segments ?? 0} segments`, `reconnections ${status.reconnects ?? 0}`,
    `scored ${status.segments ?? 0} segments`, `${status.frames ?? 0} frames`,
  ];
  return (stopped ? `stopped (${stopped.stopped_by || "ended"}) | ` : "") + parts.join(" | ");
}

function renderEvent(camera, name, dom, entry) {
  const number_ = entry.record.event;
  let node = dom.eventNodes.get(number_);
  if (!node) {
    node = {text: element("div"), curve: element("canvas", {class: "curve small event-curve"}), video: null};
    node.box = element("div", {class: "event", "data-event": String(number_)}, node.text, node.curve);
    dom.events.prepend(node.box);
    dom.eventNodes.set(number_, node);
  }
  const r = entry.record;
  const span = r.state === "closed" ? `${number(r.start_s, 1)}–${number(r.end_s, 1)} s` : `from ${number(r.start_s, 1)} s (open)`;
  node.text.textContent = `Event ${number_}: ${span}, peak ${number(r.peak_score, 3)}`;
  const threshold = r.threshold != null ? r.threshold : (camera.info.threshold || {}).value;
  drawCurve(node.curve, curveOf(entry.curve, threshold));
  if (r.clip && !node.video) {
    node.video = element("video", {controls: "", muted: "", preload: "auto", src: `/clip/${encodeURIComponent(name)}/${number_}`});
    node.video.muted = true;
    node.box.append(node.video);
  }
}

function render() {
  pending = false;
  for (const [name, camera] of Object.entries(cameras)) {
    const dom = cameraDom(name);
    const threshold = (camera.info.threshold || {}).value;
    dom.title.textContent = `${name}: ${camera.info.source || ""}`;
    dom.status.textContent = statusText(camera.status, camera.stopped);
    const open = [...camera.events.values()].filter((e) => e.record.state === "open");
    dom.alert.className = open.length ? "alert" : "quiet";
    dom.alert.textContent = open.length
      ? `ALERT ${open[0].record.event} open since ${number(open[0].record.start_s, 1)} s, peak ${number(open[0].record.peak_score, 3)}`
      : `no open alert (threshold ${number(threshold, 4)})`;
    drawCurve(dom.curve, curveOf(camera.recent, threshold));
    for (const entry of camera.events.values()) renderEvent(camera, name, dom, entry);
  }
}

function connect() {
  const source = new EventSource("/api/stream");
  const label = document.getElementById("connection");
  source.onopen = () => { label.textContent = "live"; };
  source.onerror = () => { label.textContent = "disconnected (retrying)"; };
  source.onmessage = (message) => apply(JSON.parse(message.data));
}

window.addEventListener("resize", () => requestAnimationFrame(render));
connect();
