// The synthswap page: the new-job form, the job list and one job's details, polled every second
// (the list is fetched again only when it changed: the server answers 304 to the ETag it sent).
// Every string from the server or the user goes in with textContent (never innerHTML), and every
// request that changes something carries the X-Synthswap header the server requires.
"use strict";

const POLL_MS = 1000;
const MAX_POLL_MS = 5000; // while the server does not answer, each poll waits a second longer, up to this
const SETTINGS_KEY = "synthswap.settings"; // the last submitted job's preset and settings, in this browser
const ESTIMATE_DELAY_MS = 300; // the estimate is asked again this long after the last change
const state = {
  options: [],
  presets: [],
  preset: null, // the chosen preset's name, or "custom" once a setting differs from every preset
  maxUpload: 0,
  subject: [], // {id, label, detail} of checked subject uploads
  video: null, // {id, label, detail} of the checked destination upload
  pending: 0, // uploads still being sent or checked
  selected: null, // the job shown on the right
  shown: {}, // URLs currently in the media elements, so they are only reloaded when they change
};

let listTag = null; // the ETag of the job list shown: polls get 304 and no body until it changes
let listBefore = null; // null: the newest page of jobs; else the page of jobs older than this id
let nextBefore = null; // the server's next page, if there are older jobs
const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

async function api(method, path, body, etag) {
  const init = { method, headers: {} };
  if (method !== "GET") init.headers["X-Synthswap"] = "1";
  if (etag) init.headers["If-None-Match"] = etag;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  let data = {};
  if (response.status === 304) return { ok: true, status: 304, data, etag };
  try {
    data = await response.json();
  } catch (err) {
    data = { error: `the server answered ${response.status} ${response.statusText}` };
  }
  return { ok: response.ok, status: response.status, data, etag: response.headers.get("ETag") };
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  seconds = Math.round(seconds);
  if (seconds < 60) return `${seconds} s`;
  const m = Math.floor(seconds / 60), s = seconds % 60;
  if (m < 60) return `${m} min ${s} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

function megabytes(bytes) {
  return `${(bytes / 2 ** 20).toFixed(bytes < 10 * 2 ** 20 ? 1 : 0)} MB`;
}

function diskSize(bytes) {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GB` : megabytes(bytes);
}

// --- the form ------------------------------------------------------------------------------------

function buildOptionFields() {
  const box = $("option-fields");
  box.replaceChildren();
  for (const opt of state.options) {
    const row = el("div", null, "option");
    const label = el("label", opt.label);
    label.append(el("small", opt.flag, "flag"));
    label.htmlFor = `opt-${opt.name}`;
    let input;
    if (opt.choices.length) {
      input = el("select");
      for (const choice of opt.choices) {
        const o = el("option", choice);
        o.value = choice;
        if (choice === opt.default) o.selected = true;
        input.append(o);
      }
    } else if (opt.kind === "bool") {
      input = el("input");
      input.type = "checkbox";
      input.checked = Boolean(opt.default);
    } else {
      input = el("input");
      input.type = "text";
      input.inputMode = opt.kind === "str" ? "text" : "decimal";
      input.placeholder = opt.default === null ? "(none)" : String(opt.default);
    }
    input.id = `opt-${opt.name}`;
    input.name = opt.name;
    input.addEventListener(input.type === "text" ? "input" : "change", settingsChanged);
    row.append(label, input, el("small", opt.help));
    box.append(row);
  }
}

// --- which face of the destination --------------------------------------------------------------

