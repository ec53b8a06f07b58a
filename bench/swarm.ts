/**
 * The in-process swarm's round anatomy (not a test; prints numbers): Covenant-72B scaled to this
 * machine, N peers + a validator over the filesystem store and a local chain. Per window: peers'
 * compute, codec, publish and gather time, the share of active round time outside compute
 * (Covenant-72B's was about 5.5 %), the idle share waiting for window boundaries, and bytes.
 *
 *   bun bench/swarm.ts [--peers 4] [--windows 8] [--backend cpu|webgpu]
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { covenant72b } from "@covenant/dsl"
import { runSwarm, scaleToMachine, summarizeWindow } from "@covenant/runtime"
import type { NodeEvent } from "@covenant/runtime"
import { intArg } from "./support.ts"

const peers = intArg("peers", 4)
const windows = intArg("windows", 8)
const backend = process.argv.includes("webgpu") ? "webgpu" as const : "cpu" as const
const spec = scaleToMachine(covenant72b(), { peers, windows })
const workDir = mkdtempSync(join(tmpdir(), "covenant-bench-swarm-"))
const began = performance.now()
try {
  const { events, startWindow } = await Effect.runPromise(runSwarm({ spec, peers, rounds: windows, workDir, backend }))
  type Round = Extract<NodeEvent, { _tag: "Round" }>
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)
  console.log(`${peers} peers + 1 validator, ${windows} windows of ${spec.participation.blocksPerWindow} x ${spec.participation.blockTimeMs} ms, ${backend}; ${((performance.now() - began) / 1000).toFixed(1)} s in all`)
  console.log("window  prepare  compute  codec  publish  gather  outer   save  idle(ms)  outside-compute  idle-share  sent      received")
  for (let w = startWindow; w < startWindow + windows; w++) {
    const s = summarizeWindow(events, w)
    const rs = events.filter((e): e is Round => e._tag === "Round" && e.role === "peer" && e.window === w)
    if (s === undefined || rs.length === 0) continue
    const ph = (k: string) => mean(rs.map((e) => e.phaseMs[k] ?? 0)).toFixed(0).padStart(6)
    console.log(`${String(w).padStart(6)}   ${ph("prepare")}   ${ph("compute")}  ${ph("codec")}   ${ph("publish")}  ${ph("gather")} ${ph("outerStep")} ${ph("save")}    ${ph("wait")}    ${(100 * s.outsideCompute).toFixed(1).padStart(6)} %        ${(100 * s.idle).toFixed(1).padStart(5)} %    ${String(s.bytesUp).padStart(8)}  ${String(s.bytesDown).padStart(8)}`)
  }
} finally {
  rmSync(workDir, { recursive: true, force: true })
}
