// The pages' actions: each form with data-action (and each button with data-post) sends
// JSON to the page's own route, which runs the JSON API's handler for the signed-in user.
// The X-Telemed-Page header keeps other sites from posting (with the SameSite cookie).
"use strict";
(function () {
  const message = document.getElementById("message");

  function say(text, isError) {
    if (!message) return;
    message.textContent = text;
    message.className = isError ? "error" : "";
    if (isError) message.scrollIntoView({ block: "nearest" });
  }

  async function send(method, path, body) {
    const response = await fetch(path, {
      method: method,
      headers: { "Content-Type": "application/json", "X-Telemed-Page": "1" },
      body: JSON.stringify(body || {}),
      credentials: "same-origin",
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new Error(answer.detail || answer.title || response.statusText);
    }
    return answer;
  }

  // The words of the server's values (teleradiology.core.words), as the base page holds them.
  const words = JSON.parse(document.getElementById("words").textContent);
  // and the scripts' own messages, in the page's language (both languages without them)
  const said = words.messages || {};

  // The same for the pages' own scripts (the ECG page's), loaded after this one.
  window.telemedPage = Object.freeze({ say: say, send: send, words: words });

  // Workstations as the console's form writes them, one a line: "TITLE host fingerprint"
  // ("-" for no host; the fingerprint may be left out).
  function workstations(text) {
    return text.split("\n").map((line) => line.trim().split(/\s+/)).filter((w) => w[0])
      .map(([title, host, fingerprint]) => {
        const one = { ae_title: title };
        if (host && host !== "-") one.host = host;
        if (fingerprint) one.certificate_sha256 = fingerprint;
        return one;
      });
  }

  // A form's fields as the API's JSON: data-type="bool"/"int"/"float" converts, "list" splits
  // a text at commas and spaces, empty values are left out (but a data-type="list" select or
  // "workstations" text is always sent), a
  // checkbox with data-include="#form" merges that form's fields when checked, checked boxes
  // with data-list gather their values in a list under their name (an empty list when none
  // is), a datetime-local field is sent as the instant it names here.
  function fields(form) {
    const body = {};
    for (const el of form.elements) {
      if (!el.name || el.disabled) continue;
      if (el.dataset.type === "list" && el.tagName === "SELECT") {
        body[el.name] = Array.from(el.selectedOptions || [], (o) => o.value);
        continue;
      }
      if (el.dataset.type === "workstations") {
        body[el.name] = workstations(el.value);
        continue;
      }
      if (el.type === "checkbox") {
        if (el.dataset.list !== undefined) {
          const list = body[el.name] || (body[el.name] = []);
          if (el.checked) list.push(el.dataset.type === "int" ? Number(el.value) : el.value);
        } else if (el.dataset.include && el.checked) {
          Object.assign(body, fields(document.querySelector(el.dataset.include)));
        }
        continue;
      }
      const text = el.value.trim();
      if (text === "") continue;
      if (el.dataset.type === "bool") body[el.name] = text === "true";
      else if (["int", "float"].includes(el.dataset.type)) body[el.name] = Number(text);
      else if (el.dataset.type === "list") body[el.name] = text.split(/[\s,]+/).filter(Boolean);
      else if (el.type === "datetime-local") body[el.name] = new Date(text).toISOString();
      else body[el.name] = text;
    }
    return body;
  }

  async function run(button, method, path, body, reload, go) {
    if (button) button.disabled = true;
    try {
      const answer = await send(method, path, body);
      if (go && answer.id) {
        location.href = go.replace("{id}", encodeURIComponent(answer.id));  // the new record
      } else if (button && button.hasAttribute("data-show") && answer.show) {
        say(answer.show, false);  // e.g. a one-time link the administrator passes on
      } else if (button && button.form && button.form.hasAttribute("data-show-link") && answer.link) {
        say(`${said.one_time_link}: ${location.origin}${answer.link}`, false);
      } else if (button && button.hasAttribute("data-open-case") && answer.id) {
        location.href = answer.specialty === "ecg" ? `/ecg/cases/${answer.id}` : `/cases/${answer.id}`;
      } else if (reload) {
        location.reload();
      } else {
        say(said.done + (answer.id ? ` #${answer.id}` : ""), false);
      }
    } catch (error) {
      say(`${said.failed}: ${error.message}`, true);
    } finally {
      if (button) button.disabled = false;
    }
  }

  for (const form of document.querySelectorAll("form[data-action]")) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const button = form.querySelector("button[type=submit]");
      run(
        button,
        form.dataset.method || "POST",
        form.dataset.action,
        fields(form),
        form.hasAttribute("data-reload"),
        form.dataset.go,
      );
    });
  }

  for (const button of document.querySelectorAll("button[data-post]")) {
    button.addEventListener("click", () => {
      if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
      run(button, "POST", button.dataset.post, {}, !button.hasAttribute("data-show"));
    });
  }

  // The signed-out language switch on a page whose URL has a fragment (the one-time link's
  // secret): the choice is posted in the background and the page reloaded, so the fragment
  // stays in the address bar (a redirect would drop it) and is never sent to the server.
  const visitorSwitch = document.querySelector("form#language-switch[action='/language']");
  if (visitorSwitch) {
    visitorSwitch.addEventListener("submit", async (event) => {
      if (!location.hash) return;
      event.preventDefault();
      try {
        await fetch(visitorSwitch.action, {
          method: "POST",
          body: new URLSearchParams(new FormData(visitorSwitch)),
          credentials: "same-origin",
        });
        location.reload();
      } catch (error) {
        say(`${said.failed}: ${error.message}`, true);
      }
    });
  }

  // The one-time link's page: its secret is the URL's fragment (never sent in a request
  // line, so never in a log); the new password goes with it to the API. Its words are the
  // form's data- attributes, in the page's language.
  const linkForm = document.querySelector("form[data-password-link]");
  if (linkForm) {
    linkForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const password = linkForm.elements.new_password.value;
      if (password !== linkForm.elements.again.value) {
        say(linkForm.dataset.differ, true);
        return;
      }
      try {
        const answer = await send("POST", linkForm.dataset.passwordLink, {
          link: location.hash.slice(1),
          new_password: password,
        });
        say(linkForm.dataset.done.replace("%(username)s", answer.username), false);
        linkForm.reset();
      } catch (error) {
        say(`${linkForm.dataset.failed}: ${error.message}`, true);
      }
    });
  }

  // Report templates per modality: choosing one fills the findings and impression.
  const template = document.getElementById("template");
  if (template) {
    template.addEventListener("change", () => {
      const option = template.selectedOptions[0];
      if (!option || !option.value) return;
      const form = template.form;
      form.elements.findings.value = option.dataset.findings;
      form.elements.impression.value = option.dataset.impression;
    });
  }

  // Amend the county draft: the report form starts from it, marked as not agreed.
  const amend = document.querySelector("[data-fill-report]");
  if (amend) {
    amend.addEventListener("click", () => {
      const form = document.getElementById("report");
      if (!form) return;
      form.elements.findings.value = document.getElementById("draft-findings").textContent;
      form.elements.impression.value = document.getElementById("draft-impression").textContent;
      const flag = document.getElementById("agreed-flag");
      if (flag) flag.disabled = false;
      form.scrollIntoView();
      form.elements.findings.focus();
    });
  }

  // "Refer up" on a report picks its case in the referral form.
  for (const link of document.querySelectorAll("a[data-refer]")) {
    link.addEventListener("click", () => {
      const select = document.querySelector("#refer select[name=case_id]");
      if (select) select.value = link.dataset.refer;
    });
  }

  // The worklist and the inbox show what arrives as it arrives: the signed-in user's
  // notifications stream in over /events (server-sent events). For one of the kinds the
  // page lists, it reloads while nobody is typing into it, or else says what came and
  // offers the reload. A slow timer reloads it as well, should a proxy hold the stream.
  let touched = false;
  document.addEventListener("input", () => { touched = true; });
  const busy = () => {
    const active = document.activeElement;
    return touched || Boolean(active && ["INPUT", "TEXTAREA", "SELECT"].includes(active.tagName));
  };
  const ARRIVED = words.notification;
  const kinds = (names) => (names || "").split(/\s+/).filter(Boolean);
  const live = kinds(document.body.dataset.live);
  // kinds that only bring the page up to date: reloaded while nobody types, never announced
  const quiet = kinds(document.body.dataset.liveQuiet);
  if ((live.length || quiet.length) && window.EventSource) {
    const state = document.getElementById("live-state");
    // from the last notification before the page was made: none falls between
    const after = document.body.dataset.liveAfter;
    const source = new EventSource(after ? `/events?after=${after}` : "/events");
    const arrived = (event) => {
      if (!busy()) { location.reload(); return; }
      let banner = document.getElementById("live-banner");
      if (!banner) {
        banner = document.createElement("div");
        banner.id = "live-banner";
        banner.setAttribute("role", "alert");
        const reload = document.createElement("button");
        reload.type = "button";
        reload.textContent = said.reload;
        reload.addEventListener("click", () => location.reload());
        banner.append(document.createElement("span"), reload);
        document.querySelector("main").prepend(banner);
      }
      banner.className = `live-banner kind-${event.type}`;
      const kind = ARRIVED[event.type] || event.type;
      banner.firstChild.textContent = `${said.arrived.replace("%(kind)s", kind)} `;
    };
    for (const kind of live) source.addEventListener(kind, arrived);
    for (const kind of quiet) source.addEventListener(kind, () => { if (!busy()) location.reload(); });
    source.addEventListener("open", () => { document.body.dataset.liveOpen = "1"; });
    source.addEventListener("error", () => {
      delete document.body.dataset.liveOpen;
      if (state) state.textContent = said.lost;
    });
  }
  const every = Number(document.body.dataset.refresh || 0);
  if (every > 0) {
    setInterval(() => { if (!busy()) location.reload(); }, every * 1000);
  }
})();