// The people the video shows (its faces grouped by identity over its length, the most often seen
// first): with more than one, the user picks; "person K" becomes that person's picture for --face.
function showFaces(video) {
  const faces = video ? video.faces || [] : [];
  const box = $("face-options");
  box.replaceChildren();
  $("face-pick").hidden = faces.length < 2;
  const field = $("opt-face");
  if (field) field.value = "";
  if (faces.length < 2) return;
  const choice = (value, text, src) => {
    const label = el("label", null, "face-choice");
    const radio = el("input");
    radio.type = "radio";
    radio.name = "face-choice";
    radio.value = value;
    radio.checked = value === "largest";
    radio.addEventListener("change", () => {
      $("opt-face").value = value === "largest" ? "" : value;
    });
    label.append(radio);
    if (src) {
      const img = el("img");
      img.src = src;
      img.alt = text;
      label.append(img);
    }
    label.append(el("span", text));
    box.append(label);
  };
  choice("largest", "the largest face");
  faces.forEach((src, i) => choice(`person ${i + 1}`,
    `person ${i + 1} · in ${video.seen[i]} of ${video.searched} sampled frames`, src));
}

// --- presets and the time estimate -----------------------------------------------------------------

function buildPresets() {
  const box = $("presets");
  box.replaceChildren();
  for (const preset of state.presets) {
    const label = el("label", null, "preset");
    const radio = el("input");
    radio.type = "radio";
    radio.name = "preset";
    radio.value = preset.name;
    radio.id = `preset-${preset.name}`;
    radio.addEventListener("change", () => applyPreset(preset.name));
    label.append(radio, el("span", preset.label, "label"), el("span", "", "time"), el("small", preset.summary));
    box.append(label);
  }
  const custom = el("label", null, "preset");
  custom.id = "preset-custom-label";
  custom.append(el("span", "Custom: the advanced settings below differ from every preset", "label"));
  box.append(custom);
}

// A field shows its value, or stays empty (its placeholder shows the default) when the value is the default.
function setField(opt, value) {
  const input = $(`opt-${opt.name}`);
  if (opt.kind === "bool") input.checked = Boolean(value);
  else if (opt.choices.length) input.value = String(value ?? opt.default);
  else input.value = value === null || value === undefined || value === opt.default ? "" : String(value);
}

function applyPreset(name) {
  const preset = state.presets.find((p) => p.name === name);
  if (!preset) return;
  for (const opt of state.options) {
    if (Object.hasOwn(preset.values, opt.name)) setField(opt, preset.values[opt.name]);
  }
  settingsChanged();
}

// The settings as numbers and strings the way a preset holds them (empty field: the default).
function effectiveValues() {
  const values = {};
  for (const opt of state.options) {
    const input = $(`opt-${opt.name}`);
    if (opt.kind === "bool") values[opt.name] = input.checked;
    else if (input.value.trim() === "") values[opt.name] = opt.default;
    else if (opt.kind === "int" || opt.kind === "float") values[opt.name] = Number(input.value.trim());
    else values[opt.name] = input.value.trim();
  }
  return values;
}

function settingsChanged() {
  const values = effectiveValues();
  const same = (p) => Object.keys(p.values).every((name) => values[name] === p.values[name]);
  const match = state.presets.find(same);
  state.preset = match ? match.name : "custom";
  for (const preset of state.presets) $(`preset-${preset.name}`).checked = preset.name === state.preset;
  $("preset-custom-label").hidden = state.preset !== "custom";
  scheduleEstimate();
}

let estimateTimer = null;
let estimateSeq = 0;
function scheduleEstimate() {
  clearTimeout(estimateTimer);
  estimateTimer = setTimeout(askEstimate, ESTIMATE_DELAY_MS);
}

async function askEstimate() {
  const seq = ++estimateSeq;
  const line = $("estimate");
  let result;
  try {
    result = await api("POST", "/api/estimate", jobBody());
  } catch (err) {
    return; // the server is not answering: the banner says so, the next change asks again
  }
  if (seq !== estimateSeq) return; // a newer question is on its way
  if (!result.ok) {
    line.replaceChildren(el("span", `No estimate: ${result.data.error}`, "bad"));
    return;
  }
  const e = result.data;
  const parts = e.stages.filter((s) => s.seconds >= 1).map((s) => `${s.name} ${duration(s.seconds)}`);
  line.replaceChildren(el("strong", `About ${duration(e.total_s)} on this machine`),
    el("small", `${parts.join(" · ")}. For ${e.inputs}; from ${e.basis}.`));
  for (const preset of state.presets) {
    const time = $(`preset-${preset.name}`).parentElement.querySelector(".time");
    time.textContent = e.presets[preset.name] !== undefined ? `about ${duration(e.presets[preset.name])}` : "";
  }
}

