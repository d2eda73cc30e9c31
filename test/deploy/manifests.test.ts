import { execFile } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { parse, parseAllDocuments } from 'yaml'
import { ConfigError, loadConfig } from '../../config/load.js'
import { CONFIG_VARIABLES, defaultOf } from '../../config/schema.js'
import { build } from '../helper.js'
import { ROOT, finalStage, instructions, readDockerfile, stageEnv } from '../fixtures/deploy/dockerfile.js'
import { KUBERNETES_VERSION, validateObjects } from '../fixtures/deploy/kubernetes-schema.js'

// The deployment files are checked against the application itself: probe paths
// answer on the real app, every variable is one the app reads, the ConfigMap and
// Compose settings pass production validation, the Secret template's placeholders
// are refused by it, and the shutdown arithmetic holds.

type Obj = Record<string, any>
interface Manifest { file: string, doc: Obj }

const K8S = join(ROOT, 'deploy', 'kubernetes')
const KNOWN = new Set<string>([...CONFIG_VARIABLES, ...CONFIG_VARIABLES.map((v) => `${v}_FILE`)])
const STRONG = {
  SECRET_KEY: 'k'.repeat(20) + 'a-strong-cookie-signing-key',
  JWT_SECRET_KEY: 'j'.repeat(20) + 'a-strong-jwt-signing-key-000',
  DATABASE_URL: 'postgresql://app:7c1f0e2b9d4a4e16a3f8@db.example.internal:5432/app',
  REDIS_URL: 'redis://:5e9d2c7a1b3f4e6d8a0c@redis.example.internal:6379'
}
const SECRET_NAMES = ['SECRET_KEY', 'JWT_SECRET_KEY', 'JWT_SECRET_KEY_PREVIOUS', 'DATABASE_URL', 'SQLALCHEMY_DATABASE_URI', 'REDIS_URL']

function yamlFiles (): string[] {
  return readdirSync(K8S).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml')).sort()
}

function readYaml (file: string): Obj[] {
  // Kubernetes reads YAML 1.1 (`yes`, `on` are booleans there): parse as it does.
  const docs = parseAllDocuments(readFileSync(join(K8S, file), 'utf8'), { version: '1.1' })
  const list = Array.isArray(docs) ? docs : [docs]
  return list.map((d) => {
    if (d.errors.length > 0) throw new Error(`${file}: ${d.errors.map((e) => e.message).join('; ')}`)
    return d.toJS() as Obj
  }).filter((d) => d !== null)
}

const kustomization = readYaml('kustomization.yaml')[0]!
const manifests: Manifest[] = yamlFiles()
  .filter((f) => f !== 'kustomization.yaml')
  .flatMap((file) => readYaml(file).map((doc) => ({ file, doc })))
const applied = manifests.filter((m) => !m.file.endsWith('.example.yaml'))

