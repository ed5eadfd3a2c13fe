// A loopback Rekor server that is not ours: @sigstore/mock's rekor handlers (what sigstore-js
// tests its own client against) behind node's http module. Prints "READY <url>" once listening.
// POST /api/v1/log/entries and /api/v2/log/entries -> the mock's v1 and v2 handlers;
// GET /api/v1/log/publicKey -> its key (PEM).
// The mock signs SETs and checkpoints with a fresh P-256 key generated here.
import crypto from 'node:crypto';
import http from 'node:http';
import mock from '@sigstore/mock';

const keyPair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const publicPem = keyPair.publicKey.export({ format: 'pem', type: 'spki' });
let handlers = [];

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    const handler = handlers.find((h) => h.path === req.url);
    if (req.method === 'GET' && req.url === '/api/v1/log/publicKey') {
      res.writeHead(200, { 'Content-Type': 'application/x-pem-file' });
      res.end(publicPem);
    } else if (req.method === 'POST' && handler) {
      const out = await handler.fn(Buffer.concat(chunks).toString('utf8'));
      res.writeHead(out.statusCode, { 'Content-Type': out.contentType || 'text/plain' });
      res.end(out.response);
    } else {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ code: 404, message: 'not found' }));
    }
  });
});

server.listen(0, '127.0.0.1', async () => {
  const url = `http://127.0.0.1:${server.address().port}`;
  const tlog = await mock.initializeTLog(url, keyPair);
  handlers = [mock.rekorHandler(tlog), mock.rekorV2Handler(tlog)];
  process.stdout.write(`READY ${url}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