function rememberSettings() {
  try {
    localStorage.setItem(SETTINGS_KEY, JSON.stringify({ preset: state.preset, values: effectiveValues() }));
  } catch (err) {
    // storage refused (private mode, full): the form starts from the default preset next time
  }
}

function restoreSettings() {
  let saved = null;
  try {
    saved = JSON.parse(localStorage.getItem(SETTINGS_KEY) || "null");
  } catch (err) {
    saved = null;
  }
  if (saved && saved.values && typeof saved.values === "object") {
    for (const opt of state.options) {
      if (Object.hasOwn(saved.values, opt.name)) setField(opt, saved.values[opt.name]);
    }
    settingsChanged();
  } else {
    applyPreset((state.presets.find((p) => p.default) || state.presets[0] || {}).name);
  }
}

function optionValues() {
  const values = {};
  for (const opt of state.options) {
    const input = $(`opt-${opt.name}`);
    if (opt.kind === "bool") values[opt.name] = input.checked;
    else if (input.value.trim() !== "") values[opt.name] = input.value.trim();
  }
  return values;
}

function fileItem(list, label) {
  const li = el("li");
  li.append(el("span", label, "name"), el("span", "uploading…", "detail"));
  list.append(li);
  return li;
}

function setItem(li, text, cls) {
  li.querySelector(".detail").textContent = text;
  li.className = cls || "";
}

function removeButton(li, onRemove) {
  const button = el("button", "remove", "small");
  button.type = "button";
  button.addEventListener("click", () => {
    onRemove();
    li.remove();
    scheduleEstimate();
  });
  li.append(button);
}

// One file as the raw body of one request, with progress (fetch cannot report upload progress).
function upload(file, role, li) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    const query = new URLSearchParams({ role, name: file.name });
    xhr.open("POST", `/api/uploads?${query}`);
    xhr.setRequestHeader("X-Synthswap", "1");
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) {
        const pct = Math.round((100 * e.loaded) / e.total);
        setItem(li, pct < 100 ? `uploading… ${pct}%` : "checking for faces…");
      }
    };
    xhr.onload = () => {
      let data = {};
      try {
        data = JSON.parse(xhr.responseText);
      } catch (err) {
        data = { error: `the server answered ${xhr.status}` };
      }
      resolve(xhr.status < 300 ? data : { error: data.error || `the server answered ${xhr.status}` });
    };
    xhr.onerror = () => resolve({ error: `${file.name}: the upload failed (connection lost or file refused)` });
    xhr.send(file);
  });
}

async function addFiles(files, role) {
  const list = role === "video" ? $("video-list") : $("subject-list");
  if (role === "video") {
    list.replaceChildren();
    state.video = null;
    showFaces(null);
  }
  for (const file of files) {
    const li = fileItem(list, file.name);
    if (file.size > state.maxUpload) {
      setItem(li, `${file.name}: the file is ${megabytes(file.size)}, over the limit of ${megabytes(state.maxUpload)}`,
        "bad");
      removeButton(li, () => {});
      continue;
    }
    state.pending += 1;
    updateSubmit();
    const data = await upload(file, role, li);
    state.pending -= 1;
    if (data.error) {
      setItem(li, data.error, "bad");
      removeButton(li, () => {});
    } else {
      setItem(li, data.detail, "good");
      if (role === "subject" && data.faces && data.faces.length) {
        const img = el("img", null, "thumb"); // the face found: a wrong photo shows at a glance
        img.src = data.faces[0];
        img.alt = `the face found in ${data.label}`;
        li.prepend(img);
      }
      // Removed from the form, an upload is removed from the server too (no job has taken it).
      const discard = () => api("DELETE", `/api/uploads/${data.id}`).catch(() => {});
      if (role === "video") {
        state.video = data;
        showFaces(data);
        removeButton(li, () => { state.video = null; showFaces(null); discard(); });
      } else {
        state.subject.push(data);
        removeButton(li, () => { state.subject = state.subject.filter((s) => s.id !== data.id); discard(); });
      }
    }
    updateSubmit();
  }
}

