// End-to-end test of /dashboard/ in a real browser: Debian's Chromium,
// headless, driven by playwright-core.
//
// It starts navad --demo on a free loopback port, makes demo traffic
// (decisions, then impression, click, navigation and visit URLs), waits
// until the reports API shows exactly that traffic, then opens the page,
// types keys and checks that what the page shows (chart, table totals,
// hexagons, CSV) is what the API answers for the same key, that it is
// keyboard-operable, passes axe-core's accessibility rules, bilingual,
// readable at phone width, keeps the key in the tab only, and loads nothing
// from anywhere but navad.
//
// Run with `make e2e` (or `npm run e2e` here). NAVAD_BIN names a navad
// binary (otherwise one is built); NAVAD_E2E_OUT is where screenshots and
// the downloaded CSV go (default e2e/out); CHROMIUM is the browser
// (default /usr/bin/chromium).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { deflateSync } from 'node:zlib';
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..', '..');
const out = resolve(process.env.NAVAD_E2E_OUT || join(here, 'out'));
const browserPath = process.env.CHROMIUM || '/usr/bin/chromium';

// The demo world's keys (internal/demo).
const KEYS = {
  admin: 'demo-admin-key-0000000001',
  publisher: 'demo-publisher-key-0001',
  beer: 'demo-beer-advertiser-key',
  coffee: 'demo-coffee-advertiser-key',
};
const BEER = 'demo-beer-izakaya';
const COFFEE = 'demo-coffee-break';
const COUNTS = ['served', 'impressions', 'clicks', 'navigations', 'visits'];

let navad, base, bin, scratch, context, page;

// ---- navad ----

// startNavad starts navad --demo on a free loopback port with extra flags
// and returns the process and its base URL, read from the "serving" log
// line.
async function startNavad(name, extra = []) {
  const log = [];
  const proc = spawn(bin, ['--demo', '--addr', '127.0.0.1:0', '--log-format', 'json', '--data-dir', join(scratch, name), ...extra], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, NAVAD_ADMIN_KEY: KEYS.admin },
  });
  const url = await new Promise((resolveAddr, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error('navad did not start in 120 s:\n' + log.join(''))), 120_000);
    proc.stderr.on('data', (chunk) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        log.push(line + '\n');
        try {
          const rec = JSON.parse(line);
          if (rec.msg === 'serving' && rec.addr) {
            clearTimeout(timer);
            resolveAddr('http://' + rec.addr);
          }
        } catch { /* not JSON */ }
      }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`navad exited with ${code}:\n${log.join('')}`)); });
  });
  return { proc, url };
}

async function stopNavad(proc) {
  if (!proc || proc.exitCode !== null) return;
  let timer;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => { timer = setTimeout(r, 20_000); })]);
  clearTimeout(timer); // a pending timer would hold the test's process open
  if (proc.exitCode === null) proc.kill('SIGKILL');
}

async function call(method, path, { key, body, redirect } = {}) {
  const headers = {};
  if (key) headers.Authorization = 'Bearer ' + key;
  if (body) headers['Content-Type'] = 'application/json';
  return fetch(base + path, { method, headers, body: body && JSON.stringify(body), redirect: redirect || 'follow' });
}

async function json(path, key) {
  const res = await call('GET', path, { key });
  assert.equal(res.status, 200, `${path}: ${res.status} ${await res.clone().text()}`);
  return res.json();
}

// Only the path of a tracking URL: they are issued under NAVAD_PUBLIC_URL,
// which is not where this test's navad listens.
const pathOf = (u) => { const x = new URL(u); return x.pathname + x.search; };

