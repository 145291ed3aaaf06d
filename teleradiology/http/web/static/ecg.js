// The ECG reading page: claim, edit measurements and statements, sign the report.
// Requests go to this page's own endpoints (/ecg/...), which run the JSON API's handlers
// for the signed-in user, sent by app.js's send (its X-Telemed-Page header keeps other
// sites from posting).
"use strict";
(function () {
  const caseId = document.body.dataset.case;
  const sop = document.body.dataset.sop;
  // the page's message line, its requests and the words of the server's values, from app.js;
  // its own words are its elements' data- attributes (in the page's language)
  const { say, send, words } = window.telemedPage;
  const STATUS = words.report_status;
  const CONCLUSION = words.conclusion;

  const claim = document.getElementById("claim");
  if (claim) {
    claim.addEventListener("click", async () => {
      try {
        await send("POST", `/ecg/cases/${caseId}/claim`);
        location.reload();
      } catch (error) {
        say(`${claim.dataset.failed}: ${error.message}`, true);
      }
    });
  }

  const edit = document.getElementById("edit");
  if (edit) {
    edit.addEventListener("submit", async (event) => {
      event.preventDefault();
      const measurements = {};
      for (const input of edit.querySelectorAll("#measurements input")) {
        const text = input.value.trim();
        if (text !== input.defaultValue.trim()) {
          const value = Number(text);
          if (text !== "" && !Number.isFinite(value)) {
            say(edit.dataset.notNumber.replace("%(text)s", text), true);
            return;
          }
          measurements[input.name] = text === "" ? null : value;
        }
      }
      const lines = document.getElementById("statements").value.split("\n");
      // A line left as it was (in either language) keeps its statement (code and both
      // texts); a new line is the reader's own.
      const current = JSON.parse(document.getElementById("statements-json").textContent);
      const byText = new Map();
      for (const s of current) {
        for (const text of [s.text_en, s.text_zh, s.code]) {
          if (text && !byText.has(text)) byText.set(text, s);
        }
      }
      const statements = lines.map((l) => l.trim()).filter((l) => l)
        .map((text) => byText.get(text) || { code: "reader", text_zh: text });
      const body = { measurements };
      if (JSON.stringify(statements) !== JSON.stringify(current)) {
        body.statements = statements;
      }
      try {
        await send("PATCH", `/ecg/cases/${caseId}/ecg/${sop}`, body);
        location.reload();
      } catch (error) {
        say(`${edit.dataset.failed}: ${error.message}`, true);
      }
    });
  }

  const report = document.getElementById("report");
  if (report) {
    report.addEventListener("submit", async (event) => {
      event.preventDefault();
      const form = new FormData(report);
      const body = Object.fromEntries(form.entries());
      try {
        const saved = await send("POST", `/ecg/cases/${caseId}/report`, body);
        const status = STATUS[saved.status] || saved.status;
        say(`${report.dataset.signed}: #${saved.id} · ${status}`, false);
        const item = document.createElement("li");
        const conclusion = CONCLUSION[saved.conclusion] || saved.conclusion;
        item.textContent = `${status} · ${conclusion} · ${saved.impression}`;
        document.getElementById("reports").appendChild(item);
      } catch (error) {
        say(`${report.dataset.failed}: ${error.message}`, true);
      }
    });
  }
})();
