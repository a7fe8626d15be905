#!/usr/bin/env node
// Reference evaluation rates for courier's FHIRPath benchmark, measured with
// fhirpath.js (npm `fhirpath`, HL7's JavaScript implementation) and its R4
// model, for the same four expressions the C++ benchmark runs.
//
//   node bench/fhirpath_reference.js SMALL.json LARGE.json [--stock-resolve]
//                                    [--expression EXPR]...
//
// e.g. SMALL = bench/data/lab-order-message.json and LARGE the Bundle that
// `build/fhirpath_bench --write-large FILE` writes (bench/fhirpath_vs_reference.sh
// does both). fhirpath.js is the copy pinned in
// tests/interop/package-lock.json: run `npm ci` in tests/interop first.
//
// Each expression is compiled once (fhirpath.compile(expr, r4model)) and
// evaluated on the parsed resource (parsing is not timed, as on the C++ side).
// Per (resource, expression): a warm-up of at least 0.3 s, then 3 timed runs of
// at least 1 s each; the best run's rate is printed as
//
//   resource<TAB>expression<TAB>evaluations_per_second
//
// What each expression returned is written to standard error, so that the
// rates can be checked to be for real work.
//
// resolve(): fhirpath.js 5.2.2's own resolve() does not look inside a Bundle.
// It is asynchronous (allowed only with the `async` option; evaluation then
// returns a Promise), it fetches absolute http(s) references over the network,
// and for a relative or urn:uuid reference of a known target type it wants a
// FHIR server (`Option "fhirServerUrl" is not specified.` otherwise). So on a
// message Bundle, expression 2 either throws or comes back empty. By default
// this script therefore registers, through fhirpath.js's userInvocationTable,
// a synchronous resolve() that looks the reference up among the fullUrls of
// %resource's entries (a linear scan per call, like courier's BundleIndex
// built per call), so that expression 2 does the same work as in courier and
// gives the right answer. --stock-resolve uses the library's own resolve()
// instead (with async on, and the network cut off); expression 2 is then
// reported as `error: ...` when it throws.
//
// The four expressions below are the default and are the ones
// bench/fhirpath_bench.cpp runs, character for character; each --expression
// replaces the set with the ones given. They narrow choice elements with
// ofType() (event.ofType(Coding), value.ofType(Quantity)) as FHIRPath
// requires; fhirpath.js would also accept the JSON names (eventCoding), which
// courier refuses as a semantic error.

'use strict';

const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');

const interopRequire = createRequire(path.join(__dirname, '..', 'tests', 'interop', 'package.json'));
let fhirpath;
let r4model;
let ResourceNode;
try {
  fhirpath = interopRequire('fhirpath');
  r4model = interopRequire('fhirpath/fhir-context/r4');
  // Not exported by the package; resolve() must return ResourceNodes for
  // ofType() to see the resource type. Loaded by file name, it is the same
  // module instance fhirpath.js itself uses.
  ({ ResourceNode } = require(path.join(path.dirname(interopRequire.resolve('fhirpath')), 'types.js')));
} catch (e) {
  console.error('fhirpath.js is not installed: run `npm ci` in tests/interop (' + e.message + ')');
  process.exit(2);
}

const EXPRESSIONS = [
  "Bundle.entry.first().resource.ofType(MessageHeader).event.ofType(Coding).code = 'order-request'",
  "Bundle.entry.first().resource.ofType(MessageHeader).focus.first().resolve().ofType(ServiceRequest).status = 'active'",
  'Bundle.entry.resource.ofType(Observation).where(value.ofType(Quantity).value > 100).count()',
  'Bundle.timestamp > @2020-01-01T00:00:00Z',
];

const WARMUP_SECONDS = 0.3;
const RUN_SECONDS = 1.0;
const RUNS = 3;

// Never reach the network, whatever resolve() does.
globalThis.fetch = () => Promise.reject(new TypeError('network access is disabled in fhirpath_reference.js'));

// resolve() within %resource, a Bundle: the entry whose fullUrl is the
// reference (all references in the benchmark messages are urn:uuid fullUrls).
const bundleResolve = {
  resolve: {
    internalStructures: true,
    arity: { 0: [] },
    fn: function resolve(inputs) {
      const root = this.vars.resource;
      const entries = (root && root.resourceType === 'Bundle' && root.entry) || [];
      const out = [];
      for (const item of inputs) {
        const value = fhirpath.util.valData(item);
        const reference = typeof value === 'string' ? value : value && value.reference;
        if (!reference) continue;
        for (const entry of entries) {
          if (entry.fullUrl === reference && entry.resource) {
            out.push(ResourceNode.makeResNode(this, entry.resource, null, null, null, null));
            break;
          }
        }
      }
      return out;
    },
  },
};

const now = () => Number(process.hrtime.bigint()) / 1e9;

// Evaluations per second over at least `seconds`, in batches sized so that
// the clock is read about every 10 ms.
async function measure(evaluate, seconds, isAsync) {
  let batch = 1;
  let count = 0;
  const start = now();
  let elapsed = 0;
  while (elapsed < seconds) {
    const t0 = now();
    if (isAsync) {
      for (let i = 0; i < batch; i++) await evaluate();
    } else {
      for (let i = 0; i < batch; i++) evaluate();
    }
    const t = now() - t0;
    count += batch;
    elapsed = now() - start;
    if (t < 0.01) batch *= 2;
  }
  return count / elapsed;
}

function formatRate(rate) {
  return rate >= 100 ? String(Math.round(rate)) : rate.toFixed(2);
}

async function main() {
  const args = process.argv.slice(2);
  let stock = false;
  const files = [];
  const chosen = [];
  let bad = false;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--stock-resolve') stock = true;
    else if (args[i] === '--expression' && i + 1 < args.length) chosen.push(args[++i]);
    else if (args[i].startsWith('--')) bad = true;
    else files.push(args[i]);
  }
  if (files.length !== 2 || bad) {
    console.error('usage: node bench/fhirpath_reference.js SMALL.json LARGE.json [--stock-resolve] [--expression EXPR]...');
    process.exit(2);
  }
  const expressions = chosen.length ? chosen : EXPRESSIONS;
  console.error(`fhirpath.js ${fhirpath.version}, R4 model, node ${process.version}; resolve(): ` +
    (stock ? "fhirpath.js's own (async)" : 'within the Bundle (userInvocationTable)'));

  for (const file of files) {
    const resource = JSON.parse(fs.readFileSync(file, 'utf8'));
    const name = path.basename(file);
    const env = { resource };
    for (const expression of expressions) {
      const options = stock ? { async: true } : { userInvocationTable: bundleResolve };
      const compiled = fhirpath.compile(expression, r4model, options);
      let first;
      try {
        first = compiled(resource, env);
        const isAsync = first instanceof Promise;
        if (isAsync) first = await first;
        console.error(`${name}\t${expression}\t=> ${JSON.stringify(first)}`);
        const evaluate = () => compiled(resource, env);
        await measure(evaluate, WARMUP_SECONDS, isAsync);
        let best = 0;
        for (let run = 0; run < RUNS; run++) best = Math.max(best, await measure(evaluate, RUN_SECONDS, isAsync));
        console.log(`${name}\t${expression}\t${formatRate(best)}`);
      } catch (e) {
        const message = String(e && e.message ? e.message : e).split('\n')[0];
        console.error(`${name}\t${expression}\t=> error: ${message}`);
        console.log(`${name}\t${expression}\terror: ${message}`);
      }
    }
  }
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exitCode = 1;
});
