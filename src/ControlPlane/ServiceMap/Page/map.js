// The service map: workloads as nodes (boxed by namespace), the traffic between them as edges coloured by verdict,
// read from the control plane's flow history every few seconds with the caller's token.
'use strict';

const POLL_MS = 3000;
const TOKEN_KEY = 'mesh.token';
const COLUMN_WIDTH = 320;
const ROW_HEIGHT = 170;

const $ = (id) => document.getElementById(id);
const state = {
  token: null,
  cy: null,
  refreshes: 0,
  graph: null,
  selected: null,           // the edge whose flows the panel lists
  namespaces: new Set(),    // every namespace seen, so the filter keeps offering them while one is chosen
  columns: new Map(),       // namespace -> column, in order of first appearance: positions never move
  rows: new Map(),          // namespace -> next free row
  positions: new Map(),     // node id -> {x, y}, kept while a filter hides the node
  timer: null,
  generation: 0,
};
window.serviceMap = state;  // for whoever drives the page (the end-to-end test reads the graph from here)

function takeTokenFromFragment() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const token = fragment.get('token');
  if (!token) return null;
  sessionStorage.setItem(TOKEN_KEY, token);
  // The token must not stay in the address bar, the history or a bookmark.
  history.replaceState(null, '', location.pathname + location.search);
  return token;
}

function showLogin(message) {
  state.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  clearTimeout(state.timer);
  $('login').hidden = false;
  $('map-view').hidden = true;
  $('forget').hidden = true;
  $('login-error').textContent = message || '';
  setStatus('not connected');
}

function start(token) {
  state.token = token;
  $('login').hidden = true;
  $('map-view').hidden = false;
  $('forget').hidden = false;
  if (!state.cy) state.cy = createGraph();
  refresh();
}

function setStatus(text, error) {
  $('status').textContent = text;
  $('status').classList.toggle('error', !!error);
}

class Refused extends Error {}

async function api(path, params) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== '' && v != null));
  const response = await fetch(`${path}?${query}`, { headers: { Authorization: `Bearer ${state.token}` } });
  if (response.status === 401) throw new Refused('the control plane did not accept the token');
  if (response.status === 403) throw new Refused('the token does not grant flows.read');
  if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    throw new Error(`${response.status} ${problem.title || response.statusText}`);
  }
  return response.json();
}

function filters() {
  return { window: $('window').value, namespace: $('namespace').value, verdict: $('verdict').value };
}

async function refresh() {
  clearTimeout(state.timer);
  const generation = ++state.generation;
  const f = filters();
  try {
    const graph = await api('/v1/flows/edges', { since: f.window, namespace: f.namespace, verdict: f.verdict });
    if (generation !== state.generation) return;   // a newer refresh (a filter changed) owns the page
    state.graph = graph;
    render(graph);
    if (state.selected) await showFlows(state.selected, generation);
    state.refreshes++;
    document.body.dataset.refreshes = String(state.refreshes);
    setStatus(`${graph.nodes.length} workloads, ${graph.edges.length} edges · updated ${new Date().toLocaleTimeString()}`);
  } catch (e) {
    if (e instanceof Refused) { showLogin(e.message); return; }
    console.error(e);
    setStatus(`could not read the map: ${e.message}`, true);
  }
  if (generation === state.generation && $('live').checked && state.token)
    state.timer = setTimeout(refresh, POLL_MS);
}

// ---- the graph ----

function createGraph() {
  return cytoscape({
    container: $('graph'),
    layout: { name: 'preset' },
    wheelSensitivity: 0.3,
    style: [
      { selector: 'node', style: {
        'label': 'data(label)', 'text-valign': 'bottom', 'text-margin-y': 4, 'font-size': 13,
        'background-color': 'data(color)', 'width': 34, 'height': 34 } },
      { selector: 'node:parent', style: {
        'label': 'data(label)', 'text-valign': 'top', 'text-halign': 'center', 'font-weight': 'bold',
        'background-color': 'data(color)', 'background-opacity': 0.08, 'border-color': 'data(color)', 'border-width': 1,
        'padding': 18, 'shape': 'round-rectangle' } },
      { selector: 'edge', style: {
        'curve-style': 'bezier', 'control-point-step-size': 90, 'target-arrow-shape': 'triangle', 'width': 3,
        'label': 'data(label)', 'font-size': 12, 'text-rotation': 'autorotate',
        'text-background-color': '#fff', 'text-background-opacity': 0.85, 'text-background-padding': 2,
        'line-color': 'data(color)', 'target-arrow-color': 'data(color)' } },
      { selector: 'edge[kind = "mixed"]', style: {
        'line-fill': 'linear-gradient', 'line-gradient-stop-colors': '#2e9d4f #d93a3a', 'target-arrow-color': '#d93a3a' } },
      { selector: 'edge:selected', style: { 'width': 6 } },
    ],
  }).on('tap', 'edge', (event) => select(event.target.id()));
}

