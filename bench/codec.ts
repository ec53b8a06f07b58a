/**
 * SparseLoCo codec benchmark on a LLaMA-shaped 134M-parameter model (dim 768, 12 layers,
 * ffn 2048, vocab 32000, untied) with random pseudo-gradients. Prints numbers; asserts nothing.
 *
 *   bun bench/codec.ts [--peers 8,20] [--repeat 2] [--threads N]
 *
 * Encode = EF update + chunked top-k + quantization + index/code packing into the wire format.
 * Decode + aggregate = strict wire decode of every peer + median-clipped aggregation, tensor by tensor,
 * on one thread and on N threads (decodeAll over messages, aggregateAll over tensors: the same
 * results bit for bit; each repeat runs both, one after the other, so they see the same load).
 * Prints only what this run measured (no reference constants; see bench/RESULTS.md for those).
 */
import { Either } from "effect"
import { aggregate, aggregateAll, closeCodecWorkers, compress, decode, decodeAll, defaultParams, encode } from "@covenant/sparseloco"
import type { IndexCoding, Manifest, TensorUpdate, UpdateMessage } from "@covenant/sparseloco"
import { fillRandom, stringArg } from "./support.ts"

const peerCounts = stringArg("peers", "8,20").split(",").map(Number)
const repeat = Number(stringArg("repeat", "2"))
const threads = Number(stringArg("threads", String(navigator.hardwareConcurrency)))

const dim = 768
const layers = 12
const ffn = 2048
const vocab = 32000
const manifest: Manifest = {
  tensors: [
    { name: "model.embed_tokens.weight", shape: [vocab, dim] },
    ...Array.from({ length: layers }, (_, i) => [
      { name: `model.layers.${i}.self_attn.q_proj.weight`, shape: [dim, dim] },
      { name: `model.layers.${i}.self_attn.k_proj.weight`, shape: [dim, dim] },
      { name: `model.layers.${i}.self_attn.v_proj.weight`, shape: [dim, dim] },
      { name: `model.layers.${i}.self_attn.o_proj.weight`, shape: [dim, dim] },
      { name: `model.layers.${i}.mlp.gate_proj.weight`, shape: [ffn, dim] },
      { name: `model.layers.${i}.mlp.up_proj.weight`, shape: [ffn, dim] },
      { name: `model.layers.${i}.mlp.down_proj.weight`, shape: [dim, ffn] },
      { name: `model.layers.${i}.input_layernorm.weight`, shape: [dim] },
      { name: `model.layers.${i}.post_attention_layernorm.weight`, shape: [dim] },
    ]).flat(),
    { name: "model.norm.weight", shape: [dim] },
    { name: "lm_head.weight", shape: [vocab, dim] },
  ],
}
const numelOf = (s: readonly number[]) => s.reduce((a, b) => a * b, 1)
const total = manifest.tensors.reduce((a, t) => a + numelOf(t.shape), 0)


const rssMB = () => process.memoryUsage().rss / 2 ** 20
/** CPU time of this process (ms): less disturbed than wall time on a shared machine. */
const cpuMs = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e3
}
/** Wall and CPU milliseconds of fn. */
const timed = (fn: () => void): { wall: number; cpu: number } => {
  const w = performance.now()
  const c = cpuMs()
  fn()
  return { wall: performance.now() - w, cpu: cpuMs() - c }
}
const best = (a: { wall: number; cpu: number }, b: { wall: number; cpu: number }) => ({ wall: Math.min(a.wall, b.wall), cpu: Math.min(a.cpu, b.cpu) })
const none = { wall: Infinity, cpu: Infinity }
const rate = (work: number, t: { wall: number; cpu: number }) => `${fmt((work / t.wall) * 1e3)}/s wall, ${fmt((work / t.cpu) * 1e3)}/s by CPU time`
const meta = (uid: number) => ({
  runId: "bench",
  window: 1,
  uid,
  hotkey: "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY",
  sampleDigest: "00".repeat(32),
  sampleCount: 1,
})

const fmt = (x: number) => (x >= 1e9 ? `${(x / 1e9).toFixed(2)} G` : `${(x / 1e6).toFixed(1)} M`)

console.log(`model: ${manifest.tensors.length} tensors, ${(total / 1e6).toFixed(1)} M parameters; k = 64 per 64x64 chunk`)
console.log(`machine: ${navigator.hardwareConcurrency} cores, shared with other jobs while measuring (best of ${repeat})`)

