/**
 * What each attack costs (not a test; prints numbers). The same swarm (debug model, same seed and
 * identities) runs honest-only, then with each catalogue kind alone at 1 of N peers, then with a
 * mix at 3 of N. Per run: windows until every adversary's weight is 0 (as the validator's Scoring
 * sets it: the Gauntlet by default, `--scoring equal` for the equal-weight baseline, under which
 * it never is), the windows in which an adversary was nevertheless paid (weight > 0), how many
 * honest peers were never paid (every peer can be paid in this spec), the windows in which an
 * adversary's update was aggregated, the final eval loss against the honest run's, and the
 * validator's time per window.
 *
 * Runs on the simulated clock by default (runSwarm clock: "simulated": reproducible from the seed,
 * compute time only); the validator's time per window is then the wall time its own fibers ran
 * (the simulator's busyMs). `--clock wall` runs on the wall clock, over the filesystem store and
 * the loopback chain, where it is the validator's round time (all of it, and outside the gather's
 * wait for the upload interval).
 *
 * The Gauntlet's data check (runtime scoring/data-check.ts; off in the presets) is on unless
 * `--data-check off`: 16 random batches, the own samples of each peer's last 4 windows, every peer
 * checked every window. Nodes train and evaluate on `--backend` (default cpu-fast: the check's
 * backward passes on the reference CPU engine would take most of the run).
 *
 *   bun bench/adversaries.ts [--peers 10] [--windows 20] [--block-ms 500] [--blocks 8] [--scoring gauntlet|equal] [--evaluations 4]
 *                            [--kinds sign-flip,scaled,...] [--mix sign-flip,copycat,noise] [--clock simulated|wall] [--out results.json]
 *                            [--data-check on|off] [--backend cpu-fast|cpu]
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { debug, derive } from "@covenant/dsl"
import { catalogue, runSwarm, swarmSummary } from "@covenant/runtime"
import type { NodeEvent, PeerBehaviour, SwarmSummary } from "@covenant/runtime"
import { intArg } from "./support.ts"

const peerCount = intArg("peers", 10)
const peers = peerCount
const windows = intArg("windows", 20)
const blockMs = intArg("block-ms", 500)
const blocks = intArg("blocks", 8)
const listArg = (name: string, fallback: readonly string[]): string[] => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]!.split(",").filter((s) => s !== "") : [...fallback]
}
const kinds = listArg("kinds", Object.keys(catalogue).filter((k) => k !== "slow"))
const mix = listArg("mix", ["sign-flip", "copycat", "noise"])
const scoringIndex = process.argv.indexOf("--scoring")
const scoring = scoringIndex >= 0 ? process.argv[scoringIndex + 1] : "gauntlet"
if (scoring !== "gauntlet" && scoring !== "equal") throw new Error(`--scoring takes gauntlet or equal, got ${scoring}`)
const clockIndex = process.argv.indexOf("--clock")
const clock = clockIndex >= 0 ? process.argv[clockIndex + 1] : "simulated"
if (clock !== "simulated" && clock !== "wall") throw new Error(`--clock takes simulated or wall, got ${clock}`)
const argOf = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback
}
const dataCheck = argOf("data-check", "on")
if (dataCheck !== "on" && dataCheck !== "off") throw new Error(`--data-check takes on or off, got ${dataCheck}`)
const backend = argOf("backend", "cpu-fast")
if (backend !== "cpu-fast" && backend !== "cpu") throw new Error(`--backend takes cpu-fast or cpu, got ${backend}`)
const outIndex = process.argv.indexOf("--out")
const out = outIndex >= 0 ? process.argv[outIndex + 1] : undefined
for (const k of [...kinds, ...mix]) if (catalogue[k] === undefined) throw new Error(`unknown behaviour ${k} (known: ${Object.keys(catalogue).join(", ")})`)

const spec = await Effect.runPromise(derive(debug(), {
  innerOptimizer: { batchSize: 2, innerSteps: 3, microBatchSize: 2 },
  data: { sampling: { samplesPerWindow: 6 } },
  // Every peer can be listed (the debug preset lists 2 + 1 reserve) and paid (it pays its top 3),
  // so an adversary's weight 0 and its absence from the aggregate are the Gauntlet's judgement, not
  // a lack of slots; the validator evaluates `--evaluations` of them each window.
  participation: {
    blocksPerWindow: blocks, blockTimeMs: blockMs, uploadWindowMs: Math.min(1_000, Math.floor((blocks * blockMs) / 3)),
    peersGathered: peers, reservePeers: 2, evaluationsPerWindow: intArg("evaluations", 4),
    scoring: {
      linearWeighted: peers, tailWeighted: 2,
      dataCheck: { randomBatches: dataCheck === "on" ? 16 : 0, windows: 4, peersPerWindow: peers, memory: 6, threshold: 0.5 },
    },
  },
  infrastructure: { chain: { kind: "local", path: ".covenant/bench/chain", blockTimeMs: blockMs } },
}))

interface Outcome {
  readonly name: string
  readonly summary: SwarmSummary
  readonly adversaries: number[]
  readonly validatorMs: number
  readonly validatorOutsideGatherMs: number
  /** Simulated seconds the run took (null on the wall clock). */
  readonly simulatedS: number | null
  readonly seconds: number
}

