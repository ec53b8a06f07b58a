import { afterAll } from "bun:test";
import { Effect, ManagedRuntime } from "effect";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { identityFromSecret, layerLocal, layerLocalClient, readOwnerUrl } from "../src/index.ts";
import { chainConformance, suiteParams } from "./conformance.ts";

const tempDir = (tag: string) => mkdtempSync(join(tmpdir(), `covenant-chain-${tag}-`));
const alice = await Effect.runPromise(identityFromSecret("//Alice"));
const bob = await Effect.runPromise(identityFromSecret("//Bob"));

chainConformance("layerLocal (owner)", () => layerLocal({ dir: tempDir("owner"), identity: alice, params: suiteParams, serve: false }));

// A second chain, owned here by Bob, that Alice reaches only through its loopback server.
const servedDir = tempDir("served");
const owner = ManagedRuntime.make(layerLocal({ dir: servedDir, identity: bob, params: suiteParams }));
await owner.runtime();
afterAll(() => owner.dispose());
const url = await Effect.runPromise(readOwnerUrl(servedDir));
chainConformance("layerLocalClient (loopback)", () => layerLocalClient(url, alice));
