// The results page: a list of videos; the chosen one plays above its frame scores, with a cursor.
"use strict";

let collections = [];
let current = null;  // {collection, video, fps, xs, ys, spans}

async function getJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: ${response.status} ${await response.text()}`);
  return response.json();
}

function listVideos(index) {
  const list = document.getElementById("videos");
  list.replaceChildren();
  collections[index].videos.forEach((video) => {
    const button = element("button", {"data-video": video.video},
      `${video.video} (${video.frames} frames${video.has_truth ? ", truth" : ""})`);
    button.onclick = () => show(index, video.video);
    list.append(element("li", {}, button));
  });
}

async function show(index, id) {
  const data = await getJson(`/api/scores/${index}/${encodeURIComponent(id)}`);
  const fps = data.fps > 0 ? data.fps : 25;
  const ys = data.scores.score;
  current = {xs: ys.map((_, i) => i / fps), ys, spans: (data.truth || []).map(([a, b]) => [a / fps, b / fps]), fps};
  document.querySelectorAll("#videos button").forEach((b) => b.classList.toggle("current", b.dataset.video === id));
  document.getElementById("player").hidden = false;
  document.getElementById("title").textContent = `${id}`;
  document.getElementById("details").textContent =
    `${data.frames} frames at ${fps} fps; highest score ${number(data.max_score, 3)}; ground truth ${data.has_truth ? "shaded" : "unknown"}` +
    (data.playable ? "" : "; the video's source is not known, so only its scores are shown");
  const video = document.getElementById("video");
  video.dataset.video = id;
  if (data.playable) video.src = `/video/${index}/${encodeURIComponent(id)}`; else video.removeAttribute("src");
  draw();
}

function draw() {
  if (!current) return;
  const video = document.getElementById("video");
  const last = current.xs.length ? current.xs[current.xs.length - 1] + 1 / current.fps : 1;
  drawCurve(document.getElementById("curve"), {...current, xmin: 0, xmax: last, cursor: video.currentTime || 0});
  document.getElementById("curve").dataset.cursor = String(video.currentTime || 0);
}

function followVideo() {
  draw();
  const video = document.getElementById("video");
  if (!video.paused) requestAnimationFrame(followVideo);
}

async function start() {
  collections = await getJson("/api/collections");
  const select = document.getElementById("collections");
  collections.forEach((collection, i) => select.append(element("option", {value: String(i)}, collection.label)));
  select.onchange = () => listVideos(Number(select.value));
  listVideos(0);
  const video = document.getElementById("video");
  video.addEventListener("play", () => requestAnimationFrame(followVideo));
  video.addEventListener("seeked", draw);
  video.addEventListener("timeupdate", draw);
  window.addEventListener("resize", draw);
  // a click on the curve seeks the video there
  document.getElementById("curve").addEventListener("click", (click) => {
    if (!current) return;
    const box = click.target.getBoundingClientRect();
    const fraction = (click.clientX - box.left - 48) / (box.width - 56);
    video.currentTime = Math.max(0, fraction) * (current.xs.length / current.fps);
  });
}

start().catch((error) => { document.body.append(element("pre", {}, String(error))); });