// ---------------------------------------------------------------- encode
// EF buffers start random too, so their pages are resident before memory is measured.
const efs = manifest.tensors.map((t, i) => {
  const e = new Float32Array(numelOf(t.shape))
  fillRandom(e, 9000 + i, 2e-3)
  return e
})
const deltas = manifest.tensors.map((t, i) => {
  const d = new Float32Array(numelOf(t.shape))
  fillRandom(d, 1000 + i, 1e-3)
  return d
})
let tCompress = none
const tPack: Record<IndexCoding, { wall: number; cpu: number }> = { packed12: none, rice: none }
const sizes: Record<IndexCoding, number> = { packed12: 0, rice: 0 }
let peakExtra = 0
for (let r = 0; r < repeat; r++) {
  Bun.gc(true)
  const before = rssMB()
  let peak = before
  const updates: TensorUpdate[] = []
  tCompress = best(
    tCompress,
    timed(() =>
      manifest.tensors.forEach((t, i) => {
        updates.push(Either.getOrThrow(compress(efs[i]!, deltas[i]!, t.shape, defaultParams, t.name)).update)
        peak = Math.max(peak, rssMB())
      }),
    ),
  )
  for (const coding of ["rice", "packed12"] as const) {
    const msg: UpdateMessage = { meta: meta(0), tensors: updates.map((update) => ({ coding, update })) }
    tPack[coding] = best(tPack[coding], timed(() => (sizes[coding] = Either.getOrThrow(encode(msg)).length)))
    peak = Math.max(peak, rssMB())
  }
  peakExtra = Math.max(peakExtra, peak - before)
}
console.log(`\nwire size at k=64/4096 (whole model, header + checksum + signature included):`)
for (const coding of ["packed12", "rice"] as const) {
  const bpp = (sizes[coding] * 8) / total
  console.log(`  ${coding.padEnd(8)} ${(sizes[coding] / 2 ** 20).toFixed(2)} MiB, ${bpp.toFixed(4)} bits/param, ${(32 / bpp).toFixed(1)}x smaller than fp32`)
}
console.log(`\nencode, EF + top-k + quantize: ${(tCompress.wall / 1e3).toFixed(2)} s wall = ${rate(total, tCompress)} params`)
for (const coding of ["rice", "packed12"] as const) {
  const t = { wall: tCompress.wall + tPack[coding].wall, cpu: tCompress.cpu + tPack[coding].cpu }
  console.log(`encode + pack (${coding}): ${rate(total, t)} params (packing alone ${tPack[coding].wall.toFixed(0)} ms wall)`)
}
console.log(`peak extra RSS while encoding (updates + scratch + wire bytes): ${peakExtra.toFixed(0)} MB`)
efs.length = 0
deltas.length = 0
Bun.gc(true)

// ---------------------------------------------------------------- decode + aggregate
const maxPeers = Math.max(...peerCounts)
/** Peers share a common component, so their selections overlap as in training. */
const peerUpdates: TensorUpdate[][] = []
for (let p = 0; p < maxPeers; p++) {
  peerUpdates.push(
    manifest.tensors.map((t, i) => {
      const n = numelOf(t.shape)
      const g = new Float32Array(n)
      fillRandom(g, 77 + i, 1e-3)
      const own = new Float32Array(n)
      fillRandom(own, 5000 + p * 1000 + i, 1e-3)
      for (let j = 0; j < n; j++) g[j] = g[j]! + own[j]!
      return Either.getOrThrow(compress(new Float32Array(n), g, t.shape, defaultParams, t.name)).update
    }),
  )
}
const maxNumel = Math.max(...manifest.tensors.map((t) => numelOf(t.shape)))
const outBuf = new Float32Array(maxNumel)
/** The threaded path's outputs: one per tensor, shared, allocated once as the one-thread path's outBuf. */
const outs = manifest.tensors.map((t) => new Float32Array(new SharedArrayBuffer(4 * numelOf(t.shape))))
const updatesOf = (decoded: readonly UpdateMessage[]) =>
  manifest.tensors.map((_, i) =>
    decoded.map((m) => {
      const w = m.tensors[i]!
      if (w.coding === "f32") throw new Error("unexpected dense tensor")
      return w.update
    }),
  )
