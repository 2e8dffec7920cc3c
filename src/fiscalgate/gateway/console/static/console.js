// Progressive enhancement only: every form works without this file.
document.addEventListener("DOMContentLoaded", () => {
  // Select the freshly issued API key with one click (it is shown once).
  const key = document.getElementById("new-key");
  if (key) key.addEventListener("click", () => window.getSelection().selectAllChildren(key));
  // The credit-note form: choosing "full" greys out the quantities.
  document.querySelectorAll("form#credit-note").forEach((form) => {
    const sync = () => {
      const full = form.querySelector("input[name=scope][value=full]").checked;
      form.querySelectorAll("input[name^=qty_]").forEach((i) => { i.readOnly = full; });
    };
    form.querySelectorAll("input[name=scope]").forEach((r) => r.addEventListener("change", sync));
    sync();
  });
});
