/**
 * The one conformance suite every Transport layer must pass: run it with a factory that
 * starts the store and returns its layer.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { createHash } from "node:crypto"
import { Effect, Either, Exit, FastCheck, Fiber, Layer, ManagedRuntime, Stream } from "effect"
import type { KeyringPair } from "@polkadot/keyring/types"
import {
  Transport, activePeers, cryptoReady, debugKey, fetchSigned, gather, gradientKey, peersKey, prune, publishSigned, publishUpdate, sealEnvelope, sealedLength,
} from "../../src/index.ts"
import type { BucketLocation, GatherResult, StoreError } from "../../src/index.ts"
import { deterministicSlice, deterministicStream, sha256 } from "./data.ts"
import { freshBucket, makeHotkeys } from "./peers.ts"

/** How far a kernel file timestamp (coarse clock, one scheduler tick) may trail Date.now(). */
const COARSE_CLOCK_MS = 10

/**
 * How long past its deadline a gather may return. Its deadline is enforced by timers: they fire
 * late when both cores are busy (measured: up to a few hundred ms with two busy loops beside the
 * suite), and in-flight requests are interrupted then. 2 s is far below the 90 s per-peer polling
 * a gather without a deadline would spend, so the bound still proves the deadline holds.
 */
export const DEADLINE_SLACK_MS = 2_000

export interface StoreUnderTest {
  readonly layer: Layer.Layer<Transport>
  readonly teardown: () => Promise<void>
}

const RUN = "conformance-run"
const VERSION = "1.2.3"

/** Every requested uid is in exactly one bucket of the result. */
export const expectPartition = (result: GatherResult, uids: ReadonlyArray<number>) => {
  const all = [
    ...result.delivered.keys(), ...result.missing, ...result.tooEarly.keys(), ...result.tooLate.keys(),
    ...result.unavailable.keys(), ...result.badSignature.keys(), ...result.tooLarge.keys(), ...result.unknownPeer,
  ].sort((a, b) => a - b)
  expect(all).toEqual([...uids].sort((a, b) => a - b))
}

const errorTag = <A>(exit: Exit.Exit<A, StoreError | { readonly _tag: string }>): string =>
  Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error._tag : Exit.isSuccess(exit) ? "Success" : "Defect"

