// Live results for tables with data-live: a server-sent event stream of
// results, each added on top as text (textContent, never HTML), so a
// result's fields cannot inject markup.
(function () {
  "use strict";
  var cols = ["id", "job_id", "game_id", "operation", "outcome", "error_code", "error_message", "container_id", "completed_at_ms"];
  function fmtMS(s) {
    var n = parseInt(s, 10);
    if (!(n > 0)) return "";
    return new Date(n).toISOString().replace("T", " ").replace("Z", "");
  }
  function cell(tr, text, href, cls) {
    var td = document.createElement("td");
    if (href) {
      var a = document.createElement("a");
      a.href = href;
      a.textContent = text;
      td.appendChild(a);
    } else {
      td.textContent = text;
    }
    if (cls) td.className = cls;
    tr.appendChild(td);
  }
  function start() {
    var table = document.querySelector("table[data-live]");
    var state = document.getElementById("live-state");
    if (!table || !window.EventSource) return;
    var body = table.tBodies[0];
    var es = new EventSource(table.getAttribute("data-live"));
    es.onopen = function () { if (state) state.textContent = "(live)"; };
    es.onerror = function () { if (state) state.textContent = "(live: reconnecting)"; };
    es.addEventListener("gap", function () { if (state) state.textContent = "(live; more results arrived than shown: reload for the filtered list)"; });
    es.addEventListener("result", function (e) {
      var r = JSON.parse(e.data);
      var tr = document.createElement("tr");
      tr.className = "fresh";
      tr.setAttribute("data-job", r.job_id);
      cols.forEach(function (c) {
        var v = r[c] || "";
        if (c === "job_id") cell(tr, v, "/jobs?q=" + encodeURIComponent(r.job_ref || v));
        else if (c === "game_id") cell(tr, v, "/games/" + encodeURIComponent(v));
        else if (c === "outcome") cell(tr, v, null, v);
        else if (c === "completed_at_ms") cell(tr, fmtMS(v));
        else cell(tr, v);
      });
      body.insertBefore(tr, body.firstChild);
      while (body.rows.length > 500) body.deleteRow(body.rows.length - 1);
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
