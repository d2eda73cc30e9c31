import neostandard from 'neostandard'
import importX from 'eslint-plugin-import-x'
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript'

// Imports flow one way: routes → plugins → db, lib, schemas, config (README,
// "Architecture"). Only the entry points (app.ts, serve.ts, server.ts) and the tests
// reach the app and the server options.
const ENTRIES = ['./app.ts', './serve.ts', './server.ts']
const zones = [
  { target: ['./lib', './db', './schemas', './config'], from: [...ENTRIES, './server-options', './plugins', './routes'], message: 'lib/, db/, schemas/ and config/ are the bottom layer: they never import the app, its plugins or routes' },
  { target: './plugins', from: [...ENTRIES, './server-options', './routes'], message: 'plugins never import routes, the server options or the entry points' },
  { target: './server-options', from: [...ENTRIES, './plugins', './routes'], message: 'the server options are built from the configuration alone' },
  { target: './routes', from: [...ENTRIES, './server-options'], message: 'routes use plugins through their decorators, never the entry points' },
  { target: './scripts', from: [...ENTRIES, './server-options', './plugins', './routes'], message: 'command-line scripts use db/ and config/ directly' }
]

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'node_modules/**', '.data/**', '.tap/**', 'coverage/**'] }),
  {
    files: ['**/*.ts'],
    plugins: { 'import-x': importX },
    settings: { 'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })] },
    rules: {
      'import-x/no-restricted-paths': ['error', { zones }],
      'import-x/no-cycle': 'error'
    }
  }
]
