// The web UI in a real browser (Debian's Chromium, headless, driven by playwright-core) against
// the real stack that tests/browser/run.sh starts (deploy/dev/up.sh: wes-api, results-crawler,
// one-node Slurm, S3, the test OIDC provider). See docs/ui.md.
//
// The researcher logs in through the provider's own login form, lands on the start page,
// submits the example workflow from the form made from its parameter schema, watches the run
// reach COMPLETE on its page without a reload, sees it on the runs page and its outputs; a data
// controller looks at the held plot in the review queue and returns the request, the researcher
// answers on the run page, the controller approves the plot and opens the registry, the datasets
// and the audit log (the chain verified); the researcher has shared the run with the collaborator
// from its page, and the collaborator logs in, finds it under Results and downloads its released
// file with its button (a presigned link; the bytes' SHA-256 is the one the page shows); the
// researcher cancels a second run with its button and logs out with the form. Every page is checked with axe-core (no serious or critical
// violation) and for Content-Security-Policy violations; screenshots at desktop and phone width
// go to docs/ui/.
//
// Environment: SPE_UI_URL (wes-api), SPE_UI_OIDC_HELPER (the provider's test helper, for the
// researcher's sub), SPE_CHROMIUM (default /usr/bin/chromium),
// SPE_UI_SCREENSHOTS (default <repo>/docs/ui); for the encrypted download (tests/browser/run.sh
// sets them from deploy/dev/up.sh's stack): SPE_UI_SEALED_RUN (a run whose results.csv is stored
// Crypt4GH-encrypted, shared with the collaborators), SPE_UI_CRYPT4GH (Python crypt4gh),
// SPE_UI_C4GH_KEY and SPE_UI_C4GH_PASS (the collaborator's secret key, whose public half is
// registered, and its passphrase file), SPE_UI_PLAIN_RESULTS (the plaintext run's results.csv).
import assert from 'node:assert/strict';
import { readFileSync, mkdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const BASE = process.env.SPE_UI_URL || 'http://127.0.0.1:8089';
// The provider's test helper (its port + 2): the users and their subs.
const HELPER = process.env.SPE_UI_OIDC_HELPER || 'http://127.0.0.1:59102';
const SHOTS = process.env.SPE_UI_SCREENSHOTS || path.join(here, '..', '..', 'docs', 'ui');
const ENDED = ['COMPLETE', 'EXECUTOR_ERROR', 'SYSTEM_ERROR', 'CANCELED'];
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
mkdirSync(SHOTS, { recursive: true });

let step = 'start';
const say = (text) => { step = text; console.log(`browser: ${text}`); };

// CSP violations and script errors on any page fail the test.
const problems = [];
function watch(page) {
  page.on('console', (msg) => {
    if (/Content[- ]Security[- ]Policy/i.test(msg.text())) problems.push(`${page.url()}: ${msg.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`${page.url()}: ${err.message}`));
}

// axe-core on the page as it is: zero serious or critical violations.
async function accessible(page, what) {
  await page.evaluate(AXE);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(
    bad.map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`),
    [],
    `axe-core on ${what}`,
  );
  console.log(`browser: axe-core on ${what}: ${result.violations.length} minor or moderate, none serious or critical`);
}

async function shoot(page, phone, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}-desktop.png`), fullPage: true });
  const small = await phone.newPage();
  watch(small);
  await small.goto(page.url());
  await accessible(small, `${name} at 390px`);
  // Usable at phone width: nothing wider than the screen (wide tables scroll in their box).
  const wide = await small.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(wide <= PHONE.width, `${name} at 390px is ${wide}px wide`);
  await small.screenshot({ path: path.join(SHOTS, `${name}-phone.png`), fullPage: true });
  await small.close();
}

// The provider's dev login and consent forms, from its login page; `login` is the account id,
// which is the test user's `sub`.
async function providerLogin(page, login) {
  await page.fill('input[name="login"]', login);
  await page.fill('input[name="password"]', 'any');
  await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
  // The provider's consent page, once per client and user.
  for (let i = 0; i < 3 && !page.url().startsWith(BASE); i++) {
    const consent = page.locator('input[name="prompt"][value="consent"]');
    if ((await consent.count()) === 0) {
      throw new Error(`unexpected page at ${page.url()}: ${(await page.textContent('body')).slice(0, 500)}`);
    }
    await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
  }
}

const browser = await chromium.launch({
  executablePath: process.env.SPE_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  // As root (CI) Chromium's own sandbox cannot start; the pages are this service's only.
  args: ['--no-sandbox'],
});
try {
  const desktop = await browser.newContext({ viewport: DESKTOP });
  const page = await desktop.newPage();
  watch(page);

  say('an anonymous browser gets the 401 page offering the login');
  const anonymous = await page.goto(`${BASE}/`);
  assert.equal(anonymous.status(), 401);
  const headers = anonymous.headers();
  assert.match(headers['content-security-policy'], /default-src 'self'/);
  assert.match(headers['content-security-policy'], /frame-ancestors 'none'/);
  assert.equal(headers['x-frame-options'], 'DENY');
  await accessible(page, 'the 401 page');

  say("logging in through the provider's login form as the researcher");
  await Promise.all([page.waitForNavigation(), page.getByRole('link', { name: 'Log in' }).click()]);
  if ((await page.locator('input[name="login"]').count()) === 0) {
    throw new Error(`no login form at ${page.url()}: ${(await page.textContent('body')).slice(0, 500)}`);
  }
  const users = await (await fetch(`${HELPER}/users`)).json();
  await providerLogin(page, users.researcher.sub);
  await page.waitForURL(`${BASE}/`);

  say('the start page shows the researcher what they can do, and nothing of other roles');
  await page.getByRole('heading', { name: /^Welcome/ }).waitFor();
  assert.equal(await page.getByRole('heading', { name: 'Researcher' }).count(), 1);
  assert.equal(await page.getByRole('heading', { name: 'Data controller' }).count(), 0);
  await accessible(page, 'the start page');
  const state = await desktop.storageState();
  const phone = await browser.newContext({ viewport: PHONE, storageState: state, isMobile: true, hasTouch: true });
  await shoot(page, phone, 'home');

  say('the submit form, made from the workflow\'s parameter schema, submits a run');
  await page.getByRole('link', { name: 'Submit', exact: true }).click();
  await page.waitForURL(`${BASE}/ui/submit`);
  await accessible(page, 'the workflow list');
  await page.getByRole('link', { name: 'quals@1.0.0' }).click();
  await page.waitForURL(`${BASE}/ui/submit/quals/1.0.0`);
  await page.getByLabel('dataset').selectOption('quals-demo');
  assert.equal(await page.getByLabel('min_qual').inputValue(), '30', 'the schema default');
  await page.getByLabel(/^Tags/).fill('source:browser-test');
  await accessible(page, 'the submit form');
  await shoot(page, phone, 'submit');
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Submit the run' }).click()]);
  if (!/\/ui\/runs\/[0-9a-f-]{36}$/.test(page.url())) {
    throw new Error(`not submitted (${page.url()}): ${(await page.textContent('main')).trim().slice(0, 400)}`);
  }
  const runId = page.url().split('/').pop();

  say(`the run page follows run ${runId} to its end without a reload`);
  await page.getByRole('heading', { name: 'State history' }).waitFor();
  await accessible(page, 'a live run page');
  // A marker a reload would lose.
  await page.evaluate(() => { window.speNotReloaded = true; });
  const seen = new Set();
  const live = page.locator(`[data-run-id="${runId}"]`);
  const deadline = Date.now() + 300_000;
  let shown = (await live.textContent()).trim();
  while (!ENDED.includes(shown)) {
    assert.ok(Date.now() < deadline, `the run did not end in 300 s (last state ${shown})`);
    seen.add(shown);
    await page.waitForTimeout(500);
    shown = (await live.textContent()).trim();
  }
  console.log(`browser: states shown live: ${[...seen].join(' -> ')} -> ${shown}`);
  assert.equal(shown, 'COMPLETE');
  assert.equal(await page.evaluate(() => window.speNotReloaded), true, 'the page was reloaded');
  assert.equal(await page.locator('#cancel-form').count(), 0, 'the cancel form is gone');
  assert.ok(await page.locator('#ended-notice').isVisible(), 'the ended notice shows');

  say('the runs page shows the run COMPLETE; its page lists its outputs once the crawler has looked');
  await page.goto(`${BASE}/ui/runs`);
  assert.equal((await page.locator(`[data-run-id="${runId}"]`).textContent()).trim(), 'COMPLETE');
  await shoot(page, phone, 'runs');
  for (let i = 0; i < 60; i++) {
    await page.goto(`${BASE}/ui/runs/${runId}`);
    const listed = page.locator('td code', { hasText: /^(results\.csv|plots\/quals\.svg)$/ });
    if ((await listed.count()) === 2) break;
    await page.waitForTimeout(500);
  }
  await page.locator('td code', { hasText: 'results.csv' }).waitFor({ timeout: 1000 });
  await page.locator('td code', { hasText: 'plots/quals.svg' }).waitFor({ timeout: 1000 });
  say('the researcher shares the run with the collaborator from its page');
  await page.getByLabel('Share with').selectOption('subject');
  await page.getByLabel(/^User or group/).fill(users.collaborator.sub);
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Share', exact: true }).click()]);
  assert.equal(page.url(), `${BASE}/ui/runs/${runId}`);
  await page.locator('table.shares td code', { hasText: users.collaborator.sub }).waitFor();
  await accessible(page, 'an ended run page');
  await shoot(page, phone, 'run');

  say('a data controller looks at the held plot in the review queue and returns the request');
  const controller = await browser.newContext({ viewport: DESKTOP });
  const cpage = await controller.newPage();
  watch(cpage);
  await cpage.goto(`${BASE}/auth/login`);
  await providerLogin(cpage, users.controller.sub);
  await cpage.waitForURL(`${BASE}/`);
  assert.equal(await cpage.getByRole('heading', { name: 'Researcher' }).count(), 0);
  await cpage.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Review queue' }).click();
  await cpage.waitForURL(`${BASE}/ui/reviews`);
  await accessible(cpage, 'the review queue');
  const cphone = await browser.newContext({
    viewport: PHONE, storageState: await controller.storageState(), isMobile: true, hasTouch: true,
  });
  await shoot(cpage, cphone, 'reviews');
  await cpage.getByRole('link', { name: runId }).click();
  await cpage.waitForURL(`${BASE}/ui/reviews/${runId}`);
  const plotSection = () => cpage.locator('section.review-file', { has: cpage.locator('h2', { hasText: 'plots/quals.svg' }) });
  const image = plotSection().locator('img.preview-image');
  await image.waitFor();
  assert.ok(await image.evaluate((img) => img.complete && img.naturalWidth > 0), 'the held image shows');
  await accessible(cpage, 'a review request');
  await cpage.getByLabel(/^Return the request/).fill('Which samples are in the histogram?');
  await Promise.all([cpage.waitForNavigation(), cpage.getByRole('button', { name: 'Return to the researcher' }).click()]);
  assert.equal(cpage.url(), `${BASE}/ui/reviews/${runId}`);
  await cpage.getByText('Which samples are in the histogram?').waitFor();

  say('the researcher reads the return on the run page and answers it');
  await page.goto(`${BASE}/ui/runs/${runId}`);
  await page.getByText('Which samples are in the histogram?').waitFor();
  await page.getByLabel(/^Your answer/).fill('All samples of the demo dataset; no sample is identifiable.');
  await accessible(page, 'a run page with a returned review');
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Send the answer' }).click()]);
  assert.equal(page.url(), `${BASE}/ui/runs/${runId}`);
  await page.getByText('The researcher answered').waitFor();
  assert.equal(await page.getByRole('button', { name: 'Send the answer' }).count(), 0);

  say('the data controller sees the answer and approves the plot');
  await cpage.reload();
  await cpage.getByText('All samples of the demo dataset').waitFor();
  await shoot(cpage, cphone, 'review');
  await plotSection().getByLabel(/^Comment/).fill('aggregate histogram, no small cells');
  await Promise.all([cpage.waitForNavigation(), plotSection().getByRole('button', { name: 'Approve' }).click()]);
  assert.equal(cpage.url(), `${BASE}/ui/reviews/${runId}`);
  await plotSection().locator('strong', { hasText: /^approved$/ }).waitFor();
  assert.ok((await plotSection().textContent()).includes('aggregate histogram, no small cells'));
  await cpage.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Workflows' }).click();
  await cpage.waitForURL(`${BASE}/ui/workflows`);
  await cpage.getByRole('heading', { name: /quals@1\.0\.0/ }).waitFor();
  await accessible(cpage, 'the workflow registry');
  await shoot(cpage, cphone, 'workflows');

  say('the data controller registers a new version from its tar.gz, reads its files and approves it');
  const version = process.env.SPE_UI_NEW_VERSION;
  await cpage.getByLabel(/^The workflow's folder as a tar\.gz/).setInputFiles(process.env.SPE_UI_WORKFLOW_TGZ);
  await Promise.all([cpage.waitForNavigation(), cpage.getByRole('button', { name: 'Register as a draft' }).click()]);
  assert.equal(cpage.url(), `${BASE}/ui/workflows/quals/${version}`);
  await cpage.locator('.egress', { hasText: /^draft$/ }).waitFor();
  await cpage.locator('pre.file-text', { hasText: `version: ${version}` }).waitFor();
  await Promise.all([cpage.waitForNavigation(), cpage.getByRole('link', { name: 'Snakefile' }).click()]);
  await cpage.locator('pre.file-text', { hasText: 'rule plot_quals:' }).waitFor();
  await accessible(cpage, "a workflow version's page");
  await shoot(cpage, cphone, 'workflow');
  await Promise.all([cpage.waitForNavigation(), cpage.getByRole('button', { name: `Approve quals@${version}` }).click()]);
  assert.equal(cpage.url(), `${BASE}/ui/workflows`);
  const registered = cpage.locator('section', { has: cpage.getByRole('heading', { name: `quals@${version}` }) });
  await registered.locator('.egress', { hasText: /^approved$/ }).waitFor();
  assert.equal(await registered.getByRole('button', { name: /^Approve/ }).count(), 0);

  say('the data controller opens the datasets and the audit log, whose chain verifies');
  await cpage.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Datasets' }).click();
  await cpage.waitForURL(`${BASE}/ui/datasets`);
  await cpage.getByRole('heading', { name: /quals-demo/ }).first().waitFor();
  await accessible(cpage, 'the datasets page');
  await shoot(cpage, cphone, 'datasets');
  await cpage.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Audit log' }).click();
  await cpage.waitForURL(`${BASE}/ui/audit`);
  // The verdict is loaded after the page (it verifies the whole chain).
  await cpage.locator('#chain-status', { hasText: 'Chain verified:' }).waitFor();
  await accessible(cpage, 'the audit log');
  await shoot(cpage, cphone, 'audit');
  await cphone.close();
  await controller.close();

  say('the collaborator logs in, finds the shared run under Results and downloads its released file');
  const collaborator = await browser.newContext({ viewport: DESKTOP, acceptDownloads: true });
  const kpage = await collaborator.newPage();
  watch(kpage);
  await kpage.goto(`${BASE}/auth/login`);
  await providerLogin(kpage, users.collaborator.sub);
  await kpage.waitForURL(`${BASE}/`);
  assert.equal(await kpage.getByRole('heading', { name: 'Collaborator' }).count(), 1);
  assert.equal(await kpage.getByRole('heading', { name: 'Researcher' }).count(), 0);
  await kpage.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Results' }).click();
  await kpage.waitForURL(`${BASE}/ui/results`);
  await accessible(kpage, 'the results list');
  const kphone = await browser.newContext({
    viewport: PHONE, storageState: await collaborator.storageState(), isMobile: true, hasTouch: true,
  });
  await shoot(kpage, kphone, 'results');
  await kpage.getByRole('link', { name: runId }).click();
  await kpage.waitForURL(`${BASE}/ui/results/${runId}`);
  // results.csv leaves as soon as the crawler has uploaded it.
  const button = kpage.getByRole('button', { name: 'Download results.csv' });
  for (let i = 0; i < 60 && (await button.count()) === 0; i++) {
    await kpage.waitForTimeout(500);
    await kpage.reload();
  }
  await button.waitFor({ timeout: 1000 });
  await accessible(kpage, "a run's released files");
  await shoot(kpage, kphone, 'result');
  const row = kpage.locator('tr', { has: kpage.locator('td code', { hasText: /^results\.csv$/ }) });
  const expected = (await row.locator('code.digest').textContent()).trim();
  // The button posts the form; the 303 goes to the presigned link, which Chromium downloads
  // (or shows, for text): either way the bytes are the released file's.
  const downloaded = kpage.waitForEvent('download', { timeout: 15_000 }).catch(() => null);
  const signed = kpage.waitForResponse((r) => r.url().includes('X-Amz-Signature='), { timeout: 15_000 });
  await button.click();
  const response = await signed;
  assert.equal(response.status(), 200, 'the presigned link answers');
  const download = await downloaded;
  const bytes = download ? readFileSync(await download.path()) : await response.body();
  assert.equal(createHash('sha256').update(bytes).digest('hex'), expected, 'the downloaded bytes are the released file');
  console.log(`browser: the collaborator downloaded results.csv (${bytes.length} bytes, SHA-256 as released)`);

  say('the collaborator downloads an encrypted result bound to their key and decrypts it');
  const sealed = process.env.SPE_UI_SEALED_RUN;
  assert.ok(sealed, 'SPE_UI_SEALED_RUN: the run with an encrypted result (tests/browser/run.sh sets it)');
  await kpage.goto(`${BASE}/ui/results/${sealed}`);
  await kpage.getByRole('heading', { name: 'Encrypted files' }).waitFor();
  await kpage.getByText('crypt4gh decrypt --sk me.sec').waitFor();
  // The key up.sh registered for the collaborator: downloads are bound to it.
  const fingerprint = (await kpage.locator('#h-decrypt ~ p code.digest').first().textContent()).trim();
  await accessible(kpage, 'released files stored encrypted');
  await shoot(kpage, kphone, 'result-encrypted');
  const [sealedDownload] = await Promise.all([
    kpage.waitForEvent('download', { timeout: 15_000 }),
    kpage.getByRole('link', { name: 'Download results.csv encrypted to your key' }).click(),
  ]);
  assert.equal(sealedDownload.suggestedFilename(), 'results.csv.c4gh');
  const sealedFile = await sealedDownload.path();
  assert.equal(readFileSync(sealedFile).subarray(0, 8).toString(), 'crypt4gh', 'a Crypt4GH file');
  const plain = execFileSync(process.env.SPE_UI_CRYPT4GH, ['decrypt', '--sk', process.env.SPE_UI_C4GH_KEY], {
    input: readFileSync(sealedFile),
    env: { ...process.env, C4GH_PASSPHRASE: readFileSync(process.env.SPE_UI_C4GH_PASS, 'utf8').trim() },
  });
  assert.ok(plain.equals(readFileSync(process.env.SPE_UI_PLAIN_RESULTS)), 'decrypted: the plaintext run\'s results.csv');
  console.log(`browser: the encrypted results.csv came bound to key ${fingerprint.slice(0, 16)}... and decrypted with it`);
  await kphone.close();
  await collaborator.close();

  say('a second run, cancelled with its button, shows CANCELED without a reload');
  await page.goto(`${BASE}/ui/submit/quals/1.0.0`);
  await page.getByLabel('dataset').selectOption('quals-demo');
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Submit the run' }).click()]);
  const second = page.url().split('/').pop();
  assert.match(second, /^[0-9a-f-]{36}$/, page.url());
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Cancel this run' }).click()]);
  assert.equal(page.url(), `${BASE}/ui/runs/${second}`, 'back on the run page after the cancel');
  await page.evaluate(() => { window.speNotReloaded = true; });
  const canceled = page.locator(`[data-run-id="${second}"]`);
  for (let t = Date.now(); (await canceled.textContent()).trim() !== 'CANCELED'; ) {
    assert.ok(Date.now() - t < 120_000, `the cancelled run shows ${(await canceled.textContent()).trim()}`);
    await page.waitForTimeout(500);
  }
  assert.equal(await page.evaluate(() => window.speNotReloaded), true, 'the page was reloaded');

  say('logout is a form post; afterwards the pages ask for a login again');
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.waitForURL((url) => !url.href.startsWith(`${BASE}/ui/`));
  const after = await page.goto(`${BASE}/ui/runs`);
  assert.equal(after.status(), 401);

  assert.deepEqual(problems, [], 'no CSP violation or script error on any page');
  await phone.close();
  await desktop.close();
  console.log(`browser: all checks passed; screenshots in ${SHOTS}`);
} catch (e) {
  console.error(`browser: FAILED at "${step}"`);
  if (problems.length) console.error(problems.join('\n'));
  throw e;
} finally {
  await browser.close();
}
