// The send page: the clinic chooses a folder or files; DICOM headers are read here
// (dicom-parser) and the instances grouped by study; ECG files are listed apart. Studies go by
// the resumable upload (a manifest with each file's size and SHA-256, each instance PUT,
// larger ones in parts, gzip-compressed when that pays, then commit); on a dropped link the page waits, asks the server what
// it holds and sends only the rest. The same files chosen again resume the same session
// (its key is made from the manifest; the session is remembered in localStorage by it).
// ECG files go one request each.
"use strict";
(function () {
  const form = document.getElementById("send-form");
  if (!form) return;
  const ui = window.telemedPage;
  const $ = (id) => document.getElementById(id);
  const PART = Number(form.dataset.partBytes);
  const WHOLE_MAX = 4 * PART; // larger files go in parts: a cut costs at most one part
  const HEAD_BYTES = 256 * 1024;
  const STALL_MS = 60000;
  const ECG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.9.";
  const DICOMDIR = "1.2.840.10008.1.3.10";
  const ECG_NAME = /\.(xml|scp|ecg|csv)$/i;
  const STORE = "telemed.upload.";
  const CHARSETS = {
    "ISO_IR 192": "utf-8", "GB18030": "gb18030", "GBK": "gbk", "ISO 2022 IR 58": "gb18030",
    "ISO_IR 100": "windows-1252",
  };
  // the page's words, in its language (the template writes them); "%(n)s" takes a value
  const WORDS = JSON.parse(form.dataset.words);
  const phrase = (key, values = {}) => WORDS[key].replace(/%\((\w+)\)s/g, (_, name) => values[name]);
  const AGE_UNIT = { Y: "years", M: "months", W: "weeks", D: "days" };
  const button = $("send-button");
  const pickers = [$("pick-folder"), $("pick-files")];
  let chosen = { studies: [], ecgs: [] };
  let sending = false;

  class Transient extends Error {}
  class Refused extends Error {}

  const sleep = (ms) => new Promise((done) => setTimeout(done, ms));
  const pathOf = (file) => file.webkitRelativePath || file.name;
  const stemOf = (path) => path.replace(/\.[^./]*$/, "");
  const hex = (buffer) => Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
  const digest = async (bytes) => hex(await crypto.subtle.digest("SHA-256", bytes));

  function size(bytes) {
    if (bytes < 1024) return `${bytes} B`;
    if (bytes < 1048576) return `${(bytes / 1024).toFixed(1)} KB`;
    return `${(bytes / 1048576).toFixed(1)} MB`;
  }

  function cell(row, text, className) {
    const td = row.insertCell();
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  // --- reading what was chosen -----------------------------------------------------------

  function withoutEscapes(bytes) {
    const out = [];
    for (let i = 0; i < bytes.length; i++) {
      if (bytes[i] !== 0x1b) { out.push(bytes[i]); continue; }
      while (i + 1 < bytes.length && !(bytes[i + 1] >= 0x40 && bytes[i + 1] <= 0x7e)) i++;
      i++; // the escape sequence's final byte
    }
    return new Uint8Array(out);
  }

  // A text element in the character set the file names (or, unlabelled or labelled Latin-1,
  // UTF-8 or GBK when its bytes are that).
  function text(ds, tag, label) {
    const el = ds.elements[tag];
    if (!el || !el.length) return "";
    let bytes = ds.byteArray.subarray(el.dataOffset, el.dataOffset + el.length);
    if (bytes.includes(0x1b)) bytes = withoutEscapes(bytes);
    const tries = !label || label === "windows-1252" ? ["utf-8", "gbk", "windows-1252"] : [label];
    for (const name of tries) {
      try {
        return new TextDecoder(name, { fatal: true }).decode(bytes).replace(/[\0\s]+$/, "").trim();
      } catch (error) { /* the next */ }
    }
    return new TextDecoder("windows-1252").decode(bytes).trim();
  }

  function person(name) {
    return name.split("=").map((g) => g.replace(/\^/g, " ").trim()).filter(Boolean).join(" / ");
  }

  function age(ds) {
    const given = (ds.string("x00101010") || "").match(/^(\d{3})([YMWD])$/);
    if (given) return phrase(AGE_UNIT[given[2]], { n: Number(given[1]) });
    const born = ds.string("x00100030") || "";
    const on = ds.string("x00080020") || "";
    if (!/^\d{8}$/.test(born) || !/^\d{8}$/.test(on)) return "";
    let years = Number(on.slice(0, 4)) - Number(born.slice(0, 4));
    if (on.slice(4) < born.slice(4)) years -= 1;
    return years >= 0 ? phrase("years", { n: years }) : "";
  }

  async function header(file) {
    const head = new Uint8Array(await file.slice(0, Math.min(file.size, HEAD_BYTES)).arrayBuffer());
    if (head.length < 132 || String.fromCharCode(...head.subarray(128, 132)) !== "DICM") return null;
    if (typeof dicomParser === "undefined") throw new Error(phrase("reader_missing"));
    try {
      return dicomParser.parseDicom(head, { untilTag: "x7fe00010" });
    } catch (error) {
      if (file.size <= HEAD_BYTES) throw error;
      return dicomParser.parseDicom(new Uint8Array(await file.arrayBuffer()), { untilTag: "x7fe00010" });
    }
  }

  function newStudy(uid, ds) {
    const terms = (ds.string("x00080005") || "").split("\\").map((t) => t.trim()).filter(Boolean);
    const label = CHARSETS[terms[terms.length - 1]] || null;
    return {
      uid: uid,
      patient: person(text(ds, "x00100010", label)),
      patientId: text(ds, "x00100020", label),
      sexAge: [WORDS.sex[ds.string("x00100040")] || "", age(ds)].filter(Boolean).join(" "),
      date: (ds.string("x00080020") || "").replace(/^(\d{4})(\d{2})(\d{2})$/, "$1-$2-$3"),
      description: text(ds, "x00081030", label),
      modalities: new Set(),
      items: new Map(),
      bytes: 0,
    };
  }

  function addInstance(studies, skipped, file, ds) {
    const uid = ds.string("x0020000d");
    const sop = ds.string("x00080018");
    if (!uid || !sop) { skipped.push(`${pathOf(file)}: ${phrase("no_uid")}`); return; }
    if (!studies.has(uid)) studies.set(uid, newStudy(uid, ds));
    const study = studies.get(uid);
    const modality = ds.string("x00080060");
    if (modality) study.modalities.add(modality);
    if (study.items.has(sop)) { skipped.push(`${pathOf(file)}: ${phrase("twice")}`); return; }
    study.items.set(sop, { name: pathOf(file), sop: sop, file: file, size: file.size, sent: 0 });
    study.bytes += file.size;
  }

  function ecgOf(files) {
    const bytes = files.reduce((n, f) => n + f.size, 0);
    return { name: pathOf(files[0]), files: files, size: bytes, sent: 0 };
  }

  // DICOM instances by study; ECG files (a DICOM waveform, a cart's file, a WFDB record's
  // header with the files of its name); the rest is named and left out.
  async function classify(files) {
    const studies = new Map();
    const ecgs = [];
    const skipped = [];
    const others = [];
    let n = 0;
    for (const file of files) {
      $("reading").textContent = phrase("reading", { n: ++n, m: files.length });
      let ds = null;
      try {
        ds = await header(file);
      } catch (error) {
        skipped.push(`${pathOf(file)}: ${phrase("unreadable")}: ${error.message || error}`);
        continue;
      }
      if (!ds) { others.push(file); continue; }
      const sopClass = ds.string("x00080016") || "";
      if (sopClass === DICOMDIR) continue;
      if (sopClass.startsWith(ECG_SOP_CLASS)) ecgs.push(ecgOf([file]));
      else addInstance(studies, skipped, file, ds);
    }
    const records = new Map(others.filter((f) => /\.hea$/i.test(f.name)).map((f) => [stemOf(pathOf(f)), [f]]));
    for (const file of others) {
      const record = records.get(stemOf(pathOf(file)));
      if (/\.hea$/i.test(file.name)) continue;
      if (record) record.push(file);
      else if (ECG_NAME.test(file.name)) ecgs.push(ecgOf([file]));
      else skipped.push(`${pathOf(file)}: ${phrase("not_dicom")}`);
    }
    for (const record of records.values()) ecgs.push(ecgOf(record));
    return { studies: [...studies.values()], ecgs: ecgs, skipped: skipped };
  }

  function showPreview() {
    const studies = $("studies").tBodies[0];
    const ecgs = $("ecgs").tBodies[0];
    studies.replaceChildren();
    ecgs.replaceChildren();
    for (const s of chosen.studies) {
      const row = studies.insertRow();
      row.dataset.study = s.uid;
      const who = cell(row, s.patient, "patient");
      const id = document.createElement("span");
      id.className = "muted patient-id";
      id.textContent = ` ${s.patientId}`;
      who.append(id);
      cell(row, s.sexAge, "sex-age");
      cell(row, s.date, "date");
      cell(row, s.description, "description");
      cell(row, [...s.modalities].join(", "), "modality");
      cell(row, String(s.items.size), "count");
      cell(row, size(s.bytes), "size");
      s.state = cell(row, phrase("to_send"), "state");
    }
    for (const e of chosen.ecgs) {
      const row = ecgs.insertRow();
      row.dataset.ecg = e.name;
      cell(row, `${phrase("ecg")} · ${e.files.map(pathOf).join(" + ")}`, "name");
      cell(row, size(e.size), "size");
      e.state = cell(row, phrase("to_send"), "state");
    }
    $("studies").hidden = !chosen.studies.length;
    $("ecgs").hidden = !chosen.ecgs.length;
    $("skipped").hidden = !chosen.skipped.length;
    $("skipped").textContent = chosen.skipped.length
      ? `${phrase("left_out")}: ${chosen.skipped.join("; ")}` : "";
    $("preview").hidden = false;
    button.disabled = !(chosen.studies.length || chosen.ecgs.length);
  }

  async function choose(input) {
    if (sending || !input.files.length) return;
    button.disabled = true;
    $("reading").hidden = false;
    chosen = await classify([...input.files]);
    $("reading").hidden = true;
    showPreview();
  }
  for (const input of pickers) input.addEventListener("change", () => choose(input));

  // --- progress ------------------------------------------------------------------------------

  const allItems = () => chosen.studies.flatMap((s) => [...s.items.values()]).concat(chosen.ecgs);

  function fileRow(item) {
    const li = document.createElement("li");
    li.dataset.file = item.name;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = item.name;
    item.bar = document.createElement("progress");
    item.bar.max = item.size || 1;
    item.bar.value = 0;
    item.note = document.createElement("span");
    item.note.className = "state";
    li.append(name, item.bar, item.note);
    item.row = li;
    return li;
  }

  function progress(item, sent) {
    item.sent = Math.min(sent, item.size);
    item.bar.value = item.sent;
    const items = allItems().filter((i) => !i.refused);
    const total = items.reduce((n, i) => n + i.size, 0) || 1;
    const done = items.reduce((n, i) => n + i.sent, 0);
    $("overall").value = done / total;
    $("overall-text").textContent = `${size(done)} / ${size(total)} (${Math.floor((100 * done) / total)}%)`;
  }

  function mark(item, state, words) {
    item.row.dataset.state = state;
    item.refused = state === "refused";
    item.note.textContent = words;
    item.note.className = state === "refused" ? "state error" : "state";
  }

  function linkState(words) {
    $("link-state").textContent = words;
    $("link-state").className = words ? "error" : "";
  }

  // --- requests ------------------------------------------------------------------------------

  // One request; its upload progress to onProgress(loaded, total). A dropped link, a stall, a
  // 5xx answer are transient (try again); another refusal carries the server's reason.
  function request(method, url, body, headers, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      let last = Date.now();
      const watch = setInterval(() => { if (Date.now() - last > STALL_MS) xhr.abort(); }, 5000);
      const fail = (error) => { clearInterval(watch); reject(error); };
      xhr.open(method, url);
      xhr.setRequestHeader("X-Telemed-Page", "1");
      for (const [name, value] of Object.entries(headers || {})) xhr.setRequestHeader(name, value);
      xhr.upload.onprogress = (event) => {
        last = Date.now();
        if (onProgress) onProgress(event.loaded, event.total);
      };
      xhr.onprogress = () => { last = Date.now(); };
      xhr.onload = () => {
        clearInterval(watch);
        let answer = {};
        try { answer = JSON.parse(xhr.responseText || "{}"); } catch (error) { /* not JSON */ }
        const reason = answer.detail || answer.title || `HTTP ${xhr.status}`;
        if (xhr.status >= 200 && xhr.status < 300) resolve(answer);
        else if (xhr.status >= 500 || xhr.status === 0) reject(new Transient(reason));
        else reject(new Refused(reason));
      };
      xhr.onerror = () => fail(new Transient(phrase("link_dropped")));
      xhr.onabort = () => fail(new Transient(phrase("no_answer")));
      xhr.send(body);
    });
  }

  const json = (method, url, body) =>
    request(method, url, body ? JSON.stringify(body) : null, { "Content-Type": "application/json" });

  async function pause(failures, error) {
    const wait = Math.min(30, 2 ** Math.max(0, failures - 1));
    for (let left = wait; left > 0; left--) {
      linkState(`${phrase("retry", { s: left })} · ${error.message}`);
      await sleep(1000);
    }
    linkState("");
  }

  // A call tried again with backoff while the link is down.
  async function retrying(call) {
    for (let failures = 1; ; failures++) {
      try {
        return await call();
      } catch (error) {
        if (!(error instanceof Transient)) throw error;
        await pause(failures, error);
      }
    }
  }

  // --- studies -------------------------------------------------------------------------------

  function remembered(key) {
    try { return JSON.parse(localStorage.getItem(STORE + key)); } catch (error) { return null; }
  }

  function remember(key, session) {
    try {
      localStorage.setItem(STORE + key, JSON.stringify({ id: session.id, study: session.study_instance_uid, at: Date.now() }));
    } catch (error) { /* private browsing: resuming still works by the key */ }
  }

  // The byte ranges [start, end) of a file not in ``held`` (the server's [start, end)
  // pairs), at most ``part`` bytes each.
  function gaps(held, total, part) {
    const ranges = held.map(([start, end]) => [start, end]).sort((a, b) => a[0] - b[0]);
    const out = [];
    let at = 0;
    for (const [start, end] of ranges.concat([[total, total]])) {
      while (at < start) {
        const stop = Math.min(start, at + part);
        out.push([at, stop]);
        at = stop;
      }
      at = Math.max(at, end);
    }
    return out;
  }

  async function refuse(base, item, reason) {
    mark(item, "refused", `${phrase("refused")}: ${reason}`);
    progress(item, 0);
    try {
      await retrying(() => request("DELETE", `${base}/instances/${encodeURIComponent(item.sop)}`));
    } catch (error) { /* stored after all, or gone: either way not missing */ }
  }

  // A body gzip-compressed when that saves a twentieth or more (the server takes gzip);
  // the progress callback is told bytes of the file, not of the wire.
  async function put(url, blob, headers, onProgress) {
    let body = blob;
    if (window.CompressionStream) {
      const packed = await new Response(blob.stream().pipeThrough(new CompressionStream("gzip"))).blob();
      if (packed.size < 0.95 * blob.size) {
        body = packed;
        headers = { ...headers, "Content-Encoding": "gzip" };
      }
    }
    const scale = blob.size / (body.size || 1);
    return request("PUT", url, body, headers, (n) => onProgress(Math.min(blob.size, n * scale)));
  }

  async function sendItem(base, item, missing) {
    const url = `${base}/instances/${encodeURIComponent(item.sop)}`;
    const dicom = { "Content-Type": "application/dicom" };
    mark(item, "sending", phrase("sending"));
    try {
      let answer;
      if (item.size <= WHOLE_MAX && !missing.received.length) {
        answer = await put(url, item.file, dicom, (n) => progress(item, n));
      } else {
        const chunks = gaps(missing.received, item.size, PART);
        // every byte held but not yet made whole (cut while assembling): the last part again
        if (!chunks.length) chunks.push([Math.max(0, item.size - PART), item.size]);
        let held = item.size - chunks.reduce((n, [a, b]) => n + b - a, 0);
        progress(item, held);
        for (const [start, end] of chunks) {
          const range = { ...dicom, "Content-Range": `bytes ${start}-${end - 1}/${item.size}` };
          answer = await put(url, item.file.slice(start, end), range, (n) => progress(item, held + n));
          held += end - start;
        }
      }
      progress(item, item.size);
      mark(item, "stored", answer.outcome === "stored" ? phrase("received") : phrase("held"));
    } catch (error) {
      if (error instanceof Refused) return refuse(base, item, error.message);
      progress(item, 0);
      mark(item, "waiting", phrase("to_resume"));
      throw error;
    }
  }

  async function inTurn(tasks, width) {
    let next = 0;
    let failed = null;
    const lane = async () => {
      while (next < tasks.length && !failed) {
        try { await tasks[next++](); } catch (error) { failed = failed || error; }
      }
    };
    await Promise.all(Array.from({ length: width }, lane));
    if (failed) throw failed;
  }

  async function manifestOf(study) {
    study.state.textContent = phrase("checking");
    const items = [...study.items.values()];
    for (const item of items) {
      item.sha256 = await digest(await item.file.arrayBuffer());
      mark(item, "waiting", phrase("to_send"));
    }
    const lines = items.map((i) => ({ sop_instance_uid: i.sop, size: i.size, sha256: i.sha256 }));
    const sorted = lines.map((l) => `${l.sop_instance_uid} ${l.size} ${l.sha256}`).sort();
    const key = "web:" + (await digest(new TextEncoder().encode([study.uid, ...sorted].join("\n"))));
    return { key: key, lines: lines };
  }

  async function sendStudy(study, asked) {
    const { key, lines } = await manifestOf(study);
    const earlier = remembered(key);
    const body = { key: key, study_instance_uid: study.uid, urgency: asked.urgency, question: asked.question, instances: lines };
    let session = await retrying(() => json("POST", "/send/uploads", body));
    remember(key, session);
    const base = `/send/uploads/${session.id}`;
    const resumed = earlier || session.stored > 0 || Number(session.bodies_received) > 0;
    study.state.textContent = resumed ? phrase("resuming") : phrase("sending");
    if (resumed) study.state.parentElement.dataset.resumed = session.id;
    for (let failures = 0; session.state === "open"; ) {
      const missing = new Map(session.missing.map((m) => [m.sop_instance_uid, m]));
      for (const item of study.items.values()) {
        if (!missing.has(item.sop) && !item.refused && item.sent < item.size) {
          progress(item, item.size);
          mark(item, "stored", phrase("held"));
        }
      }
      if (!missing.size) {
        session = await retrying(() => json("POST", `${base}/commit`));
        break;
      }
      const todo = [...study.items.values()].filter((i) => missing.has(i.sop) && !i.refused);
      if (!todo.length) throw new Refused(phrase("not_chosen"));
      try {
        await inTurn(todo.map((item) => () => sendItem(base, item, missing.get(item.sop))), 2);
        failures = 0;
      } catch (error) {
        if (!(error instanceof Transient)) throw error;
        await pause(++failures, error);
      }
      session = await retrying(() => json("GET", base));
    }
    for (const item of study.items.values()) {
      if (!item.refused && item.sent < item.size) { progress(item, item.size); mark(item, "stored", phrase("held")); }
    }
    const refused = [...study.items.values()].filter((i) => i.refused).length;
    study.state.textContent = refused
      ? phrase("sent_refused", { n: refused }) : phrase("sent");
    study.state.parentElement.dataset.state = "sent";
    localStorage.removeItem(STORE + key);
  }

  // --- ECG files -----------------------------------------------------------------------------

  function ecgAnswer(answer) {
    const what = `${answer.format}, ${phrase(answer.leads.length === 1 ? "lead" : "leads", { n: answer.leads.length })}, ${answer.duration_s} s`;
    const again = answer.outcome === "duplicate" ? ` · ${phrase("before")}` : "";
    const warned = answer.warnings.length ? ` · ${answer.warnings.join("; ")}` : "";
    return `${phrase("received")}: ${what}${again}${warned}`;
  }

  async function sendEcg(ecg, asked) {
    const body = () => {
      const data = new FormData();
      data.append("urgency", asked.urgency);
      if (asked.question) data.append("question", asked.question);
      for (const file of ecg.files) data.append("file", file, file.name);
      return data;
    };
    ecg.state.textContent = phrase("sending");
    mark(ecg, "sending", phrase("sending"));
    for (let failures = 1; ; failures++) {
      try {
        const answer = await request("POST", "/send/ecg", body(), {}, (n, total) => progress(ecg, (ecg.size * n) / (total || 1)));
        progress(ecg, ecg.size);
        ecg.state.textContent = ecgAnswer(answer);
        ecg.state.parentElement.dataset.state = "accepted";
        mark(ecg, "stored", phrase("received"));
        return;
      } catch (error) {
        progress(ecg, 0);
        if (error instanceof Refused) {
          ecg.state.textContent = `${phrase("refused")}: ${error.message}`;
          ecg.state.className = "state error";
          ecg.state.parentElement.dataset.state = "refused";
          mark(ecg, "refused", `${phrase("refused")}: ${error.message}`);
          progress(ecg, 0);
          return;
        }
        await pause(failures, error);
      }
    }
  }

  // --- sending -------------------------------------------------------------------------------

  function asked() {
    const question = form.elements.question.value.trim();
    const history = form.elements.history.value.trim();
    const parts = [question, history ? `${phrase("history")}: ${history}` : ""].filter(Boolean);
    return { urgency: form.elements.urgency.value, question: parts.join("\n") || null };
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (sending) return;
    sending = true;
    button.disabled = true;
    for (const input of pickers) input.disabled = true;
    $("files").replaceChildren(...allItems().map(fileRow));
    $("progress").hidden = false;
    const wanted = asked();
    let failed = 0;
    for (const study of chosen.studies) {
      try {
        await sendStudy(study, wanted);
      } catch (error) {
        failed++;
        study.state.textContent = `${phrase("not_sent")}: ${error.message}`;
        study.state.className = "state error";
      }
    }
    for (const ecg of chosen.ecgs) await sendEcg(ecg, wanted);
    failed += chosen.ecgs.filter((e) => e.row.dataset.state === "refused").length;
    sending = false;
    for (const input of pickers) input.disabled = false;
    document.body.dataset.sent = failed ? "with-refusals" : "all";
    ui.say(failed ? phrase("done_refused") : phrase("all_sent"), Boolean(failed));
  });

  window.addEventListener("beforeunload", (event) => {
    if (sending) event.preventDefault();
  });
})();
