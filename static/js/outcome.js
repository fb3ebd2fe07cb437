// Requests that know whether they may have had an effect (docs/api.md, "Errors"), for every
// page of the suite: `Outcome.request(url, options, how)` is `fetch` that answers a refusal
// the way the runtime's error table asks a browser to.
//
// - A 503 with `X-Outcome: not-run` did nothing: it is sent again by itself, after the
//   server's Retry-After (else a backoff of its own, 0.5 s doubling), up to `tries` times.
// - After `X-Outcome: unknown` the request may have happened. It is sent again by itself only
//   when it is safe twice: GET and HEAD, or `idempotent: true` (a delete, a name that is
//   only minted). Otherwise the answer comes back to the caller with `.outcome` "unknown",
//   and the page tells the person, in words (`Outcome.explain`), and lets them decide.
// - A request that never got an answer (the network) is the same as "unknown": sent again
//   only when safe, else thrown with `.outcome` "unknown".
//
// `how.onWait(seconds)` hears of each wait, for a "retrying…" line. Every answer carries
// `.outcome` ("not-run", "unknown" or null: it did not fail) and `.tries`.
"use strict";

window.Outcome = (() => {
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function delay(response, attempt) {
    const after = Number(response && response.headers.get("Retry-After"));
    const base = after > 0 ? after * 1000 : 500 * 2 ** attempt;
    return Math.min(base, 10_000) * (0.8 + Math.random() * 0.4);
  }

  async function request(url, options = {}, how = {}) {
    const method = (options.method || "GET").toUpperCase();
    const safe = how.idempotent ?? (method === "GET" || method === "HEAD");
    const tries = how.tries ?? 5;
    for (let attempt = 0; ; attempt += 1) {
      let response = null;
      try {
        response = await fetch(url, options);
      } catch (error) {
        if (!safe || attempt + 1 >= tries) {
          error.outcome = "unknown";
          throw error;
        }
      }
      const outcome = response ? response.headers.get("X-Outcome") : "unknown";
      const again =
        !response ||
        (response.status === 503 && (outcome === "not-run" || (outcome === "unknown" && safe)));
      if (response && (!again || attempt + 1 >= tries)) {
        response.outcome = response.ok ? null : outcome;
        response.tries = attempt + 1;
        return response;
      }
      const wait = delay(response, attempt);
      how.onWait?.(Math.ceil(wait / 1000));
      await sleep(wait);
    }
  }

  // What to tell the person about a request that failed, ``what`` being what it was for
  // ("the room", "your move"...): whether it happened, and what they can do.
  function explain(outcome, what) {
    if (outcome === "unknown") {
      return `We could not tell whether ${what} went through: the server stopped answering partway. Check whether it did before you try again.`;
    }
    if (outcome === "not-run") {
      return `${what[0].toUpperCase()}${what.slice(1)} did not go through: the server is busy right now. Nothing changed; try again in a moment.`;
    }
    return "";
  }

  return { request, explain };
})();
