/**
 * Prints what each preset implies (size, bytes on the wire, tokens, memory, time) and how the
 * update size moves with k and the index coding; then how fast a spec decodes and plans.
 *
 *   bun bench/plan.ts
 */
import { Effect } from "effect"
import {
  covenant72b,
  debug,
  decodeRunSpec,
  dilocoBaseline,
  formatBytes,
  formatScaled,
  llama150m,
  llama1b,
  plan,
  type RunSpec,
} from "@covenant/dsl"

const presets: ReadonlyArray<RunSpec> = [covenant72b(), dilocoBaseline(covenant72b()), llama1b(), llama150m(), debug()]

console.log("preset                 parameters  update      ratio   tokens/round  memory/peer  window")
for (const spec of presets) {
  const p = plan(spec)
  console.log(
    [
      spec.name.padEnd(21),
      formatScaled(p.parameters).padStart(11),
      formatBytes(p.wire.bytes).padStart(11),
      `${p.wire.ratioVsFp32.toFixed(1)}x`.padStart(7),
      formatScaled(p.tokens.perRound).padStart(13),
      formatBytes(p.memoryPerPeer.total).padStart(12),
      `${p.time.windowMs / 1000} s`.padStart(8),
    ].join(" "),
  )
}

console.log("\nCovenant-72B update size by k per 4096-element chunk and index coding")
const base = covenant72b()
const reference = base.compression
if (reference.kind === "sparseloco") {
  for (const topk of [16, 32, 64, 128, 256]) {
    const row = (["packed12", "rice"] as const).map((indexCoding) => {
      const p = plan({ ...base, compression: { ...reference, topk, indexCoding } })
      return `${indexCoding} ${formatBytes(p.wire.bytes).padStart(10)} (${p.wire.ratioVsFp32.toFixed(1).padStart(6)}x)`
    })
    console.log(`  k = ${String(topk).padStart(3)}  ${row.join("   ")}`)
  }
}

const timeIt = (label: string, n: number, f: () => void) => {
  const start = performance.now()
  for (let i = 0; i < n; i++) f()
  const ms = (performance.now() - start) / n
  console.log(`  ${label.padEnd(28)} ${ms.toFixed(3)} ms`)
}
console.log("\nspeed (mean of repeated runs)")
const spec = covenant72b()
timeIt("decodeRunSpec(covenant72b)", 2000, () => Effect.runSync(decodeRunSpec(spec)))
timeIt("plan(covenant72b)", 200, () => plan(spec))
