// Calls the TestSync test server with the reference gRPC client (@grpc/grpc-js) and prints one JSON object
// describing what it saw; the C# interop test asserts on it. Usage: node client.js <port> <folder of agent.proto>
'use strict';
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const [port, agentProtoDir] = process.argv.slice(2);
const definition = protoLoader.loadSync(path.join(__dirname, 'test_sync.proto'), {
  longs: String, enums: String, defaults: true, oneofs: true,
  includeDirs: [agentProtoDir ?? path.join(__dirname, '../../../../src/Contracts/Agent')],
});
const { TestSync } = grpc.loadPackageDefinition(definition).mesh.test.v1;
const client = new TestSync(`127.0.0.1:${port}`, grpc.credentials.createInsecure());

const deadlineIn = (ms) => new Date(Date.now() + ms);
const failure = (error) => ({ ok: false, code: error.code, codeName: grpc.status[error.code], details: error.details });

function unary(method, request, ms) {
  return new Promise((resolve) =>
    client[method](request, { deadline: deadlineIn(ms) }, (error, reply) =>
      resolve(error ? failure(error) : { ok: true, reply })));
}

function watchThenCancel(request, take, ms) {
  return new Promise((resolve) => {
    const messages = [];
    const call = client.Watch(request, { deadline: deadlineIn(ms) });
    call.on('data', (update) => {
      const s = update.snapshot;
      messages.push({ node: s.node, version: s.version, contentHash: s.contentHash, ipcache: s.ipcache });
      if (messages.length === take) call.cancel();
    });
    call.on('error', (error) => resolve({ messages, ...failure(error) }));
    call.on('end', () => resolve({ messages, ok: true }));
  });
}

function unknownMethod(ms) {
  const identity = (x) => x;
  return new Promise((resolve) =>
    client.makeUnaryRequest('/mesh.test.v1.TestSync/Nope', identity, identity, Buffer.alloc(0),
      { deadline: deadlineIn(ms) }, (error) => resolve(error ? failure(error) : { ok: true })));
}

// Bidirectional stream on our duplex Echo method. Lockstep: each message is written only after the previous echo
// arrived, then half-close.
function echoInLockstep(node, count, ms) {
  return new Promise((resolve) => {
    const messages = [];
    const call = client.Echo({ deadline: deadlineIn(ms) });
    call.on('data', (reply) => {
      messages.push({ node: reply.node, version: reply.version });
      if (messages.length < count) call.write({ node, version: String(messages.length + 1) });
      else call.end();
    });
    call.on('error', (error) => resolve({ messages, ...failure(error) }));
    call.on('status', (status) => { if (status.code === grpc.status.OK) resolve({ messages, ok: true, code: status.code }); });
    call.write({ node, version: '1' });
  });
}

(async () => {
  const results = {
    ack: await unary('Ack', { node: 'js-node', version: '42', outcome: 'FAILED', error: 'map full ✓ 100%', applyMicros: '1234' }, 5000),
    watch: await watchThenCancel({ node: 'endless-js', lastAppliedVersion: '100' }, 3, 10000),
    serverError: await unary('Ack', { node: 'fail-js' }, 5000),
    unknownMethod: await unknownMethod(5000),
    deadline: await unary('Ack', { node: 'slow-js' }, 300),
    echo: await echoInLockstep('echo-js', 3, 5000),
  };
  client.close();
  console.log(JSON.stringify(results));
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
