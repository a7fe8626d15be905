// courier's operator console: a page over the same /admin/ JSON that
// scripts and `courier messages` use. It keeps nothing in browser storage:
// the session is an HttpOnly cookie, the CSRF token lives in this page's
// memory, and message content is only ever in the DOM while it is shown.

const $ = (selector) => document.querySelector(selector);
const session = { csrf: '', operator: false, mayReadMessages: false, authenticated: false };
let events = null; // the EventSource of /admin/events
let current = { view: '', conversation: 0 };
const page = { before: 0 };  // the id the shown page of messages starts after; 0: the newest
let listLoad = Promise.resolve(); // the page of messages being fetched, if any

// ---- talking to courier ---------------------------------------------------

async function call(method, url, headers = {}) {
  const init = { method, headers: { Accept: 'application/json', ...headers }, credentials: 'same-origin' };
  if (method !== 'GET' && session.csrf) init.headers['X-CSRF-Token'] = session.csrf;
  const response = await fetch(url, init);
  let body = null;
  const type = response.headers.get('Content-Type') || '';
  if (type.includes('json')) body = await response.json();
  if (response.status === 401) showLogin('Your session has ended; log in again.');
  if (!response.ok) {
    const why = body && (body.error || (body.issue && body.issue[0] && body.issue[0].diagnostics));
    throw new Error(why || `HTTP ${response.status}`);
  }
  return body;
}

function notice(text) {
  $('#notice').textContent = text;
}

// ---- small DOM helpers ----------------------------------------------------

function element(tag, attributes = {}, ...children) {
  const e = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === 'class') e.className = value;
    else if (name.startsWith('on')) e.addEventListener(name.slice(2), value);
    else e.setAttribute(name, value);
  }
  for (const child of children) e.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return e;
}

function svg(tag, attributes = {}, ...children) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [name, value] of Object.entries(attributes)) e.setAttribute(name, value);
  for (const child of children) e.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return e;
}

function cell(text, cls) {
  return element('td', cls ? { class: cls } : {}, text);
}

function time(iso) {
  return iso ? new Date(iso).toLocaleString() : '';
}

function confirmAction(text) {
  const dialog = $('#confirm');
  $('#confirm-text').textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
    dialog.showModal();
    $('#confirm-no').focus();
  });
}

// An action asks first, then posts, then says what happened.
async function act(question, url, after) {
  if (!(await confirmAction(question))) return;
  try {
    const answer = await call('POST', url);
    notice(`Done: ${JSON.stringify(answer)}`);
    if (after) await after();
  } catch (e) {
    notice(`Refused: ${e.message}`);
  }
}

// ---- session --------------------------------------------------------------

function showLogin(text) {
  session.authenticated = false;
  session.csrf = '';
  closeEvents();
  for (const view of document.querySelectorAll('main > section')) view.hidden = view.id !== 'login-view';
  $('#nav').hidden = true;
  $('#logout').hidden = true;
  $('#who').textContent = '';
  if (text) notice(text);
  $('#login-secret').focus();
}

function loggedIn(state) {
  Object.assign(session, state);
  $('#nav').hidden = false;
  $('#logout').hidden = !state.authenticationRequired && !state.peer;
  $('#who').textContent = state.peer ? `${state.peer}${state.operator ? ' (operator)' : ''}` : '';
  openEvents();
  route();
}

async function login(event) {
  event.preventDefault();
  const kind = $('#login-kind').value;
  const secret = $('#login-secret').value;
  const headers = kind === 'token' ? { Authorization: `Bearer ${secret}` } : { 'X-API-Key': secret };
  try {
    const state = await call('POST', '/console/login', headers);
    $('#login-secret').value = '';
    notice('');
    loggedIn({ ...state, authenticationRequired: true });
  } catch (e) {
    notice(`Login refused: ${e.message}`);
  }
}

async function logout() {
  try {
    await call('POST', '/console/logout');
  } catch (e) {
    // Logged out either way: the cookie is cleared or was already invalid.
  }
  showLogin('Logged out.');
}

// ---- live updates ---------------------------------------------------------

