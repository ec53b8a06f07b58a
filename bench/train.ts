/**
 * Training throughput of the LLaMA Trainer (forward + backward + clip + AdamW), in tokens/s, for
 * the debug-sized model and a ~25M-parameter one, on any of the backends:
 *   cpu       the CPU reference (the readable oracle; slow: minutes per 25M step)
 *   cpu-fast  the fast CPU backend (matmul and attention on OpenBLAS where it loads, else wasm SIMD)
 *   cpu-wasm  the fast CPU backend with its WebAssembly SIMD gemm even where OpenBLAS loads
 *   webgpu    WebGPU through Dawn (lavapipe on a machine without a GPU)
 *   auto      what EngineAuto picks here
 * With `--vs-torch` the identical model (bench/torch_train.py, from the HF definition) is trained
 * in PyTorch in the same run, interleaved with ours (torch then ours, `--repeat` times), at each
 * of `--torch-threads` and the ratio ours/PyTorch is printed (best vs best and median vs
 * median, PyTorch's best thread count). Prints numbers; asserts nothing.
 *
 * `--precision f16` also trains each backend that has shaderF16 with the linear layers' matmuls
 * on f16 operands (Trainer's `precision: "f16"`), beside its f32 run in the same process, and then
 * PyTorch trains under bf16 autocast beside its fp32: our f16 is compared with PyTorch bf16, our
 * f32 with PyTorch fp32 (`--torch-dtypes` overrides which PyTorch runs; an unpaired run is
 * compared with every PyTorch precision measured).
 *
 *   bun bench/train.ts [--backends cpu-fast,webgpu] [--models debug,25m] [--steps 3] [--repeat 1]
 *                      [--precision f32|f16] [--vs-torch] [--torch-threads 1,2] [--install-torch]
 *                      [--torch-device cpu|cuda] [--torch-dtypes fp32,bf16]
 *
 * Tokens/s counts batch * seqLen tokens per optimizer step, over the timed steps after one
 * warm-up step (which compiles pipelines and fills the buffer pool).
 */
import { parameterCount } from "@covenant/dsl"
import { Context, Effect, Layer, Scope } from "effect"
import {
  Engine,
  EngineAuto,
  EngineCpu,
  EngineCpuFast,
  EngineWebGpu,
  FastCpuBackend,
  initLlamaParameters,
  makeEngine,
  Trainer
} from "@covenant/gpu-webgpu"
import { stringArg } from "./support.ts"
import { benchModels as models } from "./models.ts"
import { bestMedian, runTorch, torchPython } from "./torch.ts"

const backends = stringArg("backends", "cpu-fast,webgpu").split(",")
const modelNames = stringArg("models", "debug,25m").split(",")
const timedSteps = Number(stringArg("steps", "3"))
const repeat = Number(stringArg("repeat", "1"))
const vsTorch = process.argv.includes("--vs-torch")
const torchThreads = stringArg("torch-threads", "1,2").split(",").map(Number)
/** Our precisions: f32, and with `--precision f16` f16 beside it. */
const precisionArg = stringArg("precision", "f32")
if (precisionArg !== "f32" && precisionArg !== "f16") throw new RangeError("--precision must be f32 or f16")
const precisions: ReadonlyArray<"f32" | "f16"> = precisionArg === "f16" ? ["f32", "f16"] : ["f32"]
/** The PyTorch precision each of ours is compared with: f16 operands against bf16 autocast. */
const torchPair = { f32: "fp32", f16: "bf16" } as const
/** Where PyTorch trains (`cuda` on a GPU machine) and in which precisions (fp32, bf16 = autocast). */
const torchDevice = stringArg("torch-device", "cpu")
const torchDtypes = stringArg("torch-dtypes", precisions.map((p) => torchPair[p]).join(",")).split(",")

/** The fast CPU backend with its WebAssembly gemm even where OpenBLAS loads. */
const EngineCpuWasm: Layer.Layer<Engine> = Layer.scoped(
  Engine,
  Effect.acquireRelease(Effect.sync(() => makeEngine(new FastCpuBackend(undefined, undefined, "wasm"))), (e) => Effect.sync(() => e.backend.destroy()))
)

const layers: Record<string, Layer.Layer<Engine, unknown>> = {
  cpu: EngineCpu, "cpu-fast": EngineCpuFast, "cpu-wasm": EngineCpuWasm, webgpu: EngineWebGpu, auto: EngineAuto
}

const engineFor = (backend: string): Effect.Effect<Engine, unknown, Scope.Scope> => {
  const layer = layers[backend]
  if (layer === undefined) return Effect.fail(`unknown backend ${backend}; have ${Object.keys(layers).join(", ")}`)
  return Effect.map(Layer.build(layer), (ctx) => Context.get(ctx, Engine))
}

