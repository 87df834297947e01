// Swagger UI of the API definition, from the locally served swagger-ui bundle.
(function () {
  "use strict";
  var url = document.currentScript.getAttribute("data-url");
  window.addEventListener("load", function () {
    window.ui = SwaggerUIBundle({
      url: url,
      dom_id: "#swagger-ui",
      deepLinking: true,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout"
    });
  });
})();