function openEvents() {
  if (events || !session.operator) return;
  events = new EventSource('/admin/events');
  let connectedBefore = false;
  events.addEventListener('open', () => {
    $('#live').hidden = false;
    // Back after a lost connection: what changed meanwhile was not heard.
    if (connectedBefore) route();
    connectedBefore = true;
  });
  events.addEventListener('error', () => { $('#live').hidden = true; });
  events.addEventListener('overflow', () => route());
  events.addEventListener('message', (e) => onChange(JSON.parse(e.data)));
}

function closeEvents() {
  if (events) events.close();
  events = null;
  $('#live').hidden = true;
}

let dashboardRefresh = 0;
// The latest state each conversation was heard to reach, for rows that
// are still being fetched when a later change arrives.
const latestState = new Map();
function onChange(change) {
  if (change.state) latestState.set(change.conversation, change.state);
  if (current.view === 'messages') liveRow(change);
  if (current.view === 'conversation' && change.conversation === current.conversation) showConversation(current.conversation);
  if (current.view === 'dashboard' && !dashboardRefresh) {
    // Many changes a second become one refresh.
    dashboardRefresh = setTimeout(() => { dashboardRefresh = 0; showDashboard(); }, 1000);
  }
}

// A new conversation appears at the top of the first page when it fits
// the filter; a known one's state changes in place.
async function liveRow(change) {
  await listLoad.catch(() => {});  // a page being fetched now would replace a row added or changed here
  const row = document.querySelector(`#conversations tr[data-id="${change.conversation}"]`);
  if (row) {
    if (change.state) {
      const stateCell = row.querySelector('td.state');
      stateCell.textContent = change.state;
      stateCell.className = `state state-${change.state}`;
      row.setAttribute('aria-label', `conversation ${change.conversation}, ${change.state}`);
    }
    return;
  }
  if (change.kind !== 'received' || page.before !== 0) return;
  const filter = searchParameters();
  const summary = await call('GET', `/admin/conversations/${change.conversation}`);
  for (const key of ['route', 'state', 'event', 'peer']) {
    if (filter.get(key) && filter.get(key) !== summary[key]) return;
  }
  if (filter.get('q') || filter.get('until') || filter.get('delivery')) return;
  if (document.querySelector(`#conversations tr[data-id="${change.conversation}"]`)) return;
  $('#conversations tbody').prepend(conversationRow(summary));
}

// ---- views ----------------------------------------------------------------

