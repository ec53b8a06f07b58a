import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { Deferred, Effect, Fiber, ManagedRuntime } from "effect"
import type { KeyringPair } from "@polkadot/keyring/types"
import { Transport, cryptoReady, gather, layerS3, publishUpdate } from "../src/index.ts"
import type { BucketLocation, GatherOutcome } from "../src/index.ts"
import { DEADLINE_SLACK_MS, expectPartition, runConformance } from "./support/conformance.ts"
import { freshBucket, makeHotkeys } from "./support/peers.ts"
import { LocalS3 } from "../src/testing/index.ts"

runConformance("S3 (s3rver)", async () => {
  const s3 = new LocalS3()
  await s3.start()
  return { layer: layerS3(s3.config()), teardown: () => s3.dispose() }
})

// A browser page talks to the store directly: the bucket's CORS rule (set by ensureBucket) must let
// its preflights through for the methods it grants and no others, and must not overwrite a rule
// the operator set ("ifAbsent"), unless told to ("replace").
describe("S3 layer: bucket CORS for browser pages (s3rver)", () => {
  const s3 = new LocalS3()
  beforeAll(() => s3.start())
  afterAll(() => s3.dispose())
  const preflight = (bucket: string, origin: string, method: string) =>
    fetch(`${s3.config().endpoint}/${bucket}/some-key`, {
      method: "OPTIONS",
      headers: { origin, "access-control-request-method": method, "access-control-request-headers": "authorization,x-amz-date,x-amz-content-sha256" },
    }).then((r) => ({ status: r.status, origin: r.headers.get("access-control-allow-origin") }))
  const ensure = (bucket: string, bucketCors: NonNullable<Parameters<typeof layerS3>[0]["bucketCors"]>) =>
    Effect.runPromise(Effect.scoped(Effect.flatMap(Transport, (t) => t.ensureBucket({ bucket })).pipe(Effect.provide(layerS3({ ...s3.config(), bucketCors })))))

  test("a node's bucket: reads from any origin, no writes; an existing rule is kept unless replaced", async () => {
    await ensure("cors-node", { origins: ["*"], write: false, mode: "ifAbsent" })
    expect(await preflight("cors-node", "http://127.0.0.1:5555", "GET")).toEqual({ status: 200, origin: "*" })
    expect((await preflight("cors-node", "http://127.0.0.1:5555", "PUT")).status).toBe(403)
    // ifAbsent again with another rule: the first one stays.
    await ensure("cors-node", { origins: ["http://elsewhere"], write: true, mode: "ifAbsent" })
    expect((await preflight("cors-node", "http://127.0.0.1:5555", "GET")).status).toBe(200)
    expect((await preflight("cors-node", "http://elsewhere", "PUT")).status).toBe(403)
    // replace: only the new rule holds.
    await ensure("cors-node", { origins: ["http://elsewhere"], write: true, mode: "replace" })
    expect((await preflight("cors-node", "http://elsewhere", "PUT")).status).toBe(200)
    expect((await preflight("cors-node", "http://127.0.0.1:5555", "GET")).status).toBe(403)
  })

  test("a store without the CORS API (MinIO answers 501): a node's bucket is still made, with a warning; a page's bucket (replace) fails", async () => {
    // s3rver behind a front that answers every ?cors request as a store without the API does.
    const front = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: async (req) => {
        const url = new URL(req.url)
        if (url.searchParams.has("cors")) return new Response("<Error><Code>NotImplemented</Code><Message>not implemented</Message></Error>", { status: 501, headers: { "content-type": "application/xml" } })
        const headers = new Headers(req.headers)
        for (const h of ["connection", "content-length", "accept-encoding"]) headers.delete(h)
        const body = req.method === "GET" || req.method === "HEAD" ? undefined : await req.arrayBuffer()
        const up = await fetch(`${s3.config().endpoint}${url.pathname}${url.search}`, { method: req.method, headers, ...(body === undefined ? {} : { body }), decompress: false } as RequestInit)
        const out = new Headers(up.headers)
        for (const h of ["content-encoding", "transfer-encoding", "connection"]) out.delete(h)
        return new Response(req.method === "HEAD" ? null : await up.arrayBuffer(), { status: up.status, headers: out })
      },
    })
    try {
      const at = { endpoint: `http://127.0.0.1:${front.port}` }
      const ensureVia = (bucket: string, mode: "ifAbsent" | "replace") =>
        Effect.runPromise(Effect.either(Effect.scoped(Effect.flatMap(Transport, (t) => t.ensureBucket({ bucket, ...at })).pipe(Effect.provide(layerS3({ ...s3.config(), bucketCors: { origins: ["*"], write: mode === "replace", mode } }))))))
      expect((await ensureVia("cors-unsupported", "ifAbsent"))._tag).toBe("Right")
      expect((await fetch(`${s3.config().endpoint}/cors-unsupported`, { method: "HEAD" })).status).not.toBe(404)
      expect((await ensureVia("cors-unsupported-page", "replace"))._tag).toBe("Left")
    } finally {
      await front.stop(true)
    }
  })

  test("a bucket made without a rule answers no preflight (what a page meets on a store nobody configured)", async () => {
    await Effect.runPromise(Effect.scoped(Effect.flatMap(Transport, (t) => t.ensureBucket({ bucket: "cors-none" })).pipe(Effect.provide(layerS3(s3.config())))))
    expect((await preflight("cors-none", "http://127.0.0.1:5555", "GET")).status).toBe(403)
  })
})

