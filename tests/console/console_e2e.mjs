// The operator console end to end, as an operator uses it: a real courier
// with API-key peers, a filler that can be made to fail, messages sent with
// curl, and the console in Debian's chromium driven headless by
// playwright-core. Screenshots of the dashboard and a timeline are saved in
// $ARTIFACTS (default: ./artifacts).
//
// Usage: node console_e2e.mjs PATH_TO_COURIER
import { spawn, execFile } from 'node:child_process';
import { createHash, generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const courierBinary = path.resolve(process.argv[2] || path.join(root, 'build', 'courier'));
const artifacts = path.resolve(process.env.ARTIFACTS || path.join(here, 'artifacts'));
const EVENT_SYSTEM = 'http://example.org/fhir/message-events';
const OPS_KEY = `ops-${randomUUID()}`;
const VIEWER_KEY = `viewer-${randomUUID()}`;
const PLACER_KEY = `placer-${randomUUID()}`;
const AUDITOR_KEY = `auditor-${randomUUID()}`;
const sha256 = (text) => createHash('sha256').update(text).digest('hex');

// A token issuer: an EC P-384 key whose public half courier reads from a
// JWKS file, and ES384 tokens signed as an authorisation server would.
const ISSUER = 'https://auth.hospital.invalid';
const AUDIENCE = 'https://courier.hospital.invalid/fhir';
const issuerKey = generateKeyPairSync('ec', { namedCurve: 'P-384' });
function token(subject) {
  const encode = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const unsigned = `${encode({ alg: 'ES384', typ: 'JWT', kid: 'console-test' })}.${encode({
    iss: ISSUER, aud: AUDIENCE, sub: subject, iat: now, exp: now + 300, scope: 'system/*.rs' })}`;
  const signature = sign('sha384', Buffer.from(unsigned), { key: issuerKey.privateKey, dsaEncoding: 'ieee-p1363' });
  return `${unsigned}.${signature.toString('base64url')}`;
}

// ---- a filler: answers ok, or fails with 503 while `failing` -------------

const filler = { failing: false, received: [] };
const fillerServer = http.createServer((request, response) => {
  let body = '';
  request.on('data', (chunk) => { body += chunk; });
  request.on('end', () => {
    const bundle = JSON.parse(body);
    filler.received.push(bundle);
    if (filler.failing) {
      response.writeHead(503, { 'Content-Type': 'application/fhir+json' });
      response.end(JSON.stringify({ resourceType: 'OperationOutcome',
        issue: [{ severity: 'error', code: 'transient', diagnostics: 'the lab system is down' }] }));
      return;
    }
    const header = bundle.entry[0].resource;
    const id = randomUUID();
    response.writeHead(200, { 'Content-Type': 'application/fhir+json' });
    response.end(JSON.stringify({ resourceType: 'Bundle', id: randomUUID(), type: 'message',
      entry: [{ fullUrl: `urn:uuid:${id}`, resource: { resourceType: 'MessageHeader', id,
        eventCoding: header.eventCoding, source: { endpoint: 'http://filler.invalid/fhir' },
        response: { identifier: header.id, code: 'ok' } } }] }));
  });
});

function message(mrn, event = 'order-request') {
  const headerId = randomUUID();
  const requestId = randomUUID();
  return { resourceType: 'Bundle', id: randomUUID(), type: 'message',
    entry: [
      { fullUrl: `urn:uuid:${headerId}`, resource: { resourceType: 'MessageHeader', id: headerId,
        eventCoding: { system: EVENT_SYSTEM, code: event },
        source: { endpoint: 'http://placer.invalid/fhir' }, focus: [{ reference: `urn:uuid:${requestId}` }] } },
      { fullUrl: `urn:uuid:${requestId}`, resource: { resourceType: 'ServiceRequest', id: requestId,
        identifier: [{ system: 'http://placer.invalid/orders', value: `ORD-${mrn}` }],
        status: 'active', intent: 'order', subject: { reference: `urn:uuid:${mrn}` } } },
      { fullUrl: `urn:uuid:${mrn}`, resource: { resourceType: 'Patient', id: mrn,
        identifier: [{ system: 'http://hospital.invalid/mrn', value: mrn }] } },
    ] };
}

// ---- courier --------------------------------------------------------------

const folder = mkdtempSync(path.join(tmpdir(), 'courier-console-'));
let courier = null;
let port = 0;
let mllpPort = 0;

async function startCourier(fillerPort) {
  writeFileSync(path.join(folder, 'routes.yaml'), `- route: orders
  from: fhir
  when:
    event: ${EVENT_SYSTEM}|order-request
  to:
    - name: lab
      pattern: messaging
      endpoint: http://127.0.0.1:${fillerPort}/fhir
      retry: { attempts: 2, backoff: 50ms..50ms }
- route: orders-later
  from: fhir
  when:
    event: ${EVENT_SYSTEM}|order-slow
  to:
    - name: lab
      pattern: messaging
      endpoint: http://127.0.0.1:${fillerPort}/fhir
      retry: { attempts: 3, backoff: 1h..1h }
`);
  writeFileSync(path.join(folder, 'order.json'), JSON.stringify(message('TEST-1')));
  writeFileSync(path.join(folder, 'routes.test.yaml'), `- name: an order goes to the lab
  input: order.json
  expect: { route: orders, destinations: [lab] }
`);
  const jwk = { ...issuerKey.publicKey.export({ format: 'jwk' }), kid: 'console-test', alg: 'ES384', use: 'sig' };
  writeFileSync(path.join(folder, 'jwks.json'), JSON.stringify({ keys: [jwk] }));
  writeFileSync(path.join(folder, 'courier.yaml'), `data-dir: ${path.join(folder, 'data')}
sync-wait: 2s
listeners:
  - name: fhir
    type: http
    address: 127.0.0.1
    port: 0
    authentication: required
    console: ${path.join(root, 'console')}
  - name: mllp
    type: mllp
    address: 127.0.0.1
    port: 0
hl7v2-maps: ${path.join(root, 'schemas', 'hl7v2', 'maps')}
security:
  tokens:
    issuer: ${ISSUER}
    audience: ${AUDIENCE}
    jwks: ${path.join(folder, 'jwks.json')}
  peers:
    - name: night-shift
      token-subject: night-shift-operator
      operator: true
    - name: ops
      api-key-sha256: ${sha256(OPS_KEY)}
      operator: true
      scopes: system/*.rs system/Task.u
    - name: viewer
      api-key-sha256: ${sha256(VIEWER_KEY)}
      scopes: system/Task.r
    - name: ward
      api-key-sha256: ${sha256(PLACER_KEY)}
      scopes: system/MessageHeader.c
    - name: auditor
      api-key-sha256: ${sha256(AUDITOR_KEY)}
      operator: true
      scopes: system/Task.r
routes:
  - ${path.join(folder, 'routes.yaml')}
  - ${path.join(root, 'routes', 'v2-feeds.yaml')}
`);
  courier = spawn(courierBinary, ['run', '--config', path.join(folder, 'courier.yaml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  courier.stderr.on('data', (chunk) => { log += chunk; });
  const deadline = Date.now() + 20000;
  while (!log.includes('courier: ready')) {
    if (Date.now() > deadline || courier.exitCode !== null) throw new Error(`courier did not start:\n${log}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  port = Number(/listener fhir: http on 127\.0\.0\.1:(\d+)/.exec(log)[1]);
  mllpPort = Number(/listener mllp: mllp on 127\.0\.0\.1:(\d+)/.exec(log)[1]);
}

// A placer sends with curl, as the issue's operators would.
function curlSend(bundle) {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'POST',
      '-H', 'Content-Type: application/fhir+json', '-H', `X-API-Key: ${PLACER_KEY}`,
      '--data-binary', JSON.stringify(bundle), `http://127.0.0.1:${port}/fhir/$process-message`],
    (error, stdout) => (error ? reject(error) : resolve(Number(stdout))));
  });
}

// A legacy feed sends HL7 v2 with Debian's mllp_send.
function mllpSend(file) {
  return new Promise((resolve, reject) => {
    execFile('/usr/bin/mllp_send', ['--loose', '--port', String(mllpPort), '--file', file, '127.0.0.1'],
      (error, stdout) => (error ? reject(error) : resolve(stdout)));
  });
}

async function fhirGet(resource, key = OPS_KEY) {
  const response = await fetch(`http://127.0.0.1:${port}/fhir/${resource}`, { headers: { 'X-API-Key': key } });
  return { status: response.status, body: await response.json() };
}

async function eventually(check, what, timeout = 15000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (e) {
      if (Date.now() > deadline) throw e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

// ---- the browser ----------------------------------------------------------

const results = [];
async function step(name, body) {
  const started = Date.now();
  await body();
  results.push(name);
  console.log(`ok   ${name} (${Date.now() - started} ms)`);
}

async function login(page, key, kind = 'api-key') {
  await page.goto(`http://127.0.0.1:${port}/console/`);
  await page.getByLabel('Credential').selectOption(kind);
  await page.getByLabel('Key or token').fill(key);
  await page.getByRole('button', { name: 'Log in' }).click();
}

async function confirmDialog(page) {
  const dialog = page.locator('dialog#confirm');
  await dialog.waitFor({ state: 'visible' });
  await page.getByRole('button', { name: 'Confirm' }).click();
}

async function conversationWith(identifier) {
  const list = await (await fetch(`http://127.0.0.1:${port}/admin/conversations?q=${identifier}`,
    { headers: { 'X-API-Key': OPS_KEY } })).json();
  assert.equal(list.length, 1, `one conversation for ${identifier}`);
  return list[0].id;
}

async function conversationRowFor(page, mrn) {
  const list = await (await fetch(`http://127.0.0.1:${port}/admin/conversations?q=${mrn}`,
    { headers: { 'X-API-Key': OPS_KEY } })).json();
  assert.equal(list.length, 1, `one conversation for ${mrn}`);
  return { id: list[0].id, row: page.locator(`#conversations tr[data-id="${list[0].id}"]`) };
}

async function main() {
  mkdirSync(artifacts, { recursive: true });
  await new Promise((resolve) => fillerServer.listen(0, '127.0.0.1', resolve));
  await startCourier(fillerServer.address().port);
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));

    await step('an unknown key is refused at login', async () => {
      await login(page, 'not-a-key');
      await page.getByText('Login refused').waitFor();
    });

    await step('the operator logs in; the session is an HttpOnly, SameSite=Strict cookie', async () => {
      await login(page, OPS_KEY);
      await page.locator('#who').getByText('ops (operator)').waitFor();
      const cookies = await context.cookies();
      const session = cookies.find((c) => c.name === 'courier_session');
      assert.ok(session, 'a session cookie');
      assert.equal(session.httpOnly, true);
      assert.equal(session.sameSite, 'Strict');
      const stored = await page.evaluate(() => localStorage.length + sessionStorage.length);
      assert.equal(stored, 0, 'nothing in browser storage');
    });

    await step('every control has a label', async () => {
      const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, select, button')]
        .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
        .map((e) => e.outerHTML));
      assert.deepEqual(unlabelled, []);
    });

    await step('the routes page shows the loaded routes, their tests and no problems', async () => {
      await page.getByRole('link', { name: 'Routes' }).click();
      await page.getByRole('region', { name: 'route orders', exact: true }).waitFor();
      await page.getByText('courier check: the files on disk have no problems.').waitFor();
      await page.locator('#route-tests').getByText('an order goes to the lab').waitFor();
      await page.locator('#route-tests').getByText('an admission goes to the FHIR store').waitFor();
      // Its own case, and the three of the shipped v2-feeds route it loads.
      assert.equal(await page.locator('#route-tests td.pass').count(), 4);
      assert.equal(await page.locator('#route-tests td.fail').count(), 0);
    });

    await step('a message sent with curl appears live in the browser', async () => {
      await page.getByRole('link', { name: 'Messages' }).click();
      await page.locator('#conversations[aria-busy="false"]').waitFor();  // the first page is shown
      await page.locator('#live').waitFor();  // the event stream is open: nothing sent now is missed
      const before = await page.locator('#conversations tbody tr').count();
      assert.equal(await curlSend(message('MRN-LIVE')), 200);
      const { row } = await conversationRowFor(page, 'MRN-LIVE');
      await row.waitFor();  // no reload: it came over the event stream
      assert.equal(await page.locator('#conversations tbody tr').count(), before + 1);
      await row.locator('td.state').getByText('accepted').waitFor();
    });

    await step('search by a business identifier finds the conversation', async () => {
      await page.getByLabel('Identifier').fill('ORD-MRN-LIVE');
      await page.getByRole('button', { name: 'Search' }).click();
      await eventually(async () => (await page.locator('#conversations tbody tr').count()) === 1, 'one result');
      await page.getByLabel('Identifier').fill('');
      await page.getByRole('button', { name: 'Search' }).click();
    });

    await step('its timeline is drawn step by step, in order, and a step shows its message', async () => {
      const { id, row } = await conversationRowFor(page, 'MRN-LIVE');
      await row.focus();
      await page.keyboard.press('Enter');  // keyboard navigation into the timeline
      await page.locator('#conversation-title').getByText(`Conversation ${id}`).waitFor();
      const kinds = await page.locator('#timeline g.step').evaluateAll((steps) => steps.map((s) => s.dataset.kind));
      assert.deepEqual(kinds.slice(0, 4), ['received', 'attempt', 'response', 'delivered'], kinds.join(','));
      const parties = await page.locator('#timeline text.party').allTextContents();
      assert.deepEqual(parties, ['placer', 'courier', 'lab']);
      await page.locator('#timeline g.step[data-kind="received"]').focus();
      await page.keyboard.press('Enter');
      await page.locator('#message-panel pre').getByText('"resourceType": "Bundle"').first().waitFor();
      await page.screenshot({ path: path.join(artifacts, 'timeline.png'), fullPage: true });
    });

    await step('a failing filler parks the delivery; replay delivers it', async () => {
      filler.failing = true;
      await page.getByRole('link', { name: 'Messages' }).click();
      const sent = curlSend(message('MRN-PARK'));
      await eventually(async () => (await conversationRowFor(page, 'MRN-PARK')).id, 'the conversation');
      const { id, row } = await conversationRowFor(page, 'MRN-PARK');
      // The placer is told transient-error once retries run out; the delivery waits, parked.
      await row.locator('td.state').getByText('on-hold').waitFor();
      await sent;
      await row.click();
      await page.locator('#timeline g.step[data-kind="parked"]').waitFor();
      await page.locator('#deliveries td.state-parked').waitFor();
      filler.failing = false;
      const replay = page.getByRole('button', { name: /^Replay / });
      await replay.click();
      await confirmDialog(page);
      await page.locator('#deliveries td.state-delivered').waitFor();
      const kinds = await page.locator('#timeline g.step').evaluateAll((steps) => steps.map((s) => s.dataset.kind));
      assert.ok(kinds.indexOf('replayed') > kinds.indexOf('parked'), kinds.join(','));
      assert.ok(kinds.lastIndexOf('delivered') > kinds.indexOf('replayed'), kinds.join(','));
      // The action is in the audit trail, with who did it.
      const audit = await eventually(async () => {
        const found = await fhirGet('AuditEvent?agent-name=ops&subtype=admin&_count=500');
        return (found.body.entry || []).find((e) => (e.resource.entity || []).some((x) =>
          /^\/admin\/deliveries\/\d+\/replay$/.test(x.what.reference)));
      }, 'the replay in the audit trail');
      assert.equal(audit.resource.outcome, '0');
      assert.ok(id > 0);
    });

    await step('a delivery waiting for its retry is retried now', async () => {
      filler.failing = true;
      assert.equal(await curlSend(message('MRN-RETRY', 'order-slow')), 202);  // no answer within sync-wait
      const id = await conversationWith('MRN-RETRY');
      await page.goto(`http://127.0.0.1:${port}/console/#/conversations/${id}`);
      const retry = page.getByRole('button', { name: /^Retry \d+ now$/ });
      await retry.waitFor();  // pending: the next attempt is an hour away
      filler.failing = false;
      await retry.click();
      await confirmDialog(page);
      await page.locator('#deliveries td.state-delivered').waitFor();
      const kinds = await page.locator('#timeline g.step').evaluateAll((steps) => steps.map((s) => s.dataset.kind));
      assert.ok(kinds.includes('retry'), kinds.join(','));
    });

    await step('HL7 v2 from mllp_send is shown segment by segment, each field named', async () => {
      const ack = await mllpSend(path.join(root, 'tests', 'data', 'hl7v2', 'adt_a01.hl7'));
      assert.match(ack, /MSA\|CA\|MSG00001/);
      const id = await conversationWith('MSG00001');  // searched by its MSH-10
      await page.goto(`http://127.0.0.1:${port}/console/#/conversations/${id}`);
      await page.locator('#timeline g.step[data-kind="original"]').click();
      const table = page.locator('#message-panel table.v2');
      await table.getByText('PID-5 Patient Name:').waitFor();
      await table.getByText('MSH-10 Message Control ID:').waitFor();
      assert.equal(await table.locator('th').first().textContent(), 'MSH');
    });

    await step('cancelling a request updates its Task and tells the filler', async () => {
      const { id } = await conversationRowFor(page, 'MRN-LIVE');
      await page.goto(`http://127.0.0.1:${port}/console/#/conversations/${id}`);
      await page.locator('#conversation-title').getByText(`Conversation ${id}`).waitFor();
      await page.getByRole('button', { name: 'Cancel this request…' }).click();
      await confirmDialog(page);
      await page.locator('#conversation-facts').getByText('cancelled').waitFor();
      const task = await eventually(async () => {
        const t = await fhirGet(`Task/conversation-${id}`);
        return t.body.status === 'cancelled' && t.body;
      }, 'the Task cancelled');
      assert.equal(task.status, 'cancelled');
      const revoked = filler.received.filter((b) => b.entry.some((e) => e.resource.resourceType === 'ServiceRequest' &&
        e.resource.status === 'revoked' && e.resource.identifier[0].value === 'ORD-MRN-LIVE'));
      assert.equal(revoked.length, 1, 'the filler got the cancellation');
    });

    await step('the dashboard shows routes, counts and latency', async () => {
      await page.getByRole('link', { name: 'Dashboard' }).click();
      const orders = page.locator('#route-stats tbody tr')
        .filter({ has: page.getByRole('rowheader', { name: 'orders', exact: true }) });
      await orders.waitFor();
      const delivered = Number(await orders.locator('td').nth(1).textContent());
      assert.ok(delivered >= 2, `delivered ${delivered}`);
      await orders.locator('svg rect.bar').first().waitFor();
      await page.screenshot({ path: path.join(artifacts, 'dashboard.png'), fullPage: true });
    });

    await step('an action without the CSRF token is refused', async () => {
      const status = await page.evaluate(async () => (await fetch('/admin/prune', { method: 'POST' })).status);
      assert.equal(status, 403);
    });

    await step('an operator logs in with a bearer token (JWT) as well', async () => {
      const other = await browser.newContext();
      const night = await other.newPage();
      await login(night, token('night-shift-operator'), 'token');
      await night.locator('#who').getByText('night-shift (operator)').waitFor();
      await night.locator('#route-stats tbody tr').first().waitFor();
      await other.close();
      const stranger = await browser.newContext();
      const unknown = await stranger.newPage();
      await login(unknown, token('unknown-subject'), 'token');
      await unknown.getByText('Login refused').waitFor();
      await stranger.close();
    });

    await step('an identity without the operator role is refused', async () => {
      const other = await browser.newContext();
      const viewer = await other.newPage();
      await login(viewer, VIEWER_KEY);
      await viewer.locator('#who').getByText('viewer').waitFor();
      await viewer.getByText(/Could not load this view: peer 'viewer' is not an operator/).waitFor();
      const { id } = await conversationRowFor(page, 'MRN-PARK');
      const refused = await viewer.evaluate(async (conversation) => {
        const state = await (await fetch('/console/session')).json();
        const answer = await fetch(`/admin/conversations/${conversation}/cancel`,
          { method: 'POST', headers: { 'X-CSRF-Token': state.csrf } });
        return answer.status;
      }, id);
      assert.equal(refused, 403);
      await other.close();
    });

    await step('an operator who may not read messages sees the timeline without them', async () => {
      const other = await browser.newContext();
      const auditor = await other.newPage();
      await login(auditor, AUDITOR_KEY);
      const id = await conversationWith('MRN-LIVE');
      await auditor.goto(`http://127.0.0.1:${port}/console/#/conversations/${id}`);
      await auditor.locator('#timeline g.step[data-kind="received"]').click();
      await auditor.getByText('Your identity may not read message content.').waitFor();
      const status = await auditor.evaluate(async (c) => (await fetch(`/admin/conversations/${c}?bodies`)).status, id);
      assert.equal(status, 403);
      await other.close();
    });

    await step('logging out ends the session', async () => {
      await page.getByRole('button', { name: 'Log out' }).click();
      await page.getByRole('heading', { name: 'Log in' }).waitFor();
      const status = await page.evaluate(async () => (await fetch('/admin/dashboard')).status);
      assert.equal(status, 401);
    });
    assert.deepEqual(pageErrors, [], 'no script errors in the page');
  } finally {
    await browser.close();
  }
}

let failed = false;
try {
  await main();
  console.log(`console e2e: ${results.length} steps passed; screenshots in ${artifacts}`);
} catch (e) {
  failed = true;
  console.error(`FAIL after ${results.length} steps: ${e.stack || e}`);
} finally {
  if (courier) courier.kill('SIGTERM');
  fillerServer.close();
  rmSync(folder, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
