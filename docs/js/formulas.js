// Typesets the rules the client shows beside wrong parts (<div class="formula">$$ … $$</div> in the
// example notebook's outputs) with the KaTeX the site carries (the service's own vendored copy).
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("div.formula").forEach((div) => {
    const tex = div.textContent.trim().replace(/^\$\$|\$\$$/g, "");
    try {
      window.katex.render(tex, div, { displayMode: true, throwOnError: true });
    } catch (err) {
      div.title = String(err); // left as its LaTeX source
    }
  });
});
