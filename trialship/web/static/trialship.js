// htmx requests carry the CSRF token (the page's <meta name="csrf-token">).
document.addEventListener("htmx:configRequest", function (event) {
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) { event.detail.headers["X-CSRFToken"] = meta.content; }
});

// An upload form (data-upload-progress="ID") shows how much of the files has been sent, then
// goes where the server sends it, as a plain submit would. Without JavaScript it submits as is.
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (!form.dataset || !form.dataset.uploadProgress || !window.FormData) { return; }
  var chosen = Array.prototype.some.call(form.querySelectorAll("input[type=file]"), function (input) {
    return input.files.length > 0;
  });
  if (!chosen) { return; }  // nothing to send: the server says so on the form, as it is
  event.preventDefault();
  var bar = document.getElementById(form.dataset.uploadProgress);
  var text = document.getElementById(form.dataset.uploadProgress + "-text");
  var button = form.querySelector("button[type=submit]");
  var request = new XMLHttpRequest();
  request.open("POST", form.action || window.location.href);
  request.upload.addEventListener("progress", function (progress) {
    if (!progress.lengthComputable) { return; }
    bar.hidden = false;
    bar.max = progress.total;
    bar.value = progress.loaded;
    text.textContent = "Sent " + (progress.loaded / 1048576).toFixed(1) + " of " +
      (progress.total / 1048576).toFixed(1) + " MB (" +
      Math.floor(100 * progress.loaded / progress.total) + "%)";
  });
  request.addEventListener("load", function () {
    if (request.status < 400 && request.responseURL !== window.location.href) {
      window.location.assign(request.responseURL);  // (the job's page, after the redirect)
      return;
    }
    document.open();
    document.write(request.responseText);  // the server's answer: the form with the reason
    document.close();
  });
  request.addEventListener("error", function () {
    button.disabled = false;
    text.textContent = "The upload stopped: the connection to the server was lost. See the " +
      "exams list, then choose Import again (files imported already are not imported twice).";
  });
  button.disabled = true;
  text.textContent = "Sending…";
  request.send(new FormData(form));
});