// makeTraffic asks for ads around Shinjuku and Shibuya and fires their
// tracking URLs in a fixed pattern, and returns the counts it expects.
async function makeTraffic() {
  const want = { [BEER]: zero(), [COFFEE]: zero() };
  const spots = [];
  for (let i = 0; i < 4; i++) for (let j = 0; j < 3; j++) spots.push([35.655 + i * 0.013, 139.690 + j * 0.01]);
  for (const [si, [lat, lng]] of spots.entries()) {
    for (const q of ['居酒屋', 'コーヒー']) {
      const qs = new URLSearchParams({ lat: String(lat), lng: String(lng), q, n: '3', uid: 'e2e-' + si + q });
      const res = await json('/v1/ads?' + qs, KEYS.publisher);
      for (const ad of res.ads) {
        const w = want[ad.campaign_id];
        assert.ok(w, 'an ad of an unknown campaign: ' + ad.campaign_id);
        const n = w.served++; // the pattern runs per campaign
        if (n % 4 !== 3) { await expectStatus('GET', ad.impression_url, 204); w.impressions++; }
        if (n % 3 === 0) { await expectStatus('GET', ad.click_url, 302); w.clicks++; }
        if (n % 2 === 0) { await expectStatus('GET', ad.navigate_url, 204); w.navigations++; }
        if (n % 4 === 0) {
          await expectStatus('POST', ad.visit_url, 204, { lat: ad.store.lat, lng: ad.store.lng, acc: 10 });
          w.visits++;
        }
        // A visit far from the store counts nothing.
        if (n % 4 === 1) await expectStatus('POST', ad.visit_url, 422, { lat: ad.store.lat + 0.01, lng: ad.store.lng, acc: 10 });
      }
    }
  }
  assert.ok(want[BEER].visits > 0 && want[COFFEE].visits > 0, 'demo traffic reached both campaigns: ' + JSON.stringify(want));
  return want;
}

async function expectStatus(method, url, status, body) {
  const res = await call(method, pathOf(url), { body, redirect: 'manual' });
  assert.equal(res.status, status, `${method} ${pathOf(url).slice(0, 12)}…: ${await res.text()}`);
}

// TILE_PNG is a 256-pixel square grey PNG tile with a darker edge.
const TILE_PNG = (() => {
  const size = 256;
  const rows = Buffer.alloc(size * (size + 1));
  for (let y = 0; y < size; y++) {
    rows[y * (size + 1)] = 0; // no filter
    for (let x = 0; x < size; x++) rows[y * (size + 1) + 1 + x] = x === 0 || y === 0 ? 0xb4 : 0xe9;
  }
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, sum]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // greyscale
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr), chunk('IDAT', deflateSync(rows)), chunk('IEND', Buffer.alloc(0))]);
})();

function zero() { return Object.fromEntries(COUNTS.map((m) => [m, 0])); }
function plus(a, b) { return Object.fromEntries(COUNTS.map((m) => [m, a[m] + b[m]])); }
function pick(o) { return Object.fromEntries(COUNTS.map((m) => [m, o[m]])); }

// ---- the browser ----

async function openBrowser(locale) {
  const profile = mkdtempSync(join(scratch, 'chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: browserPath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    acceptDownloads: true,
    locale,
    viewport: { width: 1280, height: 900 },
    timeout: 120_000,
  });
  page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(60_000);
  return page;
}

// Problems the page itself reports: script errors, CSP violations, and
// requests that leave navad.
const problems = [];
// Set while a test asks for cells before the detail kept.
let expectDetailRefusal = false;
function watch(p) {
  p.on('pageerror', (e) => problems.push('page error: ' + e.message));
  // Chromium logs every answer of 400 or more as a console error; those
  // the test expects (a wrong key, a publisher listing campaigns) are
  // checked below instead.
  p.on('console', (m) => { if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) problems.push('console: ' + m.text()); });
  p.on('response', (r) => {
    const u = new URL(r.url());
    if (r.status() < 400) return;
    const expected = (r.status() === 401 && u.pathname === '/v1/reports') || (r.status() === 403 && u.pathname === '/v1/campaigns') ||
      (r.status() === 400 && u.pathname === '/v1/reports/cells.geojson' && expectDetailRefusal);
    if (!expected) problems.push(`${r.status()} for ${u.pathname}`);
  });
  p.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(base + '/') && !u.startsWith('blob:') && !u.startsWith('data:')) problems.push('request outside navad: ' + u);
  });
}