function show(view) {
  current.view = view;
  for (const section of document.querySelectorAll('main > section')) section.hidden = section.id !== `${view}-view`;
  for (const link of document.querySelectorAll('#nav a')) {
    if (link.dataset.view === view || (view === 'conversation' && link.dataset.view === 'messages'))
      link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

async function route() {
  if (!session.authenticated) return;
  const hash = location.hash || '#/dashboard';
  const [path, query] = hash.slice(1).split('?');
  const parts = path.split('/').filter(Boolean);
  try {
    if (parts[0] === 'messages') {
      show('messages');
      await showMessages(new URLSearchParams(query || ''));
    } else if (parts[0] === 'conversations' && parts[1]) {
      show('conversation');
      current.conversation = Number(parts[1]);
      $('#message-panel').hidden = true;
      await showConversation(current.conversation);
    } else if (parts[0] === 'routes') {
      show('routes');
      await showRoutes();
    } else {
      show('dashboard');
      await showDashboard();
    }
  } catch (e) {
    notice(`Could not load this view: ${e.message}`);
  }
}

// ---- dashboard ------------------------------------------------------------

function sparkline(minutes) {
  const width = 180;
  const height = 36;
  const chart = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img' });
  if (!minutes.length) {
    chart.setAttribute('aria-label', 'no deliveries in the last hour');
    chart.append(svg('text', { x: 4, y: 22, fill: '#5b6475', 'font-size': 12 }, 'no deliveries'));
    return chart;
  }
  // One bar per minute with deliveries, its height the average latency.
  const now = Date.now();
  const top = Math.max(...minutes.map((m) => m.averageMs), 1);
  const barWidth = width / 60;
  for (const m of minutes) {
    const age = (now - Date.parse(m.minute)) / 60000;
    const barHeight = Math.max(2, (m.averageMs / top) * (height - 2));
    chart.append(svg('rect', { class: 'bar', x: Math.max(0, width - (age + 1) * barWidth).toFixed(1),
      y: (height - barHeight).toFixed(1), width: Math.max(1, barWidth - 1).toFixed(1), height: barHeight.toFixed(1),
      fill: '#1f5fbf' }, svg('title', {}, `${time(m.minute)}: ${m.count} delivered, average ${m.averageMs.toFixed(1)} ms`)));
  }
  const last = minutes[minutes.length - 1];
  chart.setAttribute('aria-label', `average latency per minute; latest ${last.averageMs.toFixed(1)} ms, highest ${top.toFixed(1)} ms`);
  return chart;
}

function duration(seconds) {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return `${d ? `${d}d ` : ''}${h}h ${m}m`;
}

async function showDashboard() {
  const d = await call('GET', '/admin/dashboard');
  const facts = $('#engine-facts');
  facts.replaceChildren();
  for (const [term, value] of [['Version', d.version], ['Up for', duration(d.uptimeSeconds)],
    ['Started', time(d.started)], ['Store size', `${(d.storeBytes / 1048576).toFixed(1)} MB`]]) {
    facts.append(element('dt', {}, term), element('dd', {}, value));
  }
  $('#listeners tbody').replaceChildren(...d.listeners.map((l) => element('tr', {},
    cell(l.name), cell(l.health), cell(l.received, 'number'), cell(l.description))));
  $('#route-stats tbody').replaceChildren(...d.routes.map((r) => element('tr', {},
    element('th', { scope: 'row' }, r.name), cell(r.received, 'number'), cell(r.delivered, 'number'),
    cell(r.failed, 'number'), cell(r.parked, 'number'), cell(r.queueDepth, 'number'),
    element('td', {}, sparkline(r.latency)))));
}

// ---- messages -------------------------------------------------------------

function searchParameters() {
  const form = new FormData($('#search'));
  const parameters = new URLSearchParams();
  for (const [key, value] of form) {
    if (!value) continue;
    // datetime-local is the operator's local time; courier takes instants.
    parameters.set(key, key === 'since' || key === 'until' ? new Date(value).toISOString() : value);
  }
  return parameters;
}

function conversationRow(c) {
  // A change heard while this row was being fetched is newer than the row.
  c.state = latestState.get(c.id) || c.state;
  const open = () => { location.hash = `#/conversations/${c.id}`; };
  return element('tr', { class: 'selectable', tabindex: 0, 'data-id': c.id, 'aria-label': `conversation ${c.id}, ${c.state}`,
    onclick: open, onkeydown: (e) => { if (e.key === 'Enter') open(); } },
  cell(c.id), cell(time(c.received)), cell(c.route), cell(c.event), cell(c.peer),
  cell(c.state, `state state-${c.state}`));
}

async function fillRoutes() {
  const select = $('#search select[name="route"]');
  if (select.options.length > 1) return;
  const r = await call('GET', '/admin/routes');
  for (const route of r.routes) select.append(element('option', { value: route.name }, route.name));
}

async function showMessages(query) {
  await fillRoutes();
  const form = $('#search');
  for (const key of ['route', 'state', 'delivery', 'event', 'peer', 'q']) form.elements[key].value = query.get(key) || '';
  const parameters = searchParameters();
  page.before = Number(query.get('before') || 0);
  if (page.before) parameters.set('before', page.before);
  parameters.set('limit', 50);
  const table = $('#conversations');
  table.setAttribute('aria-busy', 'true');
  listLoad = (async () => {
    const list = await call('GET', `/admin/conversations?${parameters}`);
    table.tBodies[0].replaceChildren(...list.map(conversationRow));
    $('#older').disabled = list.length < 50;
    $('#older').dataset.before = list.length ? list[list.length - 1].id : 0;
    notice(list.length ? '' : 'No conversation matches.');
  })();
  try {
    await listLoad;
  } finally {
    table.setAttribute('aria-busy', 'false');
  }
}

function search(before) {
  const parameters = searchParameters();
  if (before) parameters.set('before', before);
  location.hash = `#/messages?${parameters}`;
  if (location.hash === `#/messages?${parameters}`) route();
}

// ---- one conversation -----------------------------------------------------

async function showConversation(id) {
  const bodies = session.mayReadMessages ? '?bodies' : '';
  const c = await call('GET', `/admin/conversations/${id}${bodies}`);
  $('#conversation-title').textContent = `Conversation ${c.id}`;
  const facts = $('#conversation-facts');
  facts.replaceChildren();
  for (const [term, value] of [['State', c.state], ['Route', c.route], ['Event', c.event], ['Peer', c.peer],
    ['Received', time(c.received)], ['Bundle id', c.bundleId], ['MessageHeader id', c.messageHeaderId], ['Task', c.task]]) {
    facts.append(element('dt', {}, term), element('dd', {}, value || '—'));
  }
  const finished = ['completed', 'cancelled', 'rejected', 'failed'].includes(c.state);
  const cancel = $('#cancel-request');
  cancel.disabled = finished || !session.operator;
  cancel.onclick = () => act(`Cancel request ${c.id}? Its destinations are told, through its Task.`,
    `/admin/conversations/${c.id}/cancel`);
  $('#deliveries tbody').replaceChildren(...c.deliveries.map((d) => {
    const action = element('td');
    if (d.state === 'parked') {
      action.append(element('button', { type: 'button', onclick: () => act(`Replay delivery ${d.id} to ${d.destination}?`,
        `/admin/deliveries/${d.id}/replay`) }, `Replay ${d.id}`));
    } else if (d.state === 'pending') {
      action.append(element('button', { type: 'button', onclick: () => act(`Retry delivery ${d.id} to ${d.destination} now?`,
        `/admin/deliveries/${d.id}/retry`) }, `Retry ${d.id} now`));
    }
    return element('tr', {}, cell(d.id), cell(d.kind), cell(d.destination), cell(d.state, `state state-${d.state}`),
      cell(d.attempts, 'number'), action);
  }));
  drawTimeline(c);
}

// The conversation as a sequence diagram: a lifeline per party, an arrow
// per step in time order, each a control that shows its message.
function drawTimeline(c) {
  const parties = c.parties;
  const gap = 190;
  const rowHeight = 46;
  const left = 90;
  const width = left + gap * (parties.length - 1) + 340;  // room for the last step's label
  const height = 60 + rowHeight * c.timeline.length;
  const x = (party) => left + gap * Math.max(0, parties.indexOf(party));
  const chart = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'list',
    'aria-labelledby': 'timeline-title' });
  parties.forEach((party) => {
    chart.append(svg('text', { x: x(party), y: 18, 'text-anchor': 'middle', class: 'party' }, party));
    chart.append(svg('line', { x1: x(party), y1: 26, x2: x(party), y2: height - 6, class: 'lifeline' }));
  });
  const start = Date.parse(c.timeline[0].at);
  c.timeline.forEach((step, i) => {
    const y = 56 + i * rowHeight;
    const bad = ['parked', 'failed', 'fatal-error'].includes(step.kind) || /error/.test(step.detail);
    const elapsed = Date.parse(step.at) - start;
    const sincePrevious = i === 0 ? 0 : Date.parse(step.at) - Date.parse(c.timeline[i - 1].at);
    const label = `${i + 1}. ${step.kind}: ${step.detail}`;
    const g = svg('g', { class: `step${bad ? ' bad' : ''}`, role: 'listitem', tabindex: 0, 'data-kind': step.kind,
      'aria-label': `${label}, at ${time(step.at)}, ${elapsed} ms after receipt, ${sincePrevious} ms after the step before` });
    g.append(svg('title', {}, `${time(step.at)}: ${step.kind}, ${sincePrevious} ms after the step before`));
    g.append(svg('rect', { class: 'hit', x: 0, y: y - 30, width, height: rowHeight }));
    const from = x(step.from);
    const to = x(step.to);
    if (from === to) {
      g.append(svg('line', { x1: from, y1: y - 8, x2: from + 30, y2: y - 8 }));
      g.append(svg('line', { x1: from + 30, y1: y - 8, x2: from + 30, y2: y }));
      g.append(svg('line', { x1: from + 30, y1: y, x2: from + 6, y2: y }));
      g.append(svg('polygon', { points: `${from},${y} ${from + 8},${y - 4} ${from + 8},${y + 4}` }));
    } else {
      const direction = to > from ? 1 : -1;
      g.append(svg('line', { x1: from, y1: y, x2: to - direction * 8, y2: y }));
      g.append(svg('polygon', { points: `${to},${y} ${to - direction * 9},${y - 5} ${to - direction * 9},${y + 5}` }));
    }
    const textX = Math.min(from, to) + 8;
    const detail = step.detail.length > 60 ? `${step.detail.slice(0, 57)}…` : step.detail;
    g.append(svg('text', { x: textX + (from === to ? 34 : 0), y: y - 6 }, `${step.kind}: ${detail}`));
    g.append(svg('text', { x: 4, y: y + 4, class: 'when' }, `+${elapsed} ms`));
    const open = () => showMessage(step, i);
    g.addEventListener('click', open);
    g.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); open(); } });
    chart.append(g);
  });
  $('#timeline').replaceChildren(chart);
}

