// MQTT.js (npm package mqtt) against gatemq over WebSocket: for MQTT
// 3.1, 3.1.1 and 5.0, connect, subscribe, publish at QoS 1 and receive
// the message back. Run by TestMain_WebSocketMQTTJS (main_ws_test.go):
//
//   MQTTJS_PREFIX=.cache/npm node scripts/ws_mqttjs_test.mjs URL [CA_FILE]
//
// MQTTJS_PREFIX is the directory given to npm install --prefix.
// URL is ws://HOST:PORT/mqtt or wss://...; CA_FILE, for wss, is the PEM
// CA that signed the broker's certificate. Prints one "ok" line per
// version and exits 0, or prints what failed and exits 1.

import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

const prefix = process.env.MQTTJS_PREFIX || '.cache/npm';
const require = createRequire(resolve(prefix, 'package.json'));
const mqtt = require('mqtt');

const [url, caFile] = process.argv.slice(2);
if (!url) {
  console.error('usage: node ws_mqttjs_test.mjs URL [CA_FILE]');
  process.exit(2);
}

function roundTrip(version) {
  return new Promise((resolve, reject) => {
    const id = `mqttjs-v${version}-${process.pid}`;
    const topic = `mqttjs/${url.split(':')[0]}/v${version}`;
    const payload = `hello from MQTT.js over ${url.split(':')[0]}, v${version}`;
    const opts = {
      clientId: id,
      protocolVersion: version,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: 5000,
    };
    if (version === 3) {
      opts.protocolId = 'MQIsdp'; // WebSocket subprotocol mqttv3.1
    }
    if (caFile) {
      opts.ca = readFileSync(caFile);
    }
    const client = mqtt.connect(url, opts);
    const timer = setTimeout(() => {
      client.end(true);
      reject(new Error(`v${version}: no round trip within 10s`));
    }, 10000);
    const fail = (err) => {
      clearTimeout(timer);
      client.end(true);
      reject(new Error(`v${version}: ${err && err.message ? err.message : err}`));
    };
    client.on('error', fail);
    client.on('message', (t, msg) => {
      if (t !== topic || msg.toString() !== payload) {
        fail(new Error(`unexpected message ${t} ${msg}`));
        return;
      }
      clearTimeout(timer);
      client.end(false, {}, () => resolve(`ok v${version} ${url}`));
    });
    client.on('connect', () => {
      client.subscribe(topic, { qos: 1 }, (err, granted) => {
        if (err || !granted || granted.length !== 1 || granted[0].qos !== 1) {
          fail(err || new Error(`suback ${JSON.stringify(granted)}`));
          return;
        }
        client.publish(topic, payload, { qos: 1 }, (err) => {
          if (err) fail(err);
        });
      });
    });
  });
}

let failed = false;
for (const v of [3, 4, 5]) {
  try {
    console.log(await roundTrip(v));
  } catch (err) {
    console.log(`FAIL ${err.message}`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
