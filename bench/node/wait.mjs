// Helpers the bench's Node clients share: waiting, and quantiles.
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// Until pred() holds, checked every 5 ms, for at most `ms`; whether it held.
export const until = async (pred, ms) => {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (pred()) return true
    await sleep(5)
  }
  return pred()
}

// The q-quantile of ascending `sorted` (the sample at that rank; NaN when empty).
export const quantile = (sorted, q) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] : NaN