function updateSubmit() {
  $("submit").disabled = state.pending > 0;
  $("submit").textContent = state.pending > 0 ? "Waiting for uploads…" : "Start job";
  scheduleEstimate(); // the inputs changed: so does the work
}

function jobBody() {
  return {
    subject: state.subject.map((s) => s.id),
    video: state.video ? state.video.id : null,
    subject_media: Array.from($("subject-media").selectedOptions).map((o) => o.value),
    video_media: $("video-media").value || null,
    options: optionValues(),
  };
}

async function submitJob(event) {
  event.preventDefault();
  const message = $("form-message");
  message.textContent = "";
  const body = jobBody();
  $("submit").disabled = true;
  let result;
  try {
    result = await api("POST", "/api/jobs", body);
  } catch (err) {
    result = { ok: false, data: { error: "the server is not answering; try again in a moment" } };
  }
  $("submit").disabled = false;
  if (!result.ok) {
    message.textContent = result.data.error || "the job was refused";
    return;
  }
  rememberSettings();
  state.subject = [];
  state.video = null;
  showFaces(null);
  // The settings stay as they are, for the next job (and are remembered); the files and picks are cleared.
  for (const o of $("subject-media").options) o.selected = false;
  $("video-media").value = "";
  scheduleEstimate();
  $("subject-list").replaceChildren();
  $("video-list").replaceChildren();
  select(result.data.id);
  poll();
}

// --- the job list --------------------------------------------------------------------------------

function select(id) {
  state.selected = id;
  state.shown = {};
  listTag = null; // the list shows which job is selected: draw it again
  history.replaceState(null, "", id ? `#job-${id}` : "#");
}

function showJobPage(before) {
  listBefore = before;
  listTag = null;
  poll();
}

function renderJobs(jobs) {
  const list = $("jobs");
  list.replaceChildren();
  $("no-jobs").hidden = jobs.length > 0;
  $("job-pages").hidden = nextBefore === null && listBefore === null;
  $("jobs-newest").hidden = listBefore === null;
  $("jobs-older").hidden = nextBefore === null;
  for (const job of jobs) {
    const li = el("li", null, job.id === state.selected ? "selected" : "");
    const link = el("a", `#${job.id} ${job.name}`);
    link.href = `#job-${job.id}`;
    link.addEventListener("click", (e) => {
      e.preventDefault();
      select(job.id);
      poll();
    });
    li.append(el("span", job.state, `state ${job.state}`), link);
    list.append(li);
  }
}

// --- one job -------------------------------------------------------------------------------------

function setSrc(node, key, url) {
  if (state.shown[key] !== url) {
    state.shown[key] = url;
    if (url) node.src = url;
    else node.removeAttribute("src");
  }
}

function progressText(stage) {
  const p = stage.progress;
  const parts = [stage.name];
  if (p) {
    if (p.done !== null && p.done !== undefined) {
      const done = p.unit === "kimg" ? Number(p.done).toFixed(1) : p.done;
      parts.push(p.total ? `${done} / ${p.total} ${p.unit}` : `${done} ${p.unit}`);
    }
    if (p.rate) parts.push(`${Number(p.rate).toFixed(1)} ${p.rate_unit}`);
    if (p.loss !== undefined && p.loss !== null) parts.push(`loss ${Number(p.loss).toFixed(4)}`);
    if (p.eta_s !== null && p.eta_s !== undefined) {
      parts.push(`about ${duration(p.eta_s)} left${p.estimated ? " (estimated)" : ""}`);
    }
  }
  parts.push(`${duration(stage.seconds)} so far`);
  return parts.join(" · ");
}

