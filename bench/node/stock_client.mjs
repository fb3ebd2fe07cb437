// The stock Yjs client (yjs and the y-websocket provider over `ws`) timing what people feel
// on a board: how long a new client takes to get a large board, and how long a small change
// takes to reach another client. Used by ../whiteboard_bench.py.
//
//   node stock_client.mjs ws://127.0.0.1:8000/whiteboard/ws [--strokes 5000] [--again 3]
//                         [--updates 1000] [--every 5] [--settle 1000]
//
// 1. A writer draws the board of board.mjs (--strokes strokes) on a new room, and gives the
//    server a second to take it in.
// 2. Initial sync: a new Y.Doc and provider, timed from their creation until its document
//    holds every stroke (checked after each transaction it applies: no polling). The first
//    runs in this fresh process, its JIT cold as a newly opened page's is; --again more
//    follow it, warm, and their median is reported beside it.
// 3. Propagation: after --settle ms, the writer appends [sent at, x, y] to the Y.Array
//    'trail', one append every --every ms on a fixed schedule, --updates times; the last
//    synced client times each arrival. Both read performance.now() of this one process:
//    sub-millisecond, one clock. The pause keeps the window off the syncs' aftermath in this
//    process: it has just dropped several copies of the board, and V8 collects them on both
//    cores for tens of milliseconds (measured: ~60 ms at 5,000 strokes), starving whichever
//    server it measures. 1,000 updates make the p99 the 10th-worst arrival, not the 2nd.
//
// Prints one JSON line: strokes, board_bytes, sync_ms, sync_warm_ms, updates, delivered,
// p50_ms, p99_ms, max_ms.
import * as Y from 'yjs'
import { performance } from 'node:perf_hooks'
import { STROKES, drawBoard, openBoard } from './board.mjs'
import { quantile, sleep, until } from './wait.mjs'

const args = process.argv.slice(2)
const server = args[0] || 'ws://127.0.0.1:8000/whiteboard/ws'
const option = (name, fallback) => {
  const at = args.indexOf('--' + name)
  return at >= 0 ? Number(args[at + 1]) : fallback
}
const strokes = option('strokes', STROKES)
const again = option('again', 3)
const updates = option('updates', 1000)
const every = option('every', 5)
const settle = option('settle', 1000)
const SYNC_TIMEOUT_MS = 30000

const room = 'stock' + (Date.now() % 1e9)
const writer = openBoard(server, room)
if (!(await until(() => writer.provider.synced, 10000))) {
  console.error('the writer never synced')
  process.exit(1)
}
drawBoard(writer.doc, strokes)
await sleep(1000)

// A new client of the board: resolves with it and the ms it took to hold every stroke
// (NaN if it did not within SYNC_TIMEOUT_MS).
const newClient = () =>
  new Promise((resolve) => {
    const t0 = performance.now()
    const client = openBoard(server, room)
    const list = client.doc.getArray('strokes')
    const done = (ms) => {
      client.doc.off('afterTransaction', check)
      clearTimeout(timer)
      resolve({ client, ms })
    }
    const check = () => {
      if (list.length >= strokes) done(performance.now() - t0)
    }
    const timer = setTimeout(() => done(NaN), SYNC_TIMEOUT_MS)
    client.doc.on('afterTransaction', check)
  })

const first = await newClient()
let reader = first.client
const warm = []
for (let i = 0; i < again; i++) {
  reader.provider.destroy()
  const next = await newClient()
  warm.push(next.ms)
  reader = next.client
}

await sleep(settle)
const latencies = []
reader.doc.getArray('trail').observe((event) => {
  const now = performance.now()
  for (const op of event.changes.delta) {
    if (!op.insert) continue
    for (let k = 0; k + 3 <= op.insert.length; k += 3) latencies.push(now - op.insert[k])
  }
})
const trail = writer.doc.getArray('trail')
const start = performance.now()
for (let i = 0; i < updates; i++) {
  await sleep(Math.max(0, start + i * every - performance.now()))
  trail.push([performance.now(), i, 2 * i])
}
await until(() => latencies.length >= updates, 5000)

latencies.sort((a, b) => a - b)
warm.sort((a, b) => a - b)
console.log(
  JSON.stringify({
    strokes,
    board_bytes: Y.encodeStateAsUpdate(writer.doc).length,
    sync_ms: first.ms,
    sync_warm_ms: quantile(warm, 0.5),
    updates,
    delivered: latencies.length,
    p50_ms: quantile(latencies, 0.5),
    p99_ms: quantile(latencies, 0.99),
    max_ms: latencies[latencies.length - 1]
  })
)
writer.provider.destroy()
reader.provider.destroy()
process.exit(0)