function one (kind: string, name?: string): Obj {
  const found = applied.filter((m) => m.doc.kind === kind && (name === undefined || m.doc.metadata?.name === name))
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`)
  return found[0]!.doc
}

const deployment = one('Deployment')
const job = one('Job')
const configMap = one('ConfigMap')
const secretTemplate = manifests.find((m) => m.doc.kind === 'Secret')
const podSpecs: Array<[string, Obj]> = [['Deployment', deployment.spec.template.spec], ['Job', job.spec.template.spec]]
const apiContainer = deployment.spec.template.spec.containers[0]
const configData: Record<string, string> = configMap.data
const dockerfile = readDockerfile()
const imageEnv = stageEnv(finalStage(dockerfile))

function envNames (container: Obj): string[] {
  return (container.env ?? []).map((e: Obj) => e.name)
}

/** What the service would see in a pod: image ENV, then ConfigMap, then env entries. */
function podEnvironment (container: Obj, files: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = { ...imageEnv, ...configData }
  for (const e of container.env ?? []) {
    if (typeof e.value !== 'string') continue
    // Map the mounted secret files to their keys so that the test can give values.
    const key = e.name.endsWith('_FILE') ? e.name.slice(0, -'_FILE'.length) : undefined
    if (key !== undefined && files[key] !== undefined) env[key] = files[key]
    else env[e.name] = e.value
  }
  return env
}

t.test('every manifest parses, and kustomization lists every file but the Secret template', async (t) => {
  t.ok(manifests.length >= 10, `${manifests.length} manifests`)
  for (const m of manifests) {
    t.type(m.doc.apiVersion, 'string', `${m.file} has an apiVersion`)
    t.type(m.doc.kind, 'string', `${m.file} has a kind`)
    t.type(m.doc.metadata?.name, 'string', `${m.file} ${m.doc.kind} has a name`)
  }
  const listed: string[] = kustomization.resources
  const expected = yamlFiles().filter((f) => f !== 'kustomization.yaml' && !f.endsWith('.example.yaml'))
  t.same([...listed].sort(), expected, 'resources are exactly the manifest files')
  for (const f of listed) t.ok(existsSync(join(K8S, f)), `${f} exists`)
  t.ok(secretTemplate, 'a Secret template exists')
  t.notOk(listed.includes(secretTemplate!.file), 'the Secret template is never applied over the real Secret')
  t.equal(one('Namespace').metadata.name, kustomization.namespace, 'kustomization targets the namespace it creates')
  t.equal(one('Namespace').metadata.labels['pod-security.kubernetes.io/enforce'], 'restricted')
})

const kubectl = await promisify(execFile)('kubectl', ['version', '--client'], { timeout: 20_000 }).then(() => true, () => false)

t.test('kubectl kustomize builds the kustomization', {
  skip: kubectl ? false : 'kubectl is not installed (the YAML checks in this file still apply)'
}, async (t) => {
  const { stdout } = await promisify(execFile)('kubectl', ['kustomize', K8S], { timeout: 60_000 })
  const built = parseAllDocuments(stdout).map((d) => d.toJS() as Obj)
  t.equal(built.length, applied.length, 'one built object per applied manifest')
  for (const obj of built) {
    if (obj.kind !== 'Namespace') t.equal(obj.metadata.namespace, kustomization.namespace, `${obj.kind} ${obj.metadata.name} is namespaced`)
  }
  const image = built.find((o) => o.kind === 'Deployment')?.spec.template.spec.containers[0].image
  t.match(image, /:\S+$/, 'the image has a tag')
  const problems = await validateObjects(built.map((doc) => ({ label: `${doc.kind} ${doc.metadata?.name}`, doc })))
  t.same(problems, [], `every built object is valid against the Kubernetes ${KUBERNETES_VERSION} API schemas`)
})

t.test(`every manifest file validates against the Kubernetes ${KUBERNETES_VERSION} API schemas`, async (t) => {
  const problems = await validateObjects(manifests.map((m) => ({ label: `${m.file} ${m.doc.kind} ${m.doc.metadata?.name}`, doc: m.doc })))
  t.same(problems, [], `${manifests.length} objects: no unknown field, no wrong type, no missing required field`)
})

t.test('the schema check rejects an unknown field, a wrong type, a missing required field and an unknown kind', async (t) => {
  const broken = (label: string, change: (d: Obj) => void) => {
    const doc = structuredClone(deployment)
    change(doc)
    return { label, doc }
  }
  // One run of the check for all of them: each problem carries its object's label.
  const problems = await validateObjects([
    broken('unknown', (d) => { d.spec.template.spec.containers[0].securityContext.readOnlyRootFileSystem = true }),
    broken('topLevel', (d) => { d.spec.replica = 3 }),
    broken('type', (d) => { d.spec.replicas = '2' }),
    broken('required', (d) => { delete d.spec.template.spec.containers[0].name }),
    broken('enum', (d) => { d.spec.template.spec.containers[0].imagePullPolicy = 'Sometimes' }),
    { label: 'kind', doc: { ...one('HorizontalPodAutoscaler'), apiVersion: 'autoscaling/v3' } }
  ])
  const of = (label: string) => problems.filter((p) => p.startsWith(`${label}: `)).join('\n')
  t.match(of('unknown'), /'readOnlyRootFileSystem' does not exist in type/, 'a misspelt field deep in the pod template')
  t.match(of('topLevel'), /'replica' does not exist/, 'a misspelt field of the spec')
  t.match(of('type'), /replicas must be integer/, 'a string where the API wants an integer')
  t.match(of('required'), /must have required property .?name/, 'a container without its name')
  t.match(of('enum'), /imagePullPolicy must be equal to one of the allowed values/, 'a value outside the API\'s enum')
  t.match(of('kind'), /autoscaling\/v3 HorizontalPodAutoscaler is not a kind of the Kubernetes/, 'an apiVersion the API does not serve')
})

t.test('probe paths answer 200 on the real app, on the port the app listens on', async (t) => {
  const app = await build(t)
  const probes = { startupProbe: apiContainer.startupProbe, livenessProbe: apiContainer.livenessProbe, readinessProbe: apiContainer.readinessProbe }
  t.equal(probes.livenessProbe.httpGet.path, '/health/live')
  t.equal(probes.readinessProbe.httpGet.path, '/health/ready')
  t.equal(probes.startupProbe.httpGet.path, '/health/live', 'start-up waits for the process, not for the database')
  const ports = new Map<string, number>(apiContainer.ports.map((p: Obj) => [p.name, p.containerPort]))
  for (const [name, probe] of Object.entries(probes)) {
    const port = typeof probe.httpGet.port === 'string' ? ports.get(probe.httpGet.port) : probe.httpGet.port
    t.equal(port, Number(configData.PORT), `${name} targets PORT`)
    const res = await app.inject({ method: 'GET', url: probe.httpGet.path })
    t.equal(res.statusCode, 200, `${name} ${probe.httpGet.path} answers 200`)
    t.ok(probe.timeoutSeconds >= 2, `${name} allows the 1 s readiness check plus the answer`)
  }
  t.equal(ports.get('http'), 3000)
  t.equal(ports.get('metrics'), Number(configData.METRICS_PORT))
  t.equal(configData.METRICS_PORT, '9091')
  t.equal(imageEnv.PORT, configData.PORT, 'image and ConfigMap agree on PORT')
  t.equal(instructions(finalStage(dockerfile), 'EXPOSE')[0]?.args, configData.PORT)
})

t.test('Services route port 80 to the API and metrics separately, to the Deployment\'s pods', async (t) => {
  const podLabels = deployment.spec.template.metadata.labels
  const services = applied.filter((m) => m.doc.kind === 'Service').map((m) => m.doc)
  t.equal(services.length, 2)
  const containerPorts = new Set(apiContainer.ports.map((p: Obj) => p.name))
  for (const svc of services) {
    for (const [k, v] of Object.entries(svc.spec.selector)) t.equal(podLabels[k], v, `${svc.metadata.name} selects the pods by ${k}`)
    for (const p of svc.spec.ports) t.ok(containerPorts.has(p.targetPort), `${svc.metadata.name} targets a named container port`)
  }
  const api = services.find((s) => s.spec.ports.some((p: Obj) => p.targetPort === 'http'))!
  t.same(api.spec.ports.map((p: Obj) => [p.port, p.targetPort]), [[80, 'http']], 'the API Service exposes no metrics port')
  const metrics = services.find((s) => s !== api)!
  t.same(metrics.spec.ports.map((p: Obj) => [p.port, p.targetPort]), [[9091, 'metrics']])
  t.equal(api.spec.type, 'ClusterIP')
  t.equal(metrics.spec.type, 'ClusterIP')
})

t.test('grace period exceeds preStop plus the shutdown deadline, with margin', async (t) => {
  const spec = deployment.spec.template.spec
  const preStop: string[] = apiContainer.lifecycle.preStop.exec.command
  t.equal(preStop[0], '/bin/sleep', 'preStop needs no shell (slim images have /bin/sleep)')
  const sleep = Number(preStop[1])
  const timeout = Number(configData.SHUTDOWN_TIMEOUT) / 1000
  const drain = Number(configData.SHUTDOWN_DRAIN_DELAY) / 1000
  const grace = spec.terminationGracePeriodSeconds
  t.ok(sleep >= 3, `preStop sleeps ${sleep} s while endpoints are removed`)
  t.ok(drain < timeout, 'the drain delay ends before the deadline')
  t.ok(grace >= sleep + timeout + 5, `grace ${grace} s >= preStop ${sleep} s + SHUTDOWN_TIMEOUT ${timeout} s + 5 s margin`)
  t.equal(deployment.spec.strategy.rollingUpdate.maxUnavailable, 0, 'a rollout never drops below the desired count')
})

t.test('every pod is hardened: non-root, read-only, no capabilities, no escalation, no API token', async (t) => {
  const userLine = instructions(finalStage(dockerfile), 'USER')[0]?.args ?? ''
  const [imageUid] = userLine.split(':')
  t.match(imageUid, /^[1-9]\d*$/, 'the image runs as a numeric non-root UID')
  for (const [kind, spec] of podSpecs) {
    t.equal(spec.automountServiceAccountToken, false, `${kind} mounts no service account token`)
    t.equal(spec.serviceAccountName, one('ServiceAccount').metadata.name)
    t.equal(spec.securityContext.runAsNonRoot, true, `${kind} runAsNonRoot`)
    t.equal(String(spec.securityContext.runAsUser), imageUid, `${kind} runs as the image's user`)
    t.equal(spec.securityContext.seccompProfile.type, 'RuntimeDefault', `${kind} seccomp RuntimeDefault`)
    t.notOk(spec.hostNetwork || spec.hostPID || spec.hostIPC, `${kind} shares nothing with the host`)
    for (const c of spec.containers) {
      const sc = c.securityContext
      t.equal(sc.allowPrivilegeEscalation, false, `${kind}/${c.name} allowPrivilegeEscalation false`)
      t.equal(sc.readOnlyRootFilesystem, true, `${kind}/${c.name} readOnlyRootFilesystem`)
      t.same(sc.capabilities.drop, ['ALL'], `${kind}/${c.name} drops every capability`)
      t.notOk(sc.capabilities.add, `${kind}/${c.name} adds none`)
      t.not(sc.privileged, true)
      t.ok(c.resources.requests.cpu && c.resources.requests.memory, `${kind}/${c.name} requests cpu and memory`)
      t.ok(c.resources.limits.memory, `${kind}/${c.name} has a memory limit`)
      const tmp = c.volumeMounts.find((v: Obj) => v.mountPath === '/tmp')
      t.ok(tmp, `${kind}/${c.name} has a writable /tmp`)
      t.ok(spec.volumes.find((v: Obj) => v.name === tmp.name)?.emptyDir, `${kind}/${c.name} /tmp is an emptyDir`)
      t.equal(c.image, apiContainer.image, `${kind} runs the service's image`)
    }
  }
  t.equal(one('ServiceAccount').automountServiceAccountToken, false)
  t.ok(deployment.spec.replicas >= 2, 'at least two replicas')
})

