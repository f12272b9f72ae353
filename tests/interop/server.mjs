// A WebSocket echo server on Node's `ws` package, for tests/test_interop.py.
// Usage: node server.mjs   (prints {"port": N} once listening on 127.0.0.1)
// Text gets "You sent: <message>", binary comes back unchanged; it exits when
// its stdin closes, so the test that started it always stops it.
import { WebSocketServer } from "ws";

const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, path: "/chat" });
wss.on("listening", () => console.log(JSON.stringify({ port: wss.address().port })));
wss.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => {
    ws.send(isBinary ? data : `You sent: ${data}`, { binary: isBinary });
  });
  ws.on("close", (code, reason) => {
    console.log(JSON.stringify({ event: "close", code, reason: reason.toString() }));
  });
});
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
