import { startTracing } from './lib/tracing.js'

// The tracing preload (docs/operations.md, "Tracing"): `node --import ./dist/telemetry.js`
// runs it before any module of the service loads. server.ts imports it first as
// well, so `node dist/server.js` needs no flag; fastify-cli (`fastify start`) needs
// `node --import` (or NODE_OPTIONS=--import=./dist/telemetry.js), because its own
// `--import` option does not wait for the preload before loading the app.
await startTracing(process.env)
