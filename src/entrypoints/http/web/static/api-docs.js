// Starts Swagger UI on the API docs page (/schema). A file, not an inline script, so that
// the page runs under the pages' Content-Security-Policy (script-src 'self').
// "Try it out" requests go with the browser's session cookie when someone is signed in, and
// the API then wants the session's CSRF token on unsafe methods, as the web app sends it.

(function () {
  "use strict";

  const SAFE = new Set(["GET", "HEAD", "OPTIONS"]);
  const root = document.getElementById("swagger-ui");
  const settings = root.dataset;

  function cookie(name) {
    for (const part of document.cookie.split(";")) {
      const [key, ...value] = part.trim().split("=");
      if (key === name) return decodeURIComponent(value.join("="));
    }
    return "";
  }

  window.ui = SwaggerUIBundle({
    url: settings.specUrl || "/schema/openapi.json",
    domNode: root,
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    // The default asks validator.swagger.io for a badge: another origin, refused by the CSP.
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    requestInterceptor(request) {
      const token = cookie(settings.csrfCookie);
      if (token && !SAFE.has((request.method || "GET").toUpperCase())) {
        request.headers[settings.csrfHeader] = token;
      }
      return request;
    },
  });
})();
