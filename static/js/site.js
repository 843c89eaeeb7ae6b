// movierec progressive enhancement: every form here also works with JavaScript off.
// With it on, rating and list buttons post with fetch and update the page in place.
// No inline scripts or handlers: the Content-Security-Policy allows only this file.
(function () {
  "use strict";

  document.documentElement.classList.add("js");

  const SAVE_DELAY_MS = 350; // keyboard users step through stars with the arrow keys

  async function postForm(form, extra) {
    const body = new FormData(form);
    for (const [key, value] of Object.entries(extra || {})) body.set(key, value);
    // Not form.action: a field named "action" (the list toggles have one) shadows that property.
    const response = await fetch(form.getAttribute("action") || window.location.href, {
      method: "POST",
      body,
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    });
    let data = {};
    try { data = await response.json(); } catch (error) { data = { error: "Something went wrong. Please try again." }; }
    if (response.status === 401 && data.login_url) {
      window.location.assign(data.login_url);
      return null;
    }
    if (!response.ok) throw new Error(data.error || "Something went wrong. Please try again.");
    return data;
  }

  function formatStars(score) {
    return `You rated this ${Number(score)} star${Number(score) === 1 ? "" : "s"}.`;
  }

  function updateAverage(data) {
    const average = document.querySelector("[data-average-value]");
    const count = document.querySelector("[data-average-count]");
    if (average && count && typeof data.rating_mean === "number") {
      average.textContent = data.rating_mean.toFixed(1);
      count.textContent = String(data.rating_count);
    }
  }

  function enhanceRatingForm(form) {
    const status = form.querySelector("[data-rating-status]");
    const removeButton = form.querySelector("[data-remove]");
    let timer = null;

    async function save(extra) {
      form.classList.add("is-saving");
      try {
        const data = await postForm(form, extra);
        if (!data) return;
        if (data.score === null) {
          form.querySelectorAll('input[name="score"]').forEach((input) => { input.checked = false; });
          status.textContent = "Rating removed.";
          if (removeButton) removeButton.hidden = true;
        } else {
          status.textContent = formatStars(data.score);
          if (removeButton) removeButton.hidden = false;
        }
        updateAverage(data);
      } catch (error) {
        status.innerHTML = "";
        const message = document.createElement("span");
        message.className = "error";
        message.textContent = error.message;
        status.appendChild(message);
      } finally {
        form.classList.remove("is-saving");
      }
    }

    form.addEventListener("change", (event) => {
      if (event.target.name !== "score") return;
      clearTimeout(timer);
      timer = setTimeout(() => save(), SAVE_DELAY_MS);
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      clearTimeout(timer);
      const removing = event.submitter && event.submitter.name === "remove";
      save(removing ? { remove: "1" } : undefined);
    });
  }

  function enhanceToggleForm(form) {
    const button = form.querySelector("button");
    const action = form.querySelector('input[name="action"]');
    const key = form.dataset.stateKey;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      button.disabled = true;
      try {
        const data = await postForm(form);
        if (!data) return;
        const on = Boolean(data[key]);
        button.setAttribute("aria-pressed", String(on));
        button.textContent = on ? button.dataset.labelOn : button.dataset.labelOff;
        action.value = on ? "remove" : "add";
      } catch (error) {
        form.submit(); // fall back to the plain form post, which shows the error page
      } finally {
        button.disabled = false;
      }
    });
  }

  // A remote poster that fails to load is replaced by the generated placeholder.
  function useFallbackPoster(image) {
    if (image.dataset.fallbackSrc && image.src !== new URL(image.dataset.fallbackSrc, window.location.href).href) {
      image.src = image.dataset.fallbackSrc;
    }
  }
  document.addEventListener("error", (event) => {
    if (event.target instanceof HTMLImageElement) useFallbackPoster(event.target);
  }, true);
  document.querySelectorAll("img[data-fallback-src]").forEach((image) => {
    if (image.complete && image.naturalWidth === 0) useFallbackPoster(image);
  });

  // Forms marked data-autosubmit (the discovery dial) apply a choice as soon as it is made.
  document.querySelectorAll("form[data-autosubmit]").forEach((form) => {
    form.addEventListener("change", () => form.submit());
  });

  document.querySelectorAll("[data-rating-form]").forEach(enhanceRatingForm);
  document.querySelectorAll("[data-toggle-form]").forEach(enhanceToggleForm);
})();
