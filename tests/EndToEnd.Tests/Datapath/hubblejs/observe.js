// A Hubble client built from Hubble's protos (Mesh's copies) with @grpc/grpc-js, talking to a node agent's
// unix socket or, as to hubble-relay, to the control plane (TLS, believing $MESH_CA_FILE, with $MESH_TOKEN as bearer).
// Prints JSON; the C# end-to-end test asserts on it.
//   node observe.js <socket path | https://host:port> <proto root> query
//       the whole buffer, two filtered answers, ServerStatus, GetNodes and GetNamespaces, as one JSON object
//   node observe.js <socket path | https://host:port> <proto root> follow <port> <later port>
//       follows dropped flows to either port: prints {"ready":true} once a buffered flow came (the call follows from then
//       on), then the first flow to <later port> as {"followed": flow}, and exits
'use strict';
const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const [target, protoRoot, mode, ...rest] = process.argv.slice(2);
const definition = protoLoader.loadSync(path.join(protoRoot, 'observer', 'observer.proto'), {
  keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [protoRoot],
});
const { Observer } = grpc.loadPackageDefinition(definition).observer;

function connect() {
  if (!target.startsWith('https://')) return new Observer(`unix://${target}`, grpc.credentials.createInsecure());
  const bearer = grpc.credentials.createFromMetadataGenerator((_, callback) => {
    const metadata = new grpc.Metadata();
    metadata.add('authorization', `Bearer ${process.env.MESH_TOKEN}`);
    callback(null, metadata);
  });
  const tls = grpc.credentials.createSsl(fs.readFileSync(process.env.MESH_CA_FILE));
  return new Observer(new URL(target).host, grpc.credentials.combineChannelCredentials(tls, bearer));
}

const client = connect();
const deadline = () => new Date(Date.now() + 30_000);

function unary(method, request) {
  return new Promise((resolve, reject) =>
    client[method](request, { deadline: deadline() }, (error, reply) => (error ? reject(error) : resolve(reply))));
}

function flows(request) {
  return new Promise((resolve, reject) => {
    const responses = [];
    const call = client.GetFlows(request, { deadline: deadline() });
    call.on('data', (response) => responses.push(response));
    call.on('error', reject);
    call.on('end', () => resolve(responses));
  });
}

async function query() {
  return {
    all: await flows({}),
    dropped: await flows({ whitelist: [{ verdict: ['DROPPED'] }] }),
    toServerPort80: await flows({ whitelist: [{ destination_pod: ['default/b'], destination_port: ['80'] }] }),
    notDropped: await flows({ blacklist: [{ verdict: ['DROPPED'] }] }),
    status: await unary('ServerStatus', {}),
    nodes: await unary('GetNodes', {}),
    namespaces: await unary('GetNamespaces', {}),
  };
}

function follow(port, laterPort) {
  return new Promise((resolve, reject) => {
    let ready = false;
    // With a number, the buffered flows come first (following alone would start at the newest flow).
    const call = client.GetFlows({ follow: true, number: 100, whitelist: [{ destination_port: [port, laterPort], verdict: ['DROPPED'] }] });
    call.on('data', (response) => {
      if (response.response_types !== 'flow') return;
      if (!ready) {
        ready = true;
        process.stdout.write(JSON.stringify({ ready: true }) + '\n');
      }
      if (String(response.flow.l4.TCP.destination_port) === laterPort) {
        process.stdout.write(JSON.stringify({ followed: response }) + '\n');
        call.cancel();
        resolve();
      }
    });
    call.on('error', (error) => { if (error.code !== grpc.status.CANCELLED) reject(error); });
  });
}

(mode === 'follow' ? follow(rest[0], rest[1]) : query().then((result) => process.stdout.write(JSON.stringify(result) + '\n')))
  .then(() => { client.close(); process.exit(0); })
  .catch((error) => { process.stderr.write(`${error.code ?? ''} ${error.details ?? error.message}\n`); process.exit(1); });
