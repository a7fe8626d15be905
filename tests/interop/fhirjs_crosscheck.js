#!/usr/bin/env node
// Independent cross-check of courier's FHIR XML output against FHIR.js.
//
//   node fhirjs_crosscheck.js COURIER_BINARY FOLDER [--limit N] [--jobs N]
//                             [--compact] [--no-exclusions]
//
// For every *.json resource in FOLDER this runs `COURIER_BINARY convert --to xml`,
// reads the XML back with FHIR.js (npm package `fhir`, a converter written
// independently of courier) and compares the result, by meaning, with the
// original JSON. One line is printed per failure, then a summary line:
//
//   fhirjs cross-check: N passed, M failed, K excluded
//
// Exit status is 1 when anything failed or when no file was checked at all.
//
// Options:
//   --limit N        check only the first N files (sorted by name)
//   --jobs N         courier conversions run at once (1 or 2, default 2)
//   --compact        pass --compact to courier (checks the unindented output)
//   --no-exclusions  ignore fhirjs_exclusions.txt (to see whether entries still fail)
//
// Files skipped without being counted: package.json (an npm package manifest,
// not a FHIR resource) and files larger than 5 MiB (in the R4 example package
// these are only the big definition bundles; leaving them out bounds the run's
// time and memory).
//
// What is normalised, and why (everything else must match exactly):
//   1. Object key order is ignored: JSON object members and FHIR.js's output
//      (which follows StructureDefinition order) are unordered by meaning.
//   2. Numbers: integer-typed elements come back from FHIR.js as JS numbers and
//      are compared numerically. Decimal-typed elements come back as the exact
//      text of the XML value attribute (FHIR.js's xmlToObj does not turn them
//      into numbers), so they are compared with the exact text of the number in
//      the original JSON file. That is stricter than a numeric comparison on
//      purpose: in FHIR, 1.50 and 1.5 differ in precision, and courier has to
//      keep it.
//   3. Arrays of primitive extras (`_given` and the like): FHIR.js pads them
//      with null only up to the last entry that has an id/extension, so
//      trailing nulls are not significant on either side.
//   4. Narrative `div` strings are parsed with the small XHTML reader below and
//      compared as trees: attribute order and quoting, entity and character
//      references, CDATA versus escaped text, and empty-element syntax are all
//      serialisation details (FHIR.js re-serialises the div with xml-js).
//      Whitespace-only text nodes are dropped on both sides, because the parser
//      inside FHIR.js (xml-js, captureSpacesBetweenElements=false) throws them
//      away before we ever see its result. All other text is compared exactly.
//   5. An empty array in FHIR.js's result where the original has no such key
//      counts as absent. FHIR.js starts every repeating element it meets with
//      [] and then pushes only elements that have a value attribute, so
//      `_event` without `event` comes back with `event: []`. FHIR JSON never
//      has empty arrays, so this carries no meaning; and the structural check
//      below separately rejects an empty XML element, which is the one courier
//      bug this rule could otherwise hide.
//
// FHIR.js on its own is lenient in ways that would let broken XML through, so
// two checks of courier's XML run before it:
//   - Its parser swallows well-formedness errors, ignores namespaces and takes
//     any property written as an attribute. So the XML is first read with sax,
//     the XML parser that ships inside the `fhir` package (no extra
//     dependency), in strict mode: it must be well-formed; every element
//     outside a narrative must be in the FHIR namespace, carry only the
//     attributes FHIR XML uses (value, id, url), have no text content and not
//     be empty (FHIR's ele-1: a value attribute or child elements); narrative
//     divs must be XHTML.
//   - Its reader looks properties up by name, so it accepts elements in any
//     order, drops unknown ones and lets a repeated single element overwrite
//     the first. So the element names are also checked, against FHIR.js's own
//     R4 definitions, for being defined, in StructureDefinition order, and
//     repeated only where the element repeats.

'use strict';

