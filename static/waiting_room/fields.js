// Form fields of the waiting room's pages (the start page's and the admin page's forms):
// every value is checked here first, and every refusal, ours or the server's (422 names its
// field), is said under its field in words, never left to the browser's bubble.
//
// A field is marked up by the `field` macro (templates/_macros.html): data-required,
// data-min and data-max on numbers; its error goes in #<form>-<name>-error.
"use strict";

window.RoomForms = {
  /** Clear every error of ``form``. */
  clear(form) {
    for (const el of form.querySelectorAll(".wr-field-error")) {
      el.hidden = true;
      el.textContent = "";
    }
    for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  },

  /** Say ``message`` under the field ``name`` of ``form`` (false if it has no such field). */
  show(form, name, message) {
    const control = form.elements.namedItem(name);
    if (!control || !control.id) return false;
    const error = document.getElementById(control.id + "-error");
    if (!error) return false;
    error.textContent = message;
    error.hidden = false;
    control.setAttribute("aria-invalid", "true");
    return true;
  },

  /** Check the numbers and required fields; say what is wrong; focus the first. */
  check(form) {
    this.clear(form);
    let first = null;
    for (const control of form.querySelectorAll("input[data-min], input[data-required]")) {
      const text = control.value.trim();
      let problem = "";
      if (!text) {
        if (control.dataset.required) problem = "Fill this in.";
      } else if ("min" in control.dataset) {
        const value = Number(text);
        const low = Number(control.dataset.min);
        const high = Number(control.dataset.max);
        if (!Number.isInteger(value) || value < low || value > high) {
          const fmt = (n) => n.toLocaleString("en");
          problem = `Enter a whole number from ${fmt(low)} to ${fmt(high)}.`;
        }
      }
      if (problem) {
        this.show(form, control.name, problem);
        first = first || control;
      }
    }
    if (first) first.focus();
    return first === null;
  },

  /** A refusal from the server: under its field if it names one, else in ``fallback``. */
  refused(form, answer, fallback) {
    const message = answer.error ? answer.error.charAt(0).toUpperCase() + answer.error.slice(1) : "";
    if (answer.field && this.show(form, answer.field, message + ".")) {
      form.elements.namedItem(answer.field).focus();
      return;
    }
    fallback.textContent = answer.field ? `${answer.field}: ${answer.error}` : answer.error || "Refused.";
    fallback.hidden = false;
  },
};