function drawLoss(points) {
  const svg = $("d-loss");
  svg.replaceChildren();
  if (points.length < 2) return false;
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  const sx = (x) => 5 + (390 * (x - x0)) / Math.max(x1 - x0, 1e-9);
  const sy = (y) => 155 - (150 * (y - y0)) / Math.max(y1 - y0, 1e-9);
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", points.map((p) => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(" "));
  line.setAttribute("class", "loss-line");
  svg.append(line);
  $("d-loss-cap").textContent =
    `Training loss, step ${x0} to ${x1}: ${y1.toFixed(3)} (highest) to ${points[points.length - 1][1].toFixed(3)} (latest)`;
  return true;
}

function renderJob(job) {
  $("detail").hidden = false;
  $("d-title").textContent = `Job #${job.id}: ${job.name}`;
  document.title = `synthswap · job #${job.id} ${job.state}`;
  const st = $("d-state");
  st.textContent = job.state;
  st.className = `state ${job.state}`;
  const times = [];
  if (job.started) times.push(`started ${new Date(job.started * 1000).toLocaleString()}`);
  if (job.finished) times.push(`finished ${new Date(job.finished * 1000).toLocaleString()}`);
  if (job.attempts > 1) times.push(`attempt ${job.attempts}`);
  if (job.time_left_s !== null && job.time_left_s !== undefined) {
    times.push(`about ${duration(job.time_left_s)} left in all`);
  }
  $("d-times").textContent = times.join(", ");
  $("d-message").textContent = job.message || "";
  $("d-message").className = job.state === "failed" ? "message bad" : "message";
  const inputs = job.inputs.subject ? job.inputs.subject.map((s) => `${s.label} (${s.detail})`) : [];
  $("d-inputs").textContent = job.inputs.video
    ? `Subject: ${inputs.join(", ")}. Destination: ${job.inputs.video.label} (${job.inputs.video.detail}).` : "";

  const settings = $("d-settings").querySelector("tbody");
  settings.replaceChildren();
  for (const s of job.settings) {
    const tr = el("tr");
    const value = s.value === null ? "(none)" : typeof s.value === "boolean" ? (s.value ? "yes" : "no") : s.value;
    tr.append(el("td", s.label), el("td", value, s.default ? "" : "changed"), el("td", s.flag, "muted"));
    settings.append(tr);
  }

  $("d-cancel").hidden = !["queued", "running"].includes(job.state);
  $("d-cancel").disabled = job.cancel_requested;
  $("d-retry").hidden = !["failed", "cancelled"].includes(job.state);

  const body = $("d-stages").querySelector("tbody");
  body.replaceChildren();
  let running = null;
  for (const stage of job.stages) {
    const tr = el("tr", null, `stage ${stage.state}`);
    tr.append(el("td", stage.name), el("td", stage.state), el("td", duration(stage.seconds)));
    body.append(tr);
    if (stage.state === "running") running = stage;
  }
  $("d-progress").hidden = !running;
  if (running) {
    const bar = $("d-bar");
    const fraction = running.progress ? running.progress.fraction : null;
    if (fraction === null || fraction === undefined) bar.removeAttribute("value");
    else bar.value = fraction;
    $("d-progress-text").textContent = progressText(running);
  }

  $("d-preview-fig").hidden = !job.preview;
  setSrc($("d-preview"), "preview", job.preview);
  $("d-gan-fig").hidden = !job.gan_samples;
  setSrc($("d-gan"), "gan", job.gan_samples);
  $("d-loss-fig").hidden = !drawLoss(job.loss);
  $("d-synth-fig").hidden = !job.synthetic.url;
  setSrc($("d-synth"), "synthetic", job.synthetic.url);
  $("d-synth-cap").textContent = `${job.synthetic.count} kept synthetic images`;

  $("d-result").hidden = !job.video;
  setSrc($("d-video"), "video", job.video);
  const report = $("d-report");
  if (job.report) report.href = job.report;
  report.hidden = !job.report;
  const downloads = $("d-downloads");
  downloads.replaceChildren();
  for (const d of job.downloads) {
    const a = el("a", `download ${d.name}`);
    a.href = d.url;
    a.download = `job${job.id}_${d.name}`;
    const li = el("li");
    li.append(a);
    downloads.append(li);
  }
  const log = $("d-log");
  const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  log.textContent = job.log;
  if (atBottom) log.scrollTop = log.scrollHeight;
}