const fs = require('fs');
const path = require('path');
const { execFile } = require('child_process');
const Fhir = require('fhir').Fhir;
// sax is bundled inside the fhir package (bundleDependencies), so it is always
// present with fhir 4.12.0; it is not a dependency of this project of its own.
const sax = require(path.join(path.dirname(require.resolve('fhir/package.json')), 'node_modules', 'sax'));

const FHIR_NS = 'http://hl7.org/fhir';
const XHTML_NS = 'http://www.w3.org/1999/xhtml';
const MAX_BYTES = 5 * 1024 * 1024;
const EXCLUSIONS_FILE = path.join(__dirname, 'fhirjs_exclusions.txt');

// ---------------------------------------------------------------------------
// Reading the original JSON without losing the text of its numbers.

// A JSON number as written in the source file.
class LexNumber {
  constructor(text) { this.text = text; }
  toString() { return this.text; }
}

// Strings cannot contain a raw NUL in valid FHIR, so this marker cannot clash
// with a real value; parseJsonKeepingNumbers checks anyway.
const NUM_MARK = '\u0000num:';

// JSON.parse turns 1.50 into 1.5 (and Node 20 has no reviver source text), so
// every number token outside a string is first rewritten as a marked string.
function parseJsonKeepingNumbers(text) {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const parts = [];
  const numberRe = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  let copiedUpTo = 0;
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      i++;
      while (i < text.length && text.charCodeAt(i) !== 0x22) i += text.charCodeAt(i) === 0x5c /* \ */ ? 2 : 1;
      i++;
    } else if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
      numberRe.lastIndex = i;
      const m = numberRe.exec(text);
      if (!m) throw new Error('bad number at offset ' + i);
      parts.push(text.slice(copiedUpTo, i), JSON.stringify(NUM_MARK + m[0]));
      i += m[0].length;
      copiedUpTo = i;
    } else {
      i++;
    }
  }
  parts.push(text.slice(copiedUpTo));
  return JSON.parse(parts.join(''), (key, value) => {
    if (typeof value !== 'string' || !value.startsWith('\u0000')) return value;
    if (!value.startsWith(NUM_MARK)) throw new Error('string starting with NUL in source');
    return new LexNumber(value.slice(NUM_MARK.length));
  });
}

// ---------------------------------------------------------------------------
// Strict structural check of courier's XML (what FHIR.js cannot see).

