// The whole test suite: type check every workspace, then run every workspace's tests, through
// turbo. Bun's per-package summaries (" 12 pass", " 0 fail", " 1 skip") are added up into one
// closing "N passed, N failed, N skipped" line; the exit code is non-zero on any type error or
// failed test. Test suites run one package at a time: several of them hold wall-clock deadlines
// (gathers, upload windows, multi-process runs) and must not share the two cores with another
// package's WebGPU (lavapipe) tests, which take every core they are given. Each failed test's
// error block is printed again just before the closing line, so a log's tail names what failed.
import { spawn } from "node:child_process";

const FAILURE_CONTEXT_LINES = 60;
const failures = [];
const env = { ...process.env, TURBO_TELEMETRY_DISABLED: "1", TURBO_NO_UPDATE_NOTIFIER: "1", FORCE_COLOR: "0" };
const turbo = (args, concurrency) =>
  new Promise((resolve) => {
    let passed = 0, failed = 0, skipped = 0, tail = "";
    // Per package, the lines since its last test result, less INFO logs: bun prints a failure's error before its "(fail)" line.
    const since = new Map();
    const child = spawn("npx", ["--no-install", "turbo", "run", ...args, `--concurrency=${concurrency}`, "--continue", "--output-logs=full"], {
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const scan = (chunk) => {
      process.stdout.write(chunk);
      const lines = (tail + chunk.toString()).split("\n");
      tail = lines.pop() ?? "";
      for (const line of lines) {
        // turbo prefixes each line with "pkg:task: "; bun's summary is " N pass" / " N fail" / " N skip".
        const task = /^([^\s:]+:[^\s:]+): /.exec(line)?.[1] ?? "";
        const text = line.slice(task === "" ? 0 : task.length + 2);
        const block = since.get(task) ?? [];
        if (/^\((pass|fail|skip|todo)\) /.test(text)) {
          // Bun lists the failures again at the end of a package's run: each is kept once, with its error.
          if (text.startsWith("(fail) ") && !failures.some((f) => f.endsWith(line))) failures.push([...block, line].join("\n"));
          since.set(task, []);
        } else if (!/ level=(INFO|DEBUG) /.test(text)) {
          block.push(line);
          if (block.length > FAILURE_CONTEXT_LINES) block.shift();
          since.set(task, block);
        }
        const m = /^\s*(\d+) (pass|fail|skip)\s*$/.exec(text);
        if (m?.[2] === "pass") passed += Number(m[1]);
        if (m?.[2] === "fail") failed += Number(m[1]);
        if (m?.[2] === "skip") skipped += Number(m[1]);
      }
    };
    child.stdout.on("data", scan);
    child.stderr.on("data", scan);
    child.on("close", (code) => resolve({ code: code ?? 1, passed, failed, skipped }));
  });

const typecheck = await turbo(["typecheck"], 2);
if (typecheck.code !== 0) {
  console.log("type check failed");
  console.log("0 passed, 1 failed, 0 skipped");
  process.exit(1);
}
const test = await turbo(["test"], 1);
if (failures.length > 0) console.log(`\n${failures.length} failed test(s), each with the output just before it:\n\n${failures.join("\n\n")}\n`);
console.log(`${test.passed} passed, ${test.failed} failed, ${test.skipped} skipped`);
process.exit(test.code !== 0 || test.failed > 0 ? 1 : 0);
