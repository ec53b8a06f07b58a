/**
 * Serves the peer page for a running swarm (Bun only): the page, its script (page.ts bundled by
 * Bun's bundler for the browser), the run (`/run.json`), and, when the run's shards are a local
 * folder, the shards (`/data/`, ranged reads). The page talks to the run's store itself: S3
 * requests signed in the page go straight to the store's endpoint, which answers the page's
 * origin because every bucket it reads has a CORS rule (nodes set a read-only one on the bucket
 * they make, `--bucket-cors`). What the page server still does, and why:
 *  - `/chain/...` -> the local chain owner's loopback server. The owner's URL is read from
 *    owner.json per request because it changes when another node takes the chain over (a new
 *    port): the page keeps one stable address for a chain that moves. A subtensor chain is reached
 *    by the page itself over WebSocket (its endpoint and netuid are in `/run.json`): no proxy.
 *  - `POST /bucket?name=<name>` (a local run only, with offerKeys): makes the tab's bucket
 *    `covenant-<name>` with a CORS rule letting this server's own pages write it (no other site's). A page cannot
 *    make a bucket itself across origins (a bucket that does not exist has no CORS rule to answer
 *    the preflight), and on a local run the page server holds the write key it already offers.
 *    On a public store the visitor makes their bucket and its rule (README).
 */
import { Effect, Schema } from "effect"
import type { Scope } from "effect"
import { resolve, sep } from "node:path"
import { RunSpec } from "@covenant/dsl"
import { makeS3Transport } from "@covenant/transport"
import { RuntimeError, type RuntimeFailure } from "../errors.ts"
import { browserStubs } from "./bundle-stubs.ts"
import { PageChain, PageData, PageRun } from "./peer.ts"

export interface PeerPageOptions {
  readonly spec: RunSpec
  /** The run's store: its endpoint as the nodes commit it, and region. */
  readonly store: { readonly endpoint: string; readonly region: string }
  /** Store keys the page fills in for the visitor (a local run only: they are served to anyone who loads the page). */
  readonly offerKeys?: PageRun["keys"]
  /**
   * The local chain (its owner's URL, read when a request needs it: the owner may restart on a
   * new port), or a subtensor node the page connects to itself.
   */
  readonly chain: { readonly kind: "local"; readonly url: () => Promise<string> } | Extract<PageChain, { kind: "subtensor" }>
  /**
   * The run's shards: a prepared folder (served at `/data/`), or a corpus in object storage the
   * tab reads itself, like a node (with `keys` when they may be given to every visitor: a local
   * run's, or a corpus' public read-only token; else the page uses its read-key fields).
   */
  readonly data: { readonly kind: "dir"; readonly dir: string } | Extract<PageData, { kind: "s3" }>
  readonly port?: number
  readonly hostname?: string
}

const pageEntry = new URL("./page.ts", import.meta.url).pathname

/** Bundles page.ts (and everything it imports: engine, codec, transport, chain client) for the browser. */
export const bundlePeerPage = (options: { readonly minify?: boolean } = {}): Effect.Effect<string, RuntimeFailure> => bundleForBrowser(pageEntry, options)

/** Bundles one entry module for a browser page (one ES module, Node-only modules stubbed). */
export const bundleForBrowser = (entry: string, options: { readonly minify?: boolean } = {}): Effect.Effect<string, RuntimeFailure> =>
  Effect.tryPromise({
    try: async () => {
      const out = await Bun.build({
        entrypoints: [entry],
        target: "browser",
        format: "esm",
        // Unminified by default: a failing tab's stack then names our functions (the page is ~3 MB either way).
        minify: options.minify ?? false,
        sourcemap: "none",
        // The Dawn bindings are only imported (dynamically) off the page's path: a tab uses navigator.gpu.
        external: ["bun-webgpu", "webgpu"],
        plugins: [browserStubs],
      })
      if (!out.success) throw new Error(out.logs.map((l) => String(l)).join("\n"))
      const [js] = out.outputs
      if (js === undefined) throw new Error("the bundler produced no output")
      return await js.text()
    },
    catch: (e) => new RuntimeError({ phase: "bundle", reason: e instanceof Error ? e.message : String(e) }),
  })

