// Hapex passkeys: run the WebAuthn ceremony a passkey page asks for, then post its answer.
// The page's form carries the server's options (data-options, JSON) and the ceremony (data-passkey:
// "create" or "get"); the answer goes back in the form's hidden `credential` field as JSON.
// No other page loads this script, and nothing here talks to any other site.
"use strict";

(function () {
  const form = document.querySelector("form[data-passkey]");
  if (!form) {
    return;
  }
  const status = document.getElementById("passkey-status");
  const field = form.querySelector("input[name=credential]");

  function say(message) {
    if (status) {
      status.textContent = message;
    }
  }

  if (!window.PublicKeyCredential || !PublicKeyCredential.parseRequestOptionsFromJSON) {
    say("This browser cannot use passkeys here. Sign in with your password and a code instead.");
    return;
  }

  form.addEventListener("submit", async function (event) {
    const starter = event.submitter;
    if (field.value || !starter || !starter.hasAttribute("data-passkey-start")) {
      return; // an ordinary submit (a code instead), or the answer is already in
    }
    event.preventDefault();
    starter.disabled = true;
    say("Waiting for your passkey…");
    try {
      const options = JSON.parse(form.dataset.options);
      const credential = form.dataset.passkey === "create"
        ? await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options) })
        : await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options) });
      field.value = JSON.stringify(credential.toJSON());
      say("Checking…");
      form.submit();
    } catch (error) {
      starter.disabled = false;
      say("No passkey was used (" + error.name + "). Try again, or use another way.");
    }
  });
})();
