/**
 * A discrete-event simulator for Effect programs: the program runs on a simulated Clock whose time
 * advances only when the program is quiescent, to the earliest pending sleep. Compute and I/O take
 * zero simulated time; a program that only waits for time (windows, polls, deadlines) runs as fast
 * as its compute allows, and its timing, hence what it decides from the time, is reproducible.
 *
 * Quiescent means: every fiber of the program (tracked by a Supervisor) is suspended with nothing
 * queued, and that still holds after a few more event-loop turns (a margin for a promise not
 * routed through external.ts). Then the next event is, in this order: the oldest held outcome of
 * outside work (external.ts: file I/O, engine promises; waited for if not yet settled), else the
 * sleepers due at the earliest deadline, woken in the order they went to sleep. Each event is
 * followed by running the program to quiescence again, so the events a program sees, and their
 * order, do not depend on how fast the machine is.
 *
 * Reads Effect's FiberRuntime state (`_queue`, `_asyncBlockingOn`, `_running`, `_exitValue`) to
 * tell a suspended fiber from a runnable one: Effect has no public synchronous view of it. Checked
 * at start: a version of Effect without them fails with a defect instead of mis-simulating.
 */
import { Clock, Duration, Effect, Exit, FiberRef, HashMap, Option, Supervisor } from "effect"
import type { Context, Fiber } from "effect"
import { installGate } from "./external.ts"
import type { ExternalGate } from "./external.ts"

/** Where simulated time starts by default (2025-01-01T00:00:00Z): a fixed epoch, so runs are reproducible. */
export const defaultSimulatedStartMs = 1_735_689_600_000

interface Sleeper {
  readonly at: number
  readonly seq: number
  readonly wake: () => void
}

/** An Effect Clock in simulated milliseconds; `advance` moves it to the earliest sleeper and wakes what is due. */
export class SimulatedClock implements Clock.Clock {
  readonly [Clock.ClockTypeId]: Clock.ClockTypeId = Clock.ClockTypeId
  private now: number
  private seq = 0
  /** Sorted by (at, seq). */
  private readonly sleepers: Sleeper[] = []
  /** Sleeps woken so far (a measure of the run's events). */
  woken = 0

  constructor(readonly startMs: number = defaultSimulatedStartMs) {
    this.now = startMs
  }

  unsafeCurrentTimeMillis(): number {
    return this.now
  }
  readonly currentTimeMillis: Effect.Effect<number> = Effect.sync(() => this.now)
  unsafeCurrentTimeNanos(): bigint {
    return BigInt(this.now) * 1_000_000n
  }
  readonly currentTimeNanos: Effect.Effect<bigint> = Effect.sync(() => this.unsafeCurrentTimeNanos())

  /** Simulated milliseconds since the start. */
  get elapsedMs(): number {
    return this.now - this.startMs
  }

  get pendingSleeps(): number {
    return this.sleepers.length
  }

  sleep(duration: Duration.DurationInput): Effect.Effect<void> {
    const ms = Duration.toMillis(Duration.decode(duration))
    return Effect.async<void>((resume) => {
      // An infinite sleep never wakes; it is not a pending event.
      if (!Number.isFinite(ms)) return
      const sleeper: Sleeper = { at: this.now + Math.max(0, Math.ceil(ms)), seq: this.seq++, wake: () => resume(Effect.void) }
      this.insert(sleeper)
      return Effect.sync(() => this.remove(sleeper))
    })
  }

  /** Moves to the earliest pending sleep and wakes every sleeper due then; false when none is pending. */
  advance(): boolean {
    const first = this.sleepers[0]
    if (first === undefined) return false
    this.now = Math.max(this.now, first.at)
    const due: Sleeper[] = []
    while (this.sleepers.length > 0 && this.sleepers[0]!.at <= this.now) due.push(this.sleepers.shift()!)
    for (const s of due) s.wake()
    this.woken += due.length
    return true
  }

  private insert(s: Sleeper) {
    let lo = 0
    let hi = this.sleepers.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      const m = this.sleepers[mid]!
      if (m.at < s.at || (m.at === s.at && m.seq < s.seq)) lo = mid + 1
      else hi = mid
    }
    this.sleepers.splice(lo, 0, s)
  }

  private remove(s: Sleeper) {
    const i = this.sleepers.indexOf(s)
    if (i >= 0) this.sleepers.splice(i, 1)
  }
}

/** Holds outside work's outcomes and releases them oldest first (external.ts). */
class Gate implements ExternalGate {
  private next = 0
  private readonly held = new Map<number, { readonly settled: Promise<void>; readonly release: () => void }>()

  readonly hold = <A>(promise: PromiseLike<A>): Promise<A> => {
    const id = this.next++
    let release: () => void = () => undefined
    const released = new Promise<void>((resolve) => {
      release = resolve
    })
    const outcome = Promise.resolve(promise)
    this.held.set(id, { settled: outcome.then(() => undefined, () => undefined), release })
    return outcome.then(
      async (a) => {
        await released
        return a
      },
      async (e: unknown) => {
        await released
        throw e
      },
    )
  }

  /** Releases the oldest held outcome (once it has settled); false when none is held. */
  async releaseNext(): Promise<boolean> {
    const first = this.held.entries().next()
    if (first.done === true) return false
    const [id, h] = first.value
    await h.settled
    this.held.delete(id)
    h.release()
    return true
  }
}

/** The log annotation that names whose work a fiber does (`Effect.annotateLogs(busyLabel, name)`). */
export const busyLabel = "node"

/**
 * Tracks every fiber the program forks (and their forks), while alive, and the wall time each
 * spends running on this thread, by its `busyLabel` log annotation ("-" without one).
 */
