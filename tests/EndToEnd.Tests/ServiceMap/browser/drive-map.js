// Opens the control plane's service map in Debian's chromium (playwright-core drives it; no browser is downloaded),
// goes through what an operator does and prints what the page showed as JSON. Every wait is on the page's state,
// with a deadline; each step leaves a screenshot in the artifacts folder, and a failure leaves one too.
//   node drive-map.js  (everything comes from the environment: MAP_URL, MAP_TOKEN, MAP_ARTIFACTS, MAP_CHROMIUM,
//                       MAP_SPKI, MAP_SOURCE, MAP_DESTINATION, MAP_ALLOWED_PORT, MAP_DROPPED_PORT, MAP_AUDITED_EDGE)
'use strict';
const { chromium } = require('playwright-core');
const path = require('path');
const fs = require('fs');

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const mapUrl = env('MAP_URL');
const token = env('MAP_TOKEN');
const artifacts = env('MAP_ARTIFACTS');
const source = env('MAP_SOURCE');
const destination = env('MAP_DESTINATION');
const allowedEdge = `${source} -> ${destination} TCP/${env('MAP_ALLOWED_PORT')}`;
const droppedEdge = `${source} -> ${destination} TCP/${env('MAP_DROPPED_PORT')}`;
const auditedEdge = env('MAP_AUDITED_EDGE');
const WAIT = { timeout: 60_000, polling: 200 };

async function main() {
  fs.mkdirSync(artifacts, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.MAP_CHROMIUM || '/usr/bin/chromium',
    // Chromium believes the control plane's certificate by its public key only: the test CA is trusted nowhere else.
    args: [`--ignore-certificate-errors-spki-list=${env('MAP_SPKI')}`, '--no-sandbox'],
  });
  const report = {};
  let page;
  try {
    page = await browser.newPage({ viewport: { width: 1600, height: 900 } });
    page.on('console', (m) => { if (m.type() === 'error') process.stderr.write(`page console: ${m.text()}\n`); });
    page.on('pageerror', (e) => process.stderr.write(`page error: ${e.stack || e}\n`));
    const shot = (name) => page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });

    // Without a token: the page asks for one, and its data routes refuse the browser.
    await page.goto(mapUrl);
    await page.waitForSelector('#token-form', { state: 'visible', timeout: WAIT.timeout });
    report.anonymous = await page.evaluate(async () => ({
      edges: (await fetch('/v1/flows/edges')).status,
      flows: (await fetch('/v1/flows?source=a/b&destination=a/c')).status,
      loginShown: !document.getElementById('login').hidden,
    }));
    await shot('01-asks-for-a-token');

    // With the token in the fragment, as `meshctl map` prints it: the fragment leaves the address bar at once.
    await page.goto(`${mapUrl}#token=${encodeURIComponent(token)}`);
    await page.waitForFunction(([allowed, dropped, audited]) => {
      const cy = window.serviceMap && window.serviceMap.cy;
      if (!cy) return false;
      const kind = (id) => { const e = cy.getElementById(id); return e.nonempty() && e.data('kind'); };
      // The dropped port's SYN is also seen forwarded where it left the client (its egress selects nothing); the map
      // counts a connection where it entered, so the edge is dropped only. The audited edge passed as AUDIT there.
      return kind(allowed) === 'forwarded' && kind(dropped) === 'dropped' && kind(audited) === 'audited';
    }, [allowedEdge, droppedEdge, auditedEdge], WAIT);
    report.addressBar = page.url();
    report.graph = await page.evaluate(() => ({
      nodes: window.serviceMap.cy.nodes().filter((n) => !n.isParent()).map((n) => ({ id: n.id(), label: n.data('label'), namespace: n.data('namespace') })),
      namespaces: window.serviceMap.cy.nodes().filter((n) => n.isParent()).map((n) => n.data('label')),
      edges: window.serviceMap.cy.edges().map((e) => ({ id: e.id(), kind: e.data('kind'), color: e.style('line-color'), label: e.data('label') })),
      table: [...document.querySelectorAll('#edges tbody tr')].map((r) => ({ edge: r.dataset.edge, kind: r.dataset.kind, text: r.innerText })),
    }));
    await shot('02-map');

    // Live updates keep every node where it was.
    const before = await page.evaluate(() => ({
      refreshes: window.serviceMap.refreshes,
      positions: Object.fromEntries(window.serviceMap.cy.nodes().filter((n) => !n.isParent()).map((n) => [n.id(), n.position()])),
    }));
    await page.waitForFunction((n) => window.serviceMap.refreshes >= n + 2, before.refreshes, WAIT);
    const after = await page.evaluate(() =>
      Object.fromEntries(window.serviceMap.cy.nodes().filter((n) => !n.isParent()).map((n) => [n.id(), n.position()])));
    report.positionsStable = Object.entries(before.positions).every(([id, p]) => after[id] && after[id].x === p.x && after[id].y === p.y);

    // Only drops: the forwarded edge leaves the map.
    await page.selectOption('#verdict', 'DROPPED');
    await page.waitForFunction(([allowed, dropped]) => {
      const cy = window.serviceMap.cy;
      return cy.getElementById(allowed).empty() && cy.getElementById(dropped).nonempty();
    }, [allowedEdge, droppedEdge], WAIT);
    report.droppedOnly = await page.evaluate(() => window.serviceMap.cy.edges().map((e) => ({ id: e.id(), kind: e.data('kind'), color: e.style('line-color') })));
    await shot('03-dropped-only');

    // Clicking the dropped edge lists its flows with the policy and version that decided them.
    const at = await page.evaluate((dropped) => {
      const box = document.getElementById('graph').getBoundingClientRect();
      const mid = window.serviceMap.cy.getElementById(dropped).renderedMidpoint();
      return { x: box.left + mid.x, y: box.top + mid.y };
    }, droppedEdge);
    await page.mouse.click(at.x, at.y);
    await page.waitForFunction(() => !document.getElementById('flows').hidden
      && document.querySelectorAll('#flows tbody tr').length > 0, null, WAIT);
    report.panel = await page.evaluate(() => ({
      title: document.getElementById('flows-title').innerText,
      rows: [...document.querySelectorAll('#flows tbody tr')].map((r) => [...r.cells].map((c) => c.innerText)),
    }));
    await shot('04-flows-of-the-dropped-edge');
  } catch (e) {
    if (page) await page.screenshot({ path: path.join(artifacts, 'failure.png'), fullPage: true }).catch(() => {});
    report.error = String(e && e.stack || e);
    process.stdout.write(JSON.stringify(report));
    process.exitCode = 1;
    return;
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(report));
}

main().catch((e) => { process.stderr.write(`${e.stack || e}\n`); process.exitCode = 1; });
