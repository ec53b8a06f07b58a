/**
 * Promises a node awaits (file I/O, an engine's readback), routed so that the simulator
 * (simulator.ts) can order them. On the wall clock these are Effect's `tryPromise` / `promise`.
 * Under the simulator each promise still starts at once, but its outcome is held and handed back
 * only when the simulator releases it: one at a time, in the order the promises were started,
 * each when the rest of the program has gone quiet. So outside work takes no simulated time, and
 * however the operating system schedules it, the program sees it finish in the same order on
 * every run.
 *
 * Use these instead of Effect's for any promise a node awaits while running; one that is not
 * routed here is a source of irreproducibility in a simulated run (README, "A simulated swarm").
 */
import { Effect } from "effect"

/** Holds promises' outcomes until released (the simulator's side). */
export interface ExternalGate {
  readonly hold: <A>(promise: PromiseLike<A>) => Promise<A>
}

let gate: ExternalGate | undefined

/** Routes this process's node promises through `g` until the returned function is called; one gate at a time. */
export const installGate = (g: ExternalGate): (() => void) => {
  if (gate !== undefined) throw new Error("simulator: another simulation is running in this process (one at a time)")
  gate = g
  return () => {
    if (gate === g) gate = undefined
  }
}

const routed = <A>(p: PromiseLike<A>): PromiseLike<A> => (gate === undefined ? p : gate.hold(p))

/** `Effect.tryPromise({ try, catch })`, routed through the simulator's gate when one is installed. */
export const tryPromise = <A, E>(options: { readonly try: (signal: AbortSignal) => PromiseLike<A>; readonly catch: (error: unknown) => E }): Effect.Effect<A, E> =>
  Effect.tryPromise({ try: (signal) => routed(options.try(signal)), catch: options.catch })

/** `Effect.promise`, routed through the simulator's gate when one is installed. */
export const promise = <A>(evaluate: (signal: AbortSignal) => PromiseLike<A>): Effect.Effect<A> => Effect.promise((signal) => routed(evaluate(signal)))
