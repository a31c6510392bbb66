// bulkpatch ui: the little the pages need beyond HTML (loaded as a file: the page allows no
// inline script). A filter applies as soon as it is chosen; a button that starts work says so
// and cannot be pressed twice.
document.addEventListener("DOMContentLoaded", () => {
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
