// keyturn passkeys (#15): the browser half of the WebAuthn ceremonies.
// Loaded as a file under the CSP (script-src 'self'); no inline script.
// Options come as the JSON PublicKeyCredential.parse*OptionsFromJSON read;
// results go back as PublicKeyCredential.toJSON(), so no base64 glue.
"use strict";

(function () {
  function showError(scope, message) {
    var box = scope.querySelector("[data-keyturn-passkey-error]");
    if (box) {
      box.textContent = message;
      box.hidden = false;
    }
  }

  async function postJson(url, body, csrf) {
    var headers = { "Content-Type": "application/json" };
    if (csrf) {
      headers["X-CSRF-Token"] = csrf;
    }
    var answer = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: headers,
      body: JSON.stringify(body || {}),
    });
    if (!answer.ok) {
      throw new Error("The server refused the passkey (" + answer.status + ").");
    }
    return answer.status === 204 ? null : answer.json();
  }

  function sameOriginPath(value) {
    return typeof value === "string" && value.charAt(0) === "/" &&
      value.charAt(1) !== "/" && value.indexOf("\\") === -1;
  }

  async function signIn(button) {
    var scope = button.closest("#passkey-login");
    var options = await postJson(scope.dataset.optionsUrl, {});
    var credential = await navigator.credentials.get({
      publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options),
    });
    await postJson(scope.dataset.loginUrl, { credential: credential.toJSON() });
    var next = scope.dataset.next;
    window.location.assign(sameOriginPath(next) ? next : "/account");
  }

  async function secondFactor(button) {
    var form = button.closest("form");
    var options = await postJson(form.dataset.optionsUrl, {
      mfa_token: form.elements.mfa_token.value,
    });
    var credential = await navigator.credentials.get({
      publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options),
    });
    form.elements.webauthn.value = JSON.stringify(credential.toJSON());
    form.submit();
  }

  async function register(button) {
    var scope = button.closest("[data-register-url]");
    var csrf = scope.dataset.csrf;
    var options = await postJson(scope.dataset.optionsUrl, {}, csrf);
    var credential = await navigator.credentials.create({
      publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options),
    });
    var nameField = scope.querySelector("input[name=passkey_name]");
    await postJson(
      scope.dataset.registerUrl,
      { credential: credential.toJSON(), name: nameField ? nameField.value : "Passkey" },
      csrf
    );
    window.location.reload();
  }

  var actions = { login: signIn, "second-factor": secondFactor, register: register };

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-keyturn-passkey]");
    if (!button) {
      return;
    }
    var action = actions[button.dataset.keyturnPasskey];
    if (!action) {
      return;
    }
    event.preventDefault();
    if (!window.PublicKeyCredential || !PublicKeyCredential.parseRequestOptionsFromJSON) {
      showError(button.parentElement.parentElement, "This browser does not support passkeys.");
      return;
    }
    button.disabled = true;
    action(button).catch(function (error) {
      button.disabled = false;
      showError(button.parentElement.parentElement, error.message || String(error));
    });
  });
})();