// Returns { problem } or { tree }: tree is the FHIR elements by local name,
// { name, children }, with each narrative div as a leaf.
function structuralCheck(xml) {
  const parser = sax.parser(true, { xmlns: true, strictEntities: true, position: true });
  const stack = []; // { uri, local, hasValue, node }
  let tree = null;
  let problem = null;
  const fail = (msg) => {
    if (!problem) problem = msg + ' (line ' + (parser.line + 1) + ')';
  };
  parser.onerror = (err) => {
    fail('not well-formed XML: ' + String(err.message).split('\n')[0]);
    throw err; // stop parsing; caught below
  };
  parser.onopentag = (tag) => {
    // sax accepts a raw '<' inside a quoted attribute value, which XML forbids
    // (and which FHIR.js would then read back as if it had been escaped).
    // parser.startTagPosition is just past the tag's '<', parser.position just
    // past its '>'.
    if (xml.slice(parser.startTagPosition, parser.position).includes('<')) {
      fail('raw "<" inside the tag <' + tag.name + '>');
    }
    const parent = stack[stack.length - 1];
    const inXhtml = parent && parent.uri === XHTML_NS;
    if (!parent) {
      if (tag.uri !== FHIR_NS) fail('root element <' + tag.name + '> is not in the FHIR namespace');
    } else if (inXhtml) {
      if (tag.uri !== XHTML_NS) fail('<' + tag.name + '> inside a narrative is not in the XHTML namespace');
    } else if (tag.uri === XHTML_NS) {
      if (tag.local !== 'div') fail('XHTML element <' + tag.name + '> outside a narrative div');
    } else if (tag.uri !== FHIR_NS) {
      fail('<' + tag.name + '> is in namespace "' + tag.uri + '", not the FHIR namespace');
    }
    if (tag.uri === FHIR_NS) {
      for (const a of Object.values(tag.attributes)) {
        if (a.prefix === 'xmlns' || a.name === 'xmlns') continue; // namespace declaration
        if (a.uri !== '' || !['value', 'id', 'url'].includes(a.local)) {
          fail('unexpected attribute ' + a.name + ' on <' + tag.name + '>');
        }
      }
    }
    let node = null;
    if (!inXhtml) {
      node = { name: tag.local, children: [] };
      if (parent) parent.node.children.push(node); else tree = node;
    }
    const hasValue = Object.values(tag.attributes).some((a) => a.uri === '' && a.local === 'value');
    stack.push({ uri: tag.uri, local: tag.local, hasValue, node });
  };
  parser.onclosetag = () => {
    const el = stack.pop();
    // FHIR's ele-1: every element has a value or child elements.
    if (el.uri === FHIR_NS && !el.hasValue && el.node.children.length === 0) {
      fail('empty FHIR element <' + el.local + '> (no value attribute, no child elements: FHIR ele-1)');
    }
  };
  const onText = (t) => {
    const top = stack[stack.length - 1];
    if (top && top.uri === FHIR_NS && t.trim() !== '') fail('text content inside FHIR element <' + top.local + '>');
  };
  parser.ontext = onText;
  parser.oncdata = onText;
  try {
    parser.write(xml).close();
  } catch (e) {
    if (!problem) problem = 'not well-formed XML: ' + String(e.message).split('\n')[0];
  }
  return problem ? { problem } : { tree };
}

// FHIR.js reads XML by looking each property up by name, so it accepts
// elements in any order, silently drops names it does not know, and lets a
// repeated single-valued element overwrite the first. FHIR XML fixes the order
// (the StructureDefinition's), so this walks courier's element tree against
// the R4 definitions that ship with FHIR.js (profiles/types.json, the same
// ones its reader uses) and reports the first element that is unknown, out of
// order, or repeated without being a repeating element.
function makeOrderChecker(defs) {
  const indexCache = new WeakMap();
  // Property name -> position, for one _properties list; the `_name` entries
  // FHIR.js adds for primitive extras have no XML element of their own.
  const indexOf = (props) => {
    let m = indexCache.get(props);
    if (!m) {
      m = new Map();
      props.forEach((p, k) => { if (!p._name.startsWith('_')) m.set(p._name, k); });
      indexCache.set(props, m);
    }
    return m;
  };
  const typeProps = (typeName) => (defs[typeName] ? defs[typeName]._properties || [] : null);
  // '#Questionnaire.item' points at the definition of another element.
  const referencedProps = (ref) => {
    const [resource, ...steps] = ref.slice(1).split('.');
    let props = typeProps(resource);
    for (const step of steps) {
      const p = props && props.find((x) => x._name === step);
      props = p ? p._properties || null : null;
    }
    return props;
  };
  const childProps = (prop) => {
    if (prop._type.startsWith('#')) return referencedProps(prop._type);
    // As in FHIR.js's reader: only these carry their own property list (other
    // properties have an empty _properties and take their type's).
    if (prop._type === 'BackboneElement' || prop._type === 'Element') return prop._properties;
    return typeProps(prop._type);
  };
  const check = (node, props, where) => {
    if (!props) return where + ': no definition for <' + node.name + '> in FHIR.js';
    const index = indexOf(props);
    let last = -1;
    let lastName = null;
    for (const child of node.children) {
      const here = where + '/' + child.name;
      const k = index.get(child.name);
      if (k === undefined) return here + ': element not defined in R4 here';
      if (k < last) return here + ': out of order (comes after <' + lastName + '>)';
      const prop = props[k];
      if (k === last && !prop._multiple) return here + ': repeated, but it is not a repeating element';
      last = k;
      lastName = child.name;
      let d = null;
      if (prop._type === 'xhtml') {
        continue;
      } else if (prop._type === 'Resource') {
        // <contained>, <resource>, <outcome>...: the resource element inside.
        if (child.children.length !== 1) return here + ': must hold exactly one resource';
        const inner = child.children[0];
        d = check(inner, typeProps(inner.name), here + '/' + inner.name);
      } else {
        d = check(child, childProps(prop), here);
      }
      if (d) return d;
    }
    return null;
  };
  return (tree) => check(tree, typeProps(tree.name), tree.name);
}