// signIn types key into the page and waits for the report to show.
async function signIn(key) {
  await page.locator('#key').fill(key);
  await page.locator('#key').press('Enter');
  await waitShown();
}

async function waitShown() {
  await page.waitForFunction(() => {
    const r = document.getElementById('report');
    return !r.hidden && r.getAttribute('aria-busy') === 'false' && /\d{4}-\d\d-\d\d/.test(document.getElementById('status').textContent);
  });
}

function addDaysISO(day, n) {
  return new Date(Date.parse(day) + n * 86400000).toISOString().slice(0, 10);
}

async function period() {
  return { from: await page.inputValue('#from'), to: await page.inputValue('#to') };
}

// pageTotals reads the table's footer: the totals as the page shows them.
async function pageTotals() {
  return page.evaluate(() => {
    const heads = [...document.querySelectorAll('#report-table thead th')].map((th) => th.textContent);
    const cells = [...document.querySelectorAll('#report-table tfoot tr > *')].map((c) => c.textContent);
    return { heads, cells };
  });
}

const int = (s) => Number(String(s).replace(/[^\d]/g, ''));

// checkAgainstAPI compares the page, as it is now, with the API's answers
// for the same key, period and filter.
async function checkAgainstAPI(key, { campaigns = [], label }) {
  const { from, to } = await period();
  const filter = new URLSearchParams({ from, to });
  if (campaigns.length) filter.set('campaign_id', campaigns.join(','));
  const rows = await page.inputValue('#rows');
  const table = await json('/v1/reports?' + new URLSearchParams({ ...Object.fromEntries(filter), group_by: rows }), key);
  const hourly = (Date.parse(to) - Date.parse(from)) / 86400000 < 3;
  const series = await json('/v1/reports?' + new URLSearchParams({ ...Object.fromEntries(filter), group_by: hourly ? 'day,hour' : 'day' }), key);
  const cells = await json('/v1/reports/cells.geojson?' + filter, key);

  // The table: one row per API row, and the API's totals in the footer.
  const bodyRows = await page.locator('#report-table tbody tr').count();
  assert.equal(bodyRows, Math.max(1, table.rows.length), `${label}: table rows`);
  const { heads, cells: foot } = await pageTotals();
  const metricHeads = heads.slice(heads.length - 7);
  const shown = {};
  ['served', 'impressions', 'clicks', 'ctr', 'navigations', 'visits', 'visit_rate'].forEach((m, i) => { shown[m] = foot[heads.length - 7 + i]; });
  for (const m of COUNTS) assert.equal(int(shown[m]), table.totals[m], `${label}: total ${m} (${metricHeads.join('|')})`);
  assert.equal(shown.ctr, (table.totals.ctr * 100).toFixed(2) + '%', `${label}: CTR`);
  assert.equal(shown.visit_rate, (table.totals.visit_rate * 100).toFixed(2) + '%', `${label}: visit rate`);

  // The chart: its data table has one line per day (or hour) of the
  // period, and each line holds the API's counts of that bucket.
  const chartRows = await page.evaluate(() => [...document.querySelectorAll('#chart-table tbody tr')]
    .map((tr) => [...tr.children].map((c) => c.textContent)));
  const days = Math.round((Date.parse(to) - Date.parse(from)) / 86400000) + 1;
  assert.equal(chartRows.length, hourly ? days * 24 : days, `${label}: chart buckets`);
  const byBucket = new Map(chartRows.map((r) => [r[0], r.slice(1).map(int)]));
  const sums = zero();
  for (const r of chartRows) COUNTS.forEach((m, j) => { sums[m] += int(r[j + 1]); });
  assert.deepEqual(sums, pick(series.totals), `${label}: the chart adds up to the API's totals`);
  for (const r of series.rows) {
    const bucket = hourly ? `${r.day} ${String(r.hour).padStart(2, '0')}:00` : r.day;
    assert.deepEqual(byBucket.get(bucket), COUNTS.map((m) => r[m]), `${label}: chart at ${bucket}`);
  }
  // And uPlot drew it: the canvas holds the colours of the lines with
  // anything to show.
  const colours = await page.evaluate(() => {
    const c = document.querySelector('#chart canvas');
    const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const seen = new Set();
    for (let i = 0; i < px.length; i += 4) if (px[i + 3] === 255) seen.add((px[i] << 16 | px[i + 1] << 8 | px[i + 2]).toString(16).padStart(6, '0'));
    return [...seen];
  });
  const lineColours = { impressions: '0b5cad', visits: '1e7b34', clicks: 'c2410c' };
  for (const [m, colour] of Object.entries(lineColours)) {
    if (series.totals[m] > 0) assert.ok(colours.includes(colour), `${label}: the chart draws ${m} (#${colour})`);
  }

  // The map: one hexagon per feature of the API's GeoJSON.
  const hexagons = await page.locator('#map path.navad-cell').count();
  assert.equal(hexagons, cells.features.length, `${label}: hexagons on the map`);
  assert.equal(await page.locator('#cells-table tbody tr').count(), cells.features.length, `${label}: rows of the areas table`);
  return { table, series, cells };
}