const PALETTE = ['#3b6fd8', '#8e44ad', '#d4880f', '#16a0a0', '#c0392b', '#5d6d7e', '#27ae60', '#b7950b'];

function colorOf(namespace) {
  if (!namespace) return '#7f8c8d';
  return PALETTE[columnOf(namespace) % PALETTE.length];
}

function columnOf(namespace) {
  if (!state.columns.has(namespace)) state.columns.set(namespace, state.columns.size);
  return state.columns.get(namespace);
}

// A node keeps the place it got when it first appeared; a new one goes below the others of its namespace.
function positionOf(node) {
  if (!state.positions.has(node.id)) {
    const row = state.rows.get(node.namespace) || 0;
    state.rows.set(node.namespace, row + 1);
    state.positions.set(node.id, { x: columnOf(node.namespace) * COLUMN_WIDTH, y: row * ROW_HEIGHT });
  }
  return state.positions.get(node.id);
}

// AUDIT flows passed, but a policy in audit mode would drop them: what promoting it would cut.
function kindOf(edge) {
  const passed = (edge.verdicts.FORWARDED || 0) + (edge.verdicts.AUDIT || 0);
  const dropped = edge.verdicts.DROPPED || 0;
  return passed && dropped ? 'mixed' : dropped ? 'dropped' : edge.verdicts.AUDIT ? 'audited' : 'forwarded';
}

const EDGE_COLORS = { forwarded: '#2e9d4f', dropped: '#d93a3a', mixed: '#d93a3a', audited: '#e0a000' };

function edgeLabel(edge) {
  const marks = { FORWARDED: '✓', DROPPED: '✗', AUDIT: '⚠' };
  const counts = Object.entries(edge.verdicts).map(([verdict, n]) =>
    marks[verdict] ? `${marks[verdict]}${n}` : `${verdict.toLowerCase()} ${n}`);
  return `${edge.protocol}/${edge.port} ${counts.join(' ')}`;
}

function render(graph) {
  const cy = state.cy;
  // Namespaces in name order the first time they are seen together, so the first picture is tidy.
  [...new Set(graph.nodes.map((n) => n.namespace))].sort().forEach(columnOf);
  graph.nodes.forEach((n) => { if (n.namespace) state.namespaces.add(n.namespace); });
  updateNamespaceFilter();

  const wanted = new Set();
  cy.batch(() => {
    for (const ns of new Set(graph.nodes.map((n) => n.namespace))) {
      const id = `namespace:${ns}`;
      wanted.add(id);
      if (cy.getElementById(id).empty())
        cy.add({ group: 'nodes', data: { id, label: ns || 'not pods', color: colorOf(ns), namespace: ns } });
    }
    for (const node of graph.nodes) {
      wanted.add(node.id);
      if (cy.getElementById(node.id).empty())
        cy.add({ group: 'nodes', data: { id: node.id, parent: `namespace:${node.namespace}`, label: node.name,
          namespace: node.namespace, identity: node.identity, color: colorOf(node.namespace) }, position: { ...positionOf(node) } });
    }
    for (const edge of graph.edges) {
      wanted.add(edge.id);
      const data = { id: edge.id, source: edge.source, target: edge.destination, label: edgeLabel(edge), kind: kindOf(edge),
        color: EDGE_COLORS[kindOf(edge)], port: edge.port, protocol: edge.protocol, verdicts: edge.verdicts };
      const existing = cy.getElementById(edge.id);
      if (existing.empty()) cy.add({ group: 'edges', data });
      else existing.data(data);
    }
    cy.elements().filter((e) => !wanted.has(e.id())).remove();
  });
  if (!state.fitted && graph.nodes.length > 0) {
    // A map of two workloads would otherwise be blown up to fill the screen.
    cy.fit(undefined, 60);
    if (cy.zoom() > 1.5) { cy.zoom(1.5); cy.center(); }
    state.fitted = true;
  }
  renderEdgeTable(graph);
}