/** Wall and CPU milliseconds of an async fn (CPU time: this process, all threads). */
const timedAsync = async (fn: () => Promise<void>): Promise<{ wall: number; cpu: number }> => {
  const w = performance.now()
  const c = cpuMs()
  await fn()
  return { wall: performance.now() - w, cpu: cpuMs() - c }
}
// start the workers before anything is timed (a pool is started once per process)
await decodeAll([], manifest, { threads })
await aggregateAll(updatesOf([]).slice(0, 0), { threads })
const summary: string[] = []
for (const P of peerCounts) {
  for (const coding of ["rice", "packed12"] as const) {
    const msgs = peerUpdates.slice(0, P).map((ups, p) => Either.getOrThrow(encode({ meta: meta(p), tensors: ups.map((update) => ({ coding, update })) })))
    let tAll = none
    let tDecode = none
    let tPar = none
    let tParDecode = none
    let same = true
    for (let r = 0; r < repeat; r++) {
      Bun.gc(true)
      let decoded: UpdateMessage[] = []
      const d = timed(() => (decoded = msgs.map((m) => Either.getOrThrow(decode(m, manifest)))))
      const a = timed(() =>
        updatesOf(decoded).forEach((ups, i) => {
          const res = Either.getOrThrow(aggregate(ups, { out: outBuf.subarray(0, numelOf(manifest.tensors[i]!.shape)) }))
          // spot check of the threaded path's bytes (first and last element of each tensor, from the previous repeat)
          if (r > 0 && (res.dense[0] !== outs[i]![0] || res.dense[res.dense.length - 1] !== outs[i]![outs[i]!.length - 1])) same = false
        }),
      )
      tAll = best(tAll, { wall: d.wall + a.wall, cpu: d.cpu + a.cpu })
      tDecode = best(tDecode, d)
      decoded = []
      Bun.gc(true)
      let pdecoded: UpdateMessage[] = []
      const pd = await timedAsync(async () => {
        pdecoded = (await decodeAll(msgs, manifest, { threads })).map((x) => Either.getOrThrow(x))
      })
      const pa = await timedAsync(async () => {
        for (const x of await aggregateAll(updatesOf(pdecoded), { threads, outs })) Either.getOrThrow(x)
      })
      tPar = best(tPar, { wall: pd.wall + pa.wall, cpu: pd.cpu + pa.cpu })
      tParDecode = best(tParDecode, pd)
    }
    // the last repeat's threaded outputs against a fresh one-thread aggregate, every tensor, every bit
    const check = updatesOf(msgs.map((m) => Either.getOrThrow(decode(m, manifest))))
    check.forEach((ups, i) => {
      const one = Either.getOrThrow(aggregate(ups)).dense
      const a = new Uint32Array(one.buffer)
      const b = new Uint32Array(outs[i]!.buffer)
      for (let j = 0; j < a.length; j++) if (a[j] !== b[j]) same = false
    })
    const g1 = (total * P) / tAll.wall / 1e6
    const gN = (total * P) / tPar.wall / 1e6
    console.log(
      `decode + aggregate, ${P} peers, ${coding}, 1 thread: ${(tAll.wall / 1e3).toFixed(2)} s wall = ${rate(total * P, tAll)} params x peers (decode alone ${(tDecode.wall / 1e3).toFixed(2)} s wall)`,
    )
    console.log(
      `decode + aggregate, ${P} peers, ${coding}, ${threads} threads: ${(tPar.wall / 1e3).toFixed(2)} s wall = ${rate(total * P, tPar)} params x peers (decode alone ${(tParDecode.wall / 1e3).toFixed(2)} s wall); ${(gN / g1).toFixed(2)}x one thread; aggregates bitwise equal: ${same}`,
    )
    summary.push(`| ${P} | ${coding} | ${g1.toFixed(2)} G | ${gN.toFixed(2)} G | ${(gN / g1).toFixed(2)}x | ${same} |`)
  }
}
console.log(`\n| peers | coding | 1 thread (params x peers/s, wall) | ${threads} threads | ratio | bitwise equal |\n|---|---|---|---|---|---|\n${summary.join("\n")}`)
closeCodecWorkers()
// Only what this run measured is printed. The reference implementation's figures on the same
// shapes were measured by a separate run of its own code; bench/RESULTS.md quotes them with
// their source, apart from this run's numbers.
