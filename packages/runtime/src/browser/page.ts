/**
 * The peer page's script (bundled by serve.ts into /app.js): pick the run (from the server that
 * serves the page, or fields in the link), create or import a hotkey (kept in localStorage,
 * exportable), join, and watch the window, loss, bytes and this hotkey's weight.
 *
 * Link parameters: `name` (bucket covenant-<name>), `autojoin=1`, `windows=N` (leave after N
 * windows) or `untilWindow=N` (leave after window N), and the store keys `key`, `secret`, `readKey`, `readSecret` when the run gives none;
 * an `s3://` corpus is read with the keys the run gives, else `dataKey`/`dataSecret`, else the read keys.
 * For tests and tools the page exposes `window.covenant` (`events`, `status`, `hotkey`, `leave()`).
 */
import { Cause, Effect, Exit, Fiber, Schema } from "effect"
import type { Scope } from "effect"
import { mnemonicGenerate } from "@polkadot/util-crypto"
import { describeChainError, identityFromSecret } from "@covenant/chain"
import type { ChainError } from "@covenant/chain"
import { RunSpec } from "@covenant/dsl"
import type { NodeEvent } from "../node/node.ts"
import { StopRule } from "../node/stop.ts"
import { PageRun, runBrowserPeer } from "./peer.ts"
import { checkAdapter } from "./adapter.ts"

/** The few DOM APIs the page uses (the workspace type-checks without the DOM library, which would change Node's types). */
interface El {
  textContent: string | null
  className: string
  value: string
  setAttribute(name: string, value: string): void
  addEventListener(type: string, listener: () => void): void
}
const browser = globalThis as unknown as {
  readonly document: { getElementById(id: string): El | null }
  readonly location: { readonly search: string; readonly origin: string }
  readonly localStorage: { getItem(key: string): string | null; setItem(key: string, value: string): void }
  readonly navigator: { readonly gpu?: GPU }
  addEventListener(type: string, listener: () => void): void
}
const { location, localStorage } = browser

interface PageApi {
  events: NodeEvent[]
  status: "loading" | "ready" | "joining" | "running" | "stopped" | "failed" | "no-webgpu"
  message: string
  hotkey: string | null
  uid: number | null
  leave: () => void
}

const api: PageApi = { events: [], status: "loading", message: "", hotkey: null, uid: null, leave: () => {} }
// The page's state, for the person (via the DOM) and for a test driving the tab (page.evaluate):
// globalThis is typed without the DOM library here, hence the cast.
;(globalThis as unknown as { covenant: PageApi }).covenant = api

const $ = (id: string): El => browser.document.getElementById(id)!
const setText = (id: string, text: string) => {
  $(id).textContent = text
}
const say = (status: PageApi["status"], message: string) => {
  api.status = status
  api.message = message
  setText("status", message)
  $("status").className = status
}

const params = new URLSearchParams(location.search)
const HOTKEY = "covenant.hotkey"

/** The hotkey kept by this browser, created on first use. */
const hotkeySecret = (): string => {
  const kept = localStorage.getItem(HOTKEY)
  if (kept !== null && kept.trim() !== "") return kept
  const fresh = mnemonicGenerate(12)
  localStorage.setItem(HOTKEY, fresh)
  return fresh
}

const showHotkey = async () => {
  const id = await Effect.runPromise(Effect.either(identityFromSecret(hotkeySecret())))
  api.hotkey = id._tag === "Right" ? id.right.hotkey.address : null
  setText("hotkey", id._tag === "Right" ? id.right.hotkey.address : `bad secret: ${id.left.reason}`)
}