t.test('every variable named in the manifests is one the service reads', async (t) => {
  for (const key of Object.keys(configData)) t.ok(KNOWN.has(key), `ConfigMap key ${key} is known`)
  for (const [kind, spec] of podSpecs) {
    for (const c of spec.containers) {
      for (const name of envNames(c)) t.ok(KNOWN.has(name), `${kind} env ${name} is known`)
      for (const from of c.envFrom ?? []) t.equal(from.configMapRef?.name, configMap.metadata.name, `${kind} reads the ConfigMap`)
    }
  }
  for (const value of Object.values(configData)) t.type(value, 'string', 'ConfigMap values are strings')
  t.equal(configData.MIGRATE_ON_START, 'false', 'pods leave migrations to the Job')
  t.equal(configData.ENVIRONMENT, 'production')
  t.match(configData.TRUST_PROXY, /^[0-9a-f.:]+\/\d+(,[0-9a-f.:]+\/\d+)*$/i, 'TRUST_PROXY is a CIDR list, never true')
})

t.test('secrets come only from the Secret, as files, and the Secret names every key they point at', async (t) => {
  const secretKeys = Object.keys(secretTemplate!.doc.stringData)
  t.notOk(secretTemplate!.doc.data, 'the template holds no base64 data that could hide a value')
  for (const [kind, spec] of podSpecs) {
    const c = spec.containers[0]
    const secretVolume = spec.volumes.find((v: Obj) => v.secret)
    t.equal(secretVolume.secret.secretName, secretTemplate!.doc.metadata.name, `${kind} mounts the Secret`)
    const mount = c.volumeMounts.find((v: Obj) => v.name === secretVolume.name)
    t.equal(mount.readOnly, true)
    for (const e of c.env ?? []) {
      t.notOk(e.valueFrom?.secretKeyRef, `${kind} ${e.name}: secrets as files, not environment values`)
      if (!e.name.endsWith('_FILE')) continue
      const key = e.name.slice(0, -'_FILE'.length)
      t.equal(e.value, `${mount.mountPath}/${key}`, `${kind} ${e.name} points into the secret mount`)
      t.ok(secretKeys.includes(key), `the Secret holds ${key}`)
    }
    for (const name of ['SECRET_KEY', 'JWT_SECRET_KEY', 'DATABASE_URL']) {
      t.ok(envNames(c).includes(`${name}_FILE`), `${kind} gets ${name}`)
    }
  }
})

