// Tandem dashboard: swaps in the live part of the page that the node sends
// over Server-Sent Events, keeps the event filter, and asks before actions.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var conn = document.getElementById("conn");
  var filter = "";

  function applyFilter() {
    var sel = document.getElementById("type-filter");
    if (sel) {
      if (filter && !Array.prototype.some.call(sel.options, function (o) { return o.value === filter; })) {
        var o = document.createElement("option");
        o.textContent = filter;
        sel.appendChild(o);
      }
      sel.value = filter;
    }
    var rows = live.querySelectorAll("#events tbody tr[data-type]");
    for (var i = 0; i < rows.length; i++) {
      rows[i].hidden = filter !== "" && rows[i].getAttribute("data-type") !== filter;
    }
    var exp = document.getElementById("export");
    if (exp) exp.href = "/events.jsonl" + (filter ? "?type=" + encodeURIComponent(filter) : "");
  }

  live.addEventListener("change", function (ev) {
    if (ev.target.id === "type-filter") {
      filter = ev.target.value;
      applyFilter();
    }
  });
  var sel = document.getElementById("type-filter");
  if (sel) filter = sel.value;
  document.documentElement.classList.add("js");

  function setConn(text, cls) {
    conn.textContent = text;
    conn.className = "conn " + cls;
  }
  if (window.EventSource) {
    var es = new EventSource("/events");
    setConn("connecting…", "wait");
    es.addEventListener("view", function (ev) {
      live.innerHTML = ev.data;
      applyFilter();
      setConn("live", "ok");
    });
    es.onerror = function () { setConn("connection to the node lost, retrying…", "bad"); };
  }

  var forms = document.querySelectorAll("form.action");
  var result = document.getElementById("action-result");
  Array.prototype.forEach.call(forms, function (f) {
    // With the script, the confirmation is a dialog instead of the checkbox.
    var box = f.querySelector("input[name=confirm]");
    if (box) box.required = false;
    f.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (!window.confirm(f.getAttribute("data-confirm"))) return;
      var body = new URLSearchParams(new FormData(f));
      body.set("confirm", "yes");
      // location.origin: a page opened as http://user:pass@host/ must not
      // hand its credentials to fetch (which refuses them in the URL).
      fetch(location.origin + "/action", { method: "POST", body: body, headers: { "Accept": "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (j) {
          result.hidden = false;
          result.textContent = j.ok ? j.message : "refused: " + (j.error ? j.error.message : "unknown error");
          result.className = j.ok ? "notice" : "notice bad";
        })
        .catch(function (e) { result.hidden = false; result.textContent = "failed: " + e; });
    });
  });
})();