describe("S3 layer faults (s3rver)", () => {
  const s3 = new LocalS3()
  let runtime: ManagedRuntime.ManagedRuntime<Transport, never>
  let hotkeys: Array<KeyringPair>
  beforeAll(async () => {
    await s3.start()
    runtime = ManagedRuntime.make(layerS3(s3.config()))
    hotkeys = await makeHotkeys(10, "fault")
    await Effect.runPromise(cryptoReady)
  })
  afterAll(async () => {
    await runtime.dispose()
    await s3.dispose()
  })

  test("the store stops mid-gather: no crash, unavailable peers reported by the deadline; after a restart the next window works", async () => {
    const uids = Array.from({ length: 10 }, (_, i) => i)
    const locations = new Map<number, BucketLocation>()
    for (const uid of uids) {
      const at = { bucket: freshBucket(`fault-${uid}`) }
      await runtime.runPromise(Effect.flatMap(Transport, (t) => t.ensureBucket(at)))
      locations.set(uid, at)
    }
    const keys = new Map(uids.map((uid) => [uid, hotkeys[uid]!.address] as const))
    const publish = (uid: number, window: number) =>
      publishUpdate({ at: locations.get(uid)!, runId: "fault-run", version: "1", window, uid, payload: new Uint8Array(1000).fill(uid), signer: hotkeys[uid]! })
    const published = [0, 1, 2, 3]
    for (const uid of published) await runtime.runPromise(publish(uid, 1))

    const timeoutMs = 3_500
    const interval = () => ({ start: Date.now() - 10_000, end: Date.now() + 60_000 })
    const firstInterval = interval()
    const result = await runtime.runPromise(Effect.gen(function* () {
      // The store stops once the four present objects have been delivered (an event, not a sleep).
      const presentDelivered = yield* Deferred.make<void>()
      let delivered = 0
      const onOutcome = (_uid: number, outcome: GatherOutcome) => {
        if (outcome === "delivered" && ++delivered === published.length) Effect.runSync(Deferred.succeed(presentDelivered, undefined))
      }
      const running = yield* Effect.fork(gather({ runId: "fault-run", version: "1", window: 1, uids, locations, hotkeys: keys, interval: firstInterval, timeout: `${timeoutMs} millis`, pollInterval: "200 millis", retryBase: "50 millis", retryMax: "400 millis", onOutcome }))
      yield* Deferred.await(presentDelivered)
      yield* Effect.promise(() => s3.stop())
      return yield* Fiber.join(running)
    }))
    // Returns by its deadline, not after the peers' 90 s polling: DEADLINE_SLACK_MS covers the
    // timers' lateness and the interruption of in-flight requests on a loaded 2-core machine.
    expect(result.elapsedMs).toBeLessThan(timeoutMs + DEADLINE_SLACK_MS)
    expectPartition(result, uids)
    // Objects that were there were fetched before the stop; the others could not be polled any more.
    expect([...result.delivered.keys()].sort()).toEqual(published)
    expect([...result.unavailable.keys()].sort((a, b) => a - b)).toEqual(uids.filter((u) => !published.includes(u)))
    expect(result.missing).toEqual([])

    await s3.start() // same port, same data directory
    for (const uid of uids) await runtime.runPromise(publish(uid, 2))
    const next = await runtime.runPromise(gather({ runId: "fault-run", version: "1", window: 2, uids, locations, hotkeys: keys, interval: interval(), timeout: "5 seconds" }))
    expect([...next.delivered.keys()].sort((a, b) => a - b)).toEqual(uids)
    expect(next.delivered.get(9)!.bytes).toEqual(new Uint8Array(1000).fill(9))
  }, 30_000)

  test("a peer location with credentials the store refuses: Unauthorized, reported at once by gather", async () => {
    const good = { bucket: freshBucket("auth-good") }
    await runtime.runPromise(Effect.flatMap(Transport, (t) => t.ensureBucket(good)))
    await runtime.runPromise(publishUpdate({ at: good, runId: "auth", version: "1", window: 1, uid: 0, payload: new Uint8Array([5]), signer: hotkeys[0]! }))
    // Same bucket, read with an access key id the store does not know (a separate client).
    const refused: BucketLocation = { ...good, accessKeyId: "NOT-A-KEY", secretAccessKey: "whatever" }
    const direct = await runtime.runPromiseExit(Effect.flatMap(Transport, (t) => t.head(refused, "gradient-1-0-v1")))
    expect(direct._tag === "Failure" && direct.cause._tag === "Fail" && direct.cause.error._tag).toBe("Unauthorized")
    const result = await runtime.runPromise(gather({
      runId: "auth", version: "1", window: 1, uids: [0, 1], locations: new Map([[0, good], [1, refused]]),
      hotkeys: new Map([[0, hotkeys[0]!.address], [1, hotkeys[1]!.address]]), interval: { start: 0, end: Date.now() + 60_000 }, timeout: "20 seconds",
    }))
    expect([...result.delivered.keys()]).toEqual([0])
    expect([...result.unavailable.keys()]).toEqual([1])
    expect(result.unavailable.get(1)).toContain("Unauthorized")
    // At once: a refusal is not retried until the deadline (20 s), so the gather ends well before it.
    expect(result.elapsedMs).toBeLessThan(10_000)
  }, 30_000)

  test("publishing retries transient failures: a store back within the backoff still gets the update", async () => {
    const at = { bucket: freshBucket("retry") }
    await runtime.runPromise(Effect.flatMap(Transport, (t) => t.ensureBucket(at)))
    await s3.stop()
    const info = await runtime.runPromise(Effect.gen(function* () {
      const restart = yield* Effect.fork(Effect.zipRight(Effect.sleep("400 millis"), Effect.promise(() => s3.start())))
      // 8 retries from 100 ms back off for 25.5 s in all: the store restarts well inside that, however slowly.
      const published = yield* publishUpdate({ at, runId: "retry", version: "1", window: 2, uid: 3, payload: new Uint8Array([7, 7]), signer: hotkeys[3]!, retry: { base: "100 millis", times: 8 } })
      yield* Fiber.join(restart)
      return published
    }))
    expect(info.key).toBe("gradient-2-3-v1")
    const down = new LocalS3()
    await down.start()
    await down.stop()
    const refused = ManagedRuntime.make(layerS3(down.config()))
    try {
      const failed = await refused.runPromiseExit(publishUpdate({ at, runId: "retry", version: "1", window: 2, uid: 3, payload: new Uint8Array(1), signer: hotkeys[3]!, retry: { base: "10 millis", times: 2 } }))
      expect(failed._tag === "Failure" && failed.cause._tag === "Fail" && failed.cause.error._tag).toBe("Unavailable")
    } finally {
      await refused.dispose()
      await down.dispose()
    }
  }, 60_000)

  test("a store that is down from the start: the gather returns by its deadline with every peer unavailable", async () => {
    const dead = ManagedRuntime.make(layerS3({ ...s3.config(), endpoint: "http://127.0.0.1:9" }))
    try {
      const uids = [0, 1, 2]
      const locations = new Map(uids.map((uid) => [uid, { bucket: `dead-${uid}` }] as const))
      const keys = new Map(uids.map((uid) => [uid, hotkeys[uid]!.address] as const))
      const result = await dead.runPromise(gather({ runId: "r", version: "1", window: 1, uids, locations, hotkeys: keys, interval: { start: 0, end: Date.now() + 60_000 }, timeout: "1500 millis" }))
      expect(result.elapsedMs).toBeLessThan(1_500 + DEADLINE_SLACK_MS)
      expect([...result.unavailable.keys()].sort()).toEqual(uids)
      expect([...result.unavailable.values()][0]).toContain("Unavailable")
    } finally {
      await dead.dispose()
    }
  }, 15_000)
})