/** Random keys (hex, base64) are long runs of letters and digits; names and paths have few digits or have dots. */
function keyLike (value: string): boolean {
  return /^[A-Za-z0-9+/=_-]{32,}$/.test(value) && (value.match(/\d/g) ?? []).length >= 4 && (value.match(/[A-Za-z]/g) ?? []).length >= 4
}

const isSecretName = (name: string) => SECRET_NAMES.includes(name) || /(PASSWORD|PASSWD|PRIVATE_KEY|API_KEY)/i.test(name)

t.test('no secret value appears in any applied manifest', async (t) => {
  let strings = 0
  function walk (value: unknown, path: string, file: string): void {
    if (typeof value === 'string') {
      strings++
      if (/:\/\/[^/:@\s]*:[^@\s]+@/.test(value)) t.fail(`${file} ${path}: a URL with a password`)
      if (keyLike(value)) t.fail(`${file} ${path}: a key-like string`)
      if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(value)) t.fail(`${file} ${path}: a private key`)
      return
    }
    if (Array.isArray(value)) { value.forEach((v, i) => walk(v, `${path}[${i}]`, file)); return }
    if (value && typeof value === 'object') {
      const obj = value as Obj
      // An env entry {name: SECRET_KEY, value: ...}: secrets are only ever given as *_FILE paths.
      if (typeof obj.name === 'string' && 'value' in obj && isSecretName(obj.name)) t.fail(`${file} ${path}: ${obj.name} has a literal value`)
      for (const [k, v] of Object.entries(obj)) {
        if (isSecretName(k) && v !== '') t.fail(`${file} ${path}.${k} holds a literal secret`)
        walk(v, `${path}.${k}`, file)
      }
    }
  }
  for (const m of applied) walk(m.doc, m.doc.kind, m.file)
  t.ok(strings > 100, `walked ${strings} strings of every applied manifest`)
  t.notOk(applied.some((m) => m.doc.kind === 'Secret'), 'no Secret is applied with the manifests')
  t.ok(keyLike('0f9c2e7a4b1d8e3f6a5c0b9d2e7f4a1c'), 'the detector flags a hex key')
  t.notOk(keyLike('/run/secrets/app/JWT_SECRET_KEY_PREVIOUS'), 'and not a path')
})

