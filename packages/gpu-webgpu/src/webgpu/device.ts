/**
 * Acquires a WebGPU device through Dawn: under Bun `bun-webgpu` is tried first, then the `webgpu`
 * package (the only choice under Node). `bun-webgpu` 0.1.x rejects `requiredLimits`, which we
 * need to raise the binding size on real GPUs, so there it usually falls through to `webgpu`.
 * Set COVENANT_WEBGPU_BINDING=webgpu (or bun-webgpu) to force one.
 *
 * The device is created with "shader-f16" and "subgroups" where the adapter offers them (subgroups
 * also need WGSL's subgroup_id builtin); COVENANT_WEBGPU_DISABLE=shader-f16,subgroups (either or
 * both) leaves them off, so the f32-only and shared-memory paths can be run on any device.
 */
import { Data, Effect } from "effect"
import type { BackendFeatures } from "../backend.ts"

export class NoAdapterError extends Data.TaggedError("NoAdapterError")<{ readonly message: string }> {}

export const NO_ADAPTER_HELP =
  "No WebGPU adapter found. Dawn needs a Vulkan driver: on a machine without a GPU install Mesa >= 25 lavapipe " +
  "(Debian 12: add the bookworm-backports suite and `apt-get install -t bookworm-backports mesa-vulkan-drivers`; " +
  "Debian's own Mesa 22 lavapipe is rejected by Dawn). Set COVENANT_ALLOW_NO_GPU=1 to skip WebGPU tests."

export interface AcquiredDevice {
  readonly device: GPUDevice
  readonly adapterDescription: string
  /** Where the device came from: a Dawn binding, or a page's `navigator.gpu` (`deviceFromGpu`). */
  readonly binding: "bun-webgpu" | "webgpu" | "navigator"
  /** The optional features the device was created with. */
  readonly features: BackendFeatures
  /**
   * The object `webgpu`'s create() returned: it must stay referenced for the life of the process
   * or Dawn is torn down under live devices (random crashes). Held here and by a module global.
   */
  readonly instance: unknown
}

const instances: unknown[] = []

const limitsFor = (adapter: GPUAdapter): Record<string, number> => ({
  maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
  maxBufferSize: adapter.limits.maxBufferSize,
  maxStorageBuffersPerShaderStage: Math.min(adapter.limits.maxStorageBuffersPerShaderStage, 10),
  maxComputeWorkgroupStorageSize: adapter.limits.maxComputeWorkgroupStorageSize,
  maxComputeInvocationsPerWorkgroup: adapter.limits.maxComputeInvocationsPerWorkgroup,
  maxComputeWorkgroupSizeX: adapter.limits.maxComputeWorkgroupSizeX
})

const describe = (adapter: GPUAdapter): string => {
  const info = adapter.info
  return info.description !== "" ? info.description : `${info.vendor} ${info.architecture} ${info.device}`.trim()
}

/** The features COVENANT_WEBGPU_DISABLE names (comma-separated WebGPU feature names). */
const disabledFeatures = (): ReadonlySet<string> =>
  new Set((process.env["COVENANT_WEBGPU_DISABLE"] ?? "").split(",").map((f) => f.trim()).filter((f) => f !== ""))

const fromGpu = async (gpu: GPU, binding: AcquiredDevice["binding"], instance: unknown): Promise<AcquiredDevice | null> => {
  const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" })
  if (adapter === null) return null
  const disabled = typeof process === "undefined" ? new Set<string>() : disabledFeatures()
  const offered = (f: string) => adapter.features.has(f) && !disabled.has(f)
  const shaderF16 = offered("shader-f16")
  // the subgroup reductions index partials by subgroup_id, a WGSL language feature of its own
  const subgroups = offered("subgroups") && (gpu.wgslLanguageFeatures?.has("subgroup_id") ?? false)
  const features: GPUFeatureName[] = []
  if (adapter.features.has("timestamp-query")) features.push("timestamp-query")
  if (shaderF16) features.push("shader-f16")
  if (subgroups) features.push("subgroups")
  const device = await adapter.requestDevice({ requiredLimits: limitsFor(adapter), requiredFeatures: features })
  return { device, adapterDescription: describe(adapter), binding, instance, features: { shaderF16, subgroups } }
}

/**
 * A device from a `GPU` the caller already holds: a browser page's `navigator.gpu` (the same
 * limits and features as a Dawn device). Fails with NoAdapterError when the browser offers no adapter.
 */
export const deviceFromGpu = (gpu: GPU): Effect.Effect<AcquiredDevice, NoAdapterError> =>
  Effect.tryPromise({
    try: async () => {
      const d = await fromGpu(gpu, "navigator", null)
      if (d === null) throw new NoAdapterError({ message: "this browser offers WebGPU but no adapter (navigator.gpu.requestAdapter() gave null)" })
      return d
    },
    catch: (e) => (e instanceof NoAdapterError ? e : new NoAdapterError({ message: `WebGPU device request failed: ${String(e)}` }))
  })

const viaBunWebgpu = async (): Promise<AcquiredDevice | null> => {
  const m = await import("bun-webgpu")
  await m.setupGlobals()
  return fromGpu(navigator.gpu, "bun-webgpu", null)
}

const viaWebgpu = async (): Promise<AcquiredDevice | null> => {
  const m = await import("webgpu")
  Object.assign(globalThis, m.globals)
  const gpu = m.create([])
  instances.push(gpu)
  return fromGpu(gpu, "webgpu", gpu)
}

const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined"

/** Acquires a device or fails with NoAdapterError saying what to install. */
export const acquireDevice: Effect.Effect<AcquiredDevice, NoAdapterError> = Effect.tryPromise({
  try: async () => {
    const forced = process.env["COVENANT_WEBGPU_BINDING"]
    const bun = ["bun-webgpu", viaBunWebgpu] as const
    const node = ["webgpu", viaWebgpu] as const
    const attempts = forced === "webgpu" ? [node] : forced === "bun-webgpu" ? [bun] : isBun ? [bun, node] : [node]
    const failures: string[] = []
    for (const [name, attempt] of attempts) {
      try {
        const d = await attempt()
        if (d !== null) return d
        failures.push(`${name}: no adapter`)
      } catch (e) {
        failures.push(`${name}: ${String(e)}`)
      }
    }
    throw new NoAdapterError({ message: `${NO_ADAPTER_HELP} (tried: ${failures.join("; ")})` })
  },
  catch: (e) => (e instanceof NoAdapterError ? e : new NoAdapterError({ message: `${NO_ADAPTER_HELP} (${String(e)})` }))
})
