// Portway admin UI behaviour: confirmations, popovers after HTMX swaps, form helpers.
// Works without Tabler's JS (assets not built): every feature checks what it needs.
(function () {
  "use strict";

  function initWidgets(root) {
    if (!window.tabler) return;
    root.querySelectorAll('[data-bs-toggle="popover"]').forEach(function (el) {
      window.tabler.Popover.getOrCreateInstance(el);
    });
    root.querySelectorAll('[data-bs-toggle="tooltip"]').forEach(function (el) {
      window.tabler.Tooltip.getOrCreateInstance(el);
    });
  }

  function hidePopovers() {
    if (!window.tabler) return;
    document.querySelectorAll('[data-bs-toggle="popover"]').forEach(function (el) {
      var popover = window.tabler.Popover.getInstance(el);
      if (popover) popover.dispose();
    });
  }

  // hx-confirm questions in a Tabler modal instead of window.confirm().
  function confirmWithModal(event) {
    var question = event.detail.question;
    var modalEl = document.getElementById("confirm-modal");
    if (!question || !modalEl || !window.tabler) return; // htmx falls back to confirm()
    event.preventDefault();
    var source = event.detail.elt;
    document.getElementById("confirm-modal-text").textContent = question;
    var ok = document.getElementById("confirm-modal-ok");
    ok.textContent = source.getAttribute("data-confirm-label") || "Confirm";
    ok.className = "btn w-100 " + (source.getAttribute("data-confirm-class") || "btn-danger");
    var modal = window.tabler.Modal.getOrCreateInstance(modalEl);
    // Bootstrap ignores hide() while the modal is still fading in: a quick click on OK
    // would leave it open over the page, so the hide waits for "shown" then.
    var shown = false;
    var hideWhenShown = false;
    var onShown = function () {
      shown = true;
      modalEl.removeEventListener("shown.bs.modal", onShown);
      if (hideWhenShown) modal.hide();
    };
    var onOk = function () {
      ok.removeEventListener("click", onOk);
      if (shown) modal.hide();
      else hideWhenShown = true;
      event.detail.issueRequest(true);
    };
    modalEl.addEventListener("shown.bs.modal", onShown);
    modalEl.addEventListener("hidden.bs.modal", function cleanup() {
      ok.removeEventListener("click", onOk);
      modalEl.removeEventListener("shown.bs.modal", onShown);
      modalEl.removeEventListener("hidden.bs.modal", cleanup);
    });
    ok.addEventListener("click", onOk);
    modal.show();
  }

  function showError(text) {
    var box = document.getElementById("messages");
    if (!box) return;
    var alert = document.createElement("div");
    alert.className = "alert alert-danger alert-dismissible";
    alert.setAttribute("role", "alert");
    alert.textContent = text;
    var close = document.createElement("a");
    close.className = "btn-close";
    close.setAttribute("data-bs-dismiss", "alert");
    close.setAttribute("aria-label", "Close");
    alert.appendChild(close);
    box.appendChild(alert);
  }

  // Custom locations: add rows from a <template>, remove rows, keep indices dense.
  function renumberLocations(list) {
    list.querySelectorAll(".portway-location").forEach(function (row, index) {
      row.querySelectorAll("[name]").forEach(function (input) {
        input.name = input.name.replace(/^locations-\d+-/, "locations-" + index + "-");
      });
      row.querySelectorAll("[id]").forEach(function (el) {
        el.id = el.id.replace(/^location-\d+-/, "location-" + index + "-");
      });
      row.querySelectorAll("label[for]").forEach(function (label) {
        label.htmlFor = label.htmlFor.replace(/^location-\d+-/, "location-" + index + "-");
      });
      var number = row.querySelector(".portway-location-number");
      if (number) number.textContent = String(index + 1);
    });
    var empty = document.getElementById("locations-empty");
    if (empty) empty.hidden = list.querySelector(".portway-location") !== null;
  }

  document.addEventListener("click", function (event) {
    var add = event.target.closest("[data-add-location]");
    if (add) {
      event.preventDefault();
      var list = document.getElementById("locations-list");
      var template = document.getElementById("location-template");
      list.appendChild(template.content.cloneNode(true));
      renumberLocations(list);
      var rows = list.querySelectorAll(".portway-location");
      var input = rows[rows.length - 1].querySelector("input");
      if (input) input.focus();
      return;
    }
    var remove = event.target.closest("[data-remove-location]");
    if (remove) {
      event.preventDefault();
      var row = remove.closest(".portway-location");
      var parent = row.parentElement;
      row.remove();
      renumberLocations(parent);
    }
  });

  // SSL options only mean something with a certificate: grey them out without one.
  function syncSsl() {
    var select = document.getElementById("id_certificate_id");
    if (!select) return;
    var none = select.value === "0" || select.value === "";
    document.querySelectorAll("[data-needs-certificate]").forEach(function (input) {
      input.disabled = none;
      input.closest(".form-check, .form-switch")?.classList.toggle("opacity-50", none);
    });
    var hint = document.getElementById("ssl-hint");
    if (hint) hint.hidden = !none;
  }

  // Default site: show only the inputs of the chosen answer.
  function syncDefaultSite() {
    var chosen = document.querySelector('input[name="value"]:checked');
    document.querySelectorAll("[data-default-site-extra]").forEach(function (panel) {
      panel.hidden = !chosen || panel.getAttribute("data-default-site-extra") !== chosen.value;
    });
  }

  // Remember the open tab of the proxy host form across a submit with errors.
  document.addEventListener("shown.bs.tab", function (event) {
    var field = document.getElementById("active_tab");
    var tab = event.target.getAttribute("data-tab");
    if (field && tab) field.value = tab;
  });

  document.addEventListener("change", function (event) {
    if (event.target.id === "id_certificate_id") syncSsl();
    if (event.target.name === "value" && event.target.type === "radio") syncDefaultSite();
  });

  document.addEventListener("DOMContentLoaded", function () {
    syncSsl();
    syncDefaultSite();
    var list = document.getElementById("locations-list");
    if (list) renumberLocations(list);
    initWidgets(document);
  });

  if (window.htmx) {
    document.addEventListener("htmx:confirm", confirmWithModal);
    document.addEventListener("htmx:beforeSwap", hidePopovers);
    document.addEventListener("htmx:responseError", function (event) {
      var xhr = event.detail.xhr;
      // Error pages name their cause (e.g. a full disk) in this header; HTMX does not
      // swap an error page into the fragment it asked for.
      var message = xhr.getResponseHeader("X-Portway-Message");
      showError(message || ("The server answered " + xhr.status + " " + (xhr.statusText || "") +
        ". Reload the page and try again; details are in the Portway log."));
    });
    document.addEventListener("htmx:sendError", function () {
      showError("Portway could not be reached. Check that it is running and try again.");
    });
    window.htmx.onLoad(initWidgets);
  }
})();
