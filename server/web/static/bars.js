// Progress bars: each .bar-fill's width comes from its data-percent. The Content-Security-Policy
// refuses style="" attributes in the markup, but not widths set from a script.
"use strict";

(() => {
  function fill(root) {
    root.querySelectorAll(".bar-fill[data-percent]").forEach((bar) => {
      const percent = Math.min(100, Math.max(0, Number(bar.dataset.percent) || 0));
      bar.style.width = `${percent}%`;
    });
  }

  fill(document);
  // The overview swaps its live part in by itself; fill the new bars before they are painted.
  new MutationObserver(() => fill(document)).observe(document.body, { childList: true, subtree: true });
})();