// accessibilityProblems runs axe-core (WCAG 2.1 A and AA rules and axe's
// best practices) over the page as it is and describes what fails.
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
async function accessibilityProblems(p) {
  await p.evaluate(axeSource); // through DevTools: the page's CSP rightly forbids inline scripts
  const res = await p.evaluate(() => window.axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] }));
  return res.violations.map((v) => `${v.id} (${v.impact}): ${v.help}: ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join('; ')}`);
}

// ---- the test ----

before(async () => {
  mkdirSync(out, { recursive: true });
  scratch = mkdtempSync(join(tmpdir(), 'navad-e2e-'));
  bin = process.env.NAVAD_BIN;
  if (!bin) {
    bin = join(scratch, 'navad');
    execFileSync('go', ['build', '-o', bin, './cmd/navad'], { cwd: repo, stdio: 'inherit' });
  }
  ({ proc: navad, url: base } = await startNavad('main'));
});

after(async () => {
  if (context) await context.close().catch(() => {});
  await stopNavad(navad);
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

// nearMidnight returns how long until a minute past midnight in the
// business time zone (navad's default, Asia/Tokyo) when that is less than
// three minutes away, else 0: the test's traffic must fall on one day.
function nearMidnight() {
  const [h, m, sec] = new Intl.DateTimeFormat('en-GB', { timeZone: 'Asia/Tokyo', hourCycle: 'h23', hour: '2-digit', minute: '2-digit', second: '2-digit' })
    .format(new Date()).split(':').map(Number);
  const left = 24 * 3600 - (h * 3600 + m * 60 + sec);
  return left < 180 ? (left + 60) * 1000 : 0;
}

test('the dashboard shows what the reports API answers, for each key', async (t) => {
  const wait = nearMidnight();
  if (wait) await new Promise((r) => setTimeout(r, wait));
  const want = await makeTraffic();
  const all = plus(want[BEER], want[COFFEE]);

  // Served counts reach storage at the next flush (a second or so): wait
  // until the API shows all the traffic.
  let report;
  for (let i = 0; i < 120; i++) {
    report = await json('/v1/reports?group_by=campaign', KEYS.admin);
    if (JSON.stringify(pick(report.totals)) === JSON.stringify(all)) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  assert.deepEqual(pick(report.totals), all, 'the API counts the traffic made');

  await openBrowser('en-US');
  watch(page);
  await page.goto(base + '/dashboard/');
  assert.equal(await page.getAttribute('html', 'lang'), 'en');

  await t.test('keyboard: every control is reachable with Tab, focus is visible', async () => {
    // From the top: skip link, language, key, then the key's button.
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.className), 'skip');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'lang');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'key');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    assert.notEqual(outline, 'none', 'the focused field shows its focus');
    // Type the beer advertiser's key and press Enter: no mouse at all.
    await page.keyboard.type(KEYS.beer);
    await page.keyboard.press('Enter');
    await waitShown();
    const reached = new Set();
    for (let i = 0; i < 60; i++) {
      await page.keyboard.press('Tab');
      reached.add(await page.evaluate(() => {
        const a = document.activeElement;
        return a.id || (a.name ? a.name + ':' + a.value : '') || (a.closest('.leaflet-control-zoom') ? 'zoom' : a.tagName.toLowerCase() + '.' + a.className);
      }));
    }
    for (const id of ['key', 'connect', 'forget', 'from', 'to', 'rows', 'campaign_id:' + BEER, 'show', 'download', 'metric:impressions', 'map', 'zoom']) {
      assert.ok(reached.has(id), `Tab reaches ${id}; reached ${[...reached].join(', ')}`);
    }
  });

  await t.test('an advertiser sees its own campaign only, and the page matches the API', async () => {
    const boxes = await page.locator('#campaign-list input').evaluateAll((els) => els.map((e) => e.value));
    assert.deepEqual(boxes, [BEER], 'the beer advertiser is offered its campaign only');
    const { table } = await checkAgainstAPI(KEYS.beer, { label: 'beer advertiser' });
    assert.deepEqual(pick(table.totals), want[BEER], 'the beer advertiser sees its traffic, all of it');
    assert.ok((await page.locator('#map path.navad-cell').count()) > 1, 'several hexagons');
  });

  await t.test('the key stays in the tab: sessionStorage only', async () => {
    const stored = await page.evaluate(() => ({
      session: sessionStorage.getItem('navad.apiKey'), local: localStorage.length, cookie: document.cookie,
    }));
    assert.deepEqual(stored, { session: KEYS.beer, local: 0, cookie: '' });
    assert.ok(!page.url().includes(KEYS.beer), 'not in the URL');
    await page.click('#forget');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('navad.apiKey')), null);
    assert.ok(await page.locator('#report').isHidden(), 'forgetting the key hides the report');
  });

  await t.test('a wrong key is refused and nothing is shown', async () => {
    await page.locator('#key').fill('not-a-key-of-this-server');
    await page.locator('#key').press('Enter');
    await page.waitForSelector('#error:not([hidden])');
    assert.match(await page.textContent('#error'), /not accepted/);
    assert.ok(await page.locator('#report').isHidden());
    assert.equal(await page.evaluate(() => sessionStorage.getItem('navad.apiKey')), null);
  });

  await t.test('a publisher sees its own traffic', async () => {
    await signIn(KEYS.publisher);
    const { table } = await checkAgainstAPI(KEYS.publisher, { label: 'publisher' });
    assert.deepEqual(pick(table.totals), all);
  });

  await t.test('a period longer than the detail kept: the map says why, the rest shows', async () => {
    const { to } = await period();
    const from = new Date(Date.parse(to) - 60 * 86400000).toISOString().slice(0, 10);
    await page.fill('#from', from);
    expectDetailRefusal = true;
    await page.click('#show');
    await page.waitForSelector('#error:not([hidden])');
    expectDetailRefusal = false;
    assert.match(await page.textContent('#error'), /kept for 35 days/);
    await waitShown();
    assert.match(await page.textContent('#status'), new RegExp(from));
    assert.ok(await page.locator('#report').isVisible());
    assert.ok(await page.locator('#report-table tbody tr').count() > 0, 'the table still shows');
    await page.fill('#from', addDaysISO(to, -6));
    await page.click('#show');
    await page.waitForSelector('#error', { state: 'hidden' });
  });

  await t.test('an agency sees none of the advertisers it does not manage', async () => {
    const res = await call('POST', '/v1/accounts', { key: KEYS.admin, body: { type: 'agency', name: 'E2E Agency' } });
    assert.equal(res.status, 201);
    const agency = await res.json();
    await page.click('#forget');
    await signIn(agency.api_key);
    assert.equal(await page.locator('#campaign-list input').count(), 0, 'no campaign offered');
    const { table, cells } = await checkAgainstAPI(agency.api_key, { label: 'agency' });
    assert.deepEqual(pick(table.totals), zero());
    assert.equal(cells.features.length, 0);
  });

  await t.test('admin sees everything; a campaign filter and a single day, by the hour', async () => {
    await page.click('#forget');
    await signIn(KEYS.admin);
    const boxes = await page.locator('#campaign-list input').evaluateAll((els) => els.map((e) => e.value));
    assert.deepEqual(boxes.sort(), [BEER, COFFEE].sort());
    const { table, cells } = await checkAgainstAPI(KEYS.admin, { label: 'admin' });
    assert.deepEqual(pick(table.totals), all);
    await page.screenshot({ path: join(out, 'dashboard-desktop-en.png'), fullPage: true });
    assert.deepEqual(await accessibilityProblems(page), [], 'axe-core finds nothing, in English at desk width');
    assert.ok(cells.features.length > 1);

    // Tick the coffee campaign with the keyboard, and one day.
    const { to } = await period();
    await page.fill('#from', to);
    await page.focus(`#campaign-list input[value="${COFFEE}"]`);
    await page.keyboard.press('Space');
    await page.focus('#show');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelectorAll('#chart-table tbody tr').length === 24);
    await waitShown();
    const filtered = await checkAgainstAPI(KEYS.admin, { campaigns: [COFFEE], label: 'admin, coffee, one day' });
    assert.deepEqual(pick(filtered.table.totals), want[COFFEE]);
  });

  await t.test('the CSV download is exactly the table', async () => {
    await page.selectOption('#rows', 'day,campaign');
    await page.click('#show');
    await waitShown();
    await page.waitForFunction(() => document.querySelectorAll('#report-table thead th').length === 10);
    const shownRows = await page.evaluate(() => [...document.querySelectorAll('#report-table tr')]
      .map((tr) => [...tr.children].map((c) => c.textContent)));
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
    const file = join(out, download.suggestedFilename());
    await download.saveAs(file);
    const text = readFileSync(file, 'utf8');
    assert.ok(text.startsWith('\ufeff'), 'a byte order mark for Excel');
    const lines = text.slice(1).trimEnd().split('\r\n').map((l) => l.split(','));
    assert.equal(lines.length, shownRows.length, 'one line per table row, header and totals included');
    lines.forEach((line, i) => {
      const shown = shownRows[i].map((c) => (/^[\d,]+$/.test(c) ? c.replace(/,/g, '') : c));
      assert.deepEqual(line, shown, `CSV line ${i + 1}`);
    });
    const api = await json('/v1/reports?' + new URLSearchParams({ ...(await period()), group_by: 'day,campaign', campaign_id: COFFEE }), KEYS.admin);
    const totals = lines[lines.length - 1];
    const heads = lines[0];
    assert.deepEqual(heads, ['Day', 'Campaign ID', 'Campaign', 'Served', 'Impressions', 'Clicks', 'CTR', 'Navigations', 'Visits', 'Visit rate']);
    assert.equal(totals[0], 'Total');
    for (const m of COUNTS) {
      const i = heads.indexOf(m[0].toUpperCase() + m.slice(1));
      assert.equal(Number(totals[i]), api.totals[m], `CSV total ${heads[i]}`);
    }
    assert.equal(lines.length, api.rows.length + 2, 'header, the API\'s rows, totals');
    api.rows.forEach((r, i) => {
      assert.deepEqual([lines[i + 1][0], lines[i + 1][1]], [r.day, r.campaign_id], `CSV row ${i + 2} keys`);
      assert.equal(Number(lines[i + 1][heads.indexOf('Visits')]), r.visits, `CSV row ${i + 2} visits`);
    });
  });

  await t.test('Japanese labels, the map by visits, and a phone-width layout', async () => {
    await page.click('#lang');
    assert.equal(await page.getAttribute('html', 'lang'), 'ja');
    assert.equal(await page.textContent('#table-heading'), '集計');
    assert.equal(await page.textContent('#download'), 'CSVをダウンロード');
    await page.check('input[name=metric][value=visits]');
    assert.match(await page.textContent('#map-legend'), /来店/);
    // Offline (no tile server configured): the hexagons draw over a
    // graticule of labelled lines, not over nothing.
    assert.ok(await page.locator('#map .graticule-label').count() > 0, 'a labelled graticule without a base map');
    assert.ok(await page.locator('#map .leaflet-overlay-pane path').count() > 0, 'hexagons on the map');
    const [gridZ, hexZ] = await page.evaluate(() => ['graticule', 'overlay'].map((n) => Number(getComputedStyle(document.querySelector(`#map .leaflet-${n}-pane`)).zIndex)));
    assert.ok(gridZ < hexZ, `the graticule (z ${gridZ}) lies under the hexagons (z ${hexZ})`);
    await page.selectOption('#rows', 'campaign');
    await page.click('#show');
    await waitShown();
    await checkAgainstAPI(KEYS.admin, { campaigns: [COFFEE], label: 'admin in Japanese' });

    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(300); // let the chart follow the width
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `nothing is wider than a phone: ${overflow}px too wide`);
    const chartWidth = await page.evaluate(() => document.querySelector('#chart canvas').getBoundingClientRect().width);
    assert.ok(chartWidth <= 390, `the chart fits: ${chartWidth}px`);
    await page.screenshot({ path: join(out, 'dashboard-phone-ja.png'), fullPage: true });
    assert.deepEqual(await accessibilityProblems(page), [], 'axe-core finds nothing, in Japanese at phone width');
  });

  await t.test('a configured base map: tiles from the tile server, admitted by the page', async () => {
    // A tile server on loopback: every tile a grey square with a darker
    // edge, so that the tile grid shows in the screenshot.
    const requested = [];
    const tileServer = createServer((req, res) => {
      requested.push(req.url);
      res.writeHead(200, { 'Content-Type': 'image/png', 'Access-Control-Allow-Origin': '*' });
      res.end(TILE_PNG);
    });
    await new Promise((r) => tileServer.listen(0, '127.0.0.1', r));
    const tiles = `http://127.0.0.1:${tileServer.address().port}/{z}/{x}/{y}.png`;
    const second = await startNavad('tiles', ['--dashboard-tiles', tiles, '--dashboard-tiles-attribution', '© e2e tiles']);
    const errors = [];
    const p2 = await context.newPage();
    try {
      p2.on('pageerror', (e) => errors.push(e.message));
      p2.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
      await p2.setViewportSize({ width: 1000, height: 800 });
      await p2.goto(second.url + '/dashboard/');
      await p2.locator('#key').fill(KEYS.admin);
      await p2.locator('#key').press('Enter');
      await p2.waitForSelector('#map img.leaflet-tile-loaded');
      assert.match(await p2.textContent('.leaflet-control-attribution'), /© e2e tiles/);
      assert.equal(await p2.locator('.graticule-label').count(), 0, 'no graticule over a base map');
      assert.ok(requested.some((u) => /^\/\d+\/\d+\/\d+\.png$/.test(u)), 'tiles asked for by z/x/y: ' + requested.slice(0, 3));
      await p2.locator('#map').screenshot({ path: join(out, 'dashboard-map-tiles.png') });
      assert.deepEqual(errors, [], 'no errors, no Content-Security-Policy violations');
    } finally {
      await p2.close();
      await stopNavad(second.proc);
      tileServer.close();
    }
  });

  await t.test('nothing went wrong in the page', () => {
    assert.deepEqual(problems, []);
  });
});
