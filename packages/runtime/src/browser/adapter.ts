/**
 * Whether a page's WebGPU can train a run's model, said plainly: no WebGPU at all, no adapter,
 * an adapter below the limits the kernels need, or a model too large for what the adapter can
 * hold (browsers do not report memory; the bound is its largest buffer times its storage bindings).
 */
import { llamaParameters } from "@covenant/gpu-webgpu"
import type { LlamaSpec } from "@covenant/gpu-webgpu"

export type AdapterCheck =
  | { readonly _tag: "Usable"; readonly gpu: GPU; readonly description: string; readonly trainingBytes: number }
  | { readonly _tag: "Unusable"; readonly message: string }

/** Bytes a peer keeps on the device per parameter: weights, gradients, AdamW's two moments, with room for error feedback. */
const BYTES_PER_PARAMETER = 4 * 5

/** The least each limit may be for the engine's kernels (WebGPU's own defaults). */
const NEEDED: ReadonlyArray<readonly [keyof GPUSupportedLimits, number]> = [
  ["maxComputeInvocationsPerWorkgroup", 256],
  ["maxComputeWorkgroupSizeX", 256],
  ["maxComputeWorkgroupStorageSize", 16_384],
  ["maxStorageBuffersPerShaderStage", 8],
]

export const trainingBytesOf = (model: LlamaSpec): number =>
  llamaParameters(model).reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0) * BYTES_PER_PARAMETER

export const checkAdapter = async (gpu: GPU | undefined, model: LlamaSpec): Promise<AdapterCheck> => {
  if (gpu === undefined) {
    return {
      _tag: "Unusable",
      message:
        "This browser has no WebGPU (navigator.gpu is missing), so it cannot train. Use a browser with WebGPU " +
        "(Chrome or Edge 113+, Safari 26+, Firefox 141+ on Windows), served over https or localhost.",
    }
  }
  const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" })
  if (adapter === null) {
    return { _tag: "Unusable", message: "This browser has WebGPU but offers no adapter (a blocklisted GPU or driver?), so it cannot train." }
  }
  const info = adapter.info
  const description = info.description !== "" ? info.description : `${info.vendor} ${info.architecture} ${info.device}`.trim()
  const short = NEEDED.filter(([k, min]) => (adapter.limits[k] as number) < min)
  if (short.length > 0) {
    return {
      _tag: "Unusable",
      message: `The WebGPU adapter (${description}) is too small for the engine's kernels: ${short.map(([k, min]) => `${k} ${String(adapter.limits[k])} < ${min}`).join(", ")}.`,
    }
  }
  const trainingBytes = trainingBytesOf(model)
  const room = adapter.limits.maxBufferSize * adapter.limits.maxStorageBuffersPerShaderStage
  if (trainingBytes > room) {
    return {
      _tag: "Unusable",
      message: `The WebGPU adapter (${description}) is too small for this run's model: training needs about ${(trainingBytes / 2 ** 30).toFixed(2)} GiB, the adapter's buffers hold at most ${(room / 2 ** 30).toFixed(2)} GiB.`,
    }
  }
  return { _tag: "Usable", gpu, description, trainingBytes }
}
