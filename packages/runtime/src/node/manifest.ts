/** The model's tensors in wire order: what every update must match. */
import { llamaParameters } from "@covenant/gpu-webgpu"
import type { LlamaSpec } from "@covenant/gpu-webgpu"
import type { Manifest } from "@covenant/sparseloco"

export const modelManifest = (model: LlamaSpec): Manifest => ({ tensors: llamaParameters(model).map(({ name, shape }) => ({ name, shape })) })
