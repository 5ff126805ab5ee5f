// The manifests of docs/fleet.md (deploy/kubernetes/*.yaml), checked offline against the
// Kubernetes schemas that the npm packages kubernetes-models and
// @kubernetes-models/prometheus-operator carry: each object passes its schema's
// validation (types, enums, required fields, formats), and has no field its schema does not
// know (the schemas allow unknown fields, as the API server does without strict field
// validation: their TypeScript types do not, so each object is type-checked as a literal
// of its type). Then the manifests fit together (labels, ports, flags, sysctls, rules),
// and deploy/prometheus/prometheus.yml passes `promtool check config`.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import ts from 'typescript';
import { parse, parseAllDocuments } from 'yaml';
import { root } from '../helpers/cli.js';
import { promtoolPath } from '../helpers/exposition.js';
import { testIf } from '../helpers/requirements.js';

const K8S = join(root, 'deploy', 'kubernetes');
const RULES = join(root, 'packages', 'metrics', 'prometheus', 'rules.yml');

/** The model of each kind the manifests use: its module, class and TypeScript interface. */
const MODELS: Record<string, { module: string; model: string; type: string }> = {
  'batch/v1 Job': { module: 'kubernetes-models/batch/v1/Job', model: 'Job', type: 'IJob' },
  'monitoring.coreos.com/v1 PodMonitor': {
    module: '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor',
    model: 'PodMonitor',
    type: 'IPodMonitor',
  },
  'monitoring.coreos.com/v1 PrometheusRule': {
    module: '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule',
    model: 'PrometheusRule',
    type: 'IPrometheusRule',
  },
};

// biome-ignore lint/suspicious/noExplicitAny: manifests are whatever YAML holds
type Manifest = Record<string, any>;

interface Doc {
  file: string;
  key: string;
  object: Manifest;
}

function loadManifests(): Doc[] {
  const docs: Doc[] = [];
  for (const file of readdirSync(K8S)
    .filter((f) => f.endsWith('.yaml'))
    .sort()) {
    for (const d of parseAllDocuments(readFileSync(join(K8S, file), 'utf8'))) {
      if (d.errors.length > 0) throw new Error(`${file}: ${d.errors.map((e) => e.message).join('; ')}`);
      const object = d.toJS() as Manifest;
      docs.push({ file, key: `${object['apiVersion']} ${object['kind']}`, object });
    }
  }
  return docs;
}

const docs = loadManifests();
const one = (kind: string): Manifest => {
  const found = docs.filter((d) => d.object['kind'] === kind);
  if (found.length !== 1) throw new Error(`${found.length} ${kind} manifests`);
  return found[0]!.object;
};