const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>covenant peer</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 15px/1.4 system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; color: #1b1b1b }
h1 { font-size: 1.3rem } table { border-collapse: collapse } td { padding: .15rem .8rem .15rem 0 } td:first-child { color: #666 }
#status { padding: .6rem .8rem; border-radius: 6px; background: #eef } #status.failed, #status.no-webgpu { background: #fdd; font-weight: 600 }
#status.running { background: #dfd } input { width: 16rem } textarea { width: 100%; height: 3rem } code { font-size: 13px }
</style></head>
<body>
<h1>covenant: train in this tab</h1>
<p id="run">loading the run…</p>
<p id="status">loading…</p>
<fieldset><legend>join</legend>
<table>
<tr><td>name (bucket covenant-&lt;name&gt;)</td><td><input id="name"></td></tr>
<tr><td>store write key</td><td><input id="key"> <input id="secret" type="password"></td></tr>
<tr><td>store read-only key (committed on chain)</td><td><input id="read-key"> <input id="read-secret" type="password"></td></tr>
<tr><td>hotkey</td><td><code id="hotkey">…</code> <button id="export">export</button> <button id="import">import</button></td></tr>
</table>
<textarea id="secret-box" placeholder="the hotkey's secret (mnemonic or 0x seed): export shows it, import takes it"></textarea>
<p><button id="join">join the run</button></p>
</fieldset>
<table>
<tr><td>adapter</td><td id="adapter">-</td></tr>
<tr><td>uid</td><td id="uid">-</td></tr>
<tr><td>window</td><td id="window">-</td></tr>
<tr><td>phase</td><td id="phase">-</td></tr>
<tr><td>loss</td><td id="loss">-</td></tr>
<tr><td>sent / received</td><td><span id="sent">0 B</span> / <span id="received">0 B</span></td></tr>
<tr><td>gathered</td><td id="gathered">-</td></tr>
<tr><td>model digest</td><td><code id="digest">-</code></td></tr>
<tr><td>tokens/s (inner steps)</td><td id="tps">-</td></tr>
<tr><td>weight</td><td id="weight">-</td></tr>
<tr><td>notice</td><td id="notice">-</td></tr>
</table>
<script type="module" src="/app.js"></script>
</body></html>
`

/** Headers a browser adds that the chain's server need not see. */
const DROP_REQUEST = new Set(["host", "origin", "referer", "connection", "cookie", "accept-encoding", "content-length"])
const DROP_RESPONSE = new Set(["content-encoding", "transfer-encoding", "connection", "content-length"])

const forward = async (req: Request, target: string): Promise<Response> => {
  const headers = new Headers()
  req.headers.forEach((v, k) => {
    if (!DROP_REQUEST.has(k) && !k.startsWith("sec-")) headers.set(k, v)
  })
  const body = req.method === "GET" || req.method === "HEAD" ? undefined : await req.arrayBuffer()
  const up = await fetch(target, { method: req.method, headers, ...(body === undefined ? {} : { body }), redirect: "manual", decompress: false } as RequestInit)
  const out = new Headers()
  up.headers.forEach((v, k) => {
    if (!DROP_RESPONSE.has(k)) out.set(k, v)
  })
  const bytes = req.method === "HEAD" ? null : await up.arrayBuffer()
  if (req.method === "HEAD") {
    const length = up.headers.get("content-length")
    if (length !== null) out.set("content-length", length)
  }
  return new Response(bytes, { status: up.status, headers: out })
}

/** A file of the shard folder, whole or one `Range: bytes=a-b`. */
const serveFile = async (dir: string, rel: string, req: Request): Promise<Response> => {
  const root = resolve(dir)
  const path = resolve(root, decodeURIComponent(rel))
  if (!path.startsWith(root + sep)) return new Response("outside the data folder", { status: 403 })
  const file = Bun.file(path)
  if (!(await file.exists())) return new Response("not found", { status: 404 })
  const size = file.size
  const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.get("range") ?? "")
  if (range === null) return new Response(req.method === "HEAD" ? null : file, { headers: { "content-length": String(size), "accept-ranges": "bytes" } })
  const start = Number(range[1])
  const end = Math.min(size - 1, range[2] === "" ? size - 1 : Number(range[2]))
  if (start >= size) return new Response(null, { status: 416, headers: { "content-range": `bytes */${size}` } })
  return new Response(file.slice(start, end + 1), { status: 206, headers: { "content-range": `bytes ${start}-${end}/${size}` } })
}

/** Serves the page until the scope closes; returns its URL. */
export const servePeerPage = (options: PeerPageOptions): Effect.Effect<string, RuntimeFailure, Scope.Scope> =>
  Effect.gen(function* () {
    const js = yield* bundlePeerPage()
    const runJson = JSON.stringify(
      Schema.encodeSync(PageRun)({
        spec: Schema.encodeSync(RunSpec)(options.spec),
        store: options.store,
        data: options.data.kind === "dir" ? { kind: "http", path: "/data/" } : options.data,
        localBuckets: options.offerKeys !== undefined,
        chain: options.chain.kind === "local" ? { kind: "local" } : options.chain,
        ...(options.offerKeys === undefined ? {} : { keys: options.offerKeys }),
      }),
    )
    const offered = options.offerKeys
    /** The tab's bucket, made on a local run for the asking page's origin (see the module's comment). */
    const makeBucket = async (req: Request, url: URL): Promise<Response> => {
      if (offered === undefined) return new Response("this page server makes no buckets (not a local run: --offer-keys)", { status: 404 })
      if (req.method !== "POST") return new Response("POST /bucket?name=<name>", { status: 405 })
      const name = url.searchParams.get("name") ?? ""
      // Only this server's own pages: a page of another site may send a POST here (no preflight for
      // a bodyless POST), and must not get a bucket rule for its origin. url.origin is the server as
      // the page addressed it (127.0.0.1 or localhost alike).
      const origin = req.headers.get("origin") ?? url.origin
      if (origin !== url.origin) return new Response(`buckets are made for this server's own pages (${url.origin}), not ${origin}`, { status: 403 })
      const bucket = `covenant-${name}`
      const made = await Effect.runPromise(
        Effect.either(
          Effect.scoped(
            Effect.flatMap(
              makeS3Transport({ ...options.store, forcePathStyle: true, ...offered.write, bucketCors: { origins: [origin], write: true, mode: "replace" } }),
              (t) => t.ensureBucket({ bucket }),
            ),
          ),
        ),
      )
      return made._tag === "Right"
        ? Response.json({ bucket, origin })
        : new Response(`${bucket}: ${made.left._tag}${"reason" in made.left ? `: ${made.left.reason}` : ""}`, { status: 502 })
    }
    const handle = async (req: Request): Promise<Response> => {
      const url = new URL(req.url)
      const path = url.pathname
      if (path === "/" || path === "/index.html") return new Response(html, { headers: { "content-type": "text/html; charset=utf-8" } })
      if (path === "/app.js") return new Response(js, { headers: { "content-type": "text/javascript; charset=utf-8" } })
      if (path === "/run.json") return new Response(runJson, { headers: { "content-type": "application/json" } })
      if (path === "/bucket") return makeBucket(req, url)
      if (path.startsWith("/data/") && options.data.kind === "dir") return serveFile(options.data.dir, path.slice("/data/".length), req)
      const chain = options.chain
      if (path.startsWith("/chain/") && chain.kind === "local") return forward(req, `${(await chain.url()).replace(/\/$/, "")}/${path.slice("/chain/".length)}${url.search}`)
      return new Response("not found", { status: 404 })
    }
    const server = yield* Effect.acquireRelease(
      Effect.try({
        try: () =>
          Bun.serve({
            hostname: options.hostname ?? "127.0.0.1",
            port: options.port ?? 0,
            // The chain's block long-poll holds a request up to 20 s.
            idleTimeout: 60,
            fetch: (req) =>
              handle(req).catch((e: unknown) => new Response(`proxy error: ${e instanceof Error ? e.message : String(e)}`, { status: 502 })),
          }),
        catch: (e) => new RuntimeError({ phase: "serve", reason: String(e) }),
      }),
      (s) => Effect.promise(() => s.stop(true)),
    )
    return `http://${server.hostname}:${server.port}/`
  })