const bench = (backend: string, name: string, precision: "f32" | "f16") =>
  Effect.gen(function*() {
    const { spec, batch, microBatch } = models[name]!
    const engine = yield* engineFor(backend)
    if (precision === "f16" && !engine.backend.features.shaderF16) return yield* Effect.fail(`${engine.backend.name} has no shaderF16`)
    const trainer = Trainer.create(engine, spec, initLlamaParameters(spec, 1), { microBatch, lr: 1e-4, precision })
    const ids = new Int32Array(batch * spec.seqLen).map((_, i) => (i * 7919) % spec.vocabSize)
    const step = () => Effect.promise(() => trainer.step(ids, [batch, spec.seqLen]))
    const warm0 = performance.now()
    yield* step()
    const warmMs = performance.now() - warm0
    const t0 = performance.now()
    let loss = 0
    for (let i = 0; i < timedSteps; i++) loss = yield* step()
    const seconds = (performance.now() - t0) / 1000
    const tokens = timedSteps * batch * spec.seqLen
    console.log(
      `${name.padEnd(6)} ${(parameterCount(spec) / 1e6).toFixed(2).padStart(6)}M  batch ${batch}x${spec.seqLen} (micro ${microBatch})  ` +
        `${(tokens / seconds).toFixed(1).padStart(9)} tokens/s  ${(seconds / timedSteps * 1000).toFixed(0).padStart(7)} ms/step  ` +
        `first step ${warmMs.toFixed(0)} ms  loss ${loss.toFixed(3)}  live buffers ${engine.backend.liveBuffers()}  [${engine.backend.name}, ${precision}]`
    )
    trainer.dispose()
    return { tokensPerSecond: tokens / seconds, name: engine.backend.name }
  }).pipe(Effect.scoped)

const python = vsTorch ? torchPython(process.argv.includes("--install-torch")) : null
const summary: string[] = []
for (const name of modelNames) {
  const m = models[name]
  if (m === undefined) throw new Error(`unknown model ${name}; have ${Object.keys(models).join(", ")}`)
  /** PyTorch's tokens/s per precision and thread count. */
  const torchRuns = new Map<string, Map<number, number[]>>()
  const ours = new Map<string, { name: string; precision: "f32" | "f16"; runs: number[] }>()
  for (let r = 0; r < repeat; r++) {
    if (python !== null) {
      for (const dtype of torchDtypes) for (const threads of torchThreads) {
        const lines = runTorch(python, [
          "--spec", JSON.stringify(m.spec), "--batch", String(m.batch), "--micro", String(m.microBatch),
          "--steps", String(timedSteps), "--threads", String(threads), "--device", torchDevice, "--dtype", dtype
        ])
        const head = lines[0]!
        const res = lines[1]!
        if (r === 0 && threads === torchThreads[0]) console.log(`PyTorch: ${String(head["blas"])}`)
        const tps = Number(res["tokens_per_s"])
        console.log(
          `${name.padEnd(6)} ${(Number(res["params"]) / 1e6).toFixed(2).padStart(6)}M  batch ${m.batch}x${m.spec.seqLen} (micro ${m.microBatch})  ` +
            `${tps.toFixed(1).padStart(9)} tokens/s  ${Number(res["ms_per_step"]).toFixed(0).padStart(7)} ms/step  loss ${Number(res["loss"]).toFixed(3)}  ` +
            `[PyTorch eager ${dtype} on ${torchDevice}, ${threads} thread(s)]`
        )
        const byThreads = torchRuns.get(dtype) ?? new Map<number, number[]>()
        byThreads.set(threads, [...(byThreads.get(threads) ?? []), tps])
        torchRuns.set(dtype, byThreads)
      }
    }
    for (const backend of backends) for (const precision of precisions) {
      const res = await Effect.runPromise(bench(backend, name, precision).pipe(
        Effect.catchAll((e) => Effect.sync(() => { console.log(`${name} on ${backend} ${precision}: ${String(e)}`); return null }))
      ))
      if (res !== null) {
        const o = ours.get(`${backend} ${precision}`) ?? { name: res.name, precision, runs: [] }
        o.runs.push(res.tokensPerSecond)
        ours.set(`${backend} ${precision}`, o)
      }
    }
  }
  for (const [backend, { name: bname, precision, runs }] of ours) {
    const bm = bestMedian(runs)
    let line = `${name}: ${backend} [${bname}] best ${bm.best.toFixed(1)} / median ${bm.median.toFixed(1)} tokens/s over ${runs.length} run(s)`
    const paired = torchRuns.has(torchPair[precision])
    for (const [dtype, byThreads] of torchRuns) {
      if (paired && dtype !== torchPair[precision]) continue
      let torchBest: { threads: number; best: number; median: number } | null = null
      for (const [threads, tr] of byThreads) {
        const t = bestMedian(tr)
        if (torchBest === null || t.best > torchBest.best) torchBest = { threads, ...t }
      }
      if (torchBest === null) continue
      line += `; PyTorch ${dtype} on ${torchDevice} (${torchBest.threads} thread(s)) best ${torchBest.best.toFixed(1)} / median ${torchBest.median.toFixed(1)}` +
        `; ratio ${(bm.best / torchBest.best).toFixed(3)}x best, ${(bm.median / torchBest.median).toFixed(3)}x median`
    }
    summary.push(line)
  }
}
console.log("\nsummary")
for (const l of summary) console.log("  " + l)
