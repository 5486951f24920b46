/* The card payment pages (one booking, or every card booking of an order with one card entry): Stripe.js
 * turns the card element into a PaymentMethod (through a SetupIntent made by our server), our server
 * charges it, and 3-D Secure is finished here when Stripe asks for it. Card numbers never reach
 * Sängplats. Configuration comes from data-* attributes. */
(function () {
  "use strict";

  var form = document.getElementById("pay-form");
  if (!form) {
    return;
  }
  var output = document.getElementById("card-errors");
  var button = form.querySelector("button[type=submit]");

  function say(message) {
    output.textContent = message || "";
  }

  if (typeof window.Stripe !== "function") {
    say(form.dataset.msgUnavailable);
    button.disabled = true;
    return;
  }

  // Stripe.js words its card errors in the page's language; we add what to do next.
  var stripe = window.Stripe(form.dataset.publishableKey, {locale: form.dataset.locale || "sv"});

  function declined(error) {
    var message = error.message || form.dataset.msgFailed;
    // A mistyped card (validation_error) needs no advice; a refused one (card_error) does.
    return new Error(error.type === "card_error" ? message + " " + form.dataset.msgDeclined : message);
  }
  var card = stripe.elements().create("card");
  card.mount("#card-element");

  async function charge(paymentMethodId) {
    var body = new FormData(form);
    body.set("payment_method_id", paymentMethodId);
    var response = await fetch(form.action, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: {"Accept": "application/json"}
    });
    var result = await response.json().catch(function () { return {}; });
    if (!response.ok) {
      if (result.setup_client_secret) {
        form.dataset.clientSecret = result.setup_client_secret;
      }
      throw new Error(result.detail || form.dataset.msgFailed);
    }
    return result;
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    button.disabled = true;
    say(form.dataset.msgWorking);
    try {
      var setup = await stripe.confirmCardSetup(form.dataset.clientSecret, {payment_method: {card: card}});
      if (setup.error) {
        throw declined(setup.error);
      }
      var result = await charge(setup.setupIntent.payment_method);
      // One booking answers one client_secret; an order lists every PaymentIntent that wants 3-D Secure.
      var pending = result.client_secrets ||
        (result.status === "requires_action" ? [result.client_secret] : []);
      for (var i = 0; i < pending.length; i++) {
        var done = await stripe.confirmCardPayment(pending[i]);
        if (done.error) {
          throw declined(done.error);
        }
      }
      window.location.assign(result.status_url || form.dataset.statusUrl);
    } catch (error) {
      say(error.message || form.dataset.msgFailed);
      button.disabled = false;
    }
  });
}());
