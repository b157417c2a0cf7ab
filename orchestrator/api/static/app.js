// The run view's own script: local times, confirmations, the DAG filter, grid cells,
// and live updates (EventSource) of the run page and the log view.
// Data from the server is only ever set as text or attributes; HTML comes only from
// this server's own fragments, which it rendered and escaped.
(function () {
  "use strict";

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (t) {
      if (t.dataset.local) { return; }
      var d = new Date(t.getAttribute("datetime"));
      if (isNaN(d.getTime())) { return; }
      t.title = t.textContent;
      t.textContent = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) +
        " " + pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
      t.dataset.local = "1";
    });
  }

  function sel(attr, value) {
    return "[" + attr + "=\"" + (window.CSS && CSS.escape ? CSS.escape(value) :
      String(value).replace(/["\\]/g, "\\$&")) + "\"]";
  }

  function label(state) { return String(state).replace(/_/g, " "); }

  function setBadge(badge, state) {
    if (!badge) { return; }
    badge.dataset.state = state;
    badge.textContent = label(state);
  }

  // -- forms that ask first (cancel) ----------------------------------------------------
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm &&
        !window.confirm(form.dataset.confirm)) {
      ev.preventDefault();
    }
  });

  // -- the DAG list's filter ------------------------------------------------------------
  function dagFilter() {
    var input = document.getElementById("dag-filter");
    if (!input) { return; }
    input.addEventListener("input", function () {
      var q = input.value.trim().toLowerCase();
      document.querySelectorAll(".dag[data-dag-id]").forEach(function (el) {
        el.hidden = q !== "" && el.dataset.dagId.toLowerCase().indexOf(q) < 0;
      });
    });
  }

  // -- the grid: a cell opens its task on the run page -----------------------------------
  function grid() {
    var table = document.getElementById("grid");
    if (!table) { return; }
    table.addEventListener("mouseover", function (ev) {
      var td = ev.target.closest("td[data-task-id]");
      if (td && !td.title) {
        var counts = td.querySelector(".counts");
        td.title = td.dataset.taskId + ": " + label(td.dataset.state) +
          (counts ? " (" + counts.textContent + " succeeded)" : "");
      }
    });
    table.addEventListener("click", function (ev) {
      var td = ev.target.closest("td[data-task-id]");
      if (!td || td.dataset.state === "none") { return; }
      var tr = td.closest("tr[data-run-id]");
      window.location.href = "/runs/" + encodeURIComponent(tr.dataset.runId) + "#task-" +
        encodeURIComponent(td.dataset.taskId);
    });
  }

  // -- the run page's task filter (by state) ----------------------------------------------
  function taskFilter() {
    var bar = document.querySelector(".state-filter");
    if (!bar) { return; }
    var wanted = "";
    function show() {
      document.querySelectorAll(".tasks > section.task").forEach(function (sec) {
        sec.hidden = wanted !== "" && sec.dataset.state !== wanted;
      });
    }
    bar.addEventListener("click", function (ev) {
      var b = ev.target.closest("button[data-filter]");
      if (!b) { return; }
      wanted = b.dataset.filter;
      bar.querySelectorAll("button").forEach(function (x) {
        x.setAttribute("aria-pressed", x === b ? "true" : "false");
      });
      show();
    });
    document.addEventListener("orch:task-updated", show);
  }

  // -- the run page, live ----------------------------------------------------------------
  function runPage() {
    var head = document.getElementById("run");
    if (!head || head.dataset.live !== "true" || !window.EventSource) { return; }
    var runId = head.dataset.runId;
    var busy = {};
    var again = {};

    function refreshTask(id) {
      if (busy[id]) { again[id] = true; return; }
      busy[id] = true;
      fetch("/runs/" + encodeURIComponent(runId) + "?task=" + encodeURIComponent(id),
            {credentials: "same-origin", headers: {"Accept": "text/html"}})
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          var old = document.querySelector(".tasks > section.task" + sel("data-task-id", id));
          if (html === null || !old) { return; }
          var tpl = document.createElement("template");
          tpl.innerHTML = html.trim();
          var fresh = tpl.content.querySelector("section.task");
          if (!fresh) { return; }
          var was = old.querySelector("details");
          var now = fresh.querySelector("details");
          if (was && now && was.open) { now.open = true; }
          old.replaceWith(fresh);
          localTimes(fresh);
          document.dispatchEvent(new CustomEvent("orch:task-updated"));
        })
        .catch(function () { /* the next change fetches it again */ })
        .then(function () {
          busy[id] = false;
          if (again[id]) { again[id] = false; refreshTask(id); }
        });
    }

    function refreshHeader() {
      fetch("/runs/" + encodeURIComponent(runId) + "?part=header",
            {credentials: "same-origin", headers: {"Accept": "text/html"}})
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          var old = document.getElementById("run");
          if (html === null || !old) { return; }
          var tpl = document.createElement("template");
          tpl.innerHTML = html.trim();
          var fresh = tpl.content.getElementById("run");
          if (fresh) { old.replaceWith(fresh); localTimes(fresh); }
        })
        .catch(function () { /* the page is right but for its buttons */ });
    }

    function tally(snap) {
      var bar = document.querySelector(".state-filter");
      if (!bar) { return; }
      var n = {};
      Object.keys(snap.tasks).forEach(function (id) {
        var s = snap.tasks[id].state;
        n[s] = (n[s] || 0) + 1;
      });
      bar.querySelectorAll("button[data-filter]").forEach(function (b) {
        var s = b.dataset.filter;
        if (s === "") { return; }
        var count = b.querySelector(".n");
        if (count) { count.textContent = String(n[s] || 0); }
        b.hidden = !n[s] && b.getAttribute("aria-pressed") !== "true";
      });
    }

    function apply(snap) {
      tally(snap);
      var el = document.getElementById("run");
      el.dataset.state = snap.run.state;
      setBadge(el.querySelector(".run-badge .badge"), snap.run.state);
      var progress = el.querySelector(".progress-text");
      if (progress) { progress.textContent = snap.run.done + "/" + snap.run.total; }
      Object.keys(snap.tasks).forEach(function (id) {
        var t = snap.tasks[id];
        var node = document.querySelector("svg.graph g.node" + sel("data-task-id", id));
        if (node) {
          node.setAttribute("data-state", t.state);
          var counts = node.querySelector("text.counts");
          if (counts && t.counts !== null) { counts.textContent = t.counts; }
          var title = node.querySelector("title");
          if (title) { title.textContent = id + " (" + label(t.state) + ")"; }
        }
        var sec = document.querySelector(".tasks > section.task" + sel("data-task-id", id));
        if (sec && sec.dataset.sig !== t.sig) {
          sec.dataset.state = t.state;
          setBadge(sec.querySelector("summary .badge"), t.state);
          refreshTask(id);
        }
      });
    }

    var source = new EventSource(head.dataset.events);
    source.addEventListener("snapshot", function (ev) {
      try { apply(JSON.parse(ev.data)); } catch (e) { /* a bad event changes nothing */ }
    });
    source.addEventListener("end", function () {
      source.close();
      refreshHeader();
    });
  }

  // -- a run's alerts: fetched again until the run has ended and none waits to be sent --
  function alertsLive() {
    var section = document.getElementById("alerts");
    if (!section || section.dataset.settled === "true") { return; }
    var every = (parseInt(section.dataset.refresh || "2", 10) || 2) * 1000;
    var src = section.dataset.src;
    var stopAt = Date.now() + 3600 * 1000;  // a tab left open stops asking after an hour

    function poll() {
      fetch(src, {credentials: "same-origin", headers: {"Accept": "text/html"}})
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          var old = document.getElementById("alerts");
          if (html === null || !old) { return; }
          var tpl = document.createElement("template");
          tpl.innerHTML = html.trim();
          var fresh = tpl.content.getElementById("alerts");
          if (!fresh) { return; }
          old.querySelectorAll("details[open]").forEach(function (d) {
            var li = d.closest("li[data-notification-id]");
            var now = li && fresh.querySelector("li" + sel("data-notification-id",
              li.dataset.notificationId) + " details");
            if (now) { now.open = true; }
          });
          old.replaceWith(fresh);
          localTimes(fresh);
          section = fresh;
        })
        .catch(function () { /* asked again next time */ })
        .then(function () {
          if (section.dataset.settled !== "true" && Date.now() < stopAt) {
            window.setTimeout(poll, every);
          }
        });
    }
    window.setTimeout(poll, every);
  }

  // -- the log view, following -------------------------------------------------------------
  function logView() {
    var log = document.getElementById("log");
    if (!log) { return; }
    var toggle = document.getElementById("wrap-toggle");
    if (toggle) {
      toggle.addEventListener("click", function () {
        var on = log.classList.toggle("wrap");
        toggle.setAttribute("aria-pressed", on ? "true" : "false");
      });
    }
    if (log.dataset.live !== "true" || !window.EventSource) { return; }
    var after = parseInt(log.dataset.after || "0", 10) || 0;
    var empty = document.querySelector(".empty-log");
    var note = document.querySelector(".live-note");
    var source = new EventSource(log.dataset.stream + "&after=" + after);

    function atBottom() {
      return log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    }

    source.onmessage = function (ev) {
      var chunk;
      try { chunk = JSON.parse(ev.data); } catch (e) { return; }
      if (typeof chunk.seq !== "number" || chunk.seq <= after) { return; }  // seen already
      after = chunk.seq;
      var follow = atBottom();
      log.appendChild(document.createTextNode(chunk.data));
      if (empty) { empty.hidden = true; }
      if (follow) { log.scrollTop = log.scrollHeight; }
    };
    source.addEventListener("end", function (ev) {
      source.close();
      log.dataset.live = "false";
      var outcome = "";
      try { outcome = JSON.parse(ev.data).outcome || ""; } catch (e) { /* no outcome */ }
      if (note) {
        note.textContent = "The attempt has ended" + (outcome ? " (" + label(outcome) + ")" : "") +
          ": this is its whole log.";
      }
      var badge = document.querySelector(".page-head h1 .badge");
      if (badge && outcome) { setBadge(badge, outcome); }
      if (empty && !log.textContent) { empty.textContent = "This attempt wrote no output."; }
    });
  }

  function start() {
    localTimes(document);
    dagFilter();
    grid();
    taskFilter();
    runPage();
    alertsLive();
    logView();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
