#!/usr/bin/env node
// Independent cross-check of courier's FHIRPath engine against fhirpath.js
// (npm `fhirpath`, HL7's reference JavaScript implementation, with its R4
// model).
//
//   node fhirpath_crosscheck.js COURIER_BINARY [--jobs N] [--verbose]
//                                              [--cases FILE]
//
// The cases are in fhirpath_cases.json beside this script: each names an R4
// example resource in ../data/fhir-examples and a FHIRPath expression. For each
// case this runs
//
//   COURIER_BINARY fhirpath --input FILE EXPRESSION
//
// and fhirpath.evaluate(resource, EXPRESSION, {resource}, r4model), brings both
// results into one comparable form (below) and compares them. One line is
// printed per mismatch (MISMATCH FILE :: EXPRESSION :: courier RESULT ::
// fhirpath.js RESULT, or :: expected RESULT for a reference_wrong case), then a
// summary line:
//
//   fhirpath cross-check: N passed, M failed
//
// Exit status is 1 when any case failed or when no case ran at all.
//
// Options:
//   --jobs N     courier processes run at once (1 or 2, default 2)
//   --verbose    print both results for every case, not only for mismatches
//   --cases FILE another cases file (same format)
//
// Case fields:
//   file             the resource, relative to tests/data/fhir-examples
//   expression       the FHIRPath expression
//   unordered        true where FHIRPath does not define the order of the
//                    result (union, distinct(), descendants(), repeat()): both
//                    collections are then compared as multisets
//   reference_wrong  why fhirpath.js's answer is not the spec's (checked by
//                    hand against FHIRPath 2.0 / FHIR R4). Such a case is not
//                    compared with fhirpath.js: it passes only when courier
//                    gives `expected`. fhirpath.js is still run, and a note is
//                    printed if it has started to agree with `expected` (the
//                    mark can then go).
//   expected         the spec-correct result, written as courier writes it
//                    ([{"type": ..., "value": ...}, ...], or {"error": KIND})
//   note             free text, for the reader
//
// Comparable form of one result item: a kind and a value.
//   Kind: FHIR and System primitive types fall into families, because
//   fhirpath.js and the FHIR model do not agree on where System types stop
//   (fhirpath.js types %resource.id as System.String, courier as FHIR id):
//     boolean; integer (integer, positiveInt, unsignedInt); decimal;
//     string (string, code, id, uri, url, canonical, oid, uuid, markdown,
//     base64Binary, xhtml); date; dateTime (dateTime, instant); time;
//   every other type (Quantity, HumanName, Patient, ...) is compared by name.
//   Value: numbers are compared numerically (fhirpath.js turns decimals into
//   JS numbers, so 1.50 and 1.5 cannot be told apart on its side); dates and
//   times as their text without courier's '@' / '@T'; System Quantities as a
//   number and the unit text ("4 'mg'", "1 year"); FHIR complex values and
//   resources as JSON, by deep equality with key order ignored and numbers
//   compared numerically.
//   An invalid expression or a run-time error is {error}: two errors agree
//   whatever their messages (courier's kind is shown in the report).
//
// fhirpath.js's resolve() is asynchronous, so every case is evaluated with
// {async: true}. resolve() fetches absolute http(s) references and refuses
// relative ones without a server URL: it never looks inside a Bundle.
// Network access is cut off here: global fetch is replaced by one that fails
// at once (the count of such attempts is shown with --verbose), so the check
// never reaches out of the machine.

'use strict';

const fs = require('fs');
const path = require('path');
const { execFile } = require('child_process');
const fhirpath = require('fhirpath');
const r4model = require('fhirpath/fhir-context/r4');

const EXAMPLES = path.join(__dirname, '..', 'data', 'fhir-examples');
const DEFAULT_CASES = path.join(__dirname, 'fhirpath_cases.json');

// ---------------------------------------------------------------------------
// No network: fhirpath.js's resolve() would fetch absolute references.

const blockedFetches = [];
globalThis.fetch = (url) => {
  blockedFetches.push(String(url));
  return Promise.reject(new TypeError('network access is disabled in fhirpath_crosscheck.js'));
};

// ---------------------------------------------------------------------------
// Comparable form.

const KIND = {
  boolean: 'boolean',
  integer: 'integer', positiveint: 'integer', unsignedint: 'integer',
  decimal: 'decimal',
  string: 'string', code: 'string', id: 'string', uri: 'string', url: 'string',
  canonical: 'string', oid: 'string', uuid: 'string', markdown: 'string',
  base64binary: 'string', xhtml: 'string',
  date: 'date', datetime: 'dateTime', instant: 'dateTime', time: 'time',
};

