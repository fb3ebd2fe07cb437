// Fan-out on one board: N stock Yjs clients (y-websocket provider over `ws`) in this process,
// each appending a few points to its own stroke (a Y.Array in the Y.Map 'strokes') R times a
// second. Every append starts with the sender's clock (performance.now(): one clock for all
// clients); every other client timestamps its arrival. Used by ../whiteboard_bench.py.
//
//   node fanout.mjs ws://127.0.0.1:8000/whiteboard/ws [--room r] [--clients 20] [--rate 20]
//                   [--seconds 10] [--warmup 2]
//
// Prints "window_start" and "window_end" lines as the measured window opens and closes (the
// caller reads the server's CPU time then), and last one JSON line: propagation p50/p99 over
// every (sender, receiver) pair of the updates sent inside the window, how many arrived, and
// this process's own CPU and event-loop delay over the window.
import * as Y from 'yjs'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { openBoard } from './board.mjs'
import { quantile, sleep, until } from './wait.mjs'

process.setMaxListeners(0) // every provider listens for the process's exit

const args = process.argv.slice(2)
const server = args[0] || 'ws://127.0.0.1:8000/whiteboard/ws'
const option = (name, fallback) => {
  const at = args.indexOf('--' + name)
  return at >= 0 ? args[at + 1] : fallback
}
const room = option('room', 'fanout' + (Date.now() % 1e9))
const clients = Number(option('clients', 20))
const rate = Number(option('rate', 20))
const seconds = Number(option('seconds', 10))
const warmup = Number(option('warmup', 2))
const POINTS = 3 // each update: [sent at, x0, y0, x1, y1, x2, y2]
const WIDTH = 1 + 2 * POINTS

let windowStart = Infinity
let windowEnd = Infinity
let sent = 0
const latencies = []

const peers = []
for (let i = 0; i < clients; i++) {
  const { doc, provider } = openBoard(server, room)
  const strokes = doc.getMap('strokes')
  strokes.observeDeep((events, txn) => {
    if (txn.local) return
    const now = performance.now()
    for (const event of events) {
      if (!(event.target instanceof Y.Array)) continue
      for (const op of event.changes.delta) {
        if (!op.insert) continue
        for (let k = 0; k + WIDTH <= op.insert.length; k += WIDTH) {
          const at = op.insert[k]
          if (at >= windowStart && at < windowEnd) latencies.push(now - at)
        }
      }
    }
  })
  peers.push({ doc, provider, strokes, stroke: null })
}
if (!(await until(() => peers.every((p) => p.provider.synced), 20000))) {
  console.error('not every client synced')
  process.exit(1)
}
peers.forEach((p, i) => {
  p.stroke = new Y.Array()
  p.strokes.set('c' + i, p.stroke)
})
await until(() => peers.every((p) => p.strokes.size === clients), 10000)

const period = 1000 / rate
const timers = []
peers.forEach((p, i) => {
  let x = 0
  const tick = () => {
    const at = performance.now()
    const values = [at]
    for (let k = 0; k < POINTS; k++) values.push(x + k, (x + k) * 2)
    x += POINTS
    p.stroke.push(values)
    if (at >= windowStart && at < windowEnd) sent++
  }
  // Spread the clients over the period so the load is even, not in bursts of N.
  timers.push(setTimeout(() => timers.push(setInterval(tick, period)), (i * period) / clients))
})

await sleep(warmup * 1000)
const loopDelay = monitorEventLoopDelay({ resolution: 1 })
loopDelay.enable()
const cpuBefore = process.cpuUsage()
windowStart = performance.now()
console.log('window_start')
await sleep(seconds * 1000)
windowEnd = performance.now()
console.log('window_end')
const cpu = process.cpuUsage(cpuBefore)
loopDelay.disable()
for (const t of timers) {
  clearTimeout(t)
  clearInterval(t)
}
const expected = sent * (clients - 1)
await until(() => latencies.length >= expected, 5000)
latencies.sort((a, b) => a - b)
console.log(
  JSON.stringify({
    clients,
    rate,
    seconds: (windowEnd - windowStart) / 1000,
    sent,
    expected,
    delivered: latencies.length,
    p50_ms: quantile(latencies, 0.5),
    p99_ms: quantile(latencies, 0.99),
    max_ms: latencies[latencies.length - 1],
    // This process (the 20 clients): its CPU, and how late its event loop ran (a busy or
    // descheduled client delays what it timestamps, whichever server it talks to).
    client_cpu: ((cpu.user + cpu.system) / 1000 / (windowEnd - windowStart)) * 100,
    client_loop_delay_p99_ms: loopDelay.percentile(99) / 1e6
  })
)
for (const p of peers) p.provider.destroy()
process.exit(0)