// ---------------------------------------------------------------------------
// A small XHTML reader for comparing narrative divs as trees.

const NAMED_ENTITIES = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decodeEntities(s) {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[A-Za-z][A-Za-z0-9]*);/g, (whole, ref) => {
    if (ref[0] === '#') {
      const code = ref[1] === 'x' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      return String.fromCodePoint(code);
    }
    // An unknown named entity stays as written on both sides; the strict
    // structural check already rejects it in courier's XML.
    return Object.prototype.hasOwnProperty.call(NAMED_ENTITIES, ref) ? NAMED_ENTITIES[ref] : whole;
  });
}

// Returns the root element as { name, attrs: Map, children: [...] }; text and
// comment children are { text } and { comment }.
function parseXhtml(s) {
  const root = { name: '#document', attrs: new Map(), children: [] };
  const stack = [root];
  let i = 0;
  const top = () => stack[stack.length - 1];
  const addText = (t) => {
    const kids = top().children;
    const last = kids[kids.length - 1];
    if (last && last.text !== undefined) last.text += t; else kids.push({ text: t });
  };
  const expectEnd = (marker, from) => {
    const end = s.indexOf(marker, from);
    if (end < 0) throw new Error('unterminated ' + marker);
    return end;
  };
  while (i < s.length) {
    if (s.startsWith('<!--', i)) {
      const end = expectEnd('-->', i + 4);
      top().children.push({ comment: s.slice(i + 4, end) });
      i = end + 3;
    } else if (s.startsWith('<![CDATA[', i)) {
      const end = expectEnd(']]>', i + 9);
      addText(s.slice(i + 9, end));
      i = end + 3;
    } else if (s.startsWith('<?', i)) {
      const end = expectEnd('?>', i + 2);
      top().children.push({ comment: '?' + s.slice(i + 2, end) });
      i = end + 2;
    } else if (s.startsWith('</', i)) {
      const end = expectEnd('>', i + 2);
      const name = s.slice(i + 2, end).trim();
      const open = stack.pop();
      if (!open || open === root || open.name !== name) throw new Error('mismatched </' + name + '>');
      i = end + 1;
    } else if (s[i] === '<') {
      const nameMatch = /[^\s/>]+/y;
      nameMatch.lastIndex = i + 1;
      const m = nameMatch.exec(s);
      if (!m) throw new Error('bad tag at ' + i);
      const el = { name: m[0], attrs: new Map(), children: [] };
      i = nameMatch.lastIndex;
      for (;;) {
        while (/\s/.test(s[i] || '')) i++;
        if (s.startsWith('/>', i)) { i += 2; top().children.push(el); break; }
        if (s[i] === '>') { i += 1; top().children.push(el); stack.push(el); break; }
        const eq = s.indexOf('=', i);
        if (eq < 0) throw new Error('bad attribute in <' + el.name + '>');
        const attrName = s.slice(i, eq).trim();
        i = eq + 1;
        while (/\s/.test(s[i] || '')) i++;
        const quote = s[i];
        if (quote !== '"' && quote !== "'") throw new Error('unquoted attribute ' + attrName);
        // Read up to the matching quote without rejecting '<': xml-js (inside
        // FHIR.js) writes a decoded '<' back into attribute values unescaped.
        const close = expectEnd(quote, i + 1);
        if (el.attrs.has(attrName)) throw new Error('duplicate attribute ' + attrName);
        el.attrs.set(attrName, decodeEntities(s.slice(i + 1, close)));
        i = close + 1;
      }
    } else {
      const next = s.indexOf('<', i);
      const end = next < 0 ? s.length : next;
      addText(decodeEntities(s.slice(i, end)));
      i = end;
    }
  }
  if (stack.length !== 1) throw new Error('unclosed <' + top().name + '>');
  dropBlankText(root);
  const elements = root.children.filter((c) => c.name !== undefined);
  if (elements.length !== 1 || root.children.length !== 1) throw new Error('expected exactly one root element');
  return elements[0];
}