/** Runs the schema validation of the object's model; the error message, or undefined if valid. */
async function schemaError(key: string, object: Manifest): Promise<string | undefined> {
  const m = MODELS[key];
  if (m === undefined) return `no schema for ${key}`;
  const mod = (await import(m.module)) as Record<string, new (data: Manifest) => { validate(): void }>;
  try {
    new mod[m.model]!(object).validate();
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/** Type-checks each object as a literal of its model's type: the diagnostics of each. */
function typeErrors(objects: { key: string; object: Manifest }[]): string[][] {
  const sources = new Map<string, string>();
  const names = objects.map(({ key, object }, i) => {
    const m = MODELS[key];
    const name = join(root, 'test', 'fleet', `manifest-check-${i}.mts`);
    const text = m
      ? `import type { ${m.type} } from '${m.module}';\nexport const object: ${m.type} = ${JSON.stringify(object, null, 2)};\n`
      : `throw new Error('no type for ${key}');\n`;
    sources.set(name, text);
    return name;
  });
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.getSourceFile = (name, language, ...rest) => {
    const text = sources.get(name);
    return text === undefined
      ? getSourceFile.call(host, name, language, ...rest)
      : ts.createSourceFile(name, text, language);
  };
  host.fileExists = (name) => sources.has(name) || fileExists.call(host, name);
  host.readFile = (name) => sources.get(name) ?? readFile.call(host, name);
  const program = ts.createProgram(names, options, host);
  return names.map((name) =>
    ts
      .getPreEmitDiagnostics(program, program.getSourceFile(name))
      .map((d) => ts.flattenDiagnosticMessageText(d.messageText, ' ')),
  );
}

test('every manifest passes the schema validation of its Kubernetes kind', async (t) => {
  t.deepEqual(docs.map((d) => d.key).sort(), Object.keys(MODELS).sort(), 'one manifest of each kind');
  for (const { file, key, object } of docs) t.is(await schemaError(key, object), undefined, `${file} (${key})`);
});

test('the schema validation refuses a wrong value, type or required field', async (t) => {
  const job = one('Job');
  const bad = (change: (o: Manifest) => void): Manifest => {
    const copy = structuredClone(job);
    change(copy);
    return copy;
  };
  const cases: [string, Manifest][] = [
    ['completionMode not an allowed value', bad((o) => (o['spec'].completionMode = 'Indexd'))],
    ['completions a string', bad((o) => (o['spec'].completions = '8'))],
    ['a container without a name', bad((o) => delete o['spec'].template.spec.containers[0].name)],
    ['a sysctl value a number', bad((o) => (o['spec'].template.spec.securityContext.sysctls[0].value = 1))],
  ];
  for (const [what, object] of cases) t.truthy(await schemaError('batch/v1 Job', object), what);
  const rule = structuredClone(one('PrometheusRule'));
  delete rule['spec'].groups[0].name;
  t.truthy(await schemaError('monitoring.coreos.com/v1 PrometheusRule', rule), 'a rule group without a name');
});

test('no manifest has a field its schema does not know (and a misspelt one is caught)', (t) => {
  const misspelt = structuredClone(one('Job'));
  misspelt['spec'].template.spec.containers[0].portz = misspelt['spec'].template.spec.containers[0].ports;
  const monitor = structuredClone(one('PodMonitor'));
  monitor['spec'].podMetricsEndpoints[0].intervall = '15s';
  const results = typeErrors([
    ...docs,
    { key: 'batch/v1 Job', object: misspelt },
    { key: 'monitoring.coreos.com/v1 PodMonitor', object: monitor },
  ]);
  for (const [i, d] of docs.entries()) t.deepEqual(results[i], [], `${d.file} (${d.key})`);
  t.regex(results[docs.length]!.join('\n'), /portz/, 'a misspelt container field');
  t.regex(results[docs.length + 1]!.join('\n'), /intervall/, 'a misspelt PodMonitor field');
});

test('the manifests fit together: labels, ports, flags of porter hold, sysctls, rules', (t) => {
  const job = one('Job');
  const monitor = one('PodMonitor');
  const pod = job['spec'].template;
  const container = pod.spec.containers[0];
  t.is(job['spec'].completionMode, 'Indexed');
  // The PodMonitor selects the Job's pods, on their metrics port.
  for (const [k, v] of Object.entries(monitor['spec'].selector.matchLabels as Record<string, string>)) {
    t.is(pod.metadata.labels[k], v, `pod label ${k}`);
  }
  t.truthy(pod.metadata.labels[monitor['spec'].jobLabel], 'the jobLabel is a label of the pods');
  const portName = monitor['spec'].podMetricsEndpoints[0].port;
  const port = (container.ports as { name: string; containerPort: number }[]).find((p) => p.name === portName);
  t.truthy(port, `a container port named ${portName}`);
  // porter hold serves its metrics there, on every address of the pod.
  t.deepEqual(container.command, ['npx', '--yes', '@porter/cli@0', 'hold']);
  t.true((container.args as string[]).includes(`--metrics=0.0.0.0:${port?.containerPort}`));
  // Only flags `porter hold` has (its --help), each with a value where it takes one.
  const help = spawnSync(process.execPath, [join(root, 'packages/cli/bin/porter.js'), 'hold', '--help'], {
    encoding: 'utf8',
  }).stdout;
  for (const arg of (container.args as string[]).filter((a) => a.startsWith('--'))) {
    const flag = arg.split('=')[0]!;
    t.regex(help, new RegExp(`${flag}\\b`), `porter hold ${flag}`);
  }
  // The target comes from the env, as Kubernetes expands $(VAR) in args.
  const env = Object.fromEntries((container.env as { name: string; value: string }[]).map((e) => [e.name, e.value]));
  t.regex(env['PORTER_TARGET'] ?? '', /^[a-z0-9.-]+:\d+$/);
  t.is(container.args[0], '$(PORTER_TARGET)');
  // Sysctls: only safe ones (no kubelet flag needed), with a valid range.
  const safe = [
    'net.ipv4.ip_local_port_range',
    'net.ipv4.ip_local_reserved_ports',
    'net.ipv4.ip_unprivileged_port_start',
  ];
  for (const s of pod.spec.securityContext.sysctls as { name: string; value: string }[]) {
    t.true(safe.includes(s.name), `${s.name} is a safe sysctl`);
    if (s.name === 'net.ipv4.ip_local_port_range') {
      const [lo, hi] = s.value.split(/\s+/).map(Number);
      t.true(lo! >= 1024 && lo! < hi! && hi! <= 65_535, s.value);
    }
  }
  // The Indexed Job's pods carry their index as this label (Kubernetes 1.28 and later);
  // the PodMonitor reads it through service discovery's meta label.
  const relabel = monitor['spec'].podMetricsEndpoints[0].relabelings[0];
  t.deepEqual(relabel.sourceLabels, ['__meta_kubernetes_pod_label_batch_kubernetes_io_job_completion_index']);
  // The PrometheusRule carries exactly porter's rules.
  const rules = parse(readFileSync(RULES, 'utf8')) as { groups: unknown };
  t.deepEqual(
    one('PrometheusRule')['spec'].groups,
    rules.groups,
    'deploy/kubernetes/porter-prometheusrule.yaml = rules.yml',
  );
});

const promtool = promtoolPath();

testIf(promtool === undefined ? 'promtool (Debian package prometheus)' : undefined)(
  "deploy/prometheus/prometheus.yml passes promtool check config, with porter's rules beside it",
  (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'porter-promconfig-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    copyFileSync(join(root, 'deploy', 'prometheus', 'prometheus.yml'), join(dir, 'prometheus.yml'));
    copyFileSync(RULES, join(dir, 'porter-rules.yml'));
    const r = spawnSync(promtool as string, ['check', 'config', join(dir, 'prometheus.yml')], { encoding: 'utf8' });
    t.is(r.status, 0, `${r.stdout}${r.stderr}`);
    t.regex(r.stdout, /SUCCESS: 14 rules found/);
  },
);
