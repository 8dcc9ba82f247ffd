// Starts the vendored Swagger UI on /openapi.json (a static file: the CSP allows no inline script).
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-spec"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,  // never call the public validator service
    presets: [SwaggerUIBundle.presets.apis],
  });
});
