/**
 * The behaviour interface (loading and validating behaviour modules) and each catalogue
 * behaviour on a real honest update of the debug model: what it uploads, decoded back.
 */
import { describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { Clock, Duration, Effect, Either, Fiber, Option, TestClock, TestContext } from "effect"
import { decompress, peerNorm } from "@covenant/sparseloco"
import type { UpdateMessage, WireTensor } from "@covenant/sparseloco"
import {
  asBehaviour, catalogue, decodeUpdate, encodeUpdate, loadBehaviour, resolveBehaviour, runAddress,
} from "../src/index.ts"
import type { Outgoing, PeerBehaviour, PublishContext, TrainingPlan } from "../src/index.ts"
import { HOTKEY, honestUpdate, manifest, spec } from "./adversary-fixtures.ts"

const ctxFor = (uid: number, window: number, store: Map<string, UpdateMessage> = new Map(), uploadMs = 300): PublishContext => {
  const start = Date.now()
  return {
    name: `peer-${uid}`,
    uid,
    hotkey: HOTKEY,
    window,
    spec,
    address: runAddress(spec),
    manifest,
    peers: [0, 1, 2, 3],
    now: Effect.sync(() => Date.now()),
    upload: { start, end: start + uploadMs },
    readUpdate: (u, w) => Effect.sync(() => store.get(`${u}/${w}`)),
  }
}

const publish = (b: PeerBehaviour, ctx: PublishContext, honest: UpdateMessage): Promise<Outgoing> => Effect.runPromise(b.publish!(ctx, honest))
const train = (b: PeerBehaviour, ctx: PublishContext): Promise<TrainingPlan> => Effect.runPromise(b.train!(ctx))

const dense = (t: WireTensor): Float32Array => (t.coding === "f32" ? t.dense.values : Either.getOrThrow(decompress(t.update)))
const published = (o: Outgoing): UpdateMessage => {
  if (o._tag !== "Publish") throw new Error(`expected Publish, got ${o._tag}`)
  return o.update
}
/** What the receivers decode of an outgoing update. */
const received = (o: Outgoing) => {
  if (o._tag === "Withhold") throw new Error("nothing uploaded")
  const bytes = o._tag === "PublishBytes" ? o.bytes : Either.getOrThrow(encodeUpdate(o.update.meta, o.update.tensors))
  return decodeUpdate(bytes, manifest)
}

describe("behaviour modules", () => {
  test("the example behaviour file loads by path and negates the update", async () => {
    const b = await Effect.runPromise(loadBehaviour(resolve(import.meta.dir, "../../../examples/behaviours/sign-flip.ts")))
    expect(b.name).toBe("example-sign-flip")
    const honest = honestUpdate(1, 5, 1)
    const out = published(await publish(b, ctxFor(1, 5), honest))
    expect(Array.from(dense(out.tensors[0]!))).toEqual(Array.from(dense(honest.tensors[0]!)).map((x) => (x === 0 ? 0 : -x)))
  })

  test("a module that is not a behaviour is a typed BehaviourLoadError", async () => {
    const dir = mkdtempSync(join(tmpdir(), "covenant-behaviour-"))
    try {
      writeFileSync(join(dir, "nohooks.ts"), `export default { name: "x" }\n`)
      writeFileSync(join(dir, "badhook.ts"), `export default { name: "x", publish: 3 }\n`)
      writeFileSync(join(dir, "nodefault.ts"), `export const b = { name: "x", publish: () => 1 }\n`)
      writeFileSync(join(dir, "throws.ts"), `throw new Error("boom")\n`)
      for (const [file, reason] of [["nohooks.ts", "train or a publish hook"], ["badhook.ts", "a function"], ["nodefault.ts", "no default export"], ["throws.ts", "boom"], ["missing.ts", "cannot import"]] as const) {
        const r = await Effect.runPromise(Effect.either(loadBehaviour(join(dir, file))))
        expect(Either.isLeft(r)).toBe(true)
        if (Either.isLeft(r)) {
          expect(r.left._tag).toBe("BehaviourLoadError")
          expect(r.left.reason).toContain(reason)
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
    expect(Either.isLeft(asBehaviour(null))).toBe(true)
    expect(Either.isRight(asBehaviour({ name: "ok", train: () => Effect.succeed({ _tag: "Own" }) }))).toBe(true)
  })

  test("resolveBehaviour: catalogue names, else a path", async () => {
    expect((await Effect.runPromise(resolveBehaviour("copycat"))).name).toBe("copycat")
    const r = await Effect.runPromise(Effect.either(resolveBehaviour("no-such-behaviour")))
    expect(Either.isLeft(r) && r.left._tag === "BehaviourLoadError").toBe(true)
    expect(Object.keys(catalogue).sort()).toEqual(
      ["copycat", "free-rider", "inf", "late", "nan", "noise", "other-data", "scaled", "sign-flip", "slow", "stale", "wrong-codec", "wrong-shape"],
    )
  })
})

describe("the catalogue does what it says", () => {
  const honest = honestUpdate(1, 7, 42)
  const honestDense = honest.tensors.map(dense)

  test("sign-flip: every value negated, and it decodes", async () => {
    const out = await publish(catalogue["sign-flip"]!, ctxFor(1, 7), honest)
    const got = Either.getOrThrow(received(out))
    got.tensors.forEach((t, i) => expect(Array.from(dense(t))).toEqual(Array.from(honestDense[i]!).map((x) => (x === 0 ? 0 : -x))))
  })

  test("scaled: x1000, and it decodes", async () => {
    const got = Either.getOrThrow(received(await publish(catalogue["scaled"]!, ctxFor(1, 7), honest)))
    got.tensors.forEach((t, i) => {
      const d = dense(t)
      honestDense[i]!.forEach((x, j) => expect(d[j]!).toBeCloseTo(x * 1000, 3))
    })
  })

  test("noise: exactly the honest norm per tensor, other positions, and it decodes", async () => {
    const got = Either.getOrThrow(received(await publish(catalogue["noise"]!, ctxFor(1, 7), honest)))
    let moved = 0
    got.tensors.forEach((t, i) => {
      const h = honest.tensors[i]!
      if (t.coding === "f32" || h.coding === "f32") throw new Error("sparse expected")
      expect(peerNorm(t.update)).toBe(peerNorm(h.update))
      if (Array.from(t.update.indices).join() !== Array.from(h.update.indices).join()) moved++
    })
    expect(moved).toBe(got.tensors.length)
  })

  for (const name of ["nan", "inf"] as const) {
    test(`${name}: bytes whose statistics are not finite, refused by the decoder`, async () => {
      const out = await publish(catalogue[name]!, ctxFor(1, 7), honest)
      expect(out._tag).toBe("PublishBytes")
      const r = received(out)
      expect(Either.isLeft(r)).toBe(true)
      if (Either.isLeft(r)) expect(r.left.reason).toContain("BadHeader")
    })
  }

  test("wrong-shape: a well-formed update the decoder refuses for its shape", async () => {
    const out = published(await publish(catalogue["wrong-shape"]!, ctxFor(1, 7), honest))
    const t0 = out.tensors[0]!
    const shape = t0.coding === "f32" ? t0.dense.shape : t0.update.shape
    expect(shape[0]).toBe(manifest.tensors[0]!.shape[0]! * 2)
    const r = received({ _tag: "Publish", update: out })
    expect(Either.isLeft(r) && r.left.reason.startsWith("ShapeMismatch")).toBe(true)
  })

  test("wrong-codec: right shapes, another chunk edge than the spec's (the decoder alone accepts it)", async () => {
    const got = Either.getOrThrow(received(await publish(catalogue["wrong-codec"]!, ctxFor(1, 7), honest)))
    const c = spec.compression
    if (c.kind !== "sparseloco") throw new Error("sparse expected")
    for (const t of got.tensors) {
      if (t.coding === "f32") throw new Error("sparse expected")
      expect(t.update.chunk).not.toBe(c.chunk)
      expect(t.update.chunk).toBe(c.chunk === 32 ? 16 : 32)
    }
  })

  test("copycat: waits for another peer's update of the window, re-signs it as its own with its own samples", async () => {
    const store = new Map<string, UpdateMessage>()
    const victim = honestUpdate(2, 7, 99)
    const ctx = ctxFor(1, 7, store, 600)
    setTimeout(() => store.set("2/7", victim), 100)
    const out = published(await publish(catalogue["copycat"]!, ctx, honest))
    expect(out.meta).toEqual({ ...victim.meta, uid: 1, hotkey: HOTKEY, sampleDigest: honest.meta.sampleDigest, sampleCount: honest.meta.sampleCount })
    expect(out.tensors).toBe(victim.tensors)
    // Nobody uploads: it uploads nothing.
    expect((await publish(catalogue["copycat"]!, ctxFor(1, 7, new Map(), 60), honest))._tag).toBe("Withhold")
  })

  test("stale: its own update of two windows ago relabelled; the honest one while it has none", async () => {
    const old = honestUpdate(1, 5, 5)
    const store = new Map([["1/5", old]])
    const out = published(await publish(catalogue["stale"]!, ctxFor(1, 7, store), honest))
    expect(out.meta.window).toBe(7)
    expect(out.tensors).toBe(old.tensors)
    expect(published(await publish(catalogue["stale"]!, ctxFor(1, 7), honest))).toBe(honest)
  })

  test("late: the honest update, after the upload interval has closed", async () => {
    const ctx = ctxFor(1, 7, new Map(), 150)
    const out = published(await publish(catalogue["late"]!, ctx, honest))
    expect(Date.now()).toBeGreaterThan(ctx.upload.end)
    expect(out).toBe(honest)
  })

  test("other-data: trains on another uid's assignment of the window", async () => {
    expect(await train(catalogue["other-data"]!, ctxFor(1, 7))).toEqual({ _tag: "Assignment", uid: 1001, window: 7 })
  })

  test("free-rider: skips training and uploads zeros", async () => {
    expect(await train(catalogue["free-rider"]!, ctxFor(1, 7))).toEqual({ _tag: "Skip" })
    const got = Either.getOrThrow(received(await publish(catalogue["free-rider"]!, ctxFor(1, 7), honest)))
    for (const t of got.tensors) expect(dense(t).every((x) => x === 0)).toBe(true)
  })

  test("slow: honest, but every third window its update lands a window length after the upload interval closed", async () => {
    const windowMs = spec.participation.blocksPerWindow * spec.participation.blockTimeMs
    // On the test clock (time 0), an upload interval closing at 300 ms.
    const landing = (window: number) =>
      Effect.gen(function* () {
        const ctx: PublishContext = { ...ctxFor(1, window), now: Clock.currentTimeMillis, upload: { start: 0, end: 300 } }
        const fiber = yield* Effect.fork(catalogue["slow"]!.publish!(ctx, honest))
        yield* TestClock.adjust(Duration.millis(300 + windowMs - 1))
        const before = yield* Fiber.poll(fiber)
        yield* TestClock.adjust(Duration.millis(1))
        return { before: Option.isSome(before), out: yield* Fiber.join(fiber) }
      }).pipe(Effect.provide(TestContext.TestContext), Effect.runPromise)
    const onTime = await landing(7)
    expect(onTime.before).toBe(true)
    expect(published(onTime.out)).toBe(honest)
    const late = await landing(9)
    expect(late.before).toBe(false)
    expect(published(late.out)).toBe(honest)
  })
})
