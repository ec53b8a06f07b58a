/**
 * WebGPU (Dawn) vs the CPU reference: forward outputs and gradients of every primitive agree
 * within |gpu - cpu| <= 1e-4 + 1e-3 * |cpu| (fp32; summation orders differ).
 */
import { describe } from "bun:test"
import { CpuBackend, makeEngine } from "../src/index.ts"
import { agreesWith, cases } from "./opsCases.ts"
import { gpuEngine, gpuTest } from "./opsGpuEngine.ts"

const cpu = makeEngine(new CpuBackend())
const gpu = await gpuEngine()
const gtest = gpuTest(gpu)
// lavapipe defaults to the register-blocked kernels; the tiled family (real GPUs) is forced here
const gpuTiled = await gpuEngine({ kernels: "tiled" })

const check = (c: (typeof cases)[number]) => agreesWith(cpu, c, ["webgpu", "cpu"])

describe("WebGPU forward and gradients equal the CPU reference", () => {
  for (const c of cases) gtest(c.name, check(c), 60_000)
  for (const c of cases.filter((c) => c.name.startsWith("matmul") || c.name.startsWith("attention"))) {
    gpuTest(gpuTiled)(`${c.name}, tiled kernel`, check(c), 60_000)
  }
})
