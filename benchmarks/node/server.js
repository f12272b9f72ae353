// Node's ws server: the baseline the tutorial compares wslab with.
// Usage: node server.js echo|chat  -> prints "PORT <n>" once it listens on 127.0.0.1.
// Same behaviour as wslab's handlers: echo answers text with "You sent: <text>" and
// returns binary unchanged; chat broadcasts "<name>: <text>" to everyone in the room.
"use strict";
const { WebSocketServer } = require("ws");

const handler = process.argv[2] || "echo";
const wss = new WebSocketServer({
  host: "127.0.0.1",
  port: 0,
  path: "/chat",
  maxPayload: 1 << 20,
  perMessageDeflate: false,
});
let next = 1;

wss.on("listening", () => console.log(`PORT ${wss.address().port}`));
wss.on("connection", (ws) => {
  const name = `user${next++}`;
  ws.on("message", (data, isBinary) => {
    if (handler === "echo") {
      ws.send(isBinary ? data : `You sent: ${data}`, { binary: isBinary });
    } else {
      const text = `${name}: ${data}`;
      for (const client of wss.clients) client.send(text);
    }
  });
});
process.on("SIGTERM", () => process.exit(0));
