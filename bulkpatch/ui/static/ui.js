// bulkpatch ui: the little the pages need beyond HTML (loaded as a file: the page allows no
// inline script). A sheet dropped on the upload form is chosen; a filter applies as soon as it
// is chosen; a button that starts work says so and cannot be pressed twice; a progress page
// shows what the server pushes, then the page its work ends on.
document.addEventListener("DOMContentLoaded", () => {
  const drop = document.getElementById("drop");
  if (drop) {
    droppable(drop, document.getElementById("sheet"));
  }
  const progress = document.getElementById("progress");
  if (progress && progress.dataset.events) {
    follow(progress);
  }
  for (const select of document.querySelectorAll("select.autosubmit")) {
    select.addEventListener("change", () => select.form.submit());
  }
  for (const form of document.querySelectorAll("form[method=post]")) {
    form.addEventListener("submit", () => {
      for (const button of form.querySelectorAll("button")) {
        button.disabled = true;
        button.textContent = "Working…";
      }
    });
  }
});

function follow(progress) {
  const source = new EventSource(progress.dataset.events);
  source.onmessage = (event) => {
    const shown = JSON.parse(event.data);
    if (shown.total) {
      progress.textContent = `${shown.done} of ${shown.total} ${shown.unit}s done`;
      document.getElementById("pace").textContent =
        `${shown.calls_per_minute} calls per minute; ${shown.eta}`;
    }
    const bar = document.getElementById("bar");
    bar.max = shown.total || 1;
    bar.value = shown.done;
    const stop = document.getElementById("stop");
    if (stop && shown.stopping) {
      stop.disabled = true;
      stop.textContent = "Stopping…";
    }
    const list = document.getElementById("so-far");
    list.replaceChildren();
    for (const [name, n] of Object.entries(shown.outcomes)) {
      const item = document.createElement("li");
      item.className = `outcome-${name}`;
      const count = document.createElement("b");
      count.textContent = n;
      item.append(count, ` ${name}`);
      list.append(item);
    }
  };
  source.addEventListener("done", () => {
    source.close();
    window.location.assign(progress.dataset.next);
  });
}

function droppable(zone, input) {
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => {
      event.preventDefault();
      zone.classList.add("over");
    });
  }
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    if (event.dataTransfer.files.length) {
      input.files = event.dataTransfer.files;
      zone.querySelector(".chosen").textContent = input.files[0].name;
    }
  });
  input.addEventListener("change", () => {
    zone.querySelector(".chosen").textContent = input.files.length ? input.files[0].name : "";
  });
}