function updateNamespaceFilter() {
  const select = $('namespace');
  const present = new Set([...select.options].map((o) => o.value));
  for (const ns of [...state.namespaces].sort())
    if (!present.has(ns)) select.add(new Option(ns, ns));
}

function renderEdgeTable(graph) {
  const body = $('edges').tBodies[0];
  body.replaceChildren(...graph.edges.map((edge) => {
    const row = document.createElement('tr');
    row.dataset.edge = edge.id;
    row.dataset.kind = kindOf(edge);
    row.classList.toggle('selected', edge.id === state.selected);
    row.append(
      cell(edge.source), cell(edge.destination), cell(`${edge.protocol}/${edge.port}`),
      cell(String(edge.verdicts.FORWARDED || 0), 'forwarded'), cell(String(edge.verdicts.DROPPED || 0), 'dropped'),
      cell(String(edge.verdicts.AUDIT || 0), 'audit'));
    row.addEventListener('click', () => select(edge.id));
    return row;
  }));
}

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

// ---- the flows of one edge ----

function select(edgeId) {
  state.selected = edgeId;
  state.cy.elements().unselect();
  state.cy.getElementById(edgeId).select();
  for (const row of $('edges').tBodies[0].rows) row.classList.toggle('selected', row.dataset.edge === edgeId);
  showFlows(edgeId, state.generation).catch((e) => {
    if (e instanceof Refused) showLogin(e.message);
    else setStatus(`could not read the flows: ${e.message}`, true);
  });
}

async function showFlows(edgeId, generation) {
  const edge = state.graph && state.graph.edges.find((e) => e.id === edgeId);
  const section = $('flows');
  if (!edge) { section.hidden = true; return; }
  const f = filters();
  const flows = await api('/v1/flows', {
    source: edge.source, destination: edge.destination, port: edge.port, protocol: edge.protocol,
    verdict: f.verdict, since: state.graph.since, limit: 100 });
  if (generation !== state.generation || state.selected !== edgeId) return;
  $('flows-title').textContent = `Flows ${edge.source} → ${edge.destination} ${edge.protocol}/${edge.port} (newest first, at most 100)`;
  section.querySelector('tbody').replaceChildren(...flows.map((flow) => {
    const row = document.createElement('tr');
    row.append(
      cell(new Date(flow.time).toLocaleTimeString()),
      cell(flow.source.id + (flow.source.ip ? ` ${flow.source.ip}` : '')),
      cell(flow.destination.id + (flow.destination.ip ? ` ${flow.destination.ip}` : '')),
      cell(`${flow.protocol}/${flow.destination.port} ${flow.direction.toLowerCase()}`),
      cell(flow.verdict, `verdict-${flow.verdict}`),
      cell(flow.dropReason),
      cell(decidedBy(flow)));
    return row;
  }));
  section.hidden = false;
}

// The rule that decided and the version the node enforced: "allowed by default/web ingress v42"; a default-deny drop
// names no policy, only the version ("dropped (default deny: no rule allows it) at v42").
function decidedBy(flow) {
  if (flow.policies.length === 0) return flow.decision || (flow.version != null ? `v${flow.version}` : '—');
  return flow.policies.map((p) =>
    `${p.effect} by ${p.namespace ? `${p.namespace}/` : ''}${p.name}${p.kind && p.kind !== 'CiliumNetworkPolicy' ? ` (${p.kind})` : ''} ${p.direction} v${p.revision}`).join('; ');
}

// ---- wiring ----

document.addEventListener('DOMContentLoaded', () => {
  takeTokenFromFragment();
  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const token = $('token').value.trim();
    $('token').value = '';
    sessionStorage.setItem(TOKEN_KEY, token);
    start(token);
  });
  $('forget').addEventListener('click', () => showLogin('token forgotten'));
  for (const id of ['namespace', 'verdict', 'window']) $(id).addEventListener('change', refresh);
  $('live').addEventListener('change', () => { if ($('live').checked) refresh(); else clearTimeout(state.timer); });
  // An address with a token pasted into a tab already on the map changes only the fragment: no new page load.
  window.addEventListener('hashchange', () => { const token = takeTokenFromFragment(); if (token) start(token); });
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) start(token); else showLogin();
});