// ---- showing a message ----------------------------------------------------

// Field names of the segments operators read most, by position.
const v2Fields = {
  MSH: ['Field Separator', 'Encoding Characters', 'Sending Application', 'Sending Facility', 'Receiving Application',
    'Receiving Facility', 'Date/Time of Message', 'Security', 'Message Type', 'Message Control ID', 'Processing ID',
    'Version ID', 'Sequence Number', 'Continuation Pointer', 'Accept Acknowledgment Type',
    'Application Acknowledgment Type', 'Country Code', 'Character Set'],
  EVN: ['Event Type Code', 'Recorded Date/Time', 'Date/Time Planned Event', 'Event Reason Code', 'Operator ID',
    'Event Occurred'],
  PID: ['Set ID', 'Patient ID', 'Patient Identifier List', 'Alternate Patient ID', 'Patient Name', "Mother's Maiden Name",
    'Date/Time of Birth', 'Administrative Sex', 'Patient Alias', 'Race', 'Patient Address', 'County Code',
    'Phone Number - Home', 'Phone Number - Business', 'Primary Language', 'Marital Status', 'Religion',
    'Patient Account Number', 'SSN Number'],
  NK1: ['Set ID', 'Name', 'Relationship', 'Address', 'Phone Number'],
  PV1: ['Set ID', 'Patient Class', 'Assigned Patient Location', 'Admission Type', 'Preadmit Number',
    'Prior Patient Location', 'Attending Doctor', 'Referring Doctor', 'Consulting Doctor', 'Hospital Service'],
  ORC: ['Order Control', 'Placer Order Number', 'Filler Order Number', 'Placer Group Number', 'Order Status',
    'Response Flag', 'Quantity/Timing', 'Parent', 'Date/Time of Transaction', 'Entered By', 'Verified By',
    'Ordering Provider'],
  OBR: ['Set ID', 'Placer Order Number', 'Filler Order Number', 'Universal Service Identifier', 'Priority',
    'Requested Date/Time', 'Observation Date/Time', 'Observation End Date/Time'],
  OBX: ['Set ID', 'Value Type', 'Observation Identifier', 'Observation Sub-ID', 'Observation Value', 'Units',
    'References Range', 'Abnormal Flags', 'Probability', 'Nature of Abnormal Test', 'Observation Result Status'],
  AL1: ['Set ID', 'Allergen Type Code', 'Allergen Code', 'Allergy Severity Code', 'Allergy Reaction Code'],
  MSA: ['Acknowledgment Code', 'Message Control ID', 'Text Message'],
  ERR: ['Error Code and Location', 'Error Location', 'HL7 Error Code', 'Severity'],
};

