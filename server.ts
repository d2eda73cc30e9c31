// The standalone entry (the container's command). Tracing starts first, when
// configured (telemetry.ts): the modules it instruments must load after it, hence
// the dynamic imports below. The configuration is then loaded once, before
// anything else (one message listing every problem, exit 78), and handed down.
await import('./telemetry.js')
const { loadConfigOrExit } = await import('./config/load.js')
const { serve } = await import('./serve.js')
await serve(loadConfigOrExit())