// See the header: whitespace-only text nodes never survive FHIR.js's parser.
function dropBlankText(node) {
  node.children = node.children.filter((c) => !(c.text !== undefined && c.text.trim() === ''));
  for (const c of node.children) if (c.children) dropBlankText(c);
}

const show = (v) => {
  const s = JSON.stringify(v instanceof LexNumber ? v.text : v);
  return s === undefined ? 'nothing' : s.length > 80 ? s.slice(0, 77) + '...' : s;
};

// "expected X, FHIR.js gave Y"; long strings are cut around the first
// character that differs, so the difference stays visible.
function contrast(expected, actual) {
  if (typeof expected === 'string' && typeof actual === 'string' && (expected.length > 80 || actual.length > 80)) {
    let k = 0;
    while (k < expected.length && expected[k] === actual[k]) k++;
    const from = Math.max(0, k - 30);
    const cut = (str) => (from > 0 ? '...' : '') + JSON.stringify(str.slice(from, k + 30)) + (k + 30 < str.length ? '...' : '');
    return 'differs at character ' + k + ': expected ' + cut(expected) + ', FHIR.js gave ' + cut(actual);
  }
  return 'expected ' + show(expected) + ', FHIR.js gave ' + show(actual);
}

function kind(n) {
  return n.name !== undefined ? '<' + n.name + '>' : n.text !== undefined ? 'text ' + show(n.text) : 'comment ' + show(n.comment);
}

// First difference between two parsed XHTML trees, or null.
function diffXhtml(a, b, where) {
  if (a.name !== b.name) return where + ': element <' + a.name + '> became <' + b.name + '>';
  const names = new Set([...a.attrs.keys(), ...b.attrs.keys()]);
  for (const n of names) {
    if (a.attrs.get(n) !== b.attrs.get(n)) {
      return where + '/@' + n + ': ' + contrast(a.attrs.get(n), b.attrs.get(n));
    }
  }
  const counts = {};
  for (let k = 0; k < Math.max(a.children.length, b.children.length); k++) {
    const x = a.children[k];
    const y = b.children[k];
    const label = x ? (x.name || (x.text !== undefined ? 'text()' : 'comment()')) : 'node()';
    counts[label] = (counts[label] || 0) + 1;
    const here = where + '/' + label + '[' + counts[label] + ']';
    if (!x) return here + ': unexpected ' + kind(y);
    if (!y) return here + ': missing ' + kind(x);
    if (x.name !== undefined && y.name !== undefined) {
      const d = diffXhtml(x, y, here);
      if (d) return d;
    } else if (x.text !== undefined && y.text !== undefined) {
      if (x.text !== y.text) return here + ': ' + contrast(x.text, y.text);
    } else if (x.comment !== undefined && y.comment !== undefined) {
      if (x.comment !== y.comment) return here + ': comment ' + contrast(x.comment, y.comment);
    } else {
      return here + ': expected ' + kind(x) + ', FHIR.js gave ' + kind(y);
    }
  }
  return null;
}