function kindOf(typeName) {
  const bare = String(typeName).replace(/^(FHIR|System)\./, '');
  return KIND[bare.toLowerCase()] || bare;
}

// "4 'mg'" / "1 year" / "8.0 'kPa'" → { number, unit }
function parseQuantityText(text) {
  const m = /^(\S+)\s+(.+)$/.exec(String(text).trim());
  if (!m || Number.isNaN(Number(m[1]))) return { text: String(text) };
  return { number: Number(m[1]), unit: m[2] };
}

function normaliseCourierItem(item) {
  const kind = kindOf(item.type);
  let value = item.value;
  if (kind === 'date' || kind === 'dateTime' || kind === 'time') {
    value = String(value).replace(/^@T?/, '');
  } else if (kind === 'integer' || kind === 'decimal') {
    value = Number(value);
  } else if (kind === 'Quantity' && typeof value === 'string') {
    value = parseQuantityText(value);
  }
  return { kind, value };
}

// One item of a result obtained with {resolveInternalTypes: false}.
function normaliseReferenceItem(raw) {
  const type = fhirpath.types([raw])[0];
  const kind = kindOf(type);
  const resolved = fhirpath.resolveInternalTypes([raw]);
  // A primitive with only an id/extension and no value is dropped by
  // resolveInternalTypes; keep it visible.
  let value = resolved.length ? resolved[0] : null;
  const shown = value;
  if (kind === 'Quantity' && typeof value === 'string') value = parseQuantityText(value);
  else if ((kind === 'integer' || kind === 'decimal') && value !== null) value = Number(value);
  else if ((kind === 'date' || kind === 'dateTime' || kind === 'time') && value !== null) value = String(value);
  return { kind, value, shown: { type, value: shown } };
}

function numbersEqual(a, b) {
  if (a === b) return true;
  return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
}

function deepEqual(a, b) {
  if (typeof a === 'number' && typeof b === 'number') return numbersEqual(a, b);
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return a === b;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  const ka = Object.keys(a).filter((k) => a[k] !== undefined).sort();
  const kb = Object.keys(b).filter((k) => b[k] !== undefined).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && deepEqual(a[k], b[k]));
}

// A stable text for sorting unordered collections (keys sorted, numbers in
// one spelling).
function canonical(v) {
  if (typeof v === 'number') return 'n:' + String(Number(v.toPrecision(12)));
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return '[' + v.map(canonical).join(',') + ']';
  return '{' + Object.keys(v).filter((k) => v[k] !== undefined).sort()
    .map((k) => JSON.stringify(k) + ':' + canonical(v[k])).join(',') + '}';
}

function resultsEqual(a, b, unordered) {
  if (a.error !== undefined || b.error !== undefined) return a.error !== undefined && b.error !== undefined;
  let x = a.items;
  let y = b.items;
  if (x.length !== y.length) return false;
  if (unordered) {
    const key = (it) => it.kind + '|' + canonical(it.value);
    x = [...x].sort((p, q) => (key(p) < key(q) ? -1 : key(p) > key(q) ? 1 : 0));
    y = [...y].sort((p, q) => (key(p) < key(q) ? -1 : key(p) > key(q) ? 1 : 0));
  }
  return x.every((it, i) => it.kind === y[i].kind && deepEqual(it.value, y[i].value));
}

function show(result, raw) {
  if (result.error !== undefined) return 'error(' + (raw && raw.error !== undefined ? raw.error : result.error) + ')';
  const text = JSON.stringify(raw !== undefined ? raw : result.items);
  return text.length > 600 ? text.slice(0, 600) + '...' : text;
}

// ---------------------------------------------------------------------------
// Running the two engines.

function runCourier(binary, file, expression) {
  return new Promise((resolve) => {
    execFile(binary, ['fhirpath', '--input', file, expression],
      { maxBuffer: 1 << 28, timeout: 120000, encoding: 'utf8' }, (err, stdout, stderr) => {
        if (err) {
          const m = /^(syntax|semantic|execution): /.exec(stderr || '');
          if (err.code === 1 && m) {
            resolve({ result: { error: m[1] }, raw: { error: stderr.trim() } });
          } else {
            // Anything else (a crash, a time-out, another exit code) can never match.
            resolve({ result: { error: 'courier failed', crash: true },
              raw: { error: 'exit ' + (err.code ?? err.signal) + ': ' + String(stderr).trim().slice(0, 300) } });
          }
          return;
        }
        let items;
        try {
          items = JSON.parse(stdout);
          if (!Array.isArray(items)) throw new Error('not a JSON array');
        } catch (e) {
          resolve({ result: { error: 'unreadable output', crash: true },
            raw: { error: 'unreadable output (' + e.message + '): ' + stdout.slice(0, 300) } });
          return;
        }
        resolve({ result: { items: items.map(normaliseCourierItem) }, raw: items });
      });
  });
}

