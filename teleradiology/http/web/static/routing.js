// The routing pages: a form whose target depends on a choice (the sending facility of a rule,
// the member of a shift) posts to the route that choice names.
"use strict";
(function () {
  for (const select of document.querySelectorAll("select.aim")) {
    const form = select.closest("form");
    const aim = () => {
      form.dataset.action = select.dataset.prefix + select.value + select.dataset.suffix;
    };
    select.addEventListener("change", aim);
    aim();
  }
})();
