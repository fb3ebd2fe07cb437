// The server's side of the initial sync: the 5,000-stroke board of board.mjs, written by
// the stock Yjs client (y-websocket provider), then raw `ws` sockets that send an empty sync
// step 1 and time the server's step 2, without decoding it into a Yjs document. Used by
// ../whiteboard_bench.py.
//
//   node sync.mjs ws://127.0.0.1:8000/whiteboard/ws [--reps 5]
//
// Prints one JSON line: the median and every time, in ms, and the step 2's size in bytes.
import WebSocket from 'ws'
import { performance } from 'node:perf_hooks'
import { drawBoard, openBoard } from './board.mjs'
import { quantile, sleep, until } from './wait.mjs'

const args = process.argv.slice(2)
const server = args[0] || 'ws://127.0.0.1:8000/whiteboard/ws'
const at = args.indexOf('--reps')
const reps = at >= 0 ? Number(args[at + 1]) : 5

const room = 'sync' + (Date.now() % 1e9)
const { doc, provider: writer } = openBoard(server, room)
await until(() => writer.synced, 10000)
drawBoard(doc)
await sleep(1000)

// messageSync, syncStep1, a state vector of no clients
const STEP1_EMPTY = Uint8Array.from([0, 0, 1, 0])
const once = () =>
  new Promise((resolve, reject) => {
    const t0 = performance.now()
    const ws = new WebSocket(`${server}/${room}`)
    ws.binaryType = 'nodebuffer'
    ws.on('open', () => ws.send(STEP1_EMPTY))
    ws.on('message', (data) => {
      if (data[0] === 0 && data[1] === 1) {
        const ms = performance.now() - t0
        ws.close()
        resolve({ ms, bytes: data.length })
      }
    })
    ws.on('error', reject)
  })

const times = []
let bytes = 0
for (let i = 0; i < reps; i++) {
  const r = await once()
  times.push(r.ms)
  bytes = r.bytes
  await sleep(100)
}
writer.destroy()
const sorted = [...times].sort((a, b) => a - b)
console.log(JSON.stringify({ median_ms: quantile(sorted, 0.5), times, bytes }))
process.exit(0)