t.test('the Secret template\'s placeholders are refused by production', async (t) => {
  const data: Record<string, string> = secretTemplate!.doc.stringData
  for (const [key, value] of Object.entries(data)) {
    t.ok(value === '' || /CHANGE_?ME/i.test(value), `${key} is empty or an obvious placeholder`)
    t.ok(value.length < 32, `${key} is too short to pass as a key`)
  }
  const env = podEnvironment(apiContainer, data)
  let error: unknown
  try {
    loadConfig(env)
  } catch (err) {
    error = err
  }
  t.ok(error instanceof ConfigError, 'a pod with the template Secret refuses to start')
  const message = (error as Error).message
  for (const name of ['SECRET_KEY', 'JWT_SECRET_KEY', 'DATABASE_URL', 'REDIS_URL']) t.match(message, name, `the refusal names ${name}`)
  t.notMatch(message, 'CHANGE_ME', 'the refusal never prints values')
})

t.test('the ConfigMap passes production validation once real secrets are given', async (t) => {
  const env = podEnvironment(apiContainer, { ...STRONG, JWT_SECRET_KEY_PREVIOUS: '' })
  const { config, warnings } = loadConfig(env)
  t.equal(config.ENVIRONMENT, 'production')
  t.equal(config.HOST, '0.0.0.0')
  t.equal(config.PORT, 3000)
  t.equal(config.METRICS_PORT, 9091)
  t.equal(config.MIGRATE_ON_START, false)
  t.equal(config.DATABASE_SSL, 'require')
  t.equal(config.JWT_SECRET_KEY_PREVIOUS, undefined, 'an empty previous key means none')
  t.same(config.TRUST_PROXY, ['10.0.0.0/8'])
  t.same(warnings, [])
})

