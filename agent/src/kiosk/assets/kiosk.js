// motcua kiosk: small conveniences only; every page works without this.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // The print button (the receipt prints two copies through the print CSS).
  document.querySelectorAll("[data-print]").forEach(function (b) {
    b.addEventListener("click", function () { window.print(); });
  });
  // Inline validation: the browser's bubble shows the same Vietnamese
  // sentence the server would answer with (the field's title).
  document.querySelectorAll("input[pattern][title]").forEach(function (i) {
    var check = function () {
      i.setCustomValidity("");
      if (i.value !== "" && !i.checkValidity()) { i.setCustomValidity(i.title); }
    };
    i.addEventListener("input", check);
    i.addEventListener("blur", function () { check(); if (i.validationMessage) { i.reportValidity(); } });
  });
  document.querySelectorAll("input[required]").forEach(function (i) {
    i.addEventListener("invalid", function () {
      if (i.validity.valueMissing) { i.setCustomValidity("Vui lòng nhập thông tin này."); }
    });
    i.addEventListener("input", function () { if (!i.pattern) { i.setCustomValidity(""); } });
  });
});