async function runReference(resourceText, expression) {
  // A fresh copy each time: fhirpath.js annotates the objects it is given.
  const resource = JSON.parse(resourceText);
  try {
    const raw = await fhirpath.evaluate(resource, expression, { resource }, r4model,
      { resolveInternalTypes: false, async: true });
    const items = raw.map(normaliseReferenceItem);
    return { result: { items }, raw: items.map((it) => it.shown) };
  } catch (e) {
    return { result: { error: 'fhirpath.js: ' + String(e.message || e).split('\n')[0] } };
  }
}

function expectedResult(expected) {
  if (expected && !Array.isArray(expected) && expected.error !== undefined) return { error: expected.error };
  return { items: expected.map(normaliseCourierItem) };
}

// ---------------------------------------------------------------------------

function parseArgs(argv) {
  const opts = { positional: [], jobs: 2, verbose: false, cases: DEFAULT_CASES };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--jobs') opts.jobs = Math.max(1, Math.min(2, Number(argv[++i]) || 1));
    else if (a === '--verbose') opts.verbose = true;
    else if (a === '--cases') opts.cases = argv[++i];
    else if (a.startsWith('--')) throw new Error('unknown option ' + a);
    else opts.positional.push(a);
  }
  if (opts.positional.length !== 1) throw new Error('expected one argument, COURIER_BINARY');
  return opts;
}

function validateCase(c, i) {
  const where = 'case ' + (i + 1) + ' (' + JSON.stringify(c.expression) + ')';
  if (typeof c.file !== 'string' || typeof c.expression !== 'string') throw new Error(where + ': needs file and expression');
  if (c.reference_wrong !== undefined) {
    if (typeof c.reference_wrong !== 'string' || !c.reference_wrong) throw new Error(where + ': reference_wrong must give a reason');
    if (c.expected === undefined) throw new Error(where + ': reference_wrong needs expected');
  }
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(e.message);
    console.error('usage: node fhirpath_crosscheck.js COURIER_BINARY [--jobs N] [--verbose] [--cases FILE]');
    process.exit(2);
  }
  const binary = path.resolve(opts.positional[0]);
  const cases = JSON.parse(fs.readFileSync(opts.cases, 'utf8')).cases;
  cases.forEach(validateCase);

  const texts = new Map();
  const resourceText = (file) => {
    if (!texts.has(file)) texts.set(file, fs.readFileSync(path.join(EXAMPLES, file), 'utf8'));
    return texts.get(file);
  };

  // courier runs in up to `jobs` processes; fhirpath.js runs in this process.
  const outcomes = new Array(cases.length);
  let next = 0;
  async function worker() {
    while (next < cases.length) {
      const i = next++;
      const c = cases[i];
      const file = path.join(EXAMPLES, c.file);
      const [cour, ref] = await Promise.all([
        runCourier(binary, file, c.expression),
        runReference(resourceText(c.file), c.expression),
      ]);
      outcomes[i] = { c, cour, ref };
    }
  }
  await Promise.all(Array.from({ length: opts.jobs }, worker));

  let passed = 0;
  let failed = 0;
  for (const { c, cour, ref } of outcomes) {
    const label = c.file + ' :: ' + c.expression;
    let ok;
    let line;
    if (c.reference_wrong !== undefined) {
      const exp = expectedResult(c.expected);
      ok = !cour.result.crash && resultsEqual(cour.result, exp, c.unordered);
      line = label + ' :: courier ' + show(cour.result, cour.raw) + ' :: expected ' + show(exp, c.expected) +
        ' (fhirpath.js, not compared: ' + show(ref.result, ref.raw) + '; see reference_wrong in the cases file)';
      if (resultsEqual(ref.result, exp, c.unordered)) {
        console.log('note: fhirpath.js now gives the expected result for ' + label + ' (reference_wrong may be removed)');
      }
    } else {
      ok = !cour.result.crash && resultsEqual(cour.result, ref.result, c.unordered);
      line = label + ' :: courier ' + show(cour.result, cour.raw) + ' :: fhirpath.js ' + show(ref.result, ref.raw);
    }
    if (ok) passed++; else failed++;
    if (!ok) console.log('MISMATCH ' + line);
    else if (opts.verbose) console.log('ok ' + line);
  }
  if (opts.verbose && blockedFetches.length) {
    console.log('note: fhirpath.js tried to fetch ' + blockedFetches.length + ' URL(s); network access was refused: ' +
      [...new Set(blockedFetches)].join(' '));
  }
  console.log('fhirpath cross-check: ' + passed + ' passed, ' + failed + ' failed');
  process.exitCode = failed > 0 || passed + failed === 0 ? 1 : 0;
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