t.test('the migration Job runs the migrate script that the build produces', async (t) => {
  const c = job.spec.template.spec.containers[0]
  t.same(c.command, ['node', 'dist/scripts/migrate.js'])
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))
  t.equal(pkg.scripts.migrate, c.command.join(' '), 'the same command as npm run migrate')
  t.ok(existsSync(join(ROOT, 'scripts', 'migrate.ts')), 'scripts/migrate.ts exists')
  t.equal(job.spec.template.spec.restartPolicy, 'Never')
  t.ok(job.spec.backoffLimit >= 1 && job.spec.activeDeadlineSeconds > 0, 'bounded retries and duration')
})

/** The one object of `kind` in an example file (not applied by the kustomization). */
function example (file: string, kind: string): Obj {
  const found = manifests.filter((m) => m.file === file && m.doc.kind === kind)
  if (found.length !== 1) throw new Error(`expected one ${kind} in ${file}, found ${found.length}`)
  return found[0]!.doc
}

t.test('the example Ingress routes to the API Service\'s http port over TLS, never to the metrics Service', async (t) => {
  const ingress = example('ingress.example.yaml', 'Ingress')
  const api = one('Service', 'secure-fastify-service')
  const backends = ingress.spec.rules.flatMap((r: Obj) => r.http.paths.map((p: Obj) => p.backend.service))
  t.ok(backends.length > 0, 'it routes somewhere')
  for (const backend of backends) {
    t.equal(backend.name, api.metadata.name, 'to the API Service')
    t.ok(api.spec.ports.some((p: Obj) => p.name === backend.port.name && p.port === 80), `port ${backend.port.name} is the API Service's`)
  }
  t.notOk(backends.some((b: Obj) => b.name === one('Service', 'secure-fastify-service-metrics').metadata.name), 'metrics are never routed')
  const hosts = ingress.spec.rules.map((r: Obj) => r.host)
  t.same(ingress.spec.tls.flatMap((x: Obj) => x.hosts), hosts, 'every host is served over TLS')
  // The controller's body limit is no lower than the service's, so that an oversized
  // body gets the service's own 413 (our error shape), not the controller's page.
  const size = /^(\d+)([km]?)$/i.exec(String(ingress.metadata.annotations['nginx.ingress.kubernetes.io/proxy-body-size']))
  t.ok(size, 'a proxy-body-size nginx reads')
  const bytes = Number(size?.[1]) * ({ '': 1, k: 1024, m: 1024 * 1024 } as Record<string, number>)[(size?.[2] ?? '').toLowerCase()]!
  const limit = Number(configData.BODY_LIMIT ?? defaultOf('BODY_LIMIT', 'production'))
  t.ok(bytes >= limit, `the controller admits ${bytes} bytes, BODY_LIMIT is ${limit}`)
})

