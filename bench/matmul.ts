/**
 * Matmul throughput: C = A·B for square fp32 matrices, printed as GFLOP/s (2n^3 flops per
 * product) with the backend's name, on `--backends` (webgpu: the adapter Dawn finds, lavapipe
 * here; cpu-fast: OpenBLAS through bun:ffi where it loads, else the wasm kernel; cpu-wasm: the
 * WebAssembly SIMD kernel; cpu: the reference). On lavapipe and the CPU the
 * big sizes take long, so `--max=N` (or env MATMUL_MAX_N, default 2048) skips sizes above N;
 * `--min-seconds=S` sets how long each size is timed (default 1). Also times the transposed-B
 * form used by linear layers, unless `--plain`. `--kernels=tiled|blocked` forces a WebGPU kernel
 * family (default: per adapter). `--profile` also prints the GPU time per kernel from timestamp
 * queries (host overhead excluded). `--vs-torch` times torch.matmul on the same sizes in the same
 * run (bench/torch_train.py, `--torch-threads=1,2`; `--install-torch` installs it) and prints
 * the ratio against PyTorch's best thread count.
 * `--sizes=512,...` picks the sizes; `--torch-device=cuda` and `--torch-dtypes=fp32,bf16` time
 * PyTorch on a GPU and in bf16 too. `--precision=f16` also times each backend that has shaderF16
 * with f16 operands (the f32 -> f16 casts of A and B included, f32 accumulation), beside f32 in
 * the same run, and PyTorch in bf16 beside fp32; the ratios pair our f16 with PyTorch bf16 and our
 * f32 with fp32 (an unpaired one is compared with every PyTorch precision measured).
 *   bun bench/matmul.ts --max=1024 --backends=cpu-fast,webgpu --vs-torch [--precision=f16]
 */
import { Context, Effect, Layer } from "effect"
import { Engine, EngineCpu, EngineCpuFast, EngineWebGpuWith, FastCpuBackend, makeEngine, WebGpuBackend } from "@covenant/gpu-webgpu"
import { runTorch, torchPython } from "./torch.ts"

const arg = (name: string): string | undefined =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)

const maxN = Number(arg("max") ?? process.env["MATMUL_MAX_N"] ?? 2048)
const minSeconds = Number(arg("min-seconds") ?? 1)
const sizes = (arg("sizes") ?? "512,1024,2048,4096").split(",").map(Number).filter((n) => n <= maxN)
const variants = process.argv.includes("--plain") ? [false] : [false, true]
const kernelsArg = arg("kernels")
const kernels = kernelsArg === "tiled" || kernelsArg === "blocked" ? kernelsArg : undefined
const backends = (arg("backends") ?? "webgpu").split(",")
const vsTorch = process.argv.includes("--vs-torch")
const torchThreads = (arg("torch-threads") ?? "1,2").split(",").map(Number)
/** Our precisions: f32, and with `--precision=f16` f16 beside it. */
const precisionArg = arg("precision") ?? "f32"
if (precisionArg !== "f32" && precisionArg !== "f16") throw new RangeError("--precision must be f32 or f16")
const precisions: ReadonlyArray<"f32" | "f16"> = precisionArg === "f16" ? ["f32", "f16"] : ["f32"]
/** The PyTorch precision each of ours is compared with. */
const torchPair = { f32: "fp32", f16: "bf16" } as const
/** PyTorch's device (`cuda` on a GPU machine) and precisions (fp32; bf16 for the half-precision yardstick). */
const torchDevice = arg("torch-device") ?? "cpu"
const torchDtypes = (arg("torch-dtypes") ?? precisions.map((p) => torchPair[p]).join(",")).split(",")

const key = (n: number, transB: boolean) => `${n}${transB ? "T" : ""}`
/** Our GFLOP/s by "backend name, precision", then size. */
const ours = new Map<string, { precision: "f32" | "f16"; table: Map<string, number> }>()