const run = async (name: string, assigned: ReadonlyArray<string>, peers = peerCount): Promise<Outcome> => {
  // Adversaries take the last peer indices, as `covenant swarm --adversary` does.
  const behaviours: Record<number, PeerBehaviour> = {}
  const labels: Record<string, string> = {}
  assigned.forEach((k, i) => {
    behaviours[peers - 1 - i] = catalogue[k]!
    labels[`peer-${peers - 1 - i}`] = k
  })
  const workDir = mkdtempSync(join(tmpdir(), "covenant-bench-adv-"))
  const began = performance.now()
  try {
    const { events, simulated } = await Effect.runPromise(runSwarm({ spec, peers, rounds: windows, workDir, behaviours, scoring, clock, backend }))
    const summary = swarmSummary(events, labels)
    type Round = Extract<NodeEvent, { _tag: "Round" }>
    const v = events.filter((e): e is Round => e._tag === "Round" && e.role === "validator")
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)
    return {
      name,
      summary,
      adversaries: summary.peers.filter((p) => p.behaviour !== "honest").map((p) => p.uid),
      // Simulated: the validator's own running time (its rounds' wall time would include the peers' compute).
      validatorMs: simulated === undefined ? mean(v.map((e) => e.roundMs)) : (simulated.busyMs["validator-0"] ?? 0) / Math.max(1, v.length),
      validatorOutsideGatherMs: simulated === undefined ? mean(v.map((e) => e.roundMs - (e.phaseMs["gather"] ?? 0))) : (simulated.busyMs["validator-0"] ?? 0) / Math.max(1, v.length),
      simulatedS: simulated === undefined ? null : simulated.elapsedMs / 1000,
      seconds: (performance.now() - began) / 1000,
    }
  } finally {
    rmSync(workDir, { recursive: true, force: true })
  }
}

/**
 * Windows from the start (every adversary misbehaves from its first window) until every adversary's
 * weight is 0 for good: in the weights in force then and in every later window's; null: never.
 */
const windowsUntilZero = (o: Outcome): number | null => {
  if (o.adversaries.length === 0) return null
  const first = o.summary.windows[0]?.window ?? 0
  const weighted = o.summary.windows.filter((w) => Object.keys(w.weights).length > 0)
  const zero = (w: (typeof weighted)[number]) => o.adversaries.every((uid) => (w.weights[String(uid)] ?? 0) === 0)
  const from = weighted.findIndex((_, i) => weighted.slice(i).every(zero))
  return from < 0 ? null : weighted[from]!.window - first + 1
}

