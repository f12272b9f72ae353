// A WebSocket client on Node's `ws` package, for tests/test_interop.py.
// Usage: node client.mjs ws://127.0.0.1:PORT/chat
// Sends a text message, a binary message and a ping, prints each event as one
// JSON line, then does the closing handshake with code 1000.
import WebSocket from "ws";

const print = (event) => console.log(JSON.stringify(event));
const ws = new WebSocket(process.argv[2]);
const received = [];

ws.on("open", () => {
  print({ event: "open" });
  ws.ping(Buffer.from("node ping"));
  ws.send("hello from node");
  ws.send(Buffer.from([0, 1, 2, 255]));
});
ws.on("pong", (data) => print({ event: "pong", data: data.toString() }));
ws.on("message", (data, isBinary) => {
  received.push(data);
  print(isBinary ? { event: "binary", hex: data.toString("hex") } : { event: "text", data: data.toString() });
  if (received.length === 2) ws.close(1000, "bye from node");
});
ws.on("close", (code, reason) => {
  print({ event: "close", code, reason: reason.toString() });
  process.exit(0);
});
ws.on("error", (error) => {
  print({ event: "error", message: error.message });
  process.exit(1);
});
setTimeout(() => {
  print({ event: "timeout" });
  process.exit(1);
}, 10000);
