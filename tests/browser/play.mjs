// Plays an HLS stream through vidgate with hls.js in headless Chromium (tests/players.rs).
//
//   node tests/browser/play.mjs --chromium /usr/bin/chromium --page <player.html URL>
//        [--timeout-ms 30000] [--follow-up]
//
// Opens the page (tests/browser/player.html#src=<manifest URL>) and waits until the video has
// played past one second. With --follow-up it then fetches the manifest URL once more from the
// page, presenting the session vidgate handed out in X-Vidgate-Session: a request with a
// custom header, so that the browser sends a CORS preflight first when the page is on another
// origin.
//
// Prints one JSON object on stdout: {ok, currentTime, session, followUp, report}. Exits 0 when
// the video played; 1 when it did not, in time or before the player reported a fatal error
// (with the page's console, failed requests and the player's report on stderr); 2 on a usage
// error or when the whole run overran its bound.
import { chromium } from 'playwright-core';

function usage(message) {
  console.error(`play.mjs: ${message}`);
  console.error('usage: node play.mjs --chromium PATH --page URL [--timeout-ms N] [--follow-up]');
  process.exit(2);
}

const args = { timeoutMs: 30000, followUp: false };
for (let i = 2; i < process.argv.length; i++) {
  const arg = process.argv[i];
  const value = () => process.argv[++i] ?? usage(`${arg} needs a value`);
  if (arg === '--chromium') args.chromium = value();
  else if (arg === '--page') args.page = value();
  else if (arg === '--timeout-ms') args.timeoutMs = Number(value());
  else if (arg === '--follow-up') args.followUp = true;
  else usage(`unknown argument ${arg}`);
}
if (!args.chromium) usage('--chromium is required');
if (!args.page) usage('--page is required');
if (!(args.timeoutMs > 0)) usage('--timeout-ms must be a positive number');

// Whatever happens below, the process ends: a browser that hangs must not hang the test.
const hardStop = setTimeout(() => {
  console.error(`play.mjs: overran ${args.timeoutMs + 20000} ms in all; giving up`);
  process.exit(2);
}, args.timeoutMs + 20000);
hardStop.unref();

const diagnostics = [];
const note = (line) => diagnostics.push(line);

let browser;
let result = { ok: false };
try {
  browser = await chromium.launch({
    executablePath: args.chromium,
    headless: true,
    // As root (CI), Chromium refuses to start without --no-sandbox.
    args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required', '--disable-dev-shm-usage'],
    timeout: 20000,
  });
  const page = await browser.newPage();
  page.on('console', (m) => note(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => note(`page error: ${e.message}`));
  page.on('requestfailed', (r) =>
    note(`request failed: ${r.method()} ${strip(r.url())}: ${r.failure()?.errorText}`));
  page.on('response', (r) => {
    if (r.status() >= 400) note(`response ${r.status()}: ${r.request().method()} ${strip(r.url())}`);
  });

  await page.goto(args.page, { waitUntil: 'load', timeout: 15000 });
  let played = true;
  try {
    // Done when the video passed 1 s, or as soon as the player gave up (a fatal error).
    await page.waitForFunction(
      () => {
        const video = document.getElementById('video');
        const fatal = window.report && window.report.errors.some((e) => e.fatal || e.video);
        return fatal || (video && video.currentTime > 1);
      },
      null,
      { timeout: args.timeoutMs, polling: 100 },
    );
    played = await page.evaluate(() => document.getElementById('video').currentTime > 1);
    if (!played) note('the player gave up: a fatal error (see the report)');
  } catch (e) {
    played = false;
    note(`the video did not pass 1 s within ${args.timeoutMs} ms: ${e.message.split('\n')[0]}`);
  }
  const state = await page.evaluate(() => ({
    currentTime: document.getElementById('video').currentTime,
    readyState: document.getElementById('video').readyState,
    report: window.report,
  }));
  result = { ok: played, currentTime: state.currentTime, readyState: state.readyState,
    session: state.report?.session ?? null, report: state.report };

  if (played && args.followUp) {
    result.followUp = await page.evaluate(async ({ src, session }) => {
      try {
        const response = await fetch(src, { headers: { 'X-Vidgate-Session': session ?? '' } });
        const body = await response.text();
        return {
          status: response.status,
          contentType: response.headers.get('content-type'),
          cacheControl: response.headers.get('cache-control'),
          session: response.headers.get('x-vidgate-session'),
          firstLine: body.split('\n')[0],
        };
      } catch (e) {
        // A refused preflight or a missing Access-Control-Allow-Origin ends up here.
        return { error: String(e) };
      }
    }, { src: state.report?.src, session: state.report?.session });
    if (result.followUp.status !== 200) {
      note(`the follow-up fetch failed: ${JSON.stringify(result.followUp)}`);
    }
  }
} catch (e) {
  note(`play.mjs: ${e.stack || e}`);
} finally {
  if (browser) await browser.close().catch(() => {});
}

console.log(JSON.stringify(result));
if (!result.ok) {
  console.error(diagnostics.join('\n'));
  console.error(`player report: ${JSON.stringify(result.report ?? null, null, 2)}`);
  process.exit(1);
}
if (diagnostics.length > 0) console.error(diagnostics.join('\n'));
process.exit(0);

// A URL without its query: the diagnostics never print a token or a session.
function strip(url) {
  return url.split('?')[0];
}
