/**
 * The in-memory layer: the same conformance suite as the filesystem and S3 layers, and store
 * times from Effect's Clock, so a gather under a simulated clock judges uploads by simulated time.
 */
import { describe, expect, test } from "bun:test"
import { Duration, Effect, Fiber, TestClock, TestContext } from "effect"
import { Transport, cryptoReady, gather, layerMemory, publishUpdate } from "../src/index.ts"
import { expectPartition, runConformance } from "./support/conformance.ts"
import { makeHotkeys } from "./support/peers.ts"

runConformance("memory", async () => ({ layer: layerMemory(), teardown: async () => {} }))

describe("memory layer specifics", () => {
  test("store times are the simulated clock's: too early, on time and too late in simulated time", async () => {
    await Effect.runPromise(cryptoReady)
    const hotkeys = await makeHotkeys(3, "mem-times")
    const window = 4
    const program = Effect.gen(function* () {
      const t = yield* Transport
      const locations = new Map([0, 1, 2].map((uid) => [uid, { bucket: `peer-${uid}` }] as const))
      for (const at of locations.values()) yield* t.ensureBucket(at)
      // TestClock starts at 0: the interval is [1000, 2000] of simulated time.
      const interval = { start: 1000, end: 2000 }
      const upload = (uid: number) => publishUpdate({ at: locations.get(uid)!, runId: "r", version: "1", window, uid, payload: new Uint8Array([uid]), signer: hotkeys[uid]! })
      yield* upload(0) // at 0: too early
      yield* TestClock.adjust(Duration.millis(1500))
      yield* upload(1) // at 1500: on time
      const gathering = yield* Effect.fork(gather({
        runId: "r", version: "1", window, uids: [0, 1, 2], locations,
        hotkeys: new Map(hotkeys.map((h, uid) => [uid, h.address])), interval, timeout: "10 seconds", pollInterval: "100 millis",
      }))
      yield* TestClock.adjust(Duration.millis(1000))
      yield* upload(2) // at 2500: too late
      yield* TestClock.adjust(Duration.seconds(10))
      return yield* Fiber.join(gathering)
    })
    const result = await Effect.runPromise(program.pipe(Effect.provide(layerMemory()), Effect.provide(TestContext.TestContext)))
    expect([...result.tooEarly.entries()]).toEqual([[0, 0]])
    expect([...result.delivered.keys()]).toEqual([1])
    expect(result.delivered.get(1)!.storeTime).toBe(1500)
    expect([...result.tooLate.entries()]).toEqual([[2, 2500]])
    expectPartition(result, [0, 1, 2])
  })

  test("each layer build is its own store", async () => {
    const put = Effect.gen(function* () {
      const t = yield* Transport
      yield* t.ensureBucket({ bucket: "solo" })
      return (yield* t.list({ bucket: "solo" }, "")).length
    })
    const once = Effect.zipRight(Effect.flatMap(Transport, (t) => t.put({ bucket: "solo" }, "k", new Uint8Array(1)).pipe(Effect.ignore)), put)
    expect(await Effect.runPromise(Effect.provide(Effect.zipRight(Effect.flatMap(Transport, (t) => t.ensureBucket({ bucket: "solo" })), once), layerMemory()))).toBe(1)
    expect(await Effect.runPromise(Effect.provide(put, layerMemory()))).toBe(0)
  })
})
