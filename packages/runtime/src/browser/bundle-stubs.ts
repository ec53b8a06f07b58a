/**
 * What the page's bundle puts in place of Node's modules that have no browser polyfill: the peer
 * never calls them in a tab (no disk, no worker threads), but shared modules import them. Each
 * stub throws, naming itself, if it is ever called.
 */
import type { BunPlugin } from "bun"

const stubbed = (name: string, exports: ReadonlyArray<string>) =>
  [
    `const no = (what) => () => { throw new Error(\`\${what} (${name}) is not available in a browser tab\`) }`,
    ...exports.map((e) => `export const ${e} = no(${JSON.stringify(e)})`),
    `export default {${exports.join(", ")}}`,
  ].join("\n")

const STUBS: Record<string, ReadonlyArray<string>> = {
  "node:fs": ["writeSync", "ftruncateSync", "existsSync", "mkdirSync", "readFileSync", "writeFileSync", "readdirSync", "rmSync", "renameSync", "statSync", "openSync", "closeSync", "fsyncSync", "appendFileSync", "createReadStream", "createWriteStream", "unlinkSync"],
  "node:fs/promises": ["mkdir", "readFile", "readdir", "rename", "rm", "rmdir", "writeFile", "open", "stat", "lstat", "unlink", "appendFile"],
  "node:url": ["fileURLToPath", "pathToFileURL"],
  "node:module": ["createRequire"],
  "node:worker_threads": ["Worker", "isMainThread", "parentPort", "workerData"],
  "node:readline": ["createInterface"],
}

/** node:os, answered from the browser where it can be. */
const OS = [
  "export const availableParallelism = () => globalThis.navigator?.hardwareConcurrency ?? 1",
  "export const cpus = () => Array.from({ length: availableParallelism() }, () => ({}))",
  'export const homedir = () => "/"',
  'export const tmpdir = () => "/tmp"',
  'export const platform = () => "browser"',
  'export const EOL = "\\n"',
  "export default { availableParallelism, cpus, homedir, tmpdir, platform, EOL }",
].join("\n")

export const browserStubs: BunPlugin = {
  name: "covenant-browser-stubs",
  setup(build) {
    // Bun's node:crypto polyfill (crypto-browserify) initialises lazily and was found unset when called: our own synchronous sha256 instead.
    build.onResolve({ filter: /^(node:)?crypto$/ }, () => ({ path: new URL("./sha256.ts", import.meta.url).pathname }))
    build.onResolve({ filter: /^node:(fs|fs\/promises|url|module|worker_threads|readline|os)$/ }, (args) => ({ path: args.path, namespace: "covenant-stub" }))
    build.onLoad({ filter: /.*/, namespace: "covenant-stub" }, (args) => ({ contents: args.path === "node:os" ? OS : stubbed(args.path, STUBS[args.path] ?? []), loader: "js" }))
  },
}