function diffDiv(expected, actual, where) {
  if (typeof actual !== 'string') return where + ': expected narrative div, FHIR.js gave ' + show(actual);
  let a;
  let b;
  try { a = parseXhtml(expected); } catch (e) { return where + ': cannot read original div: ' + e.message; }
  try { b = parseXhtml(actual); } catch (e) { return where + ': cannot read FHIR.js div: ' + e.message; }
  return diffXhtml(a, b, where);
}

// ---------------------------------------------------------------------------
// Comparing the original JSON with FHIR.js's object.

function stripTrailingNulls(arr) {
  let n = arr.length;
  while (n > 0 && arr[n - 1] === null) n--;
  return arr.slice(0, n);
}

// Returns a description of the first difference, or null when equal.
function diff(expected, actual, where, key) {
  if (expected instanceof LexNumber) {
    if (typeof actual === 'number') {
      return Number(expected.text) === actual ? null : where + ': expected ' + expected.text + ', FHIR.js gave ' + actual;
    }
    if (typeof actual === 'string') {
      // A decimal: FHIR.js keeps the attribute text (see the header, item 2).
      return actual === expected.text ? null : where + ': expected decimal ' + expected.text + ', FHIR.js gave ' + show(actual);
    }
    return where + ': expected number ' + expected.text + ', FHIR.js gave ' + show(actual);
  }
  if (expected === null) {
    return actual === null || actual === undefined ? null : where + ': expected null, FHIR.js gave ' + show(actual);
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return where + ': expected an array, FHIR.js gave ' + show(actual);
    let e = expected;
    let a = actual;
    if (key && key.startsWith('_')) { // item 3 of the header
      e = stripTrailingNulls(e);
      a = stripTrailingNulls(a);
    }
    for (let k = 0; k < Math.max(e.length, a.length); k++) {
      if (k >= a.length) return where + '[' + k + ']: missing, expected ' + show(e[k]);
      if (k >= e.length) return where + '[' + k + ']: unexpected ' + show(a[k]);
      const d = diff(e[k], a[k], where + '[' + k + ']', key);
      if (d) return d;
    }
    return null;
  }
  if (typeof expected === 'object') {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) {
      return where + ': expected an object, FHIR.js gave ' + show(actual);
    }
    for (const k of Object.keys(expected)) {
      const here = where ? where + '.' + k : k;
      if (!(k in actual)) return here + ': missing in FHIR.js result (expected ' + show(expected[k]) + ')';
      const d = k === 'div' && typeof expected[k] === 'string'
        ? diffDiv(expected[k], actual[k], here)
        : diff(expected[k], actual[k], here, k);
      if (d) return d;
    }
    for (const k of Object.keys(actual)) {
      if (!(k in expected) && Array.isArray(actual[k]) && actual[k].length === 0) continue; // item 5
      if (!(k in expected)) return (where ? where + '.' + k : k) + ': unexpected in FHIR.js result: ' + show(actual[k]);
    }
    return null;
  }
  // string or boolean
  return expected === actual ? null : where + ': ' + contrast(expected, actual);
}

// ---------------------------------------------------------------------------
// Driver.

function usage(msg) {
  if (msg) console.error(msg);
  console.error('usage: node fhirjs_crosscheck.js COURIER_BINARY FOLDER [--limit N] [--jobs N] [--compact] [--no-exclusions]');
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { positional: [], limit: Infinity, jobs: 2, compact: false, exclusions: true };
  for (let k = 0; k < argv.length; k++) {
    const a = argv[k];
    const num = () => {
      const v = Number(argv[++k]);
      if (!Number.isInteger(v) || v < 1) usage(a + ' needs a positive integer');
      return v;
    };
    if (a === '--limit') opts.limit = num();
    else if (a === '--jobs') opts.jobs = Math.min(num(), 2); // the machine has 2 cores
    else if (a === '--compact') opts.compact = true;
    else if (a === '--no-exclusions') opts.exclusions = false;
    else if (a.startsWith('--')) usage('unknown option ' + a);
    else opts.positional.push(a);
  }
  if (opts.positional.length !== 2) usage();
  if (!fs.statSync(opts.positional[1], { throwIfNoEntry: false })?.isDirectory()) usage('not a folder: ' + opts.positional[1]);
  return opts;
}

