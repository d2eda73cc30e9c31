import { loadConfigOrExit } from './config/load.js'
import { serve } from './serve.js'

// The standalone entry (the container's command): the configuration is loaded once,
// here, before anything else (one message listing every problem, exit 78), then
// handed down to the server.
await serve(loadConfigOrExit())