const bytes = (n: number) => (n < 1024 ? `${n} B` : n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 / 1024).toFixed(2)} MiB`)

let sent = 0
let received = 0
const onEvent = (spec: RunSpec) => (e: NodeEvent) => {
  api.events.push(e)
  if (e._tag === "Joined") {
    api.uid = e.uid
    setText("uid", String(e.uid))
    say("running", `joined as uid ${e.uid}; loading the model and catching up`)
  } else if (e._tag === "Phase") {
    setText("window", String(e.window))
    setText("phase", e.phase)
  } else if (e._tag === "CaughtUp") {
    say("running", `caught up windows ${e.from}..${e.to}`)
  } else if (e._tag === "Round") {
    sent += e.bytesUp
    received += e.bytesDown
    const tokens = spec.innerOptimizer.innerSteps * spec.innerOptimizer.batchSize * spec.model.seqLen
    const compute = e.phaseMs["compute"] ?? 0
    setText("window", String(e.window))
    setText("loss", e.loss === null ? "-" : e.loss.toFixed(4))
    setText("sent", bytes(sent))
    setText("received", bytes(received))
    setText("digest", e.digest.slice(0, 12))
    setText("tps", compute > 0 ? (tokens / (compute / 1000)).toFixed(0) : "-")
    setText("gathered", `${e.gathered.join(", ")} of ${e.expected.join(", ")}`)
    say("running", `trained window ${e.window}`)
  } else if (e._tag === "Notice") {
    setText("notice", e.message)
  }
}

/** A runtime failure in one line: its phase, then its reason, or its chain error's tag and fields. */
const describeFailure = (f: unknown): string | undefined => {
  if (typeof f !== "object" || f === null) return undefined
  const { phase, reason, cause, _tag } = f as { phase?: unknown; reason?: unknown; cause?: unknown; _tag?: unknown }
  if (reason !== undefined) return `${String(phase ?? "")}: ${String(reason)}`
  if (_tag === "ChainFailure") return `${String(phase ?? "")}: ${describeChainError(cause as ChainError)}`
  return undefined
}

const join = async (run: PageRun, gpu: GPU) => {
  const spec = Schema.decodeUnknownSync(RunSpec)(run.spec)
  const keys = {
    write: { accessKeyId: $("key").value, secretAccessKey: $("secret").value },
    read: { accessKeyId: $("read-key").value, secretAccessKey: $("read-secret").value },
  }
  const name = $("name").value.trim() || "tab"
  // A corpus' own read-only token, from the link, when the page server gives none.
  const dataKey = params.get("dataKey")
  const dataSecret = params.get("dataSecret")
  const dataKeys = dataKey !== null && dataSecret !== null ? { accessKeyId: dataKey, secretAccessKey: dataSecret } : undefined
  const windows = Number(params.get("windows") ?? "0")
  const untilWindow = Number(params.get("untilWindow") ?? "0")
  const origin = location.origin
  say("joining", run.chain.kind === "local" ? "registering the hotkey and committing the bucket" : `connecting to ${run.chain.endpoint} (subnet ${run.chain.netuid}); committing the bucket`)
  $("join").setAttribute("disabled", "true")
  // A local run's page server makes this tab's bucket with a CORS rule for this origin: a page
  // cannot make a bucket across origins. On a public store the bucket and its rule are the visitor's.
  if (run.localBuckets) {
    const made = await fetch(`${origin}/bucket?name=${encodeURIComponent(name)}`, { method: "POST" })
    if (!made.ok) return say("failed", `failed: the page server could not make bucket covenant-${name}: ${await made.text()}`)
  }
  const program: Effect.Effect<void, unknown, Scope.Scope> = runBrowserPeer({
    gpu,
    spec,
    name,
    secret: hotkeySecret(),
    // The local chain's client goes through this page's origin (the owner's loopback port moves; serve.ts).
    chain: run.chain.kind === "local" ? { kind: "local", url: `${origin}/chain` } : run.chain,
    data: run.data.kind === "http"
      ? { kind: "http", url: new URL(run.data.path, origin).href }
      : { ...run.data, ...(run.data.keys === undefined && dataKeys !== undefined ? { keys: dataKeys } : {}) },
    // S3 requests go from this page straight to the store, signed here with the visitor's keys.
    store: run.store,
    ...keys,
    events: onEvent(spec),
    weight: (share) => setText("weight", share === null ? "no weights yet" : share.toFixed(3)),
    ...(untilWindow > 0 ? { stop: StopRule.UntilWindow({ window: untilWindow }) } : windows > 0 ? { stop: StopRule.FromNow({ windows }) } : {}),
  })
  const fiber = Effect.runFork(Effect.scoped(program))
  api.leave = () => void Effect.runFork(Fiber.interrupt(fiber))
  // Closing or leaving the page stops the peer; the run sees one missed window, nothing more.
  browser.addEventListener("pagehide", () => api.leave())
  const exit = await Effect.runPromise(Fiber.await(fiber))
  if (Exit.isSuccess(exit)) say("stopped", "finished the windows asked for")
  else if (Exit.isInterrupted(exit)) say("stopped", "left the run")
  else {
    const failure = Cause.failureOption(exit.cause)
    const text = failure._tag === "Some" ? describeFailure(failure.value) ?? Cause.pretty(exit.cause) : Cause.pretty(exit.cause)
    // A store the page cannot reach shows as a failed fetch: name the likely cause.
    const storeFault = failure._tag === "Some" && (failure.value as { _tag?: unknown })._tag === "StoreFailure"
    const hint = storeFault && /failed to fetch|networkerror|cors/i.test(text)
      ? ` (the store must answer this page's origin ${origin}: bucket covenant-${name} needs a CORS rule allowing it to read and write, and every peer's bucket one allowing reads; README: the peer page)`
      : ""
    say("failed", `failed: ${text}${hint}`)
  }
}

const main = async () => {
  ;$("name").value = params.get("name") ?? `tab-${Math.random().toString(36).slice(2, 8)}`
  await showHotkey()
  $("export").addEventListener("click", () => {
    ;$("secret-box").value = hotkeySecret()
  })
  $("import").addEventListener("click", async () => {
    const secret = $("secret-box").value.trim()
    const ok = await Effect.runPromise(Effect.either(identityFromSecret(secret)))
    if (ok._tag === "Left") return setText("hotkey", `not a valid secret: ${ok.left.reason}`)
    localStorage.setItem(HOTKEY, secret)
    await showHotkey()
  })
  const run = Schema.decodeUnknownSync(PageRun)(await (await fetch("/run.json")).json())
  const spec = Schema.decodeUnknownSync(RunSpec)(run.spec)
  setText("run", `${spec.name}: ${spec.model.nLayers} layers x ${spec.model.dim}, ${spec.participation.blocksPerWindow * spec.participation.blockTimeMs / 1000} s windows; store ${run.store.endpoint}`)
  for (const [id, value] of [
    ["key", params.get("key") ?? run.keys?.write.accessKeyId],
    ["secret", params.get("secret") ?? run.keys?.write.secretAccessKey],
    ["read-key", params.get("readKey") ?? run.keys?.read.accessKeyId],
    ["read-secret", params.get("readSecret") ?? run.keys?.read.secretAccessKey],
  ] as const) $(id).value = value ?? ""

  const adapter = await checkAdapter(browser.navigator.gpu, spec.model)
  if (adapter._tag === "Unusable") {
    say("no-webgpu", adapter.message)
    $("join").setAttribute("disabled", "true")
    return
  }
  setText("adapter", adapter.description)
  say("ready", "ready to join")
  const gpu = adapter.gpu
  $("join").addEventListener("click", () => void join(run, gpu))
  if (params.get("autojoin") === "1") void join(run, gpu)
}

main().catch((e) => say("failed", `failed: ${e instanceof Error ? e.message : String(e)}`))
