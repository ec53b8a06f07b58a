/**
 * `--adversary <name|path.ts>=<count>` values (the flag is cli/flags.ts): which swarm peers run which behaviour.
 * Adversaries take the highest peer indices, in the order given; the other peers are honest.
 */
import { Effect, Schema } from "effect"
import { FlagError, RuntimeError, type RuntimeFailure } from "../errors.ts"
import type { PeerBehaviour } from "./behaviour.ts"
import { resolveBehaviour } from "./catalogue.ts"

export interface AdversaryFlag {
  /** A catalogue name or a behaviour file's path. */
  readonly behaviour: string
  readonly count: number
}

const Count = Schema.NumberFromString.pipe(Schema.int(), Schema.positive())

export const parseAdversaryFlag = (value: string): Effect.Effect<AdversaryFlag, RuntimeFailure> => {
  const at = value.lastIndexOf("=")
  const behaviour = at < 0 ? value : value.slice(0, at)
  const fail = (reason: string) => new FlagError({ reason: `--adversary ${value}: ${reason}` })
  if (behaviour === "") return Effect.fail(fail("expected <name|path>=<count>"))
  if (at < 0) return Effect.succeed({ behaviour, count: 1 })
  return Effect.map(Effect.mapError(Schema.decodeUnknown(Count)(value.slice(at + 1)), () => fail("the count must be a positive integer")), (count) => ({ behaviour, count }))
}

export interface SwarmBehaviours {
  /** Peer index -> behaviour, for SwarmOptions.behaviours. */
  readonly behaviours: Record<number, PeerBehaviour>
  /** Node name (peer-3) -> label (the flag's name or path), for the summary and report. */
  readonly labels: Record<string, string>
}

/** Resolves the flags (catalogue names, else behaviour files) and assigns them to the last peers. */
export const assignAdversaries = (flags: ReadonlyArray<AdversaryFlag>, peers: number): Effect.Effect<SwarmBehaviours, RuntimeFailure> =>
  Effect.gen(function* () {
    const total = flags.reduce((n, f) => n + f.count, 0)
    if (total > peers) return yield* new FlagError({ reason: `${total} adversaries for ${peers} peers (--peers counts every peer)` })
    const behaviours: Record<number, PeerBehaviour> = {}
    const labels: Record<string, string> = {}
    let index = peers - 1
    for (const f of flags) {
      const b = yield* Effect.mapError(resolveBehaviour(f.behaviour), (e) => new RuntimeError({ phase: "behaviour", reason: `${e.path}: ${e.reason}` }))
      for (let k = 0; k < f.count; k++, index--) {
        behaviours[index] = b
        labels[`peer-${index}`] = f.behaviour
      }
    }
    return { behaviours, labels }
  })
