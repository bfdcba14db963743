/**
 * Reports: the JUnit XML parsed by Python's XML parser (one testcase per expectation, failures with the message that
 * names the frame), and the HTML report rendered by headless Chromium, whose screenshot must show the plots (pixels of
 * the series colours inside the plot areas) and whose DOM must carry the verdicts.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execFileSync, spawnSync } from "node:child_process";
import { PNG } from "pngjs";
import { parseFrame } from "../../frame/frame";
import { checkAll } from "../../hil/checks";
import { emptyRecord } from "../../hil/record";
import { parseScenario } from "../../hil/scenario";
import { scenarioReport } from "../../hil/summary";
import { htmlReport, junitXml, jsonReport, PALETTE, type ScenarioReport } from "../../hil/report";
import type { RunOutcome } from "../../hil/runner";

const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => fs.existsSync(p));

/** A finished run over 400 frames of two IDs at 100 Hz each, one of them lost, with statuses along the way. */
function outcome(): RunOutcome {
  const sc = parseScenario(
    `name: report <fixture> & "quotes"
description: built in code
dbc: ${path.basename(__filename)}
steps: []
expect:
  - delivery: {}
  - latency: { p99: 50ms }
  - cycle: { id: 0x100, period: 10ms, tolerance: 2ms }
  - signals: { messages: [M100] }
`,
    __filename,
  );
  const rec = emptyRecord(sc.name, "sim", 0);
  for (let i = 0; i < 400; i++) {
    const id = i % 2 ? 0x200 : 0x100;
    const frame = parseFrame(`${id.toString(16)}#${(i & 0xff).toString(16).padStart(2, "0")}${((i * 3) & 0xff).toString(16).padStart(2, "0")}`);
    const sentAt = 1000 + i * 5;
    rec.replayed.push({ frame, index: i, trace: "bus", traceT: i * 0.005, dueAt: sentAt - 0.05, sentAt });
    if (i === 201) continue;
    rec.delivered.push({ frame, boot: 1, seq: Math.floor(i / 10), pos: i % 10, deviceT: sentAt + 2, receivedAt: sentAt + 10 + (i % 7) * 3 });
  }
  for (let k = 0; k < 5; k++) rec.statuses.push({ at: 1000 + k * 500, online: true, counters: { rx: k * 100, ack: k * 90 }, raw: {} });
  rec.endedAt = 3500;
  const decode = (f: ReturnType<typeof parseFrame>) => ({ message: `M${f.id.toString(16)}`, signals: { speed: f.data[0] * 0.5, torque: f.data[1] } });
  const { analysis, results } = checkAll(rec, sc, decode);
  return {
    scenario: sc,
    record: rec,
    analysis,
    results,
    pass: results.every((r) => r.pass),
    decode,
    harness: { framesSent: 400, latenessP50: 0.05, latenessP99: 0.2, latenessMax: 0.4, late: 0, drift: 0.01 },
  };
}

describe("hil reports", function () {
  this.timeout(60000);
  let dir: string;
  let report: ScenarioReport;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "vgw-hil-report-"));
    report = scenarioReport(outcome(), Date.UTC(2026, 0, 1));
  });
  after(() => (process.env.VGW_KEEP_REPORT ? undefined : fs.rmSync(dir, { recursive: true, force: true })));

  it("the fixture run fails exactly its delivery check, naming the lost frame", () => {
    const failed = report.results.filter((r) => !r.pass);
    assert.deepEqual(
      failed.map((r) => r.kind),
      ["delivery"],
      report.results.map((r) => `${r.name}: ${r.message}`).join("\n"),
    );
    assert.match(failed[0].message, /1 of 400 frames missing.*0x200 replay #201 \(bus t=1\.005000 s\)/);
  });

  it("JUnit XML parses (Python's xml.etree) with one testcase per expectation", () => {
    const file = path.join(dir, "junit.xml");
    fs.writeFileSync(file, junitXml([report]));
    const py = `import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
s = r.find("testsuite")
print(r.tag, s.get("name"), s.get("tests"), s.get("failures"))
for c in s.findall("testcase"):
    f = c.find("failure")
    print(c.get("name"), "|", "FAIL " + f.get("message") if f is not None else "ok")`;
    const out = execFileSync("/usr/bin/python3", ["-c", py, file], { encoding: "utf8" }).trim().split("\n");
    assert.equal(out[0], 'testsuites report <fixture> & "quotes" 4 1');
    assert.equal(out.length, 5);
    assert.match(out[1], /^delivery \| FAIL 1 of 400 frames missing .*0x200 replay #201/);
    assert.match(out[2], /^latency p99 <= 50 ms \| ok$/);
  });

  it("JSON report carries the verdict and every result", () => {
    const j = JSON.parse(jsonReport([report]));
    assert.equal(j.pass, false);
    assert.equal(j.scenarios[0].results.length, 4);
    assert.ok(j.scenarios[0].metrics["harness timing error p99 ms"] > 0);
  });

  it("the HTML report renders its plots in headless Chromium", function () {
    if (!CHROMIUM) throw new Error("chromium is not installed (scripts/setup.sh installs it: apt-get install chromium)");
    const html = path.join(dir, "report.html");
    const png = path.join(dir, "shot.png");
    fs.writeFileSync(html, htmlReport([report]));
    const flags = [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--hide-scrollbars",
      `--user-data-dir=${path.join(dir, "profile")}`,
    ];
    const shot = spawnSync(CHROMIUM, [...flags, "--window-size=1400,2600", `--screenshot=${png}`, `file://${html}`], { timeout: 45000, encoding: "utf8" });
    assert.ok(fs.existsSync(png), `no screenshot: ${shot.stderr}`);
    const img = PNG.sync.read(fs.readFileSync(png));
    const hex = (c: string) => [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16));
    const count = (rgb: number[]) => {
      let n = 0;
      for (let i = 0; i < img.data.length; i += 4) {
        if (Math.abs(img.data[i] - rgb[0]) < 8 && Math.abs(img.data[i + 1] - rgb[1]) < 8 && Math.abs(img.data[i + 2] - rgb[2]) < 8) n++;
      }
      return n;
    };
    // Histogram bars and the first series of every plot are PALETTE[0]; the second series PALETTE[1].
    const blue = count(hex(PALETTE[0]));
    const red = count(hex(PALETTE[1]));
    assert.ok(blue > 2000, `only ${blue} pixels of ${PALETTE[0]}: the plots did not render`);
    assert.ok(red > 300, `only ${red} pixels of ${PALETTE[1]}: the second series did not render`);
    // The verdict badge: the FAIL background colour must be on screen.
    assert.ok(count([0xff, 0xd6, 0xd6]) > 500, "no FAIL row/badge visible");

    const dom = spawnSync(CHROMIUM, [...flags, "--dump-dom", `file://${html}`], { timeout: 45000, encoding: "utf8" });
    assert.match(dom.stdout, /<span id="verdict" class="verdict fail">FAIL<\/span>/);
    assert.match(dom.stdout, /0x200 replay #201/);
    assert.equal((dom.stdout.match(/<svg class="plot"/g) ?? []).length, report.histograms.length + report.plots.length);
    assert.ok(report.plots.some((p) => p.title.startsWith("signal ")), "a signal plot");
  });
});
