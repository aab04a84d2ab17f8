// motcua kiosk: small conveniences only; every page works without this.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // The print button (the receipt prints two copies through the print CSS).
  document.querySelectorAll("[data-print]").forEach(function (b) {
    b.addEventListener("click", function () { window.print(); });
  });
  // One press, one request: a form marked data-once disables its buttons
  // once it is on its way (the server's idempotency key is what
  // guarantees a single dossier; this only spares the clerk a second wait).
  document.querySelectorAll("form[data-once]").forEach(function (f) {
    f.addEventListener("submit", function (e) {
      if (f.dataset.sent === "1") { e.preventDefault(); return; }
      f.dataset.sent = "1";
      f.querySelectorAll("button[type=submit]").forEach(function (b) {
        setTimeout(function () { b.disabled = true; b.textContent = "Đang lưu…"; }, 0);
      });
    });
  });
  // Back to a page kept by the browser: its buttons work again.
  window.addEventListener("pageshow", function (e) {
    if (!e.persisted) { return; }
    document.querySelectorAll("form[data-once]").forEach(function (f) {
      f.dataset.sent = "";
      f.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = false; });
    });
  });
  // Inline validation: a field that breaks its rule is marked as soon as
  // the clerk leaves it (CSS), and on submit the browser's bubble shows the
  // same Vietnamese sentence the server would answer with (the title).
  document.querySelectorAll("input[pattern][title]").forEach(function (i) {
    var check = function () {
      i.setCustomValidity("");
      if (i.value !== "" && !i.checkValidity()) { i.setCustomValidity(i.title); }
    };
    i.addEventListener("input", check);
    i.addEventListener("blur", function () { i.classList.add("touched"); check(); });
  });
  document.querySelectorAll("input[required]").forEach(function (i) {
    i.addEventListener("invalid", function () {
      if (i.validity.valueMissing) { i.setCustomValidity("Vui lòng nhập thông tin này."); }
    });
    i.addEventListener("input", function () { if (!i.pattern) { i.setCustomValidity(""); } });
  });
});
