import { loadConfigOrExit } from './lib/config.js'
import { serve } from './lib/serve.js'

// Standalone entry (the container's command): validate the configuration before
// anything else (one message listing every problem, exit 78), then serve with
// graceful shutdown (lib/serve.ts).
await serve(loadConfigOrExit())