async function jobAction(action) {
  const id = state.selected;
  if (!id) return;
  let result;
  if (action === "delete") {
    if (!confirm(`Delete job #${id} and all its files?`)) return;
    result = await api("DELETE", `/api/jobs/${id}`);
    if (result.ok) select(null);
  } else {
    result = await api("POST", `/api/jobs/${id}/${action}`);
  }
  if (!result.ok) $("d-message").textContent = result.data.error;
  poll();
}

// --- polling -------------------------------------------------------------------------------------

let polling = false;
let failedPolls = 0;
async function poll() {
  if (polling) return;
  polling = true;
  try {
    const page = listBefore === null ? "/api/jobs" : `/api/jobs?before=${listBefore}`;
    const list = await api("GET", page, undefined, listTag);
    failedPolls = 0;
    $("conn").hidden = true;
    $("no-token").hidden = list.status !== 401;
    if (list.status === 401) return;
    if (list.status !== 304) {
      listTag = list.ok ? list.etag : null;
      nextBefore = list.data.next_before ?? null;
      renderJobs(list.data.jobs || []);
      const disk = list.data.disk;
      $("disk").textContent = disk
        ? `Jobs and uploads use ${diskSize(disk.used_bytes)}; ${diskSize(disk.free_bytes)} free on this disk.` : "";
    }
    if (state.selected) {
      const job = await api("GET", `/api/jobs/${state.selected}`);
      if (job.ok) renderJob(job.data);
      else if (job.status === 404) {
        select(null);
        $("detail").hidden = true;
      }
    } else {
      $("detail").hidden = true;
      document.title = "synthswap";
    }
  } catch (err) {
    failedPolls += 1;
    $("conn").hidden = false; // the server is restarting or gone: keep trying, less and less often
  } finally {
    polling = false;
  }
}

async function pollForever() {
  for (;;) {
    await poll();
    await new Promise((r) => setTimeout(r, Math.min(POLL_MS * (1 + failedPolls), MAX_POLL_MS)));
  }
}

async function loadOptions() {
  for (;;) {
    try {
      const result = await api("GET", "/api/options");
      state.options = result.data.options;
      state.presets = result.data.presets;
      state.maxUpload = result.data.max_upload_bytes;
      for (const [id, multiple] of [["subject-media", true], ["video-media", false]]) {
        const sel = $(id);
        for (const name of result.data.media) {
          const o = el("option", name);
          o.value = name;
          sel.append(o);
        }
        sel.closest("label").hidden = result.data.media.length === 0;
        sel.multiple = multiple;
      }
      buildOptionFields();
      buildPresets();
      restoreSettings();
      return;
    } catch (err) {
      $("conn").hidden = false;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  const match = location.hash.match(/^#job-(\d+)$/);
  if (match) state.selected = Number(match[1]);
  $("subject-files").addEventListener("change", (e) => {
    addFiles(Array.from(e.target.files), "subject");
    e.target.value = "";
  });
  $("video-file").addEventListener("change", (e) => {
    addFiles(Array.from(e.target.files).slice(0, 1), "video");
    e.target.value = "";
  });
  $("job-form").addEventListener("submit", submitJob);
  $("subject-media").addEventListener("change", scheduleEstimate);
  $("video-media").addEventListener("change", scheduleEstimate);
  $("d-cancel").addEventListener("click", () => jobAction("cancel"));
  $("d-retry").addEventListener("click", () => jobAction("retry"));
  $("d-delete").addEventListener("click", () => jobAction("delete"));
  $("jobs-newest").addEventListener("click", () => showJobPage(null));
  $("jobs-older").addEventListener("click", () => showJobPage(nextBefore));
  await loadOptions();
  pollForever();
});