/** Windows in which any adversary's update was aggregated (of all windows). */
const adversaryAggregated = (o: Outcome): number | null =>
  o.adversaries.length === 0 ? null : o.summary.windows.filter((w) => o.adversaries.some((uid) => w.aggregated.includes(uid))).length

/** Windows (with weights set) in which any adversary had weight > 0: paid despite its attack. */
const adversaryPaid = (o: Outcome): number | null =>
  o.adversaries.length === 0 ? null : o.summary.windows.filter((w) => Object.keys(w.weights).length > 0 && o.adversaries.some((uid) => (w.weights[String(uid)] ?? 0) > 0)).length

/** Honest peers never paid in the run (every peer can be paid here: a false positive of the Gauntlet). */
const honestNeverPaid = (o: Outcome): number => {
  const weighted = o.summary.windows.filter((w) => Object.keys(w.weights).length > 0)
  return o.summary.peers.filter((p) => p.behaviour === "honest" && weighted.every((w) => (w.weights[String(p.uid)] ?? 0) === 0)).length
}

const finalLoss = (o: Outcome): number | null => [...o.summary.windows].reverse().find((w) => w.evalLoss !== null)?.evalLoss ?? null

console.log(`${peers} peers + 1 validator, ${windows} windows of ${blocks} x ${blockMs} ms (debug model, seed ${spec.seed}), scoring: ${scoring}, data check: ${dataCheck}, clock: ${clock}, engine: ${backend}`)
const fmt = (x: number | null, d: number) => (x === null ? "-" : x.toFixed(d))
console.log(`run                                   until weight 0   paid windows   honest never paid   aggregated windows   final eval loss   vs honest   ${clock === "simulated" ? "validator busy ms/window" : "validator ms/window (outside gather)"}   wall s${clock === "simulated" ? "   simulated s" : ""}`)
const outcomes: Outcome[] = []
// Each row as soon as its run ends (and --out rewritten), so a study cut short keeps what it ran.
const report = (o: Outcome) => {
  outcomes.push(o)
  const honestLoss = finalLoss(outcomes[0]!)
  const loss = finalLoss(o)
  const until = windowsUntilZero(o)
  const aggregated = adversaryAggregated(o)
  console.log(
    `${o.name.padEnd(38)} ${(o.adversaries.length === 0 ? "-" : until === null ? "never" : String(until)).padStart(14)}   ${fmt(adversaryPaid(o), 0).padStart(12)}   ${String(honestNeverPaid(o)).padStart(17)}   ${fmt(aggregated, 0).padStart(18)}   ${fmt(loss, 4).padStart(15)}   ${(loss === null || honestLoss === null ? "-" : (loss - honestLoss >= 0 ? "+" : "") + (loss - honestLoss).toFixed(4)).padStart(9)}   ${clock === "simulated" ? o.validatorMs.toFixed(0).padStart(24) : `${o.validatorMs.toFixed(0).padStart(19)} (${o.validatorOutsideGatherMs.toFixed(0)})`}   ${o.seconds.toFixed(0).padStart(6)}${o.simulatedS === null ? "" : o.simulatedS.toFixed(0).padStart(14)}`,
  )
  if (out !== undefined) writeFileSync(out, JSON.stringify(outcomes.map((x) => ({ ...x, windowsUntilZero: windowsUntilZero(x), adversaryPaid: adversaryPaid(x), honestNeverPaid: honestNeverPaid(x), adversaryAggregated: adversaryAggregated(x), finalLoss: finalLoss(x) })), null, 2) + "\n")
}
report(await run("honest", []))
// The mix first: with the honest run it answers the issue's goal; then each kind alone.
if (mix.length > 0) {
  report(await run(`${mix.join("+")} (${mix.length} of ${peers})`, mix))
  // The issue's yardstick for the mix: the honest peers alone (same identities, hence data).
  report(await run(`honest, ${peers - mix.length} peers only`, [], peers - mix.length))
}
for (const k of kinds) report(await run(`${k} (1 of ${peers})`, [k]))