export const runConformance = (name: string, start: () => Promise<StoreUnderTest>) => {
  describe(`Transport conformance: ${name}`, () => {
    let store: StoreUnderTest
    let runtime: ManagedRuntime.ManagedRuntime<Transport, never>
    let hotkeys: Array<KeyringPair>
    const run = <A, E>(effect: Effect.Effect<A, E, Transport>) => runtime.runPromise(effect)
    const exit = <A, E>(effect: Effect.Effect<A, E, Transport>) => runtime.runPromiseExit(effect)
    const bucket = async (label: string): Promise<BucketLocation> => {
      const at = { bucket: freshBucket(label) }
      await run(Effect.flatMap(Transport, (t) => t.ensureBucket(at)))
      return at
    }
    const T = <A, E>(f: (t: Transport["Type"]) => Effect.Effect<A, E>) => Effect.flatMap(Transport, f)

    beforeAll(async () => {
      store = await start()
      runtime = ManagedRuntime.make(store.layer)
      hotkeys = await makeHotkeys(24)
      await Effect.runPromise(cryptoReady)
    })
    afterAll(async () => {
      await runtime.dispose()
      await store.teardown()
    })

    test("bytes round-trip exactly; head reports size and a current store time", async () => {
      const at = await bucket("roundtrip")
      const before = Date.now()
      for (const size of [0, 1, 255, 65_537, 1_048_576 + 3]) {
        const bytes = deterministicSlice(size + 7, size, 4096, 0, size)
        const key = `obj/size-${size}`
        const info = await run(T((t) => t.put(at, key, bytes)))
        expect(info.size).toBe(size)
        const back = await run(T((t) => t.get(at, key)))
        expect(back.length).toBe(size)
        expect(Buffer.from(back).equals(Buffer.from(bytes))).toBe(true)
        const head = await run(T((t) => t.head(at, key)))
        expect(head.size).toBe(size)
        // Same clock on this machine: the store time lies between before (at the store's resolution) and now.
        // Linux stamps file times from a coarse clock that may lag Date.now() by a few ms (one tick).
        expect(head.storeTime).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 - COARSE_CLOCK_MS)
        expect(head.storeTime).toBeLessThanOrEqual(Date.now())
      }
      // Overwrite replaces the object.
      await run(T((t) => t.put(at, "obj/size-1", new Uint8Array([9, 8, 7]))))
      expect([...(await run(T((t) => t.get(at, "obj/size-1"))))]).toEqual([9, 8, 7])
    }, 30_000)

    test("getWithInfo returns the bytes with that version's size and store time; small and empty streams store exactly", async () => {
      const at = await bucket("withinfo")
      const bytes = deterministicSlice(11, 5_000, 4096, 0, 5_000)
      await run(T((t) => t.put(at, "w", bytes)))
      const { bytes: got, info } = await run(T((t) => t.getWithInfo(at, "w")))
      const head = await run(T((t) => t.head(at, "w")))
      expect(Buffer.from(got).equals(Buffer.from(bytes))).toBe(true)
      expect(info).toEqual(head)
      const small = await run(T((t) => t.putStream(at, "s", deterministicStream(5, 70_000, 1000))))
      expect(small.size).toBe(70_000)
      expect(sha256([await run(T((t) => t.get(at, "s")))])).toBe(sha256([deterministicSlice(5, 70_000, 1000, 0, 70_000)]))
      const empty = await run(T((t) => t.putStream(at, "e", Stream.empty)))
      expect(empty.size).toBe(0)
      expect((await run(T((t) => t.get(at, "e")))).length).toBe(0)
    }, 30_000)

    test("signed leader objects round-trip through publishSigned / fetchSigned and are refused for another signer", async () => {
      const at = await bucket("leader")
      const key = peersKey(500, VERSION)
      const payload = new TextEncoder().encode(JSON.stringify({ peers: [1, 2, 3], reserve: [4], effectiveWindow: 500 }))
      const context = { runId: RUN, window: 500, uid: 0, kind: "peers" }
      await run(publishSigned({ at, key, context, payload, signer: hotkeys[0]! }))
      const fetched = await run(fetchSigned({ at, key, context, hotkey: hotkeys[0]!.address }))
      expect(new TextDecoder().decode(fetched.bytes)).toBe(new TextDecoder().decode(payload))
      expect(errorTag(await exit(fetchSigned({ at, key, context, hotkey: hotkeys[1]!.address })))).toBe("BadSignature")
      expect(errorTag(await exit(fetchSigned({ at, key, context: { ...context, window: 501 }, hotkey: hotkeys[0]!.address })))).toBe("BadSignature")
      expect(errorTag(await exit(fetchSigned({ at, key: peersKey(501, VERSION), context, hotkey: hotkeys[0]!.address })))).toBe("NotFound")
    }, 30_000)

    test("ranged and streamed reads return the same bytes as slices", async () => {
      const at = await bucket("ranges")
      const size = 300_001
      const bytes = deterministicSlice(3, size, 4096, 0, size)
      await run(T((t) => t.put(at, "r", bytes)))
      for (const [offset, length] of [[0, 1], [0, size], [1, 10], [4095, 2], [size - 1, 1], [size - 10, 100], [12_345, 0], [size, 0]] as const) {
        const got = await run(T((t) => t.getRange(at, "r", { offset, length })))
        expect(Buffer.from(got).equals(Buffer.from(bytes.subarray(offset, offset + length)))).toBe(true)
      }
      expect(errorTag(await exit(T((t) => t.getRange(at, "r", { offset: size, length: 1 }))))).toBe("InvalidRange")
      expect(errorTag(await exit(T((t) => t.getRange(at, "r", { offset: -1, length: 1 }))))).toBe("InvalidRange")
      const streamed = await run(T((t) => Stream.runCollect(t.getStream(at, "r"))))
      expect(sha256(streamed)).toBe(sha256([bytes]))
      expect(errorTag(await exit(T((t) => Stream.runDrain(t.getStream(at, "nope")))))).toBe("NotFound")
    }, 30_000)

    test("list by prefix, delete, and missing objects and buckets", async () => {
      const at = await bucket("listing")
      const keys = [gradientKey(5, 1, VERSION), gradientKey(5, 12, VERSION), gradientKey(51, 1, VERSION), debugKey(5, 1, VERSION), "checkpoints/1.2.3/10/model-00001.bin", "checkpoints/1.2.3/_LATEST.json"]
      for (const [i, key] of keys.entries()) await run(T((t) => t.put(at, key, new Uint8Array([i]))))
      const listed = (prefix: string) => run(T((t) => t.list(at, prefix))).then((os) => os.map((o) => o.key))
      expect(await listed("gradient-5-")).toEqual([gradientKey(5, 1, VERSION), gradientKey(5, 12, VERSION)].sort())
      expect(await listed("gradient-5")).toEqual([gradientKey(5, 1, VERSION), gradientKey(5, 12, VERSION), gradientKey(51, 1, VERSION)].sort())
      expect(await listed("checkpoints/1.2.3/")).toEqual(["checkpoints/1.2.3/10/model-00001.bin", "checkpoints/1.2.3/_LATEST.json"])
      expect(await listed("")).toEqual([...keys].sort())
      expect(await listed("zzz")).toEqual([])
      const sizes = await run(T((t) => t.list(at, "debug-")))
      expect(sizes.map((o) => o.size)).toEqual([1])

      await run(T((t) => t.delete(at, keys[0]!)))
      await run(T((t) => t.delete(at, keys[0]!))) // deleting a missing object succeeds
      expect(errorTag(await exit(T((t) => t.get(at, keys[0]!))))).toBe("NotFound")
      expect(errorTag(await exit(T((t) => t.head(at, keys[0]!))))).toBe("NotFound")
      expect(await listed("gradient-5-")).toEqual([gradientKey(5, 12, VERSION)])

      const nowhere = { bucket: freshBucket("absent") }
      expect(errorTag(await exit(T((t) => t.get(nowhere, "x"))))).toBe("NotFound")
      expect(errorTag(await exit(T((t) => t.put(nowhere, "x", new Uint8Array(1)))))).toBe("NotFound")
    }, 30_000)

    test("unsafe keys and bucket names are refused with InvalidKey", async () => {
      const at = await bucket("unsafe")
      for (const key of ["", "../escape", "a/../../b", "/abs", "a//b", "a/", "./a", "sp ace", "back\\slash", "nul\u0000", "x".repeat(1025)]) {
        expect(errorTag(await exit(T((t) => t.put(at, key, new Uint8Array(1)))))).toBe("InvalidKey")
        expect(errorTag(await exit(T((t) => t.get(at, key))))).toBe("InvalidKey")
      }
      expect(errorTag(await exit(T((t) => t.list(at, "../"))))).toBe("InvalidKey")
      expect(errorTag(await exit(T((t) => t.get({ bucket: "../etc" }, "passwd"))))).toBe("InvalidKey")
      expect(errorTag(await exit(T((t) => t.get({ bucket: "UPPER" }, "x"))))).toBe("InvalidKey")
    }, 30_000)

    test("a >100 MB object streams in (multipart) and out with an identical hash; ranged reads across parts", async () => {
      const at = await bucket("large")
      const total = 100 * 1024 * 1024 + 12_345
      const chunk = 1 << 20
      // The expected hash comes from the generator itself, not from the store.
      const expected = createHash("sha256")
      await Effect.runPromise(Stream.runForEach(deterministicStream(42, total, chunk), (c) => Effect.sync(() => expected.update(c))))
      const info = await run(T((t) => t.putStream(at, "big/object.bin", deterministicStream(42, total, chunk))))
      expect(info.size).toBe(total)
      const actual = createHash("sha256")
      let streamedBytes = 0
      await run(T((t) => Stream.runForEach(t.getStream(at, "big/object.bin"), (c) => Effect.sync(() => { actual.update(c); streamedBytes += c.length }))))
      expect(streamedBytes).toBe(total)
      expect(actual.digest("hex")).toBe(expected.digest("hex"))
      // 16 MiB is the S3 part size: read across that boundary and at the tail.
      for (const [offset, length] of [[16 * 1024 * 1024 - 5, 10], [total - 100, 100], [77_777_777, 4096]] as const) {
        const got = await run(T((t) => t.getRange(at, "big/object.bin", { offset, length })))
        expect(Buffer.from(got).equals(Buffer.from(deterministicSlice(42, total, chunk, offset, length)))).toBe(true)
      }
      await run(T((t) => t.delete(at, "big/object.bin")))
    }, 120_000)

    test("uploads before or after the upload interval are reported too early / too late, not used", async () => {
      const locations = new Map<number, BucketLocation>()
      const keys = new Map<number, string>()
      for (const uid of [0, 1, 2]) {
        locations.set(uid, await bucket(`interval-${uid}`))
        keys.set(uid, hotkeys[uid]!.address)
        await run(publishUpdate({ at: locations.get(uid)!, runId: RUN, version: VERSION, window: 7, uid, payload: new Uint8Array([uid, 1, 2]), signer: hotkeys[uid]! }))
      }
      const storeTime = await run(T((t) => t.head(locations.get(0)!, gradientKey(7, 0, VERSION)))).then((i) => i.storeTime)
      const gatherWith = (start: number, end: number) =>
        run(gather({ runId: RUN, version: VERSION, window: 7, uids: [0, 1, 2], locations, hotkeys: keys, interval: { start, end }, timeout: "5 seconds", pollInterval: "100 millis" }))
      // Intervals relative to the store's own timestamp (its clock is the one that counts).
      const early = await gatherWith(storeTime + 3_000, storeTime + 10_000)
      expect([...early.tooEarly.keys()].sort()).toEqual([0, 1, 2])
      const late = await gatherWith(storeTime - 10_000, storeTime - 3_000)
      expect([...late.tooLate.keys()].sort()).toEqual([0, 1, 2])
      const onTime = await gatherWith(storeTime - 2_000, storeTime + 70_000)
      expect([...onTime.delivered.keys()].sort()).toEqual([0, 1, 2])
      expect([...onTime.delivered.get(2)!.bytes]).toEqual([2, 1, 2])
      for (const r of [early, late, onTime]) expectPartition(r, [0, 1, 2])
    }, 30_000)

    test("gather of 20 peers (5 missing, 3 slow) returns by its deadline with exactly the on-time ones", async () => {
      const uids = Array.from({ length: 20 }, (_, i) => i)
      const locations = new Map<number, BucketLocation>()
      const keys = new Map<number, string>()
      for (const uid of uids) {
        locations.set(uid, await bucket(`twenty-${uid}`))
        keys.set(uid, hotkeys[uid]!.address)
      }
      const missing = [3, 7, 11, 15, 19]
      const slow = [2, 9, 16]
      const during = [4, 12, 17] // appear while the gather polls, before the deadline
      const before = uids.filter((u) => !missing.includes(u) && !slow.includes(u) && !during.includes(u))
      const publish = (uid: number) => publishUpdate({ at: locations.get(uid)!, runId: RUN, version: VERSION, window: 30, uid, payload: new Uint8Array(64).fill(uid), signer: hotkeys[uid]! })
      for (const uid of before) await run(publish(uid))
      // "during" appear a second into a 6 s gather (it polls every 500 ms); "slow" only once it has returned.
      const timeoutMs = 6_000
      const started = Date.now()
      const interval = { start: started - 5_000, end: started + 60_000 }
      const result = await run(Effect.gen(function* () {
        const lateWriters = yield* Effect.fork(Effect.zipRight(Effect.sleep("1 second"), Effect.forEach(during, publish, { discard: true })))
        const gathered = yield* gather({ runId: RUN, version: VERSION, window: 30, uids, locations, hotkeys: keys, interval, timeout: `${timeoutMs} millis`, perPeerTimeout: "90 seconds", pollInterval: "500 millis", concurrency: 8 })
        yield* Fiber.join(lateWriters)
        yield* Effect.forEach(slow, publish, { discard: true })
        return gathered
      }))
      expect(result.elapsedMs).toBeLessThan(timeoutMs + DEADLINE_SLACK_MS)
      expect([...result.delivered.keys()].sort((a, b) => a - b)).toEqual([...before, ...during].sort((a, b) => a - b))
      expect([...result.missing].sort((a, b) => a - b)).toEqual([...missing, ...slow].sort((a, b) => a - b))
      for (const uid of during) expect([...result.delivered.get(uid)!.bytes.subarray(0, 2)]).toEqual([uid, uid])
      expectPartition(result, uids)
      // The slow ones did arrive, after the deadline.
      for (const uid of slow) expect((await run(T((t) => t.head(locations.get(uid)!, gradientKey(30, uid, VERSION))))).size).toBeGreaterThan(64)
    }, 30_000)

    test("tampered, truncated, replayed and foreign-signed objects fail their signature", async () => {
      const uids = [0, 1, 2, 3, 4, 5]
      const locations = new Map<number, BucketLocation>()
      const keys = new Map<number, string>()
      for (const uid of uids) {
        locations.set(uid, await bucket(`sig-${uid}`))
        keys.set(uid, hotkeys[uid]!.address)
      }
      const window = 40
      const payload = (uid: number) => deterministicSlice(uid, 10_000, 4096, 0, 10_000)
      const sealed = (uid: number, signer: KeyringPair, context = { runId: RUN, window, uid, kind: "gradient" }) =>
        sealEnvelope(context, payload(uid), signer)
      const putAs = (uid: number, bytes: Uint8Array) => run(T((t) => t.put(locations.get(uid)!, gradientKey(window, uid, VERSION), bytes)))
      await putAs(0, sealed(0, hotkeys[0]!)) // honest
      const tampered = sealed(1, hotkeys[1]!)
      tampered[200] = tampered[200]! ^ 1
      await putAs(1, tampered)
      await putAs(2, sealed(2, hotkeys[2]!).subarray(0, 9_000)) // truncated
      // uid 3 replays uid 0's update (signed by 0, for uid 0) under its own key.
      await putAs(3, sealed(0, hotkeys[0]!))
      // uid 4's object is signed by uid 5's hotkey for uid 4's context.
      await putAs(4, sealed(4, hotkeys[5]!))
      // uid 5 signs correctly but for another run.
      await putAs(5, sealed(5, hotkeys[5]!, { runId: "another-run", window, uid: 5, kind: "gradient" }))
      const result = await run(gather({ runId: RUN, version: VERSION, window, uids, locations, hotkeys: keys, interval: { start: Date.now() - 60_000, end: Date.now() + 60_000 }, timeout: "5 seconds" }))
      expect([...result.delivered.keys()]).toEqual([0])
      expect(Buffer.from(result.delivered.get(0)!.bytes).equals(Buffer.from(payload(0)))).toBe(true)
      expect([...result.badSignature.keys()].sort()).toEqual([1, 2, 3, 4, 5])
      expectPartition(result, uids)
    }, 30_000)

    test("maxBytes: a larger object is refused as TooLarge by get, getWithInfo, fetchSigned and gather; one at the cap is read", async () => {
      const at = await bucket("cap")
      const big = deterministicSlice(3, 5_000, 4096, 0, 5_000)
      await run(T((t) => t.put(at, "big", big)))
      const tooLarge = await exit(T((t) => t.get(at, "big", { maxBytes: 4_999 })))
      expect(errorTag(tooLarge)).toBe("TooLarge")
      if (Exit.isFailure(tooLarge) && tooLarge.cause._tag === "Fail" && tooLarge.cause.error._tag === "TooLarge") {
        expect(tooLarge.cause.error.maxBytes).toBe(4_999)
        expect(tooLarge.cause.error.size).toBeGreaterThan(4_999)
      }
      expect(errorTag(await exit(T((t) => t.getWithInfo(at, "big", { maxBytes: 100 }))))).toBe("TooLarge")
      expect((await run(T((t) => t.get(at, "big", { maxBytes: 5_000 })))).length).toBe(5_000)
      expect((await run(T((t) => t.get(at, "big")))).length).toBe(5_000)
      // gather: uid 0 sends a legal-size update, uid 1 one past the cap; the cap comes from the envelope size of the legal one.
      const window = 41
      const locations = new Map<number, BucketLocation>([[0, at], [1, at]])
      const keys = new Map([[0, hotkeys[0]!.address], [1, hotkeys[1]!.address]])
      const small = new Uint8Array(1_000).fill(1)
      const huge = new Uint8Array(200_000).fill(2)
      await run(publishUpdate({ at, runId: RUN, version: VERSION, window, uid: 0, payload: small, signer: hotkeys[0]! }))
      await run(publishUpdate({ at, runId: RUN, version: VERSION, window, uid: 1, payload: huge, signer: hotkeys[1]! }))
      const maxBytes = sealedLength({ runId: RUN, window, uid: 0, kind: "gradient" }, small.length)
      const result = await run(gather({ runId: RUN, version: VERSION, window, uids: [0, 1], locations, hotkeys: keys, interval: { start: Date.now() - 60_000, end: Date.now() + 60_000 }, timeout: "5 seconds", maxBytes }))
      expect([...result.delivered.keys()]).toEqual([0])
      expect([...result.tooLarge.keys()]).toEqual([1])
      expect(result.tooLarge.get(1)!).toBeGreaterThan(maxBytes)
      expectPartition(result, [0, 1])
      expect(errorTag(await exit(fetchSigned({ at, key: gradientKey(window, 1, VERSION), context: { runId: RUN, window, uid: 1, kind: "gradient" }, hotkey: hotkeys[1]!.address, maxBytes })))).toBe("TooLarge")
    }, 30_000)

    test("unknown peers are reported, not polled", async () => {
      const at = await bucket("unknown")
      const result = await run(gather({ runId: RUN, version: VERSION, window: 1, uids: [1, 2], locations: new Map([[1, at]]), hotkeys: new Map([[2, hotkeys[2]!.address]]), interval: { start: 0, end: Date.now() }, timeout: "20 seconds" }))
      expect([...result.unknownPeer].sort()).toEqual([1, 2])
      // Not polled: the gather ends at once, far before its 20 s deadline.
      expect(result.elapsedMs).toBeLessThan(10_000)
      const badUid = await run(gather({ runId: RUN, version: VERSION, window: 1, uids: [-1, 1.5], locations: new Map([[-1, at], [1.5, at]]), hotkeys: new Map([[-1, hotkeys[1]!.address], [1.5, hotkeys[1]!.address]]), interval: { start: 0, end: Date.now() }, timeout: "2 seconds" }))
      expect([...badUid.unknownPeer]).toEqual([-1, 1.5])
    })

    test("bad publish and gather inputs are typed errors, not crashes", async () => {
      const at = await bucket("badinput")
      const base = { at, runId: RUN, version: VERSION, window: 1, uid: 1, payload: new Uint8Array(1), signer: hotkeys[1]! }
      expect(errorTag(await exit(publishUpdate({ ...base, version: "a/b" })))).toBe("InvalidKey")
      expect(errorTag(await exit(publishUpdate({ ...base, window: -3 })))).toBe("InvalidKey")
      expect(errorTag(await exit(publishUpdate({ ...base, uid: 2 ** 33 })))).toBe("InvalidContext")
      expect(errorTag(await exit(publishSigned({ at, key: "ok-key", context: { runId: RUN, window: 1, uid: 1, kind: "" }, payload: new Uint8Array(1), signer: hotkeys[1]! })))).toBe("InvalidContext")
      expect(errorTag(await exit(gather({ runId: RUN, version: "", window: 1, uids: [1], locations: new Map([[1, at]]), hotkeys: new Map([[1, hotkeys[1]!.address]]), interval: { start: 0, end: 1 }, timeout: "1 second" })))).toBe("InvalidKey")
    })

    test("prune deletes only this uid's updates older than 100 windows", async () => {
      const at = await bucket("prune")
      const window = 250
      const written = [
        gradientKey(100, 7, VERSION), gradientKey(149, 7, VERSION), gradientKey(150, 7, VERSION), gradientKey(249, 7, VERSION),
        debugKey(120, 7, VERSION), debugKey(200, 7, VERSION), gradientKey(10, 8, VERSION), gradientKey(140, 7, "0.9.0"), "checkpoints/1.2.3/10/a.bin",
      ]
      for (const key of written) await run(T((t) => t.put(at, key, new Uint8Array(1))))
      const deleted = await run(prune({ at, uid: 7, currentWindow: window }))
      const expectedDeleted = [gradientKey(100, 7, VERSION), gradientKey(149, 7, VERSION), debugKey(120, 7, VERSION), gradientKey(140, 7, "0.9.0")]
      expect([...deleted].sort()).toEqual(expectedDeleted.sort())
      const left = (await run(T((t) => t.list(at, "")))).map((o) => o.key)
      expect(left).toEqual(written.filter((k) => !expectedDeleted.includes(k)).sort())
    }, 30_000)

    test("active peers are those with a gradient in the last 2 windows", async () => {
      const locations = new Map<number, BucketLocation>()
      for (const uid of [0, 1, 2, 3]) locations.set(uid, await bucket(`active-${uid}`))
      const put = (uid: number, key: string) => run(T((t) => t.put(locations.get(uid)!, key, new Uint8Array(1))))
      await put(0, gradientKey(10, 0, VERSION)) // current window
      await put(1, gradientKey(9, 1, VERSION)) // previous window
      await put(2, gradientKey(8, 2, VERSION)) // too old
      await put(3, debugKey(10, 3, VERSION)) // debug slices do not count
      await put(3, gradientKey(10, 3, "0.0.1")) // nor another release's namespace
      const active = await run(activePeers({ uids: [0, 1, 2, 3, 4], locations, version: VERSION, currentWindow: 10 }))
      expect([...active].sort()).toEqual([0, 1])
    }, 30_000)

    test("property: any sequence of puts, gets, deletes and lists matches an in-memory model", async () => {
      type Op =
        | { readonly op: "put"; readonly key: string; readonly value: Uint8Array }
        | { readonly op: "get" | "delete" | "head"; readonly key: string }
        | { readonly op: "list"; readonly prefix: string }
      // Flat keys: a filesystem cannot hold both "a" and "a/b" (S3 can), so nesting is kept to one fixed directory.
      const key = FastCheck.constantFrom("a", "ab", "b", "gradient-1-2-v1", "gradient-1-20-v1", "dir/x", "dir/y")
      const op: FastCheck.Arbitrary<Op> = FastCheck.oneof(
        FastCheck.record({ op: FastCheck.constant("put" as const), key, value: FastCheck.uint8Array({ maxLength: 64 }) }),
        FastCheck.record({ op: FastCheck.constantFrom("get" as const, "delete" as const, "head" as const), key }),
        FastCheck.record({ op: FastCheck.constant("list" as const), prefix: FastCheck.constantFrom("", "a", "gradient-1-2", "dir/", "z") }),
      )
      await FastCheck.assert(
        FastCheck.asyncProperty(FastCheck.array(op, { maxLength: 25 }), async (ops) => {
          const at = await bucket("prop")
          const model = new Map<string, Uint8Array>()
          for (const o of ops) {
            switch (o.op) {
              case "put": {
                await run(T((t) => t.put(at, o.key, o.value)))
                model.set(o.key, o.value)
                break
              }
              case "get": {
                const got = await exit(T((t) => t.get(at, o.key)))
                const want = model.get(o.key)
                if (want === undefined) expect(errorTag(got)).toBe("NotFound")
                else expect(Exit.isSuccess(got) && Buffer.from(got.value).equals(Buffer.from(want))).toBe(true)
                break
              }
              case "head": {
                const got = await exit(T((t) => t.head(at, o.key)))
                const want = model.get(o.key)
                if (want === undefined) expect(errorTag(got)).toBe("NotFound")
                else expect(Exit.isSuccess(got) ? got.value.size : -1).toBe(want.length)
                break
              }
              case "delete": {
                await run(T((t) => t.delete(at, o.key)))
                model.delete(o.key)
                break
              }
              case "list": {
                const got = await run(T((t) => t.list(at, o.prefix)))
                const want = [...model.entries()].filter(([k]) => k.startsWith(o.prefix)).sort(([a], [b]) => (a < b ? -1 : 1))
                expect(got.map((g) => [g.key, g.size])).toEqual(want.map(([k, v]) => [k, v.length]))
                break
              }
            }
          }
        }),
        { numRuns: 12, seed: 20261125 },
      )
    }, 60_000)
  })
}

// Re-exported so layer-specific tests can reuse the same checks.
export { Either, errorTag }