// `filename reason...` per line; blank lines and # comments are ignored.
function readExclusions() {
  const map = new Map();
  if (!fs.existsSync(EXCLUSIONS_FILE)) return map;
  for (const raw of fs.readFileSync(EXCLUSIONS_FILE, 'utf8').split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(\S+)\s+(\S.*)$/.exec(line);
    if (!m) throw new Error(EXCLUSIONS_FILE + ': an exclusion needs a reason: ' + line);
    map.set(m[1], m[2]);
  }
  return map;
}

function runCourier(binary, file, compact) {
  const args = ['convert', '--to', 'xml'];
  if (compact) args.push('--compact');
  args.push(file);
  return new Promise((resolve) => {
    execFile(binary, args, { maxBuffer: 1 << 30, timeout: 300000, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) {
        const why = err.killed ? 'timed out' : 'exited with ' + (err.code !== undefined ? err.code : err.signal);
        resolve({ error: 'courier convert ' + why + ': ' + String(stderr || err.message).trim().split('\n')[0] });
      } else {
        resolve({ xml: stdout });
      }
    });
  });
}

function checkOne(fhir, checkOrder, file, xml) {
  const expected = parseJsonKeepingNumbers(fs.readFileSync(file, 'utf8'));
  const structural = structuralCheck(xml);
  if (structural.problem) return structural.problem;
  const order = checkOrder(structural.tree);
  if (order) return 'element order: ' + order;
  let actual;
  try {
    actual = fhir.xmlToObj(xml);
  } catch (e) {
    return 'FHIR.js could not read the XML: ' + e.message;
  }
  return diff(expected, actual, '', null);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const [binary, folder] = opts.positional;
  const exclusions = opts.exclusions ? readExclusions() : new Map();

  const skipped = [];
  const excluded = [];
  const files = [];
  for (const name of fs.readdirSync(folder).filter((n) => n.endsWith('.json')).sort()) {
    if (files.length >= opts.limit) break;
    const full = path.join(folder, name);
    if (name === 'package.json') { skipped.push(name + ' (npm manifest)'); continue; }
    if (fs.statSync(full).size > MAX_BYTES) { skipped.push(name + ' (larger than 5 MiB)'); continue; }
    if (exclusions.has(name)) { excluded.push(name); continue; }
    files.push(name);
  }

  const fhir = new Fhir(); // loads the R4 definitions once
  const checkOrder = makeOrderChecker(fhir.parser.parsedStructureDefinitions);
  let passed = 0;
  let failed = 0;
  const results = new Array(files.length);
  let printed = 0;
  // Conversions finish out of order; print failures in file-name order.
  const flush = () => {
    while (printed < files.length && results[printed] !== undefined) {
      if (results[printed] !== null) console.log('FAIL ' + files[printed] + ': ' + results[printed]);
      printed++;
    }
  };

  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const k = next++;
      const file = path.join(folder, files[k]);
      const out = await runCourier(binary, file, opts.compact);
      let problem;
      if (out.error) {
        problem = out.error;
      } else {
        try {
          problem = checkOne(fhir, checkOrder, file, out.xml);
        } catch (e) {
          problem = 'cross-check error: ' + e.message;
        }
      }
      if (problem) failed++; else passed++;
      results[k] = problem || null;
      flush();
    }
  };
  await Promise.all(Array.from({ length: opts.jobs }, worker));

  if (skipped.length) console.log('skipped: ' + skipped.join(', '));
  console.log('fhirjs cross-check: ' + passed + ' passed, ' + failed + ' failed, ' + excluded.length + ' excluded');
  process.exit(failed > 0 || passed + failed === 0 ? 1 : 0);
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
