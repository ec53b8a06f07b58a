/**
 * Matmul throughput of the WebGPU backend: C = A·B for square fp32 matrices, printed as GFLOP/s
 * (2n^3 flops per product) with the adapter's name. On lavapipe the big sizes take long, so
 * `--max=N` (or env MATMUL_MAX_N, default 2048) skips sizes above N; `--min-seconds=S` sets how
 * long each size is timed (default 1). Also times the transposed-B form used by linear layers,
 * unless `--plain`. `--kernels=tiled|blocked` forces a kernel family (default: per adapter).
 * `--profile` also prints the GPU time per kernel from timestamp queries (host overhead excluded).
 *   bun bench/matmul.ts --max=4096
 */
import { Effect } from "effect"
import { Engine, EngineWebGpuWith, WebGpuBackend } from "@covenant/gpu-webgpu"

const arg = (name: string): string | undefined =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)

const maxN = Number(arg("max") ?? process.env["MATMUL_MAX_N"] ?? 2048)
const minSeconds = Number(arg("min-seconds") ?? 1)
const sizes = [512, 1024, 2048, 4096].filter((n) => n <= maxN)
const variants = process.argv.includes("--plain") ? [false] : [false, true]
const kernelsArg = arg("kernels")
const kernels = kernelsArg === "tiled" || kernelsArg === "blocked" ? kernelsArg : undefined

const program = Effect.gen(function* () {
  const e = yield* Engine
  console.log(`matmul on ${e.backend.name}, ${e.backend.kernelFamily} kernels`)
  for (const n of sizes) {
    for (const transB of variants) {
      const data = Float32Array.from({ length: n * n }, (_, i) => ((i * 2654435761) % 1000) / 1000 - 0.5)
      const a = e.fromArray(data, [n, n])
      const b = e.fromArray(data, [n, n])
      const once = () => e.noGrad(() => e.matmul(a, b, { transB })).dispose()
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

await Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(EngineWebGpuWith(kernels === undefined ? {} : { kernels }))))