function v2Table(text) {
  const segments = text.split(/\r\n|\r|\n/).filter(Boolean);
  const fieldSeparator = segments[0] && segments[0].startsWith('MSH') ? segments[0][3] : '|';
  const table = element('table', { class: 'v2' }, element('caption', { class: 'sr' }, 'HL7 v2 message, by segment and field'));
  for (const segment of segments) {
    const name = segment.slice(0, 3);
    let fields = segment.split(fieldSeparator).slice(1);
    // MSH-1 is the separator itself, so MSH's fields count from 2.
    if (name === 'MSH') fields = [fieldSeparator, ...fields];
    const list = element('td');
    fields.forEach((value, i) => {
      if (!value) return;
      const names = v2Fields[name];
      const label = `${name}-${i + 1}${names && names[i] ? ` ${names[i]}` : ''}`;
      list.append(element('div', {}, element('span', { class: 'field' }, `${label}: `), value));
    });
    table.append(element('tr', {}, element('th', { scope: 'row' }, name), list));
  }
  return table;
}

function indentXml(text) {
  let depth = 0;
  return text.replace(/>\s*</g, '>\n<').split('\n').map((line) => {
    if (/^<\//.test(line)) depth = Math.max(0, depth - 1);
    const out = '  '.repeat(depth) + line;
    if (/^<[^!?/][^>]*[^/]>$/.test(line) && !/<\/[^>]+>$/.test(line)) depth += 1;
    return out;
  }).join('\n');
}

function showMessage(step, index) {
  const panel = $('#message-panel');
  const body = $('#message-body');
  $('#message-title').textContent = `Step ${index + 1}: ${step.kind} at ${time(step.at)}`;
  panel.hidden = false;
  if (!step.hasMessage) {
    body.replaceChildren(element('p', {}, step.detail), element('p', {}, 'This step carries no message.'));
  } else if (!('message' in step)) {
    body.replaceChildren(element('p', {}, 'Your identity may not read message content.'));
  } else {
    const text = step.message.trim();
    let shown;
    if (/^(MSH|FHS|BHS)/.test(text)) {
      shown = v2Table(text);
    } else if (text.startsWith('<')) {
      shown = element('pre', { 'aria-label': 'FHIR XML' }, indentXml(text));
    } else {
      let pretty = text;
      try { pretty = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* shown as it is */ }
      shown = element('pre', { 'aria-label': 'FHIR JSON' }, pretty);
    }
    body.replaceChildren(element('p', {}, step.detail), shown);
  }
  panel.scrollIntoView({ block: 'nearest' });
}

// ---- routes ---------------------------------------------------------------

async function showRoutes() {
  const r = await call('GET', '/admin/routes');
  const problems = $('#route-problems');
  problems.replaceChildren(r.problems && r.problems.length
    ? element('div', { class: 'card', role: 'alert' }, element('h3', {}, 'courier check found problems'),
      element('ul', {}, ...r.problems.map((p) => element('li', {}, p))))
    : element('p', { class: 'pass' }, 'courier check: the files on disk have no problems.'));
  $('#route-list').replaceChildren(...r.routes.map((route) => {
    const when = Object.entries(route.when).map(([k, v]) => element('li', {}, `${k}: `, element('code', {}, v)));
    const to = route.to.map((d) => element('li', {}, `${d.name} (${d.pattern}${d.endpoint ? ` → ${d.endpoint}` : ''})`,
      d.orderBy ? element('span', {}, ', ordered by ', element('code', {}, d.orderBy)) : '',
      `, ${d.retry.attempts} attempts, then ${d.onExhausted}`));
    return element('section', { class: 'route card', 'aria-label': `route ${route.name}` },
      element('h3', {}, route.name),
      element('p', {}, `${route.file}:${route.line}${route.from ? `, from listener ${route.from}` : ''}`),
      element('h4', {}, 'Matches'), when.length ? element('ul', {}, ...when) : element('p', {}, 'every message'),
      element('h4', {}, 'Delivers to'), element('ul', {}, ...to));
  }));
  $('#route-tests tbody').replaceChildren(...(r.tests || []).map((t) => element('tr', {},
    cell(t.passed ? 'pass' : 'FAIL', t.passed ? 'pass' : 'fail'), cell(t.file), cell(t.name), cell(t.differences))));
}

// ---- start ----------------------------------------------------------------

async function start() {
  $('#login-form').addEventListener('submit', login);
  $('#logout').addEventListener('click', logout);
  $('#search').addEventListener('submit', (e) => { e.preventDefault(); search(0); });
  $('#search').addEventListener('reset', () => setTimeout(() => search(0), 0));
  $('#newest').addEventListener('click', () => search(0));
  $('#older').addEventListener('click', () => search($('#older').dataset.before));
  $('#prune').addEventListener('click', () => act('Prune finished conversations older than the retention policy?',
    '/admin/prune', showDashboard));
  window.addEventListener('hashchange', route);
  const state = await call('GET', '/console/session');
  if (state.authenticated) loggedIn(state);
  else showLogin('');
}

start();
