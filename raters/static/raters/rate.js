// Rating page: records time spent; the full player arrives with the raters issue.
(function () {
  "use strict";
  var started = Date.now();
  var form = document.getElementById("judgment-form");
  if (!form) return;
  form.addEventListener("submit", function () {
    document.getElementById("time-spent").value = String(Date.now() - started);
  });
})();
