import { mkdir, readFile, writeFile } from "node:fs/promises"
import { dirname } from "node:path"
import { Effect } from "effect"
import { FileIoError } from "./errors.ts"

/** Reads a whole file as bytes. */
export const readBytes = (path: string): Effect.Effect<Uint8Array, FileIoError> =>
  Effect.tryPromise({
    try: async () => new Uint8Array(await readFile(path)),
    catch: (cause) => new FileIoError({ path, cause })
  })

/** Writes bytes to a file, creating its folder when missing. */
export const writeBytes = (path: string, bytes: Uint8Array): Effect.Effect<void, FileIoError> =>
  Effect.tryPromise({
    try: async () => {
      await mkdir(dirname(path), { recursive: true })
      await writeFile(path, bytes)
    },
    catch: (cause) => new FileIoError({ path, cause })
  })
