// MESH web UI: the only script. It makes the Watches page live: matches
// of the standing queries arrive as server-sent events and are added to
// the list as they come. Everything else is plain forms and links.
"use strict";
(function () {
  var list = document.getElementById("matches");
  if (!list || !window.EventSource) { return; }
  var status = document.getElementById("live");
  var after = list.getAttribute("data-after") || "0";
  var es = new EventSource("/watches/events?after=" + encodeURIComponent(after));
  es.addEventListener("open", function () { status.textContent = "live"; status.className = "live ok"; });
  es.addEventListener("error", function () { status.textContent = "reconnecting…"; status.className = "live muted"; });
  es.addEventListener("match", function (ev) {
    var m = JSON.parse(ev.data);
    var empty = document.getElementById("no-matches");
    if (empty) { empty.remove(); }
    var li = document.createElement("li");
    li.className = "new";
    li.setAttribute("data-key", m.key);
    var a = document.createElement("a");
    a.href = "/memories/" + encodeURIComponent(m.key);
    a.textContent = (m.lesson && (m.lesson.title || m.lesson.content)) || m.key;
    var meta = document.createElement("span");
    meta.className = "muted";
    meta.textContent = " — " + m.key + " (" + m.origin + ", watch " + m.watch + ", " + new Date(m.at).toLocaleTimeString() + ")";
    li.appendChild(a);
    li.appendChild(meta);
    list.insertBefore(li, list.firstChild);
    // The watch's match count, in the table above.
    var rows = document.querySelectorAll("#watch-list tr[data-watch]");
    for (var i = 0; i < rows.length; i++) {
      if (rows[i].getAttribute("data-watch") === m.watch) {
        var cell = rows[i].querySelector(".match-count");
        if (cell) { cell.textContent = String((parseInt(cell.textContent, 10) || 0) + 1); }
      }
    }
  });
})();