describe("S3 layer: maxBytes against a server that lies about the size", () => {
  test("an endless body with no Content-Length is cut off one chunk past the cap, the request aborted (TooLarge, no hang)", async () => {
    let sent = 0
    const chunk = new Uint8Array(64 * 1024).fill(5)
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: () =>
        new Response(
          new ReadableStream({
            pull(controller) {
              sent += chunk.length
              controller.enqueue(chunk)
            },
          }),
          { status: 200, headers: { "content-type": "application/octet-stream", "last-modified": new Date().toUTCString() } },
        ),
    })
    const runtime = ManagedRuntime.make(layerS3({ endpoint: `http://127.0.0.1:${server.port}`, region: "us-east-1", forcePathStyle: true, accessKeyId: "k", secretAccessKey: "s", requestTimeoutMs: 10_000 }))
    try {
      const maxBytes = 1_000_000
      const started = Date.now()
      const exit = await runtime.runPromiseExit(Effect.flatMap(Transport, (t) => t.getWithInfo({ bucket: "liar" }, "endless", { maxBytes })))
      expect(exit._tag === "Failure" && exit.cause._tag === "Fail" && exit.cause.error._tag).toBe("TooLarge")
      if (exit._tag === "Failure" && exit.cause._tag === "Fail" && exit.cause.error._tag === "TooLarge") {
        expect(exit.cause.error.size).toBeGreaterThan(maxBytes)
        expect(exit.cause.error.size).toBeLessThanOrEqual(maxBytes + 2 * chunk.length)
      }
      expect(Date.now() - started).toBeLessThan(5_000)
      // The server stops being asked for more soon after the cap (a few buffered chunks at most).
      await Bun.sleep(200)
      const after = sent
      await Bun.sleep(300)
      expect(sent).toBe(after)
      expect(sent).toBeLessThan(maxBytes * 20)
    } finally {
      await runtime.dispose()
      server.stop(true)
    }
  }, 20_000)
})
