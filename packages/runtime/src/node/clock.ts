/** The chain's window clock as nodes follow it: the current window and waiting for a later one. */
import { Duration, Effect } from "effect"
import { Chain } from "@covenant/chain"
import type { RuntimeFailure } from "../errors.ts"
import { inPhase } from "../errors.ts"

export const currentWindow: Effect.Effect<number, RuntimeFailure, Chain> = Effect.gen(function* () {
  const chain = yield* Chain
  const block = yield* Effect.mapError(chain.currentBlock, inPhase("clock"))
  return chain.windowOf(block.number)
})

/** Returns once the chain has reached `window` (polling every `pollMs`), with the window it is in. */
export const waitForWindow = (window: number, pollMs: number): Effect.Effect<number, RuntimeFailure, Chain> =>
  Effect.gen(function* () {
    for (;;) {
      const now = yield* currentWindow
      if (now >= window) return now
      yield* Effect.sleep(Duration.millis(pollMs))
    }
  })