class LiveFibers extends Supervisor.AbstractSupervisor<void> {
  readonly fibers = new Set<Fiber.RuntimeFiber<unknown, unknown>>()
  readonly busyMs = new Map<string, number>()
  private readonly resumedAt = new Map<Fiber.RuntimeFiber<unknown, unknown>, number>()
  readonly value: Effect.Effect<void> = Effect.void
  override onStart<A, E, R>(_context: Context.Context<R>, _effect: Effect.Effect<A, E, R>, _parent: unknown, fiber: Fiber.RuntimeFiber<A, E>): void {
    this.fibers.add(fiber as Fiber.RuntimeFiber<unknown, unknown>)
  }
  override onEnd<A, E>(_value: Exit.Exit<A, E>, fiber: Fiber.RuntimeFiber<A, E>): void {
    this.fibers.delete(fiber as Fiber.RuntimeFiber<unknown, unknown>)
    this.resumedAt.delete(fiber as Fiber.RuntimeFiber<unknown, unknown>)
  }
  override onResume<A, E>(fiber: Fiber.RuntimeFiber<A, E>): void {
    this.resumedAt.set(fiber as Fiber.RuntimeFiber<unknown, unknown>, performance.now())
  }
  override onSuspend<A, E>(fiber: Fiber.RuntimeFiber<A, E>): void {
    const at = this.resumedAt.get(fiber as Fiber.RuntimeFiber<unknown, unknown>)
    if (at === undefined) return
    const label = Option.getOrElse(HashMap.get(fiber.getFiberRef(FiberRef.currentLogAnnotations), busyLabel), () => "-")
    const key = typeof label === "string" ? label : String(label)
    this.busyMs.set(key, (this.busyMs.get(key) ?? 0) + performance.now() - at)
  }
}

/** The FiberRuntime fields the quiescence check reads (Effect 3.x internals). */
interface FiberInternals {
  readonly _queue: ReadonlyArray<unknown>
  readonly _asyncBlockingOn: unknown
  readonly _running: boolean
  readonly _exitValue: unknown
}

const internalsOf = (fiber: Fiber.RuntimeFiber<unknown, unknown>): FiberInternals => {
  const f = fiber as unknown as Partial<FiberInternals>
  if (!Array.isArray(f._queue) || !("_asyncBlockingOn" in f) || typeof f._running !== "boolean" || !("_exitValue" in f)) {
    throw new Error("simulator: this version of Effect's FiberRuntime has no _queue/_asyncBlockingOn/_running/_exitValue; the quiescence check needs them")
  }
  return f as FiberInternals
}

/** Suspended on an async operation with nothing queued (or done). */
const isIdle = (fiber: Fiber.RuntimeFiber<unknown, unknown>): boolean => {
  const f = internalsOf(fiber)
  return f._exitValue !== null || (!f._running && f._queue.length === 0 && f._asyncBlockingOn !== null)
}

/** Event-loop turns the program must stay quiescent before the clock advances. */
const settleTurns = 3

const turn = () => new Promise<void>((resolve) => setImmediate(resolve))
const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export interface Simulated<A> {
  readonly value: A
  /** Simulated milliseconds the program took. */
  readonly simulatedMs: number
  /** Clock advances (distinct instants at which something woke). */
  readonly advances: number
  /**
   * Wall milliseconds the program's fibers spent running on this thread, by their `busyLabel`
   * log annotation: a node's own work (its compute, codec, I/O setup), not the time others ran.
   * Work a promise does after its first await is not counted.
   */
  readonly busyMs: Readonly<Record<string, number>>
}

/**
 * Runs `program` on a fresh simulated clock starting at `startMs`, driving its time as described
 * above; fails or dies as the program does. Interrupting the returned effect interrupts the program.
 */
export const simulate = <A, E>(program: Effect.Effect<A, E>, options: { readonly startMs?: number } = {}): Effect.Effect<Simulated<A>, E> =>
  Effect.async<Simulated<A>, E>((resume) => {
    const clock = new SimulatedClock(options.startMs ?? defaultSimulatedStartMs)
    const live = new LiveFibers()
    const gate = new Gate()
    const uninstall = installGate(gate)
    const root = Effect.runFork(Effect.withClock(Effect.supervised(program, live), clock))
    internalsOf(root as Fiber.RuntimeFiber<unknown, unknown>)
    let advances = 0
    let done = false
    let resumed = false
    const finish = (result: Effect.Effect<Simulated<A>, E>) => {
      done = true
      uninstall()
      if (resumed) return
      resumed = true
      resume(result)
    }
    root.addObserver((exit) =>
      finish(Exit.isSuccess(exit) ? Effect.succeed({ value: exit.value, simulatedMs: clock.elapsedMs, advances, busyMs: Object.fromEntries(live.busyMs) }) : Effect.failCause(exit.cause)))
    const quiescent = () => isIdle(root as Fiber.RuntimeFiber<unknown, unknown>) && [...live.fibers].every(isIdle)
    const drive = async () => {
      let quiet = 0
      while (!done) {
        await turn()
        if (done) return
        if (!quiescent()) {
          quiet = 0
          continue
        }
        if (++quiet < settleTurns) continue
        quiet = 0
        if (await gate.releaseNext()) continue
        if (clock.advance()) advances++
        // Nothing held, nothing to wake, nothing running: an unrouted promise must resolve.
        else await pause(1)
      }
    }
    // A driver failure (Effect's internals not as expected) is a defect of the simulation; the program is stopped.
    drive().catch((e: unknown) => {
      root.unsafeInterruptAsFork(root.id())
      finish(Effect.die(e))
    })
    return Effect.sync(() => root.unsafeInterruptAsFork(root.id()))
  })
