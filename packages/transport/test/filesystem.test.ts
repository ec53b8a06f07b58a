import { describe, expect, test } from "bun:test"
import { existsSync, mkdtempSync, readdirSync, rmSync, utimesSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { Effect, Layer, ManagedRuntime } from "effect"
import { Transport, cryptoReady, gather, gradientKey, layerFileSystem, makeFileSystemTransport, publishUpdate, sealEnvelope } from "../src/index.ts"
import { errorTag, expectPartition, runConformance } from "./support/conformance.ts"
import { makeHotkeys } from "./support/peers.ts"

runConformance("filesystem", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "covenant-fs-"))
  return { layer: layerFileSystem(dir), teardown: async () => rmSync(dir, { recursive: true, force: true }) }
})

describe("filesystem layer specifics", () => {
  test("store times set with utimes decide too early / on time / too late", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "covenant-fs-"))
    const runtime = ManagedRuntime.make(layerFileSystem(dir))
    try {
      await Effect.runPromise(cryptoReady)
      const hotkeys = await makeHotkeys(3, "fs-times")
      const window = 12
      const windowStart = 1_800_000_000_000
      const interval = { start: windowStart, end: windowStart + 70_000 }
      // windowStart - 10: a whole resolution (10 ms, the kernel's coarse clock) before the start.
      const stamps = [windowStart - 10, windowStart + 35_000, windowStart + 70_001]
      const locations = new Map([0, 1, 2].map((uid) => [uid, { bucket: `peer-${uid}` }] as const))
      for (const uid of [0, 1, 2]) {
        await runtime.runPromise(Effect.flatMap(Transport, (t) => t.ensureBucket(locations.get(uid)!)))
        await runtime.runPromise(publishUpdate({ at: locations.get(uid)!, runId: "r", version: "1", window, uid, payload: new Uint8Array([uid]), signer: hotkeys[uid]! }))
        const seconds = stamps[uid]! / 1000
        utimesSync(path.join(dir, `peer-${uid}`, gradientKey(window, uid, "1")), seconds, seconds)
      }
      const result = await runtime.runPromise(gather({
        runId: "r", version: "1", window, uids: [0, 1, 2], locations,
        hotkeys: new Map(hotkeys.map((h, uid) => [uid, h.address])), interval, timeout: "3 seconds",
      }))
      expect([...result.tooEarly.entries()]).toEqual([[0, stamps[0]!]])
      expect([...result.delivered.keys()]).toEqual([1])
      expect(result.delivered.get(1)!.storeTime).toBe(stamps[1]!)
      expect([...result.tooLate.entries()]).toEqual([[2, stamps[2]!]])
      expectPartition(result, [0, 1, 2])
    } finally {
      await runtime.dispose()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test("mock race: an object replaced between head and download is judged by the downloaded version's store time", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "covenant-fs-"))
    const [peer] = await makeHotkeys(1, "fs-race")
    await Effect.runPromise(cryptoReady)
    const windowStart = 1_800_000_000_000
    const interval = { start: windowStart, end: windowStart + 70_000 }
    const at = { bucket: "racer" }
    const key = gradientKey(3, 0, "1")
    const file = path.join(dir, "racer", key)
    const real = makeFileSystemTransport(dir)
    // The real filesystem store, except that right after each head the peer swaps in another
    // update stamped after the interval (what a peer would do to upload late under an early stamp).
    const racing = Layer.succeed(Transport, {
      ...real,
      head: (loc, k) => Effect.tap(real.head(loc, k), () => Effect.gen(function* () {
        yield* real.put(loc, k, sealEnvelope({ runId: "r", window: 3, uid: 0, kind: "gradient" }, new Uint8Array([2]), peer!))
        const late = (windowStart + 100_000) / 1000
        utimesSync(file, late, late)
      })),
    })
    const runtime = ManagedRuntime.make(racing)
    try {
      await runtime.runPromise(Effect.flatMap(Transport, (t) => t.ensureBucket(at)))
      await runtime.runPromise(publishUpdate({ at, runId: "r", version: "1", window: 3, uid: 0, payload: new Uint8Array([1]), signer: peer! }))
      const onTime = (windowStart + 10_000) / 1000
      utimesSync(file, onTime, onTime)
      const result = await runtime.runPromise(gather({ runId: "r", version: "1", window: 3, uids: [0], locations: new Map([[0, at]]), hotkeys: new Map([[0, peer!.address]]), interval, timeout: "3 seconds" }))
      expect(result.delivered.size).toBe(0)
      expect([...result.tooLate.entries()]).toEqual([[0, windowStart + 100_000]])
    } finally {
      await runtime.dispose()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test("keys cannot escape the bucket directory and no temp files are left behind", async () => {
    const root = mkdtempSync(path.join(tmpdir(), "covenant-fs-"))
    const dir = path.join(root, "store")
    const runtime = ManagedRuntime.make(layerFileSystem(dir))
    try {
      const at = { bucket: "mine" }
      await runtime.runPromise(Effect.flatMap(Transport, (t) => t.ensureBucket(at)))
      for (const key of ["../outside", "../../outside", "a/../../outside"]) {
        const exit = await runtime.runPromiseExit(Effect.flatMap(Transport, (t) => t.put(at, key, new Uint8Array(1))))
        expect(errorTag(exit)).toBe("InvalidKey")
      }
      expect(existsSync(path.join(dir, "outside"))).toBe(false)
      expect(existsSync(path.join(root, "outside"))).toBe(false)
      await runtime.runPromise(Effect.flatMap(Transport, (t) => t.put(at, "a/b/c", new Uint8Array(10))))
      expect(readdirSync(path.join(dir, ".tmp"))).toEqual([])
      // "a/b" is a directory here: the filesystem cannot also hold an object named "a/b".
      const clash = await runtime.runPromiseExit(Effect.flatMap(Transport, (t) => t.put(at, "a/b", new Uint8Array(1))))
      expect(errorTag(clash)).toBe("InvalidKey")
      expect(readdirSync(path.join(dir, ".tmp"))).toEqual([])
    } finally {
      await runtime.dispose()
      rmSync(root, { recursive: true, force: true })
    }
  })
})
