// What the whiteboard benchmarks' Node clients share: a stock Yjs client on a board (a
// Y.Doc and the y-websocket provider over `ws`), and the large board they sync: `strokes`
// strokes in the top-level Y.Array 'strokes', each a Y.Map of a colour and 40 points
// (about 850 KB as one update at 5,000 strokes), drawn in one transaction.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'

export const STROKES = 5000
const POINTS = 40

// A new client of `room` on the server at `server` (the provider's serverUrl).
export const openBoard = (server, room) => {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(server, room, doc, {
    WebSocketPolyfill: WebSocket,
    disableBc: true // every client is in this one process: only the server may carry updates
  })
  return { doc, provider }
}

export const drawBoard = (doc, strokes = STROKES) => {
  doc.transact(() => {
    const list = doc.getArray('strokes')
    for (let i = 0; i < strokes; i++) {
      const stroke = new Y.Map()
      stroke.set('color', '#123456')
      stroke.set('pts', Array.from({ length: POINTS }, (_, k) => i + k))
      list.push([stroke])
    }
  })
}