t.test('the example client Job runs npm run clients\' script with create, once, hardened and configured as the migration Job', async (t) => {
  const clients = example('clients-job.example.yaml', 'Job')
  const spec = clients.spec.template.spec
  const c = spec.containers[0]
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))
  t.equal(pkg.scripts.clients, c.command.join(' '), 'the same command as npm run clients')
  t.equal(c.args[0], 'create')
  t.ok(c.args.includes('--name') && c.args.includes('--scopes'), 'with a name and scopes')
  t.equal(clients.spec.backoffLimit, 0, 'never retried (a retry would create a second client)')
  t.equal(spec.restartPolicy, 'Never')
  const migrate = job.spec.template.spec
  t.same(c.securityContext, migrate.containers[0].securityContext, 'the container is hardened as the migration Job\'s')
  t.same(spec.securityContext, migrate.securityContext)
  t.equal(spec.automountServiceAccountToken, false)
  t.same(c.env, migrate.containers[0].env, 'the same configuration (secrets as files)')
  t.same(c.envFrom, migrate.containers[0].envFrom)
  t.equal(c.image, apiContainer.image)
  const policy = example('clients-job.example.yaml', 'NetworkPolicy')
  const labels = clients.spec.template.metadata.labels
  t.ok(Object.entries(policy.spec.podSelector.matchLabels).every(([k, v]) => labels[k] === v), 'its NetworkPolicy selects its pod')
  t.notOk(policy.spec.ingress, 'which accepts no connection')
  t.same(policy.spec.egress.flatMap((r: Obj) => r.ports.map((p: Obj) => p.port)).sort(), [53, 53, 5432], 'and reaches only PostgreSQL and DNS')
})

t.test('autoscaling and disruption budget never leave fewer than one pod', async (t) => {
  const hpa = one('HorizontalPodAutoscaler')
  t.equal(hpa.apiVersion, 'autoscaling/v2')
  t.same(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata.name })
  t.ok(hpa.spec.minReplicas >= 2)
  t.ok(hpa.spec.maxReplicas > hpa.spec.minReplicas)
  t.ok(hpa.spec.maxReplicas * (Number(configData.DATABASE_POOL_MAX) + 1) <= 200, 'pool connections at max scale stay reasonable')
  const pdb = one('PodDisruptionBudget')
  t.equal(pdb.apiVersion, 'policy/v1')
  t.same(pdb.spec.selector.matchLabels, deployment.spec.selector.matchLabels)
  const allowedDown = pdb.spec.maxUnavailable ?? (hpa.spec.minReplicas - pdb.spec.minAvailable)
  t.ok(allowedDown >= 1 && allowedDown < hpa.spec.minReplicas, 'drains proceed one pod at a time and keep one serving')
})

