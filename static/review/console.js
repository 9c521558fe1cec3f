/* Review console keys: a submit the answers (as shown: every suggestion accepted),
   o go to the first answer, e escalate, j/k next/previous ticket, 1/2/3 rate a revealed
   draft, n next ticket, ? help. Keys act on elements the server rendered (data-key,
   [data-first], #escalate-panel), so a page without them simply ignores the key. */
(function () {
  "use strict";

  function typing(el) {
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }

  function toggleHelp() {
    var help = document.getElementById("help");
    if (!help) return;
    if (help.open) help.close();
    else help.showModal();
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
    if (event.key === "?" && !typing(event.target)) {
      event.preventDefault();
      toggleHelp();
      return;
    }
    if (typing(event.target) || document.querySelector("dialog[open]")) return;
    var key = event.key;
    if (key === "o") {
      var field = document.querySelector("[data-first]");
      if (field) {
        event.preventDefault();
        field.focus();
      }
    } else if (key === "e") {
      var panel = document.getElementById("escalate-panel");
      if (panel) {
        event.preventDefault();
        panel.open = true;
        document.getElementById("escalate-path").focus();
      }
    } else if (["a", "j", "k", "n", "1", "2", "3"].indexOf(key) !== -1) {
      var target = document.querySelector('[data-key="' + key + '"]');
      if (target) {
        event.preventDefault();
        target.click();
      }
    }
  });
})();

/* A message in #flash belongs to the last request: clear it when the next one starts. */
document.addEventListener("htmx:beforeRequest", function () {
  var flash = document.getElementById("flash");
  if (flash) flash.innerHTML = "";
});
