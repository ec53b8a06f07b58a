/**
 * Not a test: the final validator loss of the debug swarm (4 honest peers + one adversary, 9
 * windows) under the Gauntlet and under equal weights, against an honest-only run, and how many
 * windows after its first bad update the adversary's weight reached 0 and it left the list.
 *   cd test && npx bun gauntlet-compare.ts [kind ...] [--gauntlet-only] [--no-honest]
 *
 * Measured on the 2-core shared box (validator held-out loss after window 9; windows after the
 * first bad update until the adversary's weight was 0 for good / it was off the list in force):
 *   honest x4                      4.9840
 *   + sign-flip    Gauntlet 4.9905 (0 / 2)   equal weights 5.0656
 *   + copycat      Gauntlet 4.9926 (0 / 2)   equal weights 4.9804 (a copy costs reward, not loss)
 *   + noise        Gauntlet 4.9881 (0 / 3)
 *   + stale        Gauntlet 4.9753 (2 / 4)   equal weights 4.9794 (honest for its first 2 windows)
 *   + wrong-codec  Gauntlet 5.0230 (0 / 2)   equal weights 5.5856 (no step ever: chunks do not mix)
 *   + other-data   Gauntlet 4.8997 (never)   equal weights 4.8997 (the indicator gate waits 20 evaluations)
 *   + free-rider   Gauntlet 4.9875 (0 / 2)   equal weights 4.9889 (all-zero update)
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { catalogue, runSwarm } from "@covenant/runtime"
import type { NodeEvent, PeerBehaviour } from "@covenant/runtime"
import { gauntletSpec, validatorRounds } from "./swarm-support.ts"

const rounds = 9
const spec = await gauntletSpec()

const run = async (label: string, adversary: string | undefined, scoring: "gauntlet" | "equal") => {
  const workDir = mkdtempSync(join(tmpdir(), "covenant-compare-"))
  try {
    const behaviours: Record<number, PeerBehaviour> = adversary === undefined ? {} : { 4: catalogue[adversary]! }
    const { startWindow: s, events } = await Effect.runPromise(runSwarm({ spec, peers: adversary === undefined ? 4 : 5, rounds, workDir, behaviours, scoring }))
    const byWindow = validatorRounds(events)
    const uid = events.find((e): e is Extract<NodeEvent, { _tag: "Joined" }> => e._tag === "Joined" && e.name === "peer-4")?.uid
    const weights = events.filter((e): e is Extract<NodeEvent, { _tag: "Weights" }> => e._tag === "Weights").sort((a, b) => a.window - b.window)
    const zeroFrom = uid === undefined ? undefined : weights.findIndex((_, i) => weights.slice(i).every((e) => !e.weights.some((x) => x.uid === uid && x.weight > 0)))
    let offList: number | undefined
    for (let w = s; w < s + rounds && uid !== undefined; w++) if (offList === undefined && !byWindow.get(w)!.expected.includes(uid)) offList = w - s
    const line = {
      run: label,
      finalLoss: byWindow.get(s + rounds - 1)?.loss?.toFixed(4),
      losses: [...byWindow.values()].sort((a, b) => a.window - b.window).map((v) => v.loss?.toFixed(3)).join(" "),
      ...(uid === undefined ? {} : { windowsToWeight0: zeroFrom === undefined || zeroFrom < 0 ? "never" : weights[zeroFrom]!.window - s, windowsToOffList: offList ?? "never" }),
    }
    console.log(JSON.stringify(line))
  } finally {
    rmSync(workDir, { recursive: true, force: true })
  }
}

// Adversary kinds from the command line (default: sign-flip and copycat); "--gauntlet-only" skips the equal-weights runs.
const args = process.argv.slice(2)
const kinds = args.filter((a) => !a.startsWith("--"))
if (!args.includes("--no-honest")) await run("honest x4", undefined, "gauntlet")
for (const kind of kinds.length > 0 ? kinds : ["sign-flip", "copycat"]) {
  await run(`honest x4 + ${kind}, Gauntlet`, kind, "gauntlet")
  if (!args.includes("--gauntlet-only")) await run(`honest x4 + ${kind}, equal weights`, kind, "equal")
}
