// Names the controls that third-party widgets render without an accessible name, so that a screen
// reader can announce them: ipywidgets' slider handles (named after the slider's description) and
// jupyterquiz's numeric answer box. Widgets render asynchronously, hence the observer.
(function () {
  function nameControls() {
    document.querySelectorAll(".widget-slider").forEach(function (box) {
      var description = box.querySelector(".widget-label");
      var text = description ? description.textContent.trim() : "";
      box.querySelectorAll('[role="slider"]:not([aria-label])').forEach(function (handle) {
        if (text) handle.setAttribute("aria-label", text);
      });
    });
    document.querySelectorAll(".Quiz input:not([aria-label])").forEach(function (input) {
      input.setAttribute("aria-label", "Your answer");
    });
  }
  new MutationObserver(nameControls).observe(document.documentElement, {
    childList: true,
    subtree: true,
  });
  document.addEventListener("DOMContentLoaded", nameControls);
})();