t.test('network policies: in on the service and metrics ports only, out to PostgreSQL, Redis and DNS only', async (t) => {
  const policies = applied.filter((m) => m.doc.kind === 'NetworkPolicy').map((m) => m.doc)
  const deny = policies.find((p) => Object.keys(p.spec.podSelector).length === 0)!
  t.ok(deny, 'a default-deny policy exists')
  t.same(deny.spec.policyTypes.sort(), ['Egress', 'Ingress'])
  t.notOk(deny.spec.ingress || deny.spec.egress, 'default deny allows nothing')
  const podLabels = deployment.spec.template.metadata.labels
  const jobLabels = job.spec.template.metadata.labels
  const selects = (p: Obj, labels: Obj) => Object.keys(p.spec.podSelector.matchLabels ?? {}).length > 0 &&
    Object.entries(p.spec.podSelector.matchLabels).every(([k, v]) => labels[k] === v)
  const api = policies.filter((p) => selects(p, podLabels))
  t.equal(api.length, 1, 'one policy selects the API pods')
  const ingressPorts = api[0]!.spec.ingress.flatMap((r: Obj) => r.ports.map((p: Obj) => p.port))
  t.same(ingressPorts.sort(), [3000, 9091], 'ingress on the API and metrics ports only')
  const metricsRule = api[0]!.spec.ingress.find((r: Obj) => r.ports.some((p: Obj) => p.port === 9091))
  t.equal(metricsRule.from?.[0]?.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'], 'monitoring', 'metrics only from monitoring')
  t.equal(metricsRule.ports.length, 1, 'the monitoring rule opens nothing else')
  for (const p of policies.filter((p) => p !== deny)) {
    const egressPorts = p.spec.egress.flatMap((r: Obj) => r.ports.map((x: Obj) => x.port))
    for (const port of egressPorts) t.ok([5432, 6379, 53].includes(port), `${p.metadata.name} egress ${port} is PostgreSQL, Redis or DNS`)
    t.ok(p.spec.egress.every((r: Obj) => r.ports?.length > 0), `${p.metadata.name} opens no egress without a port`)
  }
  const migrate = policies.filter((p) => selects(p, jobLabels))
  t.equal(migrate.length, 1, 'one policy selects the migration Job')
  t.notOk(migrate[0]!.spec.ingress, 'the Job accepts no connection')
})

t.test('docker-compose.yml: known variables, no literal secrets, health-gated start, no published data stores', async (t) => {
  const text = readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')
  const compose = parse(text, { merge: true }) as Obj
  const services = compose.services
  t.same(Object.keys(services).sort(), ['api', 'migrate', 'postgres', 'redis'])
  for (const name of ['api', 'migrate']) {
    const s = services[name]
    t.equal(s.build, '.', `${name} is built from the Dockerfile`)
    t.equal(s.read_only, true, `${name} runs read-only`)
    t.same(s.cap_drop, ['ALL'])
    t.ok(s.security_opt.includes('no-new-privileges:true'))
    for (const [key, value] of Object.entries<string>(s.environment)) {
      t.ok(KNOWN.has(key), `${name} env ${key} is known`)
      if (SECRET_NAMES.includes(key)) t.match(value, /\$\{[A-Z_]+:\?[^}]+\}/, `${name} ${key} comes from .env and is required`)
    }
    // With the variables substituted as Compose would, the service accepts its configuration.
    const substituted = Object.fromEntries(Object.entries<string>(s.environment).map(([k, v]) =>
      [k, String(v).replace(/\$\{([A-Z_]+):\?[^}]*\}/g, (_m, v2: string) => ({ ...STRONG, POSTGRES_PASSWORD: 'f3a9c1d7e5b2', REDIS_PASSWORD: '9b7d5f3a1c2e' } as Record<string, string>)[v2] ?? '')]))
    const { config } = loadConfig({ ...imageEnv, ...substituted })
    t.equal(config.ENVIRONMENT, 'production', `${name} runs in production mode`)
    t.match(config.DATABASE_URL, /@postgres:5432\//, `${name} reaches the postgres service`)
  }
  t.same(services.migrate.command, ['node', 'dist/scripts/migrate.js'])
  t.equal(services.api.environment.MIGRATE_ON_START, 'false')
  t.same(services.api.depends_on, {
    postgres: { condition: 'service_healthy' },
    redis: { condition: 'service_healthy' },
    migrate: { condition: 'service_completed_successfully' }
  })
  t.same(services.migrate.depends_on, { postgres: { condition: 'service_healthy' } })
  for (const name of ['api', 'postgres', 'redis']) t.ok(services[name].healthcheck?.test, `${name} has a healthcheck`)
  for (const name of ['postgres', 'redis']) {
    t.notOk(services[name].ports, `${name} publishes no port`)
    t.ok(services[name].networks.every((n: string) => compose.networks[n]?.internal === true), `${name} is on internal networks only`)
  }
  for (const port of services.api.ports) t.match(port, /^127\.0\.0\.1:/, 'the API is published on loopback only')
  t.match(services.postgres.environment.POSTGRES_PASSWORD, /^\$\{POSTGRES_PASSWORD:\?/)
  const grace = Number(/^(\d+)s$/.exec(services.api.stop_grace_period)?.[1])
  t.ok(grace > Number(configData.SHUTDOWN_TIMEOUT) / 1000, 'stop_grace_period exceeds SHUTDOWN_TIMEOUT')
  t.notMatch(text, /:\/\/[^/:@\s]*:[^@\s$]+@/, 'no literal password in any URL')
})
