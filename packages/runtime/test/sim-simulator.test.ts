/**
 * The simulator (src/sim/simulator.ts): time advances only when the program is quiet, to the
 * earliest sleep; outside work (src/sim/external.ts) takes no simulated time and is handed back
 * in the order it was started, however long each piece really takes.
 */
import { expect, test } from "bun:test"
import { Clock, Data, Duration, Effect, Fiber } from "effect"
import * as External from "../src/sim/external.ts"
import { defaultSimulatedStartMs, simulate } from "../src/sim/simulator.ts"

const since = Effect.map(Clock.currentTimeMillis, (t) => t - defaultSimulatedStartMs)
/** A real promise that takes `ms` of wall time. */
const wallWait = (ms: number) => External.promise(() => new Promise<void>((resolve) => setTimeout(resolve, ms)))

test("concurrent sleeps wake at their simulated times, in order; the run takes the longest sleep", async () => {
  const log: string[] = []
  const sleeper = (name: string, ms: number) => Effect.zipRight(Effect.sleep(Duration.millis(ms)), Effect.flatMap(since, (t) => Effect.sync(() => log.push(`${name}@${t}`))))
  const run = await Effect.runPromise(simulate(Effect.all([sleeper("c", 3_000), sleeper("a", 1_000), sleeper("b", 2_000), sleeper("a2", 1_000)], { concurrency: "unbounded" })))
  expect(log).toEqual(["a@1000", "a2@1000", "b@2000", "c@3000"])
  expect(run.simulatedMs).toBe(3_000)
  expect(run.advances).toBe(3)
})

test("outside work takes no simulated time and is handed back in start order", async () => {
  const log: string[] = []
  const note = (name: string) => Effect.flatMap(since, (t) => Effect.sync(() => log.push(`${name}@${t}`)))
  const program = Effect.gen(function* () {
    // The slow one starts first: its outcome comes back first, though the fast one settles sooner.
    const slow = yield* Effect.fork(Effect.zipRight(wallWait(60), note("slow")))
    const fast = yield* Effect.fork(Effect.zipRight(wallWait(0), note("fast")))
    const sleeper = yield* Effect.fork(Effect.zipRight(Effect.sleep(Duration.millis(5)), note("sleeper")))
    yield* Fiber.joinAll([slow, fast, sleeper])
  })
  const run = await Effect.runPromise(simulate(program))
  expect(log).toEqual(["slow@0", "fast@0", "sleeper@5"])
  expect(run.simulatedMs).toBe(5)
})

test("a polling loop against a deadline is exact in simulated time, whatever the compute costs", async () => {
  const program = Effect.gen(function* () {
    const deadline = (yield* Clock.currentTimeMillis) + 1_000
    let polls = 0
    while ((yield* Clock.currentTimeMillis) < deadline) {
      // Compute between polls (real time) does not move the simulated clock.
      let x = 0
      for (let i = 0; i < 200_000; i++) x += i
      if (x < 0) return -1
      polls++
      yield* Effect.sleep(Duration.millis(125))
    }
    return polls
  })
  const run = await Effect.runPromise(simulate(program))
  expect(run.value).toBe(8)
  expect(run.simulatedMs).toBe(1_000)
})

class Boom extends Data.TaggedError("Boom")<{ readonly at: number }> {}

test("the program's typed failure is the simulation's", async () => {
  const failing = Effect.flatMap(Effect.zipRight(Effect.sleep(Duration.seconds(7)), since), (at) => Effect.fail(new Boom({ at })))
  const exit = await Effect.runPromise(Effect.either(simulate(failing)))
  expect(exit._tag).toBe("Left")
  if (exit._tag === "Left") expect(exit.left).toEqual(new Boom({ at: 7_000 }))
})

test("one simulation at a time: the outside-work gate is installed once and released after the run", async () => {
  await Effect.runPromise(simulate(Effect.sleep(Duration.millis(1))))
  // After a run the gate is gone: a wall-clock promise settles on its own.
  expect(await Effect.runPromise(External.promise(() => Promise.resolve(42)))).toBe(42)
  const inner = await Effect.runPromise(Effect.either(simulate(Effect.promise(() => Effect.runPromise(simulate(Effect.void))))).pipe(Effect.catchAllDefect((d) => Effect.succeed({ _tag: "Defect" as const, d }))))
  expect(inner._tag).toBe("Defect")
  if (inner._tag === "Defect") expect(String(inner.d)).toContain("one at a time")
})