const program = (precision: "f32" | "f16") => Effect.gen(function* () {
  const e = yield* Engine
  if (precision === "f16" && !e.backend.features.shaderF16) {
    console.log(`matmul on ${e.backend.name}: no shaderF16, no f16 run`)
    return
  }
  console.log(`matmul on ${e.backend.name}, ${e.backend.kernelFamily} kernels, ${precision} operands`)
  const table = new Map<string, number>()
  ours.set(`${e.backend.name}, ${precision}`, { precision, table })
  for (const n of sizes) {
    for (const transB of variants) {
      const data = Float32Array.from({ length: n * n }, (_, i) => ((i * 2654435761) % 1000) / 1000 - 0.5)
      const a = e.fromArray(data, [n, n])
      const b = e.fromArray(data, [n, n])
      const once = () => e.noGrad(() => e.matmul(a, b, { transB, precision })).dispose()
      yield* Effect.promise(async () => {
        once() // compile + warm up
        await e.sync()
        let iters = 0
        const t0 = performance.now()
        while (performance.now() - t0 < minSeconds * 1000 || iters < 1) {
          once()
          await e.sync()
          iters++
        }
        const sec = (performance.now() - t0) / 1000 / iters
        const gflops = (2 * n ** 3) / sec / 1e9
        table.set(key(n, transB), gflops)
        console.log(`  n=${n}${transB ? " (B transposed)" : ""}: ${gflops.toFixed(2)} GFLOP/s (${(sec * 1000).toFixed(1)} ms per product, ${iters} runs)`)
        const b = e.backend
        if (process.argv.includes("--profile") && b instanceof WebGpuBackend && b.startProfiling()) {
          once()
          for (const [name, { calls, ms }] of await b.stopProfiling()) {
            console.log(`    GPU time ${name}: ${ms.toFixed(2)} ms over ${calls} dispatch(es), ${((2 * n ** 3) / (ms / 1000) / 1e9).toFixed(2)} GFLOP/s`)
          }
        }
      })
      a.dispose()
      b.dispose()
    }
  }
})

const EngineCpuWasm: Layer.Layer<Engine> = Layer.scoped(
  Engine,
  Effect.acquireRelease(Effect.sync(() => makeEngine(new FastCpuBackend(undefined, undefined, "wasm"))), (e) => Effect.sync(() => e.backend.destroy()))
)

const layerFor = (backend: string): Layer.Layer<Engine, unknown> =>
  backend === "cpu" ? EngineCpu : backend === "cpu-fast" ? EngineCpuFast : backend === "cpu-wasm" ? EngineCpuWasm : EngineWebGpuWith(kernels === undefined ? {} : { kernels })

/** PyTorch's best GFLOP/s per precision and size. */
const torch = new Map<string, Map<string, { gflops: number; threads: number }>>()
const python = vsTorch ? torchPython(process.argv.includes("--install-torch")) : null
if (python !== null) {
  for (const dtype of torchDtypes) for (const threads of torchThreads) {
    const lines = runTorch(python, ["--matmul", sizes.join(","), "--threads", String(threads), "--min-seconds", String(minSeconds), "--device", torchDevice, "--dtype", dtype])
    if (threads === torchThreads[0]) console.log(`PyTorch: ${String(lines[0]!["blas"])}`)
    console.log(`torch.matmul ${dtype} on ${torchDevice}, ${threads} thread(s)`)
    const table = torch.get(dtype) ?? new Map<string, { gflops: number; threads: number }>()
    torch.set(dtype, table)
    for (const r of lines.slice(1)) {
      const n = Number(r["n"])
      const transB = r["transB"] === true
      if (!variants.includes(transB)) continue
      const g = Number(r["gflops"])
      console.log(`  n=${n}${transB ? " (B transposed)" : ""}: ${g.toFixed(2)} GFLOP/s`)
      const prev = table.get(key(n, transB))
      if (prev === undefined || g > prev.gflops) table.set(key(n, transB), { gflops: g, threads })
    }
  }
}
for (const backend of backends) for (const precision of precisions) {
  await Effect.runPromise(
    Effect.scoped(Effect.flatMap(Layer.build(layerFor(backend)), (ctx) => Effect.provideService(program(precision), Engine, Context.get(ctx, Engine)))).pipe(
      Effect.catchAll((err) => Effect.sync(() => console.log(`${backend}: ${String(err)}`)))
    )
  )
}
for (const [dtype, table] of torch) {
  console.log(`\nratio to PyTorch ${dtype} on ${torchDevice} (its best thread count), same run`)
  for (const [name, { precision, table: mine }] of ours) {
    if (torch.has(torchPair[precision]) && dtype !== torchPair[precision]) continue
    for (const [k, g] of mine) {
      const t = table.get(k)
      if (t !== undefined) console.log(`  ${name} n=${k.replace("T", " (B transposed)")}: ${g.toFixed(2)} vs ${t.gflops.toFixed(2)} GFLOP/s (${t.threads} thread(s)) = ${(g / t.gflops).toFixed(3)}x`)
    }
  }
}
